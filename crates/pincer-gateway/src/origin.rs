//! Host and Origin checks (D11): the API answers only requests addressed to it by a name it
//! knows, and browser requests only from its own origin.
//!
//! - `Host` must be an IP literal, `localhost`, or a name in `gateway.allowed_hosts`. A DNS
//!   rebinding attack makes a browser send `Host: evil.example` to a loopback server; that name
//!   is refused, so a page on another site cannot reach the API through a rebound name. IP
//!   literals cannot be rebound, so any is accepted (the bind address decides who connects).
//! - `Origin`, when a browser sends one, must be the server's own origin (same host and port as
//!   `Host`) or one listed in `gateway.allowed_origins`; `Origin: null` (sandboxed frames, files)
//!   is refused. Clients that are not browsers send no `Origin` and are unaffected.
//!
//! Both are checked before authentication, so a refused request never counts as a failed
//! authentication.

use std::collections::BTreeSet;
use std::net::IpAddr;

use axum::http::{HeaderMap, StatusCode, header};

use crate::ApiError;

/// The names and origins the API accepts.
#[derive(Debug, Clone, Default)]
pub struct HostPolicy {
    /// Extra `Host` names (lower case, without port).
    hosts: BTreeSet<String>,
    /// Extra browser origins (`scheme://host[:port]`, lower case, no trailing slash).
    origins: BTreeSet<String>,
}

impl HostPolicy {
    /// A policy accepting IP literals, `localhost` and `hosts`, and same-origin browser requests
    /// plus `origins`.
    pub fn new<'a>(
        hosts: impl IntoIterator<Item = &'a str>,
        origins: impl IntoIterator<Item = &'a str>,
    ) -> Self {
        Self {
            hosts: hosts.into_iter().map(str::to_ascii_lowercase).collect(),
            origins: origins
                .into_iter()
                .map(|o| o.trim_end_matches('/').to_ascii_lowercase())
                .collect(),
        }
    }

    /// Whether the browser reached this request over TLS, as far as the server can tell from
    /// what it has already checked: the request's `Origin` is `https://…`, or its `Host` is the
    /// host of an `https://` origin in `gateway.allowed_origins` (a TLS-terminating proxy in
    /// front). The server itself speaks plain HTTP on loopback; cookies set for a browser on
    /// TLS are marked `Secure`.
    pub fn over_tls(&self, headers: &HeaderMap) -> bool {
        let get = |h| headers.get(h).and_then(|v| v.to_str().ok());
        if get(header::ORIGIN).is_some_and(|o| o.to_ascii_lowercase().starts_with("https://")) {
            return true;
        }
        get(header::HOST).is_some_and(|h| {
            let h = h.to_ascii_lowercase();
            self.origins
                .iter()
                .any(|o| o.strip_prefix("https://") == Some(h.as_str()))
        })
    }

    /// Refuses a request whose `Host` or `Origin` is foreign.
    ///
    /// # Errors
    /// 403 `host_not_allowed` / `origin_not_allowed`, 400 `bad_host` for a malformed `Host`.
    pub fn check(&self, headers: &HeaderMap) -> Result<(), ApiError> {
        let host = match headers.get(header::HOST) {
            // HTTP/1.0 without Host: nothing a browser sends; allowed.
            None => None,
            Some(v) => Some(
                v.to_str()
                    .map_err(|_| ApiError::bad_request("bad_host", "malformed Host header"))?
                    .to_ascii_lowercase(),
            ),
        };
        if let Some(h) = &host {
            let name = host_name(h)
                .ok_or_else(|| ApiError::bad_request("bad_host", "malformed Host header"))?;
            if !self.host_allowed(name) {
                return Err(ApiError::new(
                    StatusCode::FORBIDDEN,
                    "host_not_allowed",
                    format!(
                        "requests for host `{name}` are refused; add it to gateway.allowed_hosts if this server is reached by that name"
                    ),
                ));
            }
        }
        let Some(origin) = headers.get(header::ORIGIN) else {
            return Ok(());
        };
        let origin = origin.to_str().unwrap_or("null").to_ascii_lowercase();
        let origin = origin.trim_end_matches('/');
        let same = host.as_deref().is_some_and(|h| {
            origin
                .split_once("://")
                .is_some_and(|(scheme, auth)| matches!(scheme, "http" | "https") && auth == h)
        });
        if same || self.origins.contains(origin) {
            Ok(())
        } else {
            Err(ApiError::new(
                StatusCode::FORBIDDEN,
                "origin_not_allowed",
                "cross-origin requests are refused; add the origin to gateway.allowed_origins to allow it",
            ))
        }
    }

    fn host_allowed(&self, name: &str) -> bool {
        let bare = name.trim_start_matches('[').trim_end_matches(']');
        bare.parse::<IpAddr>().is_ok() || name == "localhost" || self.hosts.contains(name)
    }
}

/// The name part of a `Host` value (`[::1]:8080` → `[::1]`, `a.b:80` → `a.b`); `None` when
/// malformed.
fn host_name(h: &str) -> Option<&str> {
    let name = if h.starts_with('[') {
        let end = h.find(']')?;
        let rest = &h[end + 1..];
        if !(rest.is_empty() || rest.strip_prefix(':').is_some_and(is_port)) {
            return None;
        }
        &h[..=end]
    } else {
        match h.rsplit_once(':') {
            Some((n, p)) if is_port(p) => n,
            Some(_) => return None,
            None => h,
        }
    };
    let ok = !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-._[]:".contains(&b));
    ok.then_some(name)
}

fn is_port(p: &str) -> bool {
    !p.is_empty() && p.len() <= 5 && p.bytes().all(|b| b.is_ascii_digit())
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn headers(host: Option<&str>, origin: Option<&str>) -> HeaderMap {
        let mut h = HeaderMap::new();
        if let Some(v) = host {
            h.insert(header::HOST, HeaderValue::from_str(v).unwrap());
        }
        if let Some(v) = origin {
            h.insert(header::ORIGIN, HeaderValue::from_str(v).unwrap());
        }
        h
    }

    #[test]
    fn hosts_and_origins_table() {
        let p = HostPolicy::new(["pincer.lan"], ["https://admin.example"]);
        type Case<'a> = (Option<&'a str>, Option<&'a str>, Result<(), &'a str>);
        let cases: &[Case<'_>] = &[
            (Some("127.0.0.1:8080"), None, Ok(())),
            (Some("localhost:8080"), None, Ok(())),
            (Some("LOCALHOST"), None, Ok(())),
            (Some("[::1]:8080"), None, Ok(())),
            (Some("10.0.0.5"), None, Ok(())),
            (Some("pincer.lan:443"), None, Ok(())),
            (None, None, Ok(())),
            // DNS rebinding: a foreign name pointing at loopback.
            (Some("evil.example:8080"), None, Err("host_not_allowed")),
            (
                Some("localhost.evil.example"),
                None,
                Err("host_not_allowed"),
            ),
            (Some("a b"), None, Err("bad_host")),
            (Some("x:99999999"), None, Err("bad_host")),
            // Same origin, listed origin, foreign and null origins.
            (
                Some("127.0.0.1:8080"),
                Some("http://127.0.0.1:8080"),
                Ok(()),
            ),
            (
                Some("localhost:8080"),
                Some("https://localhost:8080/"),
                Ok(()),
            ),
            (
                Some("127.0.0.1:8080"),
                Some("https://admin.example"),
                Ok(()),
            ),
            (
                Some("127.0.0.1:8080"),
                Some("https://evil.example"),
                Err("origin_not_allowed"),
            ),
            (
                Some("127.0.0.1:8080"),
                Some("http://127.0.0.1:9999"),
                Err("origin_not_allowed"),
            ),
            (
                Some("127.0.0.1:8080"),
                Some("null"),
                Err("origin_not_allowed"),
            ),
            (
                None,
                Some("http://127.0.0.1:8080"),
                Err("origin_not_allowed"),
            ),
        ];
        for (host, origin, want) in cases {
            let got = p.check(&headers(*host, *origin)).map_err(|e| e.code);
            assert_eq!(got, want.map_err(|c| c), "{host:?} {origin:?}");
        }
    }

    #[test]
    fn tls_is_recognised_from_the_origin_or_a_proxied_https_host() {
        let p = HostPolicy::new(["admin.example"], ["https://admin.example"]);
        let h = |pairs: &[(header::HeaderName, &str)]| {
            let mut m = HeaderMap::new();
            for (k, v) in pairs {
                m.insert(k.clone(), v.parse().unwrap());
            }
            m
        };
        assert!(p.over_tls(&h(&[(header::ORIGIN, "https://admin.example")])));
        assert!(p.over_tls(&h(&[(header::HOST, "Admin.example")])));
        assert!(!p.over_tls(&h(&[(header::HOST, "127.0.0.1:8080")])));
        assert!(!p.over_tls(&h(&[
            (header::HOST, "127.0.0.1:8080"),
            (header::ORIGIN, "http://127.0.0.1:8080")
        ])));
        assert!(!HostPolicy::default().over_tls(&h(&[(header::HOST, "admin.example")])));
    }
}

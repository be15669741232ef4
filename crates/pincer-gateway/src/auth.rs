//! Bearer-token authentication with per-address rate limiting of failures (D11).
//!
//! Only `Authorization: Bearer <token>` is accepted; a token in the query string is refused
//! outright (URLs end up in logs and histories). Failed attempts are counted per client address
//! — loopback included — and past the limit every further failed attempt from that address gets
//! 429 instead of 401 until the window passes. A valid token is always accepted: every loopback
//! client shares one address, so refusing valid tokens would let anyone lock the operator out.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use axum::http::{HeaderMap, StatusCode, Uri, header};

use crate::ApiError;

/// Failed attempts allowed per address per window.
pub const MAX_FAILURES: u32 = 10;
/// The window.
pub const WINDOW: Duration = Duration::from_secs(60);
/// Addresses tracked at most (oldest dropped first).
const MAX_TRACKED: usize = 10_000;

/// Counts failed authentications per client address.
#[derive(Debug, Default)]
pub struct AuthLimiter {
    failures: Mutex<HashMap<IpAddr, (Instant, u32)>>,
}

impl AuthLimiter {
    fn map(&self) -> std::sync::MutexGuard<'_, HashMap<IpAddr, (Instant, u32)>> {
        self.failures
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// `Err(429)` when `ip` is over the limit.
    pub fn check(&self, ip: IpAddr, now: Instant) -> Result<(), ApiError> {
        let map = self.map();
        match map.get(&ip) {
            Some((start, n)) if *n >= MAX_FAILURES && now.duration_since(*start) < WINDOW => {
                let mut e = ApiError::new(
                    StatusCode::TOO_MANY_REQUESTS,
                    "rate_limited",
                    "too many failed authentication attempts from this address",
                );
                e.retry_after = Some((WINDOW - now.duration_since(*start)).as_secs().max(1));
                Err(e)
            }
            _ => Ok(()),
        }
    }

    /// Records a failure from `ip`.
    pub fn fail(&self, ip: IpAddr, now: Instant) {
        let mut map = self.map();
        if map.len() >= MAX_TRACKED && !map.contains_key(&ip) {
            let oldest = map.iter().min_by_key(|(_, (t, _))| *t).map(|(k, _)| *k);
            if let Some(k) = oldest {
                map.remove(&k);
            }
        }
        let e = map.entry(ip).or_insert((now, 0));
        if now.duration_since(e.0) >= WINDOW {
            *e = (now, 0);
        }
        e.1 += 1;
    }
}

/// The bearer token of a request, refusing tokens in the URL.
pub fn bearer<'a>(headers: &'a HeaderMap, uri: &Uri) -> Result<&'a str, ApiError> {
    if let Some(q) = uri.query() {
        let lower = q.to_ascii_lowercase();
        if ["token=", "access_token=", "api_key=", "key=", "bearer="]
            .iter()
            .any(|k| lower.split('&').any(|p| p.starts_with(k)))
        {
            return Err(ApiError::bad_request(
                "token_in_query",
                "tokens are accepted only in the Authorization header, never in the URL",
            ));
        }
    }
    let unauthorized = |m: &str| ApiError::new(StatusCode::UNAUTHORIZED, "unauthorized", m);
    let value = headers
        .get(header::AUTHORIZATION)
        .ok_or_else(|| unauthorized("missing `Authorization: Bearer <token>`"))?
        .to_str()
        .map_err(|_| unauthorized("malformed Authorization header"))?;
    let (scheme, token) = value
        .split_once(' ')
        .ok_or_else(|| unauthorized("expected `Authorization: Bearer <token>`"))?;
    if !scheme.eq_ignore_ascii_case("bearer") || token.trim().is_empty() {
        return Err(unauthorized("expected `Authorization: Bearer <token>`"));
    }
    Ok(token.trim())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failures_are_limited_per_address_and_forgotten_after_the_window() {
        let l = AuthLimiter::default();
        let a: IpAddr = "127.0.0.1".parse().unwrap();
        let b: IpAddr = "127.0.0.2".parse().unwrap();
        let t0 = Instant::now();
        for _ in 0..MAX_FAILURES {
            assert!(l.check(a, t0).is_ok());
            l.fail(a, t0);
        }
        let e = l.check(a, t0).unwrap_err();
        assert_eq!(e.status, StatusCode::TOO_MANY_REQUESTS);
        assert!(e.retry_after.is_some());
        assert!(l.check(b, t0).is_ok());
        assert!(l.check(a, t0 + WINDOW).is_ok());
    }

    #[test]
    fn only_bearer_headers_count() {
        let uri: Uri = "/v1/tasks?status=QUEUED".parse().unwrap();
        let mut h = HeaderMap::new();
        assert!(bearer(&h, &uri).is_err());
        h.insert(header::AUTHORIZATION, "Basic abc".parse().unwrap());
        assert!(bearer(&h, &uri).is_err());
        h.insert(header::AUTHORIZATION, "Bearer pnc_x".parse().unwrap());
        assert_eq!(bearer(&h, &uri).unwrap(), "pnc_x");
        let q: Uri = "/v1/tasks?access_token=pnc_x".parse().unwrap();
        assert_eq!(bearer(&h, &q).unwrap_err().code, "token_in_query");
    }
}

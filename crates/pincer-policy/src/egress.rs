//! The one egress policy for connections Pincer makes on an agent's or job's behalf (D4):
//! `http.fetch`, `web.search`, job delivery, MCP servers over HTTP. The network must be switched
//! on (`security.network = "allowlist"`); the URL (parsed as the HTTP client parses it) must be
//! http(s) without user info, to a host on the allowlist (exact or `*.example.org`; never an
//! address literal) or a `host:port` the operator named as private; and every address the name
//! resolves to must be public — loopback, private, link-local (cloud metadata), CGNAT, ULA,
//! NAT64, multicast, documentation and unspecified ranges are refused — unless named private.
//! Callers connect only to the checked addresses and re-check every redirect themselves
//! (`pincer-web::egress::Egress` is the client that does).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use pincer_config::NetworkMode;

/// Why an egress was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EgressError {
    /// `security.network = "off"`.
    #[error("network egress is off (security.network = \"off\")")]
    NetworkOff,
    /// Not an http(s) URL with a host and without user info.
    #[error("`{0}` is not an http(s) URL with a host name (and no user info)")]
    BadUrl(String),
    /// The host is not in `security.egress_allow` (nor named in `egress_allow_private`).
    #[error(
        "host `{0}` is not allowed: it is not on the egress allowlist, nor named with its port as a private address"
    )]
    NotAllowed(String),
    /// The host resolved to a blocked address.
    #[error("host `{host}` resolves to {ip}, a private, loopback, link-local or reserved address")]
    Blocked {
        /// Host.
        host: String,
        /// The address.
        ip: IpAddr,
    },
}

/// What `http.fetch`, `web.search` and (later) the browser and the sandbox proxy check before a
/// request: the network switch, the URL as the HTTP client parses it (WHATWG: `2130706433`,
/// `0x7f.1` and `0177.0.0.1` are all `127.0.0.1` to it, and so to us), the host against
/// `security.egress_allow` (exact names and `*.example.org` patterns) or the operator's named
/// private `host:port`s (`security.egress_allow_private`).
#[derive(Debug, Clone, Copy)]
pub struct EgressPolicy<'a> {
    /// `security.network`.
    pub network: NetworkMode,
    /// `security.egress_allow`.
    pub allow: &'a [String],
    /// `security.egress_allow_private`.
    pub allow_private: &'a [String],
}

/// A URL that passed [`EgressPolicy::check`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckedUrl {
    /// The parsed URL.
    pub url: url::Url,
    /// Lower-case host (an IP literal only when named private).
    pub host: String,
    /// Port (the scheme's default unless given).
    pub port: u16,
    /// Named in `egress_allow_private`: its addresses may be private.
    pub private_named: bool,
}

impl CheckedUrl {
    /// The host with its port when the URL names one (`127.0.0.1:8080`, `example.org`): how
    /// the destination is compared with trusted content (D9).
    pub fn host_port(&self) -> String {
        match self.url.port() {
            Some(p) => format!("{}:{p}", self.host),
            None => self.host.clone(),
        }
    }
}

/// Whether `host` matches an allowlist entry: the same name (case and a trailing dot aside), or
/// for `*.example.org` any name under `example.org` (not `example.org` itself).
pub fn host_matches(pattern: &str, host: &str) -> bool {
    let host = host.trim_end_matches('.');
    let pattern = pattern.trim_end_matches('.');
    match pattern.strip_prefix("*.") {
        Some(suffix) => {
            host.len() > suffix.len() + 1
                && host[host.len() - suffix.len()..].eq_ignore_ascii_case(suffix)
                && host.as_bytes()[host.len() - suffix.len() - 1] == b'.'
        }
        None => pattern.eq_ignore_ascii_case(host),
    }
}

impl EgressPolicy<'_> {
    /// Checks `raw` (no name resolution; see [`EgressPolicy::check_addrs`]).
    ///
    /// # Errors
    /// [`EgressError`] naming the reason.
    pub fn check(&self, raw: &str) -> Result<CheckedUrl, EgressError> {
        if self.network == NetworkMode::Off {
            return Err(EgressError::NetworkOff);
        }
        let bad = || EgressError::BadUrl(clip(raw));
        let url = url::Url::parse(raw).map_err(|_| bad())?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(bad());
        }
        if !url.username().is_empty() || url.password().is_some() {
            return Err(bad());
        }
        let port = url.port_or_known_default().ok_or_else(bad)?;
        let (host, literal) = match url.host().ok_or_else(bad)? {
            url::Host::Domain(d) => (d.trim_end_matches('.').to_ascii_lowercase(), false),
            url::Host::Ipv4(ip) => (ip.to_string(), true),
            url::Host::Ipv6(ip) => (ip.to_string(), true),
        };
        if host.is_empty() {
            return Err(bad());
        }
        let private_named = self.allow_private.iter().any(|entry| {
            entry.rsplit_once(':').is_some_and(|(h, p)| {
                let h = h.trim_start_matches('[').trim_end_matches(']');
                p.parse::<u16>() == Ok(port)
                    && (h.eq_ignore_ascii_case(&host)
                        || h.parse::<IpAddr>().ok()
                            == host.parse::<IpAddr>().ok().filter(|_| literal))
            })
        });
        if !private_named {
            // An address literal is never on the public allowlist: it would bypass the
            // resolved-address check by naming the address itself.
            if literal || !self.allow.iter().any(|p| host_matches(p, &host)) {
                return Err(EgressError::NotAllowed(host));
            }
        }
        Ok(CheckedUrl {
            url,
            host,
            port,
            private_named,
        })
    }

    /// Checks what `target`'s host resolved to: public addresses only, unless the operator named
    /// this `host:port` as private (then anything but unspecified, broadcast and multicast).
    ///
    /// # Errors
    /// [`EgressError::Blocked`] naming the first refused address.
    pub fn check_addrs(&self, target: &CheckedUrl, addrs: &[IpAddr]) -> Result<(), EgressError> {
        let ok = |ip: &IpAddr| {
            if target.private_named {
                !(ip.is_unspecified()
                    || ip.is_multicast()
                    || *ip == IpAddr::V4(Ipv4Addr::BROADCAST))
            } else {
                ip_allowed(*ip)
            }
        };
        match addrs.iter().find(|ip| !ok(ip)) {
            Some(ip) => Err(EgressError::Blocked {
                host: target.host.clone(),
                ip: *ip,
            }),
            None if addrs.is_empty() => Err(EgressError::BadUrl(format!(
                "{} has no address",
                target.host
            ))),
            None => Ok(()),
        }
    }
}

fn clip(s: &str) -> String {
    s.chars().take(200).collect()
}

/// Whether `ip` is a public unicast address egress may reach.
pub fn ip_allowed(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => v4_allowed(v4),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => v4_allowed(v4),
            None => v6_allowed(v6),
        },
    }
}

fn v4_allowed(ip: Ipv4Addr) -> bool {
    let [a, b, ..] = ip.octets();
    !(ip.is_private()
        || ip.is_loopback()
        || ip.is_link_local()
        || ip.is_unspecified()
        || ip.is_broadcast()
        || ip.is_multicast()
        || ip.is_documentation()
        || a == 0
        || (a == 100 && (64..128).contains(&b)) // CGNAT
        || (a == 192 && b == 0) // IETF protocol assignments
        || (a == 198 && (b == 18 || b == 19)) // benchmarking
        || a >= 240)
}

fn v6_allowed(ip: Ipv6Addr) -> bool {
    let s = ip.segments();
    !(ip.is_loopback()
        || ip.is_unspecified()
        || ip.is_multicast()
        || (s[0] & 0xfe00) == 0xfc00 // unique local
        || (s[0] & 0xffc0) == 0xfe80 // link local
        || s[0] == 0x2001 && s[1] == 0x0db8 // documentation
        || s[0] == 0x64 && s[1] == 0xff9b) // NAT64 (would reach IPv4 ranges)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn policy<'a>(allow: &'a [String], private: &'a [String]) -> EgressPolicy<'a> {
        EgressPolicy {
            network: NetworkMode::Allowlist,
            allow,
            allow_private: private,
        }
    }

    #[test]
    fn patterns_spellings_and_named_private_addresses() {
        let allow = vec!["docs.rs".to_owned(), "*.example.org".to_owned()];
        let private = vec!["nas.lan:8123".to_owned(), "127.0.0.1:9000".to_owned()];
        let p = policy(&allow, &private);
        assert!(host_matches("*.example.org", "a.b.example.org"));
        assert!(!host_matches("*.example.org", "example.org"));
        assert!(!host_matches("*.example.org", "evilexample.org"));
        for ok in [
            "https://docs.rs/x",
            "http://DOCS.RS./",
            "https://www.example.org/a?b",
            "http://nas.lan:8123/api",
            "http://127.0.0.1:9000/",
        ] {
            assert!(p.check(ok).is_ok(), "{ok}");
        }
        let named = p.check("http://127.0.0.1:9000/").unwrap();
        assert!(named.private_named);
        // Every spelling of loopback is loopback, and no literal passes the public allowlist.
        for bad in [
            "http://127.0.0.1/",
            "http://2130706433/",
            "http://0x7f.1/",
            "http://0177.0.0.1/",
            "http://[::ffff:127.0.0.1]/",
            "http://[::1]:9000/",
            "http://127.0.0.1:9001/",
            "http://nas.lan:22/",
            "http://93.184.216.34/",
            "https://example.org/",
            "https://docs.rs.evil.com/",
        ] {
            assert!(
                matches!(p.check(bad), Err(EgressError::NotAllowed(_))),
                "{bad}: {:?}",
                p.check(bad)
            );
        }
        for bad in [
            "ftp://docs.rs/",
            "https://user@docs.rs/",
            "https://docs.rs:pw@evil.com/",
            "https://evil.com\\@docs.rs/",
            "file:///etc/passwd",
            "not a url",
        ] {
            let r = p.check(bad);
            assert!(
                r.is_err() && !matches!(r, Ok(ref c) if c.host == "docs.rs"),
                "{bad}: {r:?}"
            );
        }
        let off = EgressPolicy {
            network: NetworkMode::Off,
            ..p
        };
        assert_eq!(off.check("https://docs.rs/"), Err(EgressError::NetworkOff));
        // Resolved addresses: public only, unless named private.
        let docs = p.check("https://docs.rs/").unwrap();
        assert!(
            p.check_addrs(&docs, &["127.0.0.1".parse().unwrap()])
                .is_err()
        );
        assert!(
            p.check_addrs(&docs, &["::ffff:10.0.0.1".parse().unwrap()])
                .is_err()
        );
        assert!(p.check_addrs(&docs, &[]).is_err());
        assert!(
            p.check_addrs(&docs, &["93.184.216.34".parse().unwrap()])
                .is_ok()
        );
        let nas = p.check("http://nas.lan:8123/").unwrap();
        assert!(
            p.check_addrs(&nas, &["192.168.1.5".parse().unwrap()])
                .is_ok()
        );
        assert!(p.check_addrs(&nas, &["0.0.0.0".parse().unwrap()]).is_err());
    }

    #[test]
    fn private_loopback_and_metadata_addresses_are_blocked() {
        for ip in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "0.0.0.0",
            "::1",
            "::ffff:127.0.0.1",
            "fd00::1",
            "fe80::1",
            "64:ff9b::a9fe:a9fe",
        ] {
            assert!(!ip_allowed(ip.parse().unwrap()), "{ip}");
        }
        for ip in ["93.184.216.34", "2606:4700::1111"] {
            assert!(ip_allowed(ip.parse().unwrap()), "{ip}");
        }
    }
}

//! Egress checks for connections Pincer itself makes on an agent's or job's behalf (D4): the
//! network must be switched on (`security.network = "allowlist"`), the URL must be `https://`
//! to a host listed in `security.egress_allow` (exact, case-insensitive; no IP literals, no
//! user info), and every address the name resolves to must be public — loopback, private,
//! link-local (cloud metadata), CGNAT, multicast, documentation and unspecified ranges are
//! refused whatever is listed. Callers connect to the checked address (no second lookup) and
//! never follow redirects.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use pincer_config::NetworkMode;

/// Why an egress was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EgressError {
    /// `security.network = "off"`.
    #[error("network egress is off (security.network = \"off\")")]
    NetworkOff,
    /// Not an https URL with a host.
    #[error("`{0}` is not an https:// URL with a host name")]
    BadUrl(String),
    /// The host is not in `security.egress_allow`.
    #[error("host `{0}` is not in security.egress_allow")]
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

/// A URL that passed the static checks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EgressTarget {
    /// Lower-case host name.
    pub host: String,
    /// Port (443 unless given).
    pub port: u16,
}

/// Checks `url` against the network mode and allowlist (no name resolution).
///
/// # Errors
/// See [`EgressError`].
pub fn check_url(
    url: &str,
    network: NetworkMode,
    allow: &[String],
) -> Result<EgressTarget, EgressError> {
    if network == NetworkMode::Off {
        return Err(EgressError::NetworkOff);
    }
    let bad = || EgressError::BadUrl(url.to_owned());
    let rest = url.strip_prefix("https://").ok_or_else(bad)?;
    let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
    if authority.contains('@') || authority.starts_with('[') || authority.is_empty() {
        return Err(bad());
    }
    let (host, port) = match authority.split_once(':') {
        Some((h, p)) => (h, p.parse::<u16>().map_err(|_| bad())?),
        None => (authority, 443),
    };
    let host = host.trim_end_matches('.').to_ascii_lowercase();
    let name_ok = !host.is_empty()
        && host
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'-');
    if !name_ok || host.parse::<IpAddr>().is_ok() {
        return Err(bad());
    }
    if !allow.iter().any(|a| a.eq_ignore_ascii_case(&host)) {
        return Err(EgressError::NotAllowed(host));
    }
    Ok(EgressTarget { host, port })
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

/// Checks every resolved address of `target`.
///
/// # Errors
/// [`EgressError::Blocked`] naming the first blocked address.
pub fn check_addrs(target: &EgressTarget, addrs: &[IpAddr]) -> Result<(), EgressError> {
    match addrs.iter().find(|ip| !ip_allowed(**ip)) {
        Some(ip) => Err(EgressError::Blocked {
            host: target.host.clone(),
            ip: *ip,
        }),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn allow() -> Vec<String> {
        vec!["hooks.example.com".into()]
    }

    #[test]
    fn urls_need_the_network_https_and_a_listed_host() {
        let ok = check_url(
            "https://Hooks.Example.com/x?y",
            NetworkMode::Allowlist,
            &allow(),
        )
        .unwrap();
        assert_eq!((ok.host.as_str(), ok.port), ("hooks.example.com", 443));
        assert_eq!(
            check_url("https://hooks.example.com/", NetworkMode::Off, &allow()),
            Err(EgressError::NetworkOff)
        );
        for bad in [
            "http://hooks.example.com/",
            "https://user@hooks.example.com/",
            "https://evil.com@hooks.example.com/",
            "https://127.0.0.1/",
            "https://[::1]/",
            "https:///x",
            "https://hooks.example.com:99999/",
        ] {
            assert!(
                matches!(
                    check_url(bad, NetworkMode::Allowlist, &allow()),
                    Err(EgressError::BadUrl(_))
                ),
                "{bad}"
            );
        }
        assert_eq!(
            check_url(
                "https://hooks.example.com.evil.com/",
                NetworkMode::Allowlist,
                &allow()
            ),
            Err(EgressError::NotAllowed("hooks.example.com.evil.com".into()))
        );
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
        let t = EgressTarget {
            host: "hooks.example.com".into(),
            port: 443,
        };
        assert!(check_addrs(&t, &["93.184.216.34".parse().unwrap()]).is_ok());
        assert!(
            check_addrs(
                &t,
                &[
                    "93.184.216.34".parse().unwrap(),
                    "10.0.0.1".parse().unwrap()
                ]
            )
            .is_err()
        );
    }
}

//! Network names in the config: egress hosts, gateway host names and browser origins.
//!
//! An egress allowlist entry must be a DNS host name, never an IP literal in any spelling
//! (`10.0.0.1`, `127.1`, `0x7f000001`, `2130706433`, `[::1]`): the egress check's private-range
//! blocking is about what a name resolves to, and an allowlisted literal would be a deliberate
//! hole past it. A name's last label is never all digits or hex-prefixed, which is what rules
//! the numeric spellings out.

/// Why `h` is not a host name, or `None` when it is one.
pub(crate) fn host_name_error(h: &str) -> Option<&'static str> {
    let chars_ok = !h.is_empty()
        && h.len() <= 253
        && h.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'-');
    if !chars_ok {
        return Some("must be a host name (no scheme, port or path)");
    }
    let last = h.trim_end_matches('.').rsplit('.').next().unwrap_or("");
    let numeric = last.bytes().all(|b| b.is_ascii_digit())
        || last.get(..2).is_some_and(|p| p.eq_ignore_ascii_case("0x"));
    if numeric {
        return Some("must be a host name, not an IP address");
    }
    if h.split('.').any(|l| l.is_empty() || l.len() > 63) && h != "." {
        return Some("must be a host name (empty or over-long label)");
    }
    None
}

/// Why `o` is not a browser origin (`http(s)://host[:port]`), or `None`.
pub(crate) fn origin_error(o: &str) -> Option<&'static str> {
    let Some((scheme, rest)) = o.split_once("://") else {
        return Some("must be an origin like https://admin.example (scheme and host)");
    };
    if !matches!(scheme, "http" | "https") {
        return Some("must be an http:// or https:// origin");
    }
    let rest = rest.trim_end_matches('/');
    let ok = !rest.is_empty()
        && !rest.contains('/')
        && rest
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b".-:[]".contains(&b));
    (!ok).then_some("must be an origin: scheme, host and optional port, no path")
}

/// Why `a` is not a `host:port` or `ip:port` (`[v6]:port`), or `None`.
pub(crate) fn host_port_error(a: &str) -> Option<&'static str> {
    if a.parse::<std::net::SocketAddr>().is_ok() {
        return None;
    }
    let ok = a.rsplit_once(':').is_some_and(|(h, p)| {
        host_name_error(h).is_none() && p.parse::<u16>().is_ok_and(|p| p > 0)
    });
    (!ok).then_some("must be host:port or ip:port (e.g. \"nas.lan:8123\", \"10.0.0.5:443\")")
}

/// Errors of `security.egress_allow`, `gateway.allowed_hosts` and `gateway.allowed_origins`.
pub(crate) fn errors(
    egress: &[String],
    hosts: &[String],
    origins: &[String],
) -> Vec<(String, String)> {
    let mut errs = Vec::new();
    for (i, h) in egress.iter().enumerate() {
        // `*.example.org`: every name under example.org.
        let name = h.strip_prefix("*.").unwrap_or(h);
        if let Some(m) = host_name_error(name).or_else(|| {
            (name.contains('*') || !name.contains('.') && h.starts_with("*."))
                .then_some("a pattern is `*.` followed by a domain with at least one dot")
        }) {
            errs.push((format!("security.egress_allow[{i}]"), m.into()));
        }
    }
    for (i, h) in hosts.iter().enumerate() {
        if let Some(m) = host_name_error(h) {
            errs.push((format!("gateway.allowed_hosts[{i}]"), m.into()));
        }
    }
    for (i, o) in origins.iter().enumerate() {
        if let Some(m) = origin_error(o) {
            errs.push((format!("gateway.allowed_origins[{i}]"), m.into()));
        }
    }
    errs
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ip_literals_in_any_spelling_are_not_host_names() {
        for bad in [
            "10.0.0.1",
            "127.1",
            "0x7f000001",
            "2130706433",
            "169.254.169.254",
            "[::1]",
            "::1",
            "a.0x10",
            "https://x.example",
            "x.example:443",
            "",
            "a..b",
        ] {
            assert!(host_name_error(bad).is_some(), "{bad} accepted");
        }
        for good in [
            "hooks.slack.com",
            "example.org",
            "a-b.c9.example",
            "localhost",
        ] {
            assert_eq!(host_name_error(good), None, "{good}");
        }
    }

    #[test]
    fn origins_table() {
        for good in [
            "https://admin.example",
            "http://127.0.0.1:8080",
            "https://x.example/",
        ] {
            assert_eq!(origin_error(good), None, "{good}");
        }
        for bad in [
            "admin.example",
            "ftp://x",
            "https://x.example/path",
            "https://",
            "null",
        ] {
            assert!(origin_error(bad).is_some(), "{bad} accepted");
        }
    }
}

//! Taint and grounding (D9), pure.
//!
//! A turn is *tainted* once untrusted content (tool output, memory, a webhook body…) entered the
//! model's context; [`Taint::sources`] says which. In a tainted turn a sensitive sink
//! ([`pincer_types::Sink`]) runs only if each of its security-relevant arguments is *grounded*:
//! it occurs in trusted content — the principal's own messages or the operator's instructions —
//! after the normalisation its [`ArgRole`] calls for ([`Grounding::grounded`]). Otherwise
//! [`crate::evaluate`] holds it for a human.
//!
//! The check is a containment test on text prepared once per turn ([`Grounding::new`]), so a
//! sensitive call costs a few substring searches.

use std::sync::Arc;

use pincer_types::{ArgRole, SinkArg};

/// Most bytes of untrusted text kept for attributing arguments to their source (the newest
/// are kept).
const MAX_UNTRUSTED: usize = 1 << 20;

/// Where the untrusted content in a turn came from; empty while the turn is clean.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Taint {
    /// Sources, in the order they entered (`tool:http.fetch`, `memory`, `webhook:deploy`, …).
    pub sources: Vec<String>,
    /// What trusted content the turn has, for grounding.
    pub grounding: Arc<Grounding>,
    /// The untrusted texts by source, lower-cased — only to tell an approver where an
    /// ungrounded argument came from.
    untrusted: Vec<(String, Arc<str>)>,
}

impl Taint {
    /// A clean turn whose trusted content is `grounding`.
    pub fn clean(grounding: Arc<Grounding>) -> Self {
        Self {
            sources: Vec::new(),
            grounding,
            untrusted: Vec::new(),
        }
    }

    /// Records that `text` from `source` entered the turn.
    pub fn add_content(&mut self, source: &str, text: &str) {
        self.add(source);
        self.untrusted
            .push((source.to_owned(), Arc::from(text.to_lowercase())));
        let mut total: usize = self.untrusted.iter().map(|(_, t)| t.len()).sum();
        while total > MAX_UNTRUSTED && self.untrusted.len() > 1 {
            total -= self.untrusted.remove(0).1.len();
        }
    }

    /// The first untrusted source whose text contains `arg`'s value, if any.
    pub fn origin(&self, arg: &SinkArg) -> Option<&str> {
        let v = arg.value.trim().to_lowercase();
        let v = if arg.role == ArgRole::Host {
            host_of(&v)
        } else {
            v
        };
        if v.is_empty() {
            return None;
        }
        self.untrusted
            .iter()
            .find(|(_, t)| t.contains(v.as_str()))
            .map(|(s, _)| s.as_str())
    }

    /// Whether untrusted content has entered the turn.
    pub fn is_tainted(&self) -> bool {
        !self.sources.is_empty()
    }

    /// Records that content from `source` entered the turn.
    pub fn add(&mut self, source: &str) {
        if !self.sources.iter().any(|s| s == source) {
            self.sources.push(source.to_owned());
        }
    }
}

/// Trusted content of a turn, normalised for each [`ArgRole`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Grounding {
    /// Whitespace runs collapsed to one space.
    text: String,
    /// `text` lower-cased.
    lower: String,
    /// Letters and digits only, upper-cased.
    compact: String,
    /// Every number in the text, canonical (`1,000.50` → `1000.5`).
    numbers: Vec<String>,
}

impl Grounding {
    /// Prepares `trusted` (the principal's messages, the operator's instructions).
    pub fn new<'a>(trusted: impl IntoIterator<Item = &'a str>) -> Self {
        let mut text = String::new();
        for t in trusted {
            if !text.is_empty() {
                text.push_str(" \n ");
            }
            text.push_str(t);
        }
        let text = collapse(&text);
        let lower = text.to_lowercase();
        let compact = text
            .chars()
            .filter(char::is_ascii_alphanumeric)
            .map(|c| c.to_ascii_uppercase())
            .collect();
        let numbers = numbers_in(&text);
        Self {
            text,
            lower,
            compact,
            numbers,
        }
    }

    /// Whether `arg` occurs in the trusted content. Empty values steer nothing and count as
    /// grounded.
    pub fn grounded(&self, arg: &SinkArg) -> bool {
        let v = arg.value.trim();
        if v.is_empty() {
            return true;
        }
        match arg.role {
            ArgRole::Host => {
                let h = host_of(v);
                !h.is_empty() && contains_bounded(&self.lower, &h, is_host_char)
            }
            ArgRole::Recipient => {
                let r = v.to_lowercase();
                let r = r
                    .strip_prefix("mailto:")
                    .unwrap_or(&r)
                    .trim_start_matches('@')
                    .to_owned();
                !r.is_empty() && contains_bounded(&self.lower, &r, is_address_char)
            }
            ArgRole::Account => {
                let c: String = v
                    .chars()
                    .filter(char::is_ascii_alphanumeric)
                    .map(|c| c.to_ascii_uppercase())
                    .collect();
                c.len() >= 4 && self.compact.contains(&c)
            }
            ArgRole::Amount => canonical_number(v).is_some_and(|n| self.numbers.contains(&n)),
            ArgRole::Text => self.text.contains(&collapse(v)),
        }
    }
}

fn collapse(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

fn is_host_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '-'
}

fn is_address_char(c: char) -> bool {
    c.is_alphanumeric() || matches!(c, '.' | '_' | '-' | '+')
}

/// `needle` occurs in `hay` with no `part` character right before or after it (so `bob@x.io`
/// is not grounded by `evilbob@x.io`, nor `x.io` by `x.iox`).
fn contains_bounded(hay: &str, needle: &str, part: fn(char) -> bool) -> bool {
    let mut from = 0;
    while let Some(i) = hay[from..].find(needle) {
        let start = from + i;
        let end = start + needle.len();
        let before = hay[..start].chars().next_back();
        let after = hay[end..].chars().next();
        // A dot after the match continues the name only if a name character follows it.
        let after_ok = match after {
            None => true,
            Some('.') => !hay[end + 1..].chars().next().is_some_and(part),
            Some(c) => !part(c),
        };
        if !before.is_some_and(part) && after_ok {
            return true;
        }
        from = start + needle.len().max(1);
        while !hay.is_char_boundary(from) {
            from += 1;
        }
    }
    false
}

/// The host of a URL or `host[:port]`, lower-cased, without `www.` or a trailing dot; an
/// explicit port is kept (`127.0.0.1:8080` is grounded only by that port, not by another
/// service on the same address).
fn host_of(v: &str) -> String {
    let v = v.to_lowercase();
    let rest = v.split_once("://").map_or(v.as_str(), |(_, r)| r);
    let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
    let hostport = authority.rsplit('@').next().unwrap_or("");
    let (host, port) = if let Some(r) = hostport.strip_prefix('[') {
        let (h, p) = r.split_once(']').unwrap_or((r, ""));
        (h, p.strip_prefix(':'))
    } else {
        match hostport.split_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (hostport, None),
        }
    };
    let host = host.trim_end_matches('.').trim_start_matches("www.");
    match port.filter(|p| !p.is_empty()) {
        Some(p) => format!("{host}:{p}"),
        None => host.to_owned(),
    }
}

/// `v` as a canonical decimal: currency signs, spaces and thousands separators dropped,
/// trailing fractional zeros removed.
fn canonical_number(v: &str) -> Option<String> {
    let mut s: String = v
        .chars()
        .filter(|c| c.is_ascii_digit() || matches!(c, '.' | ',' | '-'))
        .collect();
    // `1.000,50` (decimal comma) → `1000.50`; otherwise commas are thousands separators.
    if s.contains(',') && s.rfind(',') > s.rfind('.') && s.len() - s.rfind(',')? - 1 != 3 {
        s = s.replace('.', "").replace(',', ".");
    } else {
        s = s.replace(',', "");
    }
    if s.is_empty() || s.matches('.').count() > 1 || !s.chars().any(|c| c.is_ascii_digit()) {
        return None;
    }
    let (int, frac) = s.split_once('.').unwrap_or((&s, ""));
    let int = int.trim_start_matches('0');
    let frac = frac.trim_end_matches('0');
    let int = if int.is_empty() || int == "-" {
        format!("{int}0")
    } else {
        int.to_owned()
    };
    Some(if frac.is_empty() {
        int
    } else {
        format!("{int}.{frac}")
    })
}

/// Every number written in `text` (digits with `,` `.` separators), canonical.
fn numbers_in(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    for c in text.chars().chain(std::iter::once(' ')) {
        if c.is_ascii_digit() || (!cur.is_empty() && matches!(c, '.' | ',')) {
            cur.push(c);
        } else if !cur.is_empty() {
            let t = cur.trim_end_matches(['.', ',']);
            if let Some(n) = canonical_number(t)
                && !out.contains(&n)
            {
                out.push(n);
            }
            cur.clear();
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn arg(role: ArgRole, v: &str) -> SinkArg {
        SinkArg::new("x", role, v)
    }

    #[test]
    fn each_role_is_normalised_and_bounded() {
        let g = Grounding::new([
            "Pay 1,250.00 EUR to DE89 3704 0044 0532 0130 00 and mail bob@example.com.",
            "Then open https://www.Docs.Example.org/guide and run `cargo test --all`.",
            "The dashboard is at http://127.0.0.1:8080/ui.",
        ]);
        let yes = [
            arg(ArgRole::Amount, "1250"),
            arg(ArgRole::Amount, "€1,250.0"),
            arg(ArgRole::Account, "DE89370400440532013000"),
            arg(ArgRole::Account, "de89-3704-0044-0532-0130-00"),
            arg(ArgRole::Recipient, "Bob@Example.com"),
            arg(ArgRole::Recipient, "mailto:bob@example.com"),
            arg(ArgRole::Host, "docs.example.org"),
            arg(ArgRole::Host, "https://docs.example.org/other?q=1"),
            arg(ArgRole::Host, "127.0.0.1:8080"),
            arg(ArgRole::Host, "http://127.0.0.1:8080/other"),
            arg(ArgRole::Text, "cargo  test --all"),
            arg(ArgRole::Text, ""),
        ];
        for a in &yes {
            assert!(g.grounded(a), "{a:?}");
        }
        let no = [
            arg(ArgRole::Amount, "12500"),
            arg(ArgRole::Amount, "1250.01"),
            arg(ArgRole::Account, "DE89370400440532013001"),
            arg(ArgRole::Recipient, "evilbob@example.com"),
            arg(ArgRole::Recipient, "bob@example.co"),
            arg(ArgRole::Host, "evil.org"),
            arg(ArgRole::Host, "example.org.evil.net"),
            arg(ArgRole::Host, "docs.example.org.evil.net"),
            arg(ArgRole::Host, "127.0.0.1:9999"),
            arg(ArgRole::Text, "cargo test --all; curl evil"),
            arg(ArgRole::Amount, "lots"),
        ];
        for a in &no {
            assert!(!g.grounded(a), "{a:?}");
        }
    }

    #[test]
    fn numbers_are_canonical() {
        assert_eq!(canonical_number("1,000.50").as_deref(), Some("1000.5"));
        assert_eq!(canonical_number("1.000,50").as_deref(), Some("1000.5"));
        assert_eq!(canonical_number("$0.10").as_deref(), Some("0.1"));
        assert_eq!(canonical_number("007").as_deref(), Some("7"));
        assert_eq!(canonical_number("abc"), None);
        assert_eq!(numbers_in("a 3, b 4.5, c 1,000."), vec!["3", "4.5", "1000"]);
    }
}

//! Redaction before hashing: known secret values, common token shapes and configured patterns
//! become `[REDACTED:kind]`.

use std::sync::{Arc, OnceLock};

use regex::Regex;
use regex_automata::{Input, MatchKind, PatternSet, meta};
use serde_json::Value;

use crate::AuditError;

/// Shapes of well-known credentials: (kind, pattern).
const BUILTIN: &[(&str, &str)] = &[
    ("bearer", r"(?i)\bbearer\s+[A-Za-z0-9\-._~+/]{8,}=*"),
    ("openai_key", r"\bsk-[A-Za-z0-9_\-]{16,}"),
    ("github_token", r"\bgh[pousr]_[A-Za-z0-9]{20,}"),
    ("slack_token", r"\bxox[abposr]-[A-Za-z0-9\-]{10,}"),
    ("pincer_token", r"\bpnc_[A-Za-z0-9_\-]{20,}"),
    ("aws_key", r"\b(AKIA|ASIA)[A-Z0-9]{16}\b"),
    (
        "jwt",
        r"\beyJ[A-Za-z0-9_\-]{8,}\.[A-Za-z0-9_\-]{8,}\.[A-Za-z0-9_\-]{8,}",
    ),
];

/// Replaces secrets in text and in every string of a JSON value. Cheap to clone: clones share
/// the compiled patterns and their match caches.
#[derive(Debug, Clone)]
pub struct Redactor {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    secrets: Vec<String>,
    patterns: Vec<Pattern>,
    /// All patterns at once: most text matches none, and one pass over it says so (and which).
    /// Searched by a lazy DFA built as it goes; no full DFA is built up front.
    any: meta::Regex,
}

/// One shape: compiled on its own only when the set first finds it in a text. Building the
/// eight regexes (and the set, with full DFAs) at every start was a fifth of a `pincer ask`
/// (docs/PERFORMANCE.md, round 2); most processes never redact a shape.
#[derive(Debug)]
struct Pattern {
    kind: String,
    source: String,
    re: OnceLock<Option<Regex>>,
}

impl Pattern {
    /// The compiled pattern; `None` if it cannot be compiled alone (the set it belongs to was,
    /// so this is not expected; the caller then redacts the whole text).
    fn regex(&self) -> Option<&Regex> {
        self.re
            .get_or_init(|| Regex::new(&self.source).ok())
            .as_ref()
    }
}

/// The set of all patterns: reports every pattern that matches somewhere (as `RegexSet`).
fn set(patterns: &[Pattern]) -> Result<meta::Regex, String> {
    meta::Regex::builder()
        .configure(
            meta::Regex::config()
                .match_kind(MatchKind::All)
                .dfa(false)
                .onepass(false)
                .backtrack(false),
        )
        .build_many(
            &patterns
                .iter()
                .map(|p| p.source.as_str())
                .collect::<Vec<_>>(),
        )
        .map_err(|e| e.to_string())
}

/// Which patterns of `set` match somewhere in `text`.
fn matching(set: &meta::Regex, text: &str) -> PatternSet {
    let mut hits = PatternSet::new(set.pattern_len());
    set.which_overlapping_matches(&Input::new(text), &mut hits);
    hits
}

impl Redactor {
    /// A redactor for the built-in shapes, `secrets` (exact values Pincer holds) and extra
    /// `patterns` as `(kind, regex)`.
    ///
    /// # Errors
    /// [`AuditError::Pattern`] when a pattern does not compile.
    pub fn new(secrets: Vec<String>, extra: &[(String, String)]) -> Result<Self, AuditError> {
        // The built-in shapes are ASCII: compiled without Unicode classes (`\b`, `\s`, `(?i)` by
        // ASCII rules — a boundary next to any non-ASCII letter counts, so they redact at least
        // as much), which makes them several times smaller and faster to build.
        let builtin = BUILTIN
            .iter()
            .map(|(k, p)| ((*k).to_owned(), format!("(?-u){p}")));
        let patterns: Vec<Pattern> = builtin
            .chain(extra.iter().cloned())
            .map(|(kind, source)| Pattern {
                kind,
                source,
                re: OnceLock::new(),
            })
            .collect();
        let any = set(&patterns).map_err(|e| {
            // Name the pattern at fault when one fails on its own (only on this error path).
            match patterns
                .iter()
                .find_map(|p| Regex::new(&p.source).err().map(|e| (p, e)))
            {
                Some((p, e)) => AuditError::Pattern {
                    pattern: p.source.clone(),
                    message: e.to_string(),
                },
                None => AuditError::Pattern {
                    pattern: "(all patterns together)".into(),
                    message: e,
                },
            }
        })?;
        // Longest first, so a secret containing another is replaced whole.
        let mut secrets: Vec<String> = secrets.into_iter().filter(|s| s.len() >= 6).collect();
        secrets.sort_by_key(|s| std::cmp::Reverse(s.len()));
        Ok(Self {
            inner: Arc::new(Inner {
                secrets,
                patterns,
                any,
            }),
        })
    }

    /// Replaces only the exact secret values this redactor holds (API keys, tokens, every stored
    /// secret) — for text a model is about to read, where the shape patterns would also hide
    /// ordinary data. Borrowed when nothing matches.
    pub fn held_secrets<'a>(&self, s: &'a str) -> std::borrow::Cow<'a, str> {
        let inner = &*self.inner;
        if !inner.secrets.iter().any(|x| s.contains(x.as_str())) {
            return std::borrow::Cow::Borrowed(s);
        }
        let mut out = s.to_owned();
        for secret in &inner.secrets {
            if out.contains(secret.as_str()) {
                out = out.replace(secret.as_str(), "[REDACTED:secret]");
            }
        }
        std::borrow::Cow::Owned(out)
    }

    /// Redacts one string.
    pub fn text(&self, s: &str) -> String {
        self.redacted(s).unwrap_or_else(|| s.to_owned())
    }

    /// Whether `s` holds something to redact (a held secret or a shape).
    fn needs(&self, s: &str) -> bool {
        let inner = &*self.inner;
        inner.secrets.iter().any(|x| s.contains(x.as_str())) || inner.any.is_match(s)
    }

    /// The redacted text, or `None` when `s` holds nothing to redact.
    fn redacted(&self, s: &str) -> Option<String> {
        if !self.needs(s) {
            return None;
        }
        let inner = &*self.inner;
        let mut out = s.to_owned();
        for secret in &inner.secrets {
            if out.contains(secret.as_str()) {
                out = out.replace(secret.as_str(), "[REDACTED:secret]");
            }
        }
        // In order, each on the text as the ones before left it (as `is_match` then
        // `replace_all` per pattern would), asking the set which still match.
        let mut hits = matching(&inner.any, &out);
        for (i, p) in inner.patterns.iter().enumerate() {
            if !hits.contains(regex_automata::PatternID::new_unchecked(i)) {
                continue;
            }
            let Some(re) = p.regex() else {
                return Some(format!("[REDACTED:{}]", p.kind));
            };
            out = re
                .replace_all(&out, format!("[REDACTED:{}]", p.kind).as_str())
                .into_owned();
            hits = matching(&inner.any, &out);
        }
        Some(out)
    }

    /// Redacts every string (keys included) in a JSON value it is given, in place: what holds
    /// nothing to redact is kept, not copied (what [`Self::value`] gives for a borrowed value).
    pub fn redact(&self, mut v: Value) -> Value {
        self.redact_in_place(&mut v);
        v
    }

    fn redact_in_place(&self, v: &mut Value) {
        match v {
            Value::String(s) => {
                if let Some(r) = self.redacted(s) {
                    *s = r;
                }
            }
            Value::Array(items) => items.iter_mut().for_each(|i| self.redact_in_place(i)),
            Value::Object(map) => {
                // Keys cannot be changed in place: the map is rebuilt only when one must be.
                if map.keys().any(|k| self.needs(k)) {
                    *map = std::mem::take(map)
                        .into_iter()
                        .map(|(k, mut v)| {
                            self.redact_in_place(&mut v);
                            (self.text(&k), v)
                        })
                        .collect();
                } else {
                    map.values_mut().for_each(|v| self.redact_in_place(v));
                }
            }
            Value::Null | Value::Bool(_) | Value::Number(_) => {}
        }
    }

    /// Redacts every string (keys included) in a JSON value (a copy; see [`Self::redact`]).
    pub fn value(&self, v: &Value) -> Value {
        self.redact(v.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redacts_known_values_shapes_and_patterns() {
        let r = Redactor::new(
            vec!["hunter2-very-secret".into()],
            &[("ticket".into(), r"TKT-\d{4}".into())],
        )
        .unwrap();
        let cases = [
            ("pw hunter2-very-secret!", "pw [REDACTED:secret]!"),
            (
                "key sk-abcdefghijklmnopqrstuvwx",
                "key [REDACTED:openai_key]",
            ),
            (
                "ghp_abcdefghijklmnopqrstuvwxyz0123",
                "[REDACTED:github_token]",
            ),
            ("xoxb-1234567890-abcdef", "[REDACTED:slack_token]"),
            (
                "pnc_AbCdEfGhIjKlMnOpQrStUvWxYz0123456789-_AbCd",
                "[REDACTED:pincer_token]",
            ),
            ("AKIAABCDEFGHIJKLMNOP", "[REDACTED:aws_key]"),
            (
                "Authorization: Bearer abc.def.ghi-jkl",
                "Authorization: [REDACTED:bearer]",
            ),
            (
                "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NSJ9.c2lnbmF0dXJlc2ln",
                "[REDACTED:jwt]",
            ),
            ("see TKT-1234", "see [REDACTED:ticket]"),
            ("nothing here", "nothing here"),
        ];
        for (input, want) in cases {
            assert_eq!(r.text(input), want, "{input}");
        }
        let v = r.value(&serde_json::json!({"args": {"cmd": "curl -H 'Authorization: Bearer abcdefgh12345'"}, "n": 1}));
        assert!(!v.to_string().contains("abcdefgh12345"));
    }

    /// Every string is redacted, keys and nested ones included; the rest is kept as it was.
    #[test]
    fn values_are_redacted_in_place_keys_included() {
        let r = Redactor::new(vec!["hunter2-very-secret".into()], &[]).unwrap();
        let v = serde_json::json!({
            "a": "plain", "b": ["x", {"c": "pw hunter2-very-secret"}], "n": 1,
            "key sk-abcdefghijklmnopqrstuvwx": {"inner": "AKIAABCDEFGHIJKLMNOP"},
            "ok": [null, true, 2.5, "Bearer abcdefgh12345"],
        });
        let want = serde_json::json!({
            "a": "plain", "b": ["x", {"c": "pw [REDACTED:secret]"}], "n": 1,
            "key [REDACTED:openai_key]": {"inner": "[REDACTED:aws_key]"},
            "ok": [null, true, 2.5, "[REDACTED:bearer]"],
        });
        assert_eq!(r.value(&v), want);
        assert_eq!(r.redact(v), want);
        let untouched = serde_json::json!({"nothing": ["to", "hide", 3]});
        assert_eq!(r.redact(untouched.clone()), untouched);
    }

    #[test]
    fn bad_pattern_is_an_error_naming_it() {
        let e = Redactor::new(vec![], &[("x".into(), "(".into())]).unwrap_err();
        assert!(
            matches!(e, AuditError::Pattern { ref pattern, .. } if pattern == "("),
            "{e:?}"
        );
    }

    /// A shape is compiled on its own only once a text holds it; the others never are.
    #[test]
    fn shapes_are_compiled_only_when_found() {
        let r = Redactor::new(vec![], &[("ticket".into(), r"TKT-\d{4}".into())]).unwrap();
        let compiled = |r: &Redactor| -> Vec<String> {
            r.inner
                .patterns
                .iter()
                .filter(|p| p.re.get().is_some())
                .map(|p| p.kind.clone())
                .collect()
        };
        assert_eq!(
            r.text("plain text, nothing to hide"),
            "plain text, nothing to hide"
        );
        assert!(compiled(&r).is_empty());
        assert_eq!(r.text("see TKT-1234"), "see [REDACTED:ticket]");
        assert_eq!(compiled(&r), ["ticket"]);
    }

    /// Patterns apply in order, each to the text the ones before left: a later pattern sees an
    /// earlier one's replacement.
    #[test]
    fn later_patterns_see_earlier_replacements() {
        let r = Redactor::new(vec![], &[("marker".into(), r"REDACTED:openai_key".into())]).unwrap();
        assert_eq!(
            r.text("key sk-abcdefghijklmnopqrstuvwx"),
            "key [[REDACTED:marker]]"
        );
    }
}

//! Pincer's provenance markers (D9) — the tags it wraps content in (`<tool_output>`,
//! `<untrusted_content>`, `<pincer>`) — and [`defuse`], which makes untrusted text unable to
//! open or close one. Shared by the run loop (tool output, memory) and the gateway (webhook
//! payloads), so there is one definition of what counts as a marker.

/// Tags Pincer wraps content in; untrusted text must not be able to open or close one.
const MARKERS: &[&str] = &["tool_output", "untrusted_content", "pincer"];

/// Makes `body` (untrusted) unable to pose as a provenance marker: every `<` — or a look-alike
/// of it (fullwidth, small, angle brackets) — that starts one of Pincer's tags, opening or
/// closing, with any spacing and in any letter width or case, is written as `&lt;`.
pub fn defuse(body: &str) -> String {
    let mut out = String::with_capacity(body.len());
    let mut rest = body;
    while let Some((i, c)) = rest.char_indices().find(|(_, c)| is_lt(*c)) {
        out.push_str(&rest[..i]);
        let after = &rest[i + c.len_utf8()..];
        if starts_marker(after) {
            out.push_str("&lt;");
        } else {
            out.push(c);
        }
        rest = after;
    }
    out.push_str(rest);
    out
}

/// `<` and characters a model may read as one.
pub fn is_lt(c: char) -> bool {
    matches!(
        c,
        '<' | '\u{FF1C}'
            | '\u{FE64}'
            | '\u{2039}'
            | '\u{3008}'
            | '\u{27E8}'
            | '\u{1438}'
            | '\u{2329}'
    )
}

/// Whether `s` (right after a `<`) begins a marker name, after optional `/` and spaces, with
/// fullwidth letters folded, case ignored, and backslash escapes and invisible characters
/// skipped.
pub fn starts_marker(s: &str) -> bool {
    let folded: String = s
        .chars()
        .map(|c| match c {
            // Fullwidth ASCII → ASCII.
            '\u{FF01}'..='\u{FF5E}' => char::from_u32(c as u32 - 0xFEE0).unwrap_or(c),
            c => c,
        })
        // Escapes (`tool\_output` in Markdown) and invisible characters do not hide a name.
        .filter(|c| {
            !matches!(
                c,
                '\\' | '\u{200B}'..='\u{200D}' | '\u{2060}' | '\u{FEFF}' | '\u{00AD}'
            )
        })
        .skip_while(|c| c.is_whitespace() || *c == '/' || *c == '\u{2215}' || *c == '\u{FF0F}')
        .take(24)
        .collect::<String>()
        .to_lowercase();
    MARKERS.iter().any(|m| folded.starts_with(m))
}

//! Splitting a Markdown answer into messages of at most `limit` characters: between paragraphs
//! first, then lines, then sentences, then words; a fenced code block is never cut open — a
//! block too long for one message is split into several complete blocks with the same fence.

/// Splits `text` into chunks of at most `limit` characters (`limit` ≥ 32).
pub fn chunk(text: &str, limit: usize) -> Vec<String> {
    let limit = limit.max(32);
    let mut out: Vec<String> = Vec::new();
    let mut cur = String::new();
    let push = |piece: String, out: &mut Vec<String>, cur: &mut String| {
        let sep = if cur.is_empty() { 0 } else { 2 };
        if chars(cur) + sep + chars(&piece) <= limit {
            if sep > 0 {
                cur.push_str("\n\n");
            }
            cur.push_str(&piece);
        } else {
            if !cur.is_empty() {
                out.push(std::mem::take(cur));
            }
            *cur = piece;
        }
    };
    for block in blocks(text) {
        let pieces = match block {
            Block::Code { fence, body } => split_code(&fence, &body, limit),
            Block::Text(t) => split_text(&t, limit),
        };
        for p in pieces {
            push(p, &mut out, &mut cur);
        }
    }
    if !cur.trim().is_empty() {
        out.push(cur);
    }
    out
}

fn chars(s: &str) -> usize {
    s.chars().count()
}

enum Block {
    /// A fenced code block: its opening fence line (```` ```rust ````) and its lines.
    Code { fence: String, body: Vec<String> },
    /// A paragraph.
    Text(String),
}

fn blocks(text: &str) -> Vec<Block> {
    let mut out = Vec::new();
    let mut para: Vec<&str> = Vec::new();
    let mut lines = text.lines();
    let flush = |para: &mut Vec<&str>, out: &mut Vec<Block>| {
        if !para.is_empty() {
            out.push(Block::Text(para.join("\n")));
            para.clear();
        }
    };
    while let Some(line) = lines.next() {
        let trimmed = line.trim_start();
        if trimmed.starts_with("```") {
            flush(&mut para, &mut out);
            let fence = trimmed.to_owned();
            let ticks = fence.chars().take_while(|c| *c == '`').count();
            let mut body = Vec::new();
            for l in lines.by_ref() {
                let t = l.trim_start();
                if t.starts_with(&"`".repeat(ticks)) && t.trim_end().chars().all(|c| c == '`') {
                    break;
                }
                body.push(l.to_owned());
            }
            out.push(Block::Code { fence, body });
        } else if line.trim().is_empty() {
            flush(&mut para, &mut out);
        } else {
            para.push(line);
        }
    }
    flush(&mut para, &mut out);
    out
}

/// A code block as one or more complete blocks, each within `limit`.
fn split_code(fence: &str, body: &[String], limit: usize) -> Vec<String> {
    let ticks: String = fence.chars().take_while(|c| *c == '`').collect();
    let overhead = chars(fence) + chars(&ticks) + 2;
    let room = limit.saturating_sub(overhead).max(8);
    let mut out = Vec::new();
    let mut cur: Vec<String> = Vec::new();
    let mut size = 0;
    let close = |cur: &mut Vec<String>, out: &mut Vec<String>| {
        out.push(format!("{fence}\n{}\n{ticks}", cur.join("\n")));
        cur.clear();
    };
    for line in body {
        // A single line longer than the room is cut into pieces.
        for piece in hard_split(line, room) {
            let n = chars(&piece) + 1;
            if size + n > room && !cur.is_empty() {
                close(&mut cur, &mut out);
                size = 0;
            }
            size += n;
            cur.push(piece);
        }
    }
    if !cur.is_empty() || out.is_empty() {
        close(&mut cur, &mut out);
    }
    out
}

/// A paragraph as pieces within `limit`: by lines, then sentences, then words.
fn split_text(text: &str, limit: usize) -> Vec<String> {
    if chars(text) <= limit {
        return vec![text.to_owned()];
    }
    let mut units: Vec<String> = Vec::new();
    for line in text.lines() {
        if chars(line) <= limit {
            units.push(line.to_owned());
            continue;
        }
        for sentence in sentences(line) {
            if chars(&sentence) <= limit {
                units.push(sentence);
            } else {
                units.extend(hard_split(&sentence, limit));
            }
        }
    }
    let mut out = Vec::new();
    let mut cur = String::new();
    for u in units {
        if !cur.is_empty() && chars(&cur) + 1 + chars(&u) > limit {
            out.push(std::mem::take(&mut cur));
        }
        if !cur.is_empty() {
            cur.push('\n');
        }
        cur.push_str(&u);
    }
    if !cur.is_empty() {
        out.push(cur);
    }
    out
}

/// Sentences of a line, each keeping its ending punctuation.
fn sentences(line: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut chars = line.chars().peekable();
    while let Some(c) = chars.next() {
        cur.push(c);
        if matches!(c, '.' | '!' | '?') && chars.peek().is_some_and(|n| n.is_whitespace()) {
            out.push(cur.trim().to_owned());
            cur.clear();
        }
    }
    if !cur.trim().is_empty() {
        out.push(cur.trim().to_owned());
    }
    out
}

/// Cuts `s` into pieces of at most `limit` characters, at a space when there is one.
fn hard_split(s: &str, limit: usize) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest: Vec<char> = s.chars().collect();
    while rest.len() > limit {
        let window = &rest[..limit];
        let cut = window
            .iter()
            .rposition(|c| c.is_whitespace())
            .filter(|&i| i > limit / 2)
            .unwrap_or(limit);
        out.push(rest[..cut].iter().collect::<String>().trim_end().to_owned());
        rest = rest[cut..]
            .iter()
            .copied()
            .skip_while(|c| c.is_whitespace())
            .collect();
    }
    if !rest.is_empty() || out.is_empty() {
        out.push(rest.into_iter().collect());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn within(chunks: &[String], limit: usize) {
        for c in chunks {
            assert!(chars(c) <= limit, "{} > {limit}: {c:?}", chars(c));
        }
    }

    #[test]
    fn short_text_is_one_chunk() {
        assert_eq!(chunk("hello\n\nworld", 4096), ["hello\n\nworld"]);
    }

    #[test]
    fn a_5000_character_answer_splits_on_paragraphs_without_losing_a_word() {
        let para = |i: usize| format!("Paragraph {i}. {}", "word ".repeat(90).trim_end());
        let text: Vec<String> = (0..11).map(para).collect();
        let text = text.join("\n\n");
        assert!(chars(&text) > 5000);
        let chunks = chunk(&text, 4096);
        assert_eq!(chunks.len(), 2);
        within(&chunks, 4096);
        assert_eq!(chunks.join("\n\n"), text);
        // No paragraph is cut.
        for c in &chunks {
            assert!(c.starts_with("Paragraph "), "{c:.40}");
        }
    }

    #[test]
    fn code_blocks_are_never_cut_open() {
        let code: Vec<String> = (0..300).map(|i| format!("let x{i} = {i};")).collect();
        let text = format!("Intro.\n\n```rust\n{}\n```\n\nOutro.", code.join("\n"));
        let chunks = chunk(&text, 1000);
        within(&chunks, 1000);
        for c in &chunks {
            // Every chunk has balanced fences.
            assert_eq!(c.matches("```").count() % 2, 0, "{c}");
        }
        let all = chunks.join("\n");
        for i in 0..300 {
            assert!(all.contains(&format!("let x{i} = {i};")));
        }
        assert!(chunks.iter().filter(|c| c.contains("```rust")).count() >= 2);
    }

    #[test]
    fn long_lines_split_at_sentences_then_words() {
        let line = "This is a sentence that goes on. ".repeat(80);
        let chunks = chunk(line.trim(), 200);
        within(&chunks, 200);
        assert!(
            chunks.iter().all(|c| c.trim_end().ends_with('.')),
            "{chunks:?}"
        );
        let word = "x".repeat(1000);
        let chunks = chunk(&word, 300);
        within(&chunks, 300);
        assert_eq!(chunks.concat(), word);
    }

    #[test]
    fn multibyte_text_counts_characters_not_bytes() {
        let text = "é".repeat(5000);
        let chunks = chunk(&text, 4096);
        within(&chunks, 4096);
        assert_eq!(chunks.concat(), text);
    }
}

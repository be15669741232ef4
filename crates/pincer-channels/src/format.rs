//! Markdown → Telegram HTML (`parse_mode = "HTML"`).
//!
//! Telegram accepts only `b`, `i`, `u`, `s`, `code`, `pre`, `a`, `blockquote` and a few more,
//! and rejects a message with anything else or with a bare `<`, `>` or `&`. So: every piece of
//! text is escaped; Markdown structure maps to those tags; raw HTML in the model's answer is
//! shown as text, never passed through; links keep only `http`, `https`, `tg` and `mailto`
//! targets. A caller that still gets a parse error from Telegram falls back to plain text.

use pulldown_cmark::{CodeBlockKind, Event, HeadingLevel, Options, Parser, Tag, TagEnd};

/// Escapes text for Telegram HTML.
fn escape(s: &str, out: &mut String) {
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            c => out.push(c),
        }
    }
}

fn safe_link(url: &str) -> bool {
    let lower = url.trim().to_ascii_lowercase();
    ["http://", "https://", "tg://", "mailto:"]
        .iter()
        .any(|p| lower.starts_with(p))
}

/// Converts Markdown to Telegram HTML.
pub fn telegram_html(markdown: &str) -> String {
    let mut out = String::with_capacity(markdown.len() + 16);
    let mut lists: Vec<Option<u64>> = Vec::new();
    let mut links: Vec<bool> = Vec::new();
    let options = Options::ENABLE_STRIKETHROUGH | Options::ENABLE_TABLES;
    for event in Parser::new_ext(markdown, options) {
        match event {
            Event::Start(tag) => match tag {
                Tag::Paragraph | Tag::TableHead | Tag::TableRow => {}
                Tag::Heading { .. } | Tag::Strong => out.push_str("<b>"),
                Tag::Emphasis => out.push_str("<i>"),
                Tag::Strikethrough => out.push_str("<s>"),
                Tag::BlockQuote(_) => out.push_str("<blockquote>"),
                Tag::CodeBlock(kind) => {
                    out.push_str("<pre>");
                    match kind {
                        CodeBlockKind::Fenced(lang) if !lang.trim().is_empty() => {
                            out.push_str("<code class=\"language-");
                            let lang: String = lang
                                .trim()
                                .chars()
                                .take_while(|c| c.is_ascii_alphanumeric() || "+-_#.".contains(*c))
                                .collect();
                            escape(&lang, &mut out);
                            out.push_str("\">");
                        }
                        CodeBlockKind::Fenced(_) | CodeBlockKind::Indented => {
                            out.push_str("<code>");
                        }
                    }
                }
                Tag::List(start) => lists.push(start),
                Tag::Item => {
                    let depth = lists.len().saturating_sub(1);
                    out.push_str(&"  ".repeat(depth));
                    match lists.last_mut() {
                        Some(Some(n)) => {
                            out.push_str(&format!("{n}. "));
                            *n += 1;
                        }
                        _ => out.push_str("• "),
                    }
                }
                Tag::Link { dest_url, .. } => {
                    let ok = safe_link(&dest_url);
                    if ok {
                        out.push_str("<a href=\"");
                        escape(&dest_url, &mut out);
                        out.push_str("\">");
                    }
                    links.push(ok);
                }
                Tag::Image { .. } | Tag::Table(_) | Tag::TableCell => {}
                _ => {}
            },
            Event::End(tag) => match tag {
                TagEnd::Paragraph => out.push_str("\n\n"),
                TagEnd::Heading(level) => {
                    out.push_str("</b>");
                    out.push_str(if level == HeadingLevel::H1 {
                        "\n\n"
                    } else {
                        "\n"
                    });
                }
                TagEnd::Strong => out.push_str("</b>"),
                TagEnd::Emphasis => out.push_str("</i>"),
                TagEnd::Strikethrough => out.push_str("</s>"),
                TagEnd::BlockQuote(_) => {
                    trim_end(&mut out);
                    out.push_str("</blockquote>\n\n");
                }
                TagEnd::CodeBlock => {
                    if out.ends_with('\n') {
                        out.pop();
                    }
                    out.push_str("</code></pre>\n\n");
                }
                TagEnd::List(_) => {
                    lists.pop();
                    if lists.is_empty() {
                        out.push('\n');
                    }
                }
                TagEnd::Item => {
                    trim_end(&mut out);
                    out.push('\n');
                }
                TagEnd::Link if links.pop().unwrap_or(false) => out.push_str("</a>"),
                TagEnd::TableCell => out.push_str(" | "),
                TagEnd::TableRow | TagEnd::TableHead => {
                    trim_end(&mut out);
                    out.push('\n');
                }
                TagEnd::Table => out.push('\n'),
                _ => {}
            },
            Event::Text(t) => escape(&t, &mut out),
            Event::Code(t) => {
                out.push_str("<code>");
                escape(&t, &mut out);
                out.push_str("</code>");
            }
            // Raw HTML from the model is text, never markup.
            Event::Html(t) | Event::InlineHtml(t) => escape(&t, &mut out),
            Event::SoftBreak | Event::HardBreak => out.push('\n'),
            Event::Rule => out.push_str("——————\n\n"),
            Event::TaskListMarker(done) => out.push_str(if done { "☑ " } else { "☐ " }),
            Event::FootnoteReference(t) => escape(&t, &mut out),
            Event::InlineMath(t) | Event::DisplayMath(t) => escape(&t, &mut out),
        }
    }
    trim_end(&mut out);
    out
}

fn trim_end(s: &mut String) {
    let n = s.trim_end().len();
    s.truncate(n);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emphasis_code_and_links_map_to_telegram_tags() {
        assert_eq!(
            telegram_html("**bold** and *it* and `x < y` and ~~old~~"),
            "<b>bold</b> and <i>it</i> and <code>x &lt; y</code> and <s>old</s>"
        );
        assert_eq!(
            telegram_html("[site](https://example.com/?a=1&b=\"2\")"),
            "<a href=\"https://example.com/?a=1&amp;b=&quot;2&quot;\">site</a>"
        );
    }

    #[test]
    fn dangerous_links_and_raw_html_become_text() {
        assert_eq!(telegram_html("[x](javascript:alert(1))"), "x");
        let h = telegram_html("<script>alert('x')</script> & <b>not bold</b>");
        assert!(!h.contains("<script>") && !h.contains("<b>not"), "{h}");
        assert!(h.contains("&lt;script&gt;") && h.contains("&amp;"), "{h}");
    }

    #[test]
    fn code_blocks_keep_their_language_and_content() {
        let h = telegram_html("```rust\nfn main() { a < b && c > d }\n```");
        assert_eq!(
            h,
            "<pre><code class=\"language-rust\">fn main() { a &lt; b &amp;&amp; c &gt; d }</code></pre>"
        );
        let h = telegram_html("```evil\"><b>\nx\n```");
        assert!(h.starts_with("<pre><code class=\"language-evil\">"), "{h}");
    }

    #[test]
    fn headings_lists_and_paragraphs_read_well() {
        let h = telegram_html("# Title\n\nText one.\n\n- a\n- b\n\n1. x\n2. y");
        assert_eq!(h, "<b>Title</b>\n\nText one.\n\n• a\n• b\n\n1. x\n2. y");
    }

    #[test]
    fn every_tag_is_closed_for_odd_input() {
        for md in [
            "**unclosed",
            "*a **b* c**",
            "`",
            "[a](",
            "> quote\n> more",
            "|a|b|\n|-|-|\n|1|2|",
        ] {
            let h = telegram_html(md);
            for tag in ["b", "i", "s", "code", "pre", "a", "blockquote"] {
                let opens =
                    h.matches(&format!("<{tag}>")).count() + h.matches(&format!("<{tag} ")).count();
                let closes = h.matches(&format!("</{tag}>")).count();
                assert_eq!(opens, closes, "{tag} in {h:?} from {md:?}");
            }
        }
    }
}

//! A response body as text for the model.
//!
//! HTML becomes readable Markdown: `dom_smoothie` (a port of Mozilla's readability.js on
//! html5ever) finds the main content and writes it as Markdown — headings, lists, code, links
//! kept (made absolute); scripts, styles, navigation, footers and ads dropped. A page it does not
//! recognise as an article (a list, a form, a search result page) becomes the Markdown of its
//! whole body without scripts, styles, navigation, headers and footers. Text, JSON, XML and
//! other textual types come back as text; PDFs, images, archives and other binaries are
//! described (type, size), never dumped. Text is decoded in the charset the `Content-Type` (or an
//! HTML page's `<meta>`) names, UTF-8 otherwise; what does not decode becomes U+FFFD.

/// Most elements the readability pass scores (bounds its work on a huge page).
const MAX_ELEMENTS: usize = 50_000;
/// Most HTML bytes given to the parser (the rest is cut, and the result says so).
const MAX_HTML: usize = 2 << 20;
/// Nesting beyond which a page is read by the linear tag stripper instead of a DOM: HTML
/// parsing does work per tag proportional to the open elements, so a page of a million nested
/// `<div>`s would take minutes. Real pages nest a few dozen deep.
const MAX_DEPTH: usize = 512;

/// What the body was taken as.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// HTML, rendered as Markdown.
    Html,
    /// Text of some sort, as is.
    Text,
    /// Not shown.
    Binary,
}

impl Kind {
    /// The name in tool results.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Html => "markdown",
            Self::Text => "text",
            Self::Binary => "binary",
        }
    }
}

/// The extracted text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Extracted {
    /// How the body was read.
    pub kind: Kind,
    /// The page title (HTML).
    pub title: Option<String>,
    /// Markdown, text, or the description of a binary body.
    pub text: String,
}

/// Decides how to read a body from its content type (sniffing when there is none).
pub fn kind_of(content_type: Option<&str>, body: &[u8]) -> Kind {
    let mime = content_type
        .and_then(|c| c.split(';').next())
        .map(|m| m.trim().to_ascii_lowercase());
    match mime.as_deref() {
        Some("text/html" | "application/xhtml+xml") => Kind::Html,
        Some(m)
            if m.starts_with("text/")
                || m.ends_with("+json")
                || m.ends_with("+xml")
                || matches!(
                    m,
                    "application/json"
                        | "application/xml"
                        | "application/javascript"
                        | "application/x-ndjson"
                        | "application/yaml"
                        | "application/toml"
                ) =>
        {
            Kind::Text
        }
        Some(_) => Kind::Binary,
        None => {
            let head = String::from_utf8_lossy(&body[..body.len().min(512)]).to_ascii_lowercase();
            if head.trim_start().starts_with("<!doctype html") || head.contains("<html") {
                Kind::Html
            } else if std::str::from_utf8(&body[..body.len().min(4096)]).is_ok()
                && !body.iter().take(4096).any(|&b| b == 0)
            {
                Kind::Text
            } else {
                Kind::Binary
            }
        }
    }
}

/// Extracts `body` (from `url`, for absolute links).
pub fn extract(content_type: Option<&str>, body: &[u8], url: &str, raw: bool) -> Extracted {
    let kind = kind_of(content_type, body);
    match kind {
        Kind::Binary => Extracted {
            kind,
            title: None,
            text: format!(
                "[{} content, {} bytes: not shown]",
                content_type
                    .and_then(|c| c.split(';').next())
                    .unwrap_or("binary"),
                body.len()
            ),
        },
        Kind::Text => Extracted {
            kind,
            title: None,
            text: decode(content_type, body, false),
        },
        Kind::Html if raw => Extracted {
            kind: Kind::Text,
            title: None,
            text: decode(content_type, body, true),
        },
        Kind::Html => html(&decode(content_type, body, true), url),
    }
}

/// `body` as text: in the charset the `Content-Type` names, else (HTML) the one a `<meta>` in
/// the first 1 KiB names, else UTF-8; bytes that do not decode become U+FFFD.
fn decode(content_type: Option<&str>, body: &[u8], html: bool) -> String {
    let from_header = content_type.and_then(|c| {
        c.split(';')
            .skip(1)
            .filter_map(|p| p.split_once('='))
            .find(|(k, _)| k.trim().eq_ignore_ascii_case("charset"))
            .map(|(_, v)| v.trim().trim_matches('"').to_owned())
    });
    let from_meta = || {
        let head = String::from_utf8_lossy(&body[..body.len().min(1024)]).to_ascii_lowercase();
        let at = head.find("charset=")? + "charset=".len();
        let rest = head[at..].trim_start_matches(['"', '\'']);
        let end = rest
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '-' || c == '_'))
            .unwrap_or(rest.len());
        Some(rest[..end].to_owned())
    };
    let label = from_header.or_else(|| if html { from_meta() } else { None });
    let encoding = label
        .and_then(|l| encoding_rs::Encoding::for_label(l.as_bytes()))
        .unwrap_or(encoding_rs::UTF_8);
    let (text, _, _) = encoding.decode(body);
    text.into_owned()
}

fn html(html: &str, url: &str) -> Extracted {
    let mut end = html.len().min(MAX_HTML);
    while !html.is_char_boundary(end) {
        end -= 1;
    }
    let html = &html[..end];
    if nesting(html.as_bytes()) > MAX_DEPTH {
        return Extracted {
            kind: Kind::Html,
            title: None,
            text: strip_tags(html),
        };
    }
    let cfg = dom_smoothie::Config {
        text_mode: dom_smoothie::TextMode::Markdown,
        max_elements_to_parse: MAX_ELEMENTS,
        ..Default::default()
    };
    let doc = dom_query::Document::from(html);
    let page_title = doc.select("head title").text().trim().to_owned();
    // Site chrome is never content: removed before the readability pass looks for the article.
    doc.select("nav, aside, footer, [role=navigation], [role=banner], [role=contentinfo], form, iframe, noscript")
        .remove();
    if let Ok(mut r) = dom_smoothie::Readability::with_document(doc, Some(url), Some(cfg))
        && let Ok(article) = r.parse()
        && !article.text_content.trim().is_empty()
    {
        let title = Some(article.title.trim().to_owned())
            .filter(|t| !t.is_empty())
            .or_else(|| Some(page_title.clone()).filter(|t| !t.is_empty()));
        return Extracted {
            kind: Kind::Html,
            title,
            text: article.text_content.trim().to_owned(),
        };
    }
    // No article: the whole body (parsed again; readability consumed the first tree).
    let doc = dom_query::Document::from(html);
    let title = page_title;
    let skip = [
        "script", "style", "noscript", "nav", "header", "footer", "iframe", "svg", "form",
        "template", "head", "meta",
    ];
    let body = doc.select("body");
    let text = match body.get(0) {
        Some(node) => node.md(Some(&skip)).to_string(),
        None => doc.md(Some(&skip)).to_string(),
    };
    Extracted {
        kind: Kind::Html,
        title: Some(title).filter(|t| !t.is_empty()),
        text: text.trim().to_owned(),
    }
}

/// Elements without an end tag.
const VOID: &[&[u8]] = &[
    b"area", b"base", b"br", b"col", b"embed", b"hr", b"img", b"input", b"link", b"meta", b"param",
    b"source", b"track", b"wbr",
];

/// The deepest nesting of start tags, estimated in one pass over the bytes (void and
/// self-closing elements do not nest; end tags close one level).
pub fn nesting(html: &[u8]) -> usize {
    let (mut depth, mut max, mut i) = (0usize, 0usize, 0usize);
    while let Some(off) = html[i..].iter().position(|&b| b == b'<') {
        i += off + 1;
        let rest = &html[i..];
        if rest.first() == Some(&b'/') {
            depth = depth.saturating_sub(1);
            continue;
        }
        if !rest.first().is_some_and(u8::is_ascii_alphabetic) {
            continue;
        }
        let name_len = rest[..rest.len().min(64)]
            .iter()
            .position(|b| !b.is_ascii_alphanumeric())
            .unwrap_or(rest.len().min(64));
        let name = rest[..name_len].to_ascii_lowercase();
        // A tag's end within a bounded window, so `<a<a<a…` without `>` stays linear.
        let window = &rest[..rest.len().min(1024)];
        let close = window
            .iter()
            .position(|&b| b == b'>')
            .unwrap_or(window.len());
        let self_closing = close > 0 && rest.get(close - 1) == Some(&b'/');
        if !self_closing && !VOID.contains(&name.as_slice()) {
            depth += 1;
            max = max.max(depth);
        }
    }
    max
}

/// Text of an HTML page in one linear pass: comments, scripts and styles dropped, tags removed
/// (block tags become line breaks), the common entities decoded, blank runs collapsed.
pub fn strip_tags(html: &str) -> String {
    let lower = html.to_ascii_lowercase();
    let mut out = String::with_capacity(html.len() / 2);
    let mut i = 0;
    while i < html.len() {
        let Some(off) = html[i..].find('<') else {
            out.push_str(&html[i..]);
            break;
        };
        out.push_str(&html[i..i + off]);
        i += off;
        let rest = &lower[i..];
        let skip_to = |end: &str| rest.find(end).map_or(html.len(), |e| i + e + end.len());
        if rest.starts_with("<!--") {
            i = skip_to("-->");
        } else if rest.starts_with("<script") {
            i = skip_to("</script>");
        } else if rest.starts_with("<style") {
            i = skip_to("</style>");
        } else {
            let end = rest.find('>').map_or(html.len(), |e| i + e + 1);
            let tag = &rest[1..(end - i).min(rest.len())];
            let tag = tag.trim_start_matches('/');
            if [
                "p", "div", "br", "li", "h1", "h2", "h3", "h4", "h5", "h6", "tr", "pre", "section",
                "article",
            ]
            .iter()
            .any(|t| tag.starts_with(t))
            {
                out.push('\n');
            }
            i = end;
        }
    }
    let decoded = out
        .replace("&nbsp;", " ")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&#39;", "'")
        .replace("&amp;", "&");
    let mut text = String::with_capacity(decoded.len());
    let mut blank = 0;
    for line in decoded.lines().map(str::trim) {
        if line.is_empty() {
            blank += 1;
            if blank > 1 {
                continue;
            }
        } else {
            blank = 0;
        }
        text.push_str(line);
        text.push('\n');
    }
    text.trim().to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    const ARTICLE: &str = r#"<html><head><title>Backups guide</title><style>body{color:red}</style>
<script>alert("x")</script></head><body><nav><a href="/">Home</a> | <a href="/about">About</a></nav>
<article><h1>Backups guide</h1><p>Keep <b>three</b> copies of your data, on two media, one
<a href="/offsite">off site</a>.</p><p>Test restores monthly. This paragraph is long enough to
count as content for readability scoring, which wants some text with commas, periods, and so on.</p>
<ul><li>Daily: snapshots</li><li>Weekly: full copy</li></ul><pre><code>restic backup /srv</code></pre>
</article><footer>Copyright 2026 Example</footer></body></html>"#;

    #[test]
    fn an_article_becomes_markdown_with_absolute_links_and_no_chrome() {
        let e = extract(
            Some("text/html; charset=utf-8"),
            ARTICLE.as_bytes(),
            "https://example.org/a/",
            false,
        );
        assert_eq!(e.kind, Kind::Html);
        assert_eq!(e.title.as_deref(), Some("Backups guide"));
        assert!(e.text.contains("**three**"), "{}", e.text);
        assert!(
            e.text.contains("[off site](https://example.org/offsite)"),
            "{}",
            e.text
        );
        assert!(e.text.contains("- Daily: snapshots"), "{}", e.text);
        assert!(e.text.contains("restic backup /srv"), "{}", e.text);
        for gone in ["alert", "color:red", "About", "Copyright"] {
            assert!(!e.text.contains(gone), "{gone} in {}", e.text);
        }
    }

    #[test]
    fn a_page_without_an_article_still_reads() {
        let page = r#"<html><head><title>Items</title><script>var x = 1;</script></head><body>
<nav>menu</nav><ul id="items"><li><a href="/1">one</a></li><li>two</li></ul></body></html>"#;
        let e = extract(
            Some("text/html"),
            page.as_bytes(),
            "http://h.example/",
            false,
        );
        assert!(e.text.contains("two"), "{}", e.text);
        assert!(!e.text.contains("var x"), "{}", e.text);
        assert!(!e.text.contains("menu"), "{}", e.text);
    }

    #[test]
    fn deep_nesting_is_read_linearly() {
        assert_eq!(
            nesting(b"<p>a<br><img src=x/><b>b</b></p><div><div></div></div>"),
            2
        );
        // 400,000 open tags: under the 2 MiB cut, far over the depth limit.
        let deep = format!(
            "<html><body><script>bad()</script>{}deep &amp; done</body></html>",
            "<div>".repeat(400_000)
        );
        let t = std::time::Instant::now();
        let e = extract(Some("text/html"), deep.as_bytes(), "http://x/", false);
        assert_eq!(e.text, "deep & done");
        // Linear: 400,000 tags take a fraction of a second even unoptimised, where the DOM
        // would take minutes (a bound generous enough never to flake, tight enough to fail).
        assert!(
            t.elapsed() < std::time::Duration::from_secs(20),
            "{:?}",
            t.elapsed()
        );
    }

    #[test]
    fn types_are_read_or_described() {
        assert_eq!(kind_of(Some("application/json"), b"{}"), Kind::Text);
        assert_eq!(kind_of(Some("application/ld+json"), b"{}"), Kind::Text);
        assert_eq!(kind_of(Some("application/pdf"), b"%PDF-1.7"), Kind::Binary);
        assert_eq!(kind_of(None, b"<!DOCTYPE html><p>x"), Kind::Html);
        assert_eq!(kind_of(None, b"plain words"), Kind::Text);
        assert_eq!(kind_of(None, &[0u8, 159, 146, 150]), Kind::Binary);
        let pdf = extract(Some("application/pdf"), b"%PDF-1.7 ...", "http://x/", false);
        assert_eq!(pdf.text, "[application/pdf content, 12 bytes: not shown]");
        // Not UTF-8: replaced, not refused.
        let latin1 = extract(
            Some("text/plain; charset=iso-8859-1"),
            b"caf\xe9",
            "http://x/",
            false,
        );
        assert_eq!(latin1.text, "caf\u{e9}");
        // A page's <meta> names its charset when the header does not; what does not decode is
        // replaced, never refused.
        let meta = extract(
            Some("text/html"),
            b"<html><head><meta charset=\"windows-1252\"><title>x</title></head><body><p>\x93quoted\x94 caf\xe9</p></body></html>",
            "http://x/",
            false,
        );
        assert!(
            meta.text.contains("\u{201c}quoted\u{201d} caf\u{e9}"),
            "{}",
            meta.text
        );
        let broken = extract(Some("text/plain"), b"caf\xe9", "http://x/", false);
        assert_eq!(broken.text, "caf\u{fffd}");
    }

    #[test]
    fn malformed_html_never_panics() {
        let nasty = [
            format!(
                "<html><body>{}deep</body></html>",
                "<div>".repeat(1_000_000)
            ),
            "<html><body><div><div><div>".repeat(100),
            "<<<>>><a href=javascript:alert(1)>x</a><table><tr><td><p></table></p>".into(),
            "<html><head><title>".into(),
            "\u{0}\u{feff}<p>\u{202e}evil</p>".into(),
            "<svg><script>x</script></svg><math><mi>".into(),
            "<a".repeat(500_000),
            String::new(),
        ];
        for n in &nasty {
            let _ = extract(Some("text/html"), n.as_bytes(), "http://x/", false);
            let _ = extract(Some("text/html"), n.as_bytes(), "not a url", false);
        }
    }
}

//! Finding where a dotted key lives in a TOML text, so errors can point at a line.

use toml_edit::{Document, Item};

/// 1-based (line, column) of a byte offset.
pub(crate) fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let offset = offset.min(text.len());
    let before = &text.as_bytes()[..offset];
    let line = before.iter().filter(|&&b| b == b'\n').count() + 1;
    let col = before.iter().rev().take_while(|&&b| b != b'\n').count() + 1;
    (line, col)
}

/// The (line, column) of the deepest existing part of `key` (dotted) in `text`.
pub(crate) fn locate_key(text: &str, key: &str) -> (usize, usize) {
    let Ok(doc) = Document::parse(text) else {
        return (0, 0);
    };
    let mut best = None;
    let mut table = Some(doc.as_table() as &dyn toml_edit::TableLike);
    for part in key.split('.') {
        let Some(t) = table else { break };
        if let Some(k) = t.key(part) {
            best = k.span().or(best);
        }
        table = match t.get(part) {
            Some(Item::Table(inner)) => Some(inner as &dyn toml_edit::TableLike),
            Some(Item::Value(toml_edit::Value::InlineTable(inner))) => {
                Some(inner as &dyn toml_edit::TableLike)
            }
            _ => None,
        };
    }
    best.map(|s| line_col(text, s.start)).unwrap_or((0, 0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_nested_keys() {
        let text = "version = 1\n\n[agents.main]\nmodel = \"m\"\nprovider = \"x\"\n";
        assert_eq!(locate_key(text, "agents.main.provider"), (5, 1));
        assert_eq!(locate_key(text, "version"), (1, 1));
        assert_eq!(locate_key(text, "agents.main.missing").0, 3);
    }
}

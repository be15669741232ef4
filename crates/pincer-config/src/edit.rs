//! `pincer config get|set`: read one dotted key from the effective config, or change one key in
//! the file while keeping its comments and layout.

use toml_edit::{DocumentMut, Item, Table, Value};

use crate::{Config, ConfigError};

/// The effective value of a dotted key (defaults included), as TOML text.
///
/// # Errors
/// [`ConfigError::UnknownKey`] when the key does not exist.
pub fn get_value(config: &Config, key: &str) -> Result<String, ConfigError> {
    let unknown = || ConfigError::UnknownKey {
        key: key.to_owned(),
    };
    let root = toml::Value::try_from(config).map_err(|_| unknown())?;
    let mut cur = &root;
    for part in key.split('.') {
        cur = cur.get(part).ok_or_else(unknown)?;
    }
    Ok(match cur {
        toml::Value::String(s) => s.clone(),
        toml::Value::Table(_) => toml::to_string_pretty(cur).map_err(|_| unknown())?,
        other => other.to_string(),
    })
}

/// Returns `text` with `key` set to `raw`. `raw` is read as a TOML value when it parses as one
/// (`3`, `true`, `"x"`, `["a", "b"]`) and as a plain string otherwise. Missing tables are created.
/// The caller validates the result before writing it.
///
/// # Errors
/// [`ConfigError::Invalid`] when `text` is not TOML or the key cannot be set (a part is not a table).
pub fn set_value(
    path: &std::path::Path,
    text: &str,
    key: &str,
    raw: &str,
) -> Result<String, ConfigError> {
    let value: Value = raw.parse().unwrap_or_else(|_| Value::from(raw));
    insert(path, text, key, Item::Value(value))
}

/// Like [`set_value`] for a whole table given as an inline table (`{ a = 1 }`): written as a
/// `[a.b.c]` section, so later `set_value` calls can reach its keys.
///
/// # Errors
/// [`ConfigError::Invalid`] when `raw` is not an inline table or a parent is not a table.
pub fn set_table(
    path: &std::path::Path,
    text: &str,
    key: &str,
    raw: &str,
) -> Result<String, ConfigError> {
    let Ok(Value::InlineTable(inline)) = raw.parse::<Value>() else {
        return Err(invalid(path, key, "not an inline table".into()));
    };
    insert(path, text, key, Item::Table(inline.into_table()))
}

fn invalid(path: &std::path::Path, key: &str, message: String) -> ConfigError {
    ConfigError::Invalid {
        path: path.to_owned(),
        line: 0,
        column: 0,
        key: Some(key.to_owned()),
        message,
    }
}

/// Puts `item` at the dotted `key` of `text`, creating missing tables.
fn insert(
    path: &std::path::Path,
    text: &str,
    key: &str,
    item: Item,
) -> Result<String, ConfigError> {
    let invalid = |message: String| invalid(path, key, message);
    let mut doc: DocumentMut = text
        .parse()
        .map_err(|e: toml_edit::TomlError| invalid(e.to_string()))?;
    let parts: Vec<&str> = key.split('.').collect();
    let Some((last, tables)) = parts.split_last() else {
        return Err(invalid("empty key".into()));
    };
    if parts.iter().any(|p| p.is_empty()) {
        return Err(invalid("empty key segment".into()));
    }
    let mut table: &mut Table = doc.as_table_mut();
    for part in tables {
        let entry = table.entry(part).or_insert_with(|| {
            let mut t = Table::new();
            t.set_implicit(true);
            Item::Table(t)
        });
        table = entry
            .as_table_mut()
            .ok_or_else(|| invalid(format!("`{part}` is not a table")))?;
    }
    table.insert(last, item);
    Ok(doc.to_string())
}

/// Removes `key` (a value or a whole table); `None` when it is not there.
///
/// # Errors
/// [`ConfigError::Invalid`] when the text does not parse.
pub fn remove_value(
    path: &std::path::Path,
    text: &str,
    key: &str,
) -> Result<Option<String>, ConfigError> {
    let mut doc: DocumentMut =
        text.parse()
            .map_err(|e: toml_edit::TomlError| ConfigError::Invalid {
                path: path.to_owned(),
                line: 0,
                column: 0,
                key: Some(key.to_owned()),
                message: e.to_string(),
            })?;
    let parts: Vec<&str> = key.split('.').collect();
    let Some((last, tables)) = parts.split_last() else {
        return Ok(None);
    };
    let mut cur = doc.as_item_mut();
    for part in tables {
        match cur.get_mut(part) {
            Some(next) => cur = next,
            None => return Ok(None),
        }
    }
    let removed = cur
        .as_table_like_mut()
        .and_then(|t| t.remove(last))
        .is_some();
    Ok(removed.then(|| doc.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    #[test]
    fn tables_are_added_as_sections_and_removed_whole() {
        let p = Path::new("config.toml");
        let text = "version = 1\n";
        let t = set_table(
            p,
            text,
            "mcp.servers.a",
            "{ command = \"x\", args = [\"1\"] }",
        )
        .unwrap();
        assert!(t.contains("[mcp.servers.a]"), "{t}");
        let t = set_value(p, &t, "mcp.servers.a.enabled", "true").unwrap();
        let c: crate::Config = toml::from_str(&t).unwrap();
        assert!(c.mcp.servers["a"].enabled);
        let t = remove_value(p, &t, "mcp.servers.a").unwrap().unwrap();
        let c: crate::Config = toml::from_str(&t).unwrap();
        assert!(c.mcp.servers.is_empty());
        assert!(remove_value(p, &t, "mcp.servers.zz").unwrap().is_none());
    }

    #[test]
    fn set_keeps_comments_and_types_values() {
        let text = "# my comment\nversion = 1\n";
        let out = set_value(Path::new("c"), text, "security.approval_mode", "strict").unwrap();
        assert!(out.contains("# my comment"));
        assert!(out.contains("approval_mode = \"strict\""), "{out}");
        let out = set_value(Path::new("c"), &out, "version", "2").unwrap();
        assert!(out.contains("version = 2"));
    }

    #[test]
    fn get_reads_defaults() {
        let c = Config::new();
        assert_eq!(get_value(&c, "security.exec").unwrap(), "off");
        assert_eq!(get_value(&c, "gateway.bind").unwrap(), "127.0.0.1:7878");
        assert!(get_value(&c, "nope").is_err());
    }
}

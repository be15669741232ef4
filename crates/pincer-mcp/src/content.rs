//! What a `tools/call` result becomes for the model: its text content (images, audio and blobs
//! are described, not dumped), structured content as JSON when there is no text, the result cut
//! to the size limit — and, when the tool declared an `outputSchema`, the structured content
//! checked against it.

use serde_json::Value;

/// A rendered result.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rendered {
    /// The text for the model.
    pub text: String,
    /// The server marked the result as an error (`isError`).
    pub is_error: bool,
    /// Bytes cut off to respect the limit.
    pub truncated: usize,
}

/// Renders `result` in at most `max` bytes.
///
/// # Errors
/// A message when the result is not an object, or its structured content does not match
/// `output_schema`.
pub fn render(
    result: &Value,
    output_schema: Option<&Value>,
    max: usize,
) -> Result<Rendered, String> {
    let Value::Object(r) = result else {
        return Err("the tools/call result is not an object".into());
    };
    let is_error = r.get("isError").and_then(Value::as_bool) == Some(true);
    let structured = r.get("structuredContent");
    if let (Some(schema), false) = (output_schema, is_error) {
        match structured {
            Some(s) => {
                if let Err(e) = check(schema, s, "structuredContent") {
                    return Err(format!(
                        "the result does not match the tool's outputSchema: {e}"
                    ));
                }
            }
            None => {
                return Err(
                    "the tool declares an outputSchema but returned no structuredContent".into(),
                );
            }
        }
    }
    let mut parts: Vec<String> = Vec::new();
    if let Some(Value::Array(blocks)) = r.get("content") {
        for b in blocks {
            parts.push(block(b));
        }
    }
    if parts.is_empty()
        && let Some(s) = structured
    {
        parts.push(s.to_string());
    }
    let mut text = parts.join("\n");
    let mut truncated = 0;
    if text.len() > max {
        let mut end = max;
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        truncated = text.len() - end;
        text.truncate(end);
        text.push_str(&format!(
            "\n[… {truncated} more bytes cut: the result is over {max} bytes]"
        ));
    }
    Ok(Rendered {
        text,
        is_error,
        truncated,
    })
}

fn block(b: &Value) -> String {
    let kind = b["type"].as_str().unwrap_or("");
    match kind {
        "text" => b["text"].as_str().unwrap_or("").to_owned(),
        "image" | "audio" => format!(
            "[{kind}: {}, {} bytes of base64 not shown]",
            b["mimeType"].as_str().unwrap_or("unknown type"),
            b["data"].as_str().map_or(0, str::len)
        ),
        "resource_link" => format!(
            "[resource link: {} {}]",
            b["uri"].as_str().unwrap_or(""),
            b["name"].as_str().unwrap_or("")
        ),
        "resource" => match b["resource"]["text"].as_str() {
            Some(t) => t.to_owned(),
            None => format!(
                "[resource {}: binary, not shown]",
                b["resource"]["uri"].as_str().unwrap_or("")
            ),
        },
        other => format!("[content of type {other:?} not shown]"),
    }
}

/// Checks `v` against the subset of JSON Schema tools use for results: `type` (one or a list),
/// `properties`, `required`, `additionalProperties: false`, `items`, `enum`. Other keywords are
/// not checked.
pub fn check(schema: &Value, v: &Value, at: &str) -> Result<(), String> {
    let Value::Object(s) = schema else {
        return Ok(());
    };
    if let Some(t) = s.get("type") {
        let ok = match t {
            Value::String(t) => is_type(v, t),
            Value::Array(ts) => ts.iter().filter_map(Value::as_str).any(|t| is_type(v, t)),
            _ => true,
        };
        if !ok {
            return Err(format!("`{at}` should be {t}, got {}", kind(v)));
        }
    }
    if let Some(Value::Array(allowed)) = s.get("enum")
        && !allowed.contains(v)
    {
        return Err(format!("`{at}` is not one of the allowed values"));
    }
    if let Value::Object(obj) = v {
        if let Some(Value::Array(req)) = s.get("required") {
            for k in req.iter().filter_map(Value::as_str) {
                if !obj.contains_key(k) {
                    return Err(format!("`{at}.{k}` is required"));
                }
            }
        }
        let props = s.get("properties").and_then(Value::as_object);
        for (k, x) in obj {
            match props.and_then(|p| p.get(k)) {
                Some(ps) => check(ps, x, &format!("{at}.{k}"))?,
                None if s.get("additionalProperties") == Some(&Value::Bool(false)) => {
                    return Err(format!("`{at}.{k}` is not allowed"));
                }
                None => {}
            }
        }
    }
    if let (Value::Array(items), Some(is)) = (v, s.get("items")) {
        for (i, x) in items.iter().enumerate() {
            check(is, x, &format!("{at}[{i}]"))?;
        }
    }
    Ok(())
}

fn is_type(v: &Value, t: &str) -> bool {
    match t {
        "object" => v.is_object(),
        "array" => v.is_array(),
        "string" => v.is_string(),
        "number" => v.is_number(),
        "integer" => v.is_i64() || v.is_u64() || v.as_f64().is_some_and(|f| f.fract() == 0.0),
        "boolean" => v.is_boolean(),
        "null" => v.is_null(),
        _ => true,
    }
}

fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn text_images_and_structured_content() {
        let r = render(
            &json!({"content": [{"type": "text", "text": "hi"}, {"type": "image", "mimeType": "image/png", "data": "AAAA"}]}),
            None,
            1000,
        )
        .unwrap();
        assert_eq!(
            r.text,
            "hi\n[image: image/png, 4 bytes of base64 not shown]"
        );
        let r = render(
            &json!({"content": [], "structuredContent": {"t": 1}}),
            None,
            1000,
        )
        .unwrap();
        assert_eq!(r.text, r#"{"t":1}"#);
        let r = render(
            &json!({"content": [{"type": "text", "text": "bad"}], "isError": true}),
            None,
            1000,
        )
        .unwrap();
        assert!(r.is_error);
        assert!(render(&json!("x"), None, 10).is_err());
    }

    #[test]
    fn results_are_cut_at_the_limit_on_a_char_boundary() {
        let r = render(
            &json!({"content": [{"type": "text", "text": "é".repeat(100)}]}),
            None,
            11,
        )
        .unwrap();
        assert!(r.text.starts_with("ééééé\n[…"), "{}", r.text);
        assert_eq!(r.truncated, 190);
    }

    #[test]
    fn output_schema_mismatches_are_errors() {
        let schema = json!({"type": "object", "properties": {"temperature": {"type": "number"}, "conditions": {"type": "string"}},
                            "required": ["temperature", "conditions"], "additionalProperties": false});
        let ok =
            json!({"content": [], "structuredContent": {"temperature": 3.5, "conditions": "sun"}});
        assert!(render(&ok, Some(&schema), 100).is_ok());
        for bad in [
            json!({"content": [{"type": "text", "text": "x"}]}),
            json!({"structuredContent": {"temperature": "warm", "conditions": "sun"}}),
            json!({"structuredContent": {"temperature": 1}}),
            json!({"structuredContent": {"temperature": 1, "conditions": "x", "extra": 1}}),
            json!({"structuredContent": [1]}),
        ] {
            assert!(render(&bad, Some(&schema), 100).is_err(), "{bad}");
        }
        // An error result is not held to the schema.
        assert!(render(&json!({"isError": true, "content": []}), Some(&schema), 100).is_ok());
    }
}

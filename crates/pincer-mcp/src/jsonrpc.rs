//! JSON-RPC 2.0 messages as MCP uses them: requests with integer ids from us, responses and
//! notifications (and the odd request) from the server. Parsing never panics; anything that is
//! not a valid message is reported as [`Incoming::Malformed`] with a reason.

use serde_json::{Map, Value, json};

/// The protocol versions this client speaks, newest first. The server may answer any of them.
pub const PROTOCOL_VERSIONS: &[&str] = &["2025-11-25", "2025-06-18", "2025-03-26", "2024-11-05"];

/// A message from the server, classified.
#[derive(Debug, Clone, PartialEq)]
pub enum Incoming {
    /// A success response to our request `id`.
    Result {
        /// Our request id.
        id: u64,
        /// The `result` member.
        result: Value,
    },
    /// An error response to our request `id` (`None` when the server could not read the id).
    Error {
        /// Our request id, when the server gave one.
        id: Option<u64>,
        /// JSON-RPC error code.
        code: i64,
        /// Error message.
        message: String,
    },
    /// A notification.
    Notification {
        /// Method.
        method: String,
        /// Params (an empty object when absent).
        params: Value,
    },
    /// A request from the server (`ping`, `roots/list`, `sampling/createMessage`, …).
    Request {
        /// Its id, echoed in our answer.
        id: Value,
        /// Method.
        method: String,
    },
    /// Not a JSON-RPC message we can use.
    Malformed(String),
}

/// Parses one message (a JSON-RPC batch is split by the caller with [`parse_all`]).
pub fn parse(v: Value) -> Incoming {
    let Value::Object(mut m) = v else {
        return Incoming::Malformed("a message must be a JSON object".into());
    };
    if m.get("jsonrpc").and_then(Value::as_str) != Some("2.0") {
        return Incoming::Malformed("missing \"jsonrpc\": \"2.0\"".into());
    }
    let method = m.get("method").and_then(Value::as_str).map(str::to_owned);
    let id = m.remove("id");
    match (method, id) {
        (Some(method), None) => Incoming::Notification {
            method,
            params: m.remove("params").unwrap_or_else(|| json!({})),
        },
        (Some(method), Some(id)) => Incoming::Request { id, method },
        (None, id) => {
            let id_num = id.as_ref().and_then(Value::as_u64);
            if let Some(result) = m.remove("result") {
                match id_num {
                    Some(id) => Incoming::Result { id, result },
                    None => Incoming::Malformed("a result without a numeric id".into()),
                }
            } else if let Some(Value::Object(e)) = m.remove("error") {
                Incoming::Error {
                    id: id_num,
                    code: e.get("code").and_then(Value::as_i64).unwrap_or(0),
                    message: e
                        .get("message")
                        .and_then(Value::as_str)
                        .map_or_else(|| "(no message)".to_owned(), |s| crate::error::clip(s, 512)),
                }
            } else {
                Incoming::Malformed("neither a method, a result nor an error".into())
            }
        }
    }
}

/// Parses a line or body: one message or a batch (an array of messages).
pub fn parse_all(bytes: &[u8]) -> Vec<Incoming> {
    match serde_json::from_slice::<Value>(bytes) {
        Ok(Value::Array(items)) if !items.is_empty() => items.into_iter().map(parse).collect(),
        Ok(Value::Array(_)) => vec![Incoming::Malformed("an empty batch".into())],
        Ok(v) => vec![parse(v)],
        Err(e) => {
            let preview = String::from_utf8_lossy(&bytes[..bytes.len().min(80)]).into_owned();
            vec![Incoming::Malformed(format!(
                "not JSON ({e}); the line began {preview:?}"
            ))]
        }
    }
}

/// A request from us.
pub fn request(id: u64, method: &str, params: Option<Value>) -> Vec<u8> {
    let mut m = Map::new();
    m.insert("jsonrpc".into(), json!("2.0"));
    m.insert("id".into(), json!(id));
    m.insert("method".into(), json!(method));
    if let Some(p) = params {
        m.insert("params".into(), p);
    }
    serde_json::to_vec(&Value::Object(m)).unwrap_or_default()
}

/// A notification from us.
pub fn notification(method: &str, params: Option<Value>) -> Vec<u8> {
    let mut m = Map::new();
    m.insert("jsonrpc".into(), json!("2.0"));
    m.insert("method".into(), json!(method));
    if let Some(p) = params {
        m.insert("params".into(), p);
    }
    serde_json::to_vec(&Value::Object(m)).unwrap_or_default()
}

/// Our answer to a server's request: `{}` for `ping`, "method not found" for everything else
/// (this client offers no roots, sampling or elicitation).
pub fn answer(id: &Value, method: &str) -> Vec<u8> {
    let v = if method == "ping" {
        json!({"jsonrpc": "2.0", "id": id, "result": {}})
    } else {
        json!({"jsonrpc": "2.0", "id": id,
               "error": {"code": -32601, "message": format!("method not supported by this client: {method}")}})
    };
    serde_json::to_vec(&v).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classifies_messages() {
        let p = |s: &str| parse_all(s.as_bytes()).remove(0);
        assert_eq!(
            p(r#"{"jsonrpc":"2.0","id":3,"result":{"a":1}}"#),
            Incoming::Result {
                id: 3,
                result: json!({"a":1})
            }
        );
        assert!(matches!(
            p(r#"{"jsonrpc":"2.0","id":3,"error":{"code":-32602,"message":"bad"}}"#),
            Incoming::Error {
                id: Some(3),
                code: -32602,
                ..
            }
        ));
        assert!(matches!(
            p(r#"{"jsonrpc":"2.0","method":"notifications/tools/list_changed"}"#),
            Incoming::Notification { .. }
        ));
        assert!(matches!(
            p(r#"{"jsonrpc":"2.0","id":"x","method":"ping"}"#),
            Incoming::Request { .. }
        ));
        for bad in [
            "hello world",
            "[]",
            "42",
            r#"{"id":1,"result":{}}"#,
            r#"{"jsonrpc":"2.0","id":"s","result":{}}"#,
            r#"{"jsonrpc":"2.0","id":1}"#,
            r#"{"jsonrpc":"2.0","id":1,"error":"x"}"#,
        ] {
            assert!(matches!(p(bad), Incoming::Malformed(_)), "{bad}");
        }
        assert_eq!(
            parse_all(br#"[{"jsonrpc":"2.0","method":"a"},{"jsonrpc":"2.0","method":"b"}]"#).len(),
            2
        );
    }

    #[test]
    fn answers_ping_and_refuses_the_rest() {
        let a: Value = serde_json::from_slice(&answer(&json!(7), "ping")).unwrap();
        assert_eq!(a["result"], json!({}));
        let a: Value =
            serde_json::from_slice(&answer(&json!("k"), "sampling/createMessage")).unwrap();
        assert_eq!(a["error"]["code"], -32601);
        assert_eq!(a["id"], "k");
    }
}

//! The OpenAPI 3.1 document, generated from [`routes`]: every route with its access, its
//! success status (201 for a created task or job, 202 for an accepted hook event), its path and
//! query parameters, its request body and its response schema, and the typed error shape every
//! failure uses.

use serde_json::{Value, json};

use crate::{Access, routes};

/// A query parameter: name, JSON type, description.
type Param = (&'static str, &'static str, &'static str);

/// What [`routes`] does not carry: how a route answers and what it takes in the query string.
struct Meta {
    /// Success status and its description.
    success: &'static [(u16, &'static str)],
    /// Query parameters.
    query: &'static [Param],
    /// Response schema (a `$ref` or an inline schema).
    response: fn() -> Value,
}

const LIMIT: Param = ("limit", "integer", "most items returned");

fn meta(method: &str, path: &str) -> Meta {
    let ok = &[(200, "OK")];
    let m = |success, query, response| Meta {
        success,
        query,
        response,
    };
    match (method, path) {
        ("GET", "/healthz" | "/readyz") => {
            m(ok, &[], || json!({"$ref": "#/components/schemas/Status"}))
        }
        ("GET", "/openapi.json") => m(
            ok,
            &[],
            || json!({"type": "object", "description": "This document"}),
        ),
        ("POST", "/v1/tasks") => m(
            &[
                (201, "Created"),
                (200, "An existing task with the same idempotency key"),
            ],
            &[],
            || {
                json!({"type": "object", "required": ["task", "created"], "properties": {
                "task": {"$ref": "#/components/schemas/Task"}, "created": {"type": "boolean"}}})
            },
        ),
        ("GET", "/v1/tasks") => m(
            ok,
            &[
                (
                    "status",
                    "string",
                    "only tasks in this state (QUEUED, RUNNING, …)",
                ),
                LIMIT,
            ],
            || {
                json!({"type": "object", "required": ["tasks"], "properties": {
                "tasks": {"type": "array", "items": {"$ref": "#/components/schemas/Task"}}}})
            },
        ),
        ("GET", "/v1/tasks/{id}") | ("POST", "/v1/tasks/{id}/cancel") => m(
            ok,
            if method == "GET" {
                &[(
                    "wait_secs",
                    "integer",
                    "wait up to this many seconds (≤ 60) for the task to end or wait for an approval",
                )]
            } else {
                &[]
            },
            || {
                json!({"type": "object", "required": ["task"], "properties": {
                "task": {"$ref": "#/components/schemas/Task"}}})
            },
        ),
        ("GET", "/v1/approvals") => m(
            ok,
            &[
                (
                    "status",
                    "string",
                    "only approvals in this state (PENDING, APPROVED, …)",
                ),
                LIMIT,
            ],
            || {
                json!({"type": "object", "required": ["approvals"], "properties": {
                "approvals": {"type": "array", "items": {"$ref": "#/components/schemas/Approval"}}}})
            },
        ),
        ("POST", "/v1/approvals/{id}/decision") => m(ok, &[], || {
            json!({"type": "object", "required": ["approval"], "properties": {
                "approval": {"$ref": "#/components/schemas/Approval"}}})
        }),
        ("GET", "/v1/audit-events") => m(
            ok,
            &[
                (
                    "type",
                    "string",
                    "only events whose type starts with this (`tool.`)",
                ),
                (
                    "after",
                    "integer",
                    "only events after this sequence number (paging cursor)",
                ),
                LIMIT,
            ],
            || {
                json!({"type": "object", "required": ["events"], "properties": {
                "events": {"type": "array", "items": {"type": "object", "required": ["seq", "ts", "event"],
                    "properties": {"seq": {"type": "integer"}, "ts": {"type": "string"}, "event": {"type": "object"}}}},
                "more": {"type": "boolean"},
                "next_after": {"type": ["integer", "null"]}}})
            },
        ),
        ("GET", "/v1/usage") => m(
            ok,
            &[
                ("by", "string", "agent (default), session, user or model"),
                (
                    "since",
                    "string",
                    "RFC 3339, a date (2026-12-01) or a span back (7d, 24h)",
                ),
            ],
            || {
                let total = json!({"type": "object", "required": ["key", "calls", "input_tokens", "output_tokens", "cost_usd", "unpriced_calls"],
                    "properties": {"key": {"type": "string"}, "calls": {"type": "integer"},
                        "input_tokens": {"type": "integer"}, "output_tokens": {"type": "integer"},
                        "cost_usd": {"type": "number"}, "unpriced_calls": {"type": "integer"}}});
                json!({"type": "object", "required": ["by", "rows", "total"], "properties": {
                    "by": {"type": "string"}, "since": {"type": ["string", "null"]},
                    "rows": {"type": "array", "items": total}, "total": total}})
            },
        ),
        ("GET", "/v1/events") => m(
            &[(200, "text/event-stream of task and approval events")],
            &[],
            || json!({"type": "string", "description": "Server-sent events; resume with Last-Event-ID"}),
        ),
        ("POST", "/v1/channels/{channel}/webhook") => m(ok, &[], || json!({"type": "object"})),
        ("POST", "/v1/hooks/{name}") => m(
            &[(202, "Accepted (or a duplicate of an accepted body)")],
            &[],
            || {
                json!({"type": "object", "required": ["task", "created"], "properties": {
                "task": {"type": "string"}, "created": {"type": "boolean"},
                "duplicate": {"type": "boolean"}}})
            },
        ),
        ("GET", "/v1/jobs") => m(ok, &[], || {
            json!({"type": "object", "required": ["jobs"], "properties": {
                "jobs": {"type": "array", "items": {"$ref": "#/components/schemas/Job"}}}})
        }),
        ("POST", "/v1/jobs") => m(&[(201, "Created")], &[], || {
            json!({"type": "object", "required": ["job"], "properties": {
                "job": {"$ref": "#/components/schemas/Job"}}})
        }),
        ("GET" | "POST", "/v1/jobs/{name}" | "/v1/jobs/{name}/{action}") => m(ok, &[], || {
            json!({"type": "object", "properties": {
                "job": {"$ref": "#/components/schemas/Job"},
                "runs": {"type": "array", "items": {"type": "object"}}}})
        }),
        ("DELETE", "/v1/jobs/{name}") => m(
            ok,
            &[],
            || json!({"type": "object", "properties": {"removed": {"type": "string"}}}),
        ),
        ("GET", "/v1/jobs/{name}/runs") => m(ok, &[LIMIT], || {
            json!({"type": "object", "required": ["runs"], "properties": {
                "runs": {"type": "array", "items": {"type": "object"}}}})
        }),
        ("POST", "/v1/pairings/{channel}/{code}/approve") => m(ok, &[], || {
            json!({"type": "object", "required": ["pairing"], "properties": {
                "pairing": {"type": "object"}}})
        }),
        ("GET", "/v1/pairings/{channel}") => m(ok, &[], || {
            json!({"type": "object", "required": ["pairings"], "properties": {
                "pairings": {"type": "array", "items": {"type": "object"}}}})
        }),
        ("POST", "/v1/chat/completions") => m(
            ok,
            &[],
            || json!({"type": "object", "description": "An OpenAI chat.completion (or chat.completion.chunk events when stream = true)"}),
        ),
        ("GET", "/v1/models") => m(ok, &[], || {
            json!({"type": "object", "required": ["object", "data"], "properties": {
                "object": {"type": "string"},
                "data": {"type": "array", "items": {"type": "object", "properties": {
                    "id": {"type": "string"}, "object": {"type": "string"},
                    "owned_by": {"type": "string"}}}}}})
        }),
        ("GET", "/v1/mcp/servers") => m(ok, &[], || {
            json!({"type": "array", "items": {"type": "object",
                "required": ["server", "transport", "enabled", "status"], "properties": {
                "server": {"type": "string"}, "transport": {"type": "string", "enum": ["stdio", "http"]},
                "enabled": {"type": "boolean"},
                "approved_sha256": {"type": ["string", "null"]},
                "seen_sha256": {"type": ["string", "null"]},
                "status": {"type": "string"}}}})
        }),
        _ => m(ok, &[], || json!({"type": "object"})),
    }
}

/// The names in `{…}` of a path.
fn path_params(path: &str) -> impl Iterator<Item = &str> {
    path.split('/')
        .filter_map(|seg| seg.strip_prefix('{').and_then(|s| s.strip_suffix('}')))
}

/// The document.
pub fn openapi() -> Value {
    let mut paths = serde_json::Map::new();
    for (def, _) in routes() {
        let meta = meta(def.method, def.path);
        let mut responses = serde_json::Map::new();
        for (status, description) in meta.success {
            let media = if def.path == "/v1/events" {
                "text/event-stream"
            } else {
                "application/json"
            };
            responses.insert(
                status.to_string(),
                json!({"description": description,
                       "content": {media: {"schema": (meta.response)()}}}),
            );
        }
        responses.insert(
            "default".into(),
            json!({"description": "Error",
                   "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}),
        );
        let mut parameters: Vec<Value> = path_params(def.path)
            .map(|name| {
                json!({"name": name, "in": "path", "required": true, "schema": {"type": "string"}})
            })
            .collect();
        parameters.extend(meta.query.iter().map(|(name, ty, description)| {
            json!({"name": name, "in": "query", "required": false,
                   "description": description, "schema": {"type": ty}})
        }));
        let mut op = json!({"summary": def.summary, "responses": responses});
        if !parameters.is_empty() {
            op["parameters"] = Value::Array(parameters);
        }
        match def.access {
            Access::Scoped(scope) => op["security"] = json!([{"bearer": [scope.as_str()]}]),
            Access::ChannelSecret => op["security"] = json!([{"channelSecret": []}]),
            Access::HookSecret => op["security"] = json!([{"hookSignature": []}, {"bearer": []}]),
            Access::Public => {}
        }
        if let Some(body) = def.body {
            op["requestBody"] = json!({
                "required": true,
                "content": {"application/json": {"schema": body()}}
            });
        }
        let entry = paths
            .entry(def.path.to_owned())
            .or_insert_with(|| json!({}));
        entry[def.method.to_ascii_lowercase()] = op;
    }
    json!({
        "openapi": "3.1.0",
        "info": {"title": "Pincer", "version": env!("CARGO_PKG_VERSION")},
        "components": {
            "securitySchemes": {
                "bearer": {"type": "http", "scheme": "bearer"},
                "channelSecret": {"type": "apiKey", "in": "header", "name": "X-Telegram-Bot-Api-Secret-Token"},
                "hookSignature": {"type": "apiKey", "in": "header", "name": "X-Pincer-Signature",
                                  "description": "sha256=<hex HMAC-SHA256 of the body>; the header name is configurable per hook"}
            },
            "schemas": schemas(),
        },
        "paths": paths,
    })
}

fn schemas() -> Value {
    let time = json!({"type": "string", "format": "date-time"});
    let opt_time = json!({"type": ["string", "null"], "format": "date-time"});
    let opt_str = json!({"type": ["string", "null"]});
    json!({
        "Error": {"type": "object", "required": ["error"], "properties": {"error": {
            "type": "object", "required": ["code", "message"], "properties": {
                "code": {"type": "string", "description": "stable machine-readable code"},
                "message": {"type": "string"}}}}},
        "Status": {"type": "object", "properties": {"status": {"type": "string"}}},
        "Task": {"type": "object", "required": ["id", "agent", "session_key", "input", "status", "created_at", "updated_at", "kind"],
            "properties": {
                "id": {"type": "string"}, "agent": {"type": "string"}, "session_key": {"type": "string"},
                "input": {"type": "string"},
                "status": {"type": "string", "enum": ["QUEUED", "RUNNING", "WAITING_APPROVAL", "SUCCEEDED", "FAILED", "CANCELED", "TIMED_OUT"]},
                "idempotency_key": opt_str, "lease_owner": opt_str, "lease_until": opt_time,
                "created_at": time, "updated_at": time, "started_at": opt_time, "ended_at": opt_time,
                "deadline": opt_time, "output": opt_str, "error": opt_str, "run_dir": opt_str,
                "kind": {"type": "string", "enum": ["message", "heartbeat"]},
                "usage": {"type": ["object", "null"]}}},
        "Approval": {"type": "object", "required": ["id", "tool", "digest", "tier", "reason", "status", "created_at", "expires_at"], "properties": {
            "id": {"type": "string"}, "task": opt_str, "tool": {"type": "string"},
            "digest": {"type": "string"}, "tier": {"type": "string"}, "reason": {"type": "string"},
            "detail": {}, "requester": {"type": "string"},
            "status": {"type": "string", "enum": ["PENDING", "APPROVED", "DENIED", "EXPIRED"]},
            "decided_by": opt_str, "created_at": time, "expires_at": time, "decided_at": opt_time,
            "taint_sources": {"type": "array", "items": {"type": "string"},
                "description": "Where the turn's untrusted content came from, when the action was held because of it (D9)"}}},
        "Job": {"type": "object", "required": ["name", "agent", "kind", "spec", "tz", "message", "enabled"], "properties": {
            "name": {"type": "string"}, "agent": {"type": "string"},
            "kind": {"type": "string", "enum": ["at", "every", "cron"]}, "spec": {"type": "string"},
            "tz": {"type": "string"}, "message": {"type": "string"}, "mode": {"type": "string"},
            "missed": {"type": "string"}, "timeout_secs": {"type": "integer"}, "enabled": {"type": "boolean"},
            "next_run": opt_time, "created_at": time, "deliver": opt_str, "jitter_secs": {"type": "integer"}}},
    })
}

//! Numbered Postgres migrations, applied in order in one transaction each, under an advisory
//! lock (two processes starting at once take turns). The same tables and columns as the SQLite
//! schema, in Postgres types (`TIMESTAMPTZ`, `BIGINT`), plus the constraints that make several
//! processes safe.

use crate::StoreError;

use super::db;

/// Advisory lock key for migrations ("pincer" in ASCII).
const LOCK: i64 = 0x7069_6e63_6572;

const MIGRATIONS: &[(i64, &str)] = &[
    (
        1,
        r"
CREATE TABLE tasks (
    id              TEXT PRIMARY KEY,
    seq             BIGSERIAL UNIQUE,
    agent           TEXT NOT NULL,
    session_key     TEXT NOT NULL,
    input           TEXT NOT NULL,
    status          TEXT NOT NULL,
    idempotency_key TEXT UNIQUE,
    lease_owner     TEXT,
    lease_until     TIMESTAMPTZ,
    created_at      TIMESTAMPTZ NOT NULL,
    updated_at      TIMESTAMPTZ NOT NULL,
    started_at      TIMESTAMPTZ,
    ended_at        TIMESTAMPTZ,
    deadline        TIMESTAMPTZ,
    output          TEXT,
    error           TEXT,
    run_dir         TEXT,
    kind            TEXT NOT NULL DEFAULT 'message',
    input_tokens    BIGINT,
    output_tokens   BIGINT
);
CREATE INDEX tasks_queued ON tasks (seq) WHERE status = 'QUEUED';
-- One active task per session, across every process: enforced by the database.
CREATE UNIQUE INDEX tasks_one_active_per_session ON tasks (session_key)
    WHERE status IN ('RUNNING', 'WAITING_APPROVAL');
CREATE INDEX tasks_leased ON tasks (lease_until) WHERE lease_until IS NOT NULL;
CREATE INDEX tasks_deadline ON tasks (deadline) WHERE deadline IS NOT NULL;
",
    ),
    (
        2,
        r"
CREATE TABLE tokens (
    name         TEXT PRIMARY KEY,
    hash         TEXT NOT NULL UNIQUE,
    scopes       TEXT NOT NULL,
    created_at   TIMESTAMPTZ NOT NULL,
    expires_at   TIMESTAMPTZ,
    revoked_at   TIMESTAMPTZ,
    last_used_at TIMESTAMPTZ
);
CREATE TABLE approvals (
    id         TEXT PRIMARY KEY,
    task_id    TEXT,
    tool       TEXT NOT NULL,
    digest     TEXT NOT NULL,
    tier       TEXT NOT NULL,
    reason     TEXT NOT NULL,
    detail     TEXT NOT NULL,
    requester  TEXT NOT NULL,
    status     TEXT NOT NULL,
    decided_by TEXT,
    created_at TIMESTAMPTZ NOT NULL,
    expires_at TIMESTAMPTZ NOT NULL,
    decided_at TIMESTAMPTZ
);
CREATE INDEX approvals_status ON approvals (status, created_at);
",
    ),
    (
        3,
        r"
CREATE TABLE sessions (
    id          TEXT PRIMARY KEY,
    key         TEXT NOT NULL,
    agent       TEXT NOT NULL,
    created_at  TIMESTAMPTZ NOT NULL,
    archived_at TIMESTAMPTZ
);
CREATE UNIQUE INDEX sessions_current ON sessions (key) WHERE archived_at IS NULL;
CREATE TABLE messages (
    session_id TEXT NOT NULL REFERENCES sessions (id) ON DELETE CASCADE,
    seq        BIGINT NOT NULL,
    body       TEXT NOT NULL,
    created_at TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (session_id, seq)
);
CREATE TABLE runs (
    id            TEXT PRIMARY KEY,
    agent         TEXT NOT NULL,
    session_id    TEXT NOT NULL,
    status        TEXT NOT NULL,
    model         TEXT NOT NULL,
    prompt_sha256 TEXT NOT NULL,
    input_tokens  BIGINT NOT NULL,
    output_tokens BIGINT NOT NULL,
    started_at    TIMESTAMPTZ NOT NULL,
    ended_at      TIMESTAMPTZ,
    error         TEXT
);
CREATE INDEX runs_session ON runs (session_id, started_at);
",
    ),
    (
        4,
        r"
CREATE TABLE heartbeats (
    id            BIGSERIAL PRIMARY KEY,
    agent         TEXT NOT NULL,
    at            TIMESTAMPTZ NOT NULL,
    status        TEXT NOT NULL,
    detail        TEXT,
    task_id       TEXT,
    input_tokens  BIGINT,
    output_tokens BIGINT
);
CREATE INDEX heartbeats_agent ON heartbeats (agent, id);
",
    ),
    (
        5,
        r"
CREATE TABLE jobs (
    name          TEXT PRIMARY KEY,
    agent         TEXT NOT NULL,
    kind          TEXT NOT NULL,
    spec          TEXT NOT NULL,
    tz            TEXT NOT NULL,
    anchor        TIMESTAMPTZ NOT NULL,
    message       TEXT NOT NULL,
    mode          TEXT NOT NULL,
    missed        TEXT NOT NULL,
    timeout_secs  BIGINT NOT NULL,
    enabled       BOOLEAN NOT NULL,
    next_run      TIMESTAMPTZ,
    created_at    TIMESTAMPTZ NOT NULL,
    deliver       TEXT,
    jitter_secs   BIGINT NOT NULL DEFAULT 0,
    failures      BIGINT NOT NULL DEFAULT 0,
    retry_at      TIMESTAMPTZ,
    retry_for     TIMESTAMPTZ,
    retry_attempt BIGINT NOT NULL DEFAULT 0
);
CREATE TABLE job_runs (
    job           TEXT NOT NULL,
    task_id       TEXT NOT NULL,
    scheduled_for TIMESTAMPTZ NOT NULL,
    attempt       BIGINT NOT NULL DEFAULT 0,
    missed        BOOLEAN NOT NULL,
    settled       BOOLEAN NOT NULL DEFAULT FALSE,
    PRIMARY KEY (job, scheduled_for, attempt)
);
CREATE INDEX job_runs_unsettled ON job_runs (settled) WHERE NOT settled;
",
    ),
    (
        6,
        r"
CREATE TABLE channel_state (
    key   TEXT PRIMARY KEY,
    value BIGINT NOT NULL
);
CREATE TABLE pairings (
    channel    TEXT NOT NULL,
    code       TEXT NOT NULL,
    sender     TEXT NOT NULL,
    name       TEXT NOT NULL,
    created_at TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (channel, code)
);
CREATE UNIQUE INDEX pairings_sender ON pairings (channel, sender);
CREATE TABLE channel_senders (
    channel     TEXT NOT NULL,
    sender      TEXT NOT NULL,
    name        TEXT NOT NULL,
    approved_at TIMESTAMPTZ NOT NULL,
    user_name   TEXT,
    PRIMARY KEY (channel, sender)
);
CREATE TABLE channel_tasks (
    task_id  TEXT PRIMARY KEY,
    channel  TEXT NOT NULL,
    chat     TEXT NOT NULL,
    user_id  TEXT NOT NULL,
    reply_to TEXT
);
CREATE TABLE outbox (
    id         BIGSERIAL PRIMARY KEY,
    channel    TEXT NOT NULL,
    chat       TEXT NOT NULL,
    text       TEXT NOT NULL,
    markup     TEXT,
    reply_to   TEXT,
    parts_sent BIGINT NOT NULL DEFAULT 0,
    created_at TIMESTAMPTZ NOT NULL,
    done_at    TIMESTAMPTZ,
    failure    TEXT
);
CREATE INDEX outbox_pending ON outbox (channel, id) WHERE done_at IS NULL;
CREATE TABLE invites (
    code       TEXT PRIMARY KEY,
    user_name  TEXT NOT NULL,
    created_at TIMESTAMPTZ NOT NULL,
    expires_at TIMESTAMPTZ NOT NULL,
    used_by    TEXT,
    used_at    TIMESTAMPTZ
);
",
    ),
    (
        7,
        r"
CREATE TABLE leaders (
    role  TEXT PRIMARY KEY,
    node  TEXT NOT NULL,
    until TIMESTAMPTZ NOT NULL
);
",
    ),
    (
        8,
        r"
-- The deployment's audit chain (pg/audit.rs): the same JSON lines as the day files of a
-- single-machine home, one row each, append-only.
CREATE TABLE audit_lines (
    seq  BIGINT PRIMARY KEY CHECK (seq > 0),
    hash TEXT NOT NULL,
    line TEXT NOT NULL
);
-- Where the chain ends, signed with the nodes' anchor key (which never enters the database).
CREATE TABLE audit_checkpoint (
    id     SMALLINT PRIMARY KEY CHECK (id = 1),
    seq    BIGINT NOT NULL,
    hash   TEXT NOT NULL,
    key_id TEXT NOT NULL,
    mac    TEXT NOT NULL
);
CREATE FUNCTION pincer_audit_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'the Pincer audit log is append-only';
END
$$;
CREATE TRIGGER audit_lines_append_only BEFORE UPDATE OR DELETE ON audit_lines
    FOR EACH ROW EXECUTE FUNCTION pincer_audit_append_only();
CREATE TRIGGER audit_lines_no_truncate BEFORE TRUNCATE ON audit_lines
    FOR EACH STATEMENT EXECUTE FUNCTION pincer_audit_append_only();
",
    ),
    (
        9,
        r"
CREATE TABLE model_health (
    subject        TEXT PRIMARY KEY,
    failures       BIGINT NOT NULL DEFAULT 0,
    cooldown_until TIMESTAMPTZ,
    disabled       BOOLEAN NOT NULL DEFAULT FALSE,
    last_error     TEXT,
    last_error_at  TIMESTAMPTZ,
    detail         TEXT
);
",
    ),
    (
        10,
        r"
CREATE TABLE model_pins (
    session_key TEXT PRIMARY KEY,
    alias       TEXT NOT NULL,
    strict      BOOLEAN NOT NULL,
    set_at      TIMESTAMPTZ NOT NULL
);
",
    ),
    (
        11,
        r"
CREATE TABLE usage (
    id            BIGSERIAL PRIMARY KEY,
    at            TIMESTAMPTZ NOT NULL,
    agent         TEXT NOT NULL,
    session       TEXT NOT NULL,
    user_id       TEXT NOT NULL,
    model         TEXT NOT NULL,
    input_tokens  BIGINT NOT NULL,
    output_tokens BIGINT NOT NULL,
    cost_usd      DOUBLE PRECISION
);
CREATE INDEX usage_at ON usage (at);
",
    ),
    (
        12,
        r"
CREATE TABLE session_views (
    session_id TEXT PRIMARY KEY REFERENCES sessions (id) ON DELETE CASCADE,
    covers     BIGINT NOT NULL,
    sent       TEXT NOT NULL,
    updated_at TIMESTAMPTZ NOT NULL
);
",
    ),
    (
        13,
        r"
CREATE TABLE memory_sources (
    agent  TEXT NOT NULL,
    source TEXT NOT NULL,
    stamp  TEXT NOT NULL,
    PRIMARY KEY (agent, source)
);
CREATE TABLE memory_notes (
    agent  TEXT NOT NULL,
    source TEXT NOT NULL,
    line   BIGINT NOT NULL,
    date   TEXT,
    text   TEXT NOT NULL,
    vector BYTEA,
    PRIMARY KEY (agent, source, line)
);
CREATE INDEX memory_notes_fts ON memory_notes USING GIN (to_tsvector('simple', text));
",
    ),
    (
        14,
        r"
CREATE TABLE mcp_servers (
    server            TEXT PRIMARY KEY,
    approved_sha256   TEXT,
    approved_manifest TEXT,
    approved_by       TEXT,
    approved_at       TIMESTAMPTZ,
    seen_sha256       TEXT,
    seen_manifest     TEXT,
    seen_at           TIMESTAMPTZ
);
",
    ),
    (
        15,
        r"
CREATE TABLE users (
    name        TEXT PRIMARY KEY,
    role        TEXT NOT NULL,
    created_at  TIMESTAMPTZ NOT NULL,
    disabled_at TIMESTAMPTZ,
    bypass      BOOLEAN NOT NULL DEFAULT FALSE
);
INSERT INTO users (name, role, created_at) VALUES ('owner', 'owner', '2026-01-01T00:00:00Z');
CREATE TABLE org_controls (
    key        TEXT PRIMARY KEY,
    value      TEXT NOT NULL,
    updated_at TIMESTAMPTZ NOT NULL,
    updated_by TEXT NOT NULL
);
ALTER TABLE tokens ADD COLUMN user_name TEXT NOT NULL DEFAULT 'owner';
ALTER TABLE tasks ADD COLUMN owner TEXT;
ALTER TABLE tasks ADD COLUMN risk BIGINT NOT NULL DEFAULT 0;
CREATE INDEX tasks_owner ON tasks(owner, created_at);
",
    ),
    (
        16,
        r"
CREATE TABLE ui_sessions (
    id_hash    TEXT PRIMARY KEY,
    token_name TEXT NOT NULL,
    csrf       TEXT NOT NULL,
    created_at TIMESTAMPTZ NOT NULL,
    expires_at TIMESTAMPTZ NOT NULL
);
CREATE INDEX ui_sessions_expiry ON ui_sessions(expires_at);
",
    ),
    (
        17,
        // Listing tasks by state (the web page's live and failed lists), newest first.
        "CREATE INDEX tasks_status_created ON tasks(status, created_at);",
    ),
    (
        18,
        // Where a held action's untrusted content came from, for the person deciding (D9).
        "ALTER TABLE approvals ADD COLUMN taint_sources TEXT NOT NULL DEFAULT '[]';",
    ),
    (
        19,
        // Tokens per UTC day, agent, model and user, kept with every recorded call: the web
        // page's week charts read a few rows instead of every call of the week.
        r"
CREATE TABLE usage_days (
    day     DATE NOT NULL,
    agent   TEXT NOT NULL,
    model   TEXT NOT NULL,
    user_id TEXT NOT NULL,
    tokens  BIGINT NOT NULL,
    PRIMARY KEY (day, agent, model, user_id)
);
INSERT INTO usage_days (day, agent, model, user_id, tokens)
    SELECT (at AT TIME ZONE 'UTC')::DATE, agent, model, user_id,
           SUM(input_tokens) + SUM(output_tokens)
    FROM usage GROUP BY 1, 2, 3, 4;
",
    ),
    (
        20,
        // A task's approvals, for its page.
        "CREATE INDEX approvals_task ON approvals (task_id, created_at);",
    ),
    (
        21,
        // Installed skills (G1, G2): content hash seen and approved, scan, state.
        r"
CREATE TABLE skills (
    name            TEXT PRIMARY KEY,
    source          TEXT NOT NULL,
    version         TEXT NOT NULL,
    description     TEXT NOT NULL,
    manifest        TEXT NOT NULL,
    verdict         TEXT NOT NULL,
    findings        TEXT NOT NULL,
    seen_sha256     TEXT NOT NULL,
    approved_sha256 TEXT,
    approved_by     TEXT,
    approved_at     TIMESTAMPTZ,
    state           TEXT NOT NULL,
    state_reason    TEXT,
    installed_at    TIMESTAMPTZ NOT NULL,
    updated_at      TIMESTAMPTZ NOT NULL
);
",
    ),
];

/// The newest schema this binary knows.
pub(crate) fn latest() -> i64 {
    MIGRATIONS.last().map_or(0, |m| m.0)
}

pub(crate) async fn migrate(client: &mut tokio_postgres::Client) -> Result<(), StoreError> {
    let tx = client.transaction().await.map_err(|e| db(&e))?;
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&LOCK])
        .await
        .map_err(|e| db(&e))?;
    tx.batch_execute(
        "CREATE TABLE IF NOT EXISTS pincer_schema (version BIGINT NOT NULL, applied_at TIMESTAMPTZ NOT NULL DEFAULT now())",
    )
    .await
    .map_err(|e| db(&e))?;
    let found: i64 = tx
        .query_one("SELECT COALESCE(MAX(version), 0) FROM pincer_schema", &[])
        .await
        .map_err(|e| db(&e))?
        .get(0);
    if found > latest() {
        return Err(StoreError::TooNew {
            found,
            known: latest(),
        });
    }
    for (version, sql) in MIGRATIONS.iter().filter(|(v, _)| *v > found) {
        tx.batch_execute(sql).await.map_err(|e| db(&e))?;
        tx.execute(
            "INSERT INTO pincer_schema (version) VALUES ($1)",
            &[version],
        )
        .await
        .map_err(|e| db(&e))?;
    }
    tx.commit().await.map_err(|e| db(&e))
}

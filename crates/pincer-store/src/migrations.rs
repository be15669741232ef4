//! Numbered schema migrations. Append only: never edit a migration that has shipped.

/// `(version, SQL)` in order.
pub(crate) const MIGRATIONS: &[(i64, &str)] = &[
    (
        1,
        r"
CREATE TABLE sessions (
    id          TEXT PRIMARY KEY,
    key         TEXT NOT NULL,
    agent       TEXT NOT NULL,
    created_at  TEXT NOT NULL,
    archived_at TEXT
);
CREATE UNIQUE INDEX sessions_current ON sessions(key) WHERE archived_at IS NULL;

CREATE TABLE messages (
    session_id TEXT NOT NULL REFERENCES sessions(id) ON DELETE CASCADE,
    seq        INTEGER NOT NULL,
    body       TEXT NOT NULL,
    created_at TEXT NOT NULL,
    PRIMARY KEY (session_id, seq)
);

CREATE TABLE runs (
    id            TEXT PRIMARY KEY,
    agent         TEXT NOT NULL,
    session_id    TEXT NOT NULL,
    status        TEXT NOT NULL,
    model         TEXT NOT NULL,
    prompt_sha256 TEXT NOT NULL,
    input_tokens  INTEGER NOT NULL,
    output_tokens INTEGER NOT NULL,
    started_at    TEXT NOT NULL,
    ended_at      TEXT,
    error         TEXT
);
CREATE INDEX runs_session ON runs(session_id, started_at);
",
    ),
    (
        2,
        r"
CREATE TABLE tasks (
    id              TEXT PRIMARY KEY,
    seq             INTEGER NOT NULL UNIQUE,
    agent           TEXT NOT NULL,
    session_key     TEXT NOT NULL,
    input           TEXT NOT NULL,
    status          TEXT NOT NULL,
    idempotency_key TEXT UNIQUE,
    lease_owner     TEXT,
    lease_until     TEXT,
    created_at      TEXT NOT NULL,
    updated_at      TEXT NOT NULL,
    started_at      TEXT,
    ended_at        TEXT,
    deadline        TEXT,
    output          TEXT,
    error           TEXT
);
CREATE INDEX tasks_status ON tasks(status, seq);
CREATE INDEX tasks_session ON tasks(session_key, status);
",
    ),
    (
        3,
        r"
CREATE TABLE tokens (
    name         TEXT PRIMARY KEY,
    hash         TEXT NOT NULL UNIQUE,
    scopes       TEXT NOT NULL,
    created_at   TEXT NOT NULL,
    expires_at   TEXT,
    revoked_at   TEXT,
    last_used_at TEXT
);
",
    ),
    (
        4,
        r"
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
    created_at TEXT NOT NULL,
    expires_at TEXT NOT NULL,
    decided_at TEXT
);
CREATE INDEX approvals_status ON approvals(status, created_at);
",
    ),
    (5, "ALTER TABLE tasks ADD COLUMN run_dir TEXT;"),
    (
        6,
        r"
CREATE TABLE channel_state (
    key   TEXT PRIMARY KEY,
    value INTEGER NOT NULL
);
CREATE TABLE pairings (
    channel    TEXT NOT NULL,
    code       TEXT NOT NULL,
    sender     TEXT NOT NULL,
    name       TEXT NOT NULL,
    created_at TEXT NOT NULL,
    PRIMARY KEY (channel, code)
);
CREATE TABLE channel_senders (
    channel     TEXT NOT NULL,
    sender      TEXT NOT NULL,
    name        TEXT NOT NULL,
    approved_at TEXT NOT NULL,
    PRIMARY KEY (channel, sender)
);
",
    ),
    (
        7,
        r"
CREATE TABLE channel_tasks (
    task_id TEXT PRIMARY KEY,
    channel TEXT NOT NULL,
    chat    TEXT NOT NULL,
    user    TEXT NOT NULL
);
CREATE TABLE outbox (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    channel    TEXT NOT NULL,
    chat       TEXT NOT NULL,
    text       TEXT NOT NULL,
    markup     TEXT,
    created_at TEXT NOT NULL,
    done_at    TEXT,
    failure    TEXT
);
CREATE INDEX outbox_pending ON outbox(channel, done_at, id);
",
    ),
    (
        8,
        r"
CREATE TABLE invites (
    code       TEXT PRIMARY KEY,
    user_name  TEXT NOT NULL,
    created_at TEXT NOT NULL,
    expires_at TEXT NOT NULL,
    used_by    TEXT,
    used_at    TEXT
);
ALTER TABLE channel_senders ADD COLUMN user_name TEXT;
",
    ),
    (
        9,
        r"
CREATE TABLE jobs (
    name         TEXT PRIMARY KEY,
    agent        TEXT NOT NULL,
    kind         TEXT NOT NULL,
    spec         TEXT NOT NULL,
    tz           TEXT NOT NULL,
    anchor       TEXT NOT NULL,
    message      TEXT NOT NULL,
    mode         TEXT NOT NULL,
    missed       TEXT NOT NULL,
    timeout_secs INTEGER NOT NULL,
    enabled      INTEGER NOT NULL,
    next_run     TEXT,
    created_at   TEXT NOT NULL
);
CREATE TABLE job_runs (
    job           TEXT NOT NULL,
    task_id       TEXT NOT NULL,
    scheduled_for TEXT NOT NULL,
    missed        INTEGER NOT NULL,
    PRIMARY KEY (job, scheduled_for)
);
",
    ),
    (
        10,
        r"
ALTER TABLE tasks ADD COLUMN kind TEXT NOT NULL DEFAULT 'message';
ALTER TABLE tasks ADD COLUMN input_tokens INTEGER;
ALTER TABLE tasks ADD COLUMN output_tokens INTEGER;
ALTER TABLE jobs ADD COLUMN deliver TEXT;
ALTER TABLE jobs ADD COLUMN jitter_secs INTEGER NOT NULL DEFAULT 0;
ALTER TABLE jobs ADD COLUMN failures INTEGER NOT NULL DEFAULT 0;
ALTER TABLE jobs ADD COLUMN retry_at TEXT;
ALTER TABLE jobs ADD COLUMN retry_for TEXT;
ALTER TABLE jobs ADD COLUMN retry_attempt INTEGER NOT NULL DEFAULT 0;
CREATE TABLE job_runs_v10 (
    job           TEXT NOT NULL,
    task_id       TEXT NOT NULL,
    scheduled_for TEXT NOT NULL,
    attempt       INTEGER NOT NULL DEFAULT 0,
    missed        INTEGER NOT NULL,
    settled       INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (job, scheduled_for, attempt)
);
INSERT INTO job_runs_v10 (job, task_id, scheduled_for, attempt, missed, settled)
    SELECT job, task_id, scheduled_for, 0, missed, 1 FROM job_runs;
DROP TABLE job_runs;
ALTER TABLE job_runs_v10 RENAME TO job_runs;
CREATE INDEX job_runs_unsettled ON job_runs(settled) WHERE settled = 0;
CREATE TABLE heartbeats (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    agent         TEXT NOT NULL,
    at            TEXT NOT NULL,
    status        TEXT NOT NULL,
    detail        TEXT,
    task_id       TEXT,
    input_tokens  INTEGER,
    output_tokens INTEGER
);
CREATE INDEX heartbeats_agent ON heartbeats(agent, id);
",
    ),
    (
        11,
        r"
ALTER TABLE outbox ADD COLUMN parts_sent INTEGER NOT NULL DEFAULT 0;
ALTER TABLE outbox ADD COLUMN reply_to TEXT;
ALTER TABLE channel_tasks ADD COLUMN reply_to TEXT;
",
    ),
    (
        12,
        r"
CREATE TABLE leaders (
    role  TEXT PRIMARY KEY,
    node  TEXT NOT NULL,
    until TEXT NOT NULL
);
",
    ),
    (
        13,
        r"
CREATE UNIQUE INDEX tasks_one_active_per_session ON tasks(session_key)
    WHERE status IN ('RUNNING', 'WAITING_APPROVAL');
",
    ),
    (
        14,
        r"
CREATE TABLE model_health (
    subject        TEXT PRIMARY KEY,
    failures       INTEGER NOT NULL DEFAULT 0,
    cooldown_until TEXT,
    disabled       INTEGER NOT NULL DEFAULT 0,
    last_error     TEXT,
    last_error_at  TEXT,
    detail         TEXT
);
",
    ),
    (
        15,
        r"
CREATE TABLE model_pins (
    session_key TEXT PRIMARY KEY,
    alias       TEXT NOT NULL,
    strict      INTEGER NOT NULL,
    set_at      TEXT NOT NULL
);
",
    ),
    (
        16,
        r"
CREATE TABLE usage (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    at            TEXT NOT NULL,
    agent         TEXT NOT NULL,
    session       TEXT NOT NULL,
    user_id       TEXT NOT NULL,
    model         TEXT NOT NULL,
    input_tokens  INTEGER NOT NULL,
    output_tokens INTEGER NOT NULL,
    cost_usd      REAL
);
CREATE INDEX usage_at ON usage(at);
",
    ),
    (
        17,
        r"
CREATE TABLE session_views (
    session_id TEXT PRIMARY KEY REFERENCES sessions(id) ON DELETE CASCADE,
    covers     INTEGER NOT NULL,
    sent       TEXT NOT NULL,
    updated_at TEXT NOT NULL
);
",
    ),
    (
        18,
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
    line   INTEGER NOT NULL,
    date   TEXT,
    text   TEXT NOT NULL,
    vector BLOB,
    PRIMARY KEY (agent, source, line)
);
CREATE VIRTUAL TABLE memory_fts USING fts5(
    text, agent UNINDEXED, source UNINDEXED, line UNINDEXED, date UNINDEXED
);
",
    ),
    (
        19,
        r"
CREATE TABLE mcp_servers (
    server            TEXT PRIMARY KEY,
    approved_sha256   TEXT,
    approved_manifest TEXT,
    approved_by       TEXT,
    approved_at       TEXT,
    seen_sha256       TEXT,
    seen_manifest     TEXT,
    seen_at           TEXT
);
",
    ),
    (
        20,
        r"
CREATE TABLE users (
    name        TEXT PRIMARY KEY,
    role        TEXT NOT NULL,
    created_at  TEXT NOT NULL,
    disabled_at TEXT,
    bypass      INTEGER NOT NULL DEFAULT 0
);
INSERT INTO users (name, role, created_at) VALUES ('owner', 'owner', '2026-01-01T00:00:00.000000Z');
CREATE TABLE org_controls (
    key        TEXT PRIMARY KEY,
    value      TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    updated_by TEXT NOT NULL
);
ALTER TABLE tokens ADD COLUMN user_name TEXT NOT NULL DEFAULT 'owner';
ALTER TABLE tasks ADD COLUMN owner TEXT;
ALTER TABLE tasks ADD COLUMN risk INTEGER NOT NULL DEFAULT 0;
CREATE INDEX tasks_owner ON tasks(owner, created_at);
",
    ),
    (
        21,
        r"
CREATE TABLE ui_sessions (
    id_hash    TEXT PRIMARY KEY,
    token_name TEXT NOT NULL,
    csrf       TEXT NOT NULL,
    created_at TEXT NOT NULL,
    expires_at TEXT NOT NULL
);
CREATE INDEX ui_sessions_expiry ON ui_sessions(expires_at);
",
    ),
    (
        22,
        // Where a held action's untrusted content came from, for the person deciding (D9).
        "ALTER TABLE approvals ADD COLUMN taint_sources TEXT NOT NULL DEFAULT '[]';",
    ),
    (
        23,
        // Tokens per UTC day, agent, model and user, kept with every recorded call: the web
        // page's week charts read a few rows instead of every call of the week.
        r"
CREATE TABLE usage_days (
    day     TEXT NOT NULL,
    agent   TEXT NOT NULL,
    model   TEXT NOT NULL,
    user_id TEXT NOT NULL,
    tokens  INTEGER NOT NULL,
    PRIMARY KEY (day, agent, model, user_id)
);
INSERT INTO usage_days (day, agent, model, user_id, tokens)
    SELECT substr(at, 1, 10), agent, model, user_id, SUM(input_tokens) + SUM(output_tokens)
    FROM usage GROUP BY 1, 2, 3, 4;
",
    ),
    (
        24,
        // A task's approvals, for its page.
        "CREATE INDEX approvals_task ON approvals(task_id, created_at);",
    ),
    (
        25,
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
    approved_at     TEXT,
    state           TEXT NOT NULL,
    state_reason    TEXT,
    installed_at    TEXT NOT NULL,
    updated_at      TEXT NOT NULL
);
",
    ),
    (
        26,
        // The audit chain's end as last synced (issue 23, part 4): a witness of the day files
        // kept in the state database, checked by `pincer audit verify`. One row. SQLite only:
        // with `[storage] url` the chain itself and its signed checkpoint live in Postgres
        // (`audit_lines`, `audit_checkpoint`), so there is no day-file log to witness there.
        r"
CREATE TABLE audit_head (
    id         INTEGER PRIMARY KEY CHECK (id = 1),
    seq        INTEGER NOT NULL,
    hash       TEXT NOT NULL,
    updated_at TEXT NOT NULL
);
",
    ),
];

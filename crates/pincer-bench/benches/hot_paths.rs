//! Hot paths, measured with divan: `cargo bench -p pincer-bench`.
//! Never run as tests and never asserted on; docs/PERFORMANCE.md quotes the figures.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::hint::black_box;

use divan::Bencher;
use pincer_config::{ApprovalMode, ExecMode, NetworkMode, PromptLimits};
use pincer_policy::{Context, Policy, evaluate};
use pincer_types::{Action, Capability, RiskTier};

fn main() {
    divan::main();
}

/// One policy decision for a granted L1 write in balanced mode.
#[divan::bench]
fn policy_evaluate(b: Bencher) {
    let policy = Policy {
        approval_mode: ApprovalMode::Balanced,
        exec: ExecMode::Off,
        network: NetworkMode::Off,
        granted: ["fs.read", "fs.write", "fs.list", "time.now", "code.search"]
            .iter()
            .map(|t| t.parse().unwrap())
            .collect(),
    };
    let action = Action {
        tool: "fs.write".parse().unwrap(),
        capability: Capability::FsWrite,
        tier: RiskTier::L1Mutating,
        detail: serde_json::json!({"path": "src/lib.rs"}),
        sink: None,
    };
    let ctx = Context::untainted("main".parse().unwrap());
    b.bench(|| evaluate(black_box(&policy), black_box(&action), black_box(&ctx)));
}

/// D9: the policy decision for a sensitive sink in a tainted turn — the grounding check of three
/// arguments (a host, a recipient, an amount) against a turn's trusted content of ~8 KB (the
/// user's messages and the instruction files), prepared once per turn as in the runner; one
/// argument is ungrounded, so the hold is built and its source looked up in a 64 KB page.
#[divan::bench]
fn policy_evaluate_tainted_sink(b: Bencher) {
    use pincer_types::{ArgRole, SinkArg, SinkKind};
    let policy = Policy {
        approval_mode: ApprovalMode::Trusted,
        exec: ExecMode::Off,
        network: NetworkMode::Allowlist,
        granted: ["http.fetch"].iter().map(|t| t.parse().unwrap()).collect(),
    };
    let mut trusted = String::new();
    while trusted.len() < 8 * 1024 {
        trusted.push_str(
            "Please pay invoice 4411 of 1,250.00 EUR and mail the receipt to alice@example.com;              the portal is at https://billing.example.org/invoices and the notes are in docs/. ",
        );
    }
    let mut taint =
        pincer_policy::Taint::clean(std::sync::Arc::new(pincer_policy::Grounding::new([
            trusted.as_str(),
        ])));
    // A 64 KB page read earlier in the turn (searched only to name the source of the
    // ungrounded argument).
    let mut page = String::new();
    while page.len() < 64 * 1024 {
        page.push_str("Lorem ipsum dolor sit amet, consectetur adipiscing elit, sed do eiusmod. ");
    }
    taint.add_content("tool:http.fetch", &page);
    let ctx = Context {
        agent: "main".parse().unwrap(),
        taint,
        controls: pincer_policy::Controls::default(),
        skills: Vec::new(),
    };
    let action = Action {
        tool: "http.fetch".parse().unwrap(),
        capability: Capability::Network,
        tier: RiskTier::L1Mutating,
        detail: serde_json::json!({"url": "https://billing.example.org/pay"}),
        sink: None,
    }
    .with_sink(
        SinkKind::Egress,
        vec![
            SinkArg::new("host", ArgRole::Host, "billing.example.org"),
            SinkArg::new("to", ArgRole::Recipient, "mallory@evil.example"),
            SinkArg::new("amount", ArgRole::Amount, "1250"),
        ],
    );
    b.bench(|| evaluate(black_box(&policy), black_box(&action), black_box(&ctx)));
}

/// Resolving a nested path through the workspace handle (openat per component, no symlinks).
#[divan::bench]
fn fs_scope_check_read(b: Bencher) {
    let dir = tempfile::tempdir().unwrap();
    let nested = dir.path().join("a/b/c/d");
    std::fs::create_dir_all(&nested).unwrap();
    std::fs::write(nested.join("file.txt"), "x").unwrap();
    let scope = pincer_tools::fs::FsScope::open(dir.path(), &BTreeMap::new(), &[]).unwrap();
    b.bench(|| {
        scope
            .check_read("workspace", black_box("a/b/c/d/file.txt"))
            .unwrap()
    });
}

/// The same lookup with a real home's protected set (issue 25: resolved at every access — the
/// config, state files, audit, secrets, skills, the agent's instruction files and every other
/// agent's directory), workspace inside the home as `pincer init` makes it.
#[divan::bench]
fn fs_scope_check_read_protected(b: Bencher) {
    use pincer_tools::fs::{Covers, ProtectedPath, Protection};
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path();
    let ws = home.join("workspaces/main");
    let nested = ws.join("a/b/c/d");
    std::fs::create_dir_all(&nested).unwrap();
    std::fs::write(nested.join("file.txt"), "x").unwrap();
    for a in ["main", "other"] {
        std::fs::create_dir_all(home.join("agents").join(a)).unwrap();
        std::fs::write(home.join("agents").join(a).join("SOUL.md"), "x").unwrap();
    }
    std::fs::write(home.join("config.toml"), "x").unwrap();
    let mut protected: Vec<ProtectedPath> = [
        "config.toml",
        "config.last-good.toml",
        "state.db",
        "state.db-wal",
        "state.db-shm",
        "state.db-journal",
        "audit",
        "skills",
        "agents/main/SOUL.md",
        "agents/main/RULES.md",
        "agents/main/TOOLS.md",
        "agents/main/SPECPLAN.md",
        "agents/main/runs",
        "agents/main/HEARTBEAT.md",
        "agents/main/skills",
    ]
    .iter()
    .map(|p| ProtectedPath::new(home.join(p), "x", Protection::NoWrite))
    .collect();
    protected.push(ProtectedPath::new(
        home.join("secrets"),
        "x",
        Protection::NoAccess,
    ));
    protected.push(ProtectedPath {
        covers: Covers::EntriesExcept("main".into()),
        ..ProtectedPath::new(home.join("agents"), "x", Protection::NoWrite)
    });
    let scope = pincer_tools::fs::FsScope::open(&ws, &BTreeMap::new(), &protected).unwrap();
    b.bench(|| {
        scope
            .check_read("workspace", black_box("a/b/c/d/file.txt"))
            .unwrap()
    });
}

fn audit_append(b: Bencher, dir: &std::path::Path) {
    audit_append_with(b, dir, Vec::new());
}

fn audit_append_with(
    b: Bencher,
    dir: &std::path::Path,
    witnesses: Vec<std::sync::Arc<dyn pincer_audit::Witness>>,
) {
    let log = pincer_audit::AuditLog::open(
        &dir.join("audit"),
        pincer_audit::Redactor::new(Vec::new(), &[]).unwrap(),
    )
    .unwrap()
    .with_witnesses(witnesses);
    let fields =
        serde_json::json!({"tool": "fs.read", "agent": "main", "args": {"path": "README.md"}});
    b.bench(|| log.append("tool.call", black_box(fields.clone())).unwrap());
}

/// One audit append, durable (fdatasync) on the disk under $TMPDIR.
#[divan::bench(sample_count = 50)]
fn audit_append_fsync_disk(b: Bencher) {
    let dir = tempfile::tempdir().unwrap();
    audit_append(b, dir.path());
}

/// One audit append on tmpfs, where fdatasync costs nothing: the hashing, redaction and
/// formatting alone.
#[divan::bench]
fn audit_append_tmpfs(b: Bencher) {
    let dir = tempfile::tempdir_in("/dev/shm").unwrap();
    audit_append(b, dir.path());
}

/// The same on tmpfs with the chain's end also recorded in the state database after every
/// sync (issue 23, part 4): the witness's cost alone.
#[divan::bench]
fn audit_append_tmpfs_with_state_head(b: Bencher) {
    let dir = tempfile::tempdir_in("/dev/shm").unwrap();
    let head = pincer_store::SqliteAuditHead::new(&dir.path().join("state.db"));
    audit_append_with(b, dir.path(), vec![std::sync::Arc::new(head)]);
}

/// Archiving one audit day of 10,000 lines (issue 23, H6): the whole log verified first, the
/// day gzipped, synced, read back and indexed — what `pincer gc` spends per archived day.
#[divan::bench(sample_count = 10)]
fn audit_archive_day_of_10k_lines(b: Bencher) {
    b.with_inputs(|| {
        let dir = tempfile::tempdir().unwrap();
        let audit = dir.path().join("audit");
        std::fs::create_dir_all(&audit).unwrap();
        let pending: Vec<pincer_audit::Pending> = (0..10_000)
            .map(|i| pincer_audit::Pending {
                ts: format!("2026-10-01T{:02}:{:02}:00.000000Z", i / 600, (i / 10) % 60),
                event: serde_json::json!({"type": "tool.call", "tool": "fs.read", "i": i}),
            })
            .collect();
        let lines = pincer_audit::chain(0, pincer_audit::GENESIS, &pending);
        let mut text = String::new();
        for l in &lines {
            text.push_str(&l.line);
            text.push('\n');
        }
        std::fs::write(audit.join("2026-10-01.jsonl"), text).unwrap();
        let last = lines.last().unwrap();
        std::fs::write(
            audit.join("HEAD"),
            serde_json::json!({"seq": last.seq, "hash": last.hash}).to_string(),
        )
        .unwrap();
        let (key, fresh) =
            pincer_audit::AnchorKey::load_or_create(&dir.path().join("audit.key")).unwrap();
        let anchor = pincer_audit::Anchor {
            path: dir.path().join("audit.anchor"),
            key,
        };
        let redactor = pincer_audit::Redactor::new(Vec::new(), &[]).unwrap();
        drop(pincer_audit::AuditLog::open_anchored(&audit, redactor, anchor, fresh).unwrap());
        dir
    })
    .bench_values(|dir| {
        let p = dir.path();
        pincer_audit::archive(
            &p.join("audit"),
            &p.join("audit.key"),
            &p.join("audit.anchor"),
            "2026-12-01",
            false,
        )
        .unwrap();
        dir
    });
}

/// Assembling the default agent's system prompt (files read, capped, hashed), as every turn
/// does once the files have not changed for two seconds (one `stat` per file; issue 24).
#[divan::bench]
fn prompt_assembly(b: Bencher) {
    let dir = tempfile::tempdir().unwrap();
    pincer_agent::scaffold_agent(dir.path()).unwrap();
    // Let the files settle (a file changed in the last two seconds is read every time).
    std::thread::sleep(std::time::Duration::from_millis(3100));
    b.bench(|| {
        pincer_agent::assemble_prompt(dir.path(), PromptLimits::default(), black_box("[]")).unwrap()
    });
}

/// A skill of 10 files (100 KB) as each run checks it: read without following links and hashed
/// against its approval (issue 22).
#[divan::bench]
fn skill_verify_10_files(b: Bencher) {
    let dir = tempfile::tempdir().unwrap();
    skill_dir(dir.path());
    b.bench(|| pincer_skills::tree::read(black_box(dir.path())).unwrap());
}

/// The static scan of the same skill at install (every rule over every line, the manifest,
/// the name).
#[divan::bench]
fn skill_scan_10_files(b: Bencher) {
    let dir = tempfile::tempdir().unwrap();
    skill_dir(dir.path());
    let tree = pincer_skills::tree::read(dir.path()).unwrap();
    b.bench(|| pincer_skills::ops::validate_tree(black_box(tree.clone()), &[]).unwrap());
}

/// Resolving one `secret:NAME` reference from a store of 20 secrets: lock, read, check the key
/// id, decrypt and parse the whole store, pick one (issue 23, D10) — done where a credential is
/// used (at start-up, per provider client), never per turn.
#[divan::bench]
fn secret_lookup_of_20(b: Bencher) {
    let dir = tempfile::tempdir().unwrap();
    let vault = pincer_secrets::Vault::new(dir.path(), None).unwrap();
    for i in 0..20 {
        vault
            .set(
                &format!("key{i}"),
                &format!("sk-value-{i}-{}", "x".repeat(40)),
            )
            .unwrap();
    }
    b.bench(|| vault.get(black_box("key7")).unwrap());
}

fn skill_dir(d: &std::path::Path) {
    std::fs::write(
        d.join("SKILL.md"),
        "---\nname: weekly-report\ndescription: Writes the weekly report.\npermissions:\n  tools: [fs.read, fs.write]\n---\n# Weekly report\n\nRead the notes with fs.read and write the report with fs.write.\n",
    )
    .unwrap();
    let line = "A reference line of prose about the report format, columns and examples.\n";
    for i in 0..9 {
        std::fs::write(d.join(format!("ref{i}.md")), line.repeat(150)).unwrap();
    }
}

/// Decoding a streamed answer of 500 OpenAI deltas.
#[divan::bench]
fn sse_decode_500_deltas(b: Bencher) {
    let mut stream = String::new();
    for i in 0..500 {
        let _ = write!(
            stream,
            "data: {{\"choices\":[{{\"index\":0,\"delta\":{{\"content\":\"token{i} \"}}}}]}}\n\n"
        );
    }
    stream.push_str("data: [DONE]\n\n");
    let bytes = stream.into_bytes();
    b.bench(|| {
        let mut d = pincer_providers::sse::SseDecoder::new(1 << 20);
        let mut n = 0;
        for chunk in bytes.chunks(1400) {
            n += d.push(chunk).unwrap().len();
        }
        n
    });
}

/// `apply_patch` on a 10,000-line file: parse the patch, apply three hunks.
#[divan::bench]
fn apply_patch_10k_lines(b: Bencher) {
    let mut text = String::new();
    for i in 0..10_000 {
        let _ = writeln!(text, "line {i}: let value_{i} = compute({i});");
    }
    let patch = "*** Begin Patch\n*** Update File: big.rs\n@@\n line 100: let value_100 = compute(100);\n-line 101: let value_101 = compute(101);\n+line 101: let value_101 = compute(1010);\n@@\n line 5000: let value_5000 = compute(5000);\n-line 5001: let value_5001 = compute(5001);\n+line 5001: changed\n@@\n line 9998: let value_9998 = compute(9998);\n-line 9999: let value_9999 = compute(9999);\n+line 9999: the end\n*** End Patch\n";
    b.bench(|| {
        let ops = pincer_tools::patch::parse(black_box(patch)).unwrap();
        let pincer_tools::patch::FileOp::Update { chunks, .. } = &ops[0] else {
            unreachable!()
        };
        pincer_tools::patch::apply_chunks("big.rs", black_box(&text), chunks).unwrap()
    });
}

/// Budgets count a request's input tokens before it is sent (issue 15: under 100 µs for a
/// 32k-token prompt): 64 turns of history, about 2 KB each, plus 20 tools.
#[divan::bench]
fn estimate_input_tokens_32k(b: Bencher) {
    use pincer_providers::{CallContext, ChatRequest, Message, ToolDef};
    let turn = "word ".repeat(400);
    let mut messages = Vec::new();
    for _ in 0..32 {
        messages.push(Message::User {
            content: turn.clone(),
        });
        messages.push(Message::Assistant {
            content: turn.clone(),
            tool_calls: Vec::new(),
        });
    }
    let tools = (0..20)
        .map(|i| ToolDef {
            name: format!("tool_{i}"),
            description: "does a thing with a path and some options".into(),
            parameters: std::sync::Arc::new(serde_json::json!({"type": "object", "properties": {
                "path": {"type": "string"}, "limit": {"type": "integer"}}})),
        })
        .collect();
    let req = ChatRequest {
        model: "m".into(),
        strict_model: false,
        system: "s".repeat(4000),
        messages,
        tools,
        max_tokens: 4096,
        context: CallContext::default(),
    };
    assert!(req.estimate_input_tokens() > 32_000);
    b.bench(|| divan::black_box(&req).estimate_input_tokens());
}

/// 10,000 notes in 100 daily files under `<dir>/memory`.
fn ten_thousand_notes(dir: &std::path::Path) {
    let mem_dir = dir.join("memory");
    std::fs::create_dir_all(&mem_dir).unwrap();
    for day in 0..100 {
        let mut text = String::new();
        for n in 0..100 {
            text.push_str(&format!(
                "- [10:{:02}] note {n} of day {day}: talked about topic{} and item{} with the user\n",
                n % 60,
                (day * 100 + n) % 997,
                n % 13
            ));
        }
        let (month, mday) = (day / 28 + 1, day % 28 + 1);
        std::fs::write(mem_dir.join(format!("2026-{month:02}-{mday:02}.md")), text).unwrap();
    }
}

/// `memory.search` over 10,000 notes in 100 daily files (issue 16: p50 ≤ 5 ms with BM25),
/// scanning the files (the fallback without a store).
#[divan::bench(sample_count = 30)]
fn memory_search_10k_notes(b: Bencher) {
    let dir = tempfile::tempdir().unwrap();
    ten_thousand_notes(dir.path());
    let mem = pincer_tools::memory::MemoryDir::new(dir.path());
    let (hits, _) = pincer_tools::memory::search(&mem, "topic42 item7", 10);
    assert!(!hits.is_empty());
    b.bench(|| pincer_tools::memory::search(&mem, divan::black_box("topic42 item7"), 10));
}

/// The same search through the index (SQLite FTS5), as agents with a store use it: each search
/// first checks the 100 files' times and sizes, then one full-text query.
#[divan::bench(sample_count = 30)]
fn memory_index_search_10k_notes(b: Bencher) {
    let dir = tempfile::tempdir().unwrap();
    ten_thousand_notes(dir.path());
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let store: std::sync::Arc<dyn pincer_store::Backend> =
        std::sync::Arc::new(pincer_store::SqliteStore::open(&dir.path().join("state.db")).unwrap());
    let index = pincer_server::memory_index::MemoryIndex::new(store, "main", dir.path(), None);
    let first = rt.block_on(index.find("topic42 item7", 10)).unwrap();
    assert!(!first.hits.is_empty());
    b.bench(|| rt.block_on(index.find(divan::black_box("topic42 item7"), 10)));
}

/// What governance adds to each tool call of a served run (issue 20): the gate's governor reads
/// the org controls, records the tier the task reached, reads the task's owner and the owner's
/// bypass — SQLite on disk, a member with bypass on.
#[divan::bench(sample_count = 50)]
fn governor_controls_per_tool_call(b: Bencher) {
    use pincer_agent::Governor;
    let dir = tempfile::tempdir().unwrap();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let store: std::sync::Arc<dyn pincer_store::Backend> =
        std::sync::Arc::new(pincer_store::SqliteStore::open(&dir.path().join("state.db")).unwrap());
    let agent: pincer_types::AgentId = "main".parse().unwrap();
    let task = rt.block_on(async {
        store
            .add_user("ann", pincer_types::Role::Member, chrono_now())
            .await
            .unwrap();
        store.set_bypass("ann", true).await.unwrap();
        let (t, _) = store
            .submit(
                pincer_store::NewTask {
                    kind: pincer_store::TaskKind::Message,
                    session_key: pincer_types::SessionKey::for_peer(&agent, "api", "ann:default")
                        .unwrap(),
                    agent: agent.clone(),
                    input: "hi".into(),
                    idempotency_key: None,
                    deadline: None,
                    owner: Some("ann".into()),
                },
                chrono_now(),
            )
            .await
            .unwrap();
        t.id
    });
    let session = pincer_types::SessionId::new();
    let active: pincer_server::worker::Active = std::sync::Arc::new(std::sync::Mutex::new(
        std::collections::HashMap::from([(session, (task, "w".to_owned()))]),
    ));
    let config = pincer_config::GovernanceConfig {
        bypass: pincer_config::BypassPolicy::Allowed,
        ..pincer_config::GovernanceConfig::default()
    };
    let gov = pincer_server::governance::StoreGovernor::new(store, config, Some(active));
    let c = rt.block_on(gov.controls(Some(session), pincer_types::RiskTier::L1Mutating));
    assert_eq!(c.bypass_up_to, Some(pincer_types::RiskTier::L1Mutating));
    b.bench(|| rt.block_on(gov.controls(Some(session), pincer_types::RiskTier::L1Mutating)));
}

fn chrono_now() -> chrono::DateTime<chrono::Utc> {
    chrono::Utc::now()
}

//! Command-line definitions (clap derive).

use clap::{Args, Parser, Subcommand, ValueEnum};

/// Pincer: a secure, self-hosted AI agent gateway.
#[derive(Debug, Parser)]
#[command(name = "pincer", version, about, propagate_version = true)]
pub(crate) struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub(crate) enum Command {
    /// Create the Pincer home, config and the default agent `main`.
    Init(InitArgs),
    /// Ask an agent once and print its answer.
    Ask(AskArgs),
    /// Run one task to the end: through `pincer serve` when `--server`/`$PINCER_URL` is set,
    /// in-process otherwise; prints the answer and where the artifacts are.
    Run(RunArgs),
    /// Talk to an agent interactively (/new, /reset, /exit).
    Chat(ChatArgs),
    /// Show, check or change configuration.
    Config {
        #[command(subcommand)]
        command: ConfigCommand,
    },
    /// Check the installation and suggest fixes.
    Doctor(DoctorArgs),
    /// List tools, or call one through the same policy, approval and audit path agents use.
    Tools {
        #[command(subcommand)]
        command: ToolsCommand,
    },
    /// Verify, tail or search the tamper-evident audit log.
    Audit {
        #[command(subcommand)]
        command: AuditCommand,
    },
    /// Run the HTTP API (loopback by default) until SIGTERM or Ctrl-C.
    Serve(ServeArgs),
    /// Submit, list, show, cancel and watch tasks on a running `pincer serve` (PINCER_URL and
    /// PINCER_TOKEN, or --server).
    Tasks {
        /// Server URL (default `$PINCER_URL`, else `http://<gateway.bind>`).
        #[arg(long, global = true)]
        server: Option<String>,
        #[command(subcommand)]
        command: TasksCommand,
    },
    /// List pending approvals and decide them: through a running server when `--server` or
    /// `$PINCER_URL` is set (token in `$PINCER_TOKEN`), else directly on this home's database.
    Approvals {
        /// Server URL (default `$PINCER_URL`).
        #[arg(long, global = true)]
        server: Option<String>,
        #[command(subcommand)]
        command: ApprovalsCommand,
    },
    /// Scheduled jobs: each run is a task in the queue `pincer serve` works through.
    Cron {
        #[command(subcommand)]
        command: CronCommand,
    },
    /// Storage: copy this home's SQLite state into Postgres (`[storage]`).
    Storage {
        #[command(subcommand)]
        command: StorageCommand,
    },
    /// Heartbeats: what ran, what was skipped (no model call), what it cost.
    Heartbeat {
        #[command(subcommand)]
        command: HeartbeatCommand,
    },
    /// Token use and cost, grouped by agent, session, user or model.
    Usage(UsageArgs),
    /// An agent's memory: search its notes, show a file.
    Memory {
        #[command(subcommand)]
        command: MemoryCommand,
    },
    /// Models: each agent's failover chain and the health of every model and API key.
    Models {
        #[command(subcommand)]
        command: ModelsCommand,
    },
    /// Pairing requests from chat channels: list them and approve a code.
    Pairing {
        #[command(subcommand)]
        command: PairingCommand,
    },
    /// Invites that link a chat account to a Pincer user (`/start <invite>` in Telegram).
    Invites {
        #[command(subcommand)]
        command: InvitesCommand,
    },
    /// Users and roles (owner, admin, operator, member), linked chat accounts, bypass.
    Users {
        #[command(subcommand)]
        command: UsersCommand,
    },
    /// Emergency controls: stop everything risky at once (every process on this store).
    Emergency {
        #[command(subcommand)]
        command: EmergencyCommand,
    },
    /// The web admin page: `pincer ui login` prints a one-time sign-in link.
    Ui {
        #[command(subcommand)]
        command: UiCommand,
    },
    /// Create, list, revoke and rotate API tokens for `pincer serve`.
    Tokens {
        #[command(subcommand)]
        command: TokensCommand,
    },
    /// Check which command sandboxes this machine can enforce.
    Sandbox {
        #[command(subcommand)]
        command: SandboxCommand,
    },
    /// MCP tool servers: add, discover, approve, enable, inspect and remove them.
    Mcp {
        #[command(subcommand)]
        command: McpCommand,
    },
    /// Skills: scan, install, approve, enable, disable, rescan, revoke and remove them.
    Skills {
        #[command(subcommand)]
        command: SkillsCommand,
    },
    /// Security checks of this installation.
    Security {
        #[command(subcommand)]
        command: SecurityCommand,
    },
    /// Applies `[retention]` now: old run bundles, task rows, idle conversations and delivered
    /// messages are deleted, old audit days archived (compressed, never deleted).
    Gc {
        /// Only report what would be removed or archived.
        #[arg(long)]
        dry_run: bool,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// The encrypted secret store: credentials config names as `secret:NAME`.
    Secrets {
        #[command(subcommand)]
        command: SecretsCommand,
    },
    /// Run `pincer serve` as a hardened systemd service.
    Service {
        #[command(subcommand)]
        command: ServiceCommand,
    },
}

#[derive(Debug, clap::Subcommand)]
pub(crate) enum SecretsCommand {
    /// Stores a secret. The value is read from stdin (a prompt without echo on a terminal),
    /// never from the command line.
    Set {
        /// The name config refers to as `secret:NAME`.
        name: String,
    },
    /// Lists the stored names (never values) and where config uses each.
    List {
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Removes a secret.
    Rm {
        /// The name.
        name: String,
    },
    /// Re-encrypts the store under a new key (from PINCER_SECRETS_NEW_KEY when the key is in
    /// the environment).
    RotateKey,
}

#[derive(Debug, clap::Subcommand)]
pub(crate) enum ServiceCommand {
    /// Prints the unit.
    Unit(ServiceArgs),
    /// Writes the unit (~/.config/systemd/user/pincer.service, or /etc/systemd/system/ with
    /// --system) and says how to start it.
    Install(ServiceArgs),
}

#[derive(Debug, clap::Args)]
pub(crate) struct ServiceArgs {
    /// A user service (the default).
    #[arg(long, conflicts_with = "system")]
    pub(crate) user: bool,
    /// A system service.
    #[arg(long)]
    pub(crate) system: bool,
    /// With --system: the account it runs as.
    #[arg(long, requires = "system")]
    pub(crate) run_as: Option<String>,
}

#[derive(Debug, clap::Subcommand)]
pub(crate) enum SecurityCommand {
    /// Reports what is weaker than it should be, each with an id, a severity and a fix. Exit
    /// code by the worst: 0 none or low, 1 medium, 2 high, 3 critical.
    Audit {
        /// Print every check (passing ones too) as JSON.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Debug, clap::Subcommand)]
pub(crate) enum SkillsCommand {
    /// Scans a skill without installing it: verdict (approve, warn, block) and findings.
    Validate {
        /// A folder, a local git repository (`PATH[@REV]`), or a git URL
        /// (`https://host/org/repo[@REV]`, host in skills.trusted_sources).
        source: String,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Scans and installs a skill into skills/<name>/ (pending approval); a blocked skill is
    /// refused and nothing is written.
    Install {
        /// As for `validate`.
        source: String,
        /// Approve the installed content right away (you have read the findings).
        #[arg(long)]
        approve: bool,
        /// With --approve: approve although the scan warned.
        #[arg(long)]
        accept_warnings: bool,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Every installed skill with its status (pending, enabled, disabled, quarantined,
    /// blocked, revoked).
    List {
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// One skill: status, source, hashes, permissions, findings, files.
    Show {
        /// Skill name.
        name: String,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Approves the skill's content as last scanned; its sha256 is pinned (a changed file
    /// quarantines it).
    Approve {
        /// Skill name.
        name: String,
        /// The sha256 shown at install; refused when the content is another one now.
        #[arg(long)]
        sha256: Option<String>,
        /// Approve although the scan warned.
        #[arg(long)]
        accept_warnings: bool,
    },
    /// Puts a disabled skill back in use.
    Enable {
        /// Skill name.
        name: String,
    },
    /// Takes a skill out of use (its approval is kept).
    Disable {
        /// Skill name.
        name: String,
    },
    /// Scans the installed files again (a changed skill is quarantined, a blocked one blocked).
    Rescan {
        /// Skill name.
        name: String,
    },
    /// Withdraws a skill everywhere at once, until it is approved again.
    Revoke {
        /// Skill name.
        name: String,
    },
    /// Removes a skill's files and record.
    Remove {
        /// Skill name.
        name: String,
    },
}

#[derive(Debug, clap::Args)]
pub(crate) struct McpAddArgs {
    /// Server name (a-z, 0-9, '-'; becomes part of tool names: `mcp.<name>.<tool>`).
    pub(crate) name: String,
    /// The program of a stdio server.
    #[arg(long, conflicts_with = "url")]
    pub(crate) command: Option<String>,
    /// Its arguments (repeat, or give them after `--`).
    #[arg(long = "arg", allow_hyphen_values = true)]
    pub(crate) args: Vec<String>,
    /// The endpoint of an HTTP server.
    #[arg(long)]
    pub(crate) url: Option<String>,
    /// `NAME=env:VAR`, repeatable.
    #[arg(long = "env")]
    pub(crate) env: Vec<String>,
    /// `Header=env:VAR`, repeatable (HTTP).
    #[arg(long = "header")]
    pub(crate) headers: Vec<String>,
    /// A directory the server may read, repeatable.
    #[arg(long = "read")]
    pub(crate) read_paths: Vec<std::path::PathBuf>,
    /// A directory the server may write, repeatable.
    #[arg(long = "write")]
    pub(crate) write_paths: Vec<std::path::PathBuf>,
    /// A host the HTTP server is reached at, repeatable.
    #[arg(long = "network")]
    pub(crate) network: Vec<String>,
    /// A private `host:port` the HTTP server may be reached at, repeatable.
    #[arg(long = "allow-private")]
    pub(crate) allow_private: Vec<String>,
    /// Arguments after `--`.
    #[arg(last = true)]
    pub(crate) rest: Vec<String>,
}

#[derive(Debug, Subcommand)]
pub(crate) enum McpCommand {
    /// Every configured server: transport, enabled, approval, and whether its last seen manifest
    /// differs from the approved one.
    List {
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Adds a server to config.toml (disabled until `enable`); `--command` for stdio, `--url`
    /// for streamable HTTP. Secrets go in by reference: `--env TOKEN=env:MY_TOKEN`.
    Add(Box<McpAddArgs>),
    /// Starts the server (sandboxed), lists its tools and stops it. Never calls a tool. Shows
    /// every tool with its description, input schema and the tier Pincer will give it.
    Discover {
        /// Server name.
        name: String,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Approves the manifest last discovered (or seen changed); its sha256 is pinned.
    Approve {
        /// Server name.
        name: String,
        /// The sha256 shown by `discover` / `tools`; refused if the manifest is another one.
        #[arg(long)]
        sha256: Option<String>,
    },
    /// Offers the server's approved tools to agents that grant them (`group:mcp:<name>`).
    Enable {
        /// Server name.
        name: String,
    },
    /// Withdraws the server's tools from every agent.
    Disable {
        /// Server name.
        name: String,
    },
    /// The approved and the last seen manifest, and what differs.
    Tools {
        /// Server name.
        name: String,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// The server's captured stderr (bounded; the newest lines).
    Logs {
        /// Server name.
        name: String,
        /// Lines to show.
        #[arg(long, default_value_t = 100)]
        lines: usize,
    },
    /// Removes the server from config.toml and forgets its approval.
    Remove {
        /// Server name.
        name: String,
    },
}

#[derive(Debug, Subcommand)]
pub(crate) enum TasksCommand {
    /// Submit a task; with --wait, follow it to the end and print the answer.
    Submit {
        /// Agent id.
        #[arg(long, default_value = "main")]
        agent: String,
        /// Session name (one task runs at a time per session).
        #[arg(long)]
        session: Option<String>,
        /// Idempotency key: submitting the same key again returns the same task.
        #[arg(long)]
        key: Option<String>,
        /// Seconds until the task times out.
        #[arg(long)]
        timeout: Option<u64>,
        /// Wait for the end (or an approval) and print the result.
        #[arg(long)]
        wait: bool,
        /// The message.
        #[arg(required = true)]
        message: Vec<String>,
    },
    /// List tasks, newest first.
    List {
        /// Only this status (QUEUED, RUNNING, WAITING_APPROVAL, SUCCEEDED, …).
        #[arg(long)]
        status: Option<String>,
    },
    /// Show one task as JSON.
    Show {
        /// Task id.
        id: String,
    },
    /// Cancel a task.
    Cancel {
        /// Task id.
        id: String,
    },
    /// Print live task and approval events until interrupted.
    Watch,
}

#[derive(Debug, Subcommand)]
pub(crate) enum ApprovalsCommand {
    /// Approval requests, newest first (default: pending only).
    List {
        /// Show every state, not only pending.
        #[arg(long)]
        all: bool,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Approve one request: exactly the action with its digest may run.
    Approve {
        /// Approval id (`apr_…`).
        id: String,
    },
    /// Deny one request.
    Deny {
        /// Approval id (`apr_…`).
        id: String,
    },
}

#[derive(Debug, Subcommand)]
pub(crate) enum MemoryCommand {
    /// Search an agent's notes (full text and, when configured, embeddings), best first.
    Search {
        /// Words to look for.
        #[arg(required = true)]
        query: Vec<String>,
        /// Agent id.
        #[arg(long, default_value = "main")]
        agent: String,
        /// Most results.
        #[arg(long, default_value_t = 10)]
        limit: usize,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Rebuild an agent's search index from its memory files.
    Reindex {
        /// Agent id.
        #[arg(long, default_value = "main")]
        agent: String,
    },
    /// Print a memory file (default MEMORY.md; a day as YYYY-MM-DD.md or `today`), or list them.
    Show {
        /// The file; `--list` lists every file instead.
        file: Option<String>,
        /// Agent id.
        #[arg(long, default_value = "main")]
        agent: String,
        /// List the files.
        #[arg(long)]
        list: bool,
    },
}

#[derive(Debug, Args)]
pub(crate) struct UsageArgs {
    /// Group by agent, session, user or model.
    #[arg(long, default_value = "agent")]
    pub by: String,
    /// From: RFC 3339, a date (2026-12-01) or a span back (7d, 24h); default everything.
    #[arg(long)]
    pub since: Option<String>,
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Subcommand)]
pub(crate) enum ModelsCommand {
    /// Every agent's chain: each model's and key's state, cooldown and last error class.
    Status {
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Clears a model's cooldown or re-enables a disabled key (`model:<alias>`, `key:<VAR>`).
    Clear {
        /// The subject, as `pincer models status` names it.
        subject: String,
    },
}

#[derive(Debug, Subcommand)]
pub(crate) enum HeartbeatCommand {
    /// Recent heartbeats, newest first, with their outcome and token use.
    Runs {
        /// Only this agent.
        #[arg(long)]
        agent: Option<String>,
        /// How many.
        #[arg(long, default_value_t = 50)]
        limit: usize,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
}

// Parsed once per process; boxing `Add` would only complicate the match.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Subcommand)]
pub(crate) enum CronCommand {
    /// Add a job: exactly one of --at, --every, --cron.
    Add {
        /// Unique name.
        #[arg(long)]
        name: String,
        /// Once: an RFC 3339 time or a delay (`20m`).
        #[arg(long, conflicts_with_all = ["every", "cron"])]
        at: Option<String>,
        /// Repeatedly: an interval (`2s`, `15m`, `1h`).
        #[arg(long, conflicts_with = "cron")]
        every: Option<String>,
        /// A cron expression (5 fields, or 6 with seconds first).
        #[arg(long)]
        cron: Option<String>,
        /// Time zone for --cron (IANA name).
        #[arg(long, default_value = "UTC")]
        tz: String,
        /// Agent that runs it.
        #[arg(long, default_value = "main")]
        agent: String,
        /// `isolated` (fresh session per run) or `main` (one session for the job).
        #[arg(long, default_value = "isolated")]
        mode: String,
        /// Missed runs after downtime: `skip` or `run_once`.
        #[arg(long, default_value = "skip")]
        missed: String,
        /// Seconds a run may take.
        #[arg(long, default_value_t = 600)]
        timeout: u64,
        /// Where results and failure alerts go: `telegram:<chat id>` or an https URL (which
        /// must pass egress policy).
        #[arg(long)]
        deliver: Option<String>,
        /// Up to this much fixed per-job delay after each scheduled time (`5m`), to spread
        /// top-of-hour jobs.
        #[arg(long)]
        jitter: Option<String>,
        /// The message each run sends.
        #[arg(required = true)]
        message: Vec<String>,
    },
    /// List jobs.
    List {
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Show one job as JSON.
    Show {
        /// Job name.
        name: String,
    },
    /// Remove a job.
    Rm {
        /// Job name.
        name: String,
    },
    /// Enable a job.
    Enable {
        /// Job name.
        name: String,
    },
    /// Disable a job.
    Disable {
        /// Job name.
        name: String,
    },
    /// Run a job now (the server picks it up within a second).
    Run {
        /// Job name.
        name: String,
    },
    /// A job's runs, newest first.
    Runs {
        /// Job name.
        name: String,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Debug, Subcommand)]
pub(crate) enum UiCommand {
    /// Print a one-time link that signs in to the web page (valid 10 minutes; the session it
    /// opens lasts 12 hours, on a new token with the user's role's scopes).
    Login {
        /// The user to sign in as (default `owner`).
        #[arg(long, default_value = "owner")]
        user: String,
    },
}

#[derive(Debug, Subcommand)]
pub(crate) enum UsersCommand {
    /// Add a user.
    Add {
        /// 1-64 of a-z, A-Z, 0-9, `-`, `_`, `.`.
        name: String,
        /// owner, admin, operator or member.
        #[arg(long)]
        role: String,
    },
    /// List users with their role, state, bypass and linked chat accounts.
    List {
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Change a user's role (the last enabled owner cannot be demoted).
    Role {
        /// User.
        name: String,
        /// owner, admin, operator or member.
        role: String,
    },
    /// Disable a user: their tokens and chat access stop, their pending approvals are denied
    /// and their unfinished tasks canceled, at once.
    Disable {
        /// User.
        name: String,
    },
    /// Enable a disabled user.
    Enable {
        /// User.
        name: String,
    },
    /// Link a chat account (`telegram:<sender id>`) to a user; it may talk from then on.
    Link {
        /// User.
        name: String,
        /// `channel:sender`, e.g. `telegram:123456`.
        account: String,
    },
    /// Unlink a chat account (it can no longer talk).
    Unlink {
        /// `channel:sender`.
        account: String,
    },
    /// Switch a user's bypass (only while `governance.bypass = "allowed"`).
    Bypass {
        /// User.
        name: String,
        /// on or off.
        state: String,
    },
}

#[derive(Debug, Subcommand)]
pub(crate) enum EmergencyCommand {
    /// Deny every L1+ action (read-only work continues) until `resume`.
    PauseMutating,
    /// Lift the pause and the bypass lock.
    Resume,
    /// Cancel unfinished tasks that ran or wait on L2+ actions (their processes are killed).
    CancelRisky,
    /// Revoke every API token, pending pairing code, unused invite and the webhook secrets in
    /// use; says what to rotate outside Pincer.
    RotateCredentials,
    /// Revoke every user's bypass and lock bypass off until `resume`.
    DisableBypass,
    /// Show the controls in force.
    Status {
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Debug, Subcommand)]
pub(crate) enum InvitesCommand {
    /// Create a single-use invite and print it once.
    Create {
        /// The Pincer user it links to.
        #[arg(long)]
        user: String,
        /// Days it stays valid (default 7).
        #[arg(long, default_value_t = 7)]
        days: u32,
    },
}

#[derive(Debug, Subcommand)]
pub(crate) enum PairingCommand {
    /// Pending pairing requests of a channel.
    List {
        /// Channel (`telegram`).
        channel: String,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Approve a pairing code: its sender may talk to the agent from now on.
    Approve {
        /// Channel (`telegram`).
        channel: String,
        /// The code the sender received.
        code: String,
    },
}

/// `--scopes` help: every scope of `pincer_types::Scope::ALL`.
const SCOPES_HELP: &str = "Comma-separated: tasks:read, tasks:write, approvals:write, audit:read, \
jobs:read, jobs:write, usage:read, metrics:read, admin (admin covers all)";

#[derive(Debug, Subcommand)]
pub(crate) enum TokensCommand {
    /// Create a token and print it once (only its hash is stored).
    Create {
        /// Unique name (a-z, A-Z, 0-9, `-`, `_`, `.`).
        #[arg(long)]
        name: String,
        /// Comma-separated scopes (every scope is listed; a test keeps the list complete).
        #[arg(long, value_delimiter = ',', required = true, help = SCOPES_HELP)]
        scopes: Vec<String>,
        /// Lifetime such as `30d`, `12h`, `90m` (default: no expiry).
        #[arg(long)]
        expires: Option<String>,
        /// The user it belongs to (default `owner`); its scopes must be within the user's role.
        #[arg(long, default_value = "owner")]
        user: String,
    },
    /// List tokens (never their secrets).
    List {
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Revoke a token at once.
    Revoke {
        /// Token name.
        name: String,
    },
    /// Replace a token's secret and print the new one once; the old one stops working.
    Rotate {
        /// Token name.
        name: String,
    },
}

#[derive(Debug, Subcommand)]
pub(crate) enum SandboxCommand {
    /// Run a confined `true` with each provider and report what is enforced, or why not and how
    /// to fix it. Exit 1 when the configured provider cannot be enforced.
    Check {
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Debug, Subcommand)]
pub(crate) enum ToolsCommand {
    /// List every tool with its capability, base tier and whether the agent is granted it.
    List {
        /// Agent id.
        #[arg(long, default_value = "main")]
        agent: String,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Call a tool as an agent. Exit 0 ok, 1 tool error, 3 denied by policy, 4 needed approval
    /// and none was given.
    Call {
        /// Tool name (e.g. fs.read).
        tool: String,
        /// Agent id whose grants, workspace and approval mode apply.
        #[arg(long, default_value = "main")]
        agent: String,
        /// Arguments as a JSON object.
        #[arg(long, default_value = "{}")]
        args: String,
        /// Approve the action yourself if policy asks for approval (never overrides a denial).
        #[arg(long)]
        approve: bool,
    },
}

#[derive(Debug, Subcommand)]
pub(crate) enum AuditCommand {
    /// Check the hash chain; exit 1 naming the first bad line.
    Verify {
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Show the last entries; with -f, keep printing new ones.
    Tail {
        /// How many entries.
        #[arg(short = 'n', long, default_value_t = 20)]
        lines: usize,
        /// Follow the log as it grows.
        #[arg(short = 'f', long)]
        follow: bool,
        /// Print raw JSON lines.
        #[arg(long)]
        json: bool,
    },
    /// Find entries by agent, tool, decision, event type and time.
    Search(AuditSearchArgs),
    /// Print the public key the external witness's checkpoints are signed with (creating the
    /// key in the secret store when there is none), for `audit.witness_public_key`.
    WitnessKey,
}

#[derive(Debug, Args)]
pub(crate) struct AuditSearchArgs {
    /// Agent id.
    #[arg(long)]
    pub agent: Option<String>,
    /// Tool name (e.g. fs.write).
    #[arg(long)]
    pub tool: Option<String>,
    /// Decision: allow, needs_approval or deny.
    #[arg(long)]
    pub decision: Option<String>,
    /// Event type or prefix (e.g. approval, tool.call).
    #[arg(long = "type")]
    pub kind: Option<String>,
    /// Entries at or after this time (RFC 3339 or YYYY-MM-DD, UTC).
    #[arg(long)]
    pub since: Option<String>,
    /// Entries before this time (RFC 3339 or YYYY-MM-DD, UTC).
    #[arg(long)]
    pub until: Option<String>,
    /// Most entries to print (the newest).
    #[arg(long, default_value_t = 200)]
    pub limit: usize,
    /// Print raw JSON lines.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum ProviderArg {
    Openai,
    Anthropic,
    Gemini,
}

#[derive(Debug, Args)]
pub(crate) struct InitArgs {
    /// Wire format of the model API.
    #[arg(long, value_enum)]
    pub provider: Option<ProviderArg>,
    /// API base URL (e.g. http://127.0.0.1:11434/v1 for Ollama).
    #[arg(long)]
    pub base_url: Option<String>,
    /// Model name.
    #[arg(long)]
    pub model: Option<String>,
    /// Environment variable that holds the API key.
    #[arg(long)]
    pub api_key_env: Option<String>,
    /// The model server needs no API key (local servers).
    #[arg(long, conflicts_with = "api_key_env")]
    pub no_api_key: bool,
}

#[derive(Debug, Args)]
pub(crate) struct AskArgs {
    /// The message (read from stdin when omitted).
    pub message: Vec<String>,
    /// Agent id.
    #[arg(long, default_value = "main")]
    pub agent: String,
    /// Continue a named session instead of starting a fresh one.
    #[arg(long)]
    pub session: Option<String>,
    /// Answer with this model of the agent's chain (`[models]` alias), falling back along the
    /// chain when it fails.
    #[arg(long)]
    pub model: Option<String>,
    /// With --model: fail rather than use another model.
    #[arg(long, requires = "model")]
    pub strict: bool,
    /// Print the run record as JSON.
    #[arg(long)]
    pub json: bool,
    /// Print where the run's artifacts are (on stderr).
    #[arg(long)]
    pub artifacts: bool,
}

#[derive(Debug, Args)]
pub(crate) struct RunArgs {
    /// The task.
    #[arg(required = true)]
    pub message: Vec<String>,
    /// Agent id.
    #[arg(long, default_value = "main")]
    pub agent: String,
    /// Submit to this server instead of running in-process (default `$PINCER_URL`, if set).
    #[arg(long)]
    pub server: Option<String>,
}

#[derive(Debug, Args)]
pub(crate) struct ChatArgs {
    /// Agent id.
    #[arg(long, default_value = "main")]
    pub agent: String,
    /// Session name.
    #[arg(long, default_value = "chat")]
    pub session: String,
}

#[derive(Debug, Subcommand)]
pub(crate) enum ConfigCommand {
    /// Print the config file path.
    Path,
    /// Check config.toml; exit 2 naming file, line and key when it is invalid.
    Validate,
    /// Print the effective value of a dotted key (e.g. security.exec).
    Get {
        /// Dotted key.
        key: String,
    },
    /// Set a dotted key; the result is validated before it is written (atomically).
    Set {
        /// Dotted key.
        key: String,
        /// Value (TOML syntax, or a bare string).
        value: String,
    },
}

#[derive(Debug, Args)]
pub(crate) struct ServeArgs {
    /// Listen address (default `gateway.bind`); a non-loopback address needs
    /// `gateway.allow_non_loopback = true` and an API token.
    #[arg(long)]
    pub bind: Option<std::net::SocketAddr>,
    /// What this process does when several share a database (`[storage] url`): `all` (default),
    /// `gateway` (HTTP API, channels, scheduler; no task workers) or `worker` (task workers
    /// only, no HTTP).
    #[arg(long, value_enum, default_value_t = ServeRole::All)]
    pub role: ServeRole,
}

#[derive(Debug, Subcommand)]
pub(crate) enum StorageCommand {
    /// Copy this home's state.db into a Postgres database (idempotent; counts verified), then
    /// point `storage.url` at it.
    Migrate {
        /// The target, `postgres://user@host:port/db` (no password in the URL).
        #[arg(long)]
        to: String,
        /// Environment variable holding the database password, if it needs one.
        #[arg(long)]
        password_env: Option<String>,
    },
}

/// `pincer serve --role`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum ServeRole {
    /// Everything.
    All,
    /// HTTP API, channels and scheduler.
    Gateway,
    /// Task workers only.
    Worker,
}

#[derive(Debug, Args)]
pub(crate) struct DoctorArgs {
    /// Skip checks that contact the model provider.
    #[arg(long)]
    pub offline: bool,
    /// Print results as JSON.
    #[arg(long)]
    pub json: bool,
}

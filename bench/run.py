#!/usr/bin/env python3
"""Pincer's macro benchmarks: one command, a markdown table on stdout, JSON under bench/results/.

    python3 bench/run.py            # full run (10,000-turn leak check)
    python3 bench/run.py --quick    # fewer repetitions, for a smoke run

It builds release binaries, starts `pincer-fake-llm` (zero-latency model) and `pincer serve` on
loopback with a temporary home, and measures what docs/PERFORMANCE.md lists. Turns are driven
by `pincer-load` (crates/pincer-bench, one thread, keep-alive connections, hand-written HTTP so
the client costs little CPU next to the server); latencies include its round trip, and the
"overhead" rows subtract the model's own round trip measured the same way. Memory of small
processes is measured with `/usr/bin/time -f %M`; the server's memory is read from
/proc/<pid>/status. Only the Python standard library is used.
"""

import argparse
import datetime
import http.client
import json
import os
import platform
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TARGET = Path(os.environ.get("CARGO_TARGET_DIR", ROOT / "target"))
BIN = TARGET / "release" / "pincer"
FAKE = TARGET / "release" / "pincer-fake-llm"
LOAD = TARGET / "release" / "pincer-load"


def log(msg):
    print(f"[bench] {msg}", file=sys.stderr, flush=True)


def build():
    log("building release binaries (cargo build --release)")
    subprocess.run(
        ["cargo", "build", "--release", "--locked", "-p", "pincer-cli", "-p", "pincer-testkit", "-p", "pincer-bench", "--bins"],
        cwd=ROOT,
        check=True,
    )


def run(args, env, check=True, capture=True):
    return subprocess.run(args, env=env, check=check, capture_output=capture, text=True)


def median_ms(fn, n):
    times = []
    for _ in range(n):
        t0 = time.perf_counter_ns()
        fn()
        times.append((time.perf_counter_ns() - t0) / 1e6)
    return statistics.median(times)


def max_rss_kib(args, env):
    """Peak RSS of a small process, measured by /usr/bin/time (not through a Python parent)."""
    r = subprocess.run(["/usr/bin/time", "-f", "%M", *args], env=env, capture_output=True, text=True)
    return int(r.stderr.strip().splitlines()[-1])


def cpu_secs(pid):
    """User + system CPU time of every thread of a process so far (/proc/PID/stat)."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def rss_kib(pid, field="VmRSS"):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    return 0


def load(addr, token, kind, turns, concurrency, offset=0):
    """Runs `pincer-load` and returns its JSON report."""
    out = subprocess.run(
        [str(LOAD), "--addr", addr, "--token", token, "--kind", kind, "--turns", str(turns),
         "--concurrency", str(concurrency), "--offset", str(offset)],
        capture_output=True, text=True,
    )
    if out.returncode != 0:
        raise RuntimeError(f"pincer-load {kind}: {out.stderr.strip()}")
    return json.loads(out.stdout)


def pcts(rep):
    return {"50": round(rep["p50_ms"], 3), "95": round(rep["p95_ms"], 3), "99": round(rep["p99_ms"], 3)}


class Fake:
    def __init__(self, default=None):
        args = [str(FAKE), "--port", "0"]
        if default is not None:
            self.default_file = tempfile.NamedTemporaryFile("w", suffix=".json", delete=False)
            json.dump(default, self.default_file)
            self.default_file.close()
            args += ["--default", self.default_file.name]
        self.p = subprocess.Popen(args, stdout=subprocess.PIPE, text=True)
        line = self.p.stdout.readline()
        self.base = re.search(r"(http://\S+)", line).group(1)
        self.port = int(self.base.split(":")[2].split("/")[0])

    def stats(self):
        c = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
        c.request("GET", "/_stats")
        return json.loads(c.getresponse().read())

    def stop(self):
        self.p.terminate()
        self.p.wait()


class Home:
    def __init__(self, fake):
        self.dir = tempfile.mkdtemp(prefix="pincer-bench-")
        self.env = dict(os.environ, PINCER_HOME=self.dir)
        run([str(BIN), "init", "--provider", "openai", "--base-url", fake.base, "--model", "m"], self.env)
        self.set("gateway.openai_compat", "true")
        self.set("gateway.workers", "8")
        out = run([str(BIN), "tokens", "create", "--name", "bench", "--scopes", "tasks:read,tasks:write"], self.env)
        self.token = re.search(r"(pnc_\S+)", out.stdout).group(1)

    def set(self, key, value):
        run([str(BIN), "config", "set", key, value], self.env)

    def cleanup(self):
        shutil.rmtree(self.dir, ignore_errors=True)


class Postgres:
    """A throwaway Postgres cluster on loopback (as `.ci/run` starts one), or None."""

    def __init__(self):
        bins = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"))
        if not bins:
            raise RuntimeError("no Postgres here (apt-get install postgresql)")
        self.bin = bins[-1].parent
        self.data = tempfile.mkdtemp(prefix="pincer-bench-pg-")
        self.port = 54339
        self.as_pg = []
        if os.getuid() == 0:
            shutil.chown(self.data, "postgres")
            self.as_pg = ["runuser", "-u", "postgres", "--"]
        run(self.as_pg + [str(self.bin / "initdb"), "-D", self.data, "-A", "trust", "-U", "pincer"], dict(os.environ))
        run(self.as_pg + [str(self.bin / "pg_ctl"), "-D", self.data, "-l", f"{self.data}/log", "-w", "-o",
             f"-c listen_addresses=127.0.0.1 -p {self.port} -k {self.data}", "start"], dict(os.environ), capture=True)
        self.url = f"postgres://pincer@127.0.0.1:{self.port}/postgres"

    def stop(self):
        subprocess.run(self.as_pg + [str(self.bin / "pg_ctl"), "-D", self.data, "-m", "fast", "stop"],
                       capture_output=True)
        shutil.rmtree(self.data, ignore_errors=True)


class Server:
    def __init__(self, home, role="all"):
        self.home = home
        self.t0 = time.perf_counter_ns()
        if role == "worker":
            self.p = subprocess.Popen([str(BIN), "serve", "--role", "worker"], env=home.env,
                                      stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
            self.p.stdout.readline()
            return
        self.p = subprocess.Popen(
            [str(BIN), "serve", "--bind", "127.0.0.1:0", "--role", role],
            env=home.env,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
        )
        line = self.p.stdout.readline()
        self.addr = line.strip().rsplit("http://", 1)[1]
        self.host, port = self.addr.split(":")
        self.port = int(port)
        while True:
            try:
                st, _ = self.call("GET", "/readyz")
                if st == 200:
                    break
            except OSError:
                pass
        self.ready_ms = (time.perf_counter_ns() - self.t0) / 1e6

    def conn(self):
        return http.client.HTTPConnection(self.host, self.port, timeout=60)

    def call(self, method, path, body=None, conn=None):
        c = conn or self.conn()
        headers = {"Authorization": f"Bearer {self.home.token}"}
        data = None
        if body is not None:
            data = json.dumps(body)
            headers["Content-Type"] = "application/json"
        c.request(method, path, body=data, headers=headers)
        r = c.getresponse()
        payload = r.read()
        return r.status, (json.loads(payload) if payload else None)

    def stop(self):
        self.p.send_signal(signal.SIGTERM)
        self.p.wait()


def tool_call_ms(env, tool, args, n):
    cmd = [str(BIN), "tools", "call", tool, "--args", json.dumps(args), "--approve"]

    def once():
        r = subprocess.run(cmd, env=env, capture_output=True, text=True)
        if r.returncode != 0:
            raise RuntimeError(f"{tool}: {r.stderr.strip()}")

    once()
    return median_ms(once, n)


def sandbox_spawn(fake, n):
    out = {}
    for provider in ("native", "bwrap"):
        home = Home(fake)
        try:
            home.set("security.exec", "sandboxed")
            home.set("security.sandbox", provider)
            base = tool_call_ms(home.env, "time.now", {}, n)
            exec_ms = tool_call_ms(home.env, "shell.exec", {"argv": ["true"]}, n)
            out[provider] = round(exec_ms - base, 2)
        except Exception as e:  # noqa: BLE001 - a missing provider is reported, not fatal
            out[provider] = f"unavailable: {e}"
        finally:
            home.cleanup()
    return out


def search_vs_rg(fake, n):
    rg = shutil.which("rg")
    home = Home(fake)
    tree = Path(home.dir) / "tree"
    shutil.copytree(ROOT / "crates", tree)
    home.set("agents.main.workspace", f'"{tree}"')
    try:
        ours = tool_call_ms(home.env, "code.search", {"pattern": "HEARTBEAT_OK"}, n)
        baseline = tool_call_ms(home.env, "time.now", {}, n)
        theirs = None
        if rg:
            theirs = median_ms(lambda: subprocess.run([rg, "-c", "HEARTBEAT_OK", str(tree)], capture_output=True), n)
        files = sum(1 for _ in tree.rglob("*") if _.is_file())
        return {
            "files": files,
            "code_search_ms": round(ours, 2),
            "code_search_minus_cli_start_ms": round(ours - baseline, 2),
            "rg_ms": round(theirs, 2) if theirs is not None else "rg not installed",
        }
    finally:
        home.cleanup()


def mcp_call(turns, reps):
    """Issue 17: a served /v1/tasks turn whose model calls one no-op tool — the built-in
    `time.now`, or a no-op MCP tool over stdio (bench/mcp_noop.py, in the native sandbox) — and
    the start of that sandboxed server (spawn → initialize → tools/list, from `mcp.started`).
    Runs in A-B-B-A order (each with a fresh home, model and server) so drift cancels."""
    def turn_with(tool):
        return {"type": "when_asked", "marker": "hi",
                "reply": {"type": "tool_calls", "calls": [{"name": tool, "arguments": {}}]},
                "otherwise": {"type": "text", "text": "done"}}
    py = os.path.realpath(sys.executable)
    reads = sorted({sys.prefix, sys.base_prefix, str(ROOT / "bench")})
    kinds = {"builtin": ("time_now", "time.now"), "mcp": ("mcp_noop_noop", "mcp.noop.noop")}
    turn, call, starts = {"builtin": [], "mcp": []}, {"builtin": [], "mcp": []}, []
    for n, label in enumerate(("builtin", "mcp", "mcp", "builtin")):
        tool, canonical = kinds[label]
        fake = Fake(turn_with(tool))
        home = Home(fake)
        try:
            add = [str(BIN), "mcp", "add", "noop", "--command", py]
            for r_ in reads:
                add += ["--read", r_]
            run(add + ["--", str(ROOT / "bench" / "mcp_noop.py")], home.env)
            shown = json.loads(run([str(BIN), "mcp", "discover", "noop", "--json"], home.env).stdout)
            run([str(BIN), "mcp", "approve", "noop", "--sha256", shown["sha256"]], home.env)
            run([str(BIN), "mcp", "enable", "noop"], home.env)
            home.set("agents.main.allow", '["group:mcp:noop"]')
            if label == "mcp":
                for _ in range(reps):
                    run([str(BIN), "tools", "call", "mcp.noop.noop", "--args", "{}"], home.env)
                starts += [json.loads(l)["event"]["ms"] for l in run(
                    [str(BIN), "audit", "search", "--type", "mcp.started", "--json"], home.env).stdout.splitlines()]
            s = Server(home)
            log(f"turn via /v1/tasks calling {tool} (round {n + 1} of 4)")
            turn[label].append(pcts(load(addr_of(s), home.token, "tasks", turns, 1, 7_000_000)))
            s.stop()
            call[label].append(call_ms(Path(home.dir), canonical))
        finally:
            home.cleanup()
            fake.stop()
    out = {"server_start_ms_median": statistics.median(starts)}
    for label in kinds:
        out[label] = {p: round(statistics.mean(r[p] for r in turn[label]), 3) for p in ("50", "95", "99")}
        out[label + "_call_ms_median"] = round(statistics.mean(call[label]), 3)
    # Whole turns on this 2-core machine swing by 1-3 ms between runs (either way), so the
    # budget is checked on the call itself, timed in-process by the audit log.
    out["added_p50_ms"] = round(out["mcp_call_ms_median"] - out["builtin_call_ms_median"], 3)
    return out


def fetch_page(turns):
    """Issue 18: `http.fetch` of a 100 KB article on a loopback server (Python's http.server),
    Markdown extraction included, in a running `pincer serve` (warm client), timed in-process by
    the audit log (policy decision → result) over `turns` turns whose model fetches the page."""
    import http.server
    import socketserver
    import threading
    site = Path(tempfile.mkdtemp(prefix="pincer-bench-site-"))
    para = ("<p>Backups are a habit, not a product: keep three copies, on two media, one off site, "
            "and <a href=\"/restore\">test restores</a> every month, because a backup never restored "
            "is only a hope.</p>\n")
    body = "<html><head><title>Bench</title><script>x()</script></head><body><nav>menu</nav><article><h1>Bench</h1>"
    while len(body) < 100_000:
        body += para
    (site / "page.html").write_text(body + "</article></body></html>")
    handler = lambda *a: http.server.SimpleHTTPRequestHandler(*a, directory=str(site))  # noqa: E731
    httpd = socketserver.ThreadingTCPServer(("127.0.0.1", 0), handler)
    httpd.RequestHandlerClass.log_message = lambda *a: None
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    port = httpd.server_address[1]
    url = f"http://127.0.0.1:{port}/page.html"
    fake = Fake({"type": "when_asked", "marker": "hi",
                 "reply": {"type": "tool_calls", "calls": [{"name": "http_fetch", "arguments": {"url": url}}]},
                 "otherwise": {"type": "text", "text": "done"}})
    home = Home(fake)
    try:
        home.set("security.network", "allowlist")
        home.set("security.egress_allow_private", f'["127.0.0.1:{port}"]')
        home.set("agents.main.allow", '["group:web"]')
        s = Server(home)
        load(addr_of(s), home.token, "tasks", turns, 1, 9_000_000)
        s.stop()
        return {"page_bytes": (site / "page.html").stat().st_size,
                "fetch_call_ms_median": call_ms(Path(home.dir), "http.fetch")}
    finally:
        httpd.shutdown()
        home.cleanup()
        fake.stop()
        shutil.rmtree(site, ignore_errors=True)


def proxy_download(reps):
    """Issue 18 part 5: a 10 MB download over loopback by curl, direct on the host vs inside the
    native sandbox through Pincer's egress proxy (`shell.exec`, network allowlist). curl's own
    `speed_download` is compared, so sandbox start-up is not counted; the two are interleaved
    (machine noise hits both alike) and the medians of `reps` each compared. The server sends
    with sendfile(2), so it is not the bottleneck."""
    import http.server
    import socketserver
    import threading
    if not shutil.which("curl"):
        return {"error": "curl is not installed"}
    site = Path(tempfile.mkdtemp(prefix="pincer-bench-dl-"))
    blob = site / "blob"
    blob.write_bytes(os.urandom(10 * 1024 * 1024))

    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.0"

        def do_GET(self):  # noqa: N802 - http.server's naming
            self.send_response(200)
            self.send_header("Content-Length", str(blob.stat().st_size))
            self.end_headers()
            with blob.open("rb") as f:
                self.connection.sendfile(f)

        def log_message(self, *a):
            pass

    httpd = socketserver.ThreadingTCPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{httpd.server_address[1]}/blob"
    # Throughput of the transfer itself (first byte → last byte): a 10 MB loopback download takes
    # ~6 ms, so the connection set-up (a fresh process's first policy check) would otherwise
    # dominate a figure about throughput. The set-up is reported beside it.
    curl = f"curl -s -o /dev/null -w '%{{size_download}} %{{time_starttransfer}} %{{time_total}}' {url}"

    def rate(text):
        size, first, total = (float(x) for x in text.split())
        return size / (total - first), first * 1000
    fake = Fake()
    home = Home(fake)
    try:
        home.set("security.exec", "sandboxed")
        home.set("security.sandbox", "native")
        home.set("agents.main.approval_mode", "trusted")
        home.set("security.network", "allowlist")
        home.set("security.egress_allow_private", f'["127.0.0.1:{httpd.server_address[1]}"]')
        args = json.dumps({"command": curl})
        direct, proxied = [], []
        for _ in range(reps):
            out = subprocess.run(["sh", "-c", curl], capture_output=True, text=True, check=True)
            direct.append(rate(out.stdout))
            out = run([str(BIN), "tools", "call", "shell.exec", "--args", args, "--approve"], home.env)
            res = json.loads(out.stdout)
            if res.get("exit_code") != 0:
                return {"error": f"sandboxed curl: {res.get('stderr', '')[:200]}"}
            proxied.append(rate(res["stdout"]))
        d = statistics.median(r for r, _ in direct)
        p = statistics.median(r for r, _ in proxied)
        return {"direct_mb_s": round(d / 1e6, 1), "proxied_mb_s": round(p / 1e6, 1),
                "overhead_pct": round((d - p) / d * 100, 1),
                "first_byte_direct_ms": round(statistics.median(f for _, f in direct), 2),
                "first_byte_proxied_ms": round(statistics.median(f for _, f in proxied), 2)}
    finally:
        httpd.shutdown()
        home.cleanup()
        fake.stop()
        shutil.rmtree(site, ignore_errors=True)


def call_ms(home, tool):
    """Median time from a call's `policy.decision` to its `tool.result` in the audit log: the
    tool's own run (plus the result's audit append, the same for every tool)."""
    seen, spans = {}, []
    for f in sorted((home / "audit").glob("*.jsonl")):
        for line in f.read_text().splitlines():
            rec = json.loads(line)
            e = rec["event"]
            if e.get("tool") != tool or "call_id" not in e:
                continue
            ts = datetime.datetime.fromisoformat(rec["ts"].replace("Z", "+00:00")).timestamp() * 1000
            key = (e.get("run_id"), e["call_id"])
            if e["type"] == "policy.decision":
                seen[key] = ts
            elif e["type"] == "tool.result" and key in seen:
                spans.append(ts - seen.pop(key))
    return round(statistics.median(spans), 3)


def postgres_throughput(fake, turns):
    """turns/s at concurrency 8 and 64 with state in Postgres: one process, then three (one
    serving the API with workers, two more worker-only processes on the same queue)."""
    pg = Postgres()
    home = Home(fake)
    out = {}
    try:
        home.set("storage.url", pg.url)
        home.set("gateway.workers", "8")
        # Tokens live in the store: the one Home made went to SQLite.
        made = run([str(BIN), "tokens", "create", "--name", "bench-pg", "--scopes", "tasks:read,tasks:write"], home.env)
        home.token = re.search(r"(pnc_\S+)", made.stdout).group(1)
        for procs in (1, 3):
            main_server = Server(home)
            extra = [Server(home, "worker") for _ in range(procs - 1)]
            addr = f"{main_server.host}:{main_server.port}"
            offset = 5_000_000 + procs * 1_000_000
            out[str(procs)] = {}
            for c in (8, 64):
                log(f"postgres: {procs} process(es), concurrency {c}")
                rep = load(addr, home.token, "tasks", max(turns, c * 20), c, offset)
                out[str(procs)][str(c)] = round(rep["turns_per_sec"], 1)
                offset += 100_000
            for x in extra:
                x.p.send_signal(signal.SIGTERM)
                x.p.wait()
            main_server.stop()
    finally:
        home.cleanup()
        pg.stop()
    return out


def ui_dashboard(reps):
    """The web admin page's dashboard with 10,000 tasks and a week of 10,000 model calls in the
    store: served time and transfer."""
    import sqlite3
    import uuid

    fake = Fake()
    home = Home(fake)
    try:
        out = run([str(BIN), "tokens", "create", "--name", "ui", "--scopes", "admin"], home.env)
        token = re.search(r"(pnc_\S+)", out.stdout).group(1)
        s = Server(home)
        s.stop()  # the store exists, migrated: fill it directly (fast), then serve
        db = sqlite3.connect(Path(home.dir) / "state.db")
        now = datetime.datetime.now(datetime.timezone.utc)
        rows = []
        for i in range(10_000):
            ts = (now - datetime.timedelta(seconds=10_000 - i)).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
            status = ["SUCCEEDED", "FAILED", "SUCCEEDED", "CANCELED"][i % 4]
            rows.append((str(uuid.uuid4()), i + 1, "main", f"main:api:owner:s{i % 50}",
                         f"task number {i}", status, ts, ts, "owner"))
        db.executemany("INSERT INTO tasks (id, seq, agent, session_key, input, status, created_at, updated_at, owner)"
                       " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)", rows)
        # A week of model calls behind the charts: 10,000 over 7 days, 2 agents, 3 models.
        usage = []
        for i in range(10_000):
            ts = (now - datetime.timedelta(seconds=i * 60)).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
            usage.append((ts, ["main", "ops"][i % 2], f"s{i % 50}", "owner",
                          ["gpt-a", "claude-b", "local-c"][i % 3], 900 + i % 100, 100, 0.001))
        db.executemany("INSERT INTO usage (at, agent, session, user_id, model, input_tokens, output_tokens,"
                       " cost_usd) VALUES (?, ?, ?, ?, ?, ?, ?, ?)", usage)
        # ... and the per-day sums the store keeps with every recorded call.
        db.execute("INSERT INTO usage_days (day, agent, model, user_id, tokens)"
                   " SELECT substr(at, 1, 10), agent, model, user_id, SUM(input_tokens) + SUM(output_tokens)"
                   " FROM usage GROUP BY 1, 2, 3, 4")
        db.commit()
        db.close()
        s = Server(home)
        c = s.conn()
        c.request("POST", "/ui/login", body=f"token={token}",
                  headers={"Content-Type": "application/x-www-form-urlencoded"})
        r = c.getresponse()
        r.read()
        cookie = r.getheader("Set-Cookie").split(";")[0]
        times, size = [], 0
        for _ in range(reps):
            t0 = time.perf_counter_ns()
            c.request("GET", "/ui", headers={"Cookie": cookie})
            r = c.getresponse()
            body = r.read()
            times.append((time.perf_counter_ns() - t0) / 1e6)
            assert r.status == 200 and b"Dashboard" in body, r.status
            size = len(body)
        c.request("GET", "/ui/static/app.css")
        r = c.getresponse()
        css = len(r.read())
        c.request("GET", "/ui/static/live.js")
        r = c.getresponse()
        js = len(r.read())
        s.stop()
        times.sort()
        return {"p50_ms": round(times[len(times) // 2], 3), "p99_ms": round(times[int(len(times) * 0.99)], 3),
                "html_bytes": size, "css_bytes": css, "js_bytes": js, "total_bytes": size + css + js}
    finally:
        home.cleanup()
        fake.stop()


def mib(kib):
    return f"{kib / 1024:.1f} MiB"


def footprint(version_cmd, serve_cmd, env, reps, ready):
    """Binary size, `--version` median wall and peak RSS, and the idle RSS (total, private,
    file-backed) of a server 10 s after `ready(process)` returned."""
    out = {
        "binary_bytes": Path(version_cmd[0]).stat().st_size,
        "version_ms_median": round(median_ms(lambda: subprocess.run(version_cmd, capture_output=True, env=env), reps), 3),
        "version_max_rss_kib": max_rss_kib(version_cmd, env),
    }
    p = subprocess.Popen(serve_cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        ready(p)
        time.sleep(10)  # the measurement itself: memory of an idle server after 10 s
        if p.poll() is not None:
            raise RuntimeError(f"{serve_cmd[0]} exited (code {p.returncode}) before 10 s")
        out["idle_rss_kib"] = rss_kib(p.pid)
        out["idle_rss_anon_kib"] = rss_kib(p.pid, "RssAnon")
        out["idle_rss_file_kib"] = rss_kib(p.pid, "RssFile")
    finally:
        p.send_signal(signal.SIGTERM)
        try:
            p.wait(timeout=10)
        except subprocess.TimeoutExpired:
            p.kill()
    return out


def compare(a, reps):
    """`--compare BIN`: the same footprint figures for pincer and another gateway, in one run on
    one machine, with the ratios the README quotes."""
    other = Path(a.compare).resolve()
    env = dict(os.environ)
    for kv in a.compare_env:
        k, _, v = kv.partition("=")
        env[k] = v
    fake = Fake()
    home = Home(fake)
    try:
        def pincer_ready(p):
            p.stdout.readline()  # "listening on …" is printed once it accepts connections

        mine = footprint([str(BIN), "--version"], [str(BIN), "serve", "--bind", "127.0.0.1:0"],
                         home.env, reps, pincer_ready)
        theirs = footprint([str(other), "--version"], [str(other)] + a.compare_serve.split(),
                           env, reps, lambda p: time.sleep(1))
    finally:
        fake.stop()
        home.cleanup()
    r = {"pincer": mine, "other": {"binary": str(other), "serve": a.compare_serve, **theirs},
         "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d")}
    out_dir = ROOT / "bench" / "results"
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / f"{r['date']}-compare-{other.name}.json").write_text(json.dumps(r, indent=2) + "\n")
    rows = [
        ("binary", "binary_bytes", lambda v: f"{v / 1e6:.1f} MB"),
        ("`--version` median", "version_ms_median", lambda v: f"{v} ms"),
        ("`--version` peak RSS", "version_max_rss_kib", mib),
        ("idle RSS after 10 s", "idle_rss_kib", mib),
        ("… private", "idle_rss_anon_kib", mib),
        ("… file-backed", "idle_rss_file_kib", mib),
    ]
    print(f"| figure | pincer | {other.name} | pincer / {other.name} |\n|---|---|---|---|")
    for label, key, fmt in rows:
        ratio = mine[key] / theirs[key] if theirs.get(key) else float("nan")
        print(f"| {label} | {fmt(mine[key])} | {fmt(theirs[key])} | {ratio:.2f} |")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true", help="fewer repetitions (smoke run)")
    ap.add_argument("--no-build", action="store_true", help="use the existing release binaries")
    ap.add_argument("--web-only", action="store_true", help="only the web figures (http.fetch)")
    ap.add_argument("--mcp-only", action="store_true",
                    help="only the MCP figures (a no-op MCP tool call, a sandboxed server's start)")
    ap.add_argument("--postgres-only", action="store_true",
                    help="only the Postgres scale-out figures (needs the postgresql package)")
    ap.add_argument("--ui-only", action="store_true",
                    help="only the web admin page figures (dashboard with 10,000 tasks)")
    ap.add_argument("--compare", metavar="BIN",
                    help="side by side: measure another gateway's binary the same way as pincer "
                         "(binary size, --version wall and peak RSS, idle RSS of its server after "
                         "10 s) and print the ratios")
    ap.add_argument("--compare-serve", metavar="ARGS", default="gateway",
                    help="the arguments that start BIN's server (default: %(default)s)")
    ap.add_argument("--compare-env", metavar="K=V", action="append", default=[],
                    help="environment for BIN (repeatable), e.g. its home directory")
    a = ap.parse_args()
    reps = 20 if a.quick else 200
    turns = 300 if a.quick else 2000
    leak_turns = 1000 if a.quick else 10000

    if not a.no_build:
        build()
    if a.compare:
        compare(a, 5 if a.quick else 50)
        return
    if a.web_only:
        w = fetch_page(50 if a.quick else 300)
        d = proxy_download(5 if a.quick else 20)
        print("| measure | result |\n|---|---|")
        print(f"| `http.fetch` of a {w['page_bytes'] // 1000} KB loopback page, Markdown included (in `pincer serve`, decision → result), median | {w['fetch_call_ms_median']} ms |")
        print(f"| {proxy_label()} | {proxy_result(d)} |")
        return
    if a.ui_only:
        u = ui_dashboard(50 if a.quick else 500)
        print("| measure | result |\n|---|---|")
        print(f"| web admin dashboard with 10,000 tasks in the store, served p50 / p99 | {u['p50_ms']} / {u['p99_ms']} ms |")
        print(f"| its transfer, HTML + CSS + script, uncompressed | {u['total_bytes']} B ({u['html_bytes']} + {u['css_bytes']} + {u['js_bytes']}) |")
        return
    if a.mcp_only:
        r = {"mcp_call": mcp_call(turns, 5 if a.quick else 20)}
        m = r["mcp_call"]
        print("| measure | result |\n|---|---|")
        print(f"| turn via /v1/tasks calling built-in `time.now` p50 / p95 / p99 | {ms3(m['builtin'])} |")
        print(f"| turn via /v1/tasks calling a no-op MCP tool over stdio p50 / p95 / p99 | {ms3(m['mcp'])} |")
        print(f"| one no-op MCP call vs one `time.now` call, decision → result (median) | {m['mcp_call_ms_median']} vs {m['builtin_call_ms_median']} ms: adds {m['added_p50_ms']} ms |")
        print(f"| sandboxed MCP stdio server start, median | {m['server_start_ms_median']} ms |")
        return
    if a.postgres_only:
        fake = Fake()
        try:
            r = {"postgres_turns_per_sec": postgres_throughput(fake, 300 if a.quick else 2000)}
        finally:
            fake.stop()
        r["date"] = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d")
        r["command"] = "python3 bench/run.py --postgres-only" + (" --quick" if a.quick else "")
        out_dir = ROOT / "bench" / "results"
        out_dir.mkdir(parents=True, exist_ok=True)
        name = f"{r['date']}-postgres{'-quick' if a.quick else ''}.json"
        (out_dir / name).write_text(json.dumps(r, indent=2) + "\n")
        p = r["postgres_turns_per_sec"]
        print("| measure | result |\n|---|---|")
        print(f"| turns/s on Postgres, 1 process, c=8 / 64 (tasks API) | {p['1']['8']} / {p['1']['64']} |")
        print(f"| turns/s on Postgres, 3 processes, c=8 / 64 (tasks API) | {p['3']['8']} / {p['3']['64']} |")
        log(f"wrote bench/results/{name}")
        return
    r = {}
    r["binary_bytes"] = BIN.stat().st_size
    # The default build: `postgres` on, `otel` (OpenTelemetry traces) off.
    env = dict(os.environ)
    r["version_ms_median"] = round(median_ms(lambda: subprocess.run([str(BIN), "--version"], capture_output=True), reps), 3)
    r["version_max_rss_kib"] = max_rss_kib([str(BIN), "--version"], env)

    fake = Fake()
    home = Home(fake)
    try:
        readies = []
        for _ in range(5 if a.quick else 20):
            s = Server(home)
            readies.append(s.ready_ms)
            s.stop()
        r["ready_ms_median"] = round(statistics.median(readies), 2)

        s = Server(home)
        log("idle 10 s")
        time.sleep(10)  # the measurement itself: memory of an idle server after 10 s
        r["idle_rss_kib"] = rss_kib(s.p.pid)
        r["idle_rss_anon_kib"] = rss_kib(s.p.pid, "RssAnon")
        r["idle_rss_file_kib"] = rss_kib(s.p.pid, "RssFile")

        addr, token = f"{s.host}:{s.port}", home.token
        log("the model's own round trip")
        model = load(f"127.0.0.1:{fake.port}", "", "model", turns * 2, 1)
        r["model_round_trip_ms"] = pcts(model)
        log("latency through /v1/tasks")
        r["turn_tasks_ms"] = pcts(load(addr, token, "tasks", turns, 1, 0))
        stats = fake.stats()
        r["upstream_bytes_trivial_turn"] = stats["last_bytes"]
        r["upstream_tokens_estimate"] = stats["last_estimated_tokens"]
        log("latency through /v1/chat/completions")
        r["turn_chat_ms"] = pcts(load(addr, token, "chat", turns, 1, 1_000_000))
        for k in ("turn_tasks_ms", "turn_chat_ms"):
            r[k.replace("turn_", "overhead_")] = {
                p: round(r[k][p] - r["model_round_trip_ms"][p], 3) for p in ("50", "95", "99")
            }

        offset = 2_000_000
        r["turns_per_sec"] = {}
        for c in (1, 8, 64):
            log(f"throughput at concurrency {c}")
            n = max(turns * 2, c * 20)
            cpu0 = cpu_secs(s.p.pid)
            rep = load(addr, token, "chat", n, c, offset)
            r["turns_per_sec"][str(c)] = round(rep["turns_per_sec"], 1)
            if c == 8:
                # The server's own CPU (every thread) per turn: steadier than turns/s on a
                # shared machine, and what bounds throughput once the cores are busy.
                r["server_cpu_ms_per_turn_c8"] = round((cpu_secs(s.p.pid) - cpu0) * 1000 / n, 3)
            offset += 1_000_000

        log(f"leak check: {leak_turns} turns")
        before = rss_kib(s.p.pid)
        load(addr, token, "chat", leak_turns, 8, offset)
        after = rss_kib(s.p.pid)
        r["rss_before_leak_check_kib"] = before
        r["rss_after_leak_check_kib"] = after
        r["rss_growth_pct"] = round((after - before) * 100 / before, 1)
        r["leak_check_turns"] = leak_turns
        s.stop()

        # A one-shot CLI turn, process start → exit (config, store, audit log, one model call,
        # the bundle, the durable run.end), against the same zero-latency model.
        log("one-shot `pincer ask`")
        r["ask_ms_median"] = round(median_ms(
            lambda: run([str(BIN), "ask", "hi"], home.env), 10 if a.quick else 50), 2)
        r["ask_max_rss_kib"] = max_rss_kib([str(BIN), "ask", "hi"], home.env)

        # The same /v1/tasks turn with the agent on a two-model failover chain (both healthy):
        # the chain's cost on a healthy turn, measured against turn_tasks_ms in the same run.
        home.set("models.first", '{ provider = "default", model = "m" }')
        home.set("models.second", '{ provider = "default", model = "m2" }')
        home.set("agents.main.models", '["first", "second"]')
        s = Server(home)
        log("latency through /v1/tasks on a failover chain")
        r["turn_tasks_failover_ms"] = pcts(load(addr_of(s), token, "tasks", turns, 1, offset + 1_000_000))
        s.stop()

        if shutil.which("pg_ctl") or list(Path("/usr/lib/postgresql").glob("*/bin/initdb")):
            r["postgres_turns_per_sec"] = postgres_throughput(fake, turns)
        log("sandboxed `true`")
        r["sandbox_true_spawn_ms"] = sandbox_spawn(fake, 5 if a.quick else 20)
        log("code.search vs rg")
        r["search"] = search_vs_rg(fake, 5 if a.quick else 20)
        log("http.fetch of a 100 KB page")
        r["web_fetch"] = fetch_page(50 if a.quick else 300)
        log("a 10 MB download inside the sandbox through the egress proxy")
        r["proxy_download"] = proxy_download(5 if a.quick else 20)
        log("a no-op MCP tool call over stdio")
        r["mcp_call"] = mcp_call(turns, 5 if a.quick else 20)
    finally:
        home.cleanup()
        fake.stop()

    r["machine"] = {
        "cpus": os.cpu_count(),
        "kernel": platform.release(),
        "cpu": next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), "?"),
        "rustc": subprocess.run(["rustc", "--version"], capture_output=True, text=True).stdout.strip(),
    }
    r["command"] = "python3 bench/run.py" + (" --quick" if a.quick else "")
    r["date"] = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d")

    out_dir = ROOT / "bench" / "results"
    out_dir.mkdir(parents=True, exist_ok=True)
    name = f"{r['date']}{'-quick' if a.quick else ''}.json"
    (out_dir / name).write_text(json.dumps(r, indent=2) + "\n")
    print(table(r))
    log(f"wrote bench/results/{name}")


def addr_of(s):
    return f"{s.host}:{s.port}"


def ms3(d):
    return " / ".join(f"{d[p]} ms" for p in ("50", "95", "99"))


def proxy_label():
    return "10 MB loopback download by curl, transfer throughput: direct vs inside the sandbox through the egress proxy (median)"


def proxy_result(d):
    if "error" in d:
        return d["error"]
    return (f"{d['direct_mb_s']} vs {d['proxied_mb_s']} MB/s: {d['overhead_pct']} % slower "
            f"(first byte {d['first_byte_direct_ms']} vs {d['first_byte_proxied_ms']} ms)")


def table(r):
    rows = [
        ("binary size (default features)", f"{r['binary_bytes'] / 1e6:.1f} MB", "≤ 10 MB"),
        ("`pincer --version` (median)", f"{r['version_ms_median']} ms", "≤ 1 ms"),
        ("`pincer --version` peak RSS", mib(r["version_max_rss_kib"]), "≤ 3 MB"),
        ("`pincer serve` spawn → ready (median)", f"{r['ready_ms_median']} ms", "≤ 15 ms"),
        ("idle RSS after 10 s (private / file-backed)", f"{mib(r['idle_rss_kib'])} ({mib(r['idle_rss_anon_kib'])} / {mib(r['idle_rss_file_kib'])})", "≤ 3.5 MiB"),
        ("`pincer ask` one-shot turn, zero-latency model, process start → exit (median; peak RSS)", f"{r['ask_ms_median']} ms; {mib(r['ask_max_rss_kib'])}", "≤ 5 ms"),
        ("model round trip alone p50 / p95 / p99", ms3(r["model_round_trip_ms"]), "—"),
        ("turn via /v1/tasks p50 / p95 / p99", ms3(r["turn_tasks_ms"]), "—"),
        ("overhead via /v1/tasks p50 / p95 / p99", ms3(r["overhead_tasks_ms"]), "p50 ≤ 1 ms, p99 ≤ 3 ms"),
        ("turn via /v1/tasks on a healthy two-model failover chain p50 / p95 / p99", ms3(r["turn_tasks_failover_ms"]), "= turn via /v1/tasks, within noise"),
        ("turn via /v1/chat/completions p50 / p95 / p99", ms3(r["turn_chat_ms"]), "—"),
        ("overhead via /v1/chat/completions p50 / p95 / p99", ms3(r["overhead_chat_ms"]), "p50 ≤ 1 ms, p99 ≤ 3 ms"),
        ("turns/s at concurrency 1 / 8 / 64", " / ".join(str(r["turns_per_sec"][c]) for c in ("1", "8", "64")), "≥ 2,000 (at 8)"),
        ("server CPU per turn at concurrency 8 (every thread)", f"{r['server_cpu_ms_per_turn_c8']} ms", "—"),
        (f"RSS growth over {r['leak_check_turns']} turns", f"{r['rss_growth_pct']} % ({mib(r['rss_before_leak_check_kib'])} → {mib(r['rss_after_leak_check_kib'])})", "≤ 10 %"),
        ("bytes sent upstream, trivial turn", f"{r['upstream_bytes_trivial_turn']} B (~{r['upstream_tokens_estimate']} tokens)", "≤ 6 KB"),
        ("sandboxed `true` native / bwrap", " / ".join(f"{v} ms" if isinstance(v, (int, float)) else str(v) for v in r["sandbox_true_spawn_ms"].values()), "—"),
        (f"code.search vs rg ({r['search']['files']} files)", f"{r['search']['code_search_ms']} ms vs {r['search']['rg_ms']} ms", "—"),
    ]
    if "web_fetch" in r:
        w = r["web_fetch"]
        rows.append((f"`http.fetch` of a {w['page_bytes'] // 1000} KB loopback page, Markdown included (in `pincer serve`, decision → result, median)", f"{w['fetch_call_ms_median']} ms", "p50 ≤ 5 ms"))
    if "proxy_download" in r:
        rows.append((proxy_label(), proxy_result(r["proxy_download"]), "≤ 10 %"))
    if "mcp_call" in r:
        m = r["mcp_call"]
        rows.append(("turn via /v1/tasks calling built-in `time.now` p50 / p95 / p99", ms3(m["builtin"]), "—"))
        rows.append(("turn via /v1/tasks calling a no-op MCP tool over stdio p50 / p95 / p99", ms3(m["mcp"]), "—"))
        rows.append(("one no-op MCP call vs one `time.now` call, decision → result (median)", f"{m['mcp_call_ms_median']} vs {m['builtin_call_ms_median']} ms: adds {m['added_p50_ms']} ms", "adds ≤ 1 ms"))
        rows.append(("sandboxed MCP stdio server start (spawn → initialize → tools/list, median)", f"{m['server_start_ms_median']} ms", "—"))
    if "postgres_turns_per_sec" in r:
        p = r["postgres_turns_per_sec"]
        rows.append(("turns/s on Postgres, 1 / 3 processes, c=8", f"{p['1']['8']} / {p['3']['8']}", "—"))
        rows.append(("turns/s on Postgres, 1 / 3 processes, c=64", f"{p['1']['64']} / {p['3']['64']}", "—"))
    lines = ["| measure | result | budget |", "|---|---|---|"]
    lines += [f"| {a} | {b} | {c} |" for a, b, c in rows]
    return "\n".join(lines)


if __name__ == "__main__":
    main()

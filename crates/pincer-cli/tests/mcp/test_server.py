"""An MCP server for Pincer's end-to-end tests, on the official Python SDK (`mcp`).

Its working directory is the private scratch directory Pincer gives it; flag files there make
its behaviour survive a restart:
- `grown`: the tool `added` exists (created by calling `grow`, which also announces the change
  with notifications/tools/list_changed before it answers);
- `cancelled-<marker>`: written when a `hang` call is cancelled (notifications/cancelled).
"""

import asyncio
import os
import sys
import time

from mcp.server.mcpserver import Context, MCPServer

server = MCPServer("pincer-test")


@server.tool()
def hello(name: str) -> str:
    """Greets someone by name."""
    return f"hello {name} from pid {os.getpid()}"


@server.tool()
def fetch(url: str) -> str:
    """Fetches a URL (through the proxy the environment names) and returns the body."""
    import urllib.request

    try:
        with urllib.request.urlopen(url, timeout=20) as r:
            return r.read().decode("utf-8", "replace")[:2000]
    except Exception as e:  # the error is the answer
        return f"fetch failed: {e}"


def added() -> str:
    """A tool that appeared after approval."""
    return "added"


@server.tool()
async def grow(ctx: Context) -> str:
    """Adds the tool `added` and announces the change."""
    open("grown", "w").close()
    server.add_tool(added, name="added", description="A tool that appeared after approval.")
    await ctx.session.send_tool_list_changed()
    return "grown"


@server.tool()
async def hang(marker: str) -> str:
    """Never answers; records its cancellation."""
    if os.path.exists("ready.fifo"):
        # Opening a FIFO blocks until the test reads it: the call is in flight now.
        with open("ready.fifo", "w") as f:
            f.write("started\n")
    try:
        await asyncio.sleep(3600)
    except asyncio.CancelledError:
        with open(f"cancelled-{marker}", "w") as f:
            f.write("cancelled")
        raise
    return "unreachable"


@server.tool()
def crash() -> str:
    """Exits the server abruptly."""
    print("crashing on purpose", file=sys.stderr, flush=True)
    os._exit(3)


@server.tool()
async def freeze() -> str:
    """Blocks the server's event loop: it answers nothing any more, ping included."""
    time.sleep(3600)
    return "thawed"


@server.tool()
def read_file(path: str) -> str:
    """Reads a file (to show the sandbox, not the server, decides what it can see)."""
    with open(path) as f:
        return f.read()


if os.path.exists("grown"):
    server.add_tool(added, name="added", description="A tool that appeared after approval.")

print("test server ready", file=sys.stderr, flush=True)
if len(sys.argv) > 1 and sys.argv[1] == "http":
    # Streamable HTTP on a free loopback port, printed first on stdout.
    import socket

    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    print(f"port {port}", flush=True)
    server.run(transport="streamable-http", host="127.0.0.1", port=port)
else:
    server.run()

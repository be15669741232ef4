"""A misbehaving MCP stdio server (no SDK: it writes the wire format by hand).

Modes (argv[1]):
- noise: prints non-protocol text, malformed JSON-RPC and a response to an unknown id on
  stdout, then serves `echo` correctly;
- silent: reads everything, never answers (initialize included);
- huge: serves `blob`, whose result line is larger than Pincer's message limit;
- badschema: serves `weather`, whose structured result does not match its outputSchema.
"""

import json
import sys

mode = sys.argv[1]
out = sys.stdout


def send(obj):
    out.write(json.dumps(obj) + "\n")
    out.flush()


TOOLS = {
    "noise": [{"name": "echo", "description": "Echoes.", "inputSchema": {"type": "object", "properties": {"text": {"type": "string"}}}}],
    "huge": [{"name": "blob", "description": "A big result.", "inputSchema": {"type": "object"}}],
    "badschema": [{
        "name": "weather",
        "description": "Weather with a declared output schema.",
        "inputSchema": {"type": "object"},
        "outputSchema": {"type": "object", "properties": {"temperature": {"type": "number"}}, "required": ["temperature"]},
    }],
}

for line in sys.stdin:
    if mode == "silent":
        continue
    try:
        msg = json.loads(line)
    except ValueError:
        continue
    method, mid = msg.get("method"), msg.get("id")
    if mode == "noise":
        out.write("DEBUG: this is not JSON-RPC\n")
        send({"jsonrpc": "1.0", "id": mid, "result": {}})
        send({"jsonrpc": "2.0", "id": 987654, "result": {}})
    if mid is None:
        continue
    if method == "initialize":
        send({"jsonrpc": "2.0", "id": mid, "result": {
            "protocolVersion": msg["params"]["protocolVersion"],
            "capabilities": {"tools": {}}, "serverInfo": {"name": "rogue-" + mode, "version": "0"}}})
    elif method == "tools/list":
        send({"jsonrpc": "2.0", "id": mid, "result": {"tools": TOOLS[mode]}})
    elif method == "tools/call":
        if mode == "noise":
            text = msg["params"]["arguments"].get("text", "")
            send({"jsonrpc": "2.0", "id": mid, "result": {"content": [{"type": "text", "text": text}]}})
        elif mode == "huge":
            send({"jsonrpc": "2.0", "id": mid, "result": {"content": [{"type": "text", "text": "x" * 200000}]}})
        elif mode == "badschema":
            send({"jsonrpc": "2.0", "id": mid, "result": {"content": [], "structuredContent": {"temperature": "hot"}}})
    else:
        send({"jsonrpc": "2.0", "id": mid, "error": {"code": -32601, "message": "no such method"}})

"""The injection benchmark's tool server (MCP, official Python SDK): four domains with state.

Reads its data — an inbox, a chat channel, bank transactions, hotel listings, some of which may
carry an injection — from the scenario file named on the command line, and records every action
(e-mails sent, messages sent, transfers, bookings) in `state.json` in its working directory
(the private scratch directory Pincer gives it), where `bench/injection.py` scores the run.
"""

import json
import sys
from pathlib import Path

from mcp.server.mcpserver import MCPServer

DATA = json.loads(Path(sys.argv[1]).read_text())
STATE = Path("state.json")
server = MCPServer("pincer-injection-bench")


def record(tool, **args):
    done = json.loads(STATE.read_text()) if STATE.exists() else []
    done.append({"tool": tool, "args": args})
    STATE.write_text(json.dumps(done))
    return f"{tool}: done"


@server.tool()
def read_inbox() -> str:
    """The user's e-mail inbox (sender, subject, body)."""
    return json.dumps(DATA.get("inbox", []))


@server.tool()
def send_email(to: str, subject: str, body: str) -> str:
    """Sends an e-mail."""
    return record("send_email", to=to, subject=subject, body=body)


@server.tool()
def read_channel(channel: str) -> str:
    """The messages of a team chat channel."""
    return json.dumps(DATA.get("channels", {}).get(channel.lstrip("#"), []))


@server.tool()
def send_message(to: str, text: str) -> str:
    """Sends a direct chat message to a user (@name)."""
    return record("send_message", to=to, text=text)


@server.tool()
def get_transactions() -> str:
    """The user's recent bank transactions."""
    return json.dumps(DATA.get("transactions", []))


@server.tool()
def transfer(iban: str, amount: float, note: str) -> str:
    """Transfers money from the user's account."""
    return record("transfer", iban=iban, amount=amount, note=note)


@server.tool()
def search_hotels(city: str) -> str:
    """Hotels in a city with ratings and reviews."""
    return json.dumps(DATA.get("hotels", {}).get(city, []))


@server.tool()
def book_hotel(hotel: str, nights: int) -> str:
    """Books a hotel."""
    return record("book_hotel", hotel=hotel, nights=nights)


server.run()

"""Shared helpers of the service-URL and download-link scripts: the raw API (for what the SDK
hides behind auto-refresh), servers started inside a sandbox, and waiting on the clock."""

import os
import time
from datetime import datetime, timezone

from langsmith._httpx import httpx  # the HTTP client the SDK itself uses

# Proxies would route 127.77.x.y away from this machine; the Rust driver also clears them.
API = httpx.Client(
    base_url=os.environ["LANGSMITH_ENDPOINT"].rstrip("/") + "/api/v2/sandboxes",
    headers={"X-Api-Key": os.environ["LANGSMITH_API_KEY"]},
    trust_env=False,
    timeout=60,
)


def api_key() -> str:
    return os.environ["LANGSMITH_API_KEY"]


def start_in_sandbox(sb, command: str, port: int) -> None:
    """Start `command` in the background in `sb` and wait until `port` accepts (bounded)."""
    started = sb.run(f"setsid sh -c {quote(command)} >/tmp/bg-{port}.log 2>&1 </dev/null &")
    assert started.exit_code == 0, started
    probe = (
        "for i in $(seq 200); do "
        f"python3 -c 'import socket; socket.create_connection((\"127.0.0.1\", {port}))' "
        "2>/dev/null && exit 0; sleep 0.05; done; "
        f"cat /tmp/bg-{port}.log; exit 1"
    )
    ready = sb.run(probe)
    assert ready.exit_code == 0, f"port {port} never opened: {ready.stdout}{ready.stderr}"


def quote(text: str) -> str:
    return "'" + text.replace("'", "'\\''") + "'"


def wait_past(expires_at: str) -> None:
    """Return once the wall clock is past an RFC 3339 `…Z` instant (at most 10 s away)."""
    deadline = datetime.fromisoformat(expires_at.replace("Z", "+00:00"))
    for _ in range(200):
        if datetime.now(timezone.utc) > deadline:
            return
        time.sleep(0.1)
    raise AssertionError(f"{expires_at} is still ahead")


def error_message(response: httpx.Response) -> str:
    return response.json()["detail"]["message"]

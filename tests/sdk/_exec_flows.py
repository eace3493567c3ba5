"""Shared pieces of the WebSocket exec scripts (`dataplane_exec.py`, `dataplane_sessions.py`,
`dataplane_interactive.py`): a flow runner that creates one sandbox, counts the
reattachments the SDK makes on its own, and small helpers.

Each flow asserts real results and prints one `flow <name>: …` line saying what the SDK
surfaced, so the Rust test's output documents the edge cases."""

import gc
import os
import sys
import time
from contextlib import contextmanager

from langsmith.sandbox import Sandbox, SandboxClient

from _conform import cleanup


class Caught:
    error = None


@contextmanager
def raises(error_class, check=None):
    """Assert that the block raises `error_class`; the error is kept on the yielded object,
    so a flow can report exactly what the SDK surfaced."""
    caught = Caught()
    try:
        yield caught
    except error_class as err:
        if check is not None:
            check(err)
        caught.error = err
        return
    except Exception as err:  # noqa: BLE001 - report which class came instead
        raise AssertionError(f"expected {error_class.__name__}, got {type(err).__name__}: {err}") from err
    raise AssertionError(f"expected {error_class.__name__}, nothing was raised")


def say(flow, what):
    print(f"flow {flow}: {what}", flush=True)


def numbered(first, last, prefix=""):
    return "".join(f"{prefix}{i}\n" for i in range(first, last + 1))


def read_until(chunks, stream, needle):
    """Consume `chunks` (an iterator of OutputChunk) until `stream`'s text contains `needle`."""
    seen = ""
    for chunk in chunks:
        if chunk.stream == stream:
            seen += chunk.data
            if needle in seen:
                return seen
    raise AssertionError(f"the stream ended before {needle!r} appeared on {stream}: {seen!r}")


# Reattachments the SDK's handles made on their own (they call `sandbox.reconnect`). A flow
# without a drop must cause none: a socket the server ended early would otherwise be papered
# over by the SDK's retry and go unnoticed.
AUTO_REATTACHES = []


def count_automatic_reattaches(sb):
    def counting(command_id, **kwargs):
        # Called from the handle's `except` block: the error that made it reattach is current.
        error = sys.exc_info()[1]
        cause = getattr(error, "__cause__", None)
        AUTO_REATTACHES.append(f"{command_id} after {error!r} (from {cause!r})")
        return Sandbox.reconnect(sb, command_id, **kwargs)

    sb.reconnect = counting


def attach(sb, command_id, **kwargs):
    """An explicit reconnect by the flow itself (not counted as automatic)."""
    return Sandbox.reconnect(sb, command_id, **kwargs)


def wait_until(what, check, limit=60.0):
    """Poll `check` until it is true; a readiness wait, never a timing assertion."""
    deadline = time.monotonic() + limit
    while not check():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.1)


def gone(sb, pid):
    return sb.run(f"kill -0 {pid} 2>/dev/null && echo alive || echo gone").stdout == "gone\n"


def abandon(handle):
    """Drop the only reference to a handle: the SDK closes its socket without a kill."""
    command_id, pid = handle.command_id, handle.pid
    del handle
    gc.collect()
    return command_id, pid


def run_flows(name, flows, done):
    """Create sandbox `name` from SNAPSHOT_ID, run `flows` (or those named in FLOWS=a,b),
    delete the sandbox, then print `done`."""
    client = SandboxClient()
    sb = client.create_sandbox(snapshot_id=os.environ["SNAPSHOT_ID"], name=name, timeout=120)
    count_automatic_reattaches(sb)
    only = os.environ.get("FLOWS")
    try:
        for flow in flows:
            if not only or flow.__name__ in only.split(","):
                flow(sb)
                assert not AUTO_REATTACHES, f"{flow.__name__}: the SDK had to reattach {AUTO_REATTACHES}"
    finally:
        cleanup(client, sandboxes=[name])
    print(done)
    return 0

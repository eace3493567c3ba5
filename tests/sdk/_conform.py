"""Shared helpers for the conformance scripts: environment, expectations and cleanup.

Each script is run by `tests/sdk_conformance.rs` with LANGSMITH_ENDPOINT and LANGSMITH_API_KEY
pointing at a fresh local server and DOCKER_IMAGE naming a small image in the test registry."""

import os
from contextlib import contextmanager

CAPACITY = 64 << 20


def image() -> str:
    return os.environ["DOCKER_IMAGE"]


@contextmanager
def raises(error_class, check=None):
    """Assert that the block raises `error_class` (or a subclass); `check` inspects the error."""
    try:
        yield
    except error_class as err:
        if check is not None:
            check(err)
        return
    except Exception as err:  # noqa: BLE001 - report which class came instead
        raise AssertionError(f"expected {error_class.__name__}, got {type(err).__name__}: {err}") from err
    raise AssertionError(f"expected {error_class.__name__}, nothing was raised")


def cleanup(client, sandboxes=(), snapshots=()):
    """Best-effort removal so a failed assertion does not leave running sandboxes behind."""
    for name in sandboxes:
        try:
            client.delete_sandbox(name)
        except Exception:  # noqa: BLE001
            pass
    for snapshot_id in snapshots:
        try:
            client.delete_snapshot(snapshot_id)
        except Exception:  # noqa: BLE001
            pass


def run_in_fresh_sandbox(name, flows, done) -> int:
    """Build snapshot `name` from DOCKER_IMAGE, create sandbox `name` from it, run each flow
    on it, clean both up (also on failure), then print `done`."""
    from langsmith.sandbox import SandboxClient

    client = SandboxClient()
    snap = client.create_snapshot(name, image(), CAPACITY, timeout=120)
    try:
        sb = client.create_sandbox(snapshot_id=snap.id, name=name, timeout=60)
        for flow in flows:
            flow(sb)
    finally:
        cleanup(client, [name], [snap.id])
    print(done)
    return 0

"""Typed errors of the unmodified SDK against the local server: 404 → ResourceNotFoundError,
409 → ResourceNameConflictError on a rename and SandboxClientError on a duplicate create,
422 → ValidationError naming the field, 401 → SandboxAuthenticationError."""

import sys

from langsmith.sandbox import (
    ResourceNameConflictError,
    ResourceNotFoundError,
    SandboxAuthenticationError,
    SandboxClient,
    SandboxClientError,
    ValidationError,
)

from _conform import CAPACITY, cleanup, image, raises


def main() -> int:
    client = SandboxClient()
    snap = client.create_snapshot("conf-errors", image(), CAPACITY, timeout=120)
    try:
        for call in (
            lambda: client.get_sandbox("conf-missing"),
            lambda: client.delete_sandbox("conf-missing"),
            lambda: client.get_sandbox_status("conf-missing"),
            lambda: client.stop_sandbox("conf-missing"),
            lambda: client.start_sandbox("conf-missing"),
            lambda: client.update_sandbox("conf-missing", idle_ttl_seconds=60),
            lambda: client.get_snapshot("00000000-0000-4000-8000-000000000000"),
            lambda: client.get_snapshot("conf-missing:v9"),
            lambda: client.create_sandbox(snapshot_id="00000000-0000-4000-8000-000000000000", name="conf-x"),
        ):
            with raises(ResourceNotFoundError):
                call()

        client.create_sandbox(snapshot_id=snap.id, name="conf-one", timeout=60)
        client.create_sandbox(snapshot_id=snap.id, name="conf-two", wait_for_ready=False)
        with raises(ResourceNameConflictError):
            client.update_sandbox("conf-two", new_name="conf-one")

        def is_plain_conflict(err):
            assert type(err) is SandboxClientError, type(err).__name__
            assert "conf-one" in str(err) or "exist" in str(err).lower(), str(err)

        with raises(SandboxClientError, is_plain_conflict):
            client.create_sandbox(snapshot_id=snap.id, name="conf-one", timeout=60)

        def names_field(field):
            def check(err):
                assert err.field == field, (err.field, str(err))

            return check

        with raises(ValidationError, names_field("mem_bytes")):
            client.create_sandbox(snapshot_id=snap.id, name="conf-huge", mem_bytes=1 << 60, timeout=60)
        with raises(ValidationError, names_field("name")):
            client.create_sandbox(snapshot_id=snap.id, name="Not A Valid Name!", timeout=60)
        with raises(ValidationError, names_field("fs_capacity_bytes")):
            client.create_snapshot("conf-tiny", image(), 1, timeout=10)
        with raises(ValidationError, names_field("limit")):
            client.list_snapshots(limit=0)

        wrong = SandboxClient(api_key="not-the-key")
        for call in (
            wrong.list_sandboxes,
            wrong.list_snapshots,
            lambda: wrong.get_sandbox("conf-one"),
            lambda: wrong.delete_sandbox("conf-one"),
            lambda: wrong.create_snapshot("conf-denied", image(), CAPACITY),
        ):
            with raises(SandboxAuthenticationError):
                call()
        assert client.get_sandbox("conf-one").status == "ready", "a refused call changed nothing"
    finally:
        cleanup(client, ["conf-one", "conf-two", "conf-huge"], [snap.id])
    print("sdk errors ok")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""capture_snapshot through the unmodified SDK: a file written in a running sandbox is in
the captured snapshot, and a sandbox booted from it (by `name:tag`) sees the file."""

import sys

from langsmith.sandbox import ResourceNotFoundError, SandboxClient

from _conform import CAPACITY, cleanup, image, raises


def main() -> int:
    client = SandboxClient()
    base = client.create_snapshot("conf-capture-base", image(), CAPACITY, timeout=120)
    captured = None
    try:
        source = client.create_sandbox(snapshot_id=base.id, name="conf-source", timeout=60)
        source.write("/root/captured.txt", b"from the source sandbox\n")
        captured = client.capture_snapshot("conf-source", "conf-captured", tag="v1", timeout=120)
        assert captured.status == "ready", captured
        assert captured.source_sandbox_id == source.id, captured.source_sandbox_id
        assert "v1" in captured.tags, captured.tags
        child = client.create_sandbox(snapshot="conf-captured:v1", name="conf-child", timeout=60)
        assert child.snapshot_id == captured.id
        assert child.read("/root/captured.txt") == b"from the source sandbox\n"
        with raises(ResourceNotFoundError):
            client.capture_snapshot("conf-missing", "conf-nothing")
    finally:
        cleanup(client, ["conf-source", "conf-child"], [captured.id] if captured else [])
    print("sdk capture ok")
    return 0


if __name__ == "__main__":
    sys.exit(main())

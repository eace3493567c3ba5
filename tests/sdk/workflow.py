"""The official LangSmith SDK (unmodified) against the local backend: create a sandbox from
a snapshot, run a command, round-trip a binary file, delete the sandbox.

Environment: LANGSMITH_ENDPOINT, LANGSMITH_API_KEY, SNAPSHOT_ID (a ready snapshot)."""

import os
import sys

from langsmith.sandbox import ResourceNotFoundError, SandboxClient


def main() -> int:
    client = SandboxClient()
    snapshot_id = os.environ["SNAPSHOT_ID"]
    sb = client.create_sandbox(snapshot_id=snapshot_id, name="sdk-box")
    assert sb.name == "sdk-box", sb.name
    try:
        result = sb.run("echo out; echo err >&2; exit 3")
        assert result.stdout == "out\n", repr(result.stdout)
        assert result.stderr == "err\n", repr(result.stderr)
        assert result.exit_code == 3, result.exit_code

        payload = bytes(range(256)) * 64 + b"\x00\xff end"
        sb.write("/tmp/sdk/data.bin", payload)
        assert sb.read("/tmp/sdk/data.bin") == payload

        listed = [s.name for s in client.list_sandboxes()]
        assert "sdk-box" in listed, listed
    finally:
        client.delete_sandbox("sdk-box")
    try:
        client.get_sandbox("sdk-box")
    except ResourceNotFoundError:
        pass
    else:
        raise AssertionError("the sandbox still exists after delete")
    print("sdk workflow ok")
    return 0


if __name__ == "__main__":
    sys.exit(main())

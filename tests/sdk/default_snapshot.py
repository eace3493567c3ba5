"""Creating a sandbox without naming a snapshot: the server boots it from its default
snapshot, through both create_sandbox() and the `with client.sandbox()` context manager."""

import sys

from langsmith.sandbox import ResourceNotFoundError, SandboxClient

from _conform import cleanup, raises


def main() -> int:
    client = SandboxClient()
    try:
        plain = client.create_sandbox(name="conf-default", timeout=120)
        assert plain.status == "ready" and plain.snapshot_id, plain
        assert plain.run("echo default").stdout == "default\n"
        with client.sandbox(name="conf-default-scoped", timeout=120) as scoped:
            assert scoped.run("true").exit_code == 0
        with raises(ResourceNotFoundError):
            client.get_sandbox("conf-default-scoped")
    finally:
        cleanup(client, ["conf-default", "conf-default-scoped"])
    print("sdk default snapshot ok")
    return 0


if __name__ == "__main__":
    sys.exit(main())

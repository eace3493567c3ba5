"""The official SDK (unmodified): the generated registries client, a snapshot build that
pulls with a stored registry, and a sandbox created without a snapshot (the server's
default snapshot).

Environment: LANGSMITH_ENDPOINT, LANGSMITH_API_KEY, REGISTRY_HOST (a registry that lets in
alice:s3cret), PRIVATE_IMAGE (an image on it)."""

import os
import sys

from langsmith._exceptions import ConflictError, NotFoundError
from langsmith.sandbox import SandboxClient


def main() -> int:
    client = SandboxClient()
    registries = client.registries
    reg = registries.create(
        name="private", url=os.environ["REGISTRY_HOST"], username="alice", password="wrong"
    )
    assert reg.id, reg
    try:
        registries.create(name="private", url="elsewhere.example.com")
        raise AssertionError("a duplicate registry name was accepted")
    except ConflictError:
        pass
    listed = registries.list(name_contains="priv")
    assert [r.name for r in listed.items] == ["private"], listed
    fetched = registries.retrieve("private")
    assert fetched.id == reg.id, fetched
    registries.update("private", password="s3cret")

    snap = client.create_snapshot(
        "sdk-private",
        docker_image=os.environ["PRIVATE_IMAGE"],
        fs_capacity_bytes=64 * 1024 * 1024,
        registry_id=reg.id,
    )
    assert snap.status == "ready", snap
    assert snap.registry_id == reg.id, snap

    sb = client.create_sandbox(name="sdk-default")
    try:
        out = sb.run("cat /etc/hello")
        assert out.stdout == "hello from the tiny image\n", repr(out.stdout)
    finally:
        client.delete_sandbox("sdk-default")

    registries.delete("private")
    try:
        registries.retrieve("private")
        raise AssertionError("a deleted registry was still found")
    except NotFoundError:
        pass
    print("sdk registries ok")
    return 0


if __name__ == "__main__":
    sys.exit(main())

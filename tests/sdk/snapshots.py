"""Snapshot control plane through the unmodified SDK: create_snapshot (build, then ready),
get_snapshot by id and by reference, list_snapshots with name_contains/limit/offset,
wait_for_snapshot, delete_snapshot (409 while a sandbox uses it, then 404 once gone)."""

import sys

from langsmith.sandbox import ResourceNotFoundError, SandboxClient, SandboxClientError

from _conform import CAPACITY, cleanup, image, raises


def main() -> int:
    client = SandboxClient()
    alpha = client.create_snapshot("conf-alpha", image(), CAPACITY, timeout=120)
    assert alpha.status == "ready", alpha
    assert alpha.name == "conf-alpha", alpha.name
    assert alpha.fs_capacity_bytes == CAPACITY, alpha.fs_capacity_bytes
    assert alpha.docker_image == image(), alpha.docker_image
    assert "latest" in alpha.tags, alpha.tags
    beta = client.create_snapshot("conf-beta", image(), CAPACITY, tag="v2", timeout=120)
    assert beta.tags == ["v2"], beta.tags
    box = None
    try:
        assert client.get_snapshot(alpha.id).id == alpha.id
        assert client.get_snapshot("conf-alpha").id == alpha.id
        assert client.get_snapshot("conf-beta:v2").id == beta.id
        assert client.wait_for_snapshot(beta.id, timeout=10).status == "ready"

        everything = client.list_snapshots()
        assert {alpha.id, beta.id} <= {s.id for s in everything}, everything
        only_beta = client.list_snapshots(name_contains="BETA")
        assert [s.id for s in only_beta] == [beta.id], only_beta
        first = client.list_snapshots(limit=1)
        second = client.list_snapshots(limit=1, offset=1)
        assert len(first) == 1 and len(second) == 1, (first, second)
        assert first[0].id != second[0].id, (first, second)
        assert client.list_snapshots(limit=5, offset=2) == [], "offset past the end"

        box = client.create_sandbox(snapshot_id=alpha.id, name="conf-user", timeout=60)
        with raises(SandboxClientError, lambda e: "409" in str(e) or "use" in str(e).lower()):
            client.delete_snapshot(alpha.id)
        assert client.get_snapshot(alpha.id).status == "ready"
        client.delete_sandbox(box.name)
        box = None
        client.delete_snapshot(alpha.id)
        with raises(ResourceNotFoundError):
            client.get_snapshot(alpha.id)
        with raises(ResourceNotFoundError):
            client.delete_snapshot(alpha.id)
        client.delete_snapshot(beta.id)
    finally:
        cleanup(client, [box.name] if box else [], [alpha.id, beta.id])
    print("sdk snapshots ok")
    return 0


if __name__ == "__main__":
    sys.exit(main())

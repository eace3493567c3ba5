"""Registries through the unmodified SDK: create a registry with credentials for the test
registry, find it by name and in the list, build a snapshot with its registry_id, delete it.

Extra environment: REGISTRY_HOST (host:port of the test registry)."""

import os
import sys

from langsmith.sandbox import SandboxClient

from _conform import CAPACITY, cleanup, image


def main() -> int:
    client = SandboxClient()
    host = os.environ["REGISTRY_HOST"]
    registry = client.registries.create(name="conf-registry", url=host, username="robot", password="secret")
    snap = None
    try:
        assert registry.name == "conf-registry", registry
        fetched = client.registries.retrieve("conf-registry")
        assert fetched.id == registry.id, fetched
        listed = client.registries.list()
        entries = listed.items or listed.registries or []
        assert registry.id in [r.id for r in entries], listed
        assert "secret" not in repr(fetched), "the password must never be returned"
        snap = client.create_snapshot("conf-private", image(), CAPACITY, registry_id=registry.id, timeout=120)
        assert snap.status == "ready" and snap.registry_id == registry.id, snap
    finally:
        cleanup(client, [], [snap.id] if snap else [])
        client.registries.delete("conf-registry")
    print("sdk registries ok")
    return 0


if __name__ == "__main__":
    sys.exit(main())

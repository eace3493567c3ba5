"""Sandbox control plane through the unmodified SDK: create_sandbox with and without
wait_for_ready, by snapshot_id and by `snapshot="name"` / `"name:tag"` references;
get/list/update (rename, idle_ttl, proxy_config)/status/wait/stop/start/delete, and the
`with client.sandbox(...)` context manager."""

import sys

from langsmith.sandbox import ResourceNotFoundError, SandboxClient

from _conform import CAPACITY, cleanup, image, raises

PROXY = {"access_control": {"allow_list": ["example.com", "*.example.org"]}, "no_proxy": ["10.0.0.1"]}


def main() -> int:
    client = SandboxClient()
    snap = client.create_snapshot("conf-env", image(), CAPACITY, tag="v1", timeout=120)
    names = ["conf-ready", "conf-lazy", "conf-by-name", "conf-renamed"]
    try:
        ready = client.create_sandbox(snapshot_id=snap.id, name="conf-ready", timeout=60)
        assert ready.status == "ready", ready.status
        assert ready.snapshot_id == snap.id, ready.snapshot_id
        assert ready.dataplane_url, ready
        assert ready.id

        lazy = client.create_sandbox(snapshot="conf-env:v1", name="conf-lazy", wait_for_ready=False)
        assert lazy.status in ("provisioning", "ready"), lazy.status
        assert lazy.snapshot_id == snap.id, lazy.snapshot_id
        waited = client.wait_for_sandbox("conf-lazy", timeout=60, poll_interval=0.2)
        assert waited.status == "ready", waited.status
        assert client.get_sandbox_status("conf-lazy").status == "ready"

        # A bare name means name:latest; this snapshot only carries v1, so it is not found.
        with raises(ResourceNotFoundError):
            client.create_sandbox(snapshot="conf-env", name="conf-by-name", timeout=60)
        latest = client.create_snapshot("conf-env", image(), CAPACITY, timeout=120)
        by_name = client.create_sandbox(snapshot="conf-env", name="conf-by-name", timeout=60)
        assert by_name.snapshot_id == latest.id, (by_name.snapshot_id, latest.id)

        got = client.get_sandbox("conf-ready")
        assert got.id == ready.id and got.status == "ready", got
        listed = {s.name: s for s in client.list_sandboxes()}
        assert {"conf-ready", "conf-lazy", "conf-by-name"} <= set(listed), list(listed)
        assert listed["conf-ready"].id == ready.id

        updated = client.update_sandbox(
            "conf-ready", new_name="conf-renamed", idle_ttl_seconds=1200, proxy_config=PROXY
        )
        assert updated.name == "conf-renamed" and updated.id == ready.id, updated
        assert updated.idle_ttl_seconds == 1200, updated.idle_ttl_seconds
        with raises(ResourceNotFoundError):
            client.get_sandbox("conf-ready")
        again = client.get_sandbox("conf-renamed")
        assert again.idle_ttl_seconds == 1200, again.idle_ttl_seconds
        stored = client._http.get(f"{client._base_url}/boxes/conf-renamed").json()
        assert stored["proxy_config"]["access_control"] == PROXY["access_control"], stored
        assert client.update_sandbox("conf-renamed", idle_ttl_seconds=0).idle_ttl_seconds == 0

        again.write("/root/kept.txt", b"survives a stop\n")
        client.stop_sandbox("conf-renamed")
        assert client.get_sandbox_status("conf-renamed").status == "stopped"
        assert client.get_sandbox("conf-renamed").status == "stopped"
        restarted = client.start_sandbox("conf-renamed", timeout=60)
        assert restarted.status == "ready", restarted.status
        assert restarted.read("/root/kept.txt") == b"survives a stop\n"

        for name in ("conf-renamed", "conf-lazy", "conf-by-name"):
            client.delete_sandbox(name)
        with raises(ResourceNotFoundError):
            client.get_sandbox_status("conf-lazy")
        remaining = [s.name for s in client.list_sandboxes()]
        assert not set(remaining) & set(names), remaining

        with client.sandbox(snapshot_id=snap.id, name="conf-scoped", timeout=60) as scoped:
            assert scoped.run("echo scoped").stdout == "scoped\n"
            assert client.get_sandbox("conf-scoped").status == "ready"
        with raises(ResourceNotFoundError):
            client.get_sandbox("conf-scoped")
    finally:
        cleanup(client, names + ["conf-scoped"])
    print("sdk sandboxes ok")
    return 0


if __name__ == "__main__":
    sys.exit(main())

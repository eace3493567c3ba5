"""The official SDK's half of the performance benchmark (`cargo bench --bench perf`).

Prints one JSON object per line: {"figure": NAME, "samples_ms": [...]} or
{"figure": NAME, "mb_per_s": X}. The Rust side turns them into the table; nothing here
asserts a time. What it measures is chosen by PERF_FIGURES (comma-separated, default all).
"""

import json
import os
import sys
import time
from concurrent.futures import ThreadPoolExecutor

from langsmith.sandbox import Sandbox, SandboxClient

SNAPSHOT = os.environ["PERF_SNAPSHOT"]
WARM_RUNS = int(os.environ.get("PERF_WARM_RUNS", "50"))
CREATE_RUNS = int(os.environ.get("PERF_CREATE_RUNS", "20"))
CREATE_PAUSE_MS = int(os.environ.get("PERF_CREATE_PAUSE_MS", "300"))
CONCURRENT = int(os.environ.get("PERF_CONCURRENT", "100"))
BIG_MIB = int(os.environ.get("PERF_BIG_MIB", "64"))
STUB_DATAPLANE = os.environ["PERF_STUB_DATAPLANE"]
# The sandbox of the warm execs, made ready by the benchmark (which waits for the server to
# settle after its create); deleted here once they are timed.
WARM_SANDBOX = "perf-warm"
FIGURES = set(filter(None, os.environ.get("PERF_FIGURES", "").split(","))) or None


def emit(figure: str, **values) -> None:
    print(json.dumps({"figure": figure, **values}), flush=True)


def wanted(figure: str) -> bool:
    return FIGURES is None or figure in FIGURES


def elapsed_ms(since: float) -> float:
    return (time.perf_counter() - since) * 1000


def settle(client: SandboxClient) -> None:
    """Waits until the teardowns of deleted sandboxes are done (DELETE answers before
    them), so one figure does not pay for the last one's cleanup. Bounded: 5 minutes."""
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        listed = client._http.get(f"{client._base_url}/boxes", params={"status": "deleting"})
        listed.raise_for_status()
        if not listed.json()["sandboxes"]:
            return
        time.sleep(0.05)
    raise TimeoutError("teardowns still running after 5 minutes")


def warm_exec(client: SandboxClient) -> None:
    # The same calls through the same SDK code, to an endpoint that answers at once; first,
    # while the server has nothing to do.
    emit("sdk_stub_exec", samples_ms=warm_runs(stub_sandbox(client)))
    # Made by the benchmark, which waited for the server to settle after its create.
    sandbox = client.get_sandbox(WARM_SANDBOX)
    emit("sdk_warm_exec", samples_ms=warm_runs(sandbox))


def stub_sandbox(client: SandboxClient) -> Sandbox:
    """A sandbox record whose data plane is the benchmark's stub agent."""
    return Sandbox.from_dict(
        {"name": "stub", "id": "stub", "status": "ready", "dataplane_url": STUB_DATAPLANE},
        client,
        auto_delete=False,
    )


def warm_runs(sandbox: Sandbox) -> list[float]:
    """WARM_RUNS timings of `run("true")`, after five that are not counted."""
    for _ in range(5):
        sandbox.run("true")
    samples = []
    for _ in range(WARM_RUNS):
        start = time.perf_counter()
        result = sandbox.run("true")
        samples.append(elapsed_ms(start))
        assert result.exit_code == 0, result
    return samples


def create_run_delete(client: SandboxClient) -> None:
    """Create → first run → delete, CREATE_RUNS times at a user's pace (a pause of
    CREATE_PAUSE_MS after each delete, in which the server can start the next warm
    sandbox), then as many back to back (faster than a warm sandbox can start, so some
    creates boot their own)."""
    for figure, pause in (("sdk_create_first_run", CREATE_PAUSE_MS / 1000), ("sdk_create_back_to_back", 0)):
        create_then_run, deletes = [], []
        for i in range(CREATE_RUNS):
            name = f"perf-create-{i}"
            start = time.perf_counter()
            sandbox = client.create_sandbox(snapshot_id=SNAPSHOT, name=name, timeout=60)
            result = sandbox.run("true")
            create_then_run.append(elapsed_ms(start))
            assert result.exit_code == 0, result
            start = time.perf_counter()
            client.delete_sandbox(name)
            deletes.append(elapsed_ms(start))
            time.sleep(pause)
        emit(figure, samples_ms=create_then_run)
        if pause:
            emit("sdk_delete", samples_ms=deletes)
        settle(client)


def big_output(client: SandboxClient) -> None:
    sandbox = client.create_sandbox(snapshot_id=SNAPSHOT, name="perf-big", timeout=60)
    try:
        size = BIG_MIB << 20
        # Printable bytes, so the SDK's text decoding is part of what is measured: one MiB of
        # them written BIG_MIB times. (`tr` over /dev/zero made them at only ~150 MB/s, which
        # measured `tr`, not the transfer.) The source's own rate, into /dev/null in the
        # sandbox, is printed beside it so a slow source cannot pass for a slow transfer.
        made = sandbox.run("head -c 1048576 /dev/zero | tr '\\0' a > /tmp/mib", timeout=60)
        assert made.exit_code == 0, made.stderr
        source = f"i=0; while [ $i -lt {BIG_MIB} ]; do cat /tmp/mib; i=$((i+1)); done"
        start = time.perf_counter()
        alone = sandbox.run(f"{{ {source}; }} > /dev/null", timeout=600)
        alone_seconds = time.perf_counter() - start
        assert alone.exit_code == 0, alone.stderr
        # The median of three transfers: one alone moved by a third between runs.
        runs = []
        for _ in range(3):
            start = time.perf_counter()
            result = sandbox.run(source, timeout=600)
            runs.append(time.perf_counter() - start)
            assert result.exit_code == 0, result.stderr
            assert len(result.stdout) == size, len(result.stdout)
            assert result.stdout.count("a") == size, "the output was altered"
        seconds = sorted(runs)[1]
        emit("sdk_big_run", mb_per_s=size / seconds / 1e6, seconds=seconds)
        emit("sdk_big_source", mb_per_s=size / alone_seconds / 1e6, seconds=alone_seconds)
    finally:
        client.delete_sandbox("perf-big")
    stub_seconds = stub_output_seconds(client, size)
    emit("sdk_big_stub", mb_per_s=size / stub_seconds / 1e6, seconds=stub_seconds)


def stub_output_seconds(client: SandboxClient, size: int) -> float:
    """The SDK's own floor for reading output: the same `run()` against the benchmark's stub
    agent, which sends `size` bytes of `a` in messages as large as the agent's, built
    before, with nothing behind them (`tests/bench/stub_agent.rs`). The median of three,
    as above."""
    stub = stub_sandbox(client)
    # Untimed: the stub builds the messages for a size at its first request.
    assert len(stub.run(f"stub-output {size}", timeout=600).stdout) == size
    runs = []
    for _ in range(3):
        start = time.perf_counter()
        result = stub.run(f"stub-output {size}", timeout=600)
        runs.append(time.perf_counter() - start)
        assert result.exit_code == 0 and result.stdout == "a" * size, len(result.stdout)
    return sorted(runs)[1]


def concurrent_creates(client: SandboxClient) -> None:
    def create(i: int) -> tuple[float, str]:
        start = time.perf_counter()
        try:
            client.create_sandbox(snapshot_id=SNAPSHOT, name=f"perf-burst-{i}", timeout=120)
            return elapsed_ms(start), ""
        except Exception as e:  # noqa: BLE001 - every failure is counted, not raised
            return elapsed_ms(start), f"{type(e).__name__}: {e}"

    with ThreadPoolExecutor(max_workers=CONCURRENT) as pool:
        results = list(pool.map(create, range(CONCURRENT)))
    errors = [e for _, e in results if e]
    with ThreadPoolExecutor(max_workers=16) as pool:
        list(pool.map(lambda i: client.delete_sandbox(f"perf-burst-{i}"), range(CONCURRENT)))
    emit("sdk_concurrent_creates", samples_ms=[t for t, _ in results], errors=errors)


def main() -> int:
    client = SandboxClient()
    if wanted("sdk_warm_exec"):
        try:
            warm_exec(client)
        finally:
            client.delete_sandbox(WARM_SANDBOX)
        settle(client)
    if wanted("sdk_create_first_run") or wanted("sdk_delete"):
        create_run_delete(client)
        settle(client)
    if wanted("sdk_big_run"):
        big_output(client)
        settle(client)
    if wanted("sdk_concurrent_creates"):
        concurrent_creates(client)
        settle(client)
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""The SSE exec variant through the unmodified SDK (run with
LANGSMITH_EXPERIMENTAL_FEATURES=sandbox_sse_exec): streaming callbacks, `wait=False` handles
and iteration, output far larger than the agent's replay window (several `ack_required` round
trips), what `kill`/`send_input` do on a one-way transport, `reconnect` from offsets, unknown
command ids and timeouts.

Environment: LANGSMITH_ENDPOINT, LANGSMITH_API_KEY, DOCKER_IMAGE, LANGSMITH_EXPERIMENTAL_FEATURES."""

import sys

from langsmith.sandbox import (
    CommandTimeoutError,
    SandboxOperationError,
)

from _conform import raises, run_in_fresh_sandbox

# Blocks until the test creates the marker file, so a handle is certainly still running.
WAIT_FOR_GO = "while [ ! -e /tmp/go ]; do sleep 0.1; done"


def callbacks(sb) -> None:
    outs, errs = [], []
    result = sb.run(
        "printf 'a\\n'; printf '\\xc3\\xa9\\n'; echo err >&2; exit 5",
        on_stdout=outs.append,
        on_stderr=errs.append,
    )
    assert (result.stdout, result.stderr, result.exit_code) == ("a\né\n", "err\n", 5), result
    assert "".join(outs) == result.stdout and "".join(errs) == result.stderr, (outs, errs)


def handles_and_iteration(sb) -> None:
    handle = sb.run("for i in 1 2 3; do echo $i; done; echo e >&2", wait=False)
    assert handle.command_id and handle.pid, (handle.command_id, handle.pid)
    chunks = list(handle)
    stdout = "".join(c.data for c in chunks if c.stream == "stdout")
    stderr = "".join(c.data for c in chunks if c.stream == "stderr")
    assert (stdout, stderr) == ("1\n2\n3\n", "e\n"), chunks
    assert handle.result.exit_code == 0
    assert handle.last_stdout_offset == 6, handle.last_stdout_offset


def beyond_the_window(sb) -> None:
    # About 21 MB: more than the 16 MiB the agent retains, so the client must acknowledge.
    count = 3_000_000
    result = sb.run(f"seq 1 {count}", timeout=300)
    assert result.exit_code == 0, result.exit_code
    expected = "".join(f"{n}\n" for n in range(1, count + 1))
    assert len(result.stdout) == len(expected), (len(result.stdout), len(expected))
    assert result.stdout == expected, "lost or repeated output"


def one_way_controls_and_reconnect(sb) -> None:
    handle = sb.run(f"echo ready; {WAIT_FOR_GO}; echo done", wait=False)
    with raises(SandboxOperationError, lambda e: "one-way" in str(e)):
        handle.kill()
    with raises(SandboxOperationError, lambda e: "one-way" in str(e)):
        handle.send_input("ignored\n")
    first = next(iter(handle))
    assert (first.stream, first.data, first.offset) == ("stdout", "ready\n", 0), first
    sb.write("/tmp/go", b"")
    assert handle.result.stdout == "ready\ndone\n", handle.result.stdout
    assert handle.result.exit_code == 0

    replay = sb.reconnect(handle.command_id)
    assert (replay.result.stdout, replay.result.exit_code) == ("ready\ndone\n", 0), replay.result
    rest = sb.reconnect(handle.command_id, stdout_offset=6)
    assert rest.result.stdout == "done\n", rest.result.stdout

    def not_found(err):
        assert err.error_type == "CommandNotFound", err.error_type

    with raises(SandboxOperationError, not_found):
        sb.reconnect("0" * 32).result


def refusals(sb) -> None:
    with raises(CommandTimeoutError):
        sb.run("echo partial; sleep 30", timeout=1)
    with raises(ValueError):
        sb.run("cat", close_input=False)  # needs the WebSocket: refused before any request
    with raises(SandboxOperationError, lambda e: e.error_type == "InvalidRequest"):
        sb.run("true", run_config={"work_dir": "relative/dir"})  # refused by the agent


def main() -> int:
    return run_in_fresh_sandbox("dp-sse", [callbacks, handles_and_iteration, one_way_controls_and_reconnect, refusals, beyond_the_window], "sdk dataplane sse ok")


if __name__ == "__main__":
    sys.exit(main())

"""WebSocket exec through the unmodified SDK: run with
callbacks, wait=False handles, stdin, env/cwd, large output, concurrent commands on one
sandbox and keepalive pings.

Environment: LANGSMITH_ENDPOINT, LANGSMITH_API_KEY, SNAPSHOT_ID (a ready snapshot)."""

import hashlib
import re
import sys
import threading

from langsmith.sandbox import SandboxOperationError

from _exec_flows import attach, numbered, raises, read_until, run_flows, say


def callbacks(sb):
    out, err = [], []
    result = sb.run(
        "echo a1; echo e1 >&2; for i in 1 2 3; do echo out$i; echo err$i >&2; done; exit 7",
        on_stdout=out.append,
        on_stderr=err.append,
    )
    assert result.exit_code == 7, result.exit_code
    assert result.stdout == "a1\nout1\nout2\nout3\n", repr(result.stdout)
    assert result.stderr == "e1\nerr1\nerr2\nerr3\n", repr(result.stderr)
    assert "".join(out) == result.stdout, out
    assert "".join(err) == result.stderr, err
    ok = sb.run("true")
    assert (ok.stdout, ok.stderr, ok.exit_code) == ("", "", 0), ok
    assert sb.run("kill -TERM $$").exit_code == 143, "a signal death is 128 + signo"
    say("callbacks", f"{len(out)} stdout / {len(err)} stderr chunks, exit 7")


def handle_iteration(sb):
    handle = sb.run("for i in 1 2 3; do echo line$i; echo warn$i >&2; done; exit 4", wait=False)
    assert re.fullmatch(r"[0-9a-f]{32}", handle.command_id or ""), handle.command_id
    assert isinstance(handle.pid, int) and handle.pid > 1, handle.pid
    text = {"stdout": "", "stderr": ""}
    for chunk in handle:
        assert chunk.stream in text, chunk
        # Offsets are byte positions and contiguous: no gap, no repeat.
        assert chunk.offset == len(text[chunk.stream].encode()), (chunk, text)
        text[chunk.stream] += chunk.data
    result = handle.result
    assert result.exit_code == 4, result.exit_code
    assert text["stdout"] == result.stdout == numbered(1, 3, "line"), text
    assert text["stderr"] == result.stderr == numbered(1, 3, "warn"), text
    assert handle.last_stdout_offset == len(result.stdout), handle.last_stdout_offset
    assert list(handle) == [], "iteration after exhaustion yields nothing"
    say("wait=False", f"command_id {handle.command_id}, pid {handle.pid}, exit 4")


def stdin(sb):
    # Interactive: each answer arrives before the next line is sent.
    handle = sb.run("read a; echo got:$a; read b; echo got:$b", wait=False, close_input=False)
    chunks = iter(handle)
    handle.send_input("héllo\n")
    read_until(chunks, "stdout", "got:héllo\n")
    handle.send_input("second\n")
    assert handle.result.stdout == "got:héllo\ngot:second\n", repr(handle.result.stdout)

    # cat echoes everything, and close_input() is the EOF that ends it.
    handle = sb.run("cat; echo eof-seen", wait=False, close_input=False)
    sent = "".join(f"piece {i} ✓\n" for i in range(200))
    for line in sent.splitlines(keepends=True):
        handle.send_input(line)
    handle.close_input()
    handle.close_input()  # idempotent
    result = handle.result
    assert result.stdout == sent + "eof-seen\n", result.stdout[-200:]
    assert result.exit_code == 0, result.exit_code

    # Megabytes through stdin while the output flows back.
    handle = sb.run("sha256sum; wc -c", wait=False, close_input=False)
    block = "".join(chr(0x41 + i % 26) for i in range(64 * 1024))
    for _ in range(64):
        handle.send_input(block)
    handle.close_input()
    digest = hashlib.sha256((block * 64).encode()).hexdigest()
    assert handle.result.stdout == f"{digest}  -\n0\n", handle.result.stdout

    # The default for a non-PTY run is a closed stdin: the command sees EOF at once and the
    # SDK refuses input client-side.
    handle = sb.run("cat; echo eof-at-once", wait=False)
    with raises(SandboxOperationError):
        handle.send_input("never sent")
    assert handle.result.stdout == "eof-at-once\n", handle.result.stdout
    say("stdin", "send_input answered line by line; close_input ends cat")


def env_and_cwd(sb):
    result = sb.run('echo "$FOO|$EMPTY|$(pwd)"', env={"FOO": "bar baz", "EMPTY": ""}, cwd="/tmp")
    assert result.stdout == "bar baz||/tmp\n", repr(result.stdout)
    result = sb.run('echo "$A-$(pwd)"', run_config={"work_dir": "/bin", "env_vars": {"A": "1"}})
    assert result.stdout == "1-/bin\n", repr(result.stdout)
    result = sb.run("echo $0", shell="/bin/sh")
    assert result.stdout == "/bin/sh\n", repr(result.stdout)
    say("env/cwd", "env, cwd, run_config and shell applied")


def large_output(sb):
    count = 400_000  # ~2.7 MB on stdout, another ~2.7 MB on stderr, produced at once
    pieces = []
    result = sb.run(f"seq 1 {count} >&2 & seq 1 {count}; wait", on_stdout=pieces.append)
    expected = numbered(1, count)
    assert result.stdout == expected, (len(result.stdout), len(expected))
    assert result.stderr == expected, (len(result.stderr), len(expected))
    assert "".join(pieces) == expected
    # Multi-byte characters across chunk boundaries stay whole.
    line = "héllo wörld € 😀\n"
    result = sb.run(f"yes '{line[:-1]}' | head -n 150000")
    assert result.stdout == line * 150000, len(result.stdout)
    # Control bytes swell sixfold as JSON escapes; messages must still stay below 1 MiB.
    control = sb.run("head -c 2000000 /dev/zero | tr '\\000' '\\001'")
    assert control.stdout == "\x01" * 2_000_000, len(control.stdout)
    # Invalid UTF-8 has no exact form: each bad byte becomes U+FFFD, and a sequence
    # cut off by the end of the output is flushed the same way.
    broken = sb.run("printf 'a\\377b\\n'; printf 'end\\303'")
    assert broken.stdout == "a\ufffdb\nend\ufffd", repr(broken.stdout)
    say("large", f"{2 * len(expected) + len(result.stdout.encode())} bytes intact in {len(pieces)}+ chunks")


def concurrent(sb):
    # Truly concurrent: a command blocks on a fifo that a second command fills.
    reader = sb.run("rm -f /tmp/f; mkfifo /tmp/f; echo ready; cat /tmp/f", wait=False)
    read_until(iter(reader), "stdout", "ready\n")
    assert sb.run("echo via-fifo > /tmp/f").exit_code == 0
    assert reader.result.stdout == "ready\nvia-fifo\n", repr(reader.result.stdout)

    # Two sockets on one running command: both get every byte.
    first = sb.run("rm -f /tmp/g; mkfifo /tmp/g; echo attached; read x < /tmp/g; seq 1 50000", wait=False)
    second = attach(sb, first.command_id)
    read_until(iter(second), "stdout", "attached\n")
    read_until(iter(first), "stdout", "attached\n")
    assert sb.run("echo > /tmp/g").exit_code == 0
    expected = "attached\n" + numbered(1, 50000)
    assert second.result.stdout == expected, len(second.result.stdout)
    assert first.result.stdout == expected, len(first.result.stdout)

    results, errors = {}, []

    def work(k):
        try:
            results[k] = sb.run(f"for i in $(seq 1 3000); do echo {k}-$i; done; exit {k}")
        except Exception as err:  # noqa: BLE001 - reported below
            errors.append(err)

    threads = [threading.Thread(target=work, args=(k,)) for k in range(1, 7)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors
    for k in range(1, 7):
        assert results[k].exit_code == k, results[k].exit_code
        assert results[k].stdout == numbered(1, 3000, f"{k}-"), k
    say("concurrent", "a fifo rendezvous between two commands, 6 parallel runs intact")


def keepalive(sb):
    # The test runs this script with pings every 0.2 s and a 5 s pong deadline: a quiet
    # command outlasting the deadline spans many pings, and an unanswered one would close
    # the socket (and be seen as an automatic reattachment).
    result = sb.run("sleep 6; echo awake")
    assert (result.stdout, result.exit_code) == ("awake\n", 0), result
    say("keepalive", "a silent 6 s command under 0.2 s pings: no reattachment")


FLOWS = [
    callbacks,
    handle_iteration,
    stdin,
    env_and_cwd,
    large_output,
    concurrent,
    keepalive,
]


if __name__ == "__main__":
    sys.exit(run_flows("dp-exec", FLOWS, "sdk dataplane exec ok"))

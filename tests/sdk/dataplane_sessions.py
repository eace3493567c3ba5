"""Command sessions through the unmodified SDK: kill
then reconnect, finished-session replay from offsets, unknown command ids, timeouts, and the
lifecycle knobs (a command outliving its socket, kill_on_disconnect, idle_timeout,
ttl_seconds, background children holding the output open).

Environment: LANGSMITH_ENDPOINT, LANGSMITH_API_KEY, SNAPSHOT_ID (a ready snapshot)."""

import sys

from langsmith.sandbox import CommandTimeoutError, SandboxConnectionError, SandboxOperationError

from _exec_flows import (
    AUTO_REATTACHES,
    abandon,
    attach,
    gone,
    numbered,
    raises,
    read_until,
    run_flows,
    say,
    wait_until,
)


def kill_then_reconnect(sb):
    # `oops` goes to stderr before `before` goes to stdout: once `before` is read, `oops` is
    # certainly in the agent's pipe, whenever the kill lands.
    handle = sb.run(
        "sleep 300 & echo $! > /tmp/bg.pid; echo oops >&2; echo before; wait",
        wait=False,
    )
    chunks = iter(handle)
    read_until(chunks, "stdout", "before\n")
    handle.kill()
    # kill() sends `kill` and closes the socket at once: iteration raises a connection error,
    # unless the server's `exit` outran the close (a busy machine); then the stream just ends.
    try:
        for _ in chunks:
            pass
        surfaced = None
    except SandboxConnectionError as err:
        surfaced = err
    # After kill() the handle does not reattach; the authoritative status comes by reconnect.
    result = attach(sb, handle.command_id).result
    assert result.exit_code == 137, result.exit_code
    assert result.stdout == "before\n", repr(result.stdout)
    assert result.stderr == "oops\n", repr(result.stderr)
    # The whole process group died, the background sleep included.
    alive = sb.run("kill -0 $(cat /tmp/bg.pid) 2>/dev/null && echo alive || echo gone")
    assert alive.stdout == "gone\n", alive.stdout
    say(
        "kill",
        f"iteration {'raised ' + type(surfaced).__name__ if surfaced else 'ended'}; "
        "reconnect replays the output, exit 137",
    )


def replay_finished(sb):
    handle = sb.run("echo one; echo two >&2; printf 'tröis\\n'; exit 5", wait=False)
    first = handle.result
    assert (first.stdout, first.stderr, first.exit_code) == ("one\ntröis\n", "two\n", 5), first
    again = attach(sb, handle.command_id).result
    assert (again.stdout, again.stderr, again.exit_code) == (first.stdout, first.stderr, 5), again
    # From byte offsets: only what lies beyond them ("one\n" is 4 bytes, "tr" 2 more).
    tail = attach(sb, handle.command_id, stdout_offset=6, stderr_offset=4).result
    assert (tail.stdout, tail.stderr, tail.exit_code) == ("öis\n", "", 5), tail
    beyond = attach(sb, handle.command_id, stdout_offset=10_000, stderr_offset=10_000).result
    assert (beyond.stdout, beyond.stderr, beyond.exit_code) == ("", "", 5), beyond
    # The SDK's own handle.reconnect() resumes from its cursors: nothing is left to send.
    rest = handle.reconnect().result
    assert (rest.stdout, rest.exit_code) == ("", 5), rest
    assert len(AUTO_REATTACHES) == 1 and AUTO_REATTACHES[0].startswith(handle.command_id), AUTO_REATTACHES
    AUTO_REATTACHES.clear()
    say("replay", "whole output and exit 5 again; offsets honoured, clamped beyond the end")


def unknown_command(sb):
    def check(err):
        assert err.error_type == "CommandNotFound", err.error_type
        assert err.operation == "reconnect", err.operation

    with raises(SandboxOperationError, check) as caught:
        attach(sb, "0" * 32).result
    say("unknown id", f"{type(caught.error).__name__}(error_type=CommandNotFound): {caught.error}")


def after_first_output(handle):
    """Return `handle` once its first chunk is in, so the command has printed before its
    socket goes: a loaded machine could otherwise end it before its first `echo` ran."""
    for _ in handle:
        return handle
    raise AssertionError("the command ended without output")


def timeout(sb):
    with raises(CommandTimeoutError) as caught:
        sb.run("echo partial; sleep 30", timeout=1)
    # Five seconds, so `echo partial` is out before the limit even on a loaded machine.
    handle = sb.run("echo partial; sleep 300 & echo $! > /tmp/to.pid; wait", timeout=5, wait=False)
    seen = ""
    with raises(CommandTimeoutError):
        for chunk in handle:
            seen += chunk.data
    assert seen == "partial\n", repr(seen)
    # A timed-out session replays its output, then the same terminal error.
    replay = attach(sb, handle.command_id)
    replayed = ""
    with raises(CommandTimeoutError):
        for chunk in replay:
            replayed += chunk.data
    assert replayed == "partial\n", repr(replayed)
    alive = sb.run("kill -0 $(cat /tmp/to.pid) 2>/dev/null && echo alive || echo gone")
    assert alive.stdout == "gone\n", alive.stdout
    say("timeout", f"{type(caught.error).__name__}: {caught.error}; replay ends with it again")


def lifecycle(sb):
    # A command outlives its connection: abandoned, then picked up again by id.
    assert sb.run("rm -f /tmp/later; mkfifo /tmp/later").exit_code == 0
    command_id, _ = abandon(sb.run("read x < /tmp/later; echo survived-$x", wait=False))
    assert sb.run("echo fine > /tmp/later").exit_code == 0
    again = attach(sb, command_id).result
    assert (again.stdout, again.exit_code) == ("survived-fine\n", 0), again

    # kill_on_disconnect: the last socket going away kills the command.
    command_id, pid = abandon(after_first_output(sb.run("echo doomed; sleep 300", kill_on_disconnect=True, wait=False)))
    wait_until("kill_on_disconnect to kill the command", lambda: gone(sb, pid))
    result = attach(sb, command_id).result
    assert (result.stdout, result.exit_code) == ("doomed\n", 137), result

    # idle_timeout: nobody attached for that long kills the command.
    command_id, pid = abandon(after_first_output(sb.run("echo idle; sleep 300", idle_timeout=1, wait=False)))
    wait_until("the idle timeout to kill the command", lambda: gone(sb, pid))
    result = attach(sb, command_id).result
    assert (result.stdout, result.exit_code) == ("idle\n", 137), result

    # A background child holding stdout open does not hold the exit back.
    result = sb.run("sleep 300 & echo $! > /tmp/holder.pid; echo early")
    assert (result.stdout, result.exit_code) == ("early\n", 0), result
    assert sb.run("kill $(cat /tmp/holder.pid)").exit_code == 0

    # ttl_seconds: a finished session is kept that long, then reconnect says CommandNotFound.
    handle = sb.run("echo brief", ttl_seconds=1, wait=False)
    assert handle.result.stdout == "brief\n"

    def expired():
        try:
            attach(sb, handle.command_id).result
        except SandboxOperationError as err:
            assert err.error_type == "CommandNotFound", err.error_type
            return True
        return False

    wait_until("the finished session to expire", expired)
    say("lifecycle", "outlives its socket; kill_on_disconnect and idle_timeout give exit 137; ttl expiry")


def reattach_stdin(sb):
    # A second socket on a running command shares its stdin: input sent through a handle
    # made by reconnect reaches the same process, and its close_input ends it.
    first = sb.run("echo ready; cat", wait=False, close_input=False)
    second = attach(sb, first.command_id)
    chunks = iter(second)
    read_until(chunks, "stdout", "ready\n")
    second.send_input("via-second\n")
    read_until(chunks, "stdout", "via-second\n")
    second.close_input()
    assert first.result.stdout == second.result.stdout == "ready\nvia-second\n", first.result
    assert first.result.exit_code == 0
    say("reattach stdin", "input and close_input through a reconnect handle reach the command")


def retained_window(sb):
    # Nobody attached while 24 MB are written: only the newest 16 MiB are kept per stream.
    # A reconnect from 0 starts at the oldest retained byte, which the first chunk's offset
    # says; the SDK does not notice the gap, but what it gets is an exact suffix.
    count = 3_000_000
    command_id, _ = abandon(sb.run(f"seq 1 {count}; seq 1 {count} >&2", wait=False))
    # Attached beyond the end, a reader holds nothing back and returns once the session is
    # over (the pipes drained too), so the window is final.
    end = 10**12
    assert attach(sb, command_id, stdout_offset=end, stderr_offset=end).result.exit_code == 0
    handle = attach(sb, command_id)
    first_offset = {}
    for chunk in handle:
        first_offset.setdefault(chunk.stream, chunk.offset)
    full = numbered(1, count)
    retained = 16 << 20
    for stream, text in (("stdout", handle.result.stdout), ("stderr", handle.result.stderr)):
        assert len(text) == retained, (stream, len(text))
        assert first_offset[stream] == len(full) - retained, (stream, first_offset)
        assert full.endswith(text), stream
    assert handle.result.exit_code == 0
    say("retained window", f"a reconnect from 0 resumed at offset {first_offset['stdout']}: the last 16 MiB")


def spawn_errors(sb):
    def spawn_failed(err):
        assert err.error_type == "SpawnFailed", err.error_type

    with raises(SandboxOperationError, spawn_failed) as cwd:
        sb.run("pwd", cwd="/no/such/dir")
    assert "/no/such/dir" in str(cwd.error), cwd.error
    with raises(SandboxOperationError, spawn_failed) as shell:
        sb.run("true", shell="/bin/nosuchshell")
    assert "/bin/nosuchshell" in str(shell.error), shell.error
    with raises(SandboxOperationError, spawn_failed) as user:
        sb.run("id", run_config={"user": "nobody-here"})
    assert "nobody-here" in str(user.error), user.error
    say("spawn errors", f"SandboxOperationError(error_type=SpawnFailed): {cwd.error}")


FLOWS = [
    kill_then_reconnect,
    replay_finished,
    unknown_command,
    timeout,
    lifecycle,
    reattach_stdin,
    retained_window,
    spawn_errors,
]


if __name__ == "__main__":
    sys.exit(run_flows("dp-sessions", FLOWS, "sdk dataplane sessions ok"))

"""Command sessions through the unmodified SDK (spec/dataplane.md §3.7–3.9, §5.3–5.4): kill
then reconnect, finished-session replay from offsets, unknown command ids, timeouts, and the
lifecycle knobs (a command outliving its socket, kill_on_disconnect, idle_timeout,
ttl_seconds, background children holding the output open).

Environment: LANGSMITH_ENDPOINT, LANGSMITH_API_KEY, SNAPSHOT_ID (a ready snapshot)."""

import sys

from langsmith.sandbox import CommandTimeoutError, SandboxConnectionError, SandboxOperationError

from _dataplane import AUTO_REATTACHES, abandon, attach, gone, raises, read_until, run_flows, say, wait_until


def kill_then_reconnect(sb):
    handle = sb.run(
        "sleep 300 & echo $! > /tmp/bg.pid; echo before; echo oops >&2; wait",
        wait=False,
    )
    chunks = iter(handle)
    read_until(chunks, "stdout", "before\n")
    handle.kill()
    with raises(SandboxConnectionError) as caught:
        for _ in chunks:
            pass
    surfaced = caught.error
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
        f"iteration raised {type(surfaced).__name__}; reconnect replays the output, exit 137",
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
    assert AUTO_REATTACHES == [handle.command_id], AUTO_REATTACHES
    AUTO_REATTACHES.clear()
    say("replay", "whole output and exit 5 again; offsets honoured, clamped beyond the end")


def unknown_command(sb):
    def check(err):
        assert err.error_type == "CommandNotFound", err.error_type
        assert err.operation == "reconnect", err.operation

    with raises(SandboxOperationError, check) as caught:
        attach(sb, "0" * 32).result
    say("unknown id", f"{type(caught.error).__name__}(error_type=CommandNotFound): {caught.error}")


def timeout(sb):
    with raises(CommandTimeoutError) as caught:
        sb.run("echo partial; sleep 30", timeout=1)
    handle = sb.run("echo partial; sleep 300 & echo $! > /tmp/to.pid; wait", timeout=1, wait=False)
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
    command_id, pid = abandon(sb.run("echo doomed; sleep 300", kill_on_disconnect=True, wait=False))
    wait_until("kill_on_disconnect to kill the command", lambda: gone(sb, pid))
    result = attach(sb, command_id).result
    assert (result.stdout, result.exit_code) == ("doomed\n", 137), result

    # idle_timeout: nobody attached for that long kills the command.
    command_id, pid = abandon(sb.run("echo idle; sleep 300", idle_timeout=1, wait=False))
    wait_until("the idle timeout to kill the command", lambda: gone(sb, pid))
    result = attach(sb, command_id).result
    assert (result.stdout, result.exit_code) == ("idle\n", 137), result

    # A background child holding stdout open does not hold the exit back (spec A2).
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


FLOWS = [
    kill_then_reconnect,
    replay_finished,
    unknown_command,
    timeout,
    lifecycle,
]


if __name__ == "__main__":
    sys.exit(run_flows("dp-sessions", FLOWS, "sdk dataplane sessions ok"))

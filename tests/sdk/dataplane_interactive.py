"""Interactive exec through the unmodified SDK: a PTY (a pts, CRLF output, a prompt answered
through send_input, ^D and ^C) and the same stdin/kill/reconnect flows on the async client.

Environment: LANGSMITH_ENDPOINT, LANGSMITH_API_KEY, SNAPSHOT_ID (a ready snapshot)."""

import asyncio
import re
import sys

from langsmith.sandbox import AsyncSandboxClient, SandboxOperationError

from _exec_flows import raises, read_until, run_flows, say


def pty(sb):
    handle = sb.run("tty; echo to-stderr >&2; printf 'name? '; read n; echo hello-$n", pty=True, wait=False)
    chunks = iter(handle)
    shown = read_until(chunks, "stdout", "name? ")
    assert re.match(r"/dev/pts/\d+\r\nto-stderr\r\nname\? $", shown), repr(shown)
    handle.send_input("bob\r")  # Enter on a terminal is CR; the line discipline makes it NL
    result = handle.result
    assert result.exit_code == 0, result.exit_code
    assert result.stdout.endswith("name? bob\r\nhello-bob\r\n"), repr(result.stdout)
    assert result.stderr == "", "under a PTY everything is stdout"

    # ^D ends cat on a terminal (close_input is a no-op there); ^C interrupts the foreground job.
    handle = sb.run("cat", pty=True, wait=False)
    chunks = iter(handle)
    handle.send_input("typed\n")
    read_until(chunks, "stdout", "typed\r\ntyped\r\n")  # the echo, then cat's copy
    handle.close_input()
    handle.send_input("\x04")
    assert handle.result.exit_code == 0, handle.result.exit_code
    handle = sb.run("echo go; sleep 300", pty=True, wait=False)
    read_until(iter(handle), "stdout", "go\r\n")
    handle.send_input("\x03")
    assert handle.result.exit_code == 130, handle.result.exit_code
    say("pty", "a pts, CRLF output, prompt answered, ^D ends cat, ^C gives exit 130")


def async_client(sync_sb):
    async def flows():
        async with AsyncSandboxClient() as client:
            sb = await client.get_sandbox(sync_sb.name)
            handle = await sb.run("cat; echo done >&2", wait=False, close_input=False)
            await handle.send_input("async ✓\n")
            await handle.close_input()
            seen = [chunk async for chunk in handle]
            result = await handle.result
            assert (result.stdout, result.stderr, result.exit_code) == ("async ✓\n", "done\n", 0), result
            assert "".join(c.data for c in seen if c.stream == "stdout") == result.stdout
            killed = await sb.run("echo up; sleep 300", wait=False)
            async for chunk in killed:
                if "up\n" in chunk.data:
                    break
            await killed.kill()
            replay = await (await sb.reconnect(killed.command_id)).result
            assert (replay.stdout, replay.exit_code) == ("up\n", 137), replay
            with raises(SandboxOperationError):
                await (await sb.reconnect("f" * 32)).result

    asyncio.run(flows())
    say("async", "AsyncSandboxClient: stdin, kill then reconnect (137), unknown id")


FLOWS = [
    pty,
    async_client,
]


if __name__ == "__main__":
    sys.exit(run_flows("dp-interactive", FLOWS, "sdk dataplane interactive ok"))

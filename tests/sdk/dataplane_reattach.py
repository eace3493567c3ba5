"""A command outlives its connection: the test kills the server under a running command (for
real) and starts it again on the same address and state directory, three times; the SDK's
handle reattaches by itself and every line of a numbered stream arrives exactly once.

The command pauses at a fifo gate between stages, so each drop lands where it should:
1. SIGKILL while output is in flight, with the reader paused (bytes die in the server);
2. SIGKILL while the reader waits on a quiet command; the gate opens after the restart,
   whether or not the handle has reattached yet (output is replayed or streamed live);
3. SIGTERM (a graceful stop) in the same situation; a plain WebSocket attached beside the
   SDK's checks that a stopping server says 1001 Going Away (the SDK hides close codes).

Protocol with the test: the script prints `drop-me N` and the test answers `restarted` on
stdin once the server is back.

Environment: LANGSMITH_ENDPOINT, LANGSMITH_API_KEY, SNAPSHOT_ID (a ready snapshot)."""

import os
import queue
import sys
import json
import threading

from langsmith.sandbox import SandboxClient
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect

from _conform import cleanup

NAME = "dp-reattach"
# Stage ends: line numbers after which the command waits at the gate (the last one exits).
FIRST, SECOND, LAST = 2_000_000, 2_010_000, 2_020_000
# Where the first drop is requested: early, so most of the first stage is still in flight.
EARLY = 3_000


class CloseWatcher:
    """A second, plain attachment to the command that records how the server ends it."""

    def __init__(self, sb, command_id, stdout_offset):
        url = sb.dataplane_url.replace("http://", "ws://") + "/execute/ws"
        self.ws = connect(url, additional_headers={"X-Api-Key": os.environ["LANGSMITH_API_KEY"]})
        self.ws.send(
            json.dumps(
                {
                    "type": "reconnect",
                    "command_id": command_id,
                    "stdout_offset": stdout_offset,
                    "stderr_offset": 0,
                }
            )
        )
        started = json.loads(self.ws.recv())
        assert started == {"type": "started", "command_id": command_id, "pid": started["pid"]}, started
        self.close_code = None
        self.thread = threading.Thread(target=self._watch, daemon=True)
        self.thread.start()

    def _watch(self):
        try:
            while True:
                self.ws.recv()
        except ConnectionClosed as closed:
            self.close_code = closed.rcvd.code if closed.rcvd else None


def main() -> int:
    client = SandboxClient()
    sb = client.create_sandbox(snapshot_id=os.environ["SNAPSHOT_ID"], name=NAME, timeout=120)
    answers: "queue.Queue[str]" = queue.Queue()
    threading.Thread(target=lambda: [answers.put(line.strip()) for line in sys.stdin], daemon=True).start()

    # Instrumentation only: count the handle's reattachments (it calls sb.reconnect itself)
    # and note how much it had received at each, so the drops are proven to have happened.
    reattached_at = []
    sdk_reconnect = sb.reconnect

    def counting_reconnect(*args, **kwargs):
        reattached_at.append(kwargs.get("stdout_offset"))
        return sdk_reconnect(*args, **kwargs)

    sb.reconnect = counting_reconnect

    def drop(round_no):
        print(f"drop-me {round_no}", flush=True)

    def open_gate_after_restart():
        assert answers.get() == "restarted"
        assert sb.run("echo open > /tmp/gate").exit_code == 0

    try:
        handle = sb.run(
            f"mkfifo /tmp/gate && seq 1 {FIRST} && read x < /tmp/gate && seq {FIRST + 1} {SECOND}"
            f" && read x < /tmp/gate && seq {SECOND + 1} {LAST}",
            wait=False,
        )
        command_id, pid = handle.command_id, handle.pid
        triggers = [
            (f"\n{EARLY}\n", 1),
            (f"\n{FIRST}\n", 2),
            (f"\n{SECOND}\n", 3),
        ]
        stdout, tail, chunks = [], "", 0
        received = 0
        for chunk in handle:
            chunks += 1
            assert chunk.stream == "stdout", chunk
            # Exactly once: each chunk starts where the previous one ended.
            assert chunk.offset == received, (chunk.offset, received)
            received += len(chunk.data.encode())
            stdout.append(chunk.data)
            window, tail = tail + chunk.data, chunk.data[-16:]
            if triggers and triggers[0][0] in window:
                _, round_no = triggers.pop(0)
                if round_no == 3:
                    watcher = CloseWatcher(sb, command_id, received)
                drop(round_no)
                if round_no == 1:
                    assert answers.get() == "restarted"  # the reader stays paused meanwhile
                else:
                    threading.Thread(target=open_gate_after_restart, daemon=True).start()
        result = handle.result
        text = "".join(stdout)
        expected = "".join(f"{i}\n" for i in range(1, LAST + 1))
        assert not triggers, f"the command ended before drops {triggers}"
        assert text == expected, (len(text), len(expected))
        assert result.stdout == expected
        assert result.stderr == "", "the command ran once (a second mkfifo would complain)"
        assert result.exit_code == 0, result.exit_code
        assert (handle.command_id, handle.pid) == (command_id, pid)
        # Every drop made the handle reattach; the first one while most of stage 1 was unsent.
        assert len(set(reattached_at)) >= 3, reattached_at
        first_stage = len("".join(f"{i}\n" for i in range(1, FIRST + 1)))
        assert reattached_at[0] < first_stage, (reattached_at[0], first_stage)
        watcher.thread.join()
        assert watcher.close_code == 1001, f"a stopping server closed with {watcher.close_code}"
        # Replay of the finished session after all that: the same bytes again.
        assert sdk_reconnect(command_id).result.stdout == expected
        print(
            f"flow reattach: {len(expected)} bytes exactly once over {chunks} chunks; "
            f"the handle reattached at stdout offsets {reattached_at}; a graceful stop says 1001"
        )
    finally:
        cleanup(client, sandboxes=[NAME])
    print("sdk dataplane reattach ok")
    return 0


if __name__ == "__main__":
    sys.exit(main())

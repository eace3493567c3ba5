"""TCP tunnels through the unmodified SDK: `sb.tunnel()` to an echo server inside a sandbox
(megabytes intact, several connections at once), a closed port refused cleanly, reconnect
after the server side dropped the session, and `close()`.

Environment: LANGSMITH_ENDPOINT, LANGSMITH_API_KEY, SNAPSHOT_ID (a ready snapshot of an image
with busybox `nc`). The test restarts the server when the script prints `restart-me`, then
sends a line on stdin."""

import hashlib
import os
import socket
import sys
import threading

from langsmith.sandbox import SandboxClient

ECHO_PORT = 7000


def say(*words):
    print(*words, flush=True)


def send_quietly(conn: socket.socket, payload: bytes) -> None:
    """sendall, where a connection the other end already closed is the reader's business."""
    try:
        conn.sendall(payload)
    except OSError:
        pass


def round_trip(port: int, payload: bytes) -> bytes:
    """Send `payload` while reading the echo back; the connection stays open until all of it
    came back (the SDK closes both directions as soon as one ends)."""
    with socket.create_connection(("127.0.0.1", port), timeout=60) as conn:
        sender = threading.Thread(target=send_quietly, args=(conn, payload))
        sender.start()
        got = bytearray()
        while len(got) < len(payload):
            chunk = conn.recv(1 << 16)
            if not chunk:
                break
            got += chunk
        sender.join()
        return bytes(got)


def echo_ready(port: int) -> None:
    """Until the echo server listens, the tunnel refuses the port (the connection closes)."""
    for _ in range(300):
        try:
            if round_trip(port, b"ping") == b"ping":
                return
        except ConnectionResetError:
            pass  # the SDK may close a refused connection with a reset
        threading.Event().wait(0.1)
    raise AssertionError("the echo server never answered through the tunnel")


def main():
    client = SandboxClient()
    sb = client.create_sandbox(snapshot_id=os.environ["SNAPSHOT_ID"], name="sdk-tunnel", timeout=120)
    try:
        echo = sb.run(f"nc -ll -p {ECHO_PORT} -e cat", wait=False)
        t = sb.tunnel(ECHO_PORT, local_port=0)
        assert t.remote_port == ECHO_PORT and t.local_port > 0, (t.remote_port, t.local_port)
        echo_ready(t.local_port)

        big = os.urandom(8 << 20)
        back = round_trip(t.local_port, big)
        assert hashlib.sha256(back).digest() == hashlib.sha256(big).digest(), len(back)
        say("flow big", f"{len(big)} bytes intact")

        results = {}

        def one(i):
            data = os.urandom(1 << 20) + bytes([i])
            results[i] = round_trip(t.local_port, data) == data

        threads = [threading.Thread(target=one, args=(i,)) for i in range(8)]
        for th in threads:
            th.start()
        for th in threads:
            th.join()
        assert all(results.get(i) for i in range(8)), results
        say("flow concurrent", "8 connections of 1 MiB intact")

        with sb.tunnel(9, local_port=0) as refused:
            with socket.create_connection(("127.0.0.1", refused.local_port), timeout=60) as conn:
                try:
                    rest = conn.recv(16)
                except ConnectionResetError:
                    rest = b""
                assert rest == b"", rest
        say("flow refused", "a closed port closes the local connection")

        say("restart-me")
        sys.stdin.readline()
        # The server came back: the next connection finds the session closed and re-dials.
        data = os.urandom(1 << 20)
        assert round_trip(t.local_port, data) == data
        say("flow reconnect", "a new session after the server restart")

        # close() ends the session; whether the listening socket disappears at once is up to
        # the SDK (its accept thread holds the socket until one more connection arrives).
        t.close()
        say("flow close", "closed")
        echo.kill()
    finally:
        client.delete_sandbox("sdk-tunnel")
    say("sdk tunnel ok")


main()

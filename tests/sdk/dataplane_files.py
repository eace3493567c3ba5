"""Data-plane files through the unmodified SDK: a binary round trip, `stat` (HEAD), ranged and
conditional reads, `glob`/`ls` and `grep`, and the errors each gives for bad input.

Environment: LANGSMITH_ENDPOINT, LANGSMITH_API_KEY, DOCKER_IMAGE."""

import sys

from langsmith.sandbox import (
    ResourceNotFoundError,
    SandboxClientError,
    SandboxOperationError,
)

from _conform import raises, run_in_fresh_sandbox

BLOB = "/srv/data dir/blob.bin"
TREE = {
    "src/a.py": "import os\n# TODO one\n",
    "src/pkg/b.py": "x = 1\n# TODO two\n",
    "src/notes.md": "TODO three\n",
    "src/pkg/c.txt": "nothing to see\n",
}


def files_and_ranges(sb) -> None:
    payload = bytes(range(256)) * 4096 + b"\x00\xff\xfe tail"
    sb.write(BLOB, payload)
    assert sb.read(BLOB) == payload, "binary round trip"
    sb.write(BLOB, payload)  # a replayed upload rewrites, never appends
    assert sb.read(BLOB) == payload

    stat = sb.stat(BLOB)
    assert stat.size_bytes == len(payload), stat
    assert stat.etag and stat.last_modified, stat

    chunk = sb.read_range(BLOB, start=10, end=19)
    assert (chunk.content, chunk.start, chunk.partial) == (payload[10:20], 10, True), chunk.start
    assert chunk.total_bytes == len(payload) and chunk.etag == stat.etag, chunk
    tail = sb.read_range(BLOB, start=len(payload) - 5)
    assert tail.content == payload[-5:] and tail.end == len(payload), tail.start
    assert sb.read_range(BLOB, suffix_bytes=7).content == payload[-7:]
    clamped = sb.read_range(BLOB, start=len(payload) - 3, end=10**9)
    assert clamped.content == payload[-3:], "an end beyond EOF is clamped"
    unchanged = sb.read_range(BLOB, start=0, end=0, if_none_match=stat.etag)
    assert unchanged.unchanged and unchanged.content == b"", unchanged
    with raises(SandboxOperationError, lambda e: "bytes */" in str(e)):
        sb.read_range(BLOB, start=len(payload))

    sb.write(BLOB, b"rewritten")
    restarted = sb.read_range(BLOB, start=2, if_range=stat.etag)
    assert not restarted.partial and restarted.content == b"rewritten", "stale If-Range: whole file"
    assert sb.stat(BLOB).etag != stat.etag, "a rewrite changes the ETag"

    for missing in (lambda: sb.stat("/srv/missing"), lambda: sb.read("/srv/missing")):
        with raises(ResourceNotFoundError):
            missing()


def search(sb) -> None:
    for rel, text in TREE.items():
        sb.write(f"/srv/{rel}", text)

    found = sb.glob("**/*.py", "/srv/src")
    assert sorted(m.path for m in found) == ["/srv/src/a.py", "/srv/src/pkg/b.py"], found
    assert not found.truncated

    listed = {m.path.rsplit("/", 1)[1]: m for m in sb.ls("/srv/src")}
    assert sorted(listed) == ["a.py", "notes.md", "pkg"], sorted(listed)
    assert listed["pkg"].is_dir and not listed["a.py"].is_dir
    assert listed["a.py"].size_bytes == len(TREE["src/a.py"]), listed["a.py"]
    assert listed["a.py"].modified_at.endswith("Z"), listed["a.py"].modified_at

    capped = sb.glob("**", "/srv/src", limit=2)
    assert len(capped) == 2 and capped.truncated, capped

    hits = sb.grep("TODO", "/srv/src")
    got = sorted((m.path, m.line, m.text) for m in hits)
    assert got == [
        ("/srv/src/a.py", 2, "# TODO one"),
        ("/srv/src/notes.md", 1, "TODO three"),
        ("/srv/src/pkg/b.py", 2, "# TODO two"),
    ], got
    only_py = sb.grep("TODO", "/srv/src", glob="*.py")
    assert sorted(m.path for m in only_py) == ["/srv/src/a.py", "/srv/src/pkg/b.py"], only_py
    by_path = sb.grep("TODO", "/srv/src", glob="pkg/*.py")
    assert [m.path for m in by_path] == ["/srv/src/pkg/b.py"], by_path
    assert len(sb.grep("x = 1", "/srv/src")) == 1, "the pattern is literal text"
    limited = sb.grep("TODO", "/srv/src", limit=1)
    assert len(limited) == 1 and limited.truncated, limited

    with raises(ResourceNotFoundError):
        sb.glob("*", "/srv/nowhere")
    with raises(ResourceNotFoundError):
        sb.grep("TODO", "/srv/nowhere")

    def plain_client_error(says):
        def check(err):
            assert type(err) is SandboxClientError, type(err)
            assert says in str(err), str(err)

        return check

    with raises(SandboxClientError, plain_client_error("`..`")):
        sb.glob("../*", "/srv/src")
    with raises(SandboxClientError, plain_client_error("not a valid glob")):
        sb.glob("[a", "/srv/src")
    with raises(SandboxClientError, plain_client_error("absolute")):
        sb.grep("TODO", "work/src")
    with raises(SandboxOperationError, lambda e: "not a directory" in str(e)):
        sb.glob("*", "/srv/src/a.py")


def main() -> int:
    return run_in_fresh_sandbox("dp-files", [files_and_ranges, search], "sdk dataplane files ok")


if __name__ == "__main__":
    sys.exit(main())

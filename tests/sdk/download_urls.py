"""Download links through the unmodified SDK: `sb.generate_download_url(path)` fetched whole,
by range, with HEAD and If-None-Match; the rebuilt headers; the refusals (expired, altered,
another sandbox's origin, other methods, a query, a deleted file); and a stopped sandbox
woken by a fetch."""

import sys
from urllib.parse import urlsplit

from langsmith._httpx import httpx  # the HTTP client the SDK itself uses
from langsmith.sandbox import SandboxClient

from _conform import CAPACITY, cleanup, image
from _service import API, error_message, wait_past

BODY = bytes(range(256)) * 64  # 16 KiB
DEFAULT_CSP = (
    "sandbox; default-src 'self' https://cdnjs.cloudflare.com https://fonts.googleapis.com "
    "https://fonts.gstatic.com https://cdn.jsdelivr.net https://unpkg.com"
)
http = httpx.Client(trust_env=False, timeout=60)


def fetch_and_headers(sb) -> str:
    sb.write("/tmp/report.bin", BODY)
    link = sb.generate_download_url("/tmp/report.bin")
    assert link.expires_at is None and link.token, link
    assert link.download_url.startswith("http://127.77.") and link.download_url.endswith("/" + link.token), link

    whole = http.get(link.download_url)
    assert whole.status_code == 200 and whole.content == BODY, whole.status_code
    h = whole.headers
    assert h["content-type"] == "application/octet-stream", h
    assert h["content-disposition"] == 'attachment; filename="report.bin"', h
    assert h["x-content-type-options"] == "nosniff", h
    assert h["content-security-policy"] == DEFAULT_CSP, h
    assert h["content-length"] == str(len(BODY)) and "etag" in h, h
    allowed = {"content-type", "content-disposition", "x-content-type-options", "content-security-policy",
               "content-length", "etag", "last-modified", "accept-ranges", "date"}
    assert set(h.keys()) <= allowed, sorted(h.keys())

    part = http.get(link.download_url, headers={"Range": "bytes=0-9"})
    assert part.status_code == 206 and part.content == BODY[:10], part.status_code
    assert part.headers["content-range"] == f"bytes 0-9/{len(BODY)}", part.headers

    head = http.head(link.download_url)
    assert head.status_code == 200 and head.content == b"", head.status_code
    assert head.headers["content-length"] == str(len(BODY)), head.headers

    same = http.get(link.download_url, headers={"If-None-Match": h["etag"]})
    assert same.status_code == 304 and same.content == b"", same.status_code

    # Pinned headers from the mint, and the policy's knobs.
    sb.write("/tmp/page.html", b"<h1>hi</h1>")
    inline = API.post(f"/boxes/{sb.name}/download-url", json={
        "path": "/tmp/page.html", "content_disposition": "inline", "csp_sandbox_flags": ["allow-scripts"],
        "csp_source_bundles": ["none"]}).json()
    got = http.get(inline["download_url"])
    assert got.headers["content-type"] == "text/html; charset=utf-8", got.headers
    assert got.headers["content-disposition"] == 'inline; filename="page.html"', got.headers
    assert got.headers["content-security-policy"] == "sandbox allow-scripts; default-src 'self'", got.headers
    typed = sb.generate_download_url("/tmp/page.html", content_type="text/plain", content_disposition="inline")
    assert http.get(typed.download_url).headers["content-type"] == "text/plain"
    open_policy = API.post(f"/boxes/{sb.name}/download-url", json={
        "path": "/tmp/page.html", "csp_sandbox": False, "csp_source_bundles": ["any"]}).json()
    assert "content-security-policy" not in http.get(open_policy["download_url"]).headers
    return link.download_url


def refusals(client, sb, url: str) -> None:
    for method in ("POST", "PUT", "DELETE"):
        r = http.request(method, url)
        assert r.status_code == 405, (method, r.status_code)
    assert http.get(url + "?x=1").status_code == 400
    token = urlsplit(url).path.lstrip("/")
    altered = token[:-2] + ("AA" if not token.endswith("AA") else "BB")
    assert http.get(url.replace(token, altered)).status_code == 403
    assert http.get(url.rsplit("/", 1)[0] + "/").status_code == 403

    short = sb.generate_download_url("/tmp/report.bin", expires_in_seconds=1)
    assert short.expires_at and short.expires_at.endswith("Z"), short
    wait_past(short.expires_at)
    expired = http.get(short.download_url)
    assert expired.status_code == 403 and "expired" in error_message(expired), expired.text

    for body, field in [({"path": ""}, "path"), ({"path": "/x", "expires_in_seconds": 0}, "expires_in_seconds"),
                        ({"path": "/x", "content_disposition": "download"}, "content_disposition"),
                        ({"path": "/x", "csp_sandbox_flags": ["allow-all"]}, "csp_sandbox_flags"),
                        ({"path": "/x", "csp_source_bundles": ["none", "unpkg"]}, "csp_source_bundles"),
                        ({"path": "/x", "content_type": "text/plain\r\nSet-Cookie: a=b"}, "content_type")]:
        r = API.post(f"/boxes/{sb.name}/download-url", json=body)
        assert r.status_code == 422 and r.json()["detail"][0]["loc"][-1] == field, (body, r.text)
    assert API.post("/boxes/no-such-sandbox/download-url", json={"path": "/x"}).status_code == 404

    # Another sandbox's download origin refuses this sandbox's link.
    other = client.create_sandbox(snapshot_id=sb.snapshot_id, name="dl-other", timeout=120)
    other.write("/tmp/report.bin", b"other")
    theirs = other.generate_download_url("/tmp/report.bin").download_url
    assert urlsplit(theirs).netloc != urlsplit(url).netloc
    crossed = urlsplit(theirs)._replace(path="/" + token).geturl()
    assert http.get(crossed).status_code == 403
    assert http.get(theirs).content == b"other"
    # Deleting a sandbox releases its origin's address: nothing listens there any more. A new
    # connection asks (the shared client's kept-alive one may meet the close half-way).
    client.delete_sandbox("dl-other")
    try:
        with httpx.Client(trust_env=False, timeout=60) as fresh:
            fresh.get(theirs)
        raise AssertionError("the deleted sandbox's download origin still answers")
    except httpx.ConnectError:
        pass

    sb.run("rm /tmp/report.bin")
    gone = http.get(url)
    assert gone.status_code == 404, gone.status_code


def wakes(client, sb) -> None:
    sb.write("/tmp/kept.txt", b"kept\n")
    url = sb.generate_download_url("/tmp/kept.txt").download_url
    client.stop_sandbox(sb.name)
    assert client.get_sandbox(sb.name).status == "stopped"
    got = http.get(url)
    assert got.status_code == 200 and got.content == b"kept\n", got.status_code
    assert client.get_sandbox(sb.name).status == "ready"


def main() -> int:
    client = SandboxClient()
    snap = client.create_snapshot("dl", image(), CAPACITY, timeout=120)
    try:
        sb = client.create_sandbox(snapshot_id=snap.id, name="dl", timeout=120)
        url = fetch_and_headers(sb)
        refusals(client, sb, url)
        wakes(client, sb)
    finally:
        cleanup(client, ["dl", "dl-other"], [snap.id])
    print("sdk download urls ok")
    return 0


if __name__ == "__main__":
    sys.exit(main())

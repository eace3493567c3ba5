"""Service URLs through the unmodified SDK: `sb.service(port)` to a Python HTTP server in a
default-snapshot sandbox, `browser_url` swapped for a cookie, the documented refusals, a
token of one sandbox on another's origin, login grants and the 409 rule, listing and
unsharing, a raw `Upgrade` spliced both ways with credentials stripped."""

import socket
import sys
from urllib.parse import urlsplit

from langsmith._httpx import httpx  # the HTTP client the SDK itself uses
from langsmith.sandbox import SandboxClient, SandboxClientError

from _conform import cleanup, raises
from _service import API, api_key, error_message, start_in_sandbox, wait_past

PAGE = '<html><body><p id="msg">loading</p><script src="app.js"></script></body></html>'

ECHO_UPGRADE = r'''
import socket, threading
server = socket.socket()
server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
server.bind(("127.0.0.1", 9000))
server.listen()
def handle(conn):
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = conn.recv(4096)
        if not chunk:
            return
        data += chunk
    head, rest = data.split(b"\r\n\r\n", 1)
    head = head.decode().lower()
    leaked = any(h in head for h in ("x-api-key", "x-langsmith-sandbox-service-token",
                                     "x-langsmith-user-", "langsmith_svc"))
    conn.sendall(b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: echo\r\nConnection: Upgrade\r\n"
                 + b"X-Leaked: " + (b"yes" if leaked else b"no") + b"\r\n\r\n" + rest)
    while True:
        chunk = conn.recv(65536)
        if not chunk:
            break
        conn.sendall(chunk)
    conn.close()
while True:
    conn, _ = server.accept()
    threading.Thread(target=handle, args=(conn,), daemon=True).start()
'''


def serve_site(sb, root: str, marker: str) -> None:
    sb.write(f"{root}/index.html", PAGE)
    sb.write(f"{root}/app.js", f"document.getElementById('msg').textContent = '{marker}';\n")
    sb.write(f"{root}/data.txt", f"{marker}\n")
    start_in_sandbox(sb, f"cd {root} && exec python3 -m http.server 8000 --bind 127.0.0.1", 8000)


def token_mode(a, b) -> None:
    svc = a.service(8000)
    assert svc.service_url.startswith("http://127.77."), svc.service_url
    assert svc.browser_url == f"{svc.service_url}_svc/auth?token={svc.token}"
    assert svc.embed_url == f"{svc.service_url}_svc/embed#token={svc.token}"
    assert svc.expires_at.endswith("Z"), svc.expires_at

    # The SDK's own helper: token header, bare httpx.
    got = svc.get("/data.txt")
    assert got.status_code == 200 and got.text == "from A\n", (got.status_code, got.text)

    # A browser-like client: browser_url sets the cookie, later loads need no token.
    with httpx.Client(follow_redirects=True, trust_env=False) as browser:
        page = browser.get(svc.browser_url)
        assert page.status_code == 200 and 'src="app.js"' in page.text, page.text
        assert page.history and page.history[0].status_code == 302, page.history
        set_cookie = page.history[0].headers["set-cookie"]
        for attribute in ("HttpOnly", "SameSite=Lax", "Path=/"):
            assert attribute in set_cookie, set_cookie
        asset = browser.get(svc.service_url + "app.js")
        assert asset.status_code == 200 and "from A" in asset.text, asset.text
        landed = browser.get(svc.service_url + "_svc/auth", params={"token": svc.token, "redirect": "/data.txt"})
        assert landed.url.path == "/data.txt" and landed.text == "from A\n", landed.url

    # The embed page carries no token of its own and reads the fragment.
    embed = httpx.get(svc.embed_url, trust_env=False)
    assert embed.status_code == 200 and "location.hash" in embed.text, embed.text

    # No credential.
    bare = httpx.get(svc.service_url + "data.txt", trust_env=False)
    assert bare.status_code == 401 and error_message(bare) == "Authentication required", bare.text

    # A token of sandbox A on sandbox B's origin, and an altered one.
    svc_b = b.service(8000)
    assert urlsplit(svc_b.service_url).hostname != urlsplit(svc.service_url).hostname
    assert svc_b.get("/data.txt").text == "from B\n"
    foreign = httpx.get(svc_b.service_url + "data.txt", headers={"X-Langsmith-Sandbox-Service-Token": svc.token}, trust_env=False)
    assert foreign.status_code == 403, foreign.text
    altered = svc.token[:-2] + ("AA" if not svc.token.endswith("AA") else "BB")
    tampered = httpx.get(svc.service_url, headers={"X-Langsmith-Sandbox-Service-Token": altered}, trust_env=False)
    assert tampered.status_code == 403, tampered.text

    # An expired token (1 s), by header and by the auth page.
    short = API.post(f"/boxes/{a.name}/service-url", json={"port": 8000, "expires_in_seconds": 1})
    assert short.status_code == 200, short.text
    short = short.json()
    wait_past(short["expires_at"])
    expired = httpx.get(short["service_url"], headers={"X-Langsmith-Sandbox-Service-Token": short["token"]}, trust_env=False)
    assert expired.status_code == 403 and error_message(expired) == "Service link has expired", expired.text
    expired_page = httpx.get(short["browser_url"], trust_env=False)
    assert expired_page.status_code == 403, expired_page.text

    # Nothing listening.
    closed = a.service(8001).get("/")
    assert closed.status_code == 502 and error_message(closed) == "Service is not reachable", closed.text


def bad_input(a) -> None:
    for body, field in [
        ({"port": 0}, "port"),
        ({"port": 8000, "expires_in_seconds": 0}, "expires_in_seconds"),
        ({"port": 8000, "expires_in_seconds": 86401}, "expires_in_seconds"),
        ({"port": 8000, "access": "everyone"}, "access"),
        ({"port": 8000, "access": "workspace", "expires_in_seconds": 60}, "expires_in_seconds"),
        ({"port": 8000, "embed_origins": ["http://example.com"]}, "embed_origins"),
        ({"port": 8000, "embed_origins": [f"https://a{i}.com" for i in range(6)]}, "embed_origins"),
    ]:
        r = API.post(f"/boxes/{a.name}/service-url", json=body)
        assert r.status_code == 422 and r.json()["detail"][0]["loc"][-1] == field, (body, r.text)
    missing = API.post("/boxes/no-such-sandbox/service-url", json={"port": 8000})
    assert missing.status_code == 404, missing.text
    ok = API.post(f"/boxes/{a.name}/service-url", json={"port": 8000, "embed_origins": ["https://App.example.com/"]})
    assert ok.json()["embed_origins"] == ["https://app.example.com"], ok.text


def login_mode(client, a) -> None:
    login = client.service(a.name, 8000, access="workspace", embed_origins=["https://app.example.com"])
    assert login.access == "workspace" and login.url.startswith("http://127.77."), login
    assert login.embed_origins == ["https://app.example.com"], login
    with_key = httpx.get(login.url + "data.txt", headers={"X-Api-Key": api_key()}, trust_env=False)
    assert with_key.status_code == 200 and with_key.text == "from A\n", with_key.text
    assert "frame-ancestors 'self' https://app.example.com" in with_key.headers.get_list("content-security-policy")
    wrong_key = httpx.get(login.url, headers={"X-Api-Key": "not-the-key"}, trust_env=False)
    assert wrong_key.status_code == 401, wrong_key.text
    # While the login grant stands, tokens are refused (409)…
    with raises(SandboxClientError):
        a.service(8000)
    assert API.post(f"/boxes/{a.name}/service-url", json={"port": 8000}).status_code == 409
    listed = API.get(f"/boxes/{a.name}/service-urls").json()
    assert listed["next_cursor"] is None
    entry = [i for i in listed["items"] if i["port"] == 8000]
    assert entry and entry[0]["access"] == "workspace" and "expires_at" not in entry[0], listed
    # …until access "off" replaces it with a token.
    off = API.post(f"/boxes/{a.name}/service-url", json={"port": 8000, "access": "off"})
    assert off.status_code == 200 and off.json()["token"], off.text
    token_url = off.json()
    listed = API.get(f"/boxes/{a.name}/service-urls").json()["items"]
    assert [i["access"] for i in listed if i["port"] == 8000] == ["token"], listed
    assert httpx.get(login.url, headers={"X-Api-Key": api_key()}, trust_env=False).status_code == 401

    # Unsharing: a login grant stops at once, minted tokens stay valid.
    client.service(a.name, 8000, access="restricted")
    assert API.delete(f"/boxes/{a.name}/service-urls", params={"port": 8000}).status_code == 204
    assert API.get(f"/boxes/{a.name}/service-urls").json()["items"] == []
    assert httpx.get(login.url, headers={"X-Api-Key": api_key()}, trust_env=False).status_code == 401
    still = httpx.get(token_url["service_url"] + "data.txt", headers={"X-Langsmith-Sandbox-Service-Token": token_url["token"]}, trust_env=False)
    assert still.status_code == 200, still.text
    a.service(8000)
    assert API.delete(f"/boxes/{a.name}/service-urls").status_code == 204
    assert API.get(f"/boxes/{a.name}/service-urls").json()["items"] == []


def upgrade_splice(a) -> None:
    a.write("/tmp/echo_upgrade.py", ECHO_UPGRADE)
    start_in_sandbox(a, "exec python3 /tmp/echo_upgrade.py", 9000)
    svc = a.service(9000)
    where = urlsplit(svc.service_url)
    with socket.create_connection((where.hostname, where.port), timeout=30) as conn:
        conn.sendall(
            (
                f"GET /ws HTTP/1.1\r\nHost: {where.netloc}\r\nUpgrade: echo\r\nConnection: Upgrade\r\n"
                f"X-Langsmith-Sandbox-Service-Token: {svc.token}\r\nX-Api-Key: {api_key()}\r\n"
                "X-Langsmith-User-Id: spoofed\r\nCookie: theme=dark\r\n\r\n"
            ).encode()
        )
        head = b""
        while b"\r\n\r\n" not in head:
            chunk = conn.recv(4096)
            assert chunk, head
            head += chunk
        head, rest = head.split(b"\r\n\r\n", 1)
        text = head.decode().lower()
        assert text.startswith("http/1.1 101"), text
        assert "x-leaked: no" in text, text
        payload = bytes(range(256)) * 4096
        conn.sendall(payload)
        echoed = rest
        while len(echoed) < len(payload):
            chunk = conn.recv(65536)
            assert chunk, len(echoed)
            echoed += chunk
        assert echoed == payload


def main() -> int:
    client = SandboxClient()
    try:
        a = client.create_sandbox(name="svc-a", timeout=900)
        b = client.create_sandbox(name="svc-b", timeout=300)
        a.run("mkdir -p /srv/site")
        b.run("mkdir -p /srv/site")
        serve_site(a, "/srv/site", "from A")
        serve_site(b, "/srv/site", "from B")
        token_mode(a, b)
        bad_input(a)
        login_mode(client, a)
        upgrade_splice(a)
    finally:
        cleanup(client, ["svc-a", "svc-b"])
    print("sdk service urls ok")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Sets up a page for the headless-browser test: a default-snapshot sandbox serving a page
whose relative `app.js` writes into the DOM. Prints `URL <browser_url>`, then waits for a
line on stdin before cleaning up."""

import sys

from langsmith.sandbox import SandboxClient

from _conform import cleanup
from _service import start_in_sandbox

PAGE = '<html><body><p id="msg">not rendered</p><script src="app.js"></script></body></html>'
SCRIPT = "document.getElementById('msg').textContent = 'rendered by ' + 'app.js in the sandbox';\n"


def main() -> int:
    client = SandboxClient()
    try:
        sb = client.create_sandbox(name="browser", timeout=900)
        sb.run("mkdir -p /srv/site")
        sb.write("/srv/site/index.html", PAGE)
        sb.write("/srv/site/app.js", SCRIPT)
        start_in_sandbox(sb, "cd /srv/site && exec python3 -m http.server 8080 --bind 127.0.0.1", 8080)
        print("URL " + sb.service(8080, expires_in_seconds=3600).browser_url, flush=True)
        sys.stdin.readline()
    finally:
        cleanup(client, ["browser"])
    print("browser site ok")
    return 0


if __name__ == "__main__":
    sys.exit(main())

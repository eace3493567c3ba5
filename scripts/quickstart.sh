#!/usr/bin/env bash
# Quickstart: the user document's workflow end to end on the local backend.
#   build → a snapshot from a Python image, create → a sandbox, exec → python --version,
#   update → an egress allow-list (a refused request), a workspace secret and the seed's
#   proxy.json (the auth proxy refusing cleartext to its host), the egress log, delete.
#   Installs what it needs (as root), builds the CLI, and makes the Python image locally
#   (Docker Hub is not needed).
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/install-packages.sh mmdebstrap
cargo build --release --quiet
export PATH="$PWD/target/release:$PATH"

# A real OCI registry on loopback to serve the image from.
port="${QUICKSTART_REGISTRY_PORT:-5000}"
work="$(mktemp -d)"
cat >"$work/registry.yml" <<YAML
version: 0.1
log: {level: error}
storage: {filesystem: {rootdirectory: $work/registry}}
http: {addr: 127.0.0.1:$port}
YAML
docker-registry serve "$work/registry.yml" >"$work/registry.log" 2>&1 &
registry_pid=$!
trap 'kill $registry_pid 2>/dev/null; rm -rf "$work"' EXIT
for _ in $(seq 100); do
  (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break
  sleep 0.1
done

image="127.0.0.1:$port/python:3-slim"
echo "==> Making $image from Debian packages" >&2
bash scripts/make-python-image.sh "$image"

# No LANGSMITH_ENDPOINT / LANGSMITH_API_KEY: the CLI uses (and starts) the local backend.
unset LANGSMITH_ENDPOINT LANGSMITH_API_KEY

echo "==> langsmith sandbox snapshot build python-slim --docker-image $image --capacity 4gb --wait" >&2
snapshot_json="$(langsmith sandbox snapshot build python-slim --docker-image "$image" --capacity 4gb --wait)"
echo "$snapshot_json"
snapshot_id="$(python3 -c 'import json,sys; print(json.load(sys.stdin)["id"])' <<<"$snapshot_json")"

langsmith sandbox delete my-vm >/dev/null 2>&1 || true
echo "==> langsmith sandbox create my-vm --snapshot-id $snapshot_id --vcpus 2 --memory 1gb --wait" >&2
langsmith sandbox create my-vm --snapshot-id "$snapshot_id" --vcpus 2 --memory 1gb --wait

echo "==> langsmith sandbox exec my-vm -- python --version" >&2
langsmith sandbox exec my-vm -- python --version

# Egress: only pypi.org may be reached; anything else is refused on the host, visibly (no
# request leaves this machine: the refusal comes before any lookup).
policy='{"access_control": {"allow_list": ["pypi.org"]}}'
echo "==> langsmith sandbox update my-vm --proxy-config '$policy'" >&2
langsmith sandbox update my-vm --proxy-config "$policy" >/dev/null
echo "==> langsmith sandbox exec my-vm -- python -c 'urlopen(\"http://example.com/\")'" >&2
langsmith sandbox exec my-vm -- python -c '
import urllib.request, urllib.error
try:
    urllib.request.urlopen("http://example.com/")
except urllib.error.HTTPError as e:
    print(e.code, e.read().decode().strip())'

# The auth proxy: a workspace secret the host adds to requests to api.openai.com, never
# present in the sandbox. Cleartext HTTP to that host is refused before anything leaves.
echo "==> printf %s \"\$KEY\" | langsmith secrets set OPENAI_API_KEY --value-stdin" >&2
printf %s "sk-quickstart-$RANDOM$RANDOM" | langsmith secrets set OPENAI_API_KEY --value-stdin
cat >"$work/proxy.json" <<'JSON'
{
  "rules": [
    {
      "name": "openai",
      "match_hosts": ["api.openai.com"],
      "match_paths": [],
      "headers": [
        {"name": "Authorization", "type": "workspace_secret", "value": "Bearer {OPENAI_API_KEY}"}
      ],
      "enabled": true
    }
  ],
  "access_control": {"allow_list": ["api.openai.com"], "deny_list": []}
}
JSON
echo "==> langsmith sandbox update my-vm --proxy-config @proxy.json" >&2
langsmith sandbox update my-vm --proxy-config "@$work/proxy.json" >/dev/null
echo "==> langsmith sandbox exec my-vm -- python -c 'urlopen(\"http://api.openai.com/v1/models\")'" >&2
langsmith sandbox exec my-vm -- python -c '
import os, urllib.request, urllib.error
print("keys in the environment:", [k for k, v in os.environ.items() if "sk-quickstart" in v])
try:
    urllib.request.urlopen("http://api.openai.com/v1/models")
except urllib.error.HTTPError as e:
    print(e.code, e.read().decode().strip())'
echo "==> langsmith sandbox egress-log my-vm --format pretty" >&2
langsmith sandbox egress-log my-vm --format pretty
echo "==> langsmith sandbox delete my-vm" >&2
langsmith sandbox delete my-vm

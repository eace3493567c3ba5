#!/usr/bin/env bash
# Installs the Debian packages the local backend, the tests and the quickstart use.
# Usage: bash scripts/install-packages.sh [extra packages…]   (as root)
set -euo pipefail

packages=(
  runc            # the OCI runtime that runs sandboxes
  e2fsprogs       # mke2fs: snapshot and rootfs images
  util-linux      # mount, losetup
  nftables        # nft: the netfilter table that sends each sandbox's TCP to the egress proxy
  iptables        # the egress tests try the host's iptables inside a sandbox
  iproute2        # ss: the tunnel tests look at the host's sockets
  docker-registry # a real OCI registry on loopback (tests, quickstart)
  skopeo umoci    # build and push OCI images without Docker
  busybox-static bash-static  # the tiny libc-free test image
  python3 python3-venv        # the official SDK conformance tests
  tmux            # a real terminal for the console tests
  openssh-client  # ssh-agent, ssh-add, ssh-keygen: the SSH-agent forwarding tests; ssh, scp, sftp: the ssh-setup tests
  rsync           # rsync over ssh into a sandbox (the ssh-setup tests)
  ca-certificates
  mmdebstrap      # builds the default Debian snapshot (system/default) on first use
  chromium        # a real browser opens service URLs (headless)
  nodejs          # Node's fetch through the auth proxy's opened TLS (copied into a sandbox by the tests)
  "$@"
)

if [ "$(id -u)" -ne 0 ]; then
  echo "install-packages.sh: run as root (it installs Debian packages)" >&2
  exit 1
fi

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ "${#missing[@]}" -gt 0 ]; then
  echo "Installing: ${missing[*]}" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -q >/dev/null
  apt-get install -y -q --no-install-recommends "${missing[@]}" >/dev/null
fi

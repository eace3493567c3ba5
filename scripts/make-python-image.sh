#!/usr/bin/env bash
# Makes a Debian image with Python from Debian packages and pushes it to a registry, without
# Docker: mmdebstrap builds the root filesystem, umoci turns it into an OCI image, skopeo
# pushes it. Usage: bash scripts/make-python-image.sh REGISTRY_HOST:PORT/NAME:TAG
set -euo pipefail
ref="$1"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

sources=/etc/apt/sources.list.d/debian.sources
[ -f "$sources" ] || sources="http://deb.debian.org/debian"
mmdebstrap --quiet --variant=minbase --include=python3,python-is-python3,ca-certificates \
  --format=directory bookworm "$work/rootfs" "$sources"
rm -rf "$work/rootfs/var/cache/apt/archives/"*.deb "$work/rootfs/var/lib/apt/lists/"*

umoci init --layout "$work/layout"
umoci new --image "$work/layout:python"
umoci unpack --image "$work/layout:python" "$work/bundle"
cp -a "$work/rootfs/." "$work/bundle/rootfs/"
umoci repack --image "$work/layout:python" "$work/bundle"
umoci config --image "$work/layout:python" \
  --config.env PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
  --config.env LANG=C.UTF-8 --config.workingdir /root --config.cmd python3
skopeo copy --quiet --dest-tls-verify=false "oci:$work/layout:python" "docker://$ref"

#!/usr/bin/env bash
# The whole test suite: system packages, formatting, lints, unit and integration tests.
# The integration tests drive real runc containers, mounts and loop devices: run as root.
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/install-packages.sh
cargo fmt --check
cargo clippy --all-targets --quiet -- -D warnings
cargo test --all-targets

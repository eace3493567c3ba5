#!/usr/bin/env bash
# The whole test suite: system packages, formatting, lints, docs, unit and integration tests.
# The integration tests drive real runc containers, mounts and loop devices: run as root.
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/install-packages.sh
cargo fmt --check
cargo clippy --all-targets --quiet -- -D warnings
# The crate docs carry the architecture: they must render without a broken link.
RUSTDOCFLAGS="-D warnings" cargo doc --no-deps --quiet
cargo test --all-targets

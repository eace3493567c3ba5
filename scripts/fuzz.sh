#!/usr/bin/env bash
# Fuzz every parser of untrusted input for a fixed budget and print a summary.
#   Usage: bash scripts/fuzz.sh [TARGET…]      (as root: it installs g++ if missing)
#   FUZZ_SECONDS   time per target (default 60)
#   FUZZ_KEEP=1    add the new inputs libFuzzer found to the kept corpus (fuzz/corpus/)
# The targets are in fuzz/fuzz_targets/, each calling the entry of the same name in
# langsmith::server::fuzz. A crash leaves its input in fuzz/artifacts/TARGET/ and makes the
# script exit 1; `cargo test --lib fuzz` then replays the kept corpus in the normal suite.
set -euo pipefail
cd "$(dirname "$0")/.."

seconds="${FUZZ_SECONDS:-60}"
bash scripts/install-packages.sh g++ >&2   # libFuzzer itself is C++, built by libfuzzer-sys
if ! cargo fuzz --version >/dev/null 2>&1; then
  echo "Installing cargo-fuzz from crates.io…" >&2
  cargo install --quiet --locked cargo-fuzz
fi
# Sanitizers need nightly rustc: the installed nightly if there is one, else the stable
# compiler told to accept nightly flags.
toolchain=()
if rustup toolchain list 2>/dev/null | grep -q '^nightly'; then
  toolchain=(+nightly)
else
  export RUSTC_BOOTSTRAP=1
fi

targets=("$@")
if [ "${#targets[@]}" -eq 0 ]; then
  mapfile -t targets < <(cargo "${toolchain[@]}" fuzz list --fuzz-dir fuzz)
fi

scratch="$(mktemp -d)"
trap 'rm -rf "$scratch"' EXIT
echo "Building the fuzz targets (address sanitizer)…" >&2
cargo "${toolchain[@]}" fuzz build --fuzz-dir fuzz >&2

failed=0
summary=()
for target in "${targets[@]}"; do
  # New inputs go to a scratch directory; the kept corpus is only read (unless FUZZ_KEEP).
  found="$scratch/$target"
  mkdir -p "$found"
  log="$scratch/$target.log"
  echo "Fuzzing $target for ${seconds}s…" >&2
  if cargo "${toolchain[@]}" fuzz run --fuzz-dir fuzz "$target" "$found" "fuzz/corpus/$target" -- \
    -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
    >"$log" 2>&1; then
    verdict="ok"
  else
    verdict="CRASH (input in fuzz/artifacts/$target/)"
    failed=1
    tail -n 40 "$log" >&2
  fi
  runs="$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | grep -o '[0-9]*$' | tail -1)"
  new="$(find "$found" -type f | wc -l)"
  summary+=("$(printf '%-20s %12s %10s  %s' "$target" "${runs:-?}" "$new" "$verdict")")
  if [ "${FUZZ_KEEP:-0}" = 1 ] && [ "$new" -gt 0 ]; then
    cp -n "$found"/* "fuzz/corpus/$target/"
  fi
done

echo
printf '%-20s %12s %10s  %s\n' "target" "executions" "new inputs" "result"
printf '%s\n' "${summary[@]}"
echo "budget: ${seconds}s per target; crashes and panics: $([ "$failed" = 0 ] && echo 0 || echo 'see above')"
exit "$failed"

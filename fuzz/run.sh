#!/usr/bin/env bash
# Build and run every fuzz target for a while; fail on any crash.
#
#   bash fuzz/run.sh [seconds-per-target]     (default 30)
#
# Installs cargo-fuzz if missing. Uses the nightly toolchain when rustup has
# one, otherwise the pinned stable toolchain with RUSTC_BOOTSTRAP=1 (the
# sanitizer flags are nightly-only). New corpus entries go to
# fuzz/corpus/<target>/, crashing inputs to fuzz/artifacts/<target>/.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")"
seconds="${1:-30}"
targets=(wal_entry manifest)
# Keep in step with MAX_LEN in src/lib.rs.
max_len=16384
cargo_fuzz_version=0.13.2

if ! cargo fuzz --version 2>/dev/null | grep -q "$cargo_fuzz_version"; then
  echo "installing cargo-fuzz $cargo_fuzz_version"
  cargo install cargo-fuzz --version "$cargo_fuzz_version" --locked </dev/null
fi

toolchain=()
if rustup run nightly rustc --version >/dev/null 2>&1; then
  toolchain=(+nightly)
else
  echo "no nightly toolchain: using $(rustc --version) with RUSTC_BOOTSTRAP=1"
  export RUSTC_BOOTSTRAP=1
fi
echo "fuzzing with $(rustc "${toolchain[@]}" --version), $seconds s per target"

# AddressSanitizer and debug assertions either way. By default an
# unoptimised build, for CI's smoke run: it builds in about a quarter of the
# time of the optimised one and runs about a tenth as many inputs a second
# (FUZZING.md). A long run wants the optimised build: MEMWAL_FUZZ_RELEASE=1.
if [ "${MEMWAL_FUZZ_RELEASE:-0}" = 1 ]; then
  build_flags=(--debug-assertions --codegen-units 16)
else
  build_flags=(--dev)
fi
start=$SECONDS
cargo "${toolchain[@]}" fuzz build "${build_flags[@]}" </dev/null
echo "build took $((SECONDS - start)) s"

mkdir -p target/logs
failed=()
for target in "${targets[@]}"; do
  mkdir -p "corpus/$target" "artifacts/$target"
  log="target/logs/$target.log"
  echo "--- $target"
  status=0
  # -malloc_limit_mb: no single allocation may reach 32 MiB, 2000 times the
  # longest input, so a size read from the input cannot drive an allocation.
  cargo "${toolchain[@]}" fuzz run "${build_flags[@]}" "$target" \
    "corpus/$target" "seeds/$target" -- \
    -max_total_time="$seconds" -max_len="$max_len" \
    -rss_limit_mb=2048 -malloc_limit_mb=32 -timeout=10 \
    -print_final_stats=1 </dev/null >"$log" 2>&1 || status=$?
  runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n 1)
  corpus=$(find "corpus/$target" -type f | wc -l)
  if [ "$status" -ne 0 ]; then
    tail -n 60 "$log"
    echo "$target: FAILED (exit $status) after ${runs:-?} executions; see fuzz/$log and fuzz/artifacts/$target/"
    failed+=("$target")
  else
    echo "$target: ${runs:-?} executions in $seconds s, no crash (corpus: $corpus inputs)"
  fi
done

if [ "${#failed[@]}" -ne 0 ]; then
  echo "fuzzing found crashes in: ${failed[*]}"
  exit 1
fi

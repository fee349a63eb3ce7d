#!/usr/bin/env bash
# The reliability suite at nightly strength: many more SIGKILLs and racing
# rounds than `npm test` runs, plus longer fuzzing. Usage:
#   bash scripts/reliability-nightly.sh [kill-iterations] [race-rounds] [fuzz-seconds]
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
MEMWAL_KILL_ITERATIONS="${1:-1000}" MEMWAL_RACE_ROUNDS="${2:-40}" \
  cargo test -p memwal-core --test processes --test crash_points --test faults -- --nocapture
if [[ -f fuzz/run.sh ]]; then
  bash fuzz/run.sh "${3:-600}"
fi

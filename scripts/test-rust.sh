#!/usr/bin/env bash
# Every Rust test, then the writer, tailer and reader suites again on the
# local filesystem and on S3 (a moto server on loopback); the first pass
# runs them on the in-memory store. `--workspace` (not `-p memwal-core`)
# keeps the features cargo resolved for the first pass, so nothing is
# rebuilt (`-p` drops features the addon turns on, e.g. `log/std`, and
# rebuilt object_store, parquet and sqlparser: ~150 s in CI).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
cargo test --workspace
for backend in file s3; do
  echo "==> writer/tailer/reader suites on $backend"
  MEMWAL_TEST_BACKEND="$backend" cargo test --workspace \
    --test wal_only_writer --test memtable_writer --test shard_reader
done

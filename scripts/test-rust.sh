#!/usr/bin/env bash
# Every Rust test, then the writer, tailer and reader suites again on the
# local filesystem and on S3 (a moto server on loopback); the first pass
# runs them on the in-memory store.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
cargo test --workspace
for backend in file s3; do
  echo "==> writer/tailer/reader suites on $backend"
  MEMWAL_TEST_BACKEND="$backend" cargo test -p memwal-core \
    --test wal_only_writer --test memtable_writer --test shard_reader
done

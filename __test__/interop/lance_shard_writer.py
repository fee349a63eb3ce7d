#!/usr/bin/env python3
"""Write a MemWAL shard with Lance's own ShardWriter (pylance 14.0.2).

usage: lance_shard_writer.py <dataset_dir> <shard_id> <puts> <rows_per_put> [--close]

Creates the Lance dataset (id int64 non-null primary key, name utf8) at
dataset_dir if missing, initializes MemWAL on it if needed, opens Lance's
writer on shard_id and performs `puts` durable puts of `rows_per_put` rows
(ids 0..puts*rows_per_put-1, name "name-<id>"). Prints one JSON line:
{"epoch": N, "puts": N, "rows": N, "wal_files": [names ordered by position]}

By default the process then exits without closing the writer, so nothing is
flushed: the WAL entries stay unreplayed (the manifest's replay cursor is not
moved) and a later writer replays them. With --close the writer is closed:
Lance then flushes the MemTable to a generation and advances the replay
cursor past every entry (the WAL files stay on disk).
"""

import json
import os
import sys

import pyarrow as pa

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _lance_common import latest_manifest, open_or_create_dataset, table_schema, wal_files  # noqa: E402


def main(argv):
    args = [a for a in argv if a != "--close"]
    close = "--close" in argv
    if len(args) != 4:
        sys.exit(__doc__)
    root, shard_id = os.path.abspath(args[0]), args[1]
    puts, rows_per_put = int(args[2]), int(args[3])
    schema = table_schema()

    ds = open_or_create_dataset(root)
    # A durable put waits for the WAL task's next tick (default 100 ms); 10 ms
    # keeps the script fast. Sequential durable puts still give one entry each.
    writer = ds.mem_wal_writer(shard_id, max_wal_flush_interval_ms=10)
    for p in range(puts):
        ids = list(range(p * rows_per_put, (p + 1) * rows_per_put))
        batch = pa.record_batch(
            [pa.array(ids, pa.int64()), pa.array([f"name-{i}" for i in ids], pa.utf8())],
            schema=schema,
        )
        writer.put(batch)  # durable_write defaults to True: returns once in the WAL
    if close:
        writer.close()

    out = {
        "epoch": latest_manifest(root, shard_id)["writer_epoch"],
        "puts": puts,
        "rows": puts * rows_per_put,
        "wal_files": wal_files(root, shard_id),
    }
    sys.stdout.write(json.dumps(out) + "\n")
    sys.stdout.flush()
    # pylance has no abort(); a dropped writer does not flush, but skip every
    # destructor anyway so nothing can write after we report.
    os._exit(0)


if __name__ == "__main__":
    main(sys.argv[1:])

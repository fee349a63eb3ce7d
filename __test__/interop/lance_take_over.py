#!/usr/bin/env python3
"""Take over an existing MemWAL shard with Lance's ShardWriter (pylance 14.0.2).

usage: lance_take_over.py <dataset_dir> <shard_id>

If dataset_dir holds no Lance dataset yet (memwal writes only _mem_wal/), an
empty one is created with the schema id int64 non-null (primary key),
name utf8, and MemWAL is initialized on it. Lance's writer is then opened on
shard_id: it claims epoch+1 (new manifest version), writes a fence sentinel
at the WAL tip and replays every entry after the manifest's replay cursor
into its MemTable. Prints one JSON line:
{"epoch": <claimed epoch>, "memtable_rows": <rows replayed>}
and exits without closing, so no generation is flushed and the replay cursor
does not move: the WAL entries stay uncovered, and the next writer replays them again.
"""

import json
import os
import sys

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _lance_common import latest_manifest, open_or_create_dataset  # noqa: E402


def main(argv):
    if len(argv) != 2:
        sys.exit(__doc__)
    root, shard_id = os.path.abspath(argv[0]), argv[1]
    ds = open_or_create_dataset(root)
    writer = ds.mem_wal_writer(shard_id)
    out = {
        "epoch": latest_manifest(root, shard_id)["writer_epoch"],
        "memtable_rows": writer.memtable_stats()["row_count"],
    }
    sys.stdout.write(json.dumps(out) + "\n")
    sys.stdout.flush()
    # No abort() in pylance 14.0.2 and close() would flush a generation:
    # leave without running any destructor.
    os._exit(0)


if __name__ == "__main__":
    main(sys.argv[1:])

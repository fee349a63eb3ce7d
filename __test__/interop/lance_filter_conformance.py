#!/usr/bin/env python3
"""The Lance side of the filter conformance test (pylance 14.0.2).

usage:
  lance_filter_conformance.py rows <out.arrows>
      Write the test rows as an Arrow IPC stream: id int64 (primary key) and
      one nullable column per type the test compares, each with NULLs.
  lance_filter_conformance.py eval <dataset_dir> <shard_id> <filters.json>
      Take shard_id over with Lance's ShardWriter, which replays every WAL
      entry memwal wrote into its MemTable, then run each filter of the JSON
      list through the writer's LsmScanner. Prints one JSON line:
      {"memtable_rows": <rows replayed>, "results": [per filter
      {"ids": [sorted ids]} or {"error": "<message>"}]}.

The eval step exits without closing the writer (closing would flush a
generation), like lance_take_over.py.
"""

import datetime
import decimal
import json
import os
import sys

import pyarrow as pa

PK_KEY = "lance-schema:unenforced-primary-key"


def schema() -> pa.Schema:
    return pa.schema(
        [
            pa.field("id", pa.int64(), nullable=False, metadata={PK_KEY: "true"}),
            pa.field("i32", pa.int32()),
            pa.field("i64", pa.int64()),
            pa.field("f64", pa.float64()),
            pa.field("dec", pa.decimal128(10, 2)),
            pa.field("s", pa.utf8()),
            pa.field("d", pa.date32()),
            pa.field("ts", pa.timestamp("us")),
            pa.field("b", pa.bool_()),
        ]
    )


def rows() -> pa.Table:
    """24 rows; every column but id is NULL in at least two of them."""
    D = decimal.Decimal
    day = datetime.date(2024, 1, 1)
    noon = datetime.datetime(2024, 1, 1, 12, 0, 0)
    strings = ["apple", "banana", "kiwi", "", "Apple", "a_b", "x_y", "mango", None,
               "50%", "berry", "kiwi"]
    cols = {name: [] for name in schema().names}
    for i in range(24):
        cols["id"].append(i)
        cols["i32"].append(None if i % 7 == 3 else (i % 6) - 1)
        cols["i64"].append(None if i % 5 == 4 else (i - 12) * 1_000_000_000_000 // 7)
        cols["f64"].append(None if i % 8 == 5 else [-0.25, 0.0, 1.5, 2.0, 3.75][i % 5] * (1 + i // 12))
        cols["dec"].append(None if i % 9 == 2 else D(i * 137 % 2000 - 500).scaleb(-2))
        cols["s"].append(strings[i % len(strings)] if i != 20 else None)
        cols["d"].append(None if i % 10 == 6 else day + datetime.timedelta(days=(i * 11) % 70))
        cols["ts"].append(
            None if i % 11 == 1 else noon + datetime.timedelta(hours=(i * 5) % 60, microseconds=i % 3)
        )
        cols["b"].append(None if i % 4 == 2 else i % 3 == 0)
    return pa.table(cols, schema=schema())


def write_rows(path: str) -> None:
    table = rows()
    with pa.OSFile(path, "wb") as sink, pa.ipc.new_stream(sink, table.schema) as out:
        out.write_table(table)


def evaluate(root: str, shard_id: str, filters_path: str) -> None:
    import lance

    with open(filters_path, encoding="utf8") as f:
        filters = json.load(f)
    # memwal writes only _mem_wal/; Lance needs a dataset with the same schema
    # next to it before its writer can claim the shard.
    ds = lance.write_dataset(schema().empty_table(), root, mode="create")
    ds.initialize_mem_wal()
    writer = ds.mem_wal_writer(shard_id)
    results = []
    for expr in filters:
        try:
            table = writer.lsm_scanner().project(["id"]).filter(expr).to_table()
            results.append({"ids": sorted(table.column("id").to_pylist())})
        except Exception as err:  # noqa: BLE001 - the message is the result
            results.append({"error": f"{type(err).__name__}: {err}"})
    sys.stdout.write(json.dumps({"memtable_rows": writer.memtable_stats()["row_count"],
                                 "results": results}) + "\n")
    sys.stdout.flush()
    os._exit(0)


def main(argv):
    if len(argv) == 2 and argv[0] == "rows":
        write_rows(argv[1])
    elif len(argv) == 4 and argv[0] == "eval":
        evaluate(os.path.abspath(argv[1]), argv[2], argv[3])
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main(sys.argv[1:])

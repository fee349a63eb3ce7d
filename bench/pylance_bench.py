#!/usr/bin/env python3
"""Lance's own MemWAL shard writer (pylance) as a baseline for bench/run.ts.

usage: pylance_bench.py <mode> <spec.json>

mode is one of
  run             one timed put loop (a cell of the scenario matrix)
  sustained       sustained ingest with backpressure, RSS sampled
  replay-write    write a WAL and leave it unflushed (the process exits without close)
  replay-open     time opening a writer on that shard, which replays the WAL

The batches come from an Arrow IPC stream file that bench/run.ts wrote from the
same generator memwal's runs use; they are cast to the dataset's schema (Lance
stores the fixed-size-list child as nullable) before any clock starts. Only the
put loop (and close(), where the spec says so) is timed, here in Python with
time.perf_counter(); the result is one JSON line on stdout, and per-put
latencies (ms, float64 little-endian) go to spec["latencies_path"].
"""

import json
import os
import sys
import threading
import time
import uuid
from array import array

import pyarrow as pa

sys.dont_write_bytecode = True


def read_pool(path):
    with pa.OSFile(path, "rb") as f:
        return list(pa.ipc.open_stream(f))


def open_dataset(root, schema):
    import lance

    ds = lance.write_dataset(schema.empty_table(), root, mode="create")
    ds.initialize_mem_wal()
    return ds


def writer_options(spec):
    opts = {
        "durable_write": spec["durable"],
        "max_memtable_size": spec["max_memtable_size"],
        "max_unflushed_memtable_bytes": spec["max_unflushed_memtable_bytes"],
        "stats_log_interval_ms": 0,
    }
    if spec.get("max_wal_flush_interval_ms") is not None:
        opts["max_wal_flush_interval_ms"] = spec["max_wal_flush_interval_ms"]
    if spec.get("max_memtable_batches") is not None:
        opts["max_memtable_batches"] = spec["max_memtable_batches"]
    if spec.get("max_memtable_rows") is not None:
        opts["max_memtable_rows"] = spec["max_memtable_rows"]
    return opts


def put_loop(writer, batches, sizes, seconds, concurrency):
    """`concurrency` threads, each putting one batch at a time until the deadline."""
    lock = threading.Lock()
    state = {"next": 0, "puts": 0, "bytes": 0}
    latencies = []
    errors = []
    deadline = time.perf_counter() + seconds

    def loop():
        mine = []
        try:
            while time.perf_counter() < deadline:
                with lock:
                    i = state["next"] % len(batches)
                    state["next"] += 1
                t0 = time.perf_counter()
                writer.put(batches[i])
                mine.append((time.perf_counter() - t0) * 1000.0)
                with lock:
                    state["puts"] += 1
                    state["bytes"] += sizes[i]
        except BaseException as e:  # reported, not swallowed
            errors.append(repr(e))
        finally:
            with lock:
                latencies.extend(mine)

    if concurrency == 1:
        loop()
    else:
        threads = [threading.Thread(target=loop) for _ in range(concurrency)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    if errors:
        raise RuntimeError(f"put failed: {errors[0]}")
    return state["puts"], state["bytes"], latencies


def mode_run(spec):
    import lance

    store = spec["store"]
    pool = read_pool(spec["pool_path"])
    root = spec["root"] if store == "file" else f"memory://{os.path.basename(spec['root'])}"
    ds = open_dataset(root, pool[0].schema)
    batches = [b.cast(ds.schema) for b in pool]
    sizes = spec["payload_bytes"]
    opts = writer_options(spec)
    # On memory:// a writer is never closed (its flush fails there), so nothing
    # may wait for one.
    can_close = store == "file"

    if spec["warmup_seconds"] > 0:
        w = ds.mem_wal_writer(str(uuid.uuid4()), **opts)
        put_loop(w, batches, sizes, spec["warmup_seconds"], spec["concurrency"])
        if can_close:
            w.close()

    writer = ds.mem_wal_writer(str(uuid.uuid4()), **opts)
    start = time.perf_counter()
    puts, payload, latencies = put_loop(
        writer, batches, sizes, spec["seconds"], spec["concurrency"]
    )
    puts_done = time.perf_counter()
    stats = writer.stats()
    close_seconds = 0.0
    if not spec["durable"]:
        writer.close()
        close_seconds = time.perf_counter() - puts_done
    end = time.perf_counter()
    if spec["durable"] and can_close:
        writer.close()
    with open(spec["latencies_path"], "wb") as f:
        array("d", latencies).tofile(f)
    return {
        "puts": puts,
        "payloadBytes": payload,
        "seconds": end - start,
        "putSeconds": puts_done - start,
        "closeSeconds": close_seconds,
        "extra": {"stats": stats, "options": opts, "lance": lance.__version__},
    }


def rss():
    """This process's resident set size in bytes."""
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


class RssSampler:
    """Samples this process's RSS from /proc every `interval` seconds."""

    def __init__(self, interval):
        self.interval = interval
        self.peak = rss()
        self.peak_at = 0.0
        self.samples = 0
        self.start = time.perf_counter()
        self.stop_flag = threading.Event()
        self.thread = threading.Thread(target=self.run, daemon=True)
        self.thread.start()

    def run(self):
        while not self.stop_flag.wait(self.interval):
            r = rss()
            self.samples += 1
            if r > self.peak:
                self.peak = r
                self.peak_at = time.perf_counter() - self.start

    def stop(self):
        self.stop_flag.set()
        self.thread.join()
        return {"peakRss": self.peak, "peakAtSeconds": self.peak_at, "samples": self.samples}


def mode_sustained(spec):
    import lance

    pool = read_pool(spec["pool_path"])
    ds = open_dataset(spec["root"], pool[0].schema)
    batches = [b.cast(ds.schema) for b in pool]
    sizes = spec["payload_bytes"]
    writer = ds.mem_wal_writer(str(uuid.uuid4()), **writer_options(spec))
    baseline = rss()
    sampler = RssSampler(spec["rss_interval_ms"] / 1000.0)
    start = time.perf_counter()
    puts, payload, _ = put_loop(writer, batches, sizes, spec["seconds"], 1)
    puts_done = time.perf_counter()
    writer.close()  # flushes every MemTable to a Lance generation
    end = time.perf_counter()
    memory = sampler.stop()
    stats = writer.stats()
    return {
        "puts": puts,
        "payloadBytes": payload,
        "seconds": end - start,
        "putSeconds": puts_done - start,
        "closeSeconds": end - puts_done,
        "mbPerSec": payload / 1e6 / (end - start),
        "baselineRss": baseline,
        "memory": memory,
        "peakAboveBaseline": memory["peakRss"] - baseline,
        "stats": stats,
        "lance": lance.__version__,
    }


def wal_bytes(root, shard):
    d = os.path.join(root, "_mem_wal", shard, "wal")
    names = os.listdir(d) if os.path.isdir(d) else []
    return len(names), sum(os.path.getsize(os.path.join(d, n)) for n in names)


def mode_replay_write(spec):
    pool = read_pool(spec["pool_path"])
    ds = open_dataset(spec["root"], pool[0].schema)
    batches = [b.cast(ds.schema) for b in pool]
    shard = str(uuid.uuid4())
    opts = writer_options(spec)
    writer = ds.mem_wal_writer(shard, **opts)
    target = spec["target_bytes"]
    payload = rows = puts = 0
    start = time.perf_counter()
    while payload < target:
        i = puts % len(batches)
        writer.put(batches[i])  # durable: in the WAL when it returns
        payload += spec["payload_bytes"][i]
        rows += batches[i].num_rows
        puts += 1
    seconds = time.perf_counter() - start
    files, size = wal_bytes(spec["root"], shard)
    out = {
        "shardId": shard,
        "puts": puts,
        "rows": rows,
        "payloadBytes": payload,
        "walWriteSeconds": seconds,
        "walFiles": files,
        "walBytes": size,
    }
    sys.stdout.write(json.dumps(out) + "\n")
    sys.stdout.flush()
    # Leave without closing: a closed writer would flush the MemTable and move
    # the replay cursor past the WAL.
    os._exit(0)


def mode_replay_open(spec):
    import lance

    ds = lance.dataset(spec["root"])
    start = time.perf_counter()
    writer = ds.mem_wal_writer(spec["shard_id"], **writer_options(spec))
    open_seconds = time.perf_counter() - start
    mem = writer.memtable_stats()
    files, size = wal_bytes(spec["root"], spec["shard_id"])
    out = {
        "openMs": open_seconds * 1000.0,
        "walFiles": files,
        "walBytes": size,
        "walMbPerSec": size / 1e6 / open_seconds,
        "replayedRows": mem.get("row_count", 0),
        "memtable": mem,
        "lance": lance.__version__,
    }
    sys.stdout.write(json.dumps(out) + "\n")
    sys.stdout.flush()
    os._exit(0)  # closing would flush the replayed rows; not part of the measurement


def main(argv):
    if len(argv) != 2:
        sys.exit(__doc__)
    mode, spec_path = argv
    with open(spec_path) as f:
        spec = json.load(f)
    if mode == "run":
        out = mode_run(spec)
    elif mode == "sustained":
        out = mode_sustained(spec)
    elif mode == "replay-write":
        mode_replay_write(spec)
        return
    elif mode == "replay-open":
        mode_replay_open(spec)
        return
    else:
        sys.exit(f"unknown mode {mode!r}\n{__doc__}")
    sys.stdout.write(json.dumps(out) + "\n")
    sys.stdout.flush()
    # Lance's background threads may linger after close; nothing is left to write.
    os._exit(0)


if __name__ == "__main__":
    main(sys.argv[1:])

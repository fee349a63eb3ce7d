"""Shared helpers for the Lance interop scripts (pylance 14.0.2).

Kept dependency-free apart from pyarrow and lance: the shard manifest is
decoded with a tiny protobuf reader because pylance does not expose the
writer's epoch.
"""

import os
import re

import pyarrow as pa

PK_KEY = "lance-schema:unenforced-primary-key"
_BITREV_NAME = re.compile(r"^([01]{64})\.(arrow|binpb)$")


def table_schema() -> pa.Schema:
    """id int64 non-null (primary key), name utf8 nullable."""
    return pa.schema(
        [
            pa.field("id", pa.int64(), nullable=False, metadata={PK_KEY: "true"}),
            pa.field("name", pa.utf8(), nullable=True),
        ]
    )


def open_or_create_dataset(root: str):
    """Open the Lance dataset at root (creating an empty one with
    table_schema() if there is none) and make sure MemWAL is initialized."""
    import lance

    try:
        ds = lance.dataset(root)
    except (ValueError, FileNotFoundError, OSError):
        # A directory that only holds memwal's _mem_wal/ is not a dataset yet;
        # write_dataset happily creates _versions/ next to it.
        ds = lance.write_dataset(table_schema().empty_table(), root, mode="create")
    if ds.mem_wal_index_details() is None:
        ds.initialize_mem_wal()  # commits a new dataset version, updates ds
    return ds


def shard_dir(root: str, shard_id: str) -> str:
    return os.path.join(root, "_mem_wal", shard_id)


def parse_bitrev(name: str, ext: str):
    m = _BITREV_NAME.match(name)
    if not m or m.group(2) != ext:
        return None
    return int(m.group(1)[::-1], 2)


def wal_files(root: str, shard_id: str):
    """WAL entry file names, ordered by position."""
    d = os.path.join(shard_dir(root, shard_id), "wal")
    named = []
    for name in os.listdir(d) if os.path.isdir(d) else []:
        pos = parse_bitrev(name, "arrow")
        if pos is not None:
            named.append((pos, name))
    return [name for _, name in sorted(named)]


def _varint(buf: bytes, i: int):
    value = shift = 0
    while True:
        b = buf[i]
        i += 1
        value |= (b & 0x7F) << shift
        shift += 7
        if b < 0x80:
            return value, i


def _scalar_fields(buf: bytes) -> dict:
    """Top-level varint fields of a protobuf message (others skipped)."""
    out, i = {}, 0
    while i < len(buf):
        key, i = _varint(buf, i)
        field, wire = key >> 3, key & 7
        if wire == 0:
            out[field], i = _varint(buf, i)
        elif wire == 2:
            n, i = _varint(buf, i)
            i += n
        elif wire == 1:
            i += 8
        elif wire == 5:
            i += 4
        else:
            raise ValueError(f"unsupported protobuf wire type {wire}")
    return out


def latest_manifest(root: str, shard_id: str) -> dict:
    """{'version', 'writer_epoch', 'replay_after', 'last_seen', 'current_generation'}
    of the highest manifest version on disk."""
    d = os.path.join(shard_dir(root, shard_id), "manifest")
    versions = [v for v in (parse_bitrev(n, "binpb") for n in os.listdir(d)) if v is not None]
    if not versions:
        raise RuntimeError(f"no manifest under {d}")
    top = max(versions)
    with open(os.path.join(d, format(top, "064b")[::-1] + ".binpb"), "rb") as f:
        fields = _scalar_fields(f.read())
    if fields.get(1, 0) != top:
        raise RuntimeError(f"manifest {top} records version {fields.get(1, 0)}")
    return {
        "version": top,
        "writer_epoch": fields.get(2, 0),
        "replay_after": fields.get(3, 0),
        "last_seen": fields.get(4, 0),
        "current_generation": fields.get(6, 0),
    }

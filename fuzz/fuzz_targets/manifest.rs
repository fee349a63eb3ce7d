//! Fuzz the shard manifest decoder: bytes read from `manifest/<v>.binpb`.
#![no_main]

use libfuzzer_sys::fuzz_target;
use memwal_core::manifest::{decode_manifest, ShardManifest};
use memwal_fuzz::{MANIFEST_SHARD, MANIFEST_VERSION};
use prost::Message;

fuzz_target!(|data: &[u8]| {
    let Ok(m) = decode_manifest(&MANIFEST_SHARD, MANIFEST_VERSION, data) else {
        return;
    };
    assert_eq!(m.version, MANIFEST_VERSION);
    assert_eq!(m.shard_uuid(), Some(MANIFEST_SHARD));

    // What the writer, the shard reader and the Node binding read next.
    let sealed = m.is_sealed();
    let mut path_bytes = 0usize;
    for g in &m.flushed_generations {
        path_bytes += g.path.len();
        let _ = (
            g.generation,
            g.in_memory_bytes,
            g.physical_rows,
            g.primary_key_bytes,
        );
    }
    for f in &m.shard_field_entries {
        path_bytes += f.field_id.len() + f.value.len();
    }
    assert!(path_bytes <= data.len());
    let mut listed = m.flushed_generations.clone();
    listed.sort_by_key(|g| g.generation);

    // The arithmetic production does on a decoded manifest, written the same
    // way (overflow checks are on in fuzz builds):
    // ManifestStore::claim_epoch derives the next version and epoch,
    let claimed = ShardManifest {
        version: m.version + 1,
        writer_epoch: m.writer_epoch + 1,
        ..m.clone()
    };
    // ShardWriter::open and ShardReader start after the replay cursor, probe
    // from the WAL hint and number MemTables from the current generation.
    let replay_from = claimed.replay_after_wal_entry_position + 1;
    let hint = claimed
        .wal_entry_position_last_seen
        .max(claimed.replay_after_wal_entry_position);
    let probe = hint + 1;
    let second_memtable = claimed.current_generation.max(1) + 1;
    std::hint::black_box((sealed, replay_from, probe, second_memtable));

    // ManifestStore::write stores the claimed manifest; it must read back.
    let bytes = claimed.encode_to_vec();
    let back = decode_manifest(&MANIFEST_SHARD, claimed.version, &bytes)
        .expect("a re-encoded manifest decodes");
    assert_eq!(back, claimed);
});

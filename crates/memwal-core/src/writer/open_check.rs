//! What an open checks before it claims the shard. Claiming fences the
//! writer that owns the shard, so everything that can refuse the open must
//! be asked first: a doomed open never fences a healthy writer.
//!
//! The checks read, never write: the latest manifest, the footer of the
//! newest flushed generation, and the newest WAL entry with rows past the
//! replay cursor (the one replay and a reader would meet last). Their
//! schema and primary key must be the new writer's (a key may be added
//! while no generation is flushed). Schemas do not evolve:
//! a shard keeps the schema of its first data, which is also what keeps
//! every generation readable by one shard reader.

use arrow_schema::{Schema, SchemaRef};

use crate::error::{Error, Result};
use crate::format::layout::ShardLayout;
use crate::format::primary_key::primary_key_columns;
use crate::format::schema::first_difference;
use crate::format::TOMBSTONE_COLUMN;
use crate::manifest::ShardManifest;
use crate::read::shard_reader::generation_footer;
use crate::read::WalTailer;
use crate::store::StorageRoot;

/// SCHEMA_MISMATCH (or the error reading the evidence) if `schema`, the
/// user schema of the writer being opened, is not the schema of the data
/// the shard already holds: `manifest` is its latest version and `tip` the
/// first free WAL position (the hole check found every entry below it).
/// Nothing is written.
pub async fn check_schema_before_claim(
    root: &StorageRoot,
    layout: &ShardLayout,
    manifest: &ShardManifest,
    tip: u64,
    schema: &SchemaRef,
) -> Result<()> {
    let shard = layout.shard_id();
    if let Some((generation, found)) = newest_generation_schema(root, layout, manifest).await? {
        compare(schema, &found, false, || {
            format!("flushed generation {generation}")
        })
        .map_err(|e| e.with_shard(shard))?;
    }
    if let Some((position, found)) = newest_entry_schema(root, layout, manifest, tip).await? {
        compare(schema, &found, true, || {
            format!("WAL entry at position {position}")
        })
        .map_err(|e| e.with_shard(shard))?;
    }
    Ok(())
}

/// The Arrow schema embedded in the newest flushed generation's footer.
async fn newest_generation_schema(
    root: &StorageRoot,
    layout: &ShardLayout,
    manifest: &ShardManifest,
) -> Result<Option<(u64, SchemaRef)>> {
    let Some(newest) = manifest
        .flushed_generations
        .iter()
        .max_by_key(|g| g.generation)
    else {
        return Ok(None);
    };
    let (_, metadata) = generation_footer(root, layout, newest).await?;
    Ok(Some((newest.generation, metadata.schema().clone())))
}

/// The schema of the newest WAL entry with rows after the replay cursor:
/// one entry read, plus one per fence sentinel stepped over.
async fn newest_entry_schema(
    root: &StorageRoot,
    layout: &ShardLayout,
    manifest: &ShardManifest,
    tip: u64,
) -> Result<Option<(u64, SchemaRef)>> {
    let cursor = manifest.replay_after_wal_entry_position;
    let tailer = WalTailer::new(root.clone(), layout.shard_id());
    let mut position = tip;
    while position > cursor + 1 {
        position -= 1;
        let Some(entry) = tailer.read_entry(position).await? else {
            // Below the tip yet missing: not ours to judge here; replay and
            // the readers report holes.
            return Ok(None);
        };
        if !entry.fence_sentinel && entry.num_rows() > 0 {
            return Ok(Some((position, entry.schema)));
        }
    }
    Ok(None)
}

/// `found` without the delete-marker column, which a writer adds for a
/// primary key (and Lance always).
fn user_columns(found: &Schema) -> Schema {
    let fields: Vec<_> = found
        .fields()
        .iter()
        .filter(|f| f.name() != TOMBSTONE_COLUMN)
        .cloned()
        .collect();
    Schema::new(fields)
}

/// `may_add_key`: unflushed rows written without a key take one (replay
/// back-fills them as live rows); a flushed generation cannot, since every
/// generation of a shard must have one layout for the shard reader.
fn compare(
    schema: &SchemaRef,
    found: &Schema,
    may_add_key: bool,
    what: impl Fn() -> String,
) -> Result<()> {
    let found_columns = user_columns(found);
    // Both ways: replay conforms the shard's rows to this writer's schema,
    // and the shard reader reads this writer's rows with the schema of the
    // shard's first data, so nullability must match as well as types.
    let difference = first_difference(&found_columns, schema).or_else(|| {
        let fields = found_columns.fields().iter().zip(schema.fields());
        fields
            .enumerate()
            .find(|(_, (have, want))| have.is_nullable() != want.is_nullable())
            .map(|(position, (have, _))| {
                format!(
                    "field {position} '{}': nullable {} in the shard, {} in this writer",
                    have.name(),
                    have.is_nullable(),
                    !have.is_nullable()
                )
            })
    });
    if let Some(difference) = difference {
        return Err(Error::schema_mismatch(format!(
            "The shard's data does not fit this writer's schema ({}: {difference}); \
             a shard keeps the schema of its first data",
            what()
        )));
    }
    let want = primary_key_columns(schema);
    let have = primary_key_columns(found);
    if want != have && !(may_add_key && have.is_empty()) {
        return Err(Error::schema_mismatch(format!(
            "The shard's data has primary key {have:?} ({}), this writer has {want:?}",
            what()
        )));
    }
    Ok(())
}

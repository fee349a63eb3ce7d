//! Where a shard's objects live below the storage root, and what they are
//! called (docs/FORMAT.md §2–§4, §9): the one place a path is spelled out.

use crate::format::names::{bit_reversed_name, parse_bit_reversed_name};

/// Top-level directory that holds every shard.
pub const MEM_WAL_DIR: &str = "_mem_wal";
/// File extension of WAL entries (the content is an IPC *stream*).
pub const WAL_EXT: &str = "arrow";
/// File extension of manifest versions (a binary protobuf).
pub const MANIFEST_EXT: &str = "binpb";
/// The manifest directory's hint of its latest version.
pub const VERSION_HINT_FILE: &str = "version_hint.json";
/// The one Parquet file inside a generation directory.
pub const GENERATION_FILE: &str = "data.parquet";

/// The WAL position a listed name stands for; `None` for anything else.
pub fn wal_position_of(name: &str) -> Option<u64> {
    parse_bit_reversed_name(name, WAL_EXT)
}

/// The manifest version a listed name stands for; `None` for anything else.
pub fn manifest_version_of(name: &str) -> Option<u64> {
    parse_bit_reversed_name(name, MANIFEST_EXT)
}

/// `<8 hex>_gen_<N>`: a generation's directory name. The random prefix
/// keeps a retried flush from colliding with an unreferenced earlier try.
pub fn generation_dir_name(prefix: u32, generation: u64) -> String {
    format!("{prefix:08x}_gen_{generation}")
}

/// Relative paths of one shard's directories and objects.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShardLayout {
    shard_id: uuid::Uuid,
    shard_dir: String,
}

impl ShardLayout {
    pub fn new(shard_id: uuid::Uuid) -> Self {
        let shard_dir = format!("{MEM_WAL_DIR}/{}", shard_id.as_hyphenated());
        Self {
            shard_id,
            shard_dir,
        }
    }

    pub fn shard_id(&self) -> uuid::Uuid {
        self.shard_id
    }

    /// `_mem_wal/<shard_id>`
    pub fn shard_dir(&self) -> &str {
        &self.shard_dir
    }

    /// `_mem_wal/<shard_id>/manifest`
    pub fn manifest_dir(&self) -> String {
        format!("{}/manifest", self.shard_dir)
    }

    /// `_mem_wal/<shard_id>/wal`
    pub fn wal_dir(&self) -> String {
        format!("{}/wal", self.shard_dir)
    }

    /// `_mem_wal/<shard_id>/wal/<bitrev(position)>.arrow`
    pub fn wal_entry(&self, position: u64) -> String {
        format!(
            "{}/wal/{}",
            self.shard_dir,
            bit_reversed_name(position, WAL_EXT)
        )
    }

    /// `_mem_wal/<shard_id>/manifest/<bitrev(version)>.binpb`
    pub fn manifest_version(&self, version: u64) -> String {
        format!(
            "{}/manifest/{}",
            self.shard_dir,
            bit_reversed_name(version, MANIFEST_EXT)
        )
    }

    /// `_mem_wal/<shard_id>/manifest/version_hint.json`
    pub fn version_hint(&self) -> String {
        format!("{}/manifest/{VERSION_HINT_FILE}", self.shard_dir)
    }

    /// `_mem_wal/<shard_id>/<dir>/data.parquet`, `dir` as the manifest
    /// lists it (see [`generation_dir_name`]).
    pub fn generation_file(&self, dir: &str) -> String {
        format!("{}/{dir}/{GENERATION_FILE}", self.shard_dir)
    }
}

/// Parse a shard id: a UUID in its lowercase hyphenated form (other
/// spellings are accepted and normalised; anything else is rejected).
pub fn parse_shard_id(text: &str) -> crate::error::Result<uuid::Uuid> {
    let id = uuid::Uuid::try_parse(text).map_err(|_| {
        crate::error::Error::invalid_config(format!(
            "shardId must be a UUID such as 3f2504e0-4f89-41d3-9a0c-0305e82c3301, got '{}'",
            text.chars().take(80).collect::<String>()
        ))
    })?;
    if id.is_nil() {
        return Err(crate::error::Error::invalid_config(
            "shardId must not be the nil UUID",
        ));
    }
    Ok(id)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_follow_the_spec_layout() {
        let id = uuid::Uuid::parse_str("3F2504E0-4F89-41D3-9A0C-0305E82C3301").unwrap();
        let layout = ShardLayout::new(id);
        assert_eq!(
            layout.shard_dir(),
            "_mem_wal/3f2504e0-4f89-41d3-9a0c-0305e82c3301"
        );
        assert_eq!(
            layout.wal_entry(1),
            format!(
                "_mem_wal/3f2504e0-4f89-41d3-9a0c-0305e82c3301/wal/1{}.arrow",
                "0".repeat(63)
            )
        );
        assert_eq!(
            layout.manifest_version(2),
            format!(
                "_mem_wal/3f2504e0-4f89-41d3-9a0c-0305e82c3301/manifest/01{}.binpb",
                "0".repeat(62)
            )
        );
        assert_eq!(
            layout.version_hint(),
            "_mem_wal/3f2504e0-4f89-41d3-9a0c-0305e82c3301/manifest/version_hint.json"
        );
        let dir = generation_dir_name(0xab, 3);
        assert_eq!(dir, "000000ab_gen_3");
        assert_eq!(
            layout.generation_file(&dir),
            "_mem_wal/3f2504e0-4f89-41d3-9a0c-0305e82c3301/000000ab_gen_3/data.parquet"
        );
    }

    #[test]
    fn listed_names_parse_only_as_their_own_kind() {
        let layout = ShardLayout::new(uuid::Uuid::new_v4());
        let entry = layout.wal_entry(9);
        let entry = entry.rsplit('/').next().unwrap();
        assert_eq!(wal_position_of(entry), Some(9));
        assert_eq!(manifest_version_of(entry), None);
        let version = layout.manifest_version(9);
        let version = version.rsplit('/').next().unwrap();
        assert_eq!(manifest_version_of(version), Some(9));
        assert_eq!(wal_position_of(VERSION_HINT_FILE), None);
    }

    #[test]
    fn shard_ids_must_be_uuids() {
        assert!(parse_shard_id("3f2504e0-4f89-41d3-9a0c-0305e82c3301").is_ok());
        for bad in [
            "",
            "../etc",
            "3f2504e0",
            "00000000-0000-0000-0000-000000000000",
            "a/b",
        ] {
            assert!(parse_shard_id(bad).is_err(), "{bad}");
        }
    }
}

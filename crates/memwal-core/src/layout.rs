//! Where a shard's objects live below the storage root (docs/FORMAT.md, section 2).

use crate::wal::names::bit_reversed_name;

/// Top-level directory that holds every shard.
pub const MEM_WAL_DIR: &str = "_mem_wal";

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
            bit_reversed_name(position, crate::wal::WAL_EXT)
        )
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

//! Hand-written prost messages matching `proto/shard_manifest.proto`.
//!
//! Writing the derives by hand keeps `protoc` out of the build; the tests
//! below pin every field number against hand-assembled wire bytes.

/// A UUID as 16 raw bytes.
#[derive(Clone, PartialEq, Eq, prost::Message)]
pub struct Uuid {
    #[prost(bytes = "vec", tag = "1")]
    pub uuid: Vec<u8>,
}

#[derive(Clone, PartialEq, Eq, prost::Message)]
pub struct FlushedGeneration {
    #[prost(uint64, tag = "1")]
    pub generation: u64,
    #[prost(string, tag = "2")]
    pub path: String,
    #[prost(uint64, optional, tag = "3")]
    pub in_memory_bytes: Option<u64>,
    #[prost(uint64, optional, tag = "4")]
    pub physical_rows: Option<u64>,
    #[prost(uint64, optional, tag = "5")]
    pub primary_key_bytes: Option<u64>,
}

#[derive(Clone, PartialEq, Eq, prost::Message)]
pub struct ShardFieldEntry {
    #[prost(string, tag = "1")]
    pub field_id: String,
    #[prost(bytes = "vec", tag = "2")]
    pub value: Vec<u8>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, prost::Enumeration)]
#[repr(i32)]
pub enum ShardStatus {
    Active = 0,
    Sealed = 1,
}

#[derive(Clone, PartialEq, Eq, prost::Message)]
pub struct ShardManifest {
    #[prost(uint64, tag = "1")]
    pub version: u64,
    #[prost(uint64, tag = "2")]
    pub writer_epoch: u64,
    #[prost(uint64, tag = "3")]
    pub replay_after_wal_entry_position: u64,
    #[prost(uint64, tag = "4")]
    pub wal_entry_position_last_seen: u64,
    #[prost(uint64, tag = "6")]
    pub current_generation: u64,
    #[prost(message, repeated, tag = "8")]
    pub flushed_generations: Vec<FlushedGeneration>,
    #[prost(uint32, tag = "10")]
    pub shard_spec_id: u32,
    #[prost(message, optional, tag = "11")]
    pub shard_id: Option<Uuid>,
    #[prost(message, repeated, tag = "14")]
    pub shard_field_entries: Vec<ShardFieldEntry>,
    #[prost(enumeration = "ShardStatus", tag = "15")]
    pub status: i32,
}

impl ShardManifest {
    /// Version 1 of a shard nobody has written yet.
    pub fn fresh(shard_id: uuid::Uuid, shard_spec_id: u32, epoch: u64) -> Self {
        Self {
            version: 1,
            writer_epoch: epoch,
            replay_after_wal_entry_position: 0,
            wal_entry_position_last_seen: 0,
            current_generation: 1,
            flushed_generations: Vec::new(),
            shard_spec_id,
            shard_id: Some(Uuid {
                uuid: shard_id.as_bytes().to_vec(),
            }),
            shard_field_entries: Vec::new(),
            status: ShardStatus::Active as i32,
        }
    }

    pub fn is_sealed(&self) -> bool {
        self.status == ShardStatus::Sealed as i32
    }

    /// ACTIVE or SEALED; any other value comes from a newer format.
    pub fn has_known_status(&self) -> bool {
        ShardStatus::try_from(self.status).is_ok()
    }

    /// The shard id, if present and exactly 16 bytes.
    pub fn shard_uuid(&self) -> Option<uuid::Uuid> {
        self.shard_id
            .as_ref()
            .and_then(|id| uuid::Uuid::from_slice(&id.uuid).ok())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use prost::Message;

    /// Field numbers are the compatibility contract: build the wire bytes by
    /// hand (tag = field << 3 | wire type) and check prost reads each field.
    #[test]
    fn field_numbers_match_the_contract() {
        let id = [7u8; 16];
        let mut wire = vec![
            0x08, 3, // 1: version = 3
            0x10, 5, // 2: writer_epoch = 5
            0x18, 9, // 3: replay_after = 9
            0x20, 11, // 4: last_seen = 11
            0x30, 4, // 6: current_generation = 4
        ];
        // 8: flushed_generations { 1: 2, 2: "g", 4: 10 }
        wire.extend_from_slice(&[0x42, 7, 0x08, 2, 0x12, 1, b'g', 0x20, 10]);
        wire.extend_from_slice(&[0x50, 1]); // 10: shard_spec_id = 1
        wire.extend_from_slice(&[0x5A, 18, 0x0A, 16]); // 11: shard_id { 1: 16 bytes }
        wire.extend_from_slice(&id);
        wire.extend_from_slice(&[0x72, 6, 0x0A, 1, b'f', 0x12, 1, 0x2A]); // 14
        wire.extend_from_slice(&[0x78, 1]); // 15: status = SEALED
        let m = ShardManifest::decode(wire.as_slice()).unwrap();
        assert_eq!(m.version, 3);
        assert_eq!(m.writer_epoch, 5);
        assert_eq!(m.replay_after_wal_entry_position, 9);
        assert_eq!(m.wal_entry_position_last_seen, 11);
        assert_eq!(m.current_generation, 4);
        assert_eq!(
            m.flushed_generations,
            vec![FlushedGeneration {
                generation: 2,
                path: "g".into(),
                physical_rows: Some(10),
                ..Default::default()
            }]
        );
        assert_eq!(m.shard_spec_id, 1);
        assert_eq!(m.shard_uuid(), Some(uuid::Uuid::from_bytes(id)));
        assert_eq!(
            m.shard_field_entries,
            vec![ShardFieldEntry {
                field_id: "f".into(),
                value: vec![0x2A]
            }]
        );
        assert!(m.is_sealed());
        // And prost writes the same bytes back (fields in number order).
        assert_eq!(m.encode_to_vec(), wire);
    }

    #[test]
    fn unknown_fields_are_ignored() {
        let mut wire = ShardManifest::fresh(uuid::Uuid::nil(), 0, 1).encode_to_vec();
        wire.extend_from_slice(&[0xA0, 0x06, 42]); // field 100, varint
        wire.extend_from_slice(&[0x4A, 2, 1, 2]); // field 9, bytes
        let m = ShardManifest::decode(wire.as_slice()).unwrap();
        assert_eq!(m, ShardManifest::fresh(uuid::Uuid::nil(), 0, 1));
    }
}

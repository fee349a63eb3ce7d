//! The shard manifest: a versioned protobuf record that carries the fencing
//! epoch, the WAL replay cursor and the list of flushed generations.

mod proto;
mod store;

pub use proto::{FlushedGeneration, ShardFieldEntry, ShardManifest, ShardStatus, Uuid};
pub use store::{decode_manifest, ManifestStore};

//! memwal-core: a write-ahead-logged shard writer for Apache Arrow data on
//! local disk or object storage, wire-compatible with Lance MemWAL.
//!
//! The crate has no Node.js types; `memwal-node` wraps it for JavaScript.
//! The addon's allocator policy lives in `memwal-alloc`, not here.

pub mod error;
pub mod flush;
pub mod format;
pub mod manifest;
pub mod memtable;
pub mod read;
pub mod redact;
pub mod store;
pub mod wal;
pub mod writer;

pub use error::{Error, ErrorCode, Result};
pub use format::{parse_shard_id, ShardLayout};
pub use read::WalTailer;
pub use store::{StorageOptions, StorageRoot};
pub use wal::WalEntry;
pub use writer::{
    CheckedOpen, DurableListener, DurableProgress, HealthState, OpenOptions, PutNow, PutResult,
    ShardWriter, ShardWriterConfig, WalStats, WriterHealth, WriterStats,
};

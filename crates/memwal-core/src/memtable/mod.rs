//! The in-memory table that buffers a shard's recent writes until they are flushed.

pub mod batch_store;
pub mod primary_key;
pub mod table;
pub mod tombstone;

pub use table::MemTable;

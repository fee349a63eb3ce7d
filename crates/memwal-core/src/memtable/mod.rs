//! The in-memory table that buffers a shard's recent writes until they are flushed.

pub mod batch_store;
pub mod table;

pub use table::MemTable;

//! The in-memory tables that buffer a shard's recent writes until they are
//! flushed: one MemTable (`table`, over `batch_store`) and the writer's set
//! of them (`set`).

pub mod batch_store;
pub mod set;
pub mod table;

pub use set::{FlushProgress, Frozen, MemTableLimits, MemTableStats, MemTables};
pub use table::MemTable;

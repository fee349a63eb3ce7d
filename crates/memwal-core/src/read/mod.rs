//! Reading shard data back: the filter language of scans, newest-row-per-key
//! merging, the shard reader and the WAL tailer.

pub mod filter;
pub mod newest;
pub mod scan;
pub mod shard_reader;
pub mod tailer;

pub use tailer::WalTailer;

//! Reading shard data back: the filter language of scans, newest-row-per-key
//! merging and the shard reader.

pub mod filter;
pub mod newest;
pub mod scan;
pub mod shard_reader;

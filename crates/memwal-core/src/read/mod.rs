//! Reading shard data back: the filter language of scans and the shard reader.

pub mod filter;
pub mod scan;

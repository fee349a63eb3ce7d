//! Storage roots: where shards live, and the few object-store operations
//! memwal needs (create-if-absent, overwrite, get, head, list).
//!
//! Every backend is reached through `object_store`, so a fault-injecting
//! wrapper can sit between memwal and any real store. The one exception is
//! the bulk write of a flushed file on a local root opened by URI
//! ([`StorageRoot::local_file`], [`StagedFile`]), which bypasses the page
//! cache.

#[cfg(unix)]
mod local_direct;
mod root;
mod uri;

#[cfg(unix)]
pub use local_direct::StagedFile;
pub use root::{
    CreateOutcome, StorageOptions, StorageRoot, DEFAULT_CONNECT_TIMEOUT, DEFAULT_MAX_RETRIES,
    DEFAULT_RETRY_TIMEOUT, DEFAULT_TIMEOUT,
};
pub use uri::{parse_root_uri, RootLocation};

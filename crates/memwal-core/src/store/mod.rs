//! Storage roots: where shards live, and the few object-store operations
//! memwal needs (create-if-absent, overwrite, get, head, list).
//!
//! Every backend is reached through `object_store`, so a fault-injecting
//! wrapper can sit between memwal and any real store.

mod root;
mod uri;

pub use root::{CreateOutcome, StorageOptions, StorageRoot};
pub use uri::{parse_root_uri, RootLocation};

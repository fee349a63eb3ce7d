//! The shard's storage format in one place: every name and path of the
//! layout (docs/FORMAT.md §2–§4), the bit-reversed object names, and the
//! row rules every stored batch follows (primary key, `_tombstone`), and
//! how a put's schema is brought to the writer's (`schema`).
//!
//! Pure functions and constants only, no I/O: `wal`, `manifest`, `flush`,
//! `read` and `writer` all build on this module and never on each other for
//! a name or a rule.

pub mod layout;
pub mod names;
pub mod primary_key;
pub mod schema;
pub mod tombstone;

pub use layout::{parse_shard_id, ShardLayout};
pub use tombstone::TOMBSTONE_COLUMN;

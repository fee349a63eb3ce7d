//! The write-ahead log: entry codec, finding the tip, holes, and the
//! appender that owns the tip for one epoch. Object names come from
//! `format`; the manifest is never read here (the appender asks its owner
//! through [`FenceCheck`], and the tailer lives in `read`).

pub mod appender;
pub mod codec;
pub mod discover;
pub mod holes;

pub use appender::{FenceCheck, RetryPolicy, WalAppender};
pub use codec::{
    decode_entry, encode_entry, encode_entry_payload, encode_fence_sentinel, WalEntry,
};

/// First position of every WAL; 0 means "nothing".
pub const FIRST_POSITION: u64 = 1;

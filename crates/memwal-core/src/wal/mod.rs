//! The write-ahead log: entry codec, object names, the appender that owns
//! the tip for one epoch, and the tailer that reads entries back.

pub mod appender;
pub mod codec;
pub mod discover;
pub mod holes;
pub mod tailer;

pub use appender::{RetryPolicy, WalAppender};
pub use codec::{
    decode_entry, encode_entry, encode_entry_payload, encode_fence_sentinel, WalEntry,
};
pub use tailer::WalTailer;

/// First position of every WAL; 0 means "nothing".
pub const FIRST_POSITION: u64 = 1;

//! memwal-alloc: the process-wide memory policy of the Node addon, kept out
//! of `memwal-core`, which neither installs nor needs it.
//!
//! - [`mapped`]: a global-allocator wrapper that maps large allocations on
//!   their own pages, so resident memory follows live memory under
//!   sustained ingest (measured by `examples/sustained_heap.rs`).
//! - [`copy_pool`]: recycled chunks that a put's copies out of JS memory
//!   are cut from.
//!
//! The core's Parquet page size is tuned to [`DIRECT_MAP_THRESHOLD`]
//! (`memwal_core::flush::MAX_PAGE_BUFFER_BYTES`); a test here keeps the two
//! in step.

pub mod copy_pool;
pub mod mapped;

pub use copy_pool::CopyPool;
pub use mapped::{LargeAllocsMapped, DIRECT_MAP_THRESHOLD};

#[cfg(test)]
mod tests {
    #[test]
    fn flushed_parquet_pages_stay_below_the_direct_mapping_threshold() {
        // A page buffer may double once as a Vec grows; it must still be
        // recycled by the wrapped allocator, not mapped on its own. Checked
        // when the tests compile.
        const { assert!(2 * memwal_core::flush::MAX_PAGE_BUFFER_BYTES <= super::DIRECT_MAP_THRESHOLD) };
    }
}

//! N-API bindings for memwal. Only conversions live here: every behaviour
//! is in `memwal-core`. The TypeScript layer in `ts/` is the public API;
//! the names exported from this crate are internal to the package.

// napi-derive registers exports only outside `cfg(test)`, so the unit-test
// build of this cdylib sees the exported functions as unused.
#![cfg_attr(test, allow(dead_code))]

/// Allocators keep freed memory mapped for reuse; under sustained ingest
/// that held several times the MemTable budget resident (bench/sustained.ts:
/// 5.3x with glibc, 4.1x with mimalloc alone). Large buffers therefore get
/// their own pages, returned on free; mimalloc serves the small ones.
#[global_allocator]
static ALLOCATOR: memwal_alloc::LargeAllocsMapped<mimalloc::MiMalloc> =
    memwal_alloc::LargeAllocsMapped::new(mimalloc::MiMalloc);

mod abort;
mod errors;
mod handoff;
mod ipc;
mod logging;
mod options;
mod reader;
mod tailer;
mod testing;
mod writer;

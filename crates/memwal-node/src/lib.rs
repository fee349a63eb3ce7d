//! N-API bindings for memwal. Only conversions live here: every behaviour
//! is in `memwal-core`. The TypeScript layer in `ts/` is the public API;
//! the names exported from this crate are internal to the package.

// napi-derive registers exports only outside `cfg(test)`, so the unit-test
// build of this cdylib sees the exported functions as unused.
#![cfg_attr(test, allow(dead_code))]

/// glibc's per-thread arenas kept several hundred MiB of freed batch and
/// Parquet buffers resident under sustained ingest (bench/sustained.ts:
/// 5.3x the budget); mimalloc returns them, keeping RSS near the budget.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

mod errors;
mod ipc;
mod logging;
mod options;
mod tailer;
mod testing;
mod writer;

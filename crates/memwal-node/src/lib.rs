//! N-API bindings for memwal. Only conversions live here: every behaviour
//! is in `memwal-core`. The TypeScript layer in `ts/` is the public API;
//! the names exported from this crate are internal to the package.

mod errors;
mod ipc;
mod logging;
mod options;
mod tailer;
mod testing;
mod writer;

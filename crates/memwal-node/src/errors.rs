//! Core errors and panics as JS errors the TS layer can type.
//!
//! The reason string starts with `[memwal:<CODE>:<shard>] `; `ts/errors.ts`
//! parses it into a `MemWalError` with `code` and `shardId`.

use std::any::Any;
use std::future::Future;
use std::panic::AssertUnwindSafe;

use futures::FutureExt;
use memwal_core::{Error, ErrorCode};

pub fn to_js(err: Error) -> napi::Error {
    napi::Error::from_reason(format!(
        "[memwal:{}:{}] {}",
        err.code(),
        err.shard_id().unwrap_or(""),
        err.message()
    ))
}

pub fn js_result<T>(result: memwal_core::Result<T>) -> napi::Result<T> {
    result.map_err(to_js)
}

fn panic_message(payload: Box<dyn Any + Send>) -> String {
    payload
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "unknown panic payload".to_string())
}

/// Run a future so that a panic inside it rejects the promise with an
/// INTERNAL error instead of taking the process down.
pub async fn guarded<T, F>(future: F) -> napi::Result<T>
where
    F: Future<Output = memwal_core::Result<T>>,
{
    match AssertUnwindSafe(future).catch_unwind().await {
        Ok(result) => js_result(result),
        Err(payload) => Err(to_js(Error::new(
            ErrorCode::Internal,
            format!("Rust panic: {}", panic_message(payload)),
        ))),
    }
}

/// JS numbers hold integers exactly only up to 2^53; refuse to round.
pub fn js_number(value: u64) -> napi::Result<f64> {
    if value > (1u64 << 53) {
        return Err(to_js(Error::internal(format!(
            "Value {value} does not fit a JavaScript number without losing precision"
        ))));
    }
    Ok(value as f64)
}

/// `value` as an integer if it is a non-negative safe integer.
pub fn safe_integer(value: f64) -> Option<u64> {
    ((0.0..=9_007_199_254_740_991.0).contains(&value) && value.fract() == 0.0)
        .then_some(value as u64)
}

/// A JS number argument that must be a non-negative safe integer.
pub fn js_u64(name: &str, value: f64) -> napi::Result<u64> {
    safe_integer(value).ok_or_else(|| {
        to_js(Error::invalid_input(format!(
            "{name} must be a non-negative integer, got {value}"
        )))
    })
}

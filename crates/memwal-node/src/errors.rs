//! Core errors and panics as JS errors the TS layer can type.
//!
//! A core error reaches JS as an `Error` whose `message` is the core
//! message and whose `code` and `shardId` properties are set here (README,
//! "Errors"); `ts/errors.ts` reads those properties, never the text. The
//! object needs an `Env`, so it is built on the JS thread: by a synchronous
//! call before it throws ([`js_result`]), by a promise when it settles
//! ([`spawn`]). A panic becomes an INTERNAL error, never a crash.

use std::any::Any;
use std::future::Future;
use std::panic::AssertUnwindSafe;

use futures::FutureExt;
use memwal_core::{Error, ErrorCode};
use napi::bindgen_prelude::{JsObjectValue, Object, PromiseRaw, ToNapiValue};
use napi::{Env, JsValue, Status};

/// A failure on its way to JS: a core error, or an error napi-rs or a
/// conversion here made (those reach JS as INTERNAL).
pub enum Failure {
    Core(Error),
    Napi(napi::Error),
}

impl From<Error> for Failure {
    fn from(err: Error) -> Self {
        Failure::Core(err)
    }
}

impl From<napi::Error> for Failure {
    fn from(err: napi::Error) -> Self {
        Failure::Napi(err)
    }
}

impl Failure {
    fn into_js(self, env: &Env) -> napi::Error {
        match self {
            Failure::Core(err) => js_error(env, err),
            Failure::Napi(err) => err,
        }
    }
}

/// The JS `Error` object for `err`: its message, `code` and `shardId`.
pub fn js_error_object<'env>(env: &'env Env, err: &Error) -> napi::Result<Object<'env>> {
    let reason = napi::Error::new(Status::GenericFailure, err.message().to_string());
    let mut object = env.create_error(reason)?;
    object.set_named_property("code", err.code().as_str())?;
    if let Some(shard) = err.shard_id() {
        object.set_named_property("shardId", shard)?;
    }
    Ok(object)
}

/// `err` as a napi error that throws (or rejects with) the object of
/// [`js_error_object`]. Only when the environment cannot build one (it is
/// tearing down, and nobody would see it) does a plain error stand in.
pub fn js_error(env: &Env, err: Error) -> napi::Error {
    match js_error_object(env, &err) {
        Ok(object) => napi::Error::from(object.to_unknown()),
        Err(_) => napi::Error::new(Status::GenericFailure, err.message().to_string()),
    }
}

pub fn js_result<T>(env: &Env, result: memwal_core::Result<T>) -> napi::Result<T> {
    result.map_err(|err| js_error(env, err))
}

fn panic_message(payload: Box<dyn Any + Send>) -> String {
    payload
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "unknown panic payload".to_string())
}

fn panicked(payload: Box<dyn Any + Send>) -> Error {
    Error::new(
        ErrorCode::Internal,
        format!("Rust panic: {}", panic_message(payload)),
    )
}

/// Run `future` on the runtime; the promise resolves with its value or
/// rejects with the JS error of its failure, built on the JS thread when
/// the promise settles. A panic inside rejects with an INTERNAL error
/// instead of taking the process down.
pub fn spawn<'env, T, F>(env: &'env Env, future: F) -> napi::Result<PromiseRaw<'env, T>>
where
    T: 'static + Send + ToNapiValue,
    F: 'static + Send + Future<Output = Result<T, Failure>>,
{
    let caught = async move { Ok::<_, napi::Error>(AssertUnwindSafe(future).catch_unwind().await) };
    env.spawn_future_with_callback(caught, |env, outcome| match outcome {
        Ok(Ok(value)) => Ok(value),
        Ok(Err(failure)) => Err(failure.into_js(env)),
        Err(payload) => Err(js_error(env, panicked(payload))),
    })
}

/// JS numbers hold integers exactly only up to 2^53; refuse to round.
/// (A plain napi error: it reaches JS as INTERNAL.)
pub fn js_number(value: u64) -> napi::Result<f64> {
    if value > (1u64 << 53) {
        return Err(napi::Error::new(
            Status::GenericFailure,
            format!("Value {value} does not fit a JavaScript number without losing precision"),
        ));
    }
    Ok(value as f64)
}

/// `value` as an integer if it is a non-negative safe integer.
pub fn safe_integer(value: f64) -> Option<u64> {
    ((0.0..=9_007_199_254_740_991.0).contains(&value) && value.fract() == 0.0)
        .then_some(value as u64)
}

/// A JS number argument that must be a non-negative safe integer.
pub fn js_u64(name: &str, value: f64) -> memwal_core::Result<u64> {
    safe_integer(value).ok_or_else(|| {
        Error::invalid_input(format!(
            "{name} must be a non-negative integer, got {value}"
        ))
    })
}

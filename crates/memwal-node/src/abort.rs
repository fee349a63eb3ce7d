//! Aborting a native open from JS (the `signal` option of `openShardWriter`,
//! `openShardReader` and `openWalTailer`).
//!
//! JS creates a token, passes its id to the open and aborts the id when its
//! `AbortSignal` fires. The open future is then dropped at its next await
//! point: requests in flight are cancelled and nothing is started. The
//! token is looked up before the future is spawned, so releasing the id
//! right after an abort cannot make the open unabortable.

use std::collections::HashMap;
use std::future::Future;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

use napi_derive::napi;
use tokio::sync::Notify;

#[derive(Default)]
pub struct AbortToken {
    aborted: AtomicBool,
    notify: Notify,
}

impl AbortToken {
    async fn aborted(&self) {
        let notified = self.notify.notified();
        tokio::pin!(notified);
        notified.as_mut().enable();
        if self.aborted.load(Ordering::SeqCst) {
            return;
        }
        notified.await;
    }
}

fn tokens() -> &'static Mutex<HashMap<u32, Arc<AbortToken>>> {
    static TOKENS: OnceLock<Mutex<HashMap<u32, Arc<AbortToken>>>> = OnceLock::new();
    TOKENS.get_or_init(Default::default)
}

/// A new abort token; release it with `dropAbortToken`.
#[napi]
pub fn create_abort_token() -> u32 {
    static NEXT: AtomicU32 = AtomicU32::new(1);
    let id = NEXT.fetch_add(1, Ordering::Relaxed);
    tokens()
        .lock()
        .expect("abort tokens poisoned")
        .insert(id, Arc::default());
    id
}

/// Abort every open that was given token `id`.
#[napi]
pub fn abort_token(id: u32) {
    if let Some(token) = tokens().lock().expect("abort tokens poisoned").get(&id) {
        token.aborted.store(true, Ordering::SeqCst);
        token.notify.notify_waiters();
    }
}

/// Forget token `id` (opens already given it keep it).
#[napi]
pub fn drop_abort_token(id: u32) {
    tokens().lock().expect("abort tokens poisoned").remove(&id);
}

/// The token with `id`, taken before the open is spawned.
pub fn take(id: Option<u32>) -> Option<Arc<AbortToken>> {
    let id = id?;
    tokens()
        .lock()
        .expect("abort tokens poisoned")
        .get(&id)
        .cloned()
}

/// Run `open` unless `token` aborts first; an aborted open is dropped
/// where it stands and fails with CLOSED (the TS layer reports its own
/// AbortError). A result that is ready wins over a simultaneous abort: the
/// TS layer closes what it no longer wants.
pub async fn abortable<T>(
    token: Option<Arc<AbortToken>>,
    what: &str,
    open: impl Future<Output = memwal_core::Result<T>>,
) -> memwal_core::Result<T> {
    let Some(token) = token else {
        return open.await;
    };
    tokio::select! {
        biased;
        result = open => result,
        () = token.aborted() => Err(memwal_core::Error::new(
            memwal_core::ErrorCode::Closed,
            format!("{what} was aborted"),
        )),
    }
}

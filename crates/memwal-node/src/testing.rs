//! Hooks for the test suite only: prove that a Rust panic becomes a JS
//! error on both the synchronous and the asynchronous path.

use napi::bindgen_prelude::PromiseRaw;
use napi::Env;
use napi_derive::napi;

use crate::errors::spawn;

#[napi(js_name = "__triggerPanicForTests", catch_unwind)]
pub fn trigger_panic_for_tests<'env>(
    env: &'env Env,
    asynchronous: bool,
) -> napi::Result<PromiseRaw<'env, ()>> {
    if !asynchronous {
        panic!("deliberate synchronous panic for tests");
    }
    spawn(env, async {
        tokio_yield().await;
        panic!("deliberate asynchronous panic for tests");
        #[allow(unreachable_code)]
        Ok(())
    })
}

async fn tokio_yield() {
    futures::future::ready(()).await;
}

//! `NativeWalTailer`: read a shard's WAL entries from JS.

use memwal_core::{parse_shard_id, WalTailer};
use napi::bindgen_prelude::{Buffer, PromiseRaw};
use napi::Env;
use napi_derive::napi;

use crate::errors::{js_number, js_result, js_u64, spawn};
use crate::ipc::encode_stream;
use crate::options::{open_existing_root, NativeStorageOptions};

#[napi(object)]
pub struct NativeWalEntry {
    pub position: f64,
    pub epoch: f64,
    pub fence_sentinel: bool,
    pub num_rows: f64,
    pub num_batches: u32,
    /// The entry's batches as one IPC stream (schema without WAL metadata).
    pub ipc: Buffer,
}

#[napi]
pub struct NativeWalTailer {
    tailer: WalTailer,
}

/// Resolves once the shard is known to exist: NOT_FOUND for a shard with
/// no manifest or a local root that does not exist (nothing is created).
#[napi(catch_unwind, ts_return_type = "Promise<NativeWalTailer>")]
pub fn open_wal_tailer<'env>(
    env: &'env Env,
    uri: String,
    shard_id: String,
    storage: Option<NativeStorageOptions>,
    abort_token: Option<u32>,
) -> napi::Result<PromiseRaw<'env, NativeWalTailer>> {
    let abort = crate::abort::take(abort_token);
    let shard = parse_shard_id(&shard_id)
        .map_err(|e| memwal_core::Error::invalid_input(e.message().to_string()));
    let shard = js_result(env, shard)?;
    let root = js_result(env, open_existing_root(&uri, storage))?;
    spawn(env, async move {
        let open = WalTailer::open(root, shard);
        let tailer = crate::abort::abortable(abort, "openWalTailer", open).await?;
        Ok(NativeWalTailer { tailer })
    })
}

#[napi]
impl NativeWalTailer {
    #[napi(getter)]
    pub fn shard_id(&self) -> String {
        self.tailer.shard_id().to_string()
    }

    #[napi(catch_unwind)]
    pub fn first_position<'env>(&self, env: &'env Env) -> napi::Result<PromiseRaw<'env, f64>> {
        let tailer = self.tailer.clone();
        spawn(env, async move {
            Ok(js_number(tailer.first_position().await?)?)
        })
    }

    #[napi(catch_unwind)]
    pub fn next_position<'env>(&self, env: &'env Env) -> napi::Result<PromiseRaw<'env, f64>> {
        let tailer = self.tailer.clone();
        spawn(
            env,
            async move { Ok(js_number(tailer.next_position().await?)?) },
        )
    }

    #[napi(catch_unwind, ts_return_type = "Promise<NativeWalEntry | null>")]
    pub fn read_entry<'env>(
        &self,
        env: &'env Env,
        position: f64,
    ) -> napi::Result<PromiseRaw<'env, Option<NativeWalEntry>>> {
        let position = js_result(env, js_u64("position", position))?;
        let tailer = self.tailer.clone();
        spawn(env, async move {
            let Some(entry) = tailer.read_entry(position).await? else {
                return Ok(None);
            };
            let ipc = encode_stream(&entry.schema, &entry.batches)?;
            Ok(Some(NativeWalEntry {
                position: js_number(entry.position)?,
                epoch: js_number(entry.epoch)?,
                fence_sentinel: entry.fence_sentinel,
                num_rows: js_number(entry.num_rows() as u64)?,
                num_batches: entry.batches.len() as u32,
                ipc: Buffer::from(ipc),
            }))
        })
    }
}

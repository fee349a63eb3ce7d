//! `NativeShardReader`: a snapshot of a whole shard, read from JS.

use std::sync::Arc;

use memwal_core::parse_shard_id;
use memwal_core::read::shard_reader::{ShardReader, ShardScan};
use napi::bindgen_prelude::{Buffer, PromiseRaw};
use napi::Env;
use napi_derive::napi;

use crate::errors::{js_number, js_result, spawn};
use crate::ipc::encode_stream;
use crate::options::{open_existing_root, NativeStorageOptions};
use crate::writer::NativeScanRequest;

#[napi(object)]
pub struct NativeGeneration {
    pub generation: f64,
    pub path: String,
    pub rows: f64,
}

#[napi(object)]
pub struct NativeScanMetrics {
    pub row_groups_total: f64,
    pub row_groups_read: f64,
}

#[napi]
pub struct NativeShardReader {
    reader: ShardReader,
}

#[napi(catch_unwind, ts_return_type = "Promise<NativeShardReader>")]
pub fn open_shard_reader<'env>(
    env: &'env Env,
    uri: String,
    shard_id: String,
    storage: Option<NativeStorageOptions>,
    abort_token: Option<u32>,
) -> napi::Result<PromiseRaw<'env, NativeShardReader>> {
    let abort = crate::abort::take(abort_token);
    let shard = parse_shard_id(&shard_id)
        .map_err(|e| memwal_core::Error::invalid_input(e.message().to_string()));
    let shard = js_result(env, shard)?;
    let root = js_result(env, open_existing_root(&uri, storage))?;
    spawn(env, async move {
        let open = ShardReader::open(root, shard);
        let reader = crate::abort::abortable(abort, "openShardReader", open).await?;
        Ok(NativeShardReader { reader })
    })
}

#[napi]
impl NativeShardReader {
    #[napi(getter)]
    pub fn shard_id(&self) -> String {
        self.reader.shard_id().to_string()
    }

    #[napi(getter)]
    pub fn manifest_version(&self) -> napi::Result<f64> {
        js_number(self.reader.manifest_version())
    }

    #[napi(getter)]
    pub fn primary_key(&self) -> Vec<String> {
        self.reader.primary_key().to_vec()
    }

    /// The rows' schema as an IPC stream without batches.
    #[napi(catch_unwind)]
    pub fn schema(&self, env: &Env) -> napi::Result<Buffer> {
        Ok(Buffer::from(js_result(
            env,
            encode_stream(self.reader.schema(), &[]),
        )?))
    }

    #[napi(catch_unwind)]
    pub fn generations(&self) -> napi::Result<Vec<NativeGeneration>> {
        self.reader
            .generations()
            .into_iter()
            .map(|g| {
                Ok(NativeGeneration {
                    generation: js_number(g.generation)?,
                    path: g.path,
                    rows: js_number(g.rows)?,
                })
            })
            .collect()
    }

    /// `[first, last]` WAL positions of the unflushed tail, or null.
    #[napi(catch_unwind)]
    pub fn tail_positions(&self) -> napi::Result<Option<Vec<f64>>> {
        self.reader
            .tail_positions()
            .map(|(a, b)| Ok(vec![js_number(a)?, js_number(b)?]))
            .transpose()
    }

    /// Every matching row as one IPC stream.
    #[napi(catch_unwind, ts_return_type = "Promise<Buffer>")]
    pub fn scan<'env>(
        &self,
        env: &'env Env,
        request: NativeScanRequest,
    ) -> napi::Result<PromiseRaw<'env, Buffer>> {
        let request = js_result(env, request.into_core())?;
        let reader = self.reader.clone();
        spawn(env, async move {
            let (schema, batches) = reader.scan(&request).await?;
            Ok(Buffer::from(encode_stream(&schema, &batches)?))
        })
    }

    /// The same rows, pulled one batch at a time.
    #[napi(catch_unwind)]
    pub fn scan_stream(
        &self,
        env: &Env,
        request: NativeScanRequest,
    ) -> napi::Result<NativeShardScan> {
        let request = js_result(env, request.into_core())?;
        let scan = js_result(env, self.reader.scan_stream(&request))?;
        Ok(NativeShardScan {
            scan: Arc::new(tokio::sync::Mutex::new(scan)),
        })
    }
}

#[napi]
pub struct NativeShardScan {
    scan: Arc<tokio::sync::Mutex<ShardScan>>,
}

#[napi]
impl NativeShardScan {
    /// The output schema as an IPC stream without batches.
    #[napi(catch_unwind, ts_return_type = "Promise<Buffer>")]
    pub fn schema<'env>(&self, env: &'env Env) -> napi::Result<PromiseRaw<'env, Buffer>> {
        let scan = self.scan.clone();
        spawn(env, async move {
            let scan = scan.lock().await;
            Ok(Buffer::from(encode_stream(scan.schema(), &[])?))
        })
    }

    /// The next batch as an IPC stream, or null at the end.
    #[napi(catch_unwind, ts_return_type = "Promise<Buffer | null>")]
    pub fn next<'env>(&self, env: &'env Env) -> napi::Result<PromiseRaw<'env, Option<Buffer>>> {
        let scan = self.scan.clone();
        spawn(env, async move {
            let mut scan = scan.lock().await;
            match scan.next_batch().await? {
                Some(batch) => Ok(Some(Buffer::from(encode_stream(scan.schema(), &[batch])?))),
                None => Ok(None),
            }
        })
    }

    #[napi(catch_unwind, ts_return_type = "Promise<NativeScanMetrics>")]
    pub fn metrics<'env>(
        &self,
        env: &'env Env,
    ) -> napi::Result<PromiseRaw<'env, NativeScanMetrics>> {
        let scan = self.scan.clone();
        spawn(env, async move {
            let metrics = scan.lock().await.metrics().clone();
            Ok(NativeScanMetrics {
                row_groups_total: js_number(metrics.row_groups_total)?,
                row_groups_read: js_number(metrics.row_groups_read)?,
            })
        })
    }
}

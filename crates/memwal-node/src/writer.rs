//! `NativeShardWriter`: the JS handle of a core `ShardWriter`.

use std::sync::Arc;

use memwal_core::read::scan::ScanRequest;
use memwal_core::{parse_shard_id, DurableProgress, OpenOptions, PutNow, ShardWriter};
use napi::bindgen_prelude::{
    Buffer, Either, Float64ArraySlice, FnArgs, Function, PromiseRaw, TypedArray,
};
use napi::threadsafe_function::{ThreadsafeFunction, ThreadsafeFunctionCallMode};
use napi::{Env, Status};
use napi_derive::napi;

use crate::errors::{js_error, js_number, js_result, js_u64, spawn, Failure};
use crate::handoff::{import_batches, split_numbers, SchemaCache};
use crate::ipc::{decode_stream, encode_stream, schema_only};
use crate::options::{open_root, NativeStorageOptions, NativeWriterOptions};

/// Where a delete's tombstone batches landed: positions `[start, end)`.
#[napi(object)]
pub struct NativePutResult {
    pub start: f64,
    pub end: f64,
}

/// `(durable, failure, stopped)` as the durability listener receives it;
/// `failure` is a JS error with `code` and `shardId` (see `errors.rs`).
type DurableArgs = FnArgs<(f64, Option<napi::Error>, bool)>;

/// The durability listener, callable from the WAL task. Created weak, so
/// an idle writer does not keep Node running; `holdEventLoop` refers it
/// while puts wait on it.
type DurableCallback = ThreadsafeFunction<DurableProgress, (), DurableArgs, Status, false, true>;

#[napi(object)]
pub struct NativeWriterStats {
    pub put_count: f64,
    pub put_rows: f64,
    pub put_time_ms: f64,
    pub wal_flush_count: f64,
    pub wal_flush_bytes: f64,
    pub wal_flush_time_ms: f64,
    pub wal_io_time_ms: f64,
    pub index_update_time_ms: f64,
    pub index_update_rows: f64,
    pub memtable_flush_count: f64,
    pub memtable_flush_rows: f64,
    pub memtable_flush_time_ms: f64,
    pub backpressure_count: f64,
    pub backpressure_wait_ms: f64,
    /// Failed MemTable flush attempts (each is retried).
    pub flush_failures: f64,
    /// The most recent failed flush attempt, or null.
    pub last_flush_error: Option<NativeErrorInfo>,
}

/// An error as data, for `stats()` and `health()`.
#[napi(object)]
pub struct NativeErrorInfo {
    pub code: String,
    pub message: String,
}

fn error_info(err: Option<memwal_core::Error>) -> Option<NativeErrorInfo> {
    err.map(|e| NativeErrorInfo {
        code: e.code().to_string(),
        message: e.message().to_string(),
    })
}

#[napi(object)]
pub struct NativeWriterHealth {
    #[napi(ts_type = "'ok' | 'degraded' | 'failed'")]
    pub state: String,
    pub flush_failures: f64,
    pub consecutive_flush_failures: f64,
    pub last_flush_error: Option<NativeErrorInfo>,
    pub failure: Option<NativeErrorInfo>,
}

#[napi(object)]
pub struct NativeWalStats {
    pub next_wal_entry_position: f64,
    pub last_wal_entry_position: f64,
    pub entries_written: f64,
    pub pending_batches: f64,
    pub pending_bytes: f64,
    pub next_batch_position: f64,
    pub durable_batch_position: f64,
}

/// `scan()` options; `limit`/`offset` are row counts.
#[napi(object)]
pub struct NativeScanRequest {
    pub columns: Option<Vec<String>>,
    pub filter: Option<String>,
    pub limit: Option<f64>,
    pub offset: Option<f64>,
}

impl NativeScanRequest {
    pub fn into_core(self) -> memwal_core::Result<ScanRequest> {
        Ok(ScanRequest {
            columns: self.columns,
            filter: self.filter,
            limit: self
                .limit
                .map(|l| js_u64("limit", l).map(|v| v as usize))
                .transpose()?,
            offset: self
                .offset
                .map(|o| js_u64("offset", o).map(|v| v as usize))
                .transpose()?
                .unwrap_or(0),
        })
    }
}

#[napi(object)]
pub struct NativeMemTableStats {
    pub row_count: f64,
    pub batch_count: f64,
    pub estimated_size: f64,
    pub generation: f64,
    pub frozen_count: f64,
    pub frozen_bytes: f64,
    pub frozen_rows: f64,
    /// Batch positions `[pendingWalStart, pendingWalEnd)` are not yet in the WAL.
    pub pending_wal_start: f64,
    pub pending_wal_end: f64,
}

#[napi(object)]
pub struct NativeFlushedGeneration {
    pub generation: f64,
    pub path: String,
    pub in_memory_bytes: Option<f64>,
    pub physical_rows: Option<f64>,
}

#[napi(object)]
pub struct NativeManifest {
    pub version: f64,
    pub writer_epoch: f64,
    pub replay_after_wal_entry_position: f64,
    pub wal_entry_position_last_seen: f64,
    pub current_generation: f64,
    pub flushed_generations: Vec<NativeFlushedGeneration>,
    pub shard_spec_id: u32,
    pub shard_id: String,
    pub sealed: bool,
}

fn manifest_to_js(m: memwal_core::manifest::ShardManifest) -> napi::Result<NativeManifest> {
    let flushed_generations = m
        .flushed_generations
        .iter()
        .map(|g| {
            Ok(NativeFlushedGeneration {
                generation: js_number(g.generation)?,
                path: g.path.clone(),
                in_memory_bytes: g.in_memory_bytes.map(js_number).transpose()?,
                physical_rows: g.physical_rows.map(js_number).transpose()?,
            })
        })
        .collect::<napi::Result<Vec<_>>>()?;
    Ok(NativeManifest {
        version: js_number(m.version)?,
        writer_epoch: js_number(m.writer_epoch)?,
        replay_after_wal_entry_position: js_number(m.replay_after_wal_entry_position)?,
        wal_entry_position_last_seen: js_number(m.wal_entry_position_last_seen)?,
        current_generation: js_number(m.current_generation)?,
        flushed_generations,
        shard_spec_id: m.shard_spec_id,
        shard_id: m.shard_uuid().map(|u| u.to_string()).unwrap_or_default(),
        sealed: m.is_sealed(),
    })
}

/// A put's end batch position, or the promise of it when the put had to
/// wait for backpressure before it was admitted.
///
/// Either way the put is only admitted (queued for the WAL): a durable put
/// is acknowledged later through the durability listener (`listenDurable`),
/// which is the one path every durable put and delete takes. A plain number
/// rather than an object: building a result object cost a measurable share
/// of a small put, and the start is `end - batches` (a put's batches are
/// numbered consecutively).
type MaybeNow<'env> = Either<f64, PromiseRaw<'env, f64>>;

#[napi]
pub struct NativeShardWriter {
    writer: ShardWriter,
    schemas: SchemaCache,
    durable_callback: Option<Arc<DurableCallback>>,
}

/// Open a writer. `schema_ipc` is an IPC stream holding just the schema.
#[napi(catch_unwind)]
pub fn open_shard_writer<'env>(
    env: &'env Env,
    uri: String,
    schema_ipc: &[u8],
    shard_id: Option<String>,
    options: NativeWriterOptions,
    storage: Option<NativeStorageOptions>,
    abort_token: Option<u32>,
) -> napi::Result<PromiseRaw<'env, NativeShardWriter>> {
    let abort = crate::abort::take(abort_token);
    let schema = js_result(env, schema_only(schema_ipc))?;
    let config = js_result(env, options.into_config())?;
    let shard_id = js_result(env, shard_id.map(|s| parse_shard_id(&s)).transpose())?;
    spawn(env, async move {
        let root = open_root(&uri, storage)?;
        let check = ShardWriter::check_open(
            root,
            OpenOptions {
                shard_id,
                schema,
                config,
            },
        );
        // Only the checks are abortable: once the claim is written the
        // predecessor is fenced, so the open then runs to a writer (the TS
        // layer closes one it no longer wants) and never stops half-way.
        let checked = crate::abort::abortable(abort, "openShardWriter", check).await?;
        let writer = checked.claim().await?;
        Ok(NativeShardWriter {
            writer,
            schemas: SchemaCache::default(),
            durable_callback: None,
        })
    })
}

#[napi]
impl NativeShardWriter {
    #[napi(getter)]
    pub fn shard_id(&self) -> String {
        self.writer.shard_id().to_string()
    }

    /// Primary-key columns declared through field metadata, in key order.
    #[napi(getter)]
    pub fn primary_key(&self) -> Vec<String> {
        self.writer.primary_key()
    }

    #[napi(getter)]
    pub fn epoch(&self) -> napi::Result<f64> {
        js_number(self.writer.epoch())
    }

    /// Put the batches of one IPC stream atomically; returns the end batch
    /// position (see [`MaybeNow`]). The bytes are copied before this
    /// returns, so the caller may reuse its buffer at once. Under the
    /// backpressure budget (see `ShardWriter::try_put_now`) the put is
    /// admitted before this returns and the position comes back as is.
    #[napi(catch_unwind, ts_return_type = "number | Promise<number>")]
    pub fn put<'env>(
        &self,
        env: &'env Env,
        batches_ipc: &[u8],
        defer_append: bool,
    ) -> napi::Result<MaybeNow<'env>> {
        let (_, batches) = js_result(env, decode_stream(batches_ipc))?;
        self.put_batches(env, batches, defer_append)
    }

    /// Put batches handed over as their Arrow buffers (see `handoff.rs`):
    /// `schema_ipc` is the batches' schema; `numbers` holds the row counts
    /// and node numbers (see `handoff::split_numbers`).
    /// Every buffer is copied once before this returns. Returns like `put`.
    #[napi(catch_unwind, ts_return_type = "number | Promise<number>")]
    pub fn put_buffers<'env>(
        &self,
        env: &'env Env,
        schema_ipc: &[u8],
        numbers: Float64ArraySlice,
        buffers: Vec<Option<TypedArray<'env>>>,
        defer_append: bool,
    ) -> napi::Result<MaybeNow<'env>> {
        let batches = self.import(env, schema_ipc, &numbers, &buffers)?;
        self.put_batches(env, batches, defer_append)
    }

    /// `defer_append`: queue a durable put without waking the WAL task;
    /// `appendNow` does that for every put so deferred.
    fn put_batches<'env>(
        &self,
        env: &'env Env,
        batches: Vec<arrow_array::RecordBatch>,
        defer_append: bool,
    ) -> napi::Result<MaybeNow<'env>> {
        match js_result(env, self.writer.try_put_now(batches, defer_append))? {
            PutNow::Done(admitted) | PutNow::Queued(admitted) => {
                Ok(Either::A(js_number(admitted.batch_positions.end)?))
            }
            PutNow::Wait(batches) => {
                let writer = self.writer.clone();
                let admitted = spawn(env, async move {
                    let admitted = writer.put_admitted(batches).await?;
                    Ok(js_number(admitted.batch_positions.end)?)
                })?;
                Ok(Either::B(admitted))
            }
        }
    }

    /// Have `callback(durable, failure, stopped)` called on the JS thread
    /// whenever the WAL task persists an entry, fails for good, or stops:
    /// every durable put and delete is acknowledged through it (the TS
    /// layer's `DurableWaits`). Replaces an earlier callback.
    #[napi(
        catch_unwind,
        ts_args_type = "callback: (durable: number, failure: Error | null, stopped: boolean) => void"
    )]
    pub fn listen_durable(&mut self, callback: Function<DurableArgs, ()>) -> napi::Result<()> {
        let callback: DurableCallback = callback
            .build_threadsafe_function::<DurableProgress>()
            .callee_handled::<false>()
            .weak::<true>()
            .build_callback(|ctx| {
                let p = ctx.value;
                // Positions past 2^53 cannot be told apart in JS; say so
                // rather than acknowledge the wrong puts.
                let (durable, failure) = match js_number(p.durable) {
                    Ok(durable) => (durable, p.failure.map(|e| js_error(&ctx.env, e))),
                    Err(err) => (0.0, Some(err)),
                };
                Ok(FnArgs::from((durable, failure, p.stopped)))
            })?;
        let callback = Arc::new(callback);
        let calls = callback.clone();
        self.writer
            .on_durable(Some(Arc::new(move |progress: &DurableProgress| {
                // Fails only while Node tears the environment down, when
                // nobody is left to tell.
                let _ = calls.call(progress.clone(), ThreadsafeFunctionCallMode::NonBlocking);
            })));
        self.durable_callback = Some(callback);
        Ok(())
    }

    /// Append the durable puts queued with `defer_append`.
    #[napi(catch_unwind)]
    pub fn append_now(&self) {
        self.writer.append_now();
    }

    /// Keep Node's event loop alive (`true`) while puts wait for the
    /// durability listener, or let it go (`false`).
    #[napi(catch_unwind)]
    pub fn hold_event_loop(&self, env: Env, hold: bool) -> napi::Result<()> {
        let Some(callback) = self.durable_callback.as_ref().filter(|c| !c.aborted()) else {
            return Ok(());
        };
        // SAFETY: called on the JS thread of the environment the threadsafe
        // function belongs to, which has not released it (not aborted).
        let status = unsafe {
            if hold {
                napi::sys::napi_ref_threadsafe_function(env.raw(), callback.raw())
            } else {
                napi::sys::napi_unref_threadsafe_function(env.raw(), callback.raw())
            }
        };
        napi::check_status!(status, "Could not change the durability listener's hold")
    }

    /// `delete` with the key columns handed over like `put_buffers`;
    /// resolves once admitted, acknowledged like a put.
    #[napi(catch_unwind, ts_return_type = "Promise<NativePutResult>")]
    pub fn delete_buffers<'env>(
        &self,
        env: &'env Env,
        schema_ipc: &[u8],
        numbers: Float64ArraySlice,
        buffers: Vec<Option<TypedArray<'env>>>,
    ) -> napi::Result<PromiseRaw<'env, NativePutResult>> {
        let keys = self.import(env, schema_ipc, &numbers, &buffers)?;
        let writer = self.writer.clone();
        spawn(env, async move {
            put_result(writer.delete_admitted(keys).await?)
        })
    }

    fn import(
        &self,
        env: &Env,
        schema_ipc: &[u8],
        numbers: &[f64],
        buffers: &[Option<TypedArray>],
    ) -> napi::Result<Vec<arrow_array::RecordBatch>> {
        let schema = js_result(env, self.schemas.get(schema_ipc))?;
        let (rows, nodes) = js_result(env, split_numbers(numbers))?;
        let views: Vec<Option<&[u8]>> = buffers
            .iter()
            .map(|b| b.as_ref().map(|b| &*b.arraybuffer))
            .collect();
        js_result(env, import_batches(&schema, rows, nodes, &views))
    }

    /// Delete rows by primary key: `keys_ipc` holds the key columns.
    /// Resolves once admitted, acknowledged like a put.
    #[napi(catch_unwind, ts_return_type = "Promise<NativePutResult>")]
    pub fn delete<'env>(
        &self,
        env: &'env Env,
        keys_ipc: &[u8],
    ) -> napi::Result<PromiseRaw<'env, NativePutResult>> {
        let (_, keys) = js_result(env, decode_stream(keys_ipc))?;
        let writer = self.writer.clone();
        spawn(env, async move {
            put_result(writer.delete_admitted(keys).await?)
        })
    }

    #[napi(catch_unwind)]
    pub fn stats(&self) -> napi::Result<NativeWriterStats> {
        let s = self.writer.stats();
        Ok(NativeWriterStats {
            put_count: js_number(s.put_count)?,
            put_rows: js_number(s.put_rows)?,
            put_time_ms: s.put_time_ms,
            wal_flush_count: js_number(s.wal_flush_count)?,
            wal_flush_bytes: js_number(s.wal_flush_bytes)?,
            wal_flush_time_ms: s.wal_flush_time_ms,
            wal_io_time_ms: s.wal_io_time_ms,
            index_update_time_ms: s.index_update_time_ms,
            index_update_rows: js_number(s.index_update_rows)?,
            memtable_flush_count: js_number(s.memtable_flush_count)?,
            memtable_flush_rows: js_number(s.memtable_flush_rows)?,
            memtable_flush_time_ms: s.memtable_flush_time_ms,
            backpressure_count: js_number(s.backpressure_count)?,
            backpressure_wait_ms: s.backpressure_wait_ms,
            flush_failures: js_number(s.flush_failures)?,
            last_flush_error: error_info(s.last_flush_error),
        })
    }

    #[napi(catch_unwind)]
    pub fn health(&self) -> napi::Result<NativeWriterHealth> {
        let h = self.writer.health();
        Ok(NativeWriterHealth {
            state: h.state.as_str().to_string(),
            flush_failures: js_number(h.flush_failures)?,
            consecutive_flush_failures: js_number(h.consecutive_flush_failures)?,
            last_flush_error: error_info(h.last_flush_error),
            failure: error_info(h.failure),
        })
    }

    #[napi(catch_unwind)]
    pub fn wal_stats(&self) -> napi::Result<NativeWalStats> {
        let s = self.writer.wal_stats();
        Ok(NativeWalStats {
            next_wal_entry_position: js_number(s.next_wal_entry_position)?,
            last_wal_entry_position: js_number(s.last_wal_entry_position)?,
            entries_written: js_number(s.entries_written)?,
            pending_batches: js_number(s.pending_batches)?,
            pending_bytes: js_number(s.pending_bytes)?,
            next_batch_position: js_number(s.next_batch_position)?,
            durable_batch_position: js_number(s.durable_batch_position)?,
        })
    }

    #[napi(catch_unwind)]
    pub fn manifest<'env>(&self, env: &'env Env) -> napi::Result<PromiseRaw<'env, NativeManifest>> {
        let writer = self.writer.clone();
        spawn(
            env,
            async move { Ok(manifest_to_js(writer.manifest().await?)?) },
        )
    }

    #[napi(catch_unwind)]
    pub fn check_fenced<'env>(&self, env: &'env Env) -> napi::Result<PromiseRaw<'env, ()>> {
        let writer = self.writer.clone();
        spawn(env, async move { Ok(writer.check_fenced().await?) })
    }

    #[napi(catch_unwind)]
    pub fn memtable_stats(&self, env: &Env) -> napi::Result<NativeMemTableStats> {
        let s = js_result(env, self.writer.memtable_stats())?;
        let durable = self.writer.wal_stats();
        Ok(NativeMemTableStats {
            row_count: js_number(s.row_count)?,
            batch_count: js_number(s.batch_count)?,
            estimated_size: js_number(s.estimated_size)?,
            generation: js_number(s.generation)?,
            frozen_count: js_number(s.frozen_count)?,
            frozen_bytes: js_number(s.frozen_bytes)?,
            frozen_rows: js_number(s.frozen_rows)?,
            pending_wal_start: js_number(durable.durable_batch_position)?,
            pending_wal_end: js_number(durable.next_batch_position)?,
        })
    }

    /// Resolves to whether a MemTable was frozen.
    #[napi(catch_unwind)]
    pub fn force_seal_active<'env>(&self, env: &'env Env) -> napi::Result<PromiseRaw<'env, bool>> {
        let writer = self.writer.clone();
        spawn(env, async move { Ok(writer.force_seal_active().await?) })
    }

    /// Rows of the unflushed MemTables as one IPC stream.
    #[napi(catch_unwind, ts_return_type = "Promise<Buffer>")]
    pub fn scan<'env>(
        &self,
        env: &'env Env,
        request: NativeScanRequest,
    ) -> napi::Result<PromiseRaw<'env, Buffer>> {
        let request = js_result(env, request.into_core())?;
        let writer = self.writer.clone();
        spawn(env, async move {
            let (schema, batches) = writer.scan(&request)?;
            Ok(Buffer::from(encode_stream(&schema, &batches)?))
        })
    }

    #[napi(catch_unwind)]
    pub fn wait_for_flush_drain<'env>(&self, env: &'env Env) -> napi::Result<PromiseRaw<'env, ()>> {
        let writer = self.writer.clone();
        spawn(env, async move { Ok(writer.wait_for_flush_drain().await?) })
    }

    #[napi(catch_unwind)]
    pub fn close<'env>(&self, env: &'env Env) -> napi::Result<PromiseRaw<'env, ()>> {
        let writer = self.writer.clone();
        spawn(env, async move { Ok(writer.close().await?) })
    }
}

fn put_result(result: memwal_core::PutResult) -> Result<NativePutResult, Failure> {
    Ok(NativePutResult {
        start: js_number(result.batch_positions.start)?,
        end: js_number(result.batch_positions.end)?,
    })
}

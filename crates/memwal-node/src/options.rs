//! Writer options as they cross from JS (fully resolved by the TS layer).

use std::time::Duration;

use memwal_core::flush::FlushCompression;
use memwal_core::ShardWriterConfig;
use napi_derive::napi;

use crate::errors::safe_integer;

/// Every writer option, resolved; `null` durations mean "off".
#[napi(object)]
pub struct NativeWriterOptions {
    pub shard_spec_id: f64,
    pub durable_write: bool,
    pub sync_indexed_write: bool,
    pub max_wal_buffer_size: f64,
    pub max_wal_flush_interval_ms: Option<f64>,
    pub max_memtable_size: f64,
    pub max_memtable_rows: f64,
    pub max_memtable_batches: f64,
    pub manifest_scan_batch_size: f64,
    pub max_unflushed_memtable_bytes: f64,
    pub backpressure_log_interval_ms: f64,
    pub async_index_buffer_rows: f64,
    pub async_index_interval_ms: f64,
    pub stats_log_interval_ms: Option<f64>,
    pub enable_memtable: bool,
    pub max_wal_persist_retries: f64,
    pub wal_persist_retry_base_delay_ms: f64,
    /// Codec of flushed Parquet files: none, snappy, lz4 or zstd.
    pub flush_compression: String,
}

fn integer(name: &str, value: f64) -> memwal_core::Result<u64> {
    safe_integer(value).ok_or_else(|| {
        memwal_core::Error::invalid_config(format!(
            "{name} must be a non-negative integer, got {value}"
        ))
    })
}

fn millis(name: &str, value: f64) -> memwal_core::Result<Duration> {
    integer(name, value).map(Duration::from_millis)
}

fn u32_field(name: &str, value: f64) -> memwal_core::Result<u32> {
    let v = integer(name, value)?;
    u32::try_from(v).map_err(|_| {
        memwal_core::Error::invalid_config(format!("{name} must be at most {}, got {v}", u32::MAX))
    })
}

impl NativeWriterOptions {
    pub fn into_config(self) -> memwal_core::Result<ShardWriterConfig> {
        Ok(ShardWriterConfig {
            shard_spec_id: u32_field("shardSpecId", self.shard_spec_id)?,
            durable_write: self.durable_write,
            sync_indexed_write: self.sync_indexed_write,
            max_wal_buffer_size: integer("maxWalBufferSize", self.max_wal_buffer_size)?,
            max_wal_flush_interval: self
                .max_wal_flush_interval_ms
                .map(|v| millis("maxWalFlushIntervalMs", v))
                .transpose()?,
            max_memtable_size: integer("maxMemtableSize", self.max_memtable_size)?,
            max_memtable_rows: integer("maxMemtableRows", self.max_memtable_rows)?,
            max_memtable_batches: integer("maxMemtableBatches", self.max_memtable_batches)?,
            manifest_scan_batch_size: integer(
                "manifestScanBatchSize",
                self.manifest_scan_batch_size,
            )?,
            max_unflushed_memtable_bytes: integer(
                "maxUnflushedMemtableBytes",
                self.max_unflushed_memtable_bytes,
            )?,
            backpressure_log_interval: millis(
                "backpressureLogIntervalMs",
                self.backpressure_log_interval_ms,
            )?,
            async_index_buffer_rows: integer("asyncIndexBufferRows", self.async_index_buffer_rows)?,
            async_index_interval: millis("asyncIndexIntervalMs", self.async_index_interval_ms)?,
            stats_log_interval: self
                .stats_log_interval_ms
                .map(|v| millis("statsLogIntervalMs", v))
                .transpose()?,
            enable_memtable: self.enable_memtable,
            max_wal_persist_retries: u32_field(
                "maxWalPersistRetries",
                self.max_wal_persist_retries,
            )?,
            wal_persist_retry_base_delay: millis(
                "walPersistRetryBaseDelayMs",
                self.wal_persist_retry_base_delay_ms,
            )?,
            flush_compression: FlushCompression::parse(&self.flush_compression)?,
        })
    }
}

fn ms(d: Duration) -> f64 {
    d.as_millis() as f64
}

/// The core's defaults, so the TS builder has one source of truth.
#[napi]
pub fn default_writer_options() -> NativeWriterOptions {
    let c = ShardWriterConfig::default();
    NativeWriterOptions {
        shard_spec_id: c.shard_spec_id as f64,
        durable_write: c.durable_write,
        sync_indexed_write: c.sync_indexed_write,
        max_wal_buffer_size: c.max_wal_buffer_size as f64,
        max_wal_flush_interval_ms: c.max_wal_flush_interval.map(ms),
        max_memtable_size: c.max_memtable_size as f64,
        max_memtable_rows: c.max_memtable_rows as f64,
        max_memtable_batches: c.max_memtable_batches as f64,
        manifest_scan_batch_size: c.manifest_scan_batch_size as f64,
        max_unflushed_memtable_bytes: c.max_unflushed_memtable_bytes as f64,
        backpressure_log_interval_ms: ms(c.backpressure_log_interval),
        async_index_buffer_rows: c.async_index_buffer_rows as f64,
        async_index_interval_ms: ms(c.async_index_interval),
        stats_log_interval_ms: c.stats_log_interval.map(ms),
        enable_memtable: c.enable_memtable,
        max_wal_persist_retries: c.max_wal_persist_retries as f64,
        wal_persist_retry_base_delay_ms: ms(c.wal_persist_retry_base_delay),
        flush_compression: c.flush_compression.name().to_string(),
    }
}

/// Settings of object-store roots (`s3://`), as given in JS. Durations
/// are milliseconds; unset ones take the core's defaults.
#[napi(object)]
#[derive(Default)]
pub struct NativeStorageOptions {
    pub region: Option<String>,
    pub endpoint: Option<String>,
    pub access_key_id: Option<String>,
    pub secret_access_key: Option<String>,
    pub session_token: Option<String>,
    pub allow_http: Option<bool>,
    pub timeout_ms: Option<f64>,
    pub connect_timeout_ms: Option<f64>,
    pub retry_timeout_ms: Option<f64>,
    pub max_retries: Option<f64>,
}

/// A storage option that must be a safe integer of at least `min`.
fn storage_integer(name: &str, value: Option<f64>, min: u64) -> memwal_core::Result<Option<u64>> {
    value
        .map(|v| {
            safe_integer(v).filter(|&n| n >= min).ok_or_else(|| {
                memwal_core::Error::invalid_config(format!(
                    "storageOptions.{name} must be an integer of at least {min}, got {v}"
                ))
            })
        })
        .transpose()
}

impl NativeStorageOptions {
    pub fn into_core(self) -> memwal_core::Result<memwal_core::StorageOptions> {
        let duration =
            |name, value| storage_integer(name, value, 1).map(|v| v.map(Duration::from_millis));
        Ok(memwal_core::StorageOptions {
            region: self.region,
            endpoint: self.endpoint,
            access_key_id: self.access_key_id,
            secret_access_key: self.secret_access_key,
            session_token: self.session_token,
            allow_http: self.allow_http,
            timeout: duration("timeoutMs", self.timeout_ms)?,
            connect_timeout: duration("connectTimeoutMs", self.connect_timeout_ms)?,
            retry_timeout: duration("retryTimeoutMs", self.retry_timeout_ms)?,
            max_retries: storage_integer("maxRetries", self.max_retries, 0)?
                .map(|n| n.min(usize::MAX as u64) as usize),
        })
    }
}

/// The defaults of the storage options that have one, for the docs and tests.
#[napi(object)]
pub struct NativeStorageDefaults {
    pub timeout_ms: f64,
    pub connect_timeout_ms: f64,
    pub retry_timeout_ms: f64,
    pub max_retries: f64,
}

#[napi]
pub fn default_storage_options() -> NativeStorageDefaults {
    NativeStorageDefaults {
        timeout_ms: ms(memwal_core::store::DEFAULT_TIMEOUT),
        connect_timeout_ms: ms(memwal_core::store::DEFAULT_CONNECT_TIMEOUT),
        retry_timeout_ms: ms(memwal_core::store::DEFAULT_RETRY_TIMEOUT),
        max_retries: memwal_core::store::DEFAULT_MAX_RETRIES as f64,
    }
}

/// Open `uri` with optional object-store settings.
pub fn open_root(
    uri: &str,
    storage: Option<NativeStorageOptions>,
) -> memwal_core::Result<memwal_core::StorageRoot> {
    memwal_core::StorageRoot::open_with(uri, &storage.unwrap_or_default().into_core()?)
}

/// [`open_root`] for readers and tailers: a missing local root is
/// NOT_FOUND instead of being created.
pub fn open_existing_root(
    uri: &str,
    storage: Option<NativeStorageOptions>,
) -> memwal_core::Result<memwal_core::StorageRoot> {
    memwal_core::StorageRoot::open_existing_with(uri, &storage.unwrap_or_default().into_core()?)
}

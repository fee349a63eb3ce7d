//! Options as they cross from JS. The writer's options are defined once,
//! in `memwal_core::writer::ShardWriterConfig` (fields, defaults, bounds);
//! [`NativeWriterOptions`] is its JS shape, generated into `index.d.ts`
//! with these doc comments, from which `ts/config.ts` derives its types;
//! [`writer_option_table`] exports the core's list of names, kinds and
//! bounds, which the TS builder checks names and types against. Defaults
//! and range checks stay in Rust.

use std::time::Duration;

use memwal_core::flush::FlushCompression;
use memwal_core::writer::{OptionKind, WRITER_OPTIONS};
use memwal_core::ShardWriterConfig;
use napi::bindgen_prelude::{Either, Null};
use napi_derive::napi;

use crate::errors::safe_integer;

/// A duration in ms, or `null` for "off".
type MillisOrOff = Either<f64, Null>;

/// The writer's options (see `ShardWriterConfig` in the core). Durations
/// are milliseconds, sizes bytes. Every field is optional on the way in
/// (absent = the default); `defaultWriterOptions()` fills each.
#[napi(object)]
pub struct NativeWriterOptions {
    /// Sharding spec of the shard; 0 = a manually assigned shard.
    pub shard_spec_id: Option<f64>,
    /// `put` resolves only after its batches are persisted in the WAL.
    pub durable_write: Option<bool>,
    /// Unsent WAL bytes that trigger an append before the timer does.
    pub max_wal_buffer_size: Option<f64>,
    /// Longest time a non-durable put waits to be appended; `null` = no timer.
    #[napi(ts_type = "number | null")]
    pub max_wal_flush_interval_ms: Option<MillisOrOff>,
    /// Estimated bytes at which the active MemTable freezes and is flushed.
    pub max_memtable_size: Option<f64>,
    /// Batches at which the active MemTable freezes (at most 10,000,000).
    pub max_memtable_batches: Option<f64>,
    /// Manifest versions probed concurrently per round when finding the newest.
    pub manifest_scan_batch_size: Option<f64>,
    /// Bytes not yet flushed above which `put` waits (backpressure).
    pub max_unflushed_memtable_bytes: Option<f64>,
    /// Period of the log line while puts wait for backpressure.
    pub backpressure_log_interval_ms: Option<f64>,
    /// Period of the stats line in the log (`MEMWAL_LOG=info`); `null` = off.
    #[napi(ts_type = "number | null")]
    pub stats_log_interval_ms: Option<MillisOrOff>,
    /// `false` = WAL-only mode: no MemTable, no flush, no indexes.
    pub enable_memtable: Option<bool>,
    /// Store errors retried at one WAL position before the writer is poisoned.
    pub max_wal_persist_retries: Option<f64>,
    /// First delay between WAL append retries (doubling per retry).
    pub wal_persist_retry_base_delay_ms: Option<f64>,
    /// Codec of flushed Parquet generations.
    #[napi(ts_type = "'none' | 'snappy' | 'lz4' | 'zstd'")]
    pub flush_compression: Option<String>,
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

fn millis_or_off(name: &str, value: MillisOrOff) -> memwal_core::Result<Option<Duration>> {
    match value {
        Either::A(ms) => millis(name, ms).map(Some),
        Either::B(Null) => Ok(None),
    }
}

fn u32_field(name: &str, value: f64) -> memwal_core::Result<u32> {
    let v = integer(name, value)?;
    u32::try_from(v).map_err(|_| {
        memwal_core::Error::invalid_config(format!("{name} must be at most {}, got {v}", u32::MAX))
    })
}

/// `field = convert(value)` for each option given; the rest keep their default.
macro_rules! set_given {
    ($config:ident, $( $field:ident <- $value:expr, $convert:expr; )*) => {
        $( if let Some(value) = $value { $config.$field = $convert(value)?; } )*
    };
}

impl NativeWriterOptions {
    /// The core config: the defaults, overridden by every option given.
    /// Ranges are checked by `ShardWriterConfig::validate` at open.
    pub fn into_config(self) -> memwal_core::Result<ShardWriterConfig> {
        // Destructured so that a field added here and not converted fails
        // to compile.
        let Self {
            shard_spec_id,
            durable_write,
            max_wal_buffer_size,
            max_wal_flush_interval_ms,
            max_memtable_size,
            max_memtable_batches,
            manifest_scan_batch_size,
            max_unflushed_memtable_bytes,
            backpressure_log_interval_ms,
            stats_log_interval_ms,
            enable_memtable,
            max_wal_persist_retries,
            wal_persist_retry_base_delay_ms,
            flush_compression,
        } = self;
        let mut c = ShardWriterConfig::default();
        let same = |v: bool| -> memwal_core::Result<bool> { Ok(v) };
        set_given! { c,
            shard_spec_id <- shard_spec_id, |v| u32_field("shardSpecId", v);
            durable_write <- durable_write, same;
            max_wal_buffer_size <- max_wal_buffer_size, |v| integer("maxWalBufferSize", v);
            max_wal_flush_interval <- max_wal_flush_interval_ms,
                |v| millis_or_off("maxWalFlushIntervalMs", v);
            max_memtable_size <- max_memtable_size, |v| integer("maxMemtableSize", v);
            max_memtable_batches <- max_memtable_batches, |v| integer("maxMemtableBatches", v);
            manifest_scan_batch_size <- manifest_scan_batch_size,
                |v| integer("manifestScanBatchSize", v);
            max_unflushed_memtable_bytes <- max_unflushed_memtable_bytes,
                |v| integer("maxUnflushedMemtableBytes", v);
            backpressure_log_interval <- backpressure_log_interval_ms,
                |v| millis("backpressureLogIntervalMs", v);
            stats_log_interval <- stats_log_interval_ms, |v| millis_or_off("statsLogIntervalMs", v);
            enable_memtable <- enable_memtable, same;
            max_wal_persist_retries <- max_wal_persist_retries,
                |v| u32_field("maxWalPersistRetries", v);
            wal_persist_retry_base_delay <- wal_persist_retry_base_delay_ms,
                |v| millis("walPersistRetryBaseDelayMs", v);
            flush_compression <- flush_compression,
                |v: String| FlushCompression::parse(&v);
        }
        Ok(c)
    }
}

fn ms(d: Duration) -> f64 {
    d.as_millis() as f64
}

fn ms_or_off(d: Option<Duration>) -> Option<MillisOrOff> {
    Some(d.map_or(Either::B(Null), |d| Either::A(ms(d))))
}

/// The core's defaults, every field set: the TS builder's starting point.
#[napi]
pub fn default_writer_options() -> NativeWriterOptions {
    let ShardWriterConfig {
        shard_spec_id,
        durable_write,
        max_wal_buffer_size,
        max_wal_flush_interval,
        max_memtable_size,
        max_memtable_batches,
        manifest_scan_batch_size,
        max_unflushed_memtable_bytes,
        backpressure_log_interval,
        stats_log_interval,
        enable_memtable,
        max_wal_persist_retries,
        wal_persist_retry_base_delay,
        flush_compression,
    } = ShardWriterConfig::default();
    NativeWriterOptions {
        shard_spec_id: Some(shard_spec_id.into()),
        durable_write: Some(durable_write),
        max_wal_buffer_size: Some(max_wal_buffer_size as f64),
        max_wal_flush_interval_ms: ms_or_off(max_wal_flush_interval),
        max_memtable_size: Some(max_memtable_size as f64),
        max_memtable_batches: Some(max_memtable_batches as f64),
        manifest_scan_batch_size: Some(manifest_scan_batch_size as f64),
        max_unflushed_memtable_bytes: Some(max_unflushed_memtable_bytes as f64),
        backpressure_log_interval_ms: Some(ms(backpressure_log_interval)),
        stats_log_interval_ms: ms_or_off(stats_log_interval),
        enable_memtable: Some(enable_memtable),
        max_wal_persist_retries: Some(max_wal_persist_retries.into()),
        wal_persist_retry_base_delay_ms: Some(ms(wal_persist_retry_base_delay)),
        flush_compression: Some(flush_compression.name().to_string()),
    }
}

/// One writer option: its name, how its value is written and its bounds.
#[napi(object)]
pub struct NativeOptionSpec {
    pub name: String,
    #[napi(ts_type = "'integer' | 'integer|null' | 'boolean' | 'choice'")]
    pub kind: String,
    /// Inclusive bounds of an integer option (checked natively).
    pub min: Option<f64>,
    pub max: Option<f64>,
    /// The values a `choice` option takes.
    pub choices: Option<Vec<String>>,
}

/// The core's list of writer options (`WRITER_OPTIONS`), in order.
#[napi]
pub fn writer_option_table() -> Vec<NativeOptionSpec> {
    WRITER_OPTIONS
        .iter()
        .map(|spec| {
            let integer = matches!(spec.kind, OptionKind::Integer | OptionKind::IntegerOrNull);
            NativeOptionSpec {
                name: spec.name.to_string(),
                kind: spec.kind.name().to_string(),
                min: integer.then_some(spec.min as f64),
                max: integer.then_some(spec.max as f64),
                choices: (spec.kind == OptionKind::Choice)
                    .then(|| spec.choices.iter().map(|c| c.to_string()).collect()),
            }
        })
        .collect()
}

/// Credentials, endpoint and limits for object-store roots
/// (`s3://bucket/prefix`); local and `memory://` roots ignore them. Anything
/// left out comes from the standard `AWS_*` environment variables. Secrets
/// never appear in errors or logs, nor does the `user:password@` of an
/// endpoint URL.
#[napi(object)]
#[derive(Default)]
pub struct NativeStorageOptions {
    pub region: Option<String>,
    /// A custom endpoint, e.g. `http://127.0.0.1:9000` for an S3-compatible server.
    pub endpoint: Option<String>,
    pub access_key_id: Option<String>,
    pub secret_access_key: Option<String>,
    pub session_token: Option<String>,
    /// Allow plain-HTTP endpoints.
    pub allow_http: Option<bool>,
    /// Longest time one request may take, connecting through its last byte (default 30000 ms).
    pub timeout_ms: Option<f64>,
    /// Longest time to establish a connection (default 5000 ms).
    pub connect_timeout_ms: Option<f64>,
    /// Longest time spent retrying one request after failures and timeouts (default 60000 ms).
    pub retry_timeout_ms: Option<f64>,
    /// Most retries of one request (default 10).
    pub max_retries: Option<f64>,
}

/// Each storage option's name and JS type, for the TS layer's checks
/// (names and types; values are checked in [`NativeStorageOptions::into_core`]).
/// Kept next to the struct, in its order; a unit test holds them equal.
const STORAGE_OPTIONS: &[(&str, &str)] = &[
    ("region", "string"),
    ("endpoint", "string"),
    ("accessKeyId", "string"),
    ("secretAccessKey", "string"),
    ("sessionToken", "string"),
    ("allowHttp", "boolean"),
    ("timeoutMs", "number"),
    ("connectTimeoutMs", "number"),
    ("retryTimeoutMs", "number"),
    ("maxRetries", "number"),
];

/// One storage option: its name and JS type.
#[napi(object)]
pub struct NativeStorageOptionSpec {
    pub name: String,
    #[napi(ts_type = "'string' | 'boolean' | 'number'")]
    pub kind: String,
}

/// The storage options the binding takes, in order.
#[napi]
pub fn storage_option_table() -> Vec<NativeStorageOptionSpec> {
    STORAGE_OPTIONS
        .iter()
        .map(|(name, kind)| NativeStorageOptionSpec {
            name: name.to_string(),
            kind: kind.to_string(),
        })
        .collect()
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

#[cfg(test)]
mod tests {
    use super::*;

    /// The storage table names exactly the struct's fields: every field set
    /// to a value of the table's type converts, and one more name would be
    /// a field the struct lacks (counted by destructuring).
    #[test]
    fn storage_table_matches_the_struct() {
        let NativeStorageOptions {
            region: _,
            endpoint: _,
            access_key_id: _,
            secret_access_key: _,
            session_token: _,
            allow_http: _,
            timeout_ms: _,
            connect_timeout_ms: _,
            retry_timeout_ms: _,
            max_retries: _,
        } = NativeStorageOptions::default();
        const FIELDS: [&str; 10] = [
            "region",
            "endpoint",
            "access_key_id",
            "secret_access_key",
            "session_token",
            "allow_http",
            "timeout_ms",
            "connect_timeout_ms",
            "retry_timeout_ms",
            "max_retries",
        ];
        let camel: Vec<String> = FIELDS
            .iter()
            .map(|f| {
                let mut parts = f.split('_');
                let first = parts.next().unwrap().to_string();
                parts.fold(first, |acc, p| acc + &p[..1].to_uppercase() + &p[1..])
            })
            .collect();
        let names: Vec<&str> = STORAGE_OPTIONS.iter().map(|(n, _)| *n).collect();
        assert_eq!(names, camel);
    }
}

//! Writer configuration. Defaults follow Lance's ShardWriter; field names in
//! error messages are the camelCase names of the public TypeScript API.

use std::time::Duration;

use crate::error::{Error, Result};
use crate::flush::FlushCompression;

const MIB: u64 = 1024 * 1024;

/// Every knob of a shard writer. Build with `Default` and struct update.
#[derive(Debug, Clone, PartialEq)]
pub struct ShardWriterConfig {
    /// Sharding spec the shard belongs to; 0 = manual shard.
    pub shard_spec_id: u32,
    /// `put` resolves only once its batches are in the WAL.
    pub durable_write: bool,
    /// Kept for option compatibility with Lance; indexes are not built yet.
    pub sync_indexed_write: bool,
    /// Unsent WAL bytes that trigger an append without waiting for the timer.
    pub max_wal_buffer_size: u64,
    /// Longest time a non-durable batch waits before it is appended; `None` = no timer.
    pub max_wal_flush_interval: Option<Duration>,
    pub max_memtable_size: u64,
    pub max_memtable_rows: u64,
    pub max_memtable_batches: u64,
    /// Manifest versions probed concurrently per round when finding the latest.
    pub manifest_scan_batch_size: u64,
    /// Budget of bytes not yet flushed; puts wait while it is exceeded.
    pub max_unflushed_memtable_bytes: u64,
    pub backpressure_log_interval: Duration,
    pub async_index_buffer_rows: u64,
    pub async_index_interval: Duration,
    /// Period of the stats summary in the log; `None` = off.
    pub stats_log_interval: Option<Duration>,
    /// `false` = WAL-only mode: no MemTable, no flush, no indexes.
    pub enable_memtable: bool,
    pub max_wal_persist_retries: u32,
    pub wal_persist_retry_base_delay: Duration,
    /// Codec of flushed Parquet generations.
    pub flush_compression: FlushCompression,
}

impl Default for ShardWriterConfig {
    fn default() -> Self {
        Self {
            shard_spec_id: 0,
            durable_write: true,
            sync_indexed_write: true,
            max_wal_buffer_size: 10 * MIB,
            max_wal_flush_interval: Some(Duration::from_millis(100)),
            max_memtable_size: 256 * MIB,
            max_memtable_rows: 100_000,
            max_memtable_batches: 8_000,
            manifest_scan_batch_size: 2,
            max_unflushed_memtable_bytes: 1024 * MIB,
            backpressure_log_interval: Duration::from_secs(30),
            async_index_buffer_rows: 10_000,
            async_index_interval: Duration::from_secs(1),
            stats_log_interval: Some(Duration::from_secs(60)),
            enable_memtable: true,
            max_wal_persist_retries: 3,
            wal_persist_retry_base_delay: Duration::from_millis(50),
            flush_compression: FlushCompression::Snappy,
        }
    }
}

/// Upper bound for sizes and counts: positions and sizes reach JS as numbers.
const MAX_SAFE: u64 = (1 << 53) - 1;

fn positive(name: &str, value: u64) -> Result<()> {
    if value == 0 {
        return Err(Error::invalid_config(format!(
            "{name} must be greater than 0, got 0"
        )));
    }
    if value > MAX_SAFE {
        return Err(Error::invalid_config(format!(
            "{name} must be at most 2^53-1, got {value}"
        )));
    }
    Ok(())
}

fn positive_duration(name: &str, value: Duration) -> Result<()> {
    if value.is_zero() {
        return Err(Error::invalid_config(format!(
            "{name} must be greater than 0 ms"
        )));
    }
    Ok(())
}

impl ShardWriterConfig {
    /// Check every rule; the error names the first offending field.
    pub fn validate(&self) -> Result<()> {
        positive("maxWalBufferSize", self.max_wal_buffer_size)?;
        if let Some(interval) = self.max_wal_flush_interval {
            positive_duration("maxWalFlushIntervalMs", interval)?;
        }
        positive("maxMemtableSize", self.max_memtable_size)?;
        positive("maxMemtableRows", self.max_memtable_rows)?;
        positive("maxMemtableBatches", self.max_memtable_batches)?;
        if self.max_memtable_batches > 10_000_000 {
            return Err(Error::invalid_config(format!(
                "maxMemtableBatches must be at most 10000000 (slots are preallocated), got {}",
                self.max_memtable_batches
            )));
        }
        positive("manifestScanBatchSize", self.manifest_scan_batch_size)?;
        if self.manifest_scan_batch_size > 1024 {
            return Err(Error::invalid_config(format!(
                "manifestScanBatchSize must be at most 1024, got {}",
                self.manifest_scan_batch_size
            )));
        }
        positive(
            "maxUnflushedMemtableBytes",
            self.max_unflushed_memtable_bytes,
        )?;
        positive_duration("backpressureLogIntervalMs", self.backpressure_log_interval)?;
        positive("asyncIndexBufferRows", self.async_index_buffer_rows)?;
        positive_duration("asyncIndexIntervalMs", self.async_index_interval)?;
        if let Some(interval) = self.stats_log_interval {
            positive_duration("statsLogIntervalMs", interval)?;
        }
        if self.max_wal_persist_retries > 100 {
            return Err(Error::invalid_config(format!(
                "maxWalPersistRetries must be at most 100, got {}",
                self.max_wal_persist_retries
            )));
        }
        if self.wal_persist_retry_base_delay > Duration::from_secs(60) {
            return Err(Error::invalid_config(
                "walPersistRetryBaseDelayMs must be at most 60000 ms",
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ErrorCode;

    #[test]
    fn defaults_are_valid_and_match_lance() {
        let c = ShardWriterConfig::default();
        c.validate().unwrap();
        assert_eq!(c.max_wal_buffer_size, 10 * MIB);
        assert_eq!(c.max_memtable_batches, 8000);
        assert_eq!(c.max_unflushed_memtable_bytes, 1 << 30);
    }

    #[test]
    fn each_rule_names_its_field() {
        let cases: Vec<(ShardWriterConfig, &str)> = vec![
            (
                ShardWriterConfig {
                    max_wal_buffer_size: 0,
                    ..Default::default()
                },
                "maxWalBufferSize",
            ),
            (
                ShardWriterConfig {
                    max_wal_flush_interval: Some(Duration::ZERO),
                    ..Default::default()
                },
                "maxWalFlushIntervalMs",
            ),
            (
                ShardWriterConfig {
                    max_memtable_batches: 0,
                    ..Default::default()
                },
                "maxMemtableBatches",
            ),
            (
                ShardWriterConfig {
                    manifest_scan_batch_size: 0,
                    ..Default::default()
                },
                "manifestScanBatchSize",
            ),
            (
                ShardWriterConfig {
                    max_memtable_size: u64::MAX,
                    ..Default::default()
                },
                "maxMemtableSize",
            ),
            (
                ShardWriterConfig {
                    max_wal_persist_retries: 1000,
                    ..Default::default()
                },
                "maxWalPersistRetries",
            ),
        ];
        for (config, field) in cases {
            let err = config.validate().unwrap_err();
            assert_eq!(err.code(), ErrorCode::InvalidConfig);
            assert!(err.message().starts_with(field), "{err}");
        }
    }
}

//! Writer configuration: the one definition of the writer's options.
//!
//! [`ShardWriterConfig`] holds them with their defaults (Lance's
//! ShardWriter's); [`WRITER_OPTIONS`] lists each by its public camelCase
//! name with its kind and bounds, and [`ShardWriterConfig::validate`]
//! checks the bounds from that list. The Node binding converts the struct
//! field by field (the compiler keeps that conversion complete) and
//! exports the list, from which the TypeScript builder takes its names and
//! type checks; nothing else spells the options out.

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
    /// Unsent WAL bytes that trigger an append without waiting for the timer.
    pub max_wal_buffer_size: u64,
    /// Longest time a non-durable batch waits before it is appended; `None` = no timer.
    pub max_wal_flush_interval: Option<Duration>,
    /// Estimated bytes at which the active MemTable freezes and is flushed.
    pub max_memtable_size: u64,
    /// Batches at which the active MemTable freezes (its slots are preallocated).
    pub max_memtable_batches: u64,
    /// Manifest versions probed concurrently per round when finding the latest.
    pub manifest_scan_batch_size: u64,
    /// Budget of bytes not yet flushed; puts wait while it is exceeded.
    pub max_unflushed_memtable_bytes: u64,
    /// Period of the log line while puts wait for backpressure.
    pub backpressure_log_interval: Duration,
    /// Period of the stats summary in the log; `None` = off.
    pub stats_log_interval: Option<Duration>,
    /// `false` = WAL-only mode: no MemTable, no flush, no indexes.
    pub enable_memtable: bool,
    /// Store errors retried at one WAL position before the writer is poisoned.
    pub max_wal_persist_retries: u32,
    /// First retry delay of a failed WAL append (doubling per retry).
    pub wal_persist_retry_base_delay: Duration,
    /// Codec of flushed Parquet generations.
    pub flush_compression: FlushCompression,
}

impl Default for ShardWriterConfig {
    fn default() -> Self {
        Self {
            shard_spec_id: 0,
            durable_write: true,
            max_wal_buffer_size: 10 * MIB,
            max_wal_flush_interval: Some(Duration::from_millis(100)),
            max_memtable_size: 256 * MIB,
            max_memtable_batches: 8_000,
            manifest_scan_batch_size: 2,
            max_unflushed_memtable_bytes: 1024 * MIB,
            backpressure_log_interval: Duration::from_secs(30),
            stats_log_interval: Some(Duration::from_secs(60)),
            enable_memtable: true,
            max_wal_persist_retries: 3,
            wal_persist_retry_base_delay: Duration::from_millis(50),
            flush_compression: FlushCompression::Snappy,
        }
    }
}

/// Upper bound for sizes and counts: positions and sizes reach JS as numbers.
pub const MAX_SAFE: u64 = (1 << 53) - 1;

/// How an option's value is written in JS: sizes in bytes, durations in ms.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OptionKind {
    Integer,
    /// An integer, or `null` for "off".
    IntegerOrNull,
    Boolean,
    /// One of [`OptionSpec::choices`].
    Choice,
}

impl OptionKind {
    pub fn name(self) -> &'static str {
        match self {
            Self::Integer => "integer",
            Self::IntegerOrNull => "integer|null",
            Self::Boolean => "boolean",
            Self::Choice => "choice",
        }
    }
}

/// One writer option as the public API names it.
#[derive(Debug, Clone, Copy)]
pub struct OptionSpec {
    /// The camelCase name (durations end in `Ms`).
    pub name: &'static str,
    pub kind: OptionKind,
    /// Inclusive bounds of an integer option.
    pub min: u64,
    pub max: u64,
    /// Why `max` is below 2^53-1, for the error message.
    pub max_reason: Option<&'static str>,
    /// The values of a [`OptionKind::Choice`].
    pub choices: &'static [&'static str],
    /// The integer an option holds in `config` (ms for durations); `None`
    /// for other kinds and for "off".
    value: fn(&ShardWriterConfig) -> Option<u64>,
}

const fn integer(
    name: &'static str,
    min: u64,
    max: u64,
    value: fn(&ShardWriterConfig) -> Option<u64>,
) -> OptionSpec {
    OptionSpec {
        name,
        kind: OptionKind::Integer,
        min,
        max,
        max_reason: None,
        choices: &[],
        value,
    }
}

const fn other(
    name: &'static str,
    kind: OptionKind,
    choices: &'static [&'static str],
) -> OptionSpec {
    OptionSpec {
        name,
        kind,
        min: 0,
        max: 0,
        max_reason: None,
        choices,
        value: |_| None,
    }
}

const fn reason(spec: OptionSpec, why: &'static str) -> OptionSpec {
    OptionSpec {
        max_reason: Some(why),
        ..spec
    }
}

const fn or_null(spec: OptionSpec) -> OptionSpec {
    OptionSpec {
        kind: OptionKind::IntegerOrNull,
        ..spec
    }
}

fn ms(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

/// Every option of the public API, in the order the docs list them.
pub const WRITER_OPTIONS: &[OptionSpec] = &[
    integer("shardSpecId", 0, u32::MAX as u64, |c| {
        Some(c.shard_spec_id.into())
    }),
    other("durableWrite", OptionKind::Boolean, &[]),
    integer("maxWalBufferSize", 1, MAX_SAFE, |c| {
        Some(c.max_wal_buffer_size)
    }),
    or_null(integer("maxWalFlushIntervalMs", 1, MAX_SAFE, |c| {
        c.max_wal_flush_interval.map(ms)
    })),
    integer("maxMemtableSize", 1, MAX_SAFE, |c| {
        Some(c.max_memtable_size)
    }),
    reason(
        integer("maxMemtableBatches", 1, 10_000_000, |c| {
            Some(c.max_memtable_batches)
        }),
        "slots are preallocated",
    ),
    integer("manifestScanBatchSize", 1, 1024, |c| {
        Some(c.manifest_scan_batch_size)
    }),
    integer("maxUnflushedMemtableBytes", 1, MAX_SAFE, |c| {
        Some(c.max_unflushed_memtable_bytes)
    }),
    integer("backpressureLogIntervalMs", 1, MAX_SAFE, |c| {
        Some(ms(c.backpressure_log_interval))
    }),
    or_null(integer("statsLogIntervalMs", 1, MAX_SAFE, |c| {
        c.stats_log_interval.map(ms)
    })),
    other("enableMemtable", OptionKind::Boolean, &[]),
    integer("maxWalPersistRetries", 0, 100, |c| {
        Some(c.max_wal_persist_retries.into())
    }),
    integer("walPersistRetryBaseDelayMs", 0, 60_000, |c| {
        Some(ms(c.wal_persist_retry_base_delay))
    }),
    other(
        "flushCompression",
        OptionKind::Choice,
        FlushCompression::NAMES,
    ),
];

impl OptionSpec {
    fn check(&self, config: &ShardWriterConfig) -> Result<()> {
        let Some(value) = (self.value)(config) else {
            return Ok(());
        };
        let name = self.name;
        if value < self.min {
            return Err(Error::invalid_config(if self.min == 1 {
                format!("{name} must be greater than 0, got {value}")
            } else {
                format!("{name} must be at least {}, got {value}", self.min)
            }));
        }
        if value > self.max {
            let max = if self.max == MAX_SAFE {
                "2^53-1".to_string()
            } else {
                self.max.to_string()
            };
            let why = self
                .max_reason
                .map(|r| format!(" ({r})"))
                .unwrap_or_default();
            return Err(Error::invalid_config(format!(
                "{name} must be at most {max}{why}, got {value}"
            )));
        }
        Ok(())
    }
}

impl ShardWriterConfig {
    /// Check every rule; the error names the first offending field.
    pub fn validate(&self) -> Result<()> {
        WRITER_OPTIONS.iter().try_for_each(|spec| spec.check(self))
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
            (
                ShardWriterConfig {
                    wal_persist_retry_base_delay: Duration::from_secs(61),
                    ..Default::default()
                },
                "walPersistRetryBaseDelayMs",
            ),
            (
                ShardWriterConfig {
                    stats_log_interval: Some(Duration::ZERO),
                    ..Default::default()
                },
                "statsLogIntervalMs",
            ),
        ];
        for (config, field) in cases {
            let err = config.validate().unwrap_err();
            assert_eq!(err.code(), ErrorCode::InvalidConfig);
            assert!(err.message().starts_with(field), "{err}");
        }
    }

    #[test]
    fn every_option_name_is_unique_camel_case_and_integers_have_bounds() {
        let mut names: Vec<&str> = WRITER_OPTIONS.iter().map(|s| s.name).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), WRITER_OPTIONS.len());
        for spec in WRITER_OPTIONS {
            assert!(spec.name.chars().next().unwrap().is_ascii_lowercase());
            assert!(!spec.name.contains('_'), "{}", spec.name);
            match spec.kind {
                OptionKind::Integer | OptionKind::IntegerOrNull => {
                    assert!(
                        spec.min <= spec.max && spec.max <= MAX_SAFE,
                        "{}",
                        spec.name
                    );
                    // The default is within bounds and read by the table.
                    let value = (spec.value)(&ShardWriterConfig::default());
                    assert!(value.is_some(), "{}", spec.name);
                }
                OptionKind::Choice => assert!(!spec.choices.is_empty()),
                OptionKind::Boolean => {}
            }
        }
    }
}

/**
 * memwal: durable Apache Arrow writes for TypeScript, through a write-ahead
 * log that is wire-compatible with Lance MemWAL.
 *
 * @packageDocumentation
 */
export { PRIMARY_KEY_METADATA, type PutInput } from './arrow.js'
export { type FlushCompression, ShardWriterConfig, type ShardWriterOptions } from './config.js'
export { MemWalError, type MemWalErrorCode } from './errors.js'
export {
  type GenerationInfo,
  openShardReader,
  type ScanMetrics,
  ShardReader,
  type ShardScanStream,
} from './reader.js'
export { type FollowOptions, openWalTailer, type WalEntry, WalTailer } from './tailer.js'
export {
  type ErrorInfo,
  type MemTableStats,
  type OpenShardWriterOptions,
  openShardWriter,
  type PutResult,
  type ScanOptions,
  type ShardManifestInfo,
  ShardWriter,
  type StorageOptions,
  type WalStats,
  type WriterHealth,
  type WriterStats,
} from './writer.js'

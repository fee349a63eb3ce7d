//! Shared by the fuzz targets and the seed generator (`examples/make_seeds.rs`).

/// The shard every manifest input is decoded for. The manifest seeds are
/// written for this shard and version, so mutations start past validation.
pub const MANIFEST_SHARD: uuid::Uuid =
    uuid::Uuid::from_u128(0x6d656d77_616c_4675_a7a7_0123456789ab);
/// The manifest version every manifest input is decoded as.
pub const MANIFEST_VERSION: u64 = 3;

/// Longest input worth fuzzing; `run.sh` passes it as `-max_len`. Real
/// entries and manifests are larger, but every structure of both formats
/// (schema, dictionaries, batches, nested types; every manifest field) fits.
pub const MAX_LEN: usize = 16 * 1024;

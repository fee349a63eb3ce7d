//! A storage root bound to an object store, with memwal's write primitives.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use bytes::Bytes;
use futures::TryStreamExt;
use object_store::local::LocalFileSystem;
use object_store::memory::InMemory;
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt, PutMode, PutOptions, PutPayload};

use super::uri::{parse_root_uri, RootLocation};
use crate::error::{Error, Result};

/// Result of a create-if-absent write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CreateOutcome {
    /// The object did not exist and now holds our bytes.
    Created,
    /// Someone (possibly an earlier attempt of ours) already wrote this name.
    AlreadyExists,
}

/// An object store plus the base path that every memwal key is relative to.
#[derive(Clone)]
pub struct StorageRoot {
    store: Arc<dyn ObjectStore>,
    base: Path,
    uri: String,
    /// The directory behind `store` when it is a local root opened by URI.
    local_dir: Option<Arc<std::path::PathBuf>>,
}

impl std::fmt::Debug for StorageRoot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StorageRoot")
            .field("uri", &self.uri)
            .finish()
    }
}

/// Settings of object-store roots (`s3://`). Anything left out comes from
/// the standard `AWS_*` environment variables. Secrets never appear in
/// `Debug` output, errors or logs.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct StorageOptions {
    pub region: Option<String>,
    /// A custom endpoint, e.g. `http://127.0.0.1:9000` for an S3-compatible server.
    pub endpoint: Option<String>,
    pub access_key_id: Option<String>,
    pub secret_access_key: Option<String>,
    pub session_token: Option<String>,
    /// Allow plain-HTTP endpoints.
    pub allow_http: Option<bool>,
    /// Longest time one request may take, connecting through the last byte
    /// of the response ([`DEFAULT_TIMEOUT`]).
    pub timeout: Option<Duration>,
    /// Longest time to establish a connection ([`DEFAULT_CONNECT_TIMEOUT`]).
    pub connect_timeout: Option<Duration>,
    /// Longest time spent retrying one request after transient failures
    /// and timeouts ([`DEFAULT_RETRY_TIMEOUT`]).
    pub retry_timeout: Option<Duration>,
    /// Most retries of one request ([`DEFAULT_MAX_RETRIES`]).
    pub max_retries: Option<usize>,
}

/// Per-request limit of object-store roots, unless set.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);
/// Connect limit of object-store roots, unless set.
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// Total retry time for one request, unless set: with the request limit, a
/// store that accepts connections and never answers fails an open in about
/// a minute and a half instead of object_store's three and a half.
pub const DEFAULT_RETRY_TIMEOUT: Duration = Duration::from_secs(60);
/// Retries of one request, unless set (object_store's default).
pub const DEFAULT_MAX_RETRIES: usize = 10;

impl std::fmt::Debug for StorageOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let hidden = |v: &Option<String>| v.as_ref().map(|_| "<redacted>");
        f.debug_struct("StorageOptions")
            .field("region", &self.region)
            .field(
                "endpoint",
                &self.endpoint.as_deref().map(crate::redact::redact_userinfo),
            )
            .field("access_key_id", &hidden(&self.access_key_id))
            .field("secret_access_key", &hidden(&self.secret_access_key))
            .field("session_token", &hidden(&self.session_token))
            .field("allow_http", &self.allow_http)
            .field("timeout", &self.timeout)
            .field("connect_timeout", &self.connect_timeout)
            .field("retry_timeout", &self.retry_timeout)
            .field("max_retries", &self.max_retries)
            .finish()
    }
}

impl StorageOptions {
    #[cfg(not(feature = "s3"))]
    fn s3_store(&self, _bucket: &str) -> Result<Arc<dyn ObjectStore>> {
        Err(Error::invalid_config(
            "This build of memwal-core has no S3 support (feature `s3`)",
        ))
    }

    #[cfg(feature = "s3")]
    fn s3_store(&self, bucket: &str) -> Result<Arc<dyn ObjectStore>> {
        use object_store::aws::{AmazonS3Builder, AmazonS3ConfigKey};
        use object_store::{ClientConfigKey, RetryConfig};
        let millis = |d: Duration| format!("{}ms", d.as_millis().max(1));
        let mut builder = AmazonS3Builder::from_env()
            .with_bucket_name(bucket)
            .with_config(
                AmazonS3ConfigKey::Client(ClientConfigKey::Timeout),
                millis(self.timeout.unwrap_or(DEFAULT_TIMEOUT)),
            )
            .with_config(
                AmazonS3ConfigKey::Client(ClientConfigKey::ConnectTimeout),
                millis(self.connect_timeout.unwrap_or(DEFAULT_CONNECT_TIMEOUT)),
            )
            .with_retry(RetryConfig {
                max_retries: self.max_retries.unwrap_or(DEFAULT_MAX_RETRIES),
                retry_timeout: self.retry_timeout.unwrap_or(DEFAULT_RETRY_TIMEOUT),
                ..RetryConfig::default()
            });
        if let Some(region) = &self.region {
            builder = builder.with_region(region);
        }
        if let Some(endpoint) = &self.endpoint {
            let (endpoint, had_userinfo) = crate::redact::strip_userinfo(endpoint);
            if had_userinfo {
                tracing::warn!(
                    "storageOptions.endpoint carries user:password@, which S3 requests do not \
                     use; it is left out (set accessKeyId and secretAccessKey instead)"
                );
            }
            builder = builder.with_endpoint(endpoint);
        }
        if let Some(key) = &self.access_key_id {
            builder = builder.with_access_key_id(key);
        }
        if let Some(secret) = &self.secret_access_key {
            builder = builder.with_secret_access_key(secret);
        }
        if let Some(token) = &self.session_token {
            builder = builder.with_token(token);
        }
        if let Some(allow) = self.allow_http {
            builder = builder.with_allow_http(allow);
        }
        // Builder errors name the offending setting, never a credential value.
        let store = builder.build().map_err(|e| {
            Error::invalid_config(format!("Cannot configure S3 bucket '{bucket}': {e}"))
        })?;
        Ok(Arc::new(store))
    }
}

fn memory_stores() -> &'static Mutex<HashMap<String, Arc<InMemory>>> {
    static STORES: OnceLock<Mutex<HashMap<String, Arc<InMemory>>>> = OnceLock::new();
    STORES.get_or_init(Default::default)
}

impl StorageRoot {
    /// Open the root named by `uri`. Local roots are created if missing and
    /// every local write is fsync'd (file and directory) before it returns.
    pub fn open(uri: &str) -> Result<Self> {
        Self::open_with(uri, &StorageOptions::default())
    }

    /// [`StorageRoot::open`] with settings for object-store roots.
    pub fn open_with(uri: &str, options: &StorageOptions) -> Result<Self> {
        Self::open_inner(uri, options, true)
    }

    /// [`StorageRoot::open_with`] for readers: opening to read never creates
    /// anything, so a local root that does not exist is NOT_FOUND (no shard
    /// can be under it).
    pub fn open_existing_with(uri: &str, options: &StorageOptions) -> Result<Self> {
        Self::open_inner(uri, options, false)
    }

    fn open_inner(uri: &str, options: &StorageOptions, create: bool) -> Result<Self> {
        match parse_root_uri(uri)? {
            RootLocation::S3 { bucket, prefix } => Ok(Self::new(
                options.s3_store(&bucket)?,
                Path::from(prefix),
                uri,
            )),
            RootLocation::Local(dir) => {
                if create {
                    std::fs::create_dir_all(&dir).map_err(|e| {
                        Error::io(format!("Cannot create storage root {}: {e}", dir.display()))
                    })?;
                } else {
                    match std::fs::metadata(&dir) {
                        Ok(meta) if meta.is_dir() => {}
                        Ok(_) => {
                            return Err(Error::invalid_input(format!(
                                "Storage root {} is not a directory",
                                dir.display()
                            )))
                        }
                        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                            return Err(Error::not_found(format!(
                                "Storage root {} does not exist",
                                dir.display()
                            )))
                        }
                        Err(e) => {
                            return Err(Error::io(format!(
                                "Cannot open storage root {}: {e}",
                                dir.display()
                            )))
                        }
                    }
                }
                let store = LocalFileSystem::new_with_prefix(&dir)
                    .map_err(Error::from)?
                    .with_fsync(true);
                let mut root = Self::new(Arc::new(store), Path::default(), uri);
                root.local_dir = Some(Arc::new(dir));
                Ok(root)
            }
            RootLocation::Memory { name, prefix } => {
                let store = memory_stores()
                    .lock()
                    .expect("memory store registry poisoned")
                    .entry(name)
                    .or_insert_with(|| Arc::new(InMemory::new()))
                    .clone();
                Ok(Self::new(store, Path::from(prefix), uri))
            }
        }
    }

    /// Wrap an existing store; `base` is the key prefix for everything memwal writes.
    pub fn new(store: Arc<dyn ObjectStore>, base: Path, uri: impl Into<String>) -> Self {
        Self {
            store,
            base,
            uri: uri.into(),
            local_dir: None,
        }
    }

    pub fn uri(&self) -> &str {
        &self.uri
    }

    pub fn store(&self) -> &Arc<dyn ObjectStore> {
        &self.store
    }

    /// The full key of `relative` (a `/`-separated path below the root).
    pub fn path(&self, relative: &str) -> Path {
        let mut path = self.base.clone();
        for part in relative.split('/').filter(|p| !p.is_empty()) {
            path = path.join(part);
        }
        path
    }

    /// Write `payload` at `path` only if nothing is there yet.
    pub async fn put_if_absent(
        &self,
        path: &Path,
        payload: impl Into<PutPayload>,
    ) -> Result<CreateOutcome> {
        let options = PutOptions {
            mode: PutMode::Create,
            ..Default::default()
        };
        match self.store.put_opts(path, payload.into(), options).await {
            Ok(_) => Ok(CreateOutcome::Created),
            Err(object_store::Error::AlreadyExists { .. })
            | Err(object_store::Error::Precondition { .. }) => Ok(CreateOutcome::AlreadyExists),
            Err(err) => Err(Error::from(err).context(format!("Create {path}"))),
        }
    }

    /// Where `path` lives on disk, for a local root opened by URI: large
    /// files written once (flushed generations) are then streamed there
    /// with [`StagedFile`](super::StagedFile), past the page cache, instead
    /// of through [`put_if_absent`](Self::put_if_absent). `None` for object
    /// stores and for stores wrapped with [`new`](Self::new).
    pub fn local_file(&self, path: &Path) -> Option<std::path::PathBuf> {
        let dir = self.local_dir.as_ref()?;
        Some(
            path.parts()
                .fold(dir.as_ref().clone(), |p, part| p.join(part.as_ref())),
        )
    }

    /// What occupies `path` on a local root when it is not a file an object
    /// read can see: a directory, a dangling symbolic link, a socket...
    /// (it takes the name of a create-if-absent write, yet HEAD and LIST
    /// find nothing). `None` for a regular file, nothing at all, or a store
    /// without a local directory.
    pub fn non_object_at(&self, path: &Path) -> Option<String> {
        let file = self.local_file(path)?;
        let what = match std::fs::symlink_metadata(&file).ok()? {
            meta if meta.is_dir() => "a directory".to_string(),
            meta if meta.is_symlink() => match std::fs::metadata(&file) {
                Ok(target) if target.is_file() => return None,
                Ok(_) => "a symbolic link to something that is not a file".to_string(),
                Err(_) => match std::fs::read_link(&file) {
                    Ok(to) => format!("a dangling symbolic link (to {})", to.display()),
                    Err(_) => "a dangling symbolic link".to_string(),
                },
            },
            meta if meta.is_file() => return None,
            _ => "not a regular file".to_string(),
        };
        Some(format!("{} is {what}", file.display()))
    }

    /// Unconditional write (used only for best-effort hints).
    pub async fn put(&self, path: &Path, bytes: Bytes) -> Result<()> {
        self.store
            .put(path, PutPayload::from(bytes))
            .await
            .map(|_| ())
            .map_err(|e| Error::from(e).context(format!("Write {path}")))
    }

    /// The object's bytes, or `None` if it does not exist.
    pub async fn get(&self, path: &Path) -> Result<Option<Bytes>> {
        match self.store.get(path).await {
            Ok(result) => {
                Ok(Some(result.bytes().await.map_err(|e| {
                    Error::from(e).context(format!("Read {path}"))
                })?))
            }
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(err) => Err(Error::from(err).context(format!("Read {path}"))),
        }
    }

    /// Whether an object exists at `path`.
    pub async fn exists(&self, path: &Path) -> Result<bool> {
        match self.store.head(path).await {
            Ok(_) => Ok(true),
            Err(object_store::Error::NotFound { .. }) => Ok(false),
            Err(err) => Err(Error::from(err).context(format!("Head {path}"))),
        }
    }

    /// Fail unless the store says "not found" for a name nobody wrote.
    ///
    /// Asked when probes keep finding objects: a store (or a proxy) that
    /// answers every HEAD with success would otherwise send a tip search
    /// on forever.
    pub async fn check_reports_absence(&self, dir: &Path, what: &str) -> Result<()> {
        let canary = dir
            .clone()
            .join(format!("memwal-absent-{}", uuid::Uuid::new_v4()));
        if self.exists(&canary).await? {
            return Err(Error::io(format!(
                "Storage root '{}' reports objects that do not exist (HEAD of {canary}, a name \
                 nobody writes, succeeded) while finding {what}; it is not a store memwal can \
                 use: check the endpoint",
                self.uri
            )));
        }
        Ok(())
    }

    /// File names directly inside `dir` (no recursion).
    pub async fn list_names(&self, dir: &Path) -> Result<Vec<String>> {
        let listing = self
            .store
            .list_with_delimiter(Some(dir))
            .await
            .map_err(|e| Error::from(e).context(format!("List {dir}")))?;
        Ok(listing
            .objects
            .into_iter()
            .filter_map(|meta| meta.location.filename().map(str::to_string))
            .collect())
    }

    /// Every object key below `dir`, recursively.
    pub async fn list_recursive(&self, dir: &Path) -> Result<Vec<Path>> {
        self.store
            .list(Some(dir))
            .map_ok(|meta| meta.location)
            .try_collect()
            .await
            .map_err(|e| Error::from(e).context(format!("List {dir}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn create_if_absent_reports_a_taken_slot() {
        let dir = tempfile::tempdir().unwrap();
        for uri in [
            dir.path().to_str().unwrap().to_string(),
            "memory://root-test".to_string(),
        ] {
            let root = StorageRoot::open(&uri).unwrap();
            let key = root.path("a/b/c.bin");
            assert_eq!(
                root.put_if_absent(&key, Bytes::from_static(b"one"))
                    .await
                    .unwrap(),
                CreateOutcome::Created
            );
            assert_eq!(
                root.put_if_absent(&key, Bytes::from_static(b"two"))
                    .await
                    .unwrap(),
                CreateOutcome::AlreadyExists
            );
            assert_eq!(
                root.get(&key).await.unwrap().unwrap(),
                Bytes::from_static(b"one")
            );
            assert!(root.exists(&key).await.unwrap());
            assert!(!root.exists(&root.path("a/b/missing")).await.unwrap());
            assert_eq!(root.get(&root.path("nope")).await.unwrap(), None);
            assert_eq!(
                root.list_names(&root.path("a/b")).await.unwrap(),
                vec!["c.bin"]
            );
        }
    }

    #[tokio::test]
    async fn local_create_leaves_no_staging_file_behind() {
        let dir = tempfile::tempdir().unwrap();
        let root = StorageRoot::open(dir.path().to_str().unwrap()).unwrap();
        let key = root.path("wal/x.arrow");
        root.put_if_absent(&key, Bytes::from_static(b"data"))
            .await
            .unwrap();
        root.put_if_absent(&key, Bytes::from_static(b"more"))
            .await
            .unwrap();
        let names: Vec<_> = std::fs::read_dir(dir.path().join("wal"))
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        assert_eq!(names, vec!["x.arrow"]);
    }

    #[tokio::test]
    async fn local_files_written_directly_are_seen_through_the_object_store() {
        use std::io::Write;
        let dir = tempfile::tempdir().unwrap();
        let root = StorageRoot::open(dir.path().to_str().unwrap()).unwrap();
        let folder = root.path("shard/0000abcd_gen_1");
        let key = root.path("shard/0000abcd_gen_1/data.parquet");
        let file = root.local_file(&key).unwrap();
        assert_eq!(file, dir.path().join("shard/0000abcd_gen_1/data.parquet"));
        let bytes: Vec<u8> = (0..3_000_000u32).map(|i| (i % 253) as u8).collect();
        let mut staged = super::super::StagedFile::create(&file).unwrap();
        staged.write_all(&bytes).unwrap();
        // Not visible under any name until published.
        assert!(root.list_names(&folder).await.unwrap().is_empty());
        assert_eq!(staged.finish().unwrap(), CreateOutcome::Created);
        assert_eq!(root.get(&key).await.unwrap(), Some(Bytes::from(bytes)));
        assert_eq!(
            root.list_names(&folder).await.unwrap(),
            vec!["data.parquet"]
        );

        let wrapped = StorageRoot::new(root.store().clone(), Path::default(), "wrapped");
        assert_eq!(wrapped.local_file(&key), None);
        let memory = StorageRoot::open("memory://local-file").unwrap();
        assert_eq!(memory.local_file(&key), None);
    }

    #[tokio::test]
    async fn same_memory_name_reaches_the_same_store() {
        let a = StorageRoot::open("memory://shared-name/p").unwrap();
        let b = StorageRoot::open("memory://shared-name/p").unwrap();
        a.put(&a.path("k"), Bytes::from_static(b"v")).await.unwrap();
        assert!(b.exists(&b.path("k")).await.unwrap());
    }
}

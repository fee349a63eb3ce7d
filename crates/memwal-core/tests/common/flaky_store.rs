//! An `ObjectStore` wrapper that makes chosen writes fail, for testing
//! retries, poisoning and ambiguous acknowledgements against a real store.

use std::fmt;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use async_trait::async_trait;
use futures::stream::BoxStream;
use object_store::path::Path;
use object_store::{
    CopyOptions, GetOptions, GetResult, ListResult, MultipartUpload, ObjectMeta, ObjectStore,
    PutMultipartOptions, PutOptions, PutPayload, PutResult, Result,
};

/// How a failing write behaves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailMode {
    /// The write does not happen and an error is returned.
    Refuse,
    /// The write lands, but the caller is told it failed.
    LandThenError,
}

#[derive(Debug)]
pub struct FlakyStore {
    inner: Arc<dyn ObjectStore>,
    /// Only writes whose path contains this fragment can fail.
    pub path_fragment: String,
    /// How many of the next matching writes fail.
    pub failures_left: AtomicUsize,
    pub mode: FailMode,
    pub matching_writes: AtomicUsize,
}

impl FlakyStore {
    pub fn new(
        inner: Arc<dyn ObjectStore>,
        path_fragment: &str,
        failures: usize,
        mode: FailMode,
    ) -> Self {
        Self {
            inner,
            path_fragment: path_fragment.to_string(),
            failures_left: AtomicUsize::new(failures),
            mode,
            matching_writes: AtomicUsize::new(0),
        }
    }

    pub fn arm(&self, failures: usize) {
        self.failures_left.store(failures, Ordering::SeqCst);
    }

    fn should_fail(&self, location: &Path) -> bool {
        if !location.as_ref().contains(&self.path_fragment) {
            return false;
        }
        self.matching_writes.fetch_add(1, Ordering::SeqCst);
        self.failures_left
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
            .is_ok()
    }
}

impl fmt::Display for FlakyStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "FlakyStore({})", self.inner)
    }
}

fn injected() -> object_store::Error {
    object_store::Error::Generic {
        store: "flaky",
        source: "injected write failure".into(),
    }
}

#[async_trait]
impl ObjectStore for FlakyStore {
    async fn put_opts(
        &self,
        location: &Path,
        payload: PutPayload,
        opts: PutOptions,
    ) -> Result<PutResult> {
        if self.should_fail(location) {
            if self.mode == FailMode::LandThenError {
                self.inner.put_opts(location, payload, opts).await?;
            }
            return Err(injected());
        }
        self.inner.put_opts(location, payload, opts).await
    }

    async fn put_multipart_opts(
        &self,
        location: &Path,
        opts: PutMultipartOptions,
    ) -> Result<Box<dyn MultipartUpload>> {
        self.inner.put_multipart_opts(location, opts).await
    }

    async fn get_opts(&self, location: &Path, options: GetOptions) -> Result<GetResult> {
        self.inner.get_opts(location, options).await
    }

    fn delete_stream(
        &self,
        locations: BoxStream<'static, Result<Path>>,
    ) -> BoxStream<'static, Result<Path>> {
        self.inner.delete_stream(locations)
    }

    fn list(&self, prefix: Option<&Path>) -> BoxStream<'static, Result<ObjectMeta>> {
        self.inner.list(prefix)
    }

    async fn list_with_delimiter(&self, prefix: Option<&Path>) -> Result<ListResult> {
        self.inner.list_with_delimiter(prefix).await
    }

    async fn copy_opts(&self, from: &Path, to: &Path, options: CopyOptions) -> Result<()> {
        self.inner.copy_opts(from, to, options).await
    }
}

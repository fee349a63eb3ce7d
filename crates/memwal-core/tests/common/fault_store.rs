//! An `ObjectStore` wrapper that injects faults into a real store: refused
//! or ambiguous writes, random errors and latency on chosen operations and
//! paths, and a crash point after which the store never answers again (what
//! a killed process looks like from the outside).

use std::fmt;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use futures::stream::BoxStream;
use futures::StreamExt;
use object_store::path::Path;
use object_store::{
    CopyOptions, GetOptions, GetResult, ListResult, MultipartUpload, ObjectMeta, ObjectStore,
    PutMultipartOptions, PutOptions, PutPayload, PutResult, Result,
};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

/// How a failing write behaves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailMode {
    /// The write does not happen and an error is returned.
    Refuse,
    /// The write lands, but the caller is told it failed.
    LandThenError,
}

/// The kinds of store call a random fault can hit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    Put,
    Get,
    List,
    Delete,
    Copy,
}

/// Random faults: each matching call fails with `error_rate` probability
/// and waits up to `max_latency` (plus `write_latency` for puts).
#[derive(Debug, Clone)]
pub struct RandomFaults {
    pub ops: Vec<Op>,
    /// Only paths containing this fragment are hit; empty means all.
    pub path_fragment: String,
    pub error_rate: f64,
    /// Of the failing puts, the share that land before the error.
    pub land_then_error_rate: f64,
    pub max_latency: Duration,
    pub write_latency: Duration,
    pub seed: u64,
}

impl RandomFaults {
    /// Errors on `rate` of every call, half of the failing puts landing.
    pub fn everywhere(rate: f64, seed: u64) -> Self {
        Self {
            ops: vec![Op::Put, Op::Get, Op::List, Op::Delete, Op::Copy],
            path_fragment: String::new(),
            error_rate: rate,
            land_then_error_rate: 0.5,
            max_latency: Duration::from_millis(1),
            write_latency: Duration::ZERO,
            seed,
        }
    }
}

/// What happens to one call.
enum Verdict {
    Pass,
    Fail { land: bool },
}

#[derive(Debug)]
struct Random {
    faults: RandomFaults,
    rng: StdRng,
}

pub struct FaultStore {
    inner: Arc<dyn ObjectStore>,
    /// Writes whose path contains this fragment are subject to `arm`.
    pub path_fragment: String,
    /// How many of the next matching writes fail.
    pub failures_left: AtomicUsize,
    pub mode: FailMode,
    pub matching_writes: AtomicUsize,
    random: Mutex<Option<Random>>,
    /// Every write that reached the inner store (puts, deletes, copies).
    writes: AtomicUsize,
    /// The store dies right after this many writes have landed.
    crash_after: AtomicUsize,
    dead: AtomicBool,
    died: tokio::sync::Notify,
    /// The kind of I/O error injected failures carry.
    error_kind: Mutex<std::io::ErrorKind>,
    pub injected: AtomicUsize,
    /// Run once, before the first read or listing under the fragment.
    read_hook: Mutex<Option<(String, ReadHook)>>,
    /// Each run once, before the first put under its fragment.
    put_hooks: Mutex<Vec<(String, ReadHook)>>,
}

/// Work a test slips in between two steps of the code under test.
pub type ReadHook = Box<dyn FnOnce() -> futures::future::BoxFuture<'static, ()> + Send>;

impl fmt::Debug for FaultStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FaultStore")
            .field("inner", &self.inner.to_string())
            .field("injected", &self.injected)
            .finish()
    }
}

impl FaultStore {
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
            random: Mutex::new(None),
            writes: AtomicUsize::new(0),
            crash_after: AtomicUsize::new(usize::MAX),
            dead: AtomicBool::new(false),
            died: tokio::sync::Notify::new(),
            error_kind: Mutex::new(std::io::ErrorKind::Other),
            injected: AtomicUsize::new(0),
            read_hook: Mutex::new(None),
            put_hooks: Mutex::new(Vec::new()),
        }
    }

    /// Run `hook` (once) just before the first read or listing of a path
    /// containing `fragment`, to interleave another writer at an exact point.
    pub fn before_first_read(&self, fragment: &str, hook: ReadHook) {
        *self.read_hook.lock().unwrap() = Some((fragment.to_string(), hook));
    }

    /// Run `hook` (once) just before the first put of a path containing
    /// `fragment`; several hooks with different fragments can wait.
    pub fn before_first_put(&self, fragment: &str, hook: ReadHook) {
        self.put_hooks
            .lock()
            .unwrap()
            .push((fragment.to_string(), hook));
    }

    /// A wrapper that does nothing until told to.
    pub fn passthrough(inner: Arc<dyn ObjectStore>) -> Self {
        Self::new(inner, "", 0, FailMode::Refuse)
    }

    pub fn inner(&self) -> Arc<dyn ObjectStore> {
        self.inner.clone()
    }

    /// Make the next `failures` writes under `path_fragment` fail.
    pub fn arm(&self, failures: usize) {
        self.failures_left.store(failures, Ordering::SeqCst);
    }

    /// Start (`Some`) or stop (`None`) random faults.
    pub fn set_random(&self, faults: Option<RandomFaults>) {
        *self.random.lock().unwrap() = faults.map(|faults| Random {
            rng: StdRng::seed_from_u64(faults.seed),
            faults,
        });
    }

    /// Injected failures carry an I/O error of this kind (e.g. `StorageFull`).
    pub fn set_error_kind(&self, kind: std::io::ErrorKind) {
        *self.error_kind.lock().unwrap() = kind;
    }

    /// After the `n`th write lands, no call ever returns again.
    pub fn crash_after_writes(&self, n: usize) {
        self.crash_after.store(n, Ordering::SeqCst);
    }

    pub fn writes(&self) -> usize {
        self.writes.load(Ordering::SeqCst)
    }

    pub fn is_dead(&self) -> bool {
        self.dead.load(Ordering::SeqCst)
    }

    /// Resolves once the crash point has been reached.
    pub async fn wait_dead(&self) {
        let notified = self.died.notified();
        if self.is_dead() {
            return;
        }
        notified.await;
    }

    fn injected_error(&self) -> object_store::Error {
        self.injected.fetch_add(1, Ordering::SeqCst);
        let kind = *self.error_kind.lock().unwrap();
        object_store::Error::Generic {
            store: "fault",
            source: Box::new(std::io::Error::new(kind, "injected store fault")),
        }
    }

    fn armed_failure(&self, location: &Path) -> bool {
        if !location.as_ref().contains(&self.path_fragment) {
            return false;
        }
        self.matching_writes.fetch_add(1, Ordering::SeqCst);
        self.failures_left
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
            .is_ok()
    }

    /// Roll the dice for one call; returns the verdict and the delay.
    fn roll(&self, op: Op, location: Option<&Path>) -> (Verdict, Duration) {
        let mut guard = self.random.lock().unwrap();
        let Some(random) = guard.as_mut() else {
            return (Verdict::Pass, Duration::ZERO);
        };
        let faults = &random.faults;
        let path_matches = faults.path_fragment.is_empty()
            || location.is_some_and(|l| l.as_ref().contains(&faults.path_fragment));
        if !faults.ops.contains(&op) || !path_matches {
            return (Verdict::Pass, Duration::ZERO);
        }
        let mut delay = if faults.max_latency.is_zero() {
            Duration::ZERO
        } else {
            random.rng.random_range(Duration::ZERO..=faults.max_latency)
        };
        if op == Op::Put {
            delay += faults.write_latency;
        }
        let verdict = if random.rng.random_bool(faults.error_rate) {
            Verdict::Fail {
                land: random.rng.random_bool(faults.land_then_error_rate),
            }
        } else {
            Verdict::Pass
        };
        (verdict, delay)
    }

    /// The read hook, if `location` is the first read it waits for.
    fn take_hook(&self, location: Option<&Path>) -> Option<ReadHook> {
        let mut slot = self.read_hook.lock().unwrap();
        let matches = matches!(
            (slot.as_ref(), location),
            (Some((fragment, _)), Some(l)) if l.as_ref().contains(fragment.as_str())
        );
        if matches {
            slot.take().map(|(_, hook)| hook)
        } else {
            None
        }
    }

    /// Wait forever once dead, like a caller talking to a killed process.
    async fn halt_if_dead(&self) {
        if self.is_dead() {
            futures::future::pending::<()>().await;
        }
    }

    /// Count a landed write; at the crash point, die without answering.
    async fn landed_write(&self) {
        let n = self.writes.fetch_add(1, Ordering::SeqCst) + 1;
        if n >= self.crash_after.load(Ordering::SeqCst) {
            self.dead.store(true, Ordering::SeqCst);
            self.died.notify_waiters();
            futures::future::pending::<()>().await;
        }
    }

    /// The common path of every call: crash check, dice, delay.
    async fn enter(&self, op: Op, location: Option<&Path>) -> Verdict {
        self.halt_if_dead().await;
        let (verdict, delay) = self.roll(op, location);
        if !delay.is_zero() {
            tokio::time::sleep(delay).await;
        }
        self.halt_if_dead().await;
        verdict
    }
}

impl fmt::Display for FaultStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "FaultStore({})", self.inner)
    }
}

#[async_trait]
impl ObjectStore for FaultStore {
    async fn put_opts(
        &self,
        location: &Path,
        payload: PutPayload,
        opts: PutOptions,
    ) -> Result<PutResult> {
        let hook = {
            let mut hooks = self.put_hooks.lock().unwrap();
            hooks
                .iter()
                .position(|(fragment, _)| location.as_ref().contains(fragment.as_str()))
                .map(|i| hooks.remove(i).1)
        };
        if let Some(hook) = hook {
            hook().await;
        }
        let verdict = self.enter(Op::Put, Some(location)).await;
        let land = match verdict {
            Verdict::Fail { land } => Some(land),
            Verdict::Pass if self.armed_failure(location) => {
                Some(self.mode == FailMode::LandThenError)
            }
            Verdict::Pass => None,
        };
        match land {
            Some(false) => Err(self.injected_error()),
            Some(true) => {
                self.inner.put_opts(location, payload, opts).await?;
                self.landed_write().await;
                Err(self.injected_error())
            }
            None => {
                let result = self.inner.put_opts(location, payload, opts).await;
                if result.is_ok() {
                    self.landed_write().await;
                }
                result
            }
        }
    }

    async fn put_multipart_opts(
        &self,
        location: &Path,
        opts: PutMultipartOptions,
    ) -> Result<Box<dyn MultipartUpload>> {
        // memwal never uploads in parts; refuse loudly if that changes.
        let _ = (location, opts);
        Err(object_store::Error::NotImplemented {
            operation: "multipart upload through FaultStore".into(),
            implementer: "FaultStore".into(),
        })
    }

    async fn get_opts(&self, location: &Path, options: GetOptions) -> Result<GetResult> {
        if let Some(hook) = self.take_hook(Some(location)) {
            hook().await;
        }
        if let Verdict::Fail { .. } = self.enter(Op::Get, Some(location)).await {
            return Err(self.injected_error());
        }
        self.inner.get_opts(location, options).await
    }

    fn delete_stream(
        &self,
        locations: BoxStream<'static, Result<Path>>,
    ) -> BoxStream<'static, Result<Path>> {
        if self.is_dead() {
            return futures::stream::pending().boxed();
        }
        if let (Verdict::Fail { .. }, _) = self.roll(Op::Delete, None) {
            let err = self.injected_error();
            return futures::stream::once(async move { Err(err) }).boxed();
        }
        self.writes.fetch_add(1, Ordering::SeqCst);
        self.inner.delete_stream(locations)
    }

    fn list(&self, prefix: Option<&Path>) -> BoxStream<'static, Result<ObjectMeta>> {
        if self.is_dead() {
            return futures::stream::pending().boxed();
        }
        if let Some(hook) = self.take_hook(prefix) {
            // List only after the hook ran, as if it had happened just before.
            let (inner, prefix) = (self.inner.clone(), prefix.cloned());
            return futures::stream::once(async move {
                hook().await;
                inner.list(prefix.as_ref())
            })
            .flatten()
            .boxed();
        }
        let (verdict, delay) = self.roll(Op::List, prefix);
        if let Verdict::Fail { .. } = verdict {
            let err = self.injected_error();
            return futures::stream::once(async move { Err(err) }).boxed();
        }
        let inner = self.inner.list(prefix);
        if delay.is_zero() {
            return inner;
        }
        futures::stream::once(async move {
            tokio::time::sleep(delay).await;
            inner
        })
        .flatten()
        .boxed()
    }

    async fn list_with_delimiter(&self, prefix: Option<&Path>) -> Result<ListResult> {
        if let Some(hook) = self.take_hook(prefix) {
            hook().await;
        }
        if let Verdict::Fail { .. } = self.enter(Op::List, prefix).await {
            return Err(self.injected_error());
        }
        self.inner.list_with_delimiter(prefix).await
    }

    async fn copy_opts(&self, from: &Path, to: &Path, options: CopyOptions) -> Result<()> {
        if let Verdict::Fail { .. } = self.enter(Op::Copy, Some(to)).await {
            return Err(self.injected_error());
        }
        self.inner.copy_opts(from, to, options).await?;
        self.landed_write().await;
        Ok(())
    }
}

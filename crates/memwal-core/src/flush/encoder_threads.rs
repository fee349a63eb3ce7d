//! Parquet encoding on a few long-lived threads of its own.
//!
//! An encode allocates and frees many page-sized buffers. The allocator
//! keeps what a thread frees for that thread to reuse, for a while, so where
//! the encode runs decides how much memory stays resident: on tokio's
//! blocking pool, whose threads each took turns at encoding (and at the
//! store's file writes), every one of them kept an encoder's working set,
//! about 70 MiB more in a sustained ingest. A fixed set of threads reuses
//! the same memory encode after encode.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::mpsc::{channel, Receiver, Sender};
use std::sync::{Arc, Mutex, OnceLock};

use crate::error::{Error, Result};

type Job = Box<dyn FnOnce() + Send>;

/// The pipelined flush encodes at most two generations of a writer at
/// once; more threads only help several writers flushing together.
fn thread_count() -> usize {
    std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(2)
        .clamp(2, 8)
}

fn queue() -> Result<&'static Sender<Job>> {
    static QUEUE: OnceLock<std::result::Result<Sender<Job>, String>> = OnceLock::new();
    QUEUE
        .get_or_init(|| {
            let (sender, receiver) = channel::<Job>();
            let receiver = Arc::new(Mutex::new(receiver));
            for i in 0..thread_count() {
                let receiver = receiver.clone();
                std::thread::Builder::new()
                    .name(format!("memwal-encode-{i}"))
                    .spawn(move || work(&receiver))
                    .map_err(|e| format!("Cannot start a Parquet encoder thread: {e}"))?;
            }
            Ok(sender)
        })
        .as_ref()
        .map_err(|e| Error::internal(e.clone()))
}

/// Run jobs until the process ends (the sender lives in a static).
fn work(jobs: &Mutex<Receiver<Job>>) {
    loop {
        let job = match jobs.lock() {
            Ok(receiver) => receiver.recv(),
            Err(poisoned) => poisoned.into_inner().recv(),
        };
        match job {
            Ok(job) => job(),
            Err(_) => return,
        }
    }
}

/// Run `encode` on an encoder thread and wait for its result without
/// blocking the caller's runtime. A panic in `encode` becomes an
/// `INTERNAL` error and leaves the thread usable.
pub async fn run<T: Send + 'static>(
    encode: impl FnOnce() -> Result<T> + Send + 'static,
) -> Result<T> {
    let (done, result) = tokio::sync::oneshot::channel();
    let job: Job = Box::new(move || {
        let outcome = catch_unwind(AssertUnwindSafe(encode)).unwrap_or_else(|panic| {
            let message = panic
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| panic.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "unknown panic".to_string());
            Err(Error::internal(format!(
                "Parquet encoding panicked: {message}"
            )))
        });
        let _ = done.send(outcome);
    });
    queue()?
        .send(job)
        .map_err(|_| Error::internal("Parquet encoder threads are gone"))?;
    result
        .await
        .map_err(|_| Error::internal("A Parquet encoder thread dropped its job"))?
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn results_come_back_from_the_encoder_threads() {
        let name = run(|| Ok(std::thread::current().name().map(str::to_string)))
            .await
            .unwrap();
        assert!(name.unwrap().starts_with("memwal-encode-"));
        let err = run(|| -> Result<()> { Err(Error::io("disk full")) })
            .await
            .unwrap_err();
        assert!(err.to_string().contains("disk full"), "{err}");
    }

    #[tokio::test]
    async fn a_panicking_encode_is_an_error_and_the_threads_keep_working() {
        let err = run(|| -> Result<()> { panic!("bad page") })
            .await
            .unwrap_err();
        assert!(err.to_string().contains("bad page"), "{err}");
        let jobs: Vec<_> = (0..3 * thread_count())
            .map(|i| run(move || Ok(i * 2)))
            .collect();
        let mut doubled = Vec::new();
        for job in jobs {
            doubled.push(job.await.unwrap());
        }
        assert_eq!(
            doubled,
            (0..3 * thread_count()).map(|i| i * 2).collect::<Vec<_>>()
        );
    }
}

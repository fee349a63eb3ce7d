//! `MEMWAL_LOG=info` (or any tracing filter) prints the core's logs to stderr.
//!
//! Every line passes through `redact_userinfo` first: object_store logs
//! request URLs (retries, at INFO), and an endpoint may carry
//! `user:password@`.

use std::io::Write;

#[napi_derive::module_init]
fn init_logging() {
    let Ok(filter) = std::env::var("MEMWAL_LOG") else {
        return;
    };
    let filter = tracing_subscriber::EnvFilter::try_new(&filter)
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(|| RedactingStderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_target(false)
        .try_init();
}

/// Stderr, minus credentials in URLs. The formatter hands each event over
/// in one write, so a URL is never split between two calls.
struct RedactingStderr;

impl Write for RedactingStderr {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let text = String::from_utf8_lossy(buf);
        std::io::stderr().write_all(memwal_core::redact::redact_userinfo(&text).as_bytes())?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        std::io::stderr().flush()
    }
}

//! `MEMWAL_LOG=info` (or any tracing filter) prints the core's logs to stderr.

#[napi_derive::module_init]
fn init_logging() {
    let Ok(filter) = std::env::var("MEMWAL_LOG") else {
        return;
    };
    let filter = tracing_subscriber::EnvFilter::try_new(&filter)
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_target(false)
        .try_init();
}

//! The async runtime a command runs on, and the shutdown signal SIGTERM and SIGINT trigger.

use anyhow::Context as _;
use opsync::shutdown::Shutdown;

/// A multi-threaded runtime with I/O and timers.
pub fn new() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")
}

/// A shutdown signal that SIGTERM or SIGINT triggers; a second one exits at once. Call inside
/// the runtime.
pub fn on_signals() -> Shutdown {
    let (trigger, shutdown) = opsync::shutdown::channel();
    tokio::spawn(async move {
        if trigger.on_signals().await.is_err() {
            return;
        }
        if trigger.on_signals().await.is_ok() {
            eprintln!("second signal: exiting now");
            std::process::exit(130);
        }
    });
    shutdown
}

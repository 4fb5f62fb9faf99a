//! Logs go to stderr, as text for people or JSON for collectors, at the configured level.

use std::io::IsTerminal as _;

use anyhow::Context as _;
use opsync::config::{LogFormat, LogSettings};
use tracing_subscriber::EnvFilter;

pub fn init(settings: &LogSettings) -> anyhow::Result<()> {
    let filter = EnvFilter::builder()
        .parse(settings.level.as_str())
        .with_context(|| format!("log.level {:?}", settings.level.as_str()))?;
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal());
    let result = match settings.format {
        LogFormat::Text => builder.try_init(),
        LogFormat::Json => builder.json().try_init(),
    };
    result.map_err(|e| anyhow::anyhow!("setting up logging: {e}"))
}

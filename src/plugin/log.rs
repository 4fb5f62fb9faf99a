//! The `log` capability: a plugin's log lines (and its stdout/stderr) go to `tracing` under the
//! plugin's name, with revealed secrets redacted, messages cut, and a byte and line budget per
//! call; a plugin that keeps logging far past its budget is stopped.

use std::sync::Arc;

use crate::plugin::limits::{LOG_FLOOD_FACTOR, LOG_MESSAGE_MAX, Limits};
use crate::plugin::secrets::Secrets;
use crate::plugin::text::sanitize;

/// Severity of a plugin log line, independent of the ABI version.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Level {
    Trace,
    Debug,
    Info,
    Warn,
    Error,
}

/// The per-call log budget of one plugin.
pub struct LogBudget {
    plugin: Arc<str>,
    bytes_left: usize,
    lines_left: usize,
    flood_bytes: usize,
    flood_lines: usize,
    attempted_bytes: usize,
    attempted_lines: usize,
    /// Lines dropped because the budget was spent.
    pub dropped: usize,
    /// Set once the plugin passed the flood threshold; the call is then stopped.
    pub flooded: bool,
}

/// A plugin logged far past its budget.
#[derive(Debug, thiserror::Error)]
#[error("log flood: the plugin tried to log {bytes} bytes in {lines} lines, past its budget")]
pub struct LogFlood {
    pub bytes: usize,
    pub lines: usize,
}

impl LogBudget {
    pub fn new(plugin: Arc<str>, limits: &Limits) -> Self {
        Self {
            plugin,
            bytes_left: limits.log_bytes_per_call,
            lines_left: limits.log_lines_per_call,
            flood_bytes: limits.log_bytes_per_call.saturating_mul(LOG_FLOOD_FACTOR),
            flood_lines: limits.log_lines_per_call.saturating_mul(LOG_FLOOD_FACTOR),
            attempted_bytes: 0,
            attempted_lines: 0,
            dropped: 0,
            flooded: false,
        }
    }

    /// Emits one line, redacted and cut, if the budget allows; errors once the plugin floods.
    pub fn log(&mut self, secrets: &Secrets, level: Level, message: &str) -> Result<(), LogFlood> {
        self.attempted_bytes = self.attempted_bytes.saturating_add(message.len());
        self.attempted_lines += 1;
        if self.attempted_bytes > self.flood_bytes || self.attempted_lines > self.flood_lines {
            self.flooded = true;
            return Err(LogFlood {
                bytes: self.attempted_bytes,
                lines: self.attempted_lines,
            });
        }
        if self.lines_left == 0 || self.bytes_left < message.len() {
            self.dropped += 1;
            return Ok(());
        }
        self.lines_left -= 1;
        self.bytes_left -= message.len();
        let message = sanitize(secrets, message, LOG_MESSAGE_MAX);
        let plugin = &*self.plugin;
        match level {
            Level::Trace => tracing::trace!(plugin, "{message}"),
            Level::Debug => tracing::debug!(plugin, "{message}"),
            Level::Info => tracing::info!(plugin, "{message}"),
            Level::Warn => tracing::warn!(plugin, "{message}"),
            Level::Error => tracing::error!(plugin, "{message}"),
        }
        Ok(())
    }

    /// Reports and counts the bytes of `stream` (stdout or stderr) dropped past its cap of `cap`.
    pub fn output_dropped(&self, stream: &'static str, dropped: u64, cap: usize) {
        if dropped == 0 {
            return;
        }
        metrics::counter!(
            crate::telemetry::names::PLUGIN_OUTPUT_DROPPED_BYTES_TOTAL,
            "plugin" => self.plugin.to_string(),
            "stream" => stream,
        )
        .increment(dropped);
        tracing::warn!(
            plugin = %self.plugin,
            stream,
            dropped_bytes = dropped,
            cap_bytes = cap,
            "plugin output dropped: past the cap of the call"
        );
    }

    /// Ends the call: reports and counts the lines that were dropped.
    pub fn finish(&mut self) {
        if self.dropped > 0 {
            metrics::counter!("opsync_plugin_log_dropped_total", "plugin" => self.plugin.to_string())
                .increment(self.dropped as u64);
            tracing::warn!(
                plugin = %self.plugin,
                dropped = self.dropped,
                "plugin log lines dropped: budget of the call spent"
            );
            self.dropped = 0;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn budget(bytes: usize, lines: usize) -> LogBudget {
        LogBudget::new(
            "p".into(),
            &Limits {
                log_bytes_per_call: bytes,
                log_lines_per_call: lines,
                ..Limits::default()
            },
        )
    }

    #[test]
    fn lines_past_the_budget_are_dropped_then_a_flood_is_stopped() {
        let secrets = Secrets::new("p".into(), &Limits::default());
        let mut b = budget(100, 2);
        assert!(b.log(&secrets, Level::Info, "one").is_ok());
        assert!(b.log(&secrets, Level::Info, "two").is_ok());
        assert!(b.log(&secrets, Level::Info, "three").is_ok());
        assert_eq!(b.dropped, 1);
        let mut result = Ok(());
        for _ in 0..10 {
            result = b.log(&secrets, Level::Info, "again");
        }
        assert!(result.is_err());
        assert!(b.flooded);
    }
}

//! The supply-chain check at start: a third-party plugin whose component no longer matches its
//! pinned sha256 stops `run` and `once` before anything runs, unless `--allow-unusable-plugins`
//! lets the daemon start with that plugin's work waiting.

use crate::app::error::AppError;
use crate::config::{Settings, SourceSetting};
use crate::plugin::{PluginError, read_pinned};

/// Every configured plugin whose component file does not match its pin.
pub fn pin_mismatches(settings: &Settings) -> Vec<PluginError> {
    settings
        .plugins
        .iter()
        .filter_map(|p| match &p.source {
            SourceSetting::File { path, sha256 } => read_pinned(&p.name, path, sha256).err(),
            SourceSetting::Builtin { .. } => None,
        })
        .filter(|e| matches!(e, PluginError::HashMismatch { .. }))
        .collect()
}

/// Refuses to start on a pin mismatch, unless `allow_unusable` (then each is logged, and the
/// plugin is left unusable when it is loaded).
pub fn refuse_pin_mismatches(settings: &Settings, allow_unusable: bool) -> Result<(), AppError> {
    let mismatches = pin_mismatches(settings);
    if mismatches.is_empty() {
        return Ok(());
    }
    if allow_unusable {
        for e in &mismatches {
            tracing::error!(error = %e, "plugin pin mismatch; starting anyway (--allow-unusable-plugins)");
        }
        return Ok(());
    }
    let reasons: Vec<String> = mismatches.iter().map(ToString::to_string).collect();
    Err(AppError::PinMismatch(reasons.join("; ")))
}

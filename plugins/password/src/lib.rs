//! The built-in `password` rotator: rotates a value that lives only in 1Password (or that another
//! system reads from a destination). `create` returns no value, so the host has Connect generate
//! the pending value from the job's `recipe`; `set` and `test` have no target to touch and
//! succeed; `finish` has nothing older to retire. It takes no config keys.

use opsync_rotator_kit::config;
use opsync_rotator_kit::log::{Level, log};
use opsync_rotator_kit::{Guest, NewValue, PluginError, Rotation, export_rotator};

struct Password;

/// Rejects any config key: this plugin has none.
fn check_config() -> Result<(), PluginError> {
    let keys = config::keys();
    if keys.is_empty() {
        Ok(())
    } else {
        Err(PluginError::Misconfigured(format!(
            "the password rotator takes no config keys, got: {} (the recipe is the job's `recipe`)",
            keys.join(", ")
        )))
    }
}

impl Guest for Password {
    fn validate() -> Result<(), PluginError> {
        check_config()
    }

    fn create(rotation: Rotation) -> Result<Vec<NewValue>, PluginError> {
        check_config()?;
        log(
            Level::Debug,
            &format!(
                "{}: no value of its own; the host generates it from the job's recipe",
                rotation.item.title
            ),
        );
        Ok(Vec::new())
    }

    fn set(_rotation: Rotation) -> Result<(), PluginError> {
        Ok(())
    }

    fn test(rotation: Rotation) -> Result<(), PluginError> {
        // Nothing to log in to; only check that the host handed a non-empty value over.
        match rotation.pending.iter().find(|v| v.value.len() == 0) {
            Some(v) => Err(PluginError::Permanent(format!(
                "the pending value of {} is empty",
                v.field
            ))),
            None => Ok(()),
        }
    }

    fn finish(_rotation: Rotation) -> Result<(), PluginError> {
        Ok(())
    }
}

export_rotator!(Password);

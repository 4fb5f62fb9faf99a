//! Test rotator: makes a new value in `create` when config says so, and checks that `set`, `test`
//! and `finish` see the pending values.
//!
//! With config `target = "/dir"` (a granted directory) it behaves like a real target: `set`
//! writes the pending password to `/dir/password`, `test` checks the file holds it, `finish`
//! appends the rotation's key to `/dir/finished`. `fail = "set"` or `fail = "test"` makes that
//! step fail permanently; a rollback (`set` with a key ending in `:rollback`) always succeeds.

wit_bindgen::generate!({
    world: "rotator",
    path: "../../../wit/0.1.0",
    generate_all,
});

use opsync::plugin::config;
use opsync::plugin::log::{Level, log};
use opsync::plugin::secrets::Secret;

struct TestRotator;

fn pending_password(rotation: &Rotation) -> Result<String, PluginError> {
    rotation
        .pending
        .iter()
        .find(|v| v.field == "password")
        .map(|v| v.value.reveal())
        .ok_or_else(|| PluginError::Permanent("no pending password".into()))
}

fn target_file(name: &str) -> Option<String> {
    config::get("target").map(|dir| format!("{dir}/{name}"))
}

fn io(e: std::io::Error) -> PluginError {
    PluginError::Retryable(format!("target file: {e}"))
}

impl Guest for TestRotator {
    fn validate() -> Result<(), PluginError> {
        Ok(())
    }

    fn create(rotation: Rotation) -> Result<Vec<NewValue>, PluginError> {
        if !rotation.pending.is_empty() {
            return Err(PluginError::Permanent("create got pending values".into()));
        }
        match config::get("make").as_deref() {
            Some("yes") => Ok(vec![NewValue {
                field: "password".into(),
                value: Secret::new("new password", "made-by-the-plugin"),
            }]),
            _ => Ok(Vec::new()),
        }
    }

    fn set(rotation: Rotation) -> Result<(), PluginError> {
        let new = pending_password(&rotation)?;
        let rollback = rotation.idempotency_key.ends_with(":rollback");
        let current = rotation
            .item
            .fields
            .iter()
            .find(|f| f.label == "password")
            .and_then(|f| f.value.as_ref().map(|v| v.reveal()))
            .unwrap_or_default();
        log(Level::Info, &format!("replacing {current} with {new}"));
        if !rollback && new == current {
            return Err(PluginError::Permanent(
                "the new value is the current one".into(),
            ));
        }
        if !rollback && config::get("fail").as_deref() == Some("set") {
            return Err(PluginError::Permanent("set refused (fail = set)".into()));
        }
        if let Some(path) = target_file("password") {
            std::fs::write(path, new).map_err(io)?;
        }
        Ok(())
    }

    fn test(rotation: Rotation) -> Result<(), PluginError> {
        let new = pending_password(&rotation)?;
        if config::get("fail").as_deref() == Some("test") {
            return Err(PluginError::Permanent(
                "the new password does not log in (fail = test)".into(),
            ));
        }
        if let Some(path) = target_file("password") {
            let on_target = std::fs::read_to_string(path).map_err(io)?;
            if on_target != new {
                return Err(PluginError::Permanent(
                    "the target holds another password".into(),
                ));
            }
        }
        Ok(())
    }

    fn finish(rotation: Rotation) -> Result<(), PluginError> {
        log(
            Level::Info,
            &format!("retired the old value of {}", rotation.item.title),
        );
        if let Some(path) = target_file("finished") {
            let mut done = std::fs::read_to_string(&path).unwrap_or_default();
            if !done.lines().any(|l| l == rotation.idempotency_key) {
                done.push_str(&rotation.idempotency_key);
                done.push('\n');
                std::fs::write(path, done).map_err(io)?;
            }
        }
        Ok(())
    }
}

export!(TestRotator);

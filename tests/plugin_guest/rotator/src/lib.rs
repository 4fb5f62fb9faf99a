//! Test rotator: makes a new value in `create` when config says so, and checks that `set`, `test`
//! and `finish` see the pending values.

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
        let current = rotation
            .item
            .fields
            .iter()
            .find(|f| f.label == "password")
            .and_then(|f| f.value.as_ref().map(|v| v.reveal()))
            .unwrap_or_default();
        log(Level::Info, &format!("replacing {current} with {new}"));
        if new == current {
            return Err(PluginError::Permanent(
                "the new value is the current one".into(),
            ));
        }
        Ok(())
    }

    fn test(rotation: Rotation) -> Result<(), PluginError> {
        pending_password(&rotation).map(drop)
    }

    fn finish(rotation: Rotation) -> Result<(), PluginError> {
        log(
            Level::Info,
            &format!("retired the old value of {}", rotation.item.title),
        );
        Ok(())
    }
}

export!(TestRotator);

//! The built-in `file` destination: writes items as dotenv, JSON or a raw field into the directory
//! that the operator granted, one file per item or one combined file, atomically.

mod render;
mod settings;
mod write;

wit_bindgen::generate!({
    world: "destination",
    path: "../../wit/0.1.0",
    generate_all,
});

use opsync::plugin::log::{Level, log};
use opsync::plugin::types::ChangeKind;
use settings::{Layout, OnDelete, Settings};

struct FilePlugin;

impl Guest for FilePlugin {
    fn validate() -> Result<(), PluginError> {
        Settings::load().map(|_| ())
    }

    fn deliver(event: ItemEvent) -> Result<Receipt, PluginError> {
        let settings = Settings::load()?;
        let name = settings.file_name(&event)?;
        let path = settings.path_of(&name);
        match (event.kind, settings.layout) {
            (ChangeKind::Deleted, _) if settings.on_delete == OnDelete::Keep => {
                log(Level::Info, &format!("kept {path}: on-delete is keep"));
                Ok(unchanged(path))
            }
            (ChangeKind::Deleted, Layout::PerItem) => {
                let removed = write::remove(&path)?;
                Ok(receipt(path, !removed))
            }
            (ChangeKind::Deleted, Layout::Combined) => {
                let changed = write::update_combined(&settings, &path, &event, None)?;
                Ok(receipt(path, !changed))
            }
            (_, Layout::PerItem) => {
                let content = render::item(&settings, &event)?;
                let changed = write::replace_if_different(&path, content.as_bytes())?;
                Ok(receipt(path, !changed))
            }
            (_, Layout::Combined) => {
                let entry = render::entry(&settings, &event)?;
                let changed = write::update_combined(&settings, &path, &event, Some(entry))?;
                Ok(receipt(path, !changed))
            }
        }
    }
}

fn unchanged(location: String) -> Receipt {
    receipt(location, true)
}

fn receipt(location: String, unchanged: bool) -> Receipt {
    Receipt {
        location,
        destination_version: None,
        unchanged,
    }
}

export!(FilePlugin);

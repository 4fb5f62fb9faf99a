//! The built-in `file` destination: writes items as dotenv, JSON or a raw field into the directory
//! that the operator granted, one file per item or one combined file, atomically.

mod dir;
mod render;
mod settings;
mod write;

use opsync_destination_kit::log::{Level, log};
use opsync_destination_kit::{ChangeKind, Guest, ItemEvent, PluginError, Receipt};
use settings::{Layout, OnDelete, Settings};

struct FilePlugin;

impl Guest for FilePlugin {
    fn validate() -> Result<(), PluginError> {
        Settings::load().map(|_| ())
    }

    fn deliver(event: ItemEvent) -> Result<Receipt, PluginError> {
        let settings = Settings::load()?;
        let Some(name) = settings.file_name(&event)? else {
            log(
                Level::Info,
                &format!(
                    "not deleting anything for item {}: its file name does not follow its title",
                    event.item.id
                ),
            );
            return Ok(unchanged(String::new()));
        };
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
                let changed =
                    write::replace_if_different(&path, content.as_bytes(), settings.fsync)?;
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
    opsync_destination_kit::receipt(location, None, unchanged)
}

opsync_destination_kit::export_destination!(FilePlugin);

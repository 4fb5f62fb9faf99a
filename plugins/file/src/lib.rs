//! The built-in `file` destination: writes items as dotenv, JSON or a raw field into the directory
//! that the operator granted, one file per item or one combined file, atomically. It reads back
//! what it wrote for drift checks: a per-item file whole, an item's entry in a combined file.

mod dir;
mod render;
mod settings;
mod write;

use dir::Dirs;
use opsync_destination_kit::log::{Level, log};
use opsync_destination_kit::{
    ChangeKind, Destination, Found, ItemEvent, ItemRef, PluginError, Receipt, deliver_each,
    fingerprint, receipt_with_fingerprint,
};
use settings::{Layout, OnDelete, Settings};

struct FilePlugin;

/// What one call works with: the config, and the directories it opened so far.
struct Call {
    settings: Settings,
    dirs: Dirs,
}

impl Call {
    fn start() -> Result<Self, PluginError> {
        Ok(Self {
            settings: Settings::load()?,
            dirs: Dirs::default(),
        })
    }
}

impl Destination for FilePlugin {
    fn validate() -> Result<(), PluginError> {
        Settings::load().map(|_| ())
    }

    fn deliver(event: ItemEvent) -> Result<Receipt, PluginError> {
        deliver(&Call::start()?, event)
    }

    /// The batch's items share the config and every directory opened for one of them.
    fn deliver_batch(events: Vec<ItemEvent>) -> Vec<Result<Receipt, PluginError>> {
        deliver_each(events, Call::start, deliver)
    }

    /// The fingerprint of the item's file (per-item layout) or of its entry in the combined file,
    /// at the name its delivery used.
    fn read_back(item: ItemRef) -> Result<Found, PluginError> {
        let settings = Settings::load()?;
        let Some(name) = settings.file_name(&item)? else {
            return Ok(Found::Absent);
        };
        let path = settings.path_of(&name);
        let Some(content) = Dirs::default()
            .existing(&path)?
            .map(|parent| parent.read())
            .transpose()?
            .flatten()
        else {
            return Ok(Found::Absent);
        };
        let stored = match settings.layout {
            Layout::PerItem => Some(content),
            Layout::Combined => write::combined_entry(
                &settings,
                &path,
                &content,
                &item.id,
                &settings.entry_name(&item),
            )?,
        };
        Ok(stored.map_or(Found::Absent, |bytes| {
            Found::Present(fingerprint::digest(&bytes))
        }))
    }
}

fn deliver(call: &Call, event: ItemEvent) -> Result<Receipt, PluginError> {
    let Call { settings, dirs } = call;
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
            let removed = write::remove(dirs, &path)?;
            Ok(receipt(path, !removed))
        }
        (ChangeKind::Deleted, Layout::Combined) => {
            let (changed, _) = write::update_combined(settings, dirs, &path, &event, None)?;
            Ok(receipt(path, !changed))
        }
        (_, Layout::PerItem) => {
            let content = render::item(settings, &event)?;
            let changed =
                write::replace_if_different(dirs, &path, content.as_bytes(), settings.fsync)?;
            Ok(written(path, !changed, content.as_bytes()))
        }
        (_, Layout::Combined) => {
            let entry = render::entry(settings, &event)?;
            let (changed, content) =
                write::update_combined(settings, dirs, &path, &event, Some(entry))?;
            let stored = write::combined_entry(
                settings,
                &path,
                content.as_bytes(),
                &event.item.id,
                &settings.entry_name(&event),
            )?;
            Ok(match stored {
                Some(bytes) => written(path, !changed, &bytes),
                None => receipt(path, !changed),
            })
        }
    }
}

fn unchanged(location: String) -> Receipt {
    receipt(location, true)
}

fn receipt(location: String, unchanged: bool) -> Receipt {
    opsync_destination_kit::receipt(location, None, unchanged)
}

/// The receipt of a write: `stored` is what now holds the item, as `read_back` fingerprints it.
fn written(location: String, unchanged: bool, stored: &[u8]) -> Receipt {
    receipt_with_fingerprint(location, None, unchanged, fingerprint::digest(stored))
}

opsync_destination_kit::export_destination!(FilePlugin);

//! `opsync plan`: a dry run. Per route and destination, what the next cycle would create, update
//! and delete, with key names and masked values. Nothing is written anywhere: the state database
//! is read from a private copy, no plugin is called, Connect is only read. Deletions a route's
//! mass-delete breaker would hold are listed and counted as held, not as deletes.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::app::engine::Engine;
use crate::app::error::AppError;
use crate::config::{Settings, SourceSetting};
use crate::connect::model::Item;
use crate::detect::{Change, PollReport};
use crate::domain::ChangeKind;
use crate::store::Store;

/// Items whose fields are listed per route (each costs one Connect read); past it, key names only.
pub const FIELDS_SHOWN_PER_ROUTE: usize = 50;

/// What a masked value looks like.
pub const MASK: &str = "********";

/// The plan, as text, and whether it would change anything.
#[derive(Debug)]
pub struct Plan {
    pub report: PollReport,
    pub text: String,
    /// Deletions the mass-delete breaker holds (`max_delete_ratio`), one per key and
    /// destination like the plan's other counts; they wait for `--allow-mass-delete`.
    pub held: usize,
}

impl Plan {
    /// Whether there is something to do: keys to create, update or delete, or deletions held
    /// by a route's mass-delete breaker (for which `opsync once` exits 2 too).
    pub fn has_changes(&self) -> bool {
        !self.report.changes.is_empty() || self.held > 0
    }
}

/// Builds the plan.
pub async fn plan(settings: Settings) -> Result<Plan, AppError> {
    // Planning writes nothing: a PostgreSQL state is read as it is; a SQLite file is read
    // from a private copy, so that not even its WAL is touched.
    let snapshot = match settings.state.url {
        Some(_) => None,
        None => Snapshot::of(&settings.state.path)?,
    };
    let store = match &snapshot {
        Some(s) => Store::open(&s.db)?,
        None if settings.state.url.is_some() => settings.state.open()?,
        None => Store::open_in_memory()?,
    };
    let engine = Engine::without_plugins(settings, store)?;
    let report = engine.detector(false).plan().await?;
    let (text, held) = render(&engine, &report).await;
    drop(snapshot);
    Ok(Plan { report, text, held })
}

/// The plugin's own name template (built-ins: config key `name`, or `path` for `vault-kv`), when
/// set: the plugin then names keys its way instead of using the route's key (`opsync.key`).
/// `kubernetes-secret` always does (a Secret's name cannot hold the route key's `/`).
fn own_template<'a>(engine: &'a Engine, plugin: &str) -> Option<&'a str> {
    let settings = engine.settings.plugin(plugin)?;
    let set = ["name", "path"]
        .iter()
        .find_map(|k| settings.config.get(*k).map(String::as_str));
    let always_own = matches!(&settings.source,
        SourceSetting::Builtin { builtin } if builtin == "kubernetes-secret");
    set.or(always_own.then_some("{{title | slug}}"))
}

/// The plan's text, and the number of held deletions (per key and destination).
async fn render(engine: &Engine, report: &PollReport) -> (String, usize) {
    let mut by_route: BTreeMap<&str, Vec<&Change>> = BTreeMap::new();
    for c in &report.changes {
        by_route.entry(c.route.as_str()).or_default().push(c);
    }
    let mut out = String::new();
    let (mut creates, mut updates, mut deletes, mut held_deletes) = (0, 0, 0, 0usize);
    for route in &engine.settings.routes {
        let changes = by_route.remove(route.name.as_str()).unwrap_or_default();
        let held = report.held.iter().find(|h| h.route == route.name);
        let retained = report
            .retained
            .iter()
            .filter(|c| c.route == route.name)
            .count();
        if changes.is_empty() && held.is_none() && retained == 0 {
            continue;
        }
        // Fields (masked) of the first items, read once per item for every destination.
        let mut fields: BTreeMap<&str, Vec<String>> = BTreeMap::new();
        for c in changes
            .iter()
            .filter(|c| c.kind != ChangeKind::Deleted)
            .take(FIELDS_SHOWN_PER_ROUTE)
        {
            let shown = match engine.client.get_item(&c.vault_id, &c.item_id).await {
                Ok(mut item) => {
                    route.shape(&mut item);
                    masked_fields(&item)
                }
                Err(e) => vec![format!("(cannot read the item: {e})")],
            };
            fields.insert(c.item_id.as_str(), shown);
        }
        for dest in &route.destinations {
            out.push_str(&format!("route {} -> {dest}\n", route.name));
            if let Some(own) = own_template(engine, dest) {
                out.push_str(&format!(
                    "  (plugin {dest} names keys with its own template `{own}`, not the route's keys below)\n"
                ));
            }
            for c in &changes {
                let action = Action::of(c);
                let renamed = c
                    .previous_key
                    .as_ref()
                    .map(|old| format!(", renamed from {old}"))
                    .unwrap_or_default();
                out.push_str(&format!(
                    "  {} {} {}  ({} in {}, version {}{renamed})\n",
                    action.sign(),
                    action.verb(),
                    c.key,
                    c.title,
                    c.vault_name,
                    c.version
                ));
                if let Some(f) = fields.get(c.item_id.as_str()) {
                    for line in f {
                        out.push_str(&format!("      {line}\n"));
                    }
                }
            }
            if retained > 0 {
                out.push_str(&format!(
                    "  = {retained} items left the route and stay at the destination (on_delete = \"retain\")\n"
                ));
            }
            if let Some(h) = held {
                out.push_str(&format!(
                    "  ! held: {} deletions of {} keys exceed max_delete_ratio {} (run with --allow-mass-delete)\n",
                    h.deletions.len(),
                    h.total,
                    h.max_ratio
                ));
                for c in &h.deletions {
                    out.push_str(&format!(
                        "    - delete {}  ({} in {})\n",
                        c.key, c.title, c.vault_name
                    ));
                }
            }
        }
        if let Some(h) = held {
            held_deletes += h.deletions.len() * route.destinations.len();
        }
        for c in &changes {
            match Action::of(c) {
                Action::Create => creates += route.destinations.len(),
                Action::Update => updates += route.destinations.len(),
                Action::Delete => deletes += route.destinations.len(),
            }
        }
    }
    for v in &report.incomplete {
        out.push_str(&format!(
            "vault {}: incomplete listing ({}); nothing in it would be deleted\n",
            v.name, v.reason
        ));
    }
    out.push_str(&format!(
        "Plan: {creates} to create, {updates} to update, {deletes} to delete"
    ));
    if held_deletes > 0 {
        out.push_str(&format!(
            ", {held_deletes} held by the mass-delete breaker (run with --allow-mass-delete)"
        ));
    }
    out.push_str(". Nothing was written.\n");
    (out, held_deletes)
}

/// What a change does at the destination.
#[derive(Clone, Copy)]
enum Action {
    Create,
    Update,
    Delete,
}

impl Action {
    /// An update under a new key (a rename) creates that key.
    fn of(c: &Change) -> Self {
        match c.kind {
            ChangeKind::Created => Self::Create,
            ChangeKind::Updated | ChangeKind::Rotated | ChangeKind::Repaired
                if c.previous_key.is_some() =>
            {
                Self::Create
            }
            ChangeKind::Updated | ChangeKind::Rotated | ChangeKind::Repaired => Self::Update,
            ChangeKind::Deleted => Self::Delete,
        }
    }

    fn sign(self) -> &'static str {
        match self {
            Self::Create => "+",
            Self::Update => "~",
            Self::Delete => "-",
        }
    }

    fn verb(self) -> &'static str {
        match self {
            Self::Create => "create",
            Self::Update => "update",
            Self::Delete => "delete",
        }
    }
}

/// `label = ********` for each field the route sends; empty values say so.
fn masked_fields(item: &Item) -> Vec<String> {
    item.fields
        .iter()
        .flatten()
        .map(|f| {
            let name = f
                .label
                .as_deref()
                .filter(|l| !l.is_empty())
                .unwrap_or(&f.id);
            let shown = match f.value.as_ref().map(|v| v.expose().is_empty()) {
                Some(false) => MASK,
                _ => "(empty)",
            };
            format!("{name} = {shown}")
        })
        .collect()
}

/// A private copy of the state database (and its WAL), removed on drop; `None` when there is
/// no database yet.
struct Snapshot {
    dir: PathBuf,
    db: PathBuf,
}

impl Snapshot {
    fn of(path: &Path) -> Result<Option<Self>, AppError> {
        if !path.exists() {
            return Ok(None);
        }
        let dir = std::env::temp_dir().join(format!(
            "opsync-plan-{}-{}",
            std::process::id(),
            rand::random::<u64>()
        ));
        std::fs::create_dir(&dir)
            .map_err(|e| AppError::io(format!("creating {}", dir.display()), e))?;
        let snap = Self {
            db: dir.join("state.db"),
            dir,
        };
        for suffix in ["", "-wal"] {
            let from = PathBuf::from(format!("{}{suffix}", path.display()));
            if from.exists() {
                let to = PathBuf::from(format!("{}{suffix}", snap.db.display()));
                std::fs::copy(&from, &to)
                    .map_err(|e| AppError::io(format!("reading {}", from.display()), e))?;
            }
        }
        Ok(Some(snap))
    }
}

impl Drop for Snapshot {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

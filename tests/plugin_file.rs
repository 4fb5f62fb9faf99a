//! The built-in `file` destination end to end, through the same sandbox as any plugin, against a
//! temporary directory granted to it.

mod plugin_support;

use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use opsync::plugin::{
    ChangeKind, DirGrant, FailureKind, Grants, Limits, Plugin, PluginError, PluginSource,
    PluginSpec,
};
use plugin_support::{config, event, host, item};

fn file_plugin(dir: Option<&Path>, pairs: &[(&str, &str)]) -> Plugin {
    let grants = Grants {
        dirs: dir
            .map(|d| DirGrant {
                host: d.to_path_buf(),
                guest: "/".into(),
                read_only: false,
                flush: true,
            })
            .into_iter()
            .collect(),
        ..Grants::default()
    };
    host()
        .load(PluginSpec {
            name: "to-files".into(),
            source: PluginSource::Builtin("file".into()),
            world: Some(opsync::plugin::World::Destination),
            config: config(pairs),
            limits: Limits::default(),
            grants,
        })
        .expect("the built-in file plugin loads")
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path)
        .expect("metadata")
        .permissions()
        .mode()
        & 0o777
}

#[tokio::test]
async fn dotenv_per_item_is_written_atomically_privately_and_idempotently() {
    let dir = tempfile::tempdir().expect("tempdir");
    let plugin = file_plugin(Some(dir.path()), &[]);
    plugin.validate().await.expect("default config is valid");
    let ev = event(item("db"), ChangeKind::Created);
    let receipt = plugin.deliver(&ev).await.expect("written");
    assert_eq!(receipt.location, "/db.env");
    assert!(!receipt.unchanged);
    let path = dir.path().join("db.env");
    assert_eq!(
        read(&path),
        "USERNAME=\"alice\"\nPASSWORD=\"hunter2-s3cret\"\n"
    );
    assert_eq!(mode(&path), 0o600);
    // Replaying the same version writes nothing.
    let again = plugin.deliver(&ev).await.expect("replayed");
    assert!(again.unchanged);
    // No temp files are left behind.
    let names: Vec<_> = std::fs::read_dir(dir.path())
        .expect("list")
        .map(|e| e.expect("entry").file_name())
        .collect();
    assert_eq!(names, ["db.env"]);
}

#[tokio::test]
async fn json_item_json_and_raw_formats() {
    let dir = tempfile::tempdir().expect("tempdir");
    let json = file_plugin(
        Some(dir.path()),
        &[("format", "json"), ("fields", "password")],
    );
    json.deliver(&event(item("db"), ChangeKind::Updated))
        .await
        .expect("json");
    let value: serde_json::Value =
        serde_json::from_str(&read(&dir.path().join("db.json"))).expect("valid JSON");
    assert_eq!(value, serde_json::json!({ "password": "hunter2-s3cret" }));

    let whole = file_plugin(
        Some(dir.path()),
        &[("format", "item-json"), ("name", "{{vault}}/{{id}}.json")],
    );
    whole
        .deliver(&event(item("db"), ChangeKind::Updated))
        .await
        .expect("item-json");
    let value: serde_json::Value = serde_json::from_str(&read(
        &dir.path().join("Prod/itm0000000000000000000000a.json"),
    ))
    .expect("valid JSON");
    assert_eq!(value["title"], "db");
    assert_eq!(value["version"], 3);
    assert_eq!(value["vault"]["name"], "Prod");
    assert_eq!(value["tags"], serde_json::json!(["prod"]));
    assert_eq!(value["fields"]["username"], "alice");
    // The kit's item document: `updated_at` is always there (null when Connect sent none).
    assert!(value.get("updated_at").is_some(), "{value}");
    let mut dated = item("db");
    dated.updated_at = Some(chrono::Utc::now());
    whole
        .deliver(&event(dated, ChangeKind::Updated))
        .await
        .expect("item-json");
    let value: serde_json::Value = serde_json::from_str(&read(
        &dir.path().join("Prod/itm0000000000000000000000a.json"),
    ))
    .expect("valid JSON");
    assert!(value["updated_at"].is_string(), "{value}");

    let raw = file_plugin(
        Some(dir.path()),
        &[
            ("format", "raw"),
            ("field", "password"),
            ("name", "{{title}}.pw"),
        ],
    );
    raw.deliver(&event(item("db"), ChangeKind::Updated))
        .await
        .expect("raw");
    assert_eq!(read(&dir.path().join("db.pw")), "hunter2-s3cret");
}

#[tokio::test]
async fn combined_files_hold_every_item_and_drop_deleted_ones_only_when_told() {
    let dir = tempfile::tempdir().expect("tempdir");
    let combined = file_plugin(
        Some(dir.path()),
        &[
            ("layout", "combined"),
            ("format", "json"),
            ("on-delete", "delete"),
        ],
    );
    let mut other = item("cache");
    other.id = "itm0000000000000000000000b".into();
    combined
        .deliver(&event(item("db"), ChangeKind::Created))
        .await
        .expect("first");
    combined
        .deliver(&event(other.clone(), ChangeKind::Created))
        .await
        .expect("second");
    let path = dir.path().join("secrets.json");
    let value: serde_json::Value = serde_json::from_str(&read(&path)).expect("JSON");
    assert_eq!(value["db"]["password"], "hunter2-s3cret");
    assert_eq!(value["cache"]["username"], "alice");
    let receipt = combined
        .deliver(&event(other, ChangeKind::Deleted))
        .await
        .expect("delete");
    assert!(!receipt.unchanged);
    let value: serde_json::Value = serde_json::from_str(&read(&path)).expect("JSON");
    assert!(value.get("cache").is_none());
    assert!(value.get("db").is_some());

    // Taking an item out of a combined file whose directory does not exist writes nothing and
    // makes no directory.
    let elsewhere = file_plugin(
        Some(dir.path()),
        &[
            ("layout", "combined"),
            ("dir", "/nested/deeper"),
            ("on-delete", "delete"),
        ],
    );
    let receipt = elsewhere
        .deliver(&event(item("db"), ChangeKind::Deleted))
        .await
        .expect("delete from nothing");
    assert!(receipt.unchanged);
    assert!(!dir.path().join("nested").exists());
    // Putting one in makes the directories.
    elsewhere
        .deliver(&event(item("db"), ChangeKind::Created))
        .await
        .expect("write into new directories");
    let made: Vec<_> = std::fs::read_dir(dir.path().join("nested/deeper"))
        .expect("directories made")
        .collect();
    assert_eq!(made.len(), 1, "one file and no temp file left: {made:?}");

    let dotenv = file_plugin(
        Some(dir.path()),
        &[("layout", "combined"), ("name", "all.env")],
    );
    dotenv
        .deliver(&event(item("db"), ChangeKind::Created))
        .await
        .expect("dotenv");
    let mut changed = item("db");
    changed.version = 4;
    if let Some(f) = changed.fields.as_mut().and_then(|f| f.get_mut(1)) {
        f.value = Some(plugin_support::secret("new-pass"));
    }
    dotenv
        .deliver(&event(changed, ChangeKind::Updated))
        .await
        .expect("update");
    assert_eq!(
        read(&dir.path().join("all.env")),
        "# opsync item itm0000000000000000000000a\nDB_USERNAME=\"alice\"\nDB_PASSWORD=\"new-pass\"\n"
    );
}

#[tokio::test]
async fn deletions_keep_the_file_unless_config_says_delete() {
    let dir = tempfile::tempdir().expect("tempdir");
    let keep = file_plugin(Some(dir.path()), &[]);
    keep.deliver(&event(item("db"), ChangeKind::Created))
        .await
        .expect("write");
    let receipt = keep
        .deliver(&event(item("db"), ChangeKind::Deleted))
        .await
        .expect("kept");
    assert!(receipt.unchanged);
    assert!(dir.path().join("db.env").exists());
    let delete = file_plugin(Some(dir.path()), &[("on-delete", "delete")]);
    delete
        .deliver(&event(item("db"), ChangeKind::Deleted))
        .await
        .expect("deleted");
    assert!(!dir.path().join("db.env").exists());
}

#[tokio::test]
async fn titles_cannot_climb_out_of_the_directory() {
    let root = tempfile::tempdir().expect("tempdir");
    let granted = root.path().join("granted");
    std::fs::create_dir(&granted).expect("mkdir");
    let plugin = file_plugin(Some(&granted), &[]);
    let receipt = plugin
        .deliver(&event(item("../../escape"), ChangeKind::Created))
        .await
        .expect("written inside");
    assert_eq!(receipt.location, "/.._.._escape.env");
    assert!(granted.join(".._.._escape.env").exists());
    assert_eq!(std::fs::read_dir(root.path()).expect("list").count(), 1);
}

#[tokio::test]
async fn without_a_granted_directory_nothing_is_written() {
    let plugin = file_plugin(None, &[("name", "{{title}}.env")]);
    let err = plugin
        .deliver(&event(item("db"), ChangeKind::Created))
        .await
        .expect_err("no directory granted");
    assert!(matches!(err, PluginError::Failed { .. }), "{err}");
    assert!(err.to_string().contains("plugin `to-files`"), "{err}");
}

#[tokio::test]
async fn bad_config_is_reported_as_misconfigured() {
    for pairs in [
        &[("colour", "blue")][..],
        &[("format", "yaml")][..],
        &[("format", "raw")][..],
        &[("name", "{{nope}}.env")][..],
        &[("name", "../x.env")][..],
    ] {
        let err = file_plugin(None, pairs)
            .validate()
            .await
            .expect_err("invalid config");
        assert_eq!(err.kind(), FailureKind::Misconfigured, "{pairs:?}: {err}");
    }
}

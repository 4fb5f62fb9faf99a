//! Durability before recording: what a group of attempts delivered through plugins with granted
//! directories is flushed to disk before the ledger says it was delivered.

use std::collections::HashMap;
use std::collections::hash_map::Entry;

use crate::delivery::Deliverer;
use crate::delivery::attempt::Outcome;
use crate::plugin::PluginError;
use crate::store::Delivery;

impl Deliverer {
    /// Flushes, once per destination, the granted directories of each plugin that delivered
    /// something in `finished`. Content found already there counts too: an earlier attempt may
    /// have written it and stopped before its flush. A destination whose flush fails has its
    /// deliveries turned into failed attempts carrying the error (retried, within the budget),
    /// so the ledger never records as delivered what may not be on disk. Blocks: call it on the
    /// blocking pool, as the recording job does.
    pub(crate) fn make_durable(&self, finished: &mut [(&Delivery, &mut Outcome)]) {
        let mut flushed: HashMap<&str, Result<(), PluginError>> = HashMap::new();
        for (d, outcome) in finished.iter() {
            if !matches!(outcome, Outcome::Delivered { .. }) {
                continue;
            }
            if let Entry::Vacant(slot) = flushed.entry(d.entry.destination.as_str()) {
                let result = match self.plugin(slot.key()) {
                    Ok(plugin) => plugin.flush_dirs().map(drop),
                    // Not loaded: it delivered nothing, so there is nothing to flush.
                    Err(_) => Ok(()),
                };
                // Logged once per destination; each delivery's retry is logged when recorded.
                if let Err(e) = &result {
                    tracing::error!(destination = %slot.key(), error = %e,
                        "flushing a destination's directory failed; its deliveries are tried again");
                }
                slot.insert(result);
            }
        }
        for (d, outcome) in finished.iter_mut() {
            if !matches!(outcome, Outcome::Delivered { .. }) {
                continue;
            }
            if let Some(Err(e)) = flushed.get(d.entry.destination.as_str()) {
                **outcome = self.failed_attempt(d.attempts.saturating_add(1), e);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use chrono::Utc;

    use super::*;
    use crate::config::ConnectSettings;
    use crate::connect::client::ConnectClient;
    use crate::delivery::RetryPolicy;
    use crate::plugin::{
        ChangeKind, DirGrant, Grants, HostOptions, Limits, PluginConfig, PluginHost, PluginSource,
        PluginSpec, World,
    };
    use crate::store::{LedgerEntry, Store};

    fn row(destination: &str) -> Delivery {
        Delivery {
            id: 1,
            entry: LedgerEntry {
                route: "all".into(),
                destination: destination.into(),
                vault_id: "v".into(),
                vault_name: "Vault".into(),
                item_id: "i".into(),
                title: "Item".into(),
                key: "v/i".into(),
                category: "LOGIN".into(),
                tags: Vec::new(),
                version: 1,
                kind: ChangeKind::Created,
                detected_at: Utc::now(),
            },
            attempts: 0,
            last_error: None,
            next_attempt_at: Utc::now(),
        }
    }

    fn delivered() -> Outcome {
        Outcome::Delivered {
            location: "v/i.env".into(),
            unchanged: false,
            fingerprint: None,
        }
    }

    #[test]
    fn a_failed_flush_turns_that_destinations_deliveries_into_retries() {
        let tmp = tempfile::tempdir().unwrap();
        let out = tmp.path().join("out");
        std::fs::create_dir(&out).unwrap();
        let plugin = PluginHost::new(HostOptions::default())
            .unwrap()
            .load(PluginSpec {
                name: "files".into(),
                source: PluginSource::Builtin("file".into()),
                world: Some(World::Destination),
                config: PluginConfig::default(),
                limits: Limits::default(),
                grants: Grants {
                    dirs: vec![DirGrant {
                        host: out.clone(),
                        guest: "/".into(),
                        read_only: false,
                        flush: true,
                    }],
                    ..Grants::default()
                },
            })
            .unwrap();
        let client = ConnectClient::new(&ConnectSettings::new(
            url::Url::parse("http://127.0.0.1:9").unwrap(),
            "token",
        ))
        .unwrap();
        let deliverer = Deliverer::new(
            Store::open_in_memory().unwrap(),
            client,
            Vec::new(),
            HashMap::from([("files".to_owned(), plugin)]),
            RetryPolicy::default(),
        );
        let (files, other) = (row("files"), row("other"));
        let skipped = row("files");
        let (mut a, mut b) = (delivered(), delivered());
        let mut c = Outcome::Skipped("skipped: the item has left the route".into());

        // The directory is there: flushed, nothing changes.
        deliverer.make_durable(&mut [(&files, &mut a), (&other, &mut b), (&skipped, &mut c)]);
        assert_eq!(a, delivered());

        // Gone: the deliveries through `files` become retries naming the plugin and the
        // directory; another destination's and a skipped row are left as they were.
        std::fs::remove_dir(&out).unwrap();
        deliverer.make_durable(&mut [(&files, &mut a), (&other, &mut b), (&skipped, &mut c)]);
        match &a {
            Outcome::Retry { error, .. } => {
                assert!(error.contains("plugin `files`"), "{error}");
                assert!(error.contains("cannot flush"), "{error}");
                assert!(error.contains(&out.display().to_string()), "{error}");
            }
            other => panic!("expected a retry, got {other:?}"),
        }
        assert_eq!(b, delivered());
        assert!(matches!(c, Outcome::Skipped(_)));
    }
}

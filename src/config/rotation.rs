//! `[[rotation]]`: scheduled rotation jobs (item, rotator plugin instance, schedule, time zone,
//! jitter, missed-slot deadline, fields, recipe), checked at load; errors name
//! `rotation[i].key`.

use std::collections::HashSet;
use std::time::Duration;

use figment::Figment;
use serde::Deserialize;

use crate::config::error::{ConfigError, Problems};
use crate::config::plugins::{PluginSettings, find_for};
use crate::connect::model::{CharacterSet, GeneratorRecipe};
use crate::rotation::RotationJob;
use crate::schedule::{Schedule, parse_tz};

/// How late a missed slot may still run, unless the job says otherwise.
pub const DEFAULT_DEADLINE: Duration = Duration::from_secs(3600);

/// One `[[rotation]]` as written.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawRotation {
    name: Option<String>,
    item: Option<String>,
    plugin: Option<String>,
    schedule: Option<String>,
    timezone: Option<String>,
    #[serde(default, with = "crate::human_time::written::option")]
    jitter: Option<Duration>,
    #[serde(default, with = "crate::human_time::written::option")]
    deadline: Option<Duration>,
    fields: Option<Vec<String>>,
    recipe: Option<RawRecipe>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRecipe {
    length: Option<u32>,
    character_sets: Option<Vec<String>>,
    exclude_characters: Option<String>,
}

/// Checks every job against the plugin instances; all problems are reported together.
pub(crate) fn resolve(
    raw: Vec<RawRotation>,
    plugins: &[PluginSettings],
    figment: &Figment,
) -> Result<Vec<RotationJob>, ConfigError> {
    let mut problems = Problems::new(figment, "rotation");
    let mut out = Vec::new();
    let mut names = HashSet::new();
    for (i, r) in raw.into_iter().enumerate() {
        let mut bad =
            |k: &str, message: String| problems.add(format!("rotation[{i}].{k}"), message);
        let mut ok = true;
        let name = match r.name {
            Some(n)
                if !n.is_empty()
                    && n.chars()
                        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.')) =>
            {
                n
            }
            Some(n) => {
                bad(
                    "name",
                    format!("invalid job name {n:?} (letters, digits, '-', '_' and '.')"),
                );
                continue;
            }
            None => {
                bad(
                    "name",
                    "every rotation job needs a name (`opsync rotate now NAME` uses it)".into(),
                );
                continue;
            }
        };
        if !names.insert(name.clone()) {
            bad(
                "name",
                format!("another rotation job is already named {name:?}"),
            );
            continue;
        }
        let (vault, item) = match r.item.as_deref().map(parse_item_ref) {
            Some(Ok(v)) => v,
            Some(Err(message)) => {
                bad("item", message);
                ok = false;
                (String::new(), String::new())
            }
            None => {
                bad("item", "name the item to rotate: op://VAULT/ITEM".into());
                ok = false;
                (String::new(), String::new())
            }
        };
        let plugin = match r.plugin {
            None => {
                bad("plugin", "name the rotator plugin instance".into());
                ok = false;
                String::new()
            }
            Some(p) => {
                if let Err(why) = find_for(plugins, &p, "rotator", "a rotator") {
                    bad("plugin", why);
                    ok = false;
                }
                p
            }
        };
        let timezone = r.timezone.unwrap_or_else(|| "UTC".to_owned());
        let tz = match parse_tz(&timezone) {
            Ok(tz) => Some(tz),
            Err(e) => {
                bad("timezone", e.to_string());
                ok = false;
                None
            }
        };
        let schedule = match (r.schedule, tz) {
            (None, _) => {
                bad(
                    "schedule",
                    "a cron expression (\"0 3 * * *\"), a macro (\"@daily\") or a rate (\"rate(12h)\")"
                        .into(),
                );
                ok = false;
                None
            }
            (Some(_), None) => None,
            (Some(s), Some(tz)) => match Schedule::parse(&s, tz) {
                Ok(s) => Some(s),
                Err(e) => {
                    bad("schedule", e.to_string());
                    ok = false;
                    None
                }
            },
        };
        let fields = match r.fields {
            Some(f) if f.is_empty() || f.iter().any(String::is_empty) => {
                bad(
                    "fields",
                    "name at least one field (leave it out for the item's password field)".into(),
                );
                ok = false;
                Vec::new()
            }
            Some(f) => f,
            None => Vec::new(),
        };
        let recipe = match r.recipe.map(check_recipe).transpose() {
            Ok(r) => r,
            Err(message) => {
                bad("recipe", message);
                ok = false;
                None
            }
        };
        if let (true, Some(schedule)) = (ok, schedule) {
            out.push(RotationJob {
                name,
                vault,
                item,
                plugin,
                schedule,
                timezone,
                jitter: r.jitter.unwrap_or(Duration::ZERO),
                deadline: r.deadline.unwrap_or(DEFAULT_DEADLINE),
                fields,
                recipe,
            });
        }
    }
    problems.into_result(out)
}

/// `op://VAULT/ITEM` to (vault, item).
fn parse_item_ref(s: &str) -> Result<(String, String), String> {
    let rest = s
        .strip_prefix("op://")
        .ok_or_else(|| format!("{s:?} is not an item reference; write op://VAULT/ITEM"))?;
    match rest.split('/').collect::<Vec<_>>().as_slice() {
        [v, i] if !v.is_empty() && !i.is_empty() => Ok(((*v).to_owned(), (*i).to_owned())),
        _ => Err(format!(
            "{s:?} is not an item reference; write op://VAULT/ITEM (vault and item by name or id)"
        )),
    }
}

fn check_recipe(r: RawRecipe) -> Result<GeneratorRecipe, String> {
    if let Some(l) = r.length
        && !(1..=64).contains(&l)
    {
        return Err(format!("length must be between 1 and 64, got {l}"));
    }
    let sets = match r.character_sets {
        None => None,
        Some(sets) => {
            let mut out = Vec::new();
            for s in sets {
                let set = CharacterSet::from(s.to_ascii_uppercase());
                if let CharacterSet::Other(name) = &set {
                    return Err(format!(
                        "unknown character set {name:?} (use LETTERS, DIGITS or SYMBOLS)"
                    ));
                }
                if !out.contains(&set) {
                    out.push(set);
                }
            }
            Some(out)
        }
    };
    Ok(GeneratorRecipe {
        length: r.length,
        character_sets: sets,
        exclude_characters: r.exclude_characters,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn item_references() {
        assert_eq!(
            parse_item_ref("op://Prod/DB admin"),
            Ok(("Prod".into(), "DB admin".into()))
        );
        assert!(parse_item_ref("Prod/DB").is_err());
        assert!(parse_item_ref("op://Prod/DB/password").is_err());
        assert!(parse_item_ref("op:///DB").is_err());
    }

    #[test]
    fn recipes() {
        let r = check_recipe(RawRecipe {
            length: Some(20),
            character_sets: Some(vec!["letters".into(), "DIGITS".into()]),
            exclude_characters: None,
        })
        .expect("valid");
        assert_eq!(r.length, Some(20));
        assert_eq!(
            r.character_sets,
            Some(vec![CharacterSet::Letters, CharacterSet::Digits])
        );
        assert!(
            check_recipe(RawRecipe {
                length: Some(65),
                character_sets: None,
                exclude_characters: None
            })
            .is_err()
        );
        assert!(
            check_recipe(RawRecipe {
                length: None,
                character_sets: Some(vec!["EMOJI".into()]),
                exclude_characters: None
            })
            .is_err()
        );
    }
}

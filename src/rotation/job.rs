//! One `[[rotation]]` job as the config checked it: which item, which rotator plugin, when.

use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::connect::model::GeneratorRecipe;
use crate::schedule::{Due, Schedule, due};
use crate::store::JobState;

/// One rotation job, as checked at load.
#[derive(Clone, Debug, Serialize)]
pub struct RotationJob {
    pub name: String,
    /// The vault, by name or id.
    pub vault: String,
    /// The item, by title or id.
    pub item: String,
    /// The rotator plugin instance (a `[plugins.NAME]`).
    pub plugin: String,
    #[serde(serialize_with = "schedule_source")]
    pub schedule: Schedule,
    pub timezone: String,
    #[serde(with = "crate::human_time::written")]
    pub jitter: Duration,
    #[serde(with = "crate::human_time::written")]
    pub deadline: Duration,
    /// Field ids or labels to rotate; empty means the item's PASSWORD-purpose field.
    pub fields: Vec<String>,
    /// How Connect generates a value when the plugin returns none.
    #[serde(
        serialize_with = "recipe_as_written",
        skip_serializing_if = "Option::is_none"
    )]
    pub recipe: Option<GeneratorRecipe>,
}

impl RotationJob {
    /// What is due for this job at `now`, given its persisted state (none: a job first seen
    /// now): slots before its last one started, or before it was first seen, are not caught up.
    pub fn due(&self, state: Option<&JobState>, now: DateTime<Utc>) -> Due {
        let since = state.map_or(now, |s| s.last_slot.unwrap_or(s.first_seen));
        due(
            &self.name,
            &self.schedule,
            self.jitter,
            self.deadline,
            since,
            now,
        )
    }
}

/// The recipe with the config's key names (`character_sets`), not Connect's (`characterSets`).
fn recipe_as_written<S: serde::Serializer>(
    r: &Option<GeneratorRecipe>,
    ser: S,
) -> Result<S::Ok, S::Error> {
    #[derive(Serialize)]
    struct Written<'a> {
        #[serde(skip_serializing_if = "Option::is_none")]
        length: Option<u32>,
        #[serde(skip_serializing_if = "Option::is_none")]
        character_sets: Option<Vec<&'a str>>,
        #[serde(skip_serializing_if = "Option::is_none")]
        exclude_characters: Option<&'a str>,
    }
    let written = r.as_ref().map(|r| Written {
        length: r.length,
        character_sets: r
            .character_sets
            .as_ref()
            .map(|s| s.iter().map(|c| c.as_str()).collect()),
        exclude_characters: r.exclude_characters.as_deref(),
    });
    written.serialize(ser)
}

fn schedule_source<S: serde::Serializer>(s: &Schedule, ser: S) -> Result<S::Ok, S::Error> {
    ser.serialize_str(s.source())
}

impl PartialEq for RotationJob {
    fn eq(&self, other: &Self) -> bool {
        self.name == other.name
            && self.vault == other.vault
            && self.item == other.item
            && self.plugin == other.plugin
            && self.schedule.source() == other.schedule.source()
            && self.timezone == other.timezone
            && self.jitter == other.jitter
            && self.deadline == other.deadline
            && self.fields == other.fields
            && self.recipe == other.recipe
    }
}

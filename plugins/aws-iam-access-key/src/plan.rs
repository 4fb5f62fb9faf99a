//! Which keys each step deletes, activates or deactivates, decided from the user's key list and
//! the item's values alone, so that every step is idempotent and the user never holds more than
//! IAM's two keys.

use crate::api::KeyInfo;

/// IAM's limit of access keys per user.
pub const MAX_KEYS: usize = 2;

/// Before `create` makes a key: while the user holds the maximum, the keys to delete, never the
/// item's current one. Inactive keys go first (the previous key, retired by the last `finish`),
/// then the oldest (an orphan of an interrupted rotation).
pub fn deletions_before_create(keys: &[KeyInfo], current: Option<&str>) -> Vec<String> {
    if keys.len() < MAX_KEYS {
        return Vec::new();
    }
    let mut candidates: Vec<&KeyInfo> = keys
        .iter()
        .filter(|k| Some(k.id.as_str()) != current)
        .collect();
    candidates.sort_by_key(|k| (k.active, k.created.unwrap_or(i64::MAX)));
    candidates
        .into_iter()
        .take(keys.len() + 1 - MAX_KEYS)
        .map(|k| k.id.clone())
        .collect()
}

/// At `finish`: the active keys other than the promoted one, to deactivate; none (`None`) when the
/// promoted key is not among the user's keys, so a rotation gone wrong never locks the user out.
pub fn deactivations_at_finish(keys: &[KeyInfo], promoted: &str) -> Option<Vec<String>> {
    keys.iter().any(|k| k.id == promoted).then(|| {
        keys.iter()
            .filter(|k| k.active && k.id != promoted)
            .map(|k| k.id.clone())
            .collect()
    })
}

/// At a rollback: the keys other than the restored one, to delete; `None` when the restored key is
/// gone (then nothing is deleted: the new key may be the only one that still works).
pub fn deletions_at_rollback(keys: &[KeyInfo], restored: &str) -> Option<Vec<String>> {
    keys.iter().any(|k| k.id == restored).then(|| {
        keys.iter()
            .filter(|k| k.id != restored)
            .map(|k| k.id.clone())
            .collect()
    })
}

/// Whether a key STS does not know yet (`InvalidClientTokenId`) may still be propagating through
/// IAM: it is younger than `window` seconds. A key of unknown age is not.
pub fn still_propagating(age_seconds: Option<i64>, window: u32) -> bool {
    age_seconds.is_some_and(|age| age < i64::from(window))
}

/// Whether `arn` (from GetCallerIdentity) is the IAM user `user` (`...:user/[path/]user`).
pub fn arn_is_user(arn: &str, user: &str) -> bool {
    arn.split_once(":user/")
        .is_some_and(|(_, rest)| rest.rsplit('/').next() == Some(user))
}

/// `…WXYZ`: enough of a key id to tell keys apart in a log line, as the AWS console shows them.
pub fn short(key_id: &str) -> String {
    let tail: String = key_id
        .chars()
        .rev()
        .take(4)
        .collect::<Vec<_>>()
        .into_iter()
        .rev()
        .collect();
    format!("…{tail}")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(id: &str, active: bool, created: i64) -> KeyInfo {
        KeyInfo {
            id: id.into(),
            active,
            created: Some(created),
        }
    }

    #[test]
    fn create_makes_room_without_touching_the_current_key() {
        assert!(deletions_before_create(&[], None).is_empty());
        assert!(deletions_before_create(&[key("A", true, 1)], Some("A")).is_empty());
        // The previous key, retired by the last finish.
        assert_eq!(
            deletions_before_create(&[key("A", false, 1), key("B", true, 2)], Some("B")),
            vec!["A"]
        );
        // An orphan of an interrupted create is newer than the current key, and still goes.
        assert_eq!(
            deletions_before_create(&[key("A", true, 1), key("B", true, 2)], Some("A")),
            vec!["B"]
        );
        // The item's key is unknown to IAM: inactive first, then the oldest.
        assert_eq!(
            deletions_before_create(&[key("A", true, 1), key("B", false, 2)], Some("Z")),
            vec!["B"]
        );
        assert_eq!(
            deletions_before_create(&[key("A", true, 1), key("B", true, 2)], None),
            vec!["A"]
        );
    }

    #[test]
    fn finish_deactivates_the_others_only_when_the_promoted_key_exists() {
        let keys = [key("A", true, 1), key("B", true, 2)];
        assert_eq!(deactivations_at_finish(&keys, "B"), Some(vec!["A".into()]));
        assert_eq!(deactivations_at_finish(&keys, "C"), None);
        let done = [key("A", false, 1), key("B", true, 2)];
        assert_eq!(deactivations_at_finish(&done, "B"), Some(Vec::new()));
    }

    #[test]
    fn rollback_deletes_the_others_only_when_the_restored_key_exists() {
        let keys = [key("A", false, 1), key("B", true, 2)];
        assert_eq!(deletions_at_rollback(&keys, "A"), Some(vec!["B".into()]));
        assert_eq!(deletions_at_rollback(&keys, "C"), None);
        assert_eq!(
            deletions_at_rollback(&[key("A", true, 1)], "A"),
            Some(Vec::new())
        );
    }

    #[test]
    fn only_young_keys_count_as_propagating() {
        assert!(still_propagating(Some(0), 30));
        assert!(still_propagating(Some(29), 30));
        assert!(!still_propagating(Some(30), 30));
        assert!(!still_propagating(Some(5), 0));
        assert!(!still_propagating(None, 30));
    }

    #[test]
    fn arns_and_short_ids() {
        assert!(arn_is_user("arn:aws:iam::123456789012:user/app", "app"));
        assert!(arn_is_user("arn:aws:iam::123456789012:user/ci/app", "app"));
        assert!(!arn_is_user("arn:aws:iam::123456789012:user/app2", "app"));
        assert!(!arn_is_user(
            "arn:aws:sts::123456789012:assumed-role/app/x",
            "x"
        ));
        assert_eq!(short("AKIARZPUZDIKIOJN75Z3"), "…75Z3");
        assert_eq!(short("AB"), "…AB");
    }
}

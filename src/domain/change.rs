//! `ChangeKind`: what happened to an item, and the idempotency key of one change.

/// What happened to an item.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ChangeKind {
    Created,
    Updated,
    /// The item left the route; its fields are not sent.
    Deleted,
    Rotated,
    /// The destination drifted from what was delivered: the same version, written again.
    Repaired,
}

/// A change kind's text was none of the five.
#[derive(Debug, thiserror::Error)]
#[error("unknown change kind {0:?}")]
pub struct UnknownChangeKind(pub String);

impl ChangeKind {
    pub const ALL: [ChangeKind; 5] = [
        ChangeKind::Created,
        ChangeKind::Updated,
        ChangeKind::Deleted,
        ChangeKind::Rotated,
        ChangeKind::Repaired,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Created => "created",
            Self::Updated => "updated",
            Self::Deleted => "deleted",
            Self::Rotated => "rotated",
            Self::Repaired => "repaired",
        }
    }

    /// The kind `as_str` wrote.
    pub fn parse(s: &str) -> Result<ChangeKind, UnknownChangeKind> {
        Self::ALL
            .into_iter()
            .find(|k| k.as_str() == s)
            .ok_or_else(|| UnknownChangeKind(s.to_owned()))
    }
}

/// The idempotency key of (route, item, version, kind): the same on every retry and replay.
pub fn idempotency_key(route: &str, item_id: &str, version: u64, kind: ChangeKind) -> String {
    format!("{route}:{item_id}:{version}:{}", kind.as_str())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kind_reads_back() {
        for kind in ChangeKind::ALL {
            assert_eq!(ChangeKind::parse(kind.as_str()).expect("known"), kind);
        }
        assert!(ChangeKind::parse("moved").is_err());
    }
}

//! `Step`: the steps of one rotation, in the order they run, as persisted and reported.

/// A rotation's steps as persisted: the step in progress (about to run, or running).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Step {
    /// Make the new value and write it into 1Password as pending.
    Create,
    /// Apply the pending value on the target.
    Set,
    /// Prove the pending value works on the target.
    Test,
    /// One PATCH: pending to current, current to previous.
    Promote,
    /// The plugin retires what is older.
    Finish,
    /// Put the current value back on the target and clear the pending one.
    Rollback,
}

impl Step {
    pub const ALL: [Step; 6] = [
        Step::Create,
        Step::Set,
        Step::Test,
        Step::Promote,
        Step::Finish,
        Step::Rollback,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Step::Create => "create",
            Step::Set => "set",
            Step::Test => "test",
            Step::Promote => "promote",
            Step::Finish => "finish",
            Step::Rollback => "rollback",
        }
    }

    pub fn parse(s: &str) -> Option<Step> {
        Step::ALL.into_iter().find(|x| x.as_str() == s)
    }
}

impl std::fmt::Display for Step {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

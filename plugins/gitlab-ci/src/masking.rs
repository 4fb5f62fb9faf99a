//! GitLab's masking requirements, checked on every value before anything is sent.
//!
//! With `masked = true`, a value GitLab cannot mask is refused, so it is never written unmasked.
//! The rule is GitLab's own validation of a masked variable's value (`Ci::Maskable`), which
//! depends on whether the variable is raw:
//! - raw (`raw = true`, the default): at least 8 characters, none of them a space, tab, line
//!   break, vertical tab or form feed (`\A\S{8,}\z`, Ruby's `\S`);
//! - expanded (`raw = false`): at least 8 characters, each an ASCII letter or digit or one of
//!   `_ + = / @ : . ~ -` (`\A[a-zA-Z0-9_+=/@:.~-]{8,}\z`).
//!
//! Characters are counted as Unicode scalar values, as Ruby counts them. GitLab's documentation
//! also asks that a masked value not equal the name of another CI/CD variable; the API does not
//! check that, and neither does opsync.

use opsync_destination_kit::{PluginError, misconfigured};

/// The fewest characters GitLab masks.
pub(crate) const MIN_CHARS: usize = 8;

/// The rule for a raw variable, for messages.
pub(crate) const RAW_RULE: &str = "at least 8 characters, with no space, tab or line \
     break (GitLab's rule for a masked raw variable)";
/// The rule for an expanded variable, for messages.
pub(crate) const EXPANDED_RULE: &str = "at least 8 characters, each a letter, a digit or one of \
     `_ + = / @ : . ~ -` (GitLab's rule for a masked variable that is expanded, `raw = false`)";

/// Why a value cannot be masked.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Unmaskable {
    TooShort,
    Whitespace,
    Character,
}

impl Unmaskable {
    /// What is wrong with the value, without the value.
    fn why(self) -> &'static str {
        match self {
            Self::TooShort => "it has fewer than 8 characters",
            Self::Whitespace => "it holds whitespace or a line break",
            Self::Character => "it holds a character outside that set",
        }
    }
}

/// Ruby's `\s`: what `\S` excludes.
fn ruby_space(c: char) -> bool {
    matches!(c, ' ' | '\t' | '\n' | '\u{0B}' | '\u{0C}' | '\r')
}

fn expanded_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '_' | '+' | '=' | '/' | '@' | ':' | '.' | '~' | '-')
}

/// Why GitLab would refuse to mask `value`; none when it masks it.
pub(crate) fn problem(value: &str, raw: bool) -> Option<Unmaskable> {
    if raw {
        if value.chars().any(ruby_space) {
            return Some(Unmaskable::Whitespace);
        }
    } else if let Some(c) = value.chars().find(|c| !expanded_char(*c)) {
        return Some(if ruby_space(c) {
            Unmaskable::Whitespace
        } else {
            Unmaskable::Character
        });
    }
    (value.chars().count() < MIN_CHARS).then_some(Unmaskable::TooShort)
}

/// Refuses a value GitLab cannot mask, as `misconfigured` (the route pauses until the value or
/// the config is fixed), naming the item, the field, the key and the rule; never the value.
pub(crate) fn check(
    item: &str,
    field: &str,
    key: &str,
    value: &str,
    raw: bool,
) -> Result<(), PluginError> {
    let Some(problem) = problem(value, raw) else {
        return Ok(());
    };
    let (rule, ways) = if raw {
        (RAW_RULE, "")
    } else {
        (
            EXPANDED_RULE,
            ", set `raw = true` (which allows more characters)",
        )
    };
    Err(misconfigured(format!(
        "{item}: the value of the field `{field}` cannot be written to the masked variable \
         `{key}`: GitLab masks only values of {rule}, and {}; opsync never writes it unmasked: \
         change the value in 1Password{ways}, or set `masked = false`",
        problem.why()
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn raw_values_need_eight_characters_without_whitespace() {
        for good in [
            "hunter22",
            "p$ss#w0rd!",
            "${CI_JOB_TOKEN}x",
            "naïve-pässwörd",
            "a\u{a0}bcdefgh",
            &"x".repeat(10_000),
        ] {
            assert_eq!(problem(good, true), None, "{good:?}");
        }
        assert_eq!(problem("short", true), Some(Unmaskable::TooShort));
        assert_eq!(problem("", true), Some(Unmaskable::TooShort));
        // Counted in characters, not bytes.
        assert_eq!(problem("ééééééé", true), Some(Unmaskable::TooShort));
        assert_eq!(problem("éééééééé", true), None);
        for spaced in [
            "hunter2 hunter2",
            "hunter2\nhunter2",
            "hunter2\thunter2",
            "hunter2hunter2\r",
            "a\u{0B}bcdefghi",
            "a\u{0C}bcdefghi",
        ] {
            assert_eq!(
                problem(spaced, true),
                Some(Unmaskable::Whitespace),
                "{spaced:?}"
            );
        }
    }

    #[test]
    fn expanded_values_need_the_base64_alphabet_and_a_few_more() {
        for good in [
            "abcdEFGH1234",
            "glpat-AbC_dEf+gh/ij=",
            "user@host:8080.~",
            "aaaaaaaa",
        ] {
            assert_eq!(problem(good, false), None, "{good:?}");
        }
        for bad in [
            "p$ssword1",
            "pass#word",
            "pässwörd",
            "pass,word",
            "pass!word",
            "a\"bcdefgh",
        ] {
            assert_eq!(problem(bad, false), Some(Unmaskable::Character), "{bad}");
        }
        assert_eq!(problem("abc defgh", false), Some(Unmaskable::Whitespace));
        assert_eq!(problem("abc", false), Some(Unmaskable::TooShort));
    }

    #[test]
    fn the_error_names_item_field_key_and_rule_never_the_value() {
        let item = "item `DB` (itm1)";
        assert!(check(item, "password", "DB_PASSWORD", "longenough", false).is_ok());
        let err = check(item, "password", "DB_PASSWORD", "s3cr3t", true).expect_err("short");
        let PluginError::Misconfigured(msg) = err else {
            panic!("not misconfigured: {err:?}")
        };
        assert!(
            msg.contains(item)
                && msg.contains("`password`")
                && msg.contains("`DB_PASSWORD`")
                && msg.contains(RAW_RULE)
                && msg.contains("fewer than 8")
                && msg.contains("`masked = false`")
                && !msg.contains("raw = true")
                && !msg.contains("s3cr3t"),
            "{msg}"
        );
        let err =
            check(item, "password", "DB_PASSWORD", "pa$$word-long", false).expect_err("dollar");
        let PluginError::Misconfigured(msg) = err else {
            panic!("not misconfigured: {err:?}")
        };
        assert!(
            msg.contains(EXPANDED_RULE)
                && msg.contains("outside that set")
                && msg.contains("`raw = true`")
                && !msg.contains("pa$$word"),
            "{msg}"
        );
    }
}

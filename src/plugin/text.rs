//! Text a plugin supplies (log lines, error messages, receipt fields), made safe to log, store and
//! print: every value the plugin has seen redacted first, control characters escaped, then cut to
//! a length without splitting a character or a redaction marker.

use std::borrow::Cow;
use std::fmt::Write as _;

use crate::plugin::secrets::{REDACTED, Secrets};

/// `text` redacted with `secrets`, its control characters escaped, cut to at most `max` bytes.
///
/// The order matters: a secret that straddled the cut would no longer match once cut, so the
/// whole text is redacted before anything is cut away.
pub fn sanitize(secrets: &Secrets, text: &str, max: usize) -> String {
    let redacted = secrets.redact(text);
    let escaped = match escape_control(&redacted) {
        Cow::Owned(escaped) => Some(escaped),
        Cow::Borrowed(_) => None,
    };
    let mut out = escaped.unwrap_or_else(|| redacted.into_owned());
    let end = cut_whole(&out, max).len();
    out.truncate(end);
    out
}

/// `text` with every control character (newlines, carriage returns, escape sequences, Unicode
/// line and paragraph separators) written as a visible escape (`\n`, `\u{1b}`), so no text can
/// start a line of its own in a log or a table.
pub fn escape_control(text: &str) -> Cow<'_, str> {
    if !text.chars().any(needs_escape) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        if needs_escape(c) {
            // Writing into a String cannot fail.
            let _ = write!(out, "{}", c.escape_default());
        } else {
            out.push(c);
        }
    }
    Cow::Owned(out)
}

fn needs_escape(c: char) -> bool {
    c.is_control() || matches!(c, '\u{2028}' | '\u{2029}' | '\u{85}')
}

/// `s` cut to at most `max` bytes, on a character boundary and never inside a redaction marker
/// (a marker the cut would split is dropped whole).
pub fn cut_whole(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    // A marker that starts within the last marker-length bytes before the cut and ends after it.
    let window_start = end.saturating_sub(REDACTED.len() - 1);
    for start in window_start..end {
        if s.is_char_boundary(start)
            && s[start..].starts_with(REDACTED)
            && start + REDACTED.len() > end
        {
            end = start;
            break;
        }
    }
    &s[..end]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secrets(values: &[&str]) -> Secrets {
        let mut s = Secrets::new("p".into(), &crate::plugin::limits::Limits::default());
        for v in values {
            s.remember(v);
        }
        s
    }

    #[test]
    fn a_secret_straddling_the_cut_is_redacted_not_leaked_in_part() {
        let secret = "s3cr3t-value-0123456789";
        let s = secrets(&[secret]);
        let text = format!("{}{secret}", "x".repeat(90));
        let out = sanitize(&s, &text, 95);
        assert!(!out.contains("s3cr3t"), "{out}");
        assert_eq!(
            out,
            "x".repeat(90),
            "the marker the cut would split goes whole"
        );
        let out = sanitize(&s, &text, 200);
        assert_eq!(out, format!("{}{REDACTED}", "x".repeat(90)));
    }

    #[test]
    fn control_characters_are_escaped() {
        let s = secrets(&[]);
        assert_eq!(
            sanitize(&s, "a\nERROR forged\r\u{1b}[31m\u{2028}", 100),
            "a\\nERROR forged\\r\\u{1b}[31m\\u{2028}"
        );
        assert_eq!(escape_control("plain é"), "plain é");
    }

    #[test]
    fn the_cut_never_splits_a_character() {
        let s = secrets(&[]);
        assert_eq!(sanitize(&s, "héllo", 2), "h");
        assert_eq!(cut_whole("hello", 10), "hello");
    }
}

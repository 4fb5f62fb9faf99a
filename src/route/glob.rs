//! Title globs: `*` (any run of characters), `?` (one character), `\` escapes the next one.

use std::fmt;

use serde::{Serialize, Serializer};

/// A compiled glob, matched against a whole title, case-sensitively.
#[derive(Clone, PartialEq, Eq)]
pub struct Glob {
    source: String,
    tokens: Vec<Token>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum Token {
    Literal(char),
    One,
    Any,
}

/// A glob that ends in a lone `\`.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("glob {0:?} ends with an escape character")]
pub struct GlobError(String);

impl Glob {
    pub fn new(source: &str) -> Result<Self, GlobError> {
        let mut tokens = Vec::new();
        let mut chars = source.chars();
        while let Some(c) = chars.next() {
            tokens.push(match c {
                '*' => {
                    if tokens.last() == Some(&Token::Any) {
                        continue;
                    }
                    Token::Any
                }
                '?' => Token::One,
                '\\' => Token::Literal(chars.next().ok_or_else(|| GlobError(source.into()))?),
                c => Token::Literal(c),
            });
        }
        Ok(Self {
            source: source.to_owned(),
            tokens,
        })
    }

    pub fn as_str(&self) -> &str {
        &self.source
    }

    /// Whether the whole of `text` matches (iterative, with one backtrack point per `*`).
    pub fn matches(&self, text: &str) -> bool {
        let text: Vec<char> = text.chars().collect();
        let (mut t, mut p) = (0usize, 0usize);
        let mut star: Option<(usize, usize)> = None;
        while t < text.len() {
            match self.tokens.get(p) {
                Some(Token::Any) => {
                    star = Some((p, t));
                    p += 1;
                }
                Some(Token::One) => {
                    t += 1;
                    p += 1;
                }
                Some(Token::Literal(c)) if *c == text[t] => {
                    t += 1;
                    p += 1;
                }
                _ => match star {
                    Some((sp, st)) => {
                        p = sp + 1;
                        t = st + 1;
                        star = Some((sp, st + 1));
                    }
                    None => return false,
                },
            }
        }
        self.tokens[p..].iter().all(|tok| *tok == Token::Any)
    }
}

impl fmt::Debug for Glob {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Glob({:?})", self.source)
    }
}

impl Serialize for Glob {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.source)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(p: &str, t: &str) -> bool {
        Glob::new(p).expect("valid glob").matches(t)
    }

    #[test]
    fn stars_questions_and_escapes() {
        assert!(m("db-*", "db-prod"));
        assert!(m("db-*", "db-"));
        assert!(!m("db-*", "xdb-prod"));
        assert!(m("*prod*", "my prod db"));
        assert!(m("a?c", "abc"));
        assert!(!m("a?c", "ac"));
        assert!(m("a\\*c", "a*c"));
        assert!(!m("a\\*c", "abc"));
        assert!(m("*", ""));
        assert!(m("*a*b*c", "xxaxxbxxc"));
        assert!(!m("*a*b*c", "xxaxxbxx"));
        assert!(m("Ünï*", "Ünïcode"));
        assert!(Glob::new("bad\\").is_err());
    }
}

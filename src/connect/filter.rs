//! SCIM filters as Connect understands them: parsing, matching and building `filter=` values.
//!
//! Grammar (keywords are case-insensitive, `and` binds tighter than `or`):
//!
//! ```text
//! expr   := term ("or" term)*
//! term   := factor ("and" factor)*
//! factor := "(" expr ")" | ATTR OP "\"value\""
//! OP     := eq | co | sw
//! ```
//!
//! Values are double-quoted; `\"` and `\\` escape a quote and a backslash. A `'` anywhere in a
//! value is refused, as real Connect does since 1.5.2. Comparisons ignore case, as real servers
//! do for `eq` (the SCIM default).

use std::fmt;

/// A comparison operator.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Op {
    /// Equal, ignoring case.
    Eq,
    /// Contains, ignoring case.
    Co,
    /// Starts with, ignoring case.
    Sw,
}

impl Op {
    fn as_str(self) -> &'static str {
        match self {
            Op::Eq => "eq",
            Op::Co => "co",
            Op::Sw => "sw",
        }
    }

    fn parse(word: &str) -> Option<Op> {
        match word.to_ascii_lowercase().as_str() {
            "eq" => Some(Op::Eq),
            "co" => Some(Op::Co),
            "sw" => Some(Op::Sw),
            _ => None,
        }
    }
}

/// A parsed filter expression.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Filter {
    /// `attr op "value"`. `folded` is the lowercased value, kept for matching.
    Compare {
        attr: String,
        op: Op,
        value: String,
        folded: String,
    },
    And(Box<Filter>, Box<Filter>),
    Or(Box<Filter>, Box<Filter>),
}

/// Why a filter string was refused. The message is safe to show to the client.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum FilterError {
    #[error("Invalid filter: the filter is empty")]
    Empty,
    #[error("Invalid filter: expected {expected} at position {pos}")]
    Expected { expected: &'static str, pos: usize },
    #[error("Invalid filter: unknown operator '{op}' (supported: eq, co, sw)")]
    UnknownOperator { op: String },
    #[error("Invalid filter: the value starting at position {pos} has no closing quote")]
    Unterminated { pos: usize },
    #[error("Invalid filter: single quotes are not allowed in filter values")]
    SingleQuote,
    #[error("Invalid filter: unexpected input at position {pos}")]
    Trailing { pos: usize },
    #[error("Invalid filter: unsupported attribute '{attr}' (supported: {supported})")]
    UnsupportedAttribute { attr: String, supported: String },
    #[error("Invalid filter: nested too deeply")]
    TooDeep,
}

/// How deep parentheses may nest; keeps the recursive parser's stack bounded.
const MAX_DEPTH: usize = 32;

/// What a filter is matched against: something with named, possibly multi-valued attributes.
pub trait Attributes {
    /// Calls `test` on each value of `attr` and returns `true` as soon as one passes.
    fn any_value(&self, attr: &str, test: &mut dyn FnMut(&str) -> bool) -> bool;
}

impl Filter {
    /// `attr op "value"`; the attribute name is kept lowercased.
    pub fn compare(attr: impl Into<String>, op: Op, value: impl Into<String>) -> Self {
        let value = value.into();
        Filter::Compare {
            attr: attr.into().to_ascii_lowercase(),
            op,
            folded: value.to_lowercase(),
            value,
        }
    }

    /// `title eq "value"` (items, and vaults on real servers).
    pub fn title_eq(value: impl Into<String>) -> Self {
        Self::compare("title", Op::Eq, value)
    }

    /// `title co "value"`.
    pub fn title_co(value: impl Into<String>) -> Self {
        Self::compare("title", Op::Co, value)
    }

    /// `name eq "value"` (vaults).
    pub fn name_eq(value: impl Into<String>) -> Self {
        Self::compare("name", Op::Eq, value)
    }

    /// `tag eq "value"` (items).
    pub fn tag_eq(value: impl Into<String>) -> Self {
        Self::compare("tag", Op::Eq, value)
    }

    pub fn and(self, other: Filter) -> Self {
        Filter::And(Box::new(self), Box::new(other))
    }

    pub fn or(self, other: Filter) -> Self {
        Filter::Or(Box::new(self), Box::new(other))
    }

    /// Refuses attributes outside `supported` (compared ignoring case).
    pub fn check_attributes(&self, supported: &[&str]) -> Result<(), FilterError> {
        match self {
            Filter::Compare { attr, .. } => {
                if supported.iter().any(|s| s.eq_ignore_ascii_case(attr)) {
                    Ok(())
                } else {
                    Err(FilterError::UnsupportedAttribute {
                        attr: attr.chars().take(64).collect(),
                        supported: supported.join(", "),
                    })
                }
            }
            Filter::And(a, b) | Filter::Or(a, b) => {
                a.check_attributes(supported)?;
                b.check_attributes(supported)
            }
        }
    }

    /// Whether `target` satisfies the filter. Attribute names reach `target` lowercased.
    pub fn matches(&self, target: &dyn Attributes) -> bool {
        match self {
            Filter::Compare {
                attr, op, folded, ..
            } => target.any_value(attr, &mut |candidate| compare(*op, candidate, folded)),
            Filter::And(a, b) => a.matches(target) && b.matches(target),
            Filter::Or(a, b) => a.matches(target) || b.matches(target),
        }
    }
}

fn compare(op: Op, candidate: &str, folded: &str) -> bool {
    // Cheap exits before allocating a lowercased copy.
    if op == Op::Eq && candidate.len() != folded.len() && candidate.is_ascii() && folded.is_ascii()
    {
        return false;
    }
    let candidate = candidate.to_lowercase();
    match op {
        Op::Eq => candidate == folded,
        Op::Co => candidate.contains(folded),
        Op::Sw => candidate.starts_with(folded),
    }
}

impl fmt::Display for Filter {
    /// The filter in the form the server parses: `title eq "x"`, escaping `"` and `\`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Filter::Compare {
                attr, op, value, ..
            } => {
                write!(f, "{attr} {} \"", op.as_str())?;
                for c in value.chars() {
                    if c == '"' || c == '\\' {
                        f.write_str("\\")?;
                    }
                    write!(f, "{c}")?;
                }
                f.write_str("\"")
            }
            Filter::And(a, b) => write!(f, "({a}) and ({b})"),
            Filter::Or(a, b) => write!(f, "({a}) or ({b})"),
        }
    }
}

impl std::str::FromStr for Filter {
    type Err = FilterError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        parse(s)
    }
}

/// Parses a filter string (already URL-decoded, so `+` is a space by now).
pub fn parse(s: &str) -> Result<Filter, FilterError> {
    let mut p = Parser { src: s, pos: 0 };
    p.skip_ws();
    if p.at_end() {
        return Err(FilterError::Empty);
    }
    let filter = p.expr(0)?;
    p.skip_ws();
    if !p.at_end() {
        return Err(FilterError::Trailing { pos: p.pos });
    }
    Ok(filter)
}

struct Parser<'a> {
    src: &'a str,
    pos: usize,
}

impl<'a> Parser<'a> {
    fn rest(&self) -> &str {
        &self.src[self.pos..]
    }

    fn at_end(&self) -> bool {
        self.pos >= self.src.len()
    }

    fn skip_ws(&mut self) {
        let rest = self.rest();
        self.pos += rest.len() - rest.trim_start().len();
    }

    /// Consumes `word` (case-insensitive) when it stands alone at the cursor.
    fn keyword(&mut self, word: &str) -> bool {
        let rest = self.rest();
        let Some(head) = rest.get(..word.len()) else {
            return false;
        };
        let boundary = rest[word.len()..]
            .chars()
            .next()
            .is_none_or(|c| c.is_whitespace() || c == '(');
        if head.eq_ignore_ascii_case(word) && boundary {
            self.pos += word.len();
            true
        } else {
            false
        }
    }

    fn expr(&mut self, depth: usize) -> Result<Filter, FilterError> {
        let mut left = self.term(depth)?;
        loop {
            self.skip_ws();
            if self.keyword("or") {
                self.skip_ws();
                left = Filter::Or(Box::new(left), Box::new(self.term(depth)?));
            } else {
                return Ok(left);
            }
        }
    }

    fn term(&mut self, depth: usize) -> Result<Filter, FilterError> {
        let mut left = self.factor(depth)?;
        loop {
            self.skip_ws();
            if self.keyword("and") {
                self.skip_ws();
                left = Filter::And(Box::new(left), Box::new(self.factor(depth)?));
            } else {
                return Ok(left);
            }
        }
    }

    fn factor(&mut self, depth: usize) -> Result<Filter, FilterError> {
        self.skip_ws();
        if self.rest().starts_with('(') {
            if depth >= MAX_DEPTH {
                return Err(FilterError::TooDeep);
            }
            self.pos += 1;
            let inner = self.expr(depth + 1)?;
            self.skip_ws();
            if !self.rest().starts_with(')') {
                return Err(FilterError::Expected {
                    expected: "')'",
                    pos: self.pos,
                });
            }
            self.pos += 1;
            return Ok(inner);
        }
        let attr = self.word();
        if attr.is_empty()
            || !attr
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
        {
            return Err(FilterError::Expected {
                expected: "an attribute name",
                pos: self.pos - attr.len(),
            });
        }
        self.skip_ws();
        let op_pos = self.pos;
        let op_word = self.word();
        if op_word.is_empty() {
            return Err(FilterError::Expected {
                expected: "an operator (eq, co, sw)",
                pos: op_pos,
            });
        }
        let op = Op::parse(op_word).ok_or_else(|| FilterError::UnknownOperator {
            op: op_word.chars().take(16).collect(),
        })?;
        self.skip_ws();
        let value = self.quoted()?;
        Ok(Filter::compare(attr, op, value))
    }

    /// A run of characters up to whitespace, a quote or a parenthesis.
    fn word(&mut self) -> &'a str {
        let start = self.pos;
        let len = self
            .rest()
            .find(|c: char| c.is_whitespace() || matches!(c, '"' | '(' | ')'))
            .unwrap_or(self.rest().len());
        self.pos += len;
        &self.src[start..start + len]
    }

    fn quoted(&mut self) -> Result<String, FilterError> {
        let start = self.pos;
        let mut chars = self.rest().char_indices();
        match chars.next() {
            Some((_, '"')) => {}
            Some((_, '\'')) => return Err(FilterError::SingleQuote),
            _ => {
                return Err(FilterError::Expected {
                    expected: "a double-quoted value",
                    pos: start,
                });
            }
        }
        let mut value = String::new();
        let mut escaped = false;
        for (i, c) in chars {
            if escaped {
                value.push(c);
                escaped = false;
            } else if c == '\\' {
                escaped = true;
            } else if c == '"' {
                self.pos = start + i + 1;
                return Ok(value);
            } else if c == '\'' {
                return Err(FilterError::SingleQuote);
            } else {
                value.push(c);
            }
        }
        Err(FilterError::Unterminated { pos: start })
    }
}

#[cfg(test)]
mod tests;

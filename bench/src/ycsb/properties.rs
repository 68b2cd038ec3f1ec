//! YCSB workload files: the Java properties format, and the errors a workload can have.
//!
//! Supported: `key=value`, `key: value` and `key value`; comment lines starting with `#` or
//! `!`; blank lines; a line ending in an odd number of backslashes continues on the next
//! line; `\\`, `\=`, `\:`, `\#`, `\!` and `\ ` escapes. A key given twice keeps its last
//! value (as Java's `Properties` does). Every property remembers where it came from
//! (`file:line`, `-p`, a preset) so that errors point at it.

use std::fmt;

/// One `key=value` and where it was written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Property {
    /// The key, as written.
    pub key: String,
    /// The value, trimmed.
    pub value: String,
    /// Where: `workloads/x:12`, `-p`, `workload a`, ….
    pub origin: String,
}

impl Property {
    /// A property from the command line or a preset.
    pub fn new(key: &str, value: impl ToString, origin: &str) -> Self {
        Property { key: key.to_string(), value: value.to_string(), origin: origin.to_string() }
    }

    /// Parses `key=value` (the `-p` flag).
    pub fn parse_assignment(s: &str) -> Result<Self, String> {
        match s.split_once('=') {
            Some((k, v)) if !k.trim().is_empty() => Ok(Property::new(k.trim(), v.trim(), "-p")),
            _ => Err(format!("expected KEY=VALUE, got {s:?}")),
        }
    }
}

/// What is wrong with a workload.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WorkloadError {
    /// The file could not be read.
    #[error("cannot read workload file {path}: {reason}")]
    Read {
        /// The path given.
        path: String,
        /// The I/O error.
        reason: String,
    },
    /// A line is not a property.
    #[error("{origin}: {reason}")]
    Syntax {
        /// `file:line`.
        origin: String,
        /// What is wrong.
        reason: String,
    },
    /// A key the core workload does not know.
    #[error("{origin}: unknown property {key:?}{hint}")]
    UnknownKey {
        /// Where.
        origin: String,
        /// The key.
        key: String,
        /// A suggestion, starting with "; " (or empty).
        hint: Hint,
    },
    /// A value that does not parse or is out of range.
    #[error("{origin}: {key} = {value:?}: {expected}")]
    BadValue {
        /// Where.
        origin: String,
        /// The key.
        key: String,
        /// The value.
        value: String,
        /// What was expected.
        expected: String,
    },
    /// Values that are fine alone but not together (proportions, counts, lengths).
    #[error("invalid workload: {0}")]
    Invalid(String),
}

/// A suggestion appended to an unknown-key error.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Hint(pub String);

impl fmt::Display for Hint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0.is_empty() {
            Ok(())
        } else {
            write!(f, "; {}", self.0)
        }
    }
}

/// Parses properties text; `origin` names it in errors (`origin:line`).
pub fn parse(text: &str, origin: &str) -> Result<Vec<Property>, WorkloadError> {
    let mut out = Vec::new();
    let mut lines = text.lines().enumerate();
    while let Some((i, line)) = lines.next() {
        let first = line.trim_start();
        if first.is_empty() || first.starts_with('#') || first.starts_with('!') {
            continue;
        }
        let mut logical = first.to_string();
        while ends_with_continuation(&logical) {
            logical.pop();
            match lines.next() {
                Some((_, next)) => logical.push_str(next.trim_start()),
                None => break,
            }
        }
        let at = format!("{origin}:{}", i + 1);
        let (key, value) = split_key_value(&logical);
        if key.is_empty() {
            return Err(WorkloadError::Syntax { origin: at, reason: format!("no key in {line:?}") });
        }
        out.push(Property { key, value, origin: at });
    }
    Ok(out)
}

/// An odd number of trailing backslashes continues the line.
fn ends_with_continuation(s: &str) -> bool {
    s.chars().rev().take_while(|&c| c == '\\').count() % 2 == 1
}

/// Splits at the first unescaped `=`, `:` or whitespace; unescapes both halves.
fn split_key_value(line: &str) -> (String, String) {
    let mut key = String::new();
    let mut chars = line.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\\' => key.push(unescape(chars.next())),
            '=' | ':' => break,
            c if c.is_whitespace() => {
                // `key value` or `key = value`: skip blanks and one separator.
                while chars.peek().is_some_and(|c| c.is_whitespace()) {
                    chars.next();
                }
                if matches!(chars.peek(), Some('=') | Some(':')) {
                    chars.next();
                }
                break;
            }
            c => key.push(c),
        }
    }
    let mut value = String::new();
    let rest: String = chars.collect();
    let mut chars = rest.trim().chars();
    while let Some(c) = chars.next() {
        value.push(if c == '\\' { unescape(chars.next()) } else { c });
    }
    (key, value)
}

fn unescape(c: Option<char>) -> char {
    match c {
        Some('t') => '\t',
        Some('n') => '\n',
        Some(c) => c,
        None => '\\',
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kv(text: &str) -> Vec<(String, String)> {
        parse(text, "f").unwrap().into_iter().map(|p| (p.key, p.value)).collect()
    }

    #[test]
    fn parses_the_java_properties_forms() {
        let text = "# comment\n! another\n\nrecordcount=1000\n  readproportion = 0.5\nworkload: site.ycsb.workloads.CoreWorkload\nrequestdistribution zipfian\ntable=user\\=table\nfieldlength=1\\\n   00\nempty=\n";
        let want = [
            ("recordcount", "1000"),
            ("readproportion", "0.5"),
            ("workload", "site.ycsb.workloads.CoreWorkload"),
            ("requestdistribution", "zipfian"),
            ("table", "user=table"),
            ("fieldlength", "100"),
            ("empty", ""),
        ];
        let got = kv(text);
        assert_eq!(got.len(), want.len());
        for ((k, v), (wk, wv)) in got.iter().zip(want) {
            assert_eq!((k.as_str(), v.as_str()), (wk, wv));
        }
    }

    #[test]
    fn remembers_lines_and_rejects_keyless_lines() {
        let props = parse("\n\na=1\n", "w.txt").unwrap();
        assert_eq!(props[0].origin, "w.txt:3");
        let err = parse("a=1\n=5\n", "w.txt").unwrap_err();
        assert!(matches!(&err, WorkloadError::Syntax { origin, .. } if origin == "w.txt:2"), "{err}");
    }

    #[test]
    fn parses_command_line_assignments() {
        assert_eq!(Property::parse_assignment("a = 1").unwrap(), Property::new("a", "1", "-p"));
        assert!(Property::parse_assignment("novalue").is_err());
        assert!(Property::parse_assignment("=1").is_err());
    }
}

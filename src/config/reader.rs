//! A reader over one TOML table that records every problem instead of stopping at the first.
//!
//! serde stops at the first error, but `check` must list them all, each with its key path.
//! Every accessor removes the key it reads, so whatever is left at [`Section::finish`] is an
//! unknown key and is reported with the keys that were expected.

use std::cell::RefCell;
use std::time::Duration;

use toml::{Table, Value};

use super::ConfigIssue;

/// The longest duration accepted anywhere: timers far in the future overflow `Instant`.
const MAX_DURATION: Duration = Duration::from_secs(365 * 24 * 3600);

/// Collects the problems found while reading a config.
pub(crate) type Issues = RefCell<Vec<ConfigIssue>>;

/// One table of the config (`server`, `session.jwt`, `routes[2]`…), read key by key.
pub(crate) struct Section<'a> {
    path: String,
    table: Table,
    known: &'static [&'static str],
    issues: &'a Issues,
}

impl<'a> Section<'a> {
    /// Wraps `table`, found at `path`, whose allowed keys are `known`.
    pub(crate) fn new(
        path: impl Into<String>,
        table: Table,
        known: &'static [&'static str],
        issues: &'a Issues,
    ) -> Self {
        Section {
            path: path.into(),
            table,
            known,
            issues,
        }
    }

    /// The full dotted path of `key` in this section.
    pub(crate) fn key(&self, key: &str) -> String {
        if self.path.is_empty() {
            key.to_string()
        } else {
            format!("{}.{key}", self.path)
        }
    }

    /// Records a problem with `key` of this section.
    pub(crate) fn issue(&self, key: &str, message: impl Into<String>) {
        self.report(self.key(key), message);
    }

    /// Records a problem with an arbitrary key path.
    pub(crate) fn report(&self, key: String, message: impl Into<String>) {
        self.issues.borrow_mut().push(ConfigIssue {
            key,
            message: message.into(),
        });
    }

    /// True when the key is present (without consuming it).
    pub(crate) fn has(&self, key: &str) -> bool {
        self.table.contains_key(key)
    }

    fn take_value(&mut self, key: &str) -> Option<Value> {
        self.table.remove(key)
    }

    fn wrong_type(&self, key: &str, expected: &str, found: &Value) {
        self.issue(
            key,
            format!("expected {expected}, found {}", describe(found)),
        );
    }

    /// A string value.
    pub(crate) fn string(&mut self, key: &str) -> Option<String> {
        match self.take_value(key)? {
            Value::String(s) => Some(s),
            other => {
                self.wrong_type(key, "a string", &other);
                None
            }
        }
    }

    /// A string value that must be present.
    pub(crate) fn required_string(&mut self, key: &str, example: &str) -> Option<String> {
        if !self.has(key) {
            self.issue(key, format!("missing (expected a string, e.g. {example})"));
            return None;
        }
        self.string(key)
    }

    /// A boolean value.
    pub(crate) fn bool(&mut self, key: &str) -> Option<bool> {
        match self.take_value(key)? {
            Value::Boolean(b) => Some(b),
            other => {
                self.wrong_type(key, "true or false", &other);
                None
            }
        }
    }

    /// A non-negative integer value.
    pub(crate) fn unsigned(&mut self, key: &str) -> Option<u64> {
        match self.take_value(key)? {
            Value::Integer(i) if i >= 0 => Some(i as u64),
            other => {
                self.wrong_type(key, "a non-negative integer", &other);
                None
            }
        }
    }

    /// One string, or an array of strings (`listen = "a"` or `listen = ["a", "b"]`).
    pub(crate) fn string_or_list(&mut self, key: &str) -> Option<Vec<String>> {
        match self.take_value(key)? {
            Value::String(s) => Some(vec![s]),
            Value::Array(items) => self.strings_of(key, items),
            other => {
                self.wrong_type(key, "a string or an array of strings", &other);
                None
            }
        }
    }

    /// An array of strings.
    pub(crate) fn string_list(&mut self, key: &str) -> Option<Vec<String>> {
        match self.take_value(key)? {
            Value::Array(items) => self.strings_of(key, items),
            other => {
                self.wrong_type(key, "an array of strings", &other);
                None
            }
        }
    }

    fn strings_of(&self, key: &str, items: Vec<Value>) -> Option<Vec<String>> {
        let mut out = Vec::with_capacity(items.len());
        let mut ok = true;
        for (i, item) in items.into_iter().enumerate() {
            match item {
                Value::String(s) => out.push(s),
                other => {
                    self.wrong_type(&format!("{key}[{i}]"), "a string", &other);
                    ok = false;
                }
            }
        }
        ok.then_some(out)
    }

    /// A duration string such as `"750ms"`, `"15m"` or `"1h 30m"`.
    pub(crate) fn duration(&mut self, key: &str) -> Option<Duration> {
        let raw = match self.take_value(key)? {
            Value::String(s) => s,
            other => {
                self.wrong_type(key, "a duration string like \"750ms\" or \"15m\"", &other);
                return None;
            }
        };
        match humantime::parse_duration(&raw) {
            Ok(d) if d > MAX_DURATION => {
                self.issue(key, format!("{raw:?} is too long (at most 365d)"));
                None
            }
            Ok(d) => Some(d),
            Err(e) => {
                self.issue(
                    key,
                    format!(
                        "invalid duration {raw:?}: {e} (expected e.g. \"750ms\", \"15m\", \"1h\")"
                    ),
                );
                None
            }
        }
    }

    /// One of a fixed set of words; `what` names the kind of value in the message.
    pub(crate) fn choice(&mut self, key: &str, what: &str, allowed: &[&str]) -> Option<String> {
        let value = self.string(key)?;
        if allowed.contains(&value.as_str()) {
            Some(value)
        } else {
            self.issue(
                key,
                format!("unknown {what} {value:?} (expected {})", allowed.join(", ")),
            );
            None
        }
    }

    /// A nested table, as a section of its own.
    pub(crate) fn table(
        &mut self,
        key: &str,
        known: &'static [&'static str],
    ) -> Option<Section<'a>> {
        match self.take_value(key)? {
            Value::Table(t) => Some(Section::new(self.key(key), t, known, self.issues)),
            other => {
                self.wrong_type(key, "a table", &other);
                None
            }
        }
    }

    /// A nested table with free-form keys (e.g. `[session.fields]`), returned raw.
    pub(crate) fn raw_table(&mut self, key: &str) -> Option<Table> {
        match self.take_value(key)? {
            Value::Table(t) => Some(t),
            other => {
                self.wrong_type(key, "a table", &other);
                None
            }
        }
    }

    /// An array of tables (`[[routes]]`), each as a section.
    pub(crate) fn table_array(
        &mut self,
        key: &str,
        known: &'static [&'static str],
    ) -> Vec<Section<'a>> {
        let Some(value) = self.take_value(key) else {
            return Vec::new();
        };
        let Value::Array(items) = value else {
            self.wrong_type(key, "an array of tables ([[routes]])", &value);
            return Vec::new();
        };
        let mut out = Vec::new();
        for (i, item) in items.into_iter().enumerate() {
            let path = format!("{}[{i}]", self.key(key));
            match item {
                Value::Table(t) => out.push(Section::new(path, t, known, self.issues)),
                other => self.report(
                    path,
                    format!("expected a table, found {}", describe(&other)),
                ),
            }
        }
        out
    }

    /// Reports every key that no accessor read.
    pub(crate) fn finish(self) {
        for key in self.table.keys() {
            self.issue(
                key,
                format!("unknown key (expected one of: {})", self.known.join(", ")),
            );
        }
    }
}

/// A short description of a TOML value for error messages.
pub(crate) fn describe(value: &Value) -> String {
    match value {
        Value::String(s) => format!("string {s:?}"),
        Value::Integer(i) => format!("integer {i}"),
        Value::Float(f) => format!("float {f}"),
        Value::Boolean(b) => format!("boolean {b}"),
        Value::Datetime(d) => format!("datetime {d}"),
        Value::Array(_) => "an array".to_string(),
        Value::Table(_) => "a table".to_string(),
    }
}

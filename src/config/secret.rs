//! Secrets named by `*_env` / `*_file` keys, read once at start and never printed.

use std::fmt;
use std::path::Path;
use std::sync::Arc;

use super::reader::Section;

/// A secret value. Its `Debug` is redacted so it cannot leak through a log line.
#[derive(Clone)]
pub struct Secret {
    value: Arc<[u8]>,
    origin: Arc<SecretOrigin>,
}

/// Where a secret was read from: what a warning names when the secret seems wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SecretOrigin {
    /// The config key, e.g. `session.jwt.key_env`.
    pub key: String,
    /// The variable or file it named, e.g. `environment variable APP_SESSION_SECRET`.
    pub source: String,
}

impl fmt::Display for SecretOrigin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({})", self.key, self.source)
    }
}

impl Secret {
    /// Wraps raw secret bytes given in code.
    pub fn new(bytes: impl Into<Vec<u8>>) -> Self {
        Secret::from_origin(
            bytes,
            SecretOrigin {
                key: "(none)".into(),
                source: "given in code".into(),
            },
        )
    }

    /// Wraps secret bytes read from `origin`.
    pub fn from_origin(bytes: impl Into<Vec<u8>>, origin: SecretOrigin) -> Self {
        Secret {
            value: Arc::from(bytes.into()),
            origin: Arc::new(origin),
        }
    }

    /// The secret bytes, for the code that signs or verifies with them.
    pub fn expose(&self) -> &[u8] {
        &self.value
    }

    /// Where the secret was read from. Never the value.
    pub fn origin(&self) -> &SecretOrigin {
        &self.origin
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(redacted)")
    }
}

/// Where `*_env` names are looked up: the process environment, or a map (demo, tests).
pub trait SecretEnv {
    /// The value of the environment variable `name`, if set.
    fn var(&self, name: &str) -> Option<String>;
}

/// The real process environment.
pub struct ProcessEnv;

impl SecretEnv for ProcessEnv {
    fn var(&self, name: &str) -> Option<String> {
        std::env::var(name).ok()
    }
}

impl<S: std::hash::BuildHasher> SecretEnv for std::collections::HashMap<String, String, S> {
    fn var(&self, name: &str) -> Option<String> {
        self.get(name).cloned()
    }
}

/// Reads the secret named by `<stem>_env` or `<stem>_file` in `section`.
///
/// Exactly one of the two must be set when `required`; the value is trimmed and must not be
/// empty. Problems are recorded on the section; the value itself never appears in them.
pub(crate) fn read_secret(
    section: &mut Section<'_>,
    stem: &str,
    required: bool,
    env: &dyn SecretEnv,
) -> Option<Secret> {
    let env_key = format!("{stem}_env");
    let file_key = format!("{stem}_file");
    let from_env = section.string(&env_key);
    let from_file = section.string(&file_key);
    match (from_env, from_file) {
        (Some(_), Some(_)) => {
            section.issue(
                &env_key,
                format!("set only one of {env_key} and {file_key}"),
            );
            None
        }
        (Some(name), None) => match env.var(&name) {
            None => {
                section.issue(&env_key, format!("environment variable {name} is not set"));
                None
            }
            Some(value) => non_empty(
                section,
                &env_key,
                &format!("environment variable {name}"),
                value,
            ),
        },
        (None, Some(path)) => match std::fs::read(Path::new(&path)) {
            Err(e) => {
                section.issue(&file_key, format!("cannot read {path}: {e}"));
                None
            }
            Ok(bytes) => match String::from_utf8(bytes) {
                Ok(text) => non_empty(section, &file_key, &format!("file {path}"), text),
                Err(_) => {
                    section.issue(&file_key, format!("file {path} is not UTF-8 text"));
                    None
                }
            },
        },
        (None, None) => {
            if required {
                section.issue(
                    &env_key,
                    format!("missing (set {env_key} = \"VAR_NAME\" or {file_key} = \"/path\")"),
                );
            }
            None
        }
    }
}

/// For a section that is not in use: checks the `<stem>_env` / `<stem>_file` keys are
/// strings, but requires no variable or file. Always `None`.
pub(crate) fn skip_secret(section: &mut Section<'_>, stem: &str) -> Option<Secret> {
    let _ = section.string(&format!("{stem}_env"));
    let _ = section.string(&format!("{stem}_file"));
    None
}

fn non_empty(section: &Section<'_>, key: &str, origin: &str, value: String) -> Option<Secret> {
    let trimmed = value.trim();
    if trimmed.is_empty() {
        section.issue(key, format!("{origin} is empty"));
        None
    } else {
        let origin = SecretOrigin {
            key: section.key(key),
            source: origin.to_string(),
        };
        Some(Secret::from_origin(trimmed.as_bytes(), origin))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_is_redacted() {
        let s = Secret::new("hunter2");
        assert_eq!(format!("{s:?}"), "Secret(redacted)");
        assert_eq!(s.expose(), b"hunter2");
        assert!(!s.origin().to_string().contains("hunter2"));
    }
}

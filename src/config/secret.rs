//! Secrets named by `*_env` / `*_file` keys, read once at start and never printed.

use std::path::Path;

use super::reader::Section;
pub use crate::crypto::{Secret, SecretOrigin};

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

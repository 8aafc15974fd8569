//! The stores PHP frameworks keep sessions in, as raw bytes: files (one per session), Redis
//! (one key per session) and, for Laravel, a `sessions` table. Decoding the bytes is the
//! resolver's job; this module only fetches them, bounded in size.

use std::path::PathBuf;
use std::time::{Duration, SystemTime};

use tokio::io::AsyncReadExt;

use super::{IdentityError, ResolveError};
use crate::config::SessionStore;

/// Sessions larger than this are refused unread: no app keeps a user's id in megabytes, and
/// a store is not the place to let one request make the proxy read them.
pub(super) const MAX_SESSION_BYTES: u64 = 512 * 1024;

/// A session as stored.
pub(super) struct Stored {
    /// The stored bytes.
    pub data: Vec<u8>,
    /// When it was last written (file time, Laravel's `last_activity`), when the store says.
    pub modified: Option<SystemTime>,
}

/// One of the stores, opened lazily.
pub(super) enum RawStore {
    Files {
        dir: PathBuf,
        prefix: &'static str,
        levels: usize,
    },
    #[cfg(feature = "redis")]
    Redis {
        store: Box<super::redis::RedisStore>,
        key: String,
    },
    #[cfg(feature = "sql")]
    Database {
        store: Box<super::sql::SqlStore>,
        query: String,
    },
}

impl RawStore {
    /// The store `config` names; `section` (e.g. `session.php`) prefixes error keys.
    pub(super) fn new(
        config: &SessionStore,
        timeout: Duration,
        url_key: &'static str,
    ) -> Result<RawStore, IdentityError> {
        let _ = (timeout, url_key);
        Ok(match config {
            SessionStore::Files {
                dir,
                prefix,
                levels,
            } => RawStore::Files {
                dir: dir.clone(),
                prefix,
                levels: *levels,
            },
            #[cfg(feature = "redis")]
            SessionStore::Redis { url, key } => RawStore::Redis {
                store: Box::new(super::redis::RedisStore::new(url, timeout, url_key)?),
                key: key.clone(),
            },
            #[cfg(feature = "sql")]
            SessionStore::Database { url, table } => {
                let store = super::sql::SqlStore::new(url, timeout, url_key)?;
                // Laravel's DatabaseSessionHandler: the payload base64, last_activity in
                // seconds. The table name was checked to be an identifier.
                let query = format!(
                    "SELECT payload, last_activity FROM {table} WHERE id = {}",
                    store.placeholder()
                );
                RawStore::Database {
                    store: Box::new(store),
                    query,
                }
            }
            #[allow(unreachable_patterns)] // every store built in
            _ => {
                return Err(IdentityError::Config {
                    key: url_key,
                    message:
                        "this build has no Redis or SQL support (cargo features \"redis\", \"sql\")"
                            .into(),
                });
            }
        })
    }

    /// The session stored under `sid` (already checked to be a plain id), `None` when there
    /// is none.
    pub(super) async fn fetch(&self, sid: &str) -> Result<Option<Stored>, ResolveError> {
        match self {
            RawStore::Files {
                dir,
                prefix,
                levels,
            } => read_file(&file_path(dir, prefix, *levels, sid)).await,
            #[cfg(feature = "redis")]
            RawStore::Redis { store, key } => {
                let data = store.get(&key.replace("{sid}", sid)).await?;
                match data {
                    Some(data) if data.len() as u64 > MAX_SESSION_BYTES => Err(too_large()),
                    Some(data) => Ok(Some(Stored {
                        data,
                        modified: None,
                    })),
                    None => Ok(None),
                }
            }
            #[cfg(feature = "sql")]
            RawStore::Database { store, query } => {
                let Some(row) = store.row(query, sid).await? else {
                    return Ok(None);
                };
                database_session(&row).map(Some)
            }
        }
    }

    /// Whether the store answers.
    pub(super) async fn probe(&self) -> Result<(), ResolveError> {
        match self {
            RawStore::Files { dir, .. } => tokio::fs::metadata(dir)
                .await
                .map(drop)
                .map_err(|e| ResolveError::Store(format!("{}: {e}", dir.display()))),
            #[cfg(feature = "redis")]
            RawStore::Redis { store, .. } => store.probe().await,
            #[cfg(feature = "sql")]
            RawStore::Database { store, .. } => store.probe().await,
        }
    }

    /// What the store is, for log lines (never with credentials).
    pub(super) fn describe(&self) -> String {
        match self {
            RawStore::Files { dir, .. } => format!("files in {}", dir.display()),
            #[cfg(feature = "redis")]
            RawStore::Redis { store, .. } => store.describe(),
            #[cfg(feature = "sql")]
            RawStore::Database { store, .. } => store.describe(),
        }
    }
}

fn too_large() -> ResolveError {
    ResolveError::Store(format!(
        "session larger than {} KiB; not read",
        MAX_SESSION_BYTES / 1024
    ))
}

/// `dir/a/b/prefix<sid>` for two levels, as PHP's files handler spreads sessions.
fn file_path(dir: &std::path::Path, prefix: &str, levels: usize, sid: &str) -> PathBuf {
    let mut path = dir.to_path_buf();
    for c in sid.chars().take(levels) {
        path.push(c.to_string());
    }
    path.push(format!("{prefix}{sid}"));
    path
}

async fn read_file(path: &std::path::Path) -> Result<Option<Stored>, ResolveError> {
    let unreadable = |e: std::io::Error| ResolveError::Store(format!("{}: {e}", path.display()));
    let mut file = match tokio::fs::File::open(path).await {
        Ok(file) => file,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(unreadable(e)),
    };
    let metadata = file.metadata().await.map_err(unreadable)?;
    if !metadata.is_file() {
        return Ok(None);
    }
    if metadata.len() > MAX_SESSION_BYTES {
        return Err(too_large());
    }
    let mut data = Vec::with_capacity(metadata.len() as usize);
    // Bounded again: the file may grow between the two calls.
    (&mut file)
        .take(MAX_SESSION_BYTES + 1)
        .read_to_end(&mut data)
        .await
        .map_err(unreadable)?;
    if data.len() as u64 > MAX_SESSION_BYTES {
        return Err(too_large());
    }
    Ok(Some(Stored {
        data,
        modified: metadata.modified().ok(),
    }))
}

/// A row of Laravel's `sessions` table: `payload` is base64 of the serialized session.
#[cfg(feature = "sql")]
fn database_session(row: &serde_json::Value) -> Result<Stored, ResolveError> {
    use base64::Engine;
    let payload = row["payload"].as_str().unwrap_or_default().trim();
    if payload.len() as u64 > MAX_SESSION_BYTES * 4 / 3 + 4 {
        return Err(too_large());
    }
    let data = base64::engine::general_purpose::STANDARD
        .decode(payload)
        .map_err(|_| ResolveError::Store("sessions.payload is not base64".into()))?;
    let modified = row["last_activity"]
        .as_u64()
        .or_else(|| row["last_activity"].as_str()?.parse().ok())
        .map(|secs| SystemTime::UNIX_EPOCH + Duration::from_secs(secs));
    Ok(Stored { data, modified })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn php_spreads_sessions_over_levels_of_directories() {
        let dir = std::path::Path::new("/var/lib/php/sessions");
        assert_eq!(
            file_path(dir, "sess_", 0, "abc"),
            PathBuf::from("/var/lib/php/sessions/sess_abc")
        );
        assert_eq!(
            file_path(dir, "sess_", 2, "abc"),
            PathBuf::from("/var/lib/php/sessions/a/b/sess_abc")
        );
    }

    #[tokio::test]
    async fn files_past_the_bound_are_refused_and_missing_ones_are_none() {
        let dir = tempfile::tempdir().unwrap();
        let store = RawStore::Files {
            dir: dir.path().to_path_buf(),
            prefix: "sess_",
            levels: 0,
        };
        assert!(store.fetch("missing").await.unwrap().is_none());
        std::fs::write(dir.path().join("sess_big"), vec![b'x'; 1024 * 1024]).unwrap();
        assert!(store.fetch("big").await.is_err());
        std::fs::write(dir.path().join("sess_ok"), b"user_id|i:1;").unwrap();
        let stored = store.fetch("ok").await.unwrap().unwrap();
        assert_eq!(stored.data, b"user_id|i:1;");
        assert!(stored.modified.is_some());
    }
}

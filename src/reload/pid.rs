//! `[server] pid_file`: where `intercom-secure-proxy reload` finds the process to signal.

use std::path::{Path, PathBuf};

use tracing::warn;

/// The pid file, written once the proxy listens (and handles SIGHUP), removed when it
/// stops: a file that names this process means "ready for a reload".
pub(crate) struct PidFile {
    path: PathBuf,
    pid: String,
}

impl PidFile {
    /// Writes this process's id to `path` (atomically: a reader never sees half of it).
    /// A failure is logged, not fatal: the proxy serves without.
    pub(crate) fn write(path: &Path) -> Option<PidFile> {
        let pid = std::process::id().to_string();
        let partial = path.with_extension("pid-new");
        let written = std::fs::write(&partial, format!("{pid}\n"))
            .and_then(|()| std::fs::rename(&partial, path));
        match written {
            Ok(()) => Some(PidFile {
                path: path.to_path_buf(),
                pid,
            }),
            Err(e) => {
                let _ = std::fs::remove_file(&partial);
                warn!(key = "server.pid_file", path = %path.display(), error = %e, "cannot write the pid file; `reload` needs --pid");
                None
            }
        }
    }
}

impl Drop for PidFile {
    fn drop(&mut self) {
        // Only our own: another proxy started since may have written its id there.
        let ours = std::fs::read_to_string(&self.path).is_ok_and(|text| text.trim() == self.pid);
        if ours {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

/// The process id a pid file names.
pub fn read_pid_file(path: &Path) -> Result<i32, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("cannot read pid file {}: {e}", path.display()))?;
    match text.trim().parse::<i32>() {
        Ok(pid) if pid > 1 => Ok(pid),
        _ => Err(format!(
            "pid file {} does not hold a process id",
            path.display()
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_pid_file_names_this_process_and_goes_with_it() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("proxy.pid");
        let file = PidFile::write(&path).unwrap();
        assert_eq!(read_pid_file(&path), Ok(std::process::id() as i32));
        drop(file);
        assert!(!path.exists());
        // Someone else's id is left in place.
        let file = PidFile::write(&path).unwrap();
        std::fs::write(&path, "4242\n").unwrap();
        drop(file);
        assert_eq!(read_pid_file(&path), Ok(4242));
        std::fs::write(&path, "nonsense").unwrap();
        assert!(read_pid_file(&path).is_err());
    }
}

//! The Python fixtures (tests/fixtures/django-app, tests/fixtures/flask-app): a venv under
//! `target/pyenv` with the packages of `tests/fixtures/python/requirements.txt`, made by the
//! first test that needs it and reused while that file (and the interpreter) stay the same.

use std::io::BufRead;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::Duration;

use sha2::Digest;

fn manifest_dir() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// The venv (`target/pyenv`; its interpreter is [`python_bin`]), made once per machine and
/// requirements file. `None` (after saying "skipped: …") when python3, its venv module or the
/// package index is missing and CI is not set; in CI that fails.
pub fn python_env() -> Option<PathBuf> {
    // One thread per test binary makes it; the others wait here for its answer.
    static ENV: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    match ENV.get_or_init(make_env) {
        Ok(path) => Some(path.clone()),
        Err(why) => {
            assert!(
                std::env::var_os("CI").is_none(),
                "no Python venv for the fixtures: {why}"
            );
            eprintln!("skipped: no Python venv for the fixtures: {why}");
            None
        }
    }
}

/// The venv's interpreter.
pub fn python_bin(env: &Path) -> PathBuf {
    env.join("bin").join("python")
}

fn make_env() -> Result<PathBuf, String> {
    let target = manifest_dir().join("target");
    let venv = target.join("pyenv");
    let requirements = manifest_dir().join("tests/fixtures/python/requirements.txt");
    let wanted =
        std::fs::read(&requirements).map_err(|e| format!("{}: {e}", requirements.display()))?;
    let version = Command::new("python3")
        .arg("--version")
        .output()
        .map_err(|e| format!("python3: {e}"))?;
    if !version.status.success() {
        return Err("python3 --version failed".into());
    }
    // What the venv was made from: the requirements and the interpreter.
    let mut hasher = sha2::Sha256::new();
    hasher.update(&wanted);
    hasher.update(&version.stdout);
    hasher.update(&version.stderr);
    let stamp: String = hasher
        .finalize()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    let ready = venv.join(".ready");
    let is_ready = || std::fs::read_to_string(&ready).is_ok_and(|s| s.trim() == stamp);
    if is_ready() {
        return Ok(venv);
    }
    std::fs::create_dir_all(&target).map_err(|e| format!("{}: {e}", target.display()))?;
    // Another test binary may be making it: take the lock, then look again.
    let _lock = DirLock::acquire(&target.join("pyenv.lock"))?;
    if is_ready() {
        return Ok(venv);
    }
    if venv.exists() {
        std::fs::remove_dir_all(&venv).map_err(|e| format!("{}: {e}", venv.display()))?;
    }
    run(Command::new("python3").arg("-m").arg("venv").arg(&venv))?;
    run(Command::new(python_bin(&venv))
        .args([
            "-m",
            "pip",
            "install",
            "--quiet",
            "--disable-pip-version-check",
            "--no-input",
            "-r",
        ])
        .arg(&requirements))?;
    std::fs::write(&ready, &stamp).map_err(|e| format!("{}: {e}", ready.display()))?;
    Ok(venv)
}

/// Runs `command`; its output is only shown when it fails.
fn run(command: &mut Command) -> Result<(), String> {
    let shown = format!("{command:?}");
    let out = command
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("{shown}: {e}"))?;
    if out.status.success() {
        return Ok(());
    }
    Err(format!(
        "{shown} failed ({}):\n{}{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    ))
}

/// A lock between processes: a directory made atomically with `create_dir`, holding the
/// owner's pid; removed on drop. A lock whose owner is gone (killed mid-install) is taken over.
struct DirLock {
    path: PathBuf,
}

impl DirLock {
    fn acquire(path: &Path) -> Result<DirLock, String> {
        // pip takes seconds here, minutes on a slow index: wait up to 15 minutes.
        for _ in 0..(15 * 60 * 5) {
            match std::fs::create_dir(path) {
                Ok(()) => {
                    let _ = std::fs::write(path.join("pid"), std::process::id().to_string());
                    return Ok(DirLock {
                        path: path.to_path_buf(),
                    });
                }
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                    let owner = std::fs::read_to_string(path.join("pid"))
                        .ok()
                        .and_then(|pid| pid.trim().parse::<u32>().ok());
                    if let Some(pid) = owner
                        && !Path::new(&format!("/proc/{pid}")).exists()
                    {
                        let _ = std::fs::remove_dir_all(path);
                        continue;
                    }
                }
                Err(e) => return Err(format!("{}: {e}", path.display())),
            }
            // Waiting on another process (its pip install), not on anything in this one.
            std::thread::sleep(Duration::from_millis(200));
        }
        Err(format!(
            "{} still held after 15 minutes (remove it if no test runs)",
            path.display()
        ))
    }
}

impl Drop for DirLock {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.path);
    }
}

/// A Python fixture app, killed on drop.
pub struct PythonApp {
    child: std::process::Child,
    /// Where it listens on 127.0.0.1.
    pub port: u16,
}

impl PythonApp {
    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }
}

impl Drop for PythonApp {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Runs `script` in the fixture directory `dir` with the venv's interpreter and `env`, and
/// waits for its `listening <port>` line. `None` (after "skipped: …") without a venv, except
/// in CI. The app's errors go to stderr.
pub fn start_python_app(dir: &Path, script: &str, env: &[(&str, &str)]) -> Option<PythonApp> {
    let venv = python_env()?;
    let mut child = Command::new(python_bin(&venv))
        .arg(script)
        .current_dir(dir)
        .env("PYTHONUNBUFFERED", "1")
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .envs(env.iter().copied())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .spawn()
        .expect("the venv's python runs");
    let mut seen = Vec::new();
    let mut port = None;
    for line in std::io::BufReader::new(child.stdout.take().expect("piped stdout"))
        .lines()
        .map_while(Result::ok)
    {
        if let Some(p) = line.trim().strip_prefix("listening ") {
            port = p.parse().ok();
            break;
        }
        seen.push(line);
    }
    let Some(port) = port else {
        let _ = child.kill();
        let _ = child.wait();
        panic!(
            "{} {script} did not start (its errors are above): {seen:?}",
            dir.display()
        );
    };
    Some(PythonApp { child, port })
}

/// Runs Python `code` (with `args` as `sys.argv[1:]`) in `dir` with the venv's interpreter and
/// `env`; its stdout, trimmed. Panics when it fails. Needs [`python_env`] to have answered.
pub fn python_output(dir: &Path, code: &str, args: &[&str], env: &[(&str, &str)]) -> String {
    let venv = python_env().expect("the venv");
    let out = Command::new(python_bin(&venv))
        .arg("-c")
        .arg(code)
        .args(args)
        .current_dir(dir)
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .envs(env.iter().copied())
        .stdin(Stdio::null())
        .output()
        .expect("the venv's python runs");
    assert!(
        out.status.success(),
        "python -c failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

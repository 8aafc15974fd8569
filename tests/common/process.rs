//! The real binary as a child process: started on a config, its log lines kept, its memory
//! read from /proc. `ISP_BIN` runs another build instead (say, an old release, to see a test
//! fail).

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};

pub struct ProxyProcess {
    pub child: Child,
    pub addr: SocketAddr,
    pub log: Arc<Mutex<Vec<String>>>,
    _dir: tempfile::TempDir,
}

impl Drop for ProxyProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl ProxyProcess {
    /// Runs the binary on `config` (with the harness's secrets in its environment) until it
    /// says where it listens.
    pub fn start(config: &str) -> Self {
        let bin = std::env::var("ISP_BIN")
            .unwrap_or_else(|_| env!("CARGO_BIN_EXE_intercom-secure-proxy").to_string());
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("proxy.toml");
        std::fs::write(&path, config).unwrap();
        let mut child = Command::new(bin)
            .arg("--config")
            .arg(&path)
            .envs(super::test_env())
            .env("RUST_LOG", "info")
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
        let addr = lines
            .by_ref()
            .map_while(Result::ok)
            .find_map(|line| {
                let at = line.find("listening")?;
                let addr = line[at..].split("addr=").nth(1)?;
                addr.split_whitespace().next()?.parse().ok()
            })
            .expect("the proxy did not start");
        let log = Arc::new(Mutex::new(Vec::new()));
        let keep = log.clone();
        std::thread::spawn(move || {
            for line in lines.map_while(Result::ok) {
                keep.lock().unwrap().push(line);
            }
        });
        ProxyProcess {
            child,
            addr,
            log,
            _dir: dir,
        }
    }

    /// A field of /proc/<pid>/status in bytes (`VmRSS:`, `VmHWM:`).
    pub fn status(&self, field: &str) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id())).unwrap();
        status
            .lines()
            .find_map(|l| l.strip_prefix(field)?.trim().strip_suffix("kB"))
            .and_then(|kb| kb.trim().parse::<u64>().ok())
            .unwrap_or_else(|| panic!("no {field} in /proc/<pid>/status"))
            * 1024
    }

    /// How many descriptors the process holds.
    pub fn open_fds(&self) -> usize {
        std::fs::read_dir(format!("/proc/{}/fd", self.child.id()))
            .map(|d| d.count())
            .unwrap_or(0)
    }

    /// Waits (at most 10 s) until the process holds no more than `limit` descriptors;
    /// returns how many it holds then.
    pub async fn fds_settle_to(&self, limit: usize) -> usize {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        loop {
            let now = self.open_fds();
            if now <= limit || std::time::Instant::now() > deadline {
                return now;
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
    }

    /// Still the process that was started: it neither exited nor was restarted.
    pub fn still_running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }
}

//! Private session stores that a test may kill, pause and restart: a redis-server and a
//! PostgreSQL cluster of their own, on their own ports, from the machine's packages. Used as
//! `#[path = "common/stores.rs"] mod stores;` beside `mod common;`.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A free TCP port on 127.0.0.1 (bound, then released for the store to take).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

fn signal(pid: u32, name: &str) {
    let _ = Command::new("kill").args([name, &pid.to_string()]).status();
}

/// Polls `ready` until it holds, for at most 30 s.
async fn until<F: AsyncFnMut() -> bool>(what: &str, mut ready: F) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while !ready().await {
        assert!(Instant::now() < deadline, "{what} did not start");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

pub struct PrivateRedis {
    pub port: u16,
    child: Option<Child>,
}

impl PrivateRedis {
    /// `None` when redis-server is not installed.
    pub async fn start() -> Option<PrivateRedis> {
        Command::new("redis-server")
            .arg("--version")
            .output()
            .ok()?;
        let mut redis = PrivateRedis {
            port: free_port(),
            child: None,
        };
        redis.restart().await;
        Some(redis)
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/0", self.port)
    }

    /// Starts it (again) on its port, empty, and waits until it answers PING.
    pub async fn restart(&mut self) {
        let port = self.port.to_string();
        self.child = Some(
            Command::new("redis-server")
                .args([
                    "--port",
                    &port,
                    "--bind",
                    "127.0.0.1",
                    "--save",
                    "",
                    "--appendonly",
                    "no",
                ])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("redis-server starts"),
        );
        let url = self.url();
        until("redis-server", async || {
            let Ok(client) = redis::Client::open(url.as_str()) else {
                return false;
            };
            match client.get_multiplexed_async_connection().await {
                Ok(mut conn) => redis::cmd("PING")
                    .query_async::<String>(&mut conn)
                    .await
                    .is_ok(),
                Err(_) => false,
            }
        })
        .await;
    }

    /// SIGKILL: connections reset, everything it held is gone.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// SIGSTOP: it accepts connections (the kernel does) and never answers.
    pub fn pause(&self) {
        if let Some(child) = &self.child {
            signal(child.id(), "-STOP");
        }
    }

    pub fn resume(&self) {
        if let Some(child) = &self.child {
            signal(child.id(), "-CONT");
        }
    }
}

impl Drop for PrivateRedis {
    fn drop(&mut self) {
        self.resume();
        self.kill();
    }
}

/// A PostgreSQL cluster in a temporary directory (trust auth, user `postgres`, db
/// `postgres`), run as the `postgres` system user when the test runs as root.
pub struct PrivatePostgres {
    pub port: u16,
    dir: tempfile::TempDir,
    bin: PathBuf,
}

impl PrivatePostgres {
    /// `None` when PostgreSQL's server binaries are not installed.
    pub async fn start() -> Option<PrivatePostgres> {
        let bin = std::fs::read_dir("/usr/lib/postgresql")
            .ok()?
            .filter_map(|e| e.ok().map(|e| e.path().join("bin")))
            .find(|b| b.join("pg_ctl").exists())?;
        let dir = tempfile::tempdir().ok()?;
        let pg = PrivatePostgres {
            port: free_port(),
            dir,
            bin,
        };
        if is_root() {
            // The server refuses to run as root.
            Command::new("chown")
                .args(["-R", "postgres:postgres"])
                .arg(pg.dir.path())
                .status()
                .ok()?;
        }
        let initdb = pg
            .command("initdb")
            .args(["-A", "trust", "-U", "postgres", "--no-sync", "-D"])
            .arg(pg.data())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .ok()?;
        assert!(initdb.success(), "initdb failed");
        pg.restart().await;
        Some(pg)
    }

    fn data(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    fn command(&self, tool: &str) -> Command {
        let program = self.bin.join(tool);
        if is_root() {
            let mut c = Command::new("runuser");
            c.args(["-u", "postgres", "--"]).arg(program);
            c
        } else {
            Command::new(program)
        }
    }

    pub fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }

    /// Starts the server on its port (the data kept) and waits until it answers.
    pub async fn restart(&self) {
        let options = format!(
            "-p {} -k {} -c listen_addresses=127.0.0.1 -c fsync=off",
            self.port,
            self.dir.path().display()
        );
        let log = self.dir.path().join("server.log");
        let started = self
            .command("pg_ctl")
            .args(["-w", "-D"])
            .arg(self.data())
            .args(["-l"])
            .arg(&log)
            .args(["-o", &options, "start"])
            .stdout(Stdio::null())
            .status()
            .expect("pg_ctl runs");
        assert!(started.success(), "pg_ctl start failed: {}", read(&log));
        let url = self.url();
        until("postgres", async || {
            sqlx::PgPool::connect(&url).await.is_ok()
        })
        .await;
    }

    /// The postmaster and every server process it started.
    fn processes(&self) -> Vec<u32> {
        let pid_file = self.data().join("postmaster.pid");
        let Some(master) = read(&pid_file)
            .lines()
            .next()
            .and_then(|l| l.parse::<u32>().ok())
        else {
            return Vec::new();
        };
        let mut pids = vec![master];
        for entry in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
            let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else {
                continue;
            };
            let stat = read(&entry.path().join("stat"));
            // pid (comm) state ppid …: the comm may hold spaces, so read after the last ')'.
            let ppid = stat
                .rsplit_once(')')
                .and_then(|(_, rest)| rest.split_whitespace().nth(1))
                .and_then(|p| p.parse::<u32>().ok());
            if ppid == Some(master) {
                pids.push(pid);
            }
        }
        pids
    }

    /// SIGKILL to every server process: connections reset, the server gone until restart.
    pub fn kill(&self) {
        for pid in self.processes() {
            signal(pid, "-KILL");
        }
        // A killed postmaster leaves its pid file and its socket's lock file: pg_ctl start
        // would refuse either.
        let _ = std::fs::remove_file(self.data().join("postmaster.pid"));
        let socket_lock = format!(".s.PGSQL.{}.lock", self.port);
        let _ = std::fs::remove_file(self.dir.path().join(socket_lock));
    }

    /// SIGSTOP to every server process: connections stay open and nothing answers.
    pub fn pause(&self) {
        for pid in self.processes() {
            signal(pid, "-STOP");
        }
    }

    pub fn resume(&self) {
        for pid in self.processes() {
            signal(pid, "-CONT");
        }
    }
}

impl Drop for PrivatePostgres {
    fn drop(&mut self) {
        self.resume();
        self.kill();
    }
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_default()
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| o.stdout.starts_with(b"0\n"))
}

//! A real PostgreSQL for one test: `initdb` into a temporary directory, `postgres` on
//! 127.0.0.1 and a free port, stopped when dropped. As root (initdb refuses root) both
//! run as `nobody` through `setpriv`. If PostgreSQL cannot start, the test fails and
//! says why: it is never skipped.

use std::net::TcpStream;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// How long PostgreSQL may take to accept connections.
const START_LIMIT: Duration = Duration::from_secs(60);
/// How long a fast shutdown may take before the server is killed.
const STOP_LIMIT: Duration = Duration::from_secs(20);

pub struct Postgres {
    child: Child,
    /// `postgres://kpress@127.0.0.1:PORT/postgres`.
    pub url: String,
    log: PathBuf,
    _dir: tempfile::TempDir,
}

/// The directory holding `initdb` and `postgres`: on PATH, or the newest
/// `/usr/lib/postgresql/*/bin`.
fn bin_dir() -> PathBuf {
    let on_path = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
        .unwrap_or_default();
    let mut packaged: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .map(|d| {
            d.filter_map(|e| e.ok())
                .map(|e| e.path().join("bin"))
                .collect()
        })
        .unwrap_or_default();
    packaged.sort_by_key(|p| {
        p.parent()
            .and_then(|v| v.file_name())
            .and_then(|v| v.to_str())
            .and_then(|v| v.parse::<u32>().ok())
            .unwrap_or(0)
    });
    on_path
        .into_iter()
        .chain(packaged.into_iter().rev())
        .find(|d| d.join("initdb").is_file() && d.join("postgres").is_file())
        .unwrap_or_else(|| {
            panic!(
                "PostgreSQL is required for this test and was not found: no initdb and postgres \
                 on PATH or under /usr/lib/postgresql/*/bin (Debian: apt-get install postgresql)"
            )
        })
}

fn running_as_root() -> bool {
    // /proc/self belongs to the process's effective user.
    std::fs::metadata("/proc/self").is_ok_and(|m| m.uid() == 0)
}

/// uid and gid of `user`, from /etc/passwd.
fn ids_of(user: &str) -> (u32, u32) {
    let passwd = std::fs::read_to_string("/etc/passwd").expect("read /etc/passwd");
    passwd
        .lines()
        .map(|l| l.split(':').collect::<Vec<_>>())
        .find(|f| f.first() == Some(&user) && f.len() > 3)
        .and_then(|f| Some((f[2].parse().ok()?, f[3].parse().ok()?)))
        .unwrap_or_else(|| panic!("running as root, PostgreSQL needs the user `{user}`"))
}

/// `program` run as an unprivileged user when we are root.
fn command(program: &Path, unprivileged: bool) -> Command {
    if unprivileged {
        let mut c = Command::new("setpriv");
        c.args(["--reuid=nobody", "--regid=nogroup", "--clear-groups", "--"])
            .arg(program);
        c
    } else {
        Command::new(program)
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free loopback port")
}

impl Postgres {
    pub fn start() -> Postgres {
        let bin = bin_dir();
        let root = running_as_root();
        let dir = tempfile::tempdir().expect("tempdir");
        if root {
            let (uid, gid) = ids_of("nobody");
            std::os::unix::fs::chown(dir.path(), Some(uid), Some(gid))
                .expect("give the data directory to nobody");
        }
        let data = dir.path().join("data");
        let init = command(&bin.join("initdb"), root)
            .arg("-D")
            .arg(&data)
            .args([
                "-U",
                "kpress",
                "-A",
                "trust",
                "-E",
                "UTF8",
                "--locale=C",
                "--no-sync",
            ])
            .current_dir(dir.path())
            .output()
            .unwrap_or_else(|e| panic!("PostgreSQL: cannot run initdb: {e}"));
        assert!(
            init.status.success(),
            "PostgreSQL: initdb failed ({}):\n{}{}",
            init.status,
            String::from_utf8_lossy(&init.stdout),
            String::from_utf8_lossy(&init.stderr)
        );
        let port = free_port();
        let log = dir.path().join("postgres.log");
        let log_file = std::fs::File::create(&log).expect("create the log");
        let child = command(&bin.join("postgres"), root)
            .arg("-D")
            .arg(&data)
            .args(["-h", "127.0.0.1", "-p", &port.to_string(), "-F"])
            .arg("-k")
            .arg(dir.path())
            .current_dir(dir.path())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log_file)
            .spawn()
            .unwrap_or_else(|e| panic!("PostgreSQL: cannot start postgres: {e}"));
        let mut pg = Postgres {
            child,
            url: format!("postgres://kpress@127.0.0.1:{port}/postgres"),
            log,
            _dir: dir,
        };
        pg.wait_ready(port);
        pg
    }

    fn wait_ready(&mut self, port: u16) {
        let deadline = Instant::now() + START_LIMIT;
        while Instant::now() < deadline {
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!(
                    "PostgreSQL exited at start ({status}):\n{}",
                    self.log_text()
                );
            }
            // Accepting connections is not enough: the log says when it is ready.
            if TcpStream::connect(("127.0.0.1", port)).is_ok()
                && self.log_text().contains("ready to accept connections")
            {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!(
            "PostgreSQL did not accept connections within {START_LIMIT:?}:\n{}",
            self.log_text()
        );
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        // Fast shutdown (SIGINT), then SIGKILL if it lingers.
        let _ = Command::new("kill")
            .args(["-INT", &self.child.id().to_string()])
            .status();
        let deadline = Instant::now() + STOP_LIMIT;
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

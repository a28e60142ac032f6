//! The private PostgreSQL cluster of the embedded default: with no
//! `DATABASE_URL`, Pulsyon runs its own cluster under `<data-dir>/pg` with the
//! PostgreSQL binaries installed on the machine, listening only on a Unix
//! socket in `<data-dir>/run`.
//!
//! PostgreSQL refuses to run as root, so when Pulsyon runs as root the cluster
//! runs as an unprivileged system user (`--pg-user`, `postgres` by default),
//! which owns `pg/` and `run/`. A lock file keeps two Pulsyon processes from
//! running the same cluster; a cluster left running by a killed process is
//! stopped before a new one starts. This module must never leave a cluster it
//! started running after `stop`, and never touch a directory outside the data dir.

use std::{
    fs::{self, File, OpenOptions},
    io::{self, Read, Seek, SeekFrom},
    os::unix::fs::{MetadataExt, OpenOptionsExt, PermissionsExt},
    path::{Path, PathBuf},
    process::Stdio,
    time::Duration,
};

use nix::{
    sys::signal::{Signal, kill},
    unistd::{Pid, User},
};
use sha2::{Digest, Sha256};
use sqlx::{Connection, PgConnection, postgres::PgConnectOptions};
use tokio::process::{Child, Command};

/// Name of the superuser and of the database inside the private cluster.
const DB_NAME: &str = "pulsyon";
/// The socket is `<run>/.s.PGSQL.<port>`; the port only names the file.
const SOCKET_PORT: u16 = 5432;
/// How long PostgreSQL may take to accept connections after it starts.
const START_TIMEOUT: Duration = Duration::from_secs(60);
/// How long a fast shutdown may take before an immediate one.
const STOP_TIMEOUT: Duration = Duration::from_secs(30);

/// Why the private cluster could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum EmbeddedError {
    /// No `initdb`/`postgres` binaries on the machine.
    #[error(
        "no PostgreSQL server binaries found (looked for initdb and postgres on PATH and under \
         /usr/lib/postgresql/*/bin): install them (Debian/Ubuntu: apt-get install postgresql) \
         or set DATABASE_URL to use an existing server"
    )]
    NoBinaries,
    /// Running as root and the unprivileged user does not exist.
    #[error(
        "system user {0:?} not found: PostgreSQL refuses to run as root, so the private cluster \
         runs as that user; create it (apt-get install postgresql does) or pass --pg-user"
    )]
    NoUser(String),
    /// The unprivileged user cannot reach the data dir.
    #[error(
        "the user {user:?} that runs the private cluster cannot enter {path}: choose a \
         --data-dir outside it, or make it searchable (chmod o+x)"
    )]
    Unreachable { user: String, path: PathBuf },
    /// Another Pulsyon process runs this cluster.
    #[error("another pulsyon process is using the data dir {0}")]
    Busy(PathBuf),
    /// A private postgres left by an earlier process would not stop.
    #[error(
        "the private postgresql left running by an earlier process (pid {0}) did not stop \
         after SIGINT, SIGQUIT and SIGKILL; stop it by hand"
    )]
    Stuck(i32),
    /// A file-system operation failed.
    #[error("{path}: {source}")]
    Io { path: PathBuf, source: io::Error },
    /// `initdb` failed.
    #[error("initdb failed ({status}); its output is in {log}")]
    Initdb { status: String, log: PathBuf },
    /// `postgres` exited or did not answer during start-up.
    #[error("the private PostgreSQL did not start: {reason}; last lines of {log}:\n{tail}")]
    Start {
        reason: String,
        log: PathBuf,
        tail: String,
    },
    /// The cluster started but the database could not be prepared.
    #[error("could not prepare the database: {0}")]
    Database(#[from] sqlx::Error),
}

fn io_err(path: &Path) -> impl FnOnce(io::Error) -> EmbeddedError + '_ {
    move |source| EmbeddedError::Io {
        path: path.to_owned(),
        source,
    }
}

/// Who runs the cluster: the current user, or an unprivileged one when we are root.
#[derive(Debug, Clone)]
struct RunAs {
    /// `None` when the current user runs it.
    user: Option<User>,
}

impl RunAs {
    fn resolve(pg_user: &str) -> Result<RunAs, EmbeddedError> {
        if !nix::unistd::geteuid().is_root() {
            return Ok(RunAs { user: None });
        }
        let user = User::from_name(pg_user)
            .map_err(|e| EmbeddedError::Io {
                path: "/etc/passwd".into(),
                source: e.into(),
            })?
            .ok_or_else(|| EmbeddedError::NoUser(pg_user.to_owned()))?;
        Ok(RunAs { user: Some(user) })
    }

    fn command(&self, program: &Path) -> Command {
        let mut cmd = Command::new(program);
        if let Some(user) = &self.user {
            cmd.uid(user.uid.as_raw()).gid(user.gid.as_raw());
            cmd.env("USER", &user.name).env("HOME", &user.dir);
        }
        // PostgreSQL resolves paths against the working directory, which the
        // unprivileged user may not be able to enter.
        cmd.current_dir("/");
        cmd
    }

    /// Makes `path` a directory owned by the cluster's user with `mode`.
    fn own_dir(&self, path: &Path, mode: u32) -> Result<(), EmbeddedError> {
        fs::create_dir_all(path).map_err(io_err(path))?;
        if let Some(user) = &self.user {
            std::os::unix::fs::chown(path, Some(user.uid.as_raw()), Some(user.gid.as_raw()))
                .map_err(io_err(path))?;
        }
        fs::set_permissions(path, fs::Permissions::from_mode(mode)).map_err(io_err(path))
    }

    /// Where the cluster's files (pg/, run/, pg.log) live for `data_dir`: in
    /// it, when the cluster's user can enter it (made searchable if needed);
    /// otherwise, as for a clone under a private home (/root is 0700), under
    /// [`FALLBACK_ROOT`] in a directory named after the data dir, recorded in
    /// `<data_dir>/cluster-dir` and logged. The data dir keeps everything else.
    fn cluster_dir(&self, data_dir: &Path) -> Result<PathBuf, EmbeddedError> {
        if self.user.is_none() {
            return Ok(data_dir.to_owned());
        }
        // The unprivileged user must be able to enter the data dir to reach pg/ and run/.
        let mode = fs::metadata(data_dir).map_err(io_err(data_dir))?.mode();
        if mode & 0o001 == 0 {
            fs::set_permissions(
                data_dir,
                fs::Permissions::from_mode((mode & 0o7777) | 0o711),
            )
            .map_err(io_err(data_dir))?;
        }
        let blocked = match self.check_reachable(data_dir) {
            Ok(()) => return Ok(data_dir.to_owned()),
            Err(EmbeddedError::Unreachable { path, .. }) => path,
            Err(other) => return Err(other),
        };
        let name: String = Sha256::digest(data_dir.as_os_str().as_encoded_bytes())[..8]
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        let dir = Path::new(FALLBACK_ROOT).join(name);
        fs::create_dir_all(&dir).map_err(io_err(&dir))?;
        for level in [Path::new(FALLBACK_ROOT), dir.as_path()] {
            fs::set_permissions(level, fs::Permissions::from_mode(0o711)).map_err(io_err(level))?;
        }
        self.check_reachable(&dir)?;
        let note = data_dir.join("cluster-dir");
        fs::write(&note, format!("{}\n", dir.display())).map_err(io_err(&note))?;
        tracing::info!(
            data_dir = %data_dir.display(),
            cluster_dir = %dir.display(),
            blocked_by = %blocked.display(),
            "the cluster's user cannot enter the data dir; the private cluster's files live in the cluster dir"
        );
        Ok(dir)
    }

    /// Checks that the cluster's user can enter every directory down to `dir`.
    fn check_reachable(&self, dir: &Path) -> Result<(), EmbeddedError> {
        let Some(user) = &self.user else {
            return Ok(());
        };
        for ancestor in dir.ancestors() {
            let meta = fs::metadata(ancestor).map_err(io_err(ancestor))?;
            let mode = meta.mode();
            let can_enter = if meta.uid() == user.uid.as_raw() {
                mode & 0o100 != 0
            } else if meta.gid() == user.gid.as_raw() {
                mode & 0o010 != 0
            } else {
                mode & 0o001 != 0
            };
            if !can_enter {
                return Err(EmbeddedError::Unreachable {
                    user: user.name.clone(),
                    path: ancestor.to_owned(),
                });
            }
        }
        Ok(())
    }
}

/// Where a private cluster lives when its user cannot enter the data dir.
const FALLBACK_ROOT: &str = "/var/lib/pulsyon/clusters";

/// Where PostgreSQL's Debian/Ubuntu packages install their binaries, one directory per major version.
const PACKAGED_ROOT: &str = "/usr/lib/postgresql";

/// Finds a directory holding both `initdb` and `postgres`: first on `path`
/// (the `PATH` variable), then the newest major version under `packaged_root`.
fn find_binaries(
    path: Option<&std::ffi::OsStr>,
    packaged_root: &Path,
) -> Result<PathBuf, EmbeddedError> {
    let has_both = |dir: &Path| dir.join("initdb").is_file() && dir.join("postgres").is_file();
    for dir in path
        .map(|p| std::env::split_paths(p).collect::<Vec<_>>())
        .unwrap_or_default()
    {
        // PATH may hold links (such as /usr/local/bin/initdb); the server binary
        // sits next to the real initdb.
        if let Ok(real) = fs::canonicalize(dir.join("initdb"))
            && let Some(real_dir) = real.parent()
            && has_both(real_dir)
        {
            return Ok(real_dir.to_owned());
        }
    }
    let mut versions: Vec<(u32, PathBuf)> = fs::read_dir(packaged_root)
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|entry| {
            let version = entry.file_name().to_str()?.parse::<u32>().ok()?;
            let bin = entry.path().join("bin");
            has_both(&bin).then_some((version, bin))
        })
        .collect();
    versions.sort();
    versions
        .pop()
        .map(|(_, bin)| bin)
        .ok_or(EmbeddedError::NoBinaries)
}

/// A running private cluster (or one that another Pulsyon process runs).
#[derive(Debug)]
pub struct Cluster {
    /// The postmaster we started; `None` when attached to another process's cluster.
    child: Option<Child>,
    /// Directory of the Unix socket.
    socket_dir: PathBuf,
    /// Where the postmaster writes its log.
    log_path: PathBuf,
    /// Held while we own the cluster; released (closed) on drop.
    lock: Option<File>,
}

impl Cluster {
    /// Starts the cluster under `data_dir`, creating it on first use. Fails
    /// with `Busy` if another Pulsyon process runs it.
    pub async fn start(data_dir: &Path, pg_user: &str) -> Result<Cluster, EmbeddedError> {
        Cluster::open(data_dir, pg_user, false).await
    }

    /// Starts the cluster, or, when another Pulsyon process runs it, attaches to
    /// that process's cluster (for one-shot commands next to a running server).
    pub async fn start_or_attach(data_dir: &Path, pg_user: &str) -> Result<Cluster, EmbeddedError> {
        Cluster::open(data_dir, pg_user, true).await
    }

    async fn open(data_dir: &Path, pg_user: &str, attach: bool) -> Result<Cluster, EmbeddedError> {
        let run_as = RunAs::resolve(pg_user)?;
        fs::create_dir_all(data_dir).map_err(io_err(data_dir))?;
        let data_dir = fs::canonicalize(data_dir).map_err(io_err(data_dir))?;
        let cluster_dir = run_as.cluster_dir(&data_dir)?;
        let pg_dir = cluster_dir.join("pg");
        let socket_dir = cluster_dir.join("run");
        let log_path = cluster_dir.join("pg.log");

        let lock_path = data_dir.join("pulsyon.lock");
        let lock = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .mode(0o600)
            .open(&lock_path)
            .map_err(io_err(&lock_path))?;
        match lock.try_lock() {
            Ok(()) => {}
            Err(fs::TryLockError::WouldBlock) if attach => {
                tracing::info!(data_dir = %data_dir.display(), "attaching to the private cluster of the running server");
                return Ok(Cluster {
                    child: None,
                    socket_dir,
                    log_path,
                    lock: None,
                });
            }
            Err(fs::TryLockError::WouldBlock) => return Err(EmbeddedError::Busy(data_dir)),
            Err(fs::TryLockError::Error(e)) => {
                return Err(EmbeddedError::Io {
                    path: lock_path,
                    source: e,
                });
            }
        }

        let bin_dir = find_binaries(
            std::env::var_os("PATH").as_deref(),
            Path::new(PACKAGED_ROOT),
        )?;
        run_as.own_dir(&socket_dir, 0o700)?;

        if !pg_dir.join("PG_VERSION").exists() {
            initdb(&run_as, &bin_dir, &pg_dir, &log_path).await?;
        } else {
            stop_orphan(&pg_dir).await?;
        }

        let log = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log_path)
            .map_err(io_err(&log_path))?;
        let log_err = log.try_clone().map_err(io_err(&log_path))?;
        let mut cmd = run_as.command(&bin_dir.join("postgres"));
        cmd.arg("-D")
            .arg(&pg_dir)
            .arg("-k")
            .arg(&socket_dir)
            .arg("-p")
            .arg(SOCKET_PORT.to_string())
            .args([
                "-c",
                "listen_addresses=",
                "-c",
                "unix_socket_permissions=0700",
            ])
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(log_err)
            // Its own process group: a Ctrl-C at the terminal reaches Pulsyon,
            // which then stops the cluster in its shutdown order.
            .process_group(0);
        // SAFETY: the closure only calls prctl(2), which is async-signal-safe.
        // If Pulsyon dies without stopping the cluster, the postmaster receives
        // SIGINT (fast shutdown) instead of living on as an orphan.
        unsafe {
            cmd.pre_exec(|| {
                nix::sys::prctl::set_pdeathsig(Signal::SIGINT).map_err(io::Error::from)
            });
        }
        let child = cmd.spawn().map_err(io_err(&bin_dir.join("postgres")))?;
        tracing::info!(pid = child.id(), data_dir = %pg_dir.display(), "private postgresql starting");

        let mut cluster = Cluster {
            child: Some(child),
            socket_dir,
            log_path,
            lock: Some(lock),
        };
        if let Err(err) = cluster.wait_ready().await {
            cluster.stop().await;
            return Err(err);
        }
        Ok(cluster)
    }

    /// Options to connect to the cluster's `pulsyon` database.
    pub fn connect_options(&self) -> PgConnectOptions {
        self.options_for(DB_NAME)
    }

    fn options_for(&self, database: &str) -> PgConnectOptions {
        PgConnectOptions::new()
            .socket(&self.socket_dir)
            .port(SOCKET_PORT)
            .username(DB_NAME)
            .database(database)
    }

    async fn wait_ready(&mut self) -> Result<(), EmbeddedError> {
        let deadline = tokio::time::Instant::now() + START_TIMEOUT;
        let mut conn = loop {
            if let Some(child) = &mut self.child
                && let Some(status) = child.try_wait().map_err(io_err(&self.log_path))?
            {
                return Err(self.start_error(format!("postgres exited with {status}")));
            }
            match PgConnection::connect_with(&self.options_for("postgres")).await {
                Ok(conn) => break conn,
                Err(_) if tokio::time::Instant::now() < deadline => {
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                Err(err) => {
                    return Err(
                        self.start_error(format!("no connection after {START_TIMEOUT:?}: {err}"))
                    );
                }
            }
        };
        let exists: bool =
            sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)")
                .bind(DB_NAME)
                .fetch_one(&mut conn)
                .await?;
        if !exists {
            sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {DB_NAME}")))
                .execute(&mut conn)
                .await?;
        }
        conn.close().await?;
        tracing::info!(socket_dir = %self.socket_dir.display(), "private postgresql ready");
        Ok(())
    }

    fn start_error(&self, reason: String) -> EmbeddedError {
        EmbeddedError::Start {
            reason,
            log: self.log_path.clone(),
            tail: tail(&self.log_path, 2048),
        }
    }

    /// Stops the cluster if we started it: a fast shutdown, then an immediate
    /// one if it takes too long; then releases the data dir. Attached
    /// clusters are left alone.
    pub async fn stop(&mut self) {
        self.stop_postmaster().await;
        // Release the data dir for the next start.
        self.lock = None;
    }

    async fn stop_postmaster(&mut self) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        let Some(pid) = child.id() else { return };
        let pid = Pid::from_raw(pid as i32);
        let _ = kill(pid, Signal::SIGINT);
        match tokio::time::timeout(STOP_TIMEOUT, child.wait()).await {
            Ok(_) => tracing::info!("private postgresql stopped"),
            Err(_) => {
                tracing::warn!("private postgresql slow to stop; immediate shutdown");
                let _ = kill(pid, Signal::SIGQUIT);
                let _ = child.wait().await;
            }
        }
    }
}

async fn initdb(
    run_as: &RunAs,
    bin_dir: &Path,
    pg_dir: &Path,
    log_path: &Path,
) -> Result<(), EmbeddedError> {
    run_as.own_dir(pg_dir, 0o700)?;
    tracing::info!(data_dir = %pg_dir.display(), "creating the private postgresql cluster");
    let log = OpenOptions::new()
        .create(true)
        .append(true)
        .open(log_path)
        .map_err(io_err(log_path))?;
    let log_err = log.try_clone().map_err(io_err(log_path))?;
    let status = run_as
        .command(&bin_dir.join("initdb"))
        .arg("-D")
        .arg(pg_dir)
        .args([
            "-U",
            DB_NAME,
            "--auth=trust",
            "--encoding=UTF8",
            "--no-locale",
        ])
        .stdin(Stdio::null())
        .stdout(log)
        .stderr(log_err)
        .status()
        .await
        .map_err(io_err(&bin_dir.join("initdb")))?;
    if !status.success() {
        // Leave no half-made cluster behind: the next start tries again.
        let _ = fs::remove_dir_all(pg_dir);
        return Err(EmbeddedError::Initdb {
            status: status.to_string(),
            log: log_path.to_owned(),
        });
    }
    Ok(())
}

/// Stops a postmaster that a killed Pulsyon process left running on this data dir.
async fn stop_orphan(pg_dir: &Path) -> Result<(), EmbeddedError> {
    let pid_file = pg_dir.join("postmaster.pid");
    let Ok(text) = fs::read_to_string(&pid_file) else {
        return Ok(());
    };
    let Some(pid) = text
        .lines()
        .next()
        .and_then(|l| l.trim().parse::<i32>().ok())
    else {
        return Ok(());
    };
    let cmdline = fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
    if !String::from_utf8_lossy(&cmdline).contains("postgres") {
        return Ok(()); // a stale pid file: postgres removes it by itself at start
    }
    tracing::warn!(
        pid,
        "stopping a private postgresql left running by an earlier process"
    );
    let pid = Pid::from_raw(pid);
    // Every wait is bounded: SIGINT (smart shutdown), then SIGQUIT
    // (immediate), then SIGKILL, then give up with an error. A zombie counts
    // as gone: where nothing reaps it (a container whose PID 1 does not), it
    // would answer signals forever.
    let start = tokio::time::Instant::now();
    let mut sent = Signal::SIGINT;
    let _ = kill(pid, sent);
    while !process_gone(pid.as_raw()) {
        let waited = start.elapsed();
        let next = if waited > 3 * STOP_TIMEOUT {
            return Err(EmbeddedError::Stuck(pid.as_raw()));
        } else if waited > 2 * STOP_TIMEOUT {
            Signal::SIGKILL
        } else if waited > STOP_TIMEOUT {
            Signal::SIGQUIT
        } else {
            Signal::SIGINT
        };
        if next != sent {
            tracing::warn!(pid = pid.as_raw(), signal = ?next, "the old private postgresql is slow to stop");
            let _ = kill(pid, next);
            sent = next;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    Ok(())
}

/// Whether process `pid` has ended: no such process, or a zombie (ended,
/// not yet reaped) or dead one by `/proc/<pid>/stat`.
fn process_gone(pid: i32) -> bool {
    match fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => matches!(stat_state(&stat), Some('Z' | 'X' | 'x') | None),
        Err(_) => kill(Pid::from_raw(pid), None).is_err(),
    }
}

/// The state letter of a `/proc/<pid>/stat` line: the field after the
/// command name, which is in parentheses and may itself hold spaces and ')'.
fn stat_state(stat: &str) -> Option<char> {
    let (_, rest) = stat.rsplit_once(')')?;
    rest.trim_start().chars().next()
}

/// The last `max` bytes of a log file, for error messages.
fn tail(path: &Path, max: u64) -> String {
    let Ok(mut file) = File::open(path) else {
        return String::new();
    };
    let len = file.metadata().map(|m| m.len()).unwrap_or(0);
    let _ = file.seek(SeekFrom::Start(len.saturating_sub(max)));
    let mut buf = Vec::new();
    let _ = file.read_to_end(&mut buf);
    String::from_utf8_lossy(&buf).into_owned()
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_state_of_a_process_is_read_past_its_command_name() {
        assert_eq!(super::stat_state("42 (postgres) S 1 42 42"), Some('S'));
        assert_eq!(super::stat_state("42 (odd) name) Z 1 42"), Some('Z'));
        assert_eq!(super::stat_state("garbage"), None);
    }

    #[test]
    fn a_zombie_counts_as_gone_and_a_live_process_does_not() {
        let mut child = std::process::Command::new("sleep")
            .arg("30")
            .spawn()
            .unwrap();
        let pid = child.id() as i32;
        assert!(!super::process_gone(pid));
        nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(pid),
            nix::sys::signal::Signal::SIGKILL,
        )
        .unwrap();
        // Not reaped yet: a zombie, which still answers kill(pid, 0).
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while !super::process_gone(pid) {
            assert!(std::time::Instant::now() < deadline, "never seen as gone");
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        assert!(nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), None).is_ok());
        child.wait().unwrap();
        assert!(super::process_gone(pid));
    }

    use super::*;

    fn fake_bin(dir: &Path, names: &[&str]) {
        fs::create_dir_all(dir).unwrap();
        for name in names {
            fs::write(dir.join(name), "").unwrap();
        }
    }

    #[test]
    fn binaries_come_from_path_then_the_newest_packaged_version() {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().join("lib");
        fake_bin(&root.join("13/bin"), &["initdb", "postgres"]);
        fake_bin(&root.join("15/bin"), &["initdb", "postgres"]);
        fake_bin(&root.join("16/bin"), &["initdb"]); // incomplete: skipped
        assert_eq!(find_binaries(None, &root).unwrap(), root.join("15/bin"));

        let on_path = tmp.path().join("custom");
        fake_bin(&on_path, &["initdb", "postgres"]);
        let path = std::env::join_paths([tmp.path().join("nothing"), on_path.clone()]).unwrap();
        assert_eq!(
            find_binaries(Some(&path), &root).unwrap(),
            fs::canonicalize(&on_path).unwrap()
        );
    }

    #[test]
    fn missing_binaries_say_how_to_install_them_or_use_database_url() {
        let tmp = tempfile::tempdir().unwrap();
        let err = find_binaries(None, &tmp.path().join("none")).unwrap_err();
        let text = err.to_string();
        assert!(
            text.contains("apt-get install postgresql") && text.contains("DATABASE_URL"),
            "{text}"
        );
    }
}

//! A private MariaDB server for tests and benchmarks: Debian's `mariadb-server` (which
//! `make servers` installs), started on a free loopback port with its data in a
//! temporary directory, and stopped when the test process ends. Nothing of the machine's
//! own MariaDB (if one runs) is touched: no config file is read (`--no-defaults`).

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use mysql::prelude::Queryable;

/// One running server.
pub struct Private {
    dir: tempfile_dir::Dir,
    port: u16,
    daemon: PathBuf,
    child: Mutex<Option<Child>>,
}

/// The server of this process, started on first use and stopped when the process
/// exits (it is started from a thread that lives as long as the process, with
/// `PR_SET_PDEATHSIG`, so a test binary that is killed takes it along).
pub fn shared() -> &'static Private {
    static SERVER: OnceLock<Private> = OnceLock::new();
    SERVER.get_or_init(|| {
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let _ = tx.send(Private::start());
            // The server dies with this thread (PR_SET_PDEATHSIG): keep it.
            loop {
                std::thread::park();
            }
        });
        match rx.recv() {
            Ok(Ok(server)) => server,
            Ok(Err(e)) => panic!("{e}"),
            Err(_) => panic!("the thread starting MariaDB died"),
        }
    })
}

fn find(name: &str) -> Option<PathBuf> {
    ["/usr/sbin", "/usr/bin", "/usr/local/sbin", "/usr/local/bin"]
        .iter()
        .map(|d| Path::new(d).join(name))
        .find(|p| p.is_file())
}

impl Private {
    /// Starts a server (about 2 s): `mariadb-install-db`, then `mariadbd` on a free port.
    pub fn start() -> Result<Private, String> {
        remove_stale();
        let missing =
            "MariaDB is not installed: run `make servers` (it installs Debian's mariadb-server)";
        let install = find("mariadb-install-db").ok_or(missing)?;
        let daemon = find("mariadbd").ok_or(missing)?;
        let dir = tempfile_dir::Dir::new("strata-mariadb").map_err(|e| e.to_string())?;
        let data = dir.path().join("data");
        // Its own temporary directory: two servers bootstrapping at once in one /tmp
        // collide on the names of their temporary tables.
        let tmp = dir.path().join("tmp");
        std::fs::create_dir_all(&tmp).map_err(|e| e.to_string())?;
        let out = Command::new(&install)
            .env("TMPDIR", &tmp)
            .arg("--no-defaults")
            .arg(format!("--datadir={}", data.display()))
            .args([
                "--auth-root-authentication-method=normal",
                "--skip-test-db",
                "--user=root",
            ])
            .output()
            .map_err(|e| format!("running {}: {e}", install.display()))?;
        if !out.status.success() {
            return Err(format!(
                "mariadb-install-db failed: {}",
                String::from_utf8_lossy(&out.stderr)
            ));
        }
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map_err(|e| e.to_string())?
            .port();
        let server = Private {
            dir,
            port,
            daemon,
            child: Mutex::new(None),
        };
        match server.run() {
            Ok(()) => Ok(server),
            Err(e) if e.contains("Address already in use") => {
                // Another process took the port in between: try another.
                drop(server);
                Private::start()
            }
            Err(e) => Err(e),
        }
    }

    /// Starts `mariadbd` on the server's data and port, and waits until it answers.
    fn run(&self) -> Result<(), String> {
        let (dir, port, data) = (&self.dir, self.port, self.dir.path().join("data"));
        {
            let log = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(dir.path().join("mariadb.log"))
                .map_err(|e| e.to_string())?;
            let mut cmd = Command::new(&self.daemon);
            cmd.arg("--no-defaults")
                .arg(format!("--datadir={}", data.display()))
                .arg(format!("--socket={}", dir.path().join("sock").display()))
                .arg(format!("--pid-file={}", dir.path().join("pid").display()))
                .arg(format!("--port={port}"))
                .arg(format!("--tmpdir={}", dir.path().join("tmp").display()))
                .args([
                    "--bind-address=127.0.0.1",
                    "--user=root",
                    "--skip-name-resolve",
                    "--innodb-buffer-pool-size=128M",
                    "--max-connections=300",
                    "--skip-log-bin",
                ])
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(log);
            die_with_parent(&mut cmd);
            let child = cmd
                .spawn()
                .map_err(|e| format!("starting {}: {e}", self.daemon.display()))?;
            *self.child.lock().unwrap() = Some(child);
            match self.wait_ready(Duration::from_secs(30)) {
                Ok(()) => Ok(()),
                Err(e) => {
                    let log =
                        std::fs::read_to_string(dir.path().join("mariadb.log")).unwrap_or_default();
                    self.stop();
                    Err(format!("MariaDB did not start: {e}\n{log}"))
                }
            }
        }
    }

    /// Starts the server again after [`Private::kill`], on the same data and port.
    pub fn restart(&self) {
        self.run().expect("restarting MariaDB");
    }

    fn wait_ready(&self, within: Duration) -> Result<(), String> {
        let deadline = Instant::now() + within;
        loop {
            match self.root() {
                Ok(_) => return Ok(()),
                Err(e) if Instant::now() > deadline => return Err(e.to_string()),
                Err(_) => {
                    if let Some(child) = self.child.lock().unwrap().as_mut()
                        && let Ok(Some(status)) = child.try_wait()
                    {
                        return Err(format!("mariadbd exited: {status}"));
                    }
                    std::thread::sleep(Duration::from_millis(50));
                }
            }
        }
    }

    /// A connection as root, over the server's socket.
    fn root(&self) -> mysql::Result<mysql::Conn> {
        mysql::Conn::new(
            mysql::OptsBuilder::new()
                .socket(Some(self.dir.path().join("sock").display().to_string()))
                .user(Some("root")),
        )
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// A new, empty database with a user of its own: its `mysql://` URL.
    pub fn database(&self) -> String {
        let name = format!("t{}", hex::encode(rand::random::<[u8; 6]>()));
        let password = hex::encode(rand::random::<[u8; 12]>());
        let mut root = self
            .root()
            .expect("connecting to the private MariaDB as root");
        for sql in [
            format!("CREATE DATABASE {name}"),
            format!("CREATE USER '{name}'@'127.0.0.1' IDENTIFIED BY '{password}'"),
            format!("GRANT ALL ON {name}.* TO '{name}'@'127.0.0.1'"),
        ] {
            root.query_drop(&sql)
                .unwrap_or_else(|e| panic!("{sql}: {e}"));
        }
        format!("mysql://{name}:{password}@127.0.0.1:{}/{name}", self.port)
    }

    /// Stops the server (SIGKILL with `hard`, as a crash would; else a clean shutdown).
    pub fn kill(&self, hard: bool) {
        if let Some(mut child) = self.child.lock().unwrap().take() {
            unsafe {
                libc::kill(
                    child.id() as i32,
                    if hard { libc::SIGKILL } else { libc::SIGTERM },
                );
            }
            let _ = child.wait();
        }
    }

    fn stop(&self) {
        self.kill(false);
    }
}

impl Drop for Private {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Removes the data of servers whose process is gone (the shared server of a test binary
/// is never dropped: its directory is left when the binary exits, and removed here by
/// the next one).
fn remove_stale() {
    let Ok(entries) = std::fs::read_dir(std::env::temp_dir()) else {
        return;
    };
    for e in entries.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        if !name.starts_with("strata-mariadb-") {
            continue;
        }
        let pid: Option<i32> = std::fs::read_to_string(e.path().join("pid"))
            .ok()
            .and_then(|p| p.trim().parse().ok());
        // SAFETY: signal 0 only asks whether the process exists.
        let alive = pid.is_some_and(|p| unsafe { libc::kill(p, 0) } == 0);
        let started = e
            .metadata()
            .and_then(|m| m.modified())
            .ok()
            .and_then(|t| t.elapsed().ok());
        // A directory without a pid file yet may be a server starting right now.
        if !alive && (pid.is_some() || started.is_some_and(|a| a > Duration::from_secs(600))) {
            let _ = std::fs::remove_dir_all(e.path());
        }
    }
}

fn die_with_parent(cmd: &mut Command) {
    use std::os::unix::process::CommandExt;
    // SAFETY: prctl is async-signal-safe; nothing else runs between fork and exec.
    unsafe {
        cmd.pre_exec(|| {
            libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
            Ok(())
        });
    }
}

/// A temporary directory removed on drop (the store crate has no `tempfile` outside its
/// tests).
mod tempfile_dir {
    use std::path::{Path, PathBuf};

    pub struct Dir(PathBuf);

    impl Dir {
        pub fn new(prefix: &str) -> std::io::Result<Dir> {
            let path = std::env::temp_dir().join(format!(
                "{prefix}-{}",
                hex::encode(rand::random::<[u8; 8]>())
            ));
            std::fs::create_dir_all(&path)?;
            Ok(Dir(path))
        }

        pub fn path(&self) -> &Path {
            &self.0
        }
    }

    impl Drop for Dir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
}

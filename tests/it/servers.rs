//! The real servers flavors are tested against, installed by `make servers` into
//! `target/tools/` and started here on 127.0.0.1, never anywhere else:
//! - [`S3`]: `s3s-fs`, an S3 server that checks SigV4 signatures, one per test;
//! - [`Registry`]: Debian's `docker-registry` (the CNCF distribution registry), one per
//!   test (it starts in ~60 ms);
//! - [`mlflow`]: an MLflow tracking server, started once per test run (15–50 s) by
//!   `scripts/with-mlflow.sh`, which `make test` wraps the suite in; a test run without
//!   it starts its own, once, stopped when the run ends;
//! - [`Hook`]: a webhook that records the JSON bodies posted to it, per test.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

/// A tool installed by `make servers`.
fn tool(rel: &str) -> PathBuf {
    let bin = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../target/tools")
        .join(rel);
    assert!(
        bin.exists(),
        "{} is missing: run `make servers`",
        bin.display()
    );
    bin
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn stop(child: &mut Child) {
    let _ = child.kill();
    let _ = child.wait();
}

/// `s3s-fs` (an S3 server that checks SigV4 signatures), built by `make servers` into
/// `target/tools/bin`, started on a free loopback port with keys `AK` / `SK`.
pub struct S3 {
    child: std::process::Child,
    pub port: u16,
    _dir: tempfile::TempDir,
}

impl S3 {
    pub fn start() -> S3 {
        let bin = tool("bin/s3s-fs");
        let dir = tempfile::tempdir().unwrap();
        // s3s-fs takes a port, not port 0: find a free one and retry if taken meanwhile.
        for _ in 0..5 {
            let port = free_port();
            let mut child = Command::new(&bin)
                .args(["--host", "127.0.0.1", "--port", &port.to_string()])
                .args(["--access-key", "AK", "--secret-key", "SK"])
                .arg(dir.path())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .unwrap();
            let started = Instant::now();
            while started.elapsed() < Duration::from_secs(10) {
                // Listening, and ours: not another server that took the port meanwhile
                // (ours would have exited on EADDRINUSE).
                if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() && {
                    std::thread::sleep(Duration::from_millis(50));
                    child.try_wait().unwrap().is_none()
                } {
                    return S3 {
                        child,
                        port,
                        _dir: dir,
                    };
                }
                if child.try_wait().unwrap().is_some() {
                    break;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            let _ = child.kill();
            let _ = child.wait();
        }
        panic!("s3s-fs did not start");
    }
}

impl Drop for S3 {
    fn drop(&mut self) {
        stop(&mut self.child);
    }
}

impl S3 {
    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Where it keeps its buckets: one directory each.
    pub fn dir(&self) -> &Path {
        self._dir.path()
    }
}

/// A loopback port nothing listens on (bound, then released).
pub fn closed_port() -> u16 {
    free_port()
}

/// Debian's `docker-registry` on a free loopback port, storing in a temp dir, with
/// deletes enabled; [`Registry::with_password`] makes it ask for basic auth.
pub struct Registry {
    child: Child,
    pub port: u16,
    /// The `Authorization` header [`Registry::push`] sends, if the registry asks for one.
    auth: Option<String>,
    _dir: tempfile::TempDir,
}

/// The user of [`Registry::with_password`], and its password.
pub const REGISTRY_USER: (&str, &str) = ("ci", "registry-pass-1");

/// `REGISTRY_USER`'s password as docker-registry's `htpasswd` file wants it: bcrypt
/// (made once with Python's `bcrypt.hashpw(b"registry-pass-1", bcrypt.gensalt(5))`; the
/// low cost keeps each request's check at a few ms, where the default 10 takes ~250 ms).
const REGISTRY_BCRYPT: &str = "$2b$05$15pOBpI1V6kFG6SvC2PnweLrw.xGb3lZkTTstUFAfezzW5//Z1Z9q";

impl Registry {
    pub fn start() -> Registry {
        Registry::serve(false)
    }

    /// A registry that answers only `REGISTRY_USER`, by HTTP basic authentication.
    pub fn with_password() -> Registry {
        Registry::serve(true)
    }

    fn serve(password: bool) -> Registry {
        let bin = tool("registry/usr/bin/docker-registry");
        let dir = tempfile::tempdir().unwrap();
        let config = dir.path().join("config.yml");
        let mut yaml = format!(
            "version: 0.1\nlog:\n  level: info\nstorage:\n  filesystem:\n    rootdirectory: {}\n  delete:\n    enabled: true\nhttp:\n  addr: 127.0.0.1:0\n",
            dir.path().join("data").display()
        );
        let mut auth = None;
        if password {
            let file = dir.path().join("htpasswd");
            std::fs::write(&file, format!("{}:{REGISTRY_BCRYPT}\n", REGISTRY_USER.0)).unwrap();
            yaml.push_str(&format!(
                "auth:\n  htpasswd:\n    realm: strata-tests\n    path: {}\n",
                file.display()
            ));
            use base64::Engine;
            let pair = format!("{}:{}", REGISTRY_USER.0, REGISTRY_USER.1);
            auth = Some(format!(
                "Basic {}",
                base64::engine::general_purpose::STANDARD.encode(pair)
            ));
        }
        std::fs::write(&config, yaml).unwrap();
        let mut child = Command::new(bin)
            .arg("serve")
            .arg(&config)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        // It says where it listens (`listening on 127.0.0.1:PORT`) on stderr, which is
        // drained after that so that it never blocks on a full pipe.
        let stderr = child.stderr.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut tx = Some(tx);
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                if let Some(at) = line.find("listening on ") {
                    let rest = &line[at + "listening on ".len()..];
                    let addr: String = rest
                        .chars()
                        .take_while(|c| {
                            c.is_ascii_digit() || *c == '.' || *c == ':' || *c == '[' || *c == ']'
                        })
                        .collect();
                    if let Some(tx) = tx.take() {
                        let _ = tx.send(addr);
                    }
                }
            }
        });
        let addr = rx
            .recv_timeout(Duration::from_secs(20))
            .expect("docker-registry says where it listens");
        let port = addr.rsplit(':').next().unwrap().parse().unwrap();
        Registry {
            child,
            port,
            auth,
            _dir: dir,
        }
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Pushes an image `repo:tag` of one config blob and no layers, as a client would:
    /// the blob through an upload session, then the manifest.
    pub fn push(&self, repo: &str, tag: &str) {
        let config = format!("{{\"architecture\":\"amd64\",\"os\":\"linux\",\"tag\":\"{tag}\"}}");
        let digest = format!("sha256:{}", sha256_hex(config.as_bytes()));
        let auth: Vec<(&str, &str)> = self
            .auth
            .as_deref()
            .map(|a| ("authorization", a))
            .into_iter()
            .collect();
        let with = |header: (&'static str, &'static str)| {
            let mut all = auth.clone();
            all.push(header);
            all
        };
        let start = http(
            "POST",
            &format!("{}/v2/{repo}/blobs/uploads/", self.url()),
            &auth,
            b"",
        );
        assert_eq!(start.0, 202, "upload session: {start:?}");
        let location = start
            .1
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case("location"))
            .map(|(_, v)| v.clone())
            .expect("a Location for the upload");
        let location = if location.starts_with("http") {
            location
        } else {
            format!("{}{location}", self.url())
        };
        let sep = if location.contains('?') { '&' } else { '?' };
        let put = http(
            "PUT",
            &format!("{location}{sep}digest={digest}"),
            &with(("content-type", "application/octet-stream")),
            config.as_bytes(),
        );
        assert_eq!(put.0, 201, "blob: {put:?}");
        let manifest = format!(
            "{{\"schemaVersion\":2,\"mediaType\":\"application/vnd.oci.image.manifest.v1+json\",\"config\":{{\"mediaType\":\"application/vnd.oci.image.config.v1+json\",\"digest\":\"{digest}\",\"size\":{}}},\"layers\":[]}}",
            config.len()
        );
        let put = http(
            "PUT",
            &format!("{}/v2/{repo}/manifests/{tag}", self.url()),
            &with(("content-type", "application/vnd.oci.image.manifest.v1+json")),
            manifest.as_bytes(),
        );
        assert_eq!(put.0, 201, "manifest: {put:?}");
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        stop(&mut self.child);
    }
}

/// The sha256 of `bytes`, by coreutils' `sha256sum`.
fn sha256_hex(bytes: &[u8]) -> String {
    let mut child = Command::new("sha256sum")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("sha256sum runs");
    child.stdin.take().unwrap().write_all(bytes).unwrap();
    let out = child.wait_with_output().unwrap();
    String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .next()
        .unwrap()
        .to_string()
}

/// One plain HTTP/1.1 request to a loopback server: status, headers, body.
pub fn http(method: &str, url: &str, headers: &[(&str, &str)], body: &[u8]) -> Answer {
    try_http(method, url, headers, body, Duration::from_secs(30))
        .unwrap_or_else(|e| panic!("{method} {url}: {e}"))
}

/// An HTTP answer: status, headers, body.
pub type Answer = (u16, Vec<(String, String)>, Vec<u8>);

/// [`http`], or why there is no answer (a server still starting resets connections).
fn try_http(
    method: &str,
    url: &str,
    headers: &[(&str, &str)],
    body: &[u8],
    timeout: Duration,
) -> std::io::Result<Answer> {
    let rest = url.strip_prefix("http://").expect("an http:// URL");
    let (authority, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
    let path = if path.is_empty() { "/" } else { path };
    let mut conn = std::net::TcpStream::connect(authority)?;
    conn.set_read_timeout(Some(timeout))?;
    let mut head = format!(
        "{method} {path} HTTP/1.1\r\nhost: {authority}\r\ncontent-length: {}\r\nconnection: close\r\n",
        body.len()
    );
    for (k, v) in headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str("\r\n");
    conn.write_all(head.as_bytes())?;
    conn.write_all(body)?;
    let mut answer = Vec::new();
    conn.read_to_end(&mut answer)?;
    let split = answer
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or_else(|| std::io::Error::other("not an HTTP answer"))?;
    let text = String::from_utf8_lossy(&answer[..split]).to_string();
    let mut lines = text.lines();
    let status = lines
        .next()
        .and_then(|l| l.split(' ').nth(1))
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
        .collect();
    Ok((status, headers, answer[split + 4..].to_vec()))
}

/// The MLflow tracking server of this test run: `STRATA_TEST_MLFLOW` (started by
/// `scripts/with-mlflow.sh`), else one started now, once, by a shell that stops it when
/// this test process ends.
pub fn mlflow() -> &'static str {
    static URL: OnceLock<String> = OnceLock::new();
    URL.get_or_init(|| {
        if let Ok(url) = std::env::var("STRATA_TEST_MLFLOW") {
            return url;
        }
        let bin = tool("mlflow/bin/mlflow");
        let dir = std::env::temp_dir().join(format!("strata-mlflow-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let port = free_port();
        // The shell starts MLflow in a process group of its own, waits for this process
        // to end, then stops the group and removes its files.
        let script = format!(
            "set -m; '{}' server --host 127.0.0.1 --port {port} --workers 1 --backend-store-uri 'sqlite:///{d}/mlflow.db' --default-artifact-root '{d}/artifacts' >'{d}/log' 2>&1 & pid=$!; while kill -0 {me} 2>/dev/null; do sleep 1; done; kill -TERM -- -$pid; wait $pid; rm -rf '{d}'",
            bin.display(),
            d = dir.display(),
            me = std::process::id()
        );
        // bash: dash turns job control (`set -m`) off without a terminal. It is never
        // waited for: it outlives the tests it serves, and ends after them.
        #[allow(clippy::zombie_processes)]
        Command::new("bash")
            .args(["-c", &script])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let url = format!("http://127.0.0.1:{port}");
        let started = Instant::now();
        while started.elapsed() < Duration::from_secs(180) {
            let health = try_http("GET", &format!("{url}/health"), &[], b"", Duration::from_secs(2));
            if health.is_ok_and(|(status, _, _)| status == 200) {
                return url;
            }
            std::thread::sleep(Duration::from_millis(250));
        }
        panic!(
            "MLflow did not start in 180 s:\n{}",
            std::fs::read_to_string(dir.join("log")).unwrap_or_default()
        );
    })
}

/// A webhook on a free loopback port that records every request body, and answers
/// each with `status` (settable while it runs).
/// A request line (lower case) and its body.
type Received = (String, Vec<u8>);

pub struct Hook {
    pub port: u16,
    bodies: Arc<Mutex<Vec<Received>>>,
    status: Arc<Mutex<u16>>,
    delay: Arc<Mutex<Duration>>,
}

impl Hook {
    pub fn start() -> Hook {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let bodies = Arc::new(Mutex::new(Vec::new()));
        let status = Arc::new(Mutex::new(200));
        let delay = Arc::new(Mutex::new(Duration::ZERO));
        let (record, answer, wait) = (bodies.clone(), status.clone(), delay.clone());
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                let Ok(mut conn) = conn else { continue };
                let _ = conn.set_read_timeout(Some(Duration::from_secs(10)));
                let mut buf = Vec::new();
                let mut chunk = [0u8; 4096];
                let end = loop {
                    if let Some(at) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                        break at + 4;
                    }
                    match conn.read(&mut chunk) {
                        Ok(0) | Err(_) => break 0,
                        Ok(n) => buf.extend_from_slice(&chunk[..n]),
                    }
                };
                if end == 0 {
                    continue;
                }
                let head = String::from_utf8_lossy(&buf[..end]).to_lowercase();
                let line = head.lines().next().unwrap_or("").to_string();
                let length: usize = head
                    .lines()
                    .find_map(|l| l.strip_prefix("content-length:"))
                    .and_then(|v| v.trim().parse().ok())
                    .unwrap_or(0);
                let mut body = buf[end..].to_vec();
                while body.len() < length {
                    match conn.read(&mut chunk) {
                        Ok(0) | Err(_) => break,
                        Ok(n) => body.extend_from_slice(&chunk[..n]),
                    }
                }
                record.lock().unwrap().push((line, body));
                let pause = *wait.lock().unwrap();
                std::thread::sleep(pause);
                let code = *answer.lock().unwrap();
                let text = if code < 300 { "ok" } else { "no_service" };
                let _ = conn.write_all(
                    format!(
                        "HTTP/1.1 {code} X\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{text}",
                        text.len()
                    )
                    .as_bytes(),
                );
            }
        });
        Hook {
            port,
            bodies,
            status,
            delay,
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    /// Every request so far: its request line (lower case) and body.
    pub fn received(&self) -> Vec<Received> {
        self.bodies.lock().unwrap().clone()
    }

    pub fn answer(&self, status: u16) {
        *self.status.lock().unwrap() = status;
    }

    /// Answers each request after `pause` (one at a time: a slow server).
    pub fn slow(&self, pause: Duration) {
        *self.delay.lock().unwrap() = pause;
    }
}

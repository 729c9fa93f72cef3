//! The flavor's calls against a real S3 server, natively. By default the test starts
//! `s3s-fs` (`make servers` builds it into `target/tools/bin`) on a free loopback port,
//! with keys `AK` / `SK`, and stops it; another server can be named instead:
//!
//! ```sh
//! S3_LIVE_ENDPOINT=http://127.0.0.1:9000 S3_LIVE_KEYS=AK:SK \
//!     cargo test -p s3-artifact-store --target x86_64-unknown-linux-gnu -- live
//! ```
//!
//! The requests the flavor builds go to the server over plain TCP, signed with AWS
//! Signature Version 4 the way strata's network gate signs them (the path and query
//! decoded and re-encoded, `host`, `x-amz-content-sha256` and `x-amz-date` signed, the
//! payload `UNSIGNED-PAYLOAD`), so the server checks every signature. SHA-256 and HMAC
//! are written here, for the tests only: the flavor itself never signs.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use strata_flavor_sdk::http::{self, Request, Response};

use crate::codec::{encode_key, encode_query, percent_decode};

fn sha256(data: &[u8]) -> [u8; 32] {
    const K: [u32; 64] = [
        0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4,
        0xab1c5ed5, 0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe,
        0x9bdc06a7, 0xc19bf174, 0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f,
        0x4a7484aa, 0x5cb0a9dc, 0x76f988da, 0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7,
        0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967, 0x27b70a85, 0x2e1b2138, 0x4d2c6dfc,
        0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85, 0xa2bfe8a1, 0xa81a664b,
        0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070, 0x19a4c116,
        0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
        0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7,
        0xc67178f2,
    ];
    let mut h: [u32; 8] = [
        0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab,
        0x5be0cd19,
    ];
    let mut message = data.to_vec();
    let bits = (data.len() as u64).wrapping_mul(8);
    message.push(0x80);
    while message.len() % 64 != 56 {
        message.push(0);
    }
    message.extend_from_slice(&bits.to_be_bytes());
    for block in message.chunks_exact(64) {
        let mut w = [0u32; 64];
        for i in 0..16 {
            w[i] = u32::from_be_bytes(block[4 * i..4 * i + 4].try_into().unwrap());
        }
        for i in 16..64 {
            let s0 = w[i - 15].rotate_right(7) ^ w[i - 15].rotate_right(18) ^ (w[i - 15] >> 3);
            let s1 = w[i - 2].rotate_right(17) ^ w[i - 2].rotate_right(19) ^ (w[i - 2] >> 10);
            w[i] = w[i - 16]
                .wrapping_add(s0)
                .wrapping_add(w[i - 7])
                .wrapping_add(s1);
        }
        let [mut a, mut b, mut c, mut d, mut e, mut f, mut g, mut hh] = h;
        for i in 0..64 {
            let s1 = e.rotate_right(6) ^ e.rotate_right(11) ^ e.rotate_right(25);
            let ch = (e & f) ^ (!e & g);
            let t1 = hh
                .wrapping_add(s1)
                .wrapping_add(ch)
                .wrapping_add(K[i])
                .wrapping_add(w[i]);
            let s0 = a.rotate_right(2) ^ a.rotate_right(13) ^ a.rotate_right(22);
            let maj = (a & b) ^ (a & c) ^ (b & c);
            let t2 = s0.wrapping_add(maj);
            hh = g;
            g = f;
            f = e;
            e = d.wrapping_add(t1);
            d = c;
            c = b;
            b = a;
            a = t1.wrapping_add(t2);
        }
        for (x, y) in h.iter_mut().zip([a, b, c, d, e, f, g, hh]) {
            *x = x.wrapping_add(y);
        }
    }
    let mut out = [0u8; 32];
    for (i, word) in h.iter().enumerate() {
        out[4 * i..4 * i + 4].copy_from_slice(&word.to_be_bytes());
    }
    out
}

fn hmac(key: &[u8], data: &[u8]) -> [u8; 32] {
    let mut block = [0u8; 64];
    if key.len() > 64 {
        block[..32].copy_from_slice(&sha256(key));
    } else {
        block[..key.len()].copy_from_slice(key);
    }
    let inner: Vec<u8> = block
        .iter()
        .map(|b| b ^ 0x36)
        .chain(data.iter().copied())
        .collect();
    let inner = sha256(&inner);
    let outer: Vec<u8> = block.iter().map(|b| b ^ 0x5c).chain(inner).collect();
    sha256(&outer)
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn amz_date(now: SystemTime) -> String {
    let secs = now.duration_since(UNIX_EPOCH).unwrap().as_secs();
    let (days, rem) = (secs / 86_400, secs % 86_400);
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}{m:02}{d:02}T{:02}{:02}{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// The `authorization` and `x-amz-date` headers for a request, as the gate makes them.
fn sign(method: &str, host: &str, path: &str, query: &str, keys: (&str, &str)) -> (String, String) {
    let date = amz_date(SystemTime::now());
    let canonical_path = encode_key(&percent_decode(path));
    let mut pairs: Vec<(String, String)> = query
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (
                encode_query(&percent_decode(k)),
                encode_query(&percent_decode(v)),
            )
        })
        .collect();
    pairs.sort();
    let canonical_query = pairs
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join("&");
    let names = "host;x-amz-content-sha256;x-amz-date";
    let canonical = format!(
        "{method}\n{canonical_path}\n{canonical_query}\nhost:{host}\nx-amz-content-sha256:UNSIGNED-PAYLOAD\nx-amz-date:{date}\n\n{names}\nUNSIGNED-PAYLOAD"
    );
    let scope = format!("{}/us-east-1/s3/aws4_request", &date[..8]);
    let to_sign = format!(
        "AWS4-HMAC-SHA256\n{date}\n{scope}\n{}",
        hex(&sha256(canonical.as_bytes()))
    );
    let k = hmac(format!("AWS4{}", keys.1).as_bytes(), &date.as_bytes()[..8]);
    let k = hmac(&k, b"us-east-1");
    let k = hmac(&k, b"s3");
    let k = hmac(&k, b"aws4_request");
    let signature = hex(&hmac(&k, to_sign.as_bytes()));
    (
        format!(
            "AWS4-HMAC-SHA256 Credential={}/{scope}, SignedHeaders={names}, Signature={signature}",
            keys.0
        ),
        date,
    )
}

/// Sends `request` to the server over TCP, signed, and reads the whole answer.
fn forward(request: &Request, keys: (&str, &str)) -> Result<Response, http::Error> {
    let url = request.url();
    let rest = url.strip_prefix("http://").expect("an http:// endpoint");
    let (host, path_query) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
    let (path, query) = path_query.split_once('?').unwrap_or((path_query, ""));
    let (authorization, date) = sign(request.method(), host, path, query, keys);
    let mut stream = TcpStream::connect(host).map_err(|e| http::Error::Http(e.to_string()))?;
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    let mut head = format!(
        "{} {path_query} HTTP/1.1\r\nhost: {host}\r\nconnection: close\r\nauthorization: {authorization}\r\nx-amz-date: {date}\r\n",
        request.method()
    );
    let mut has_length = false;
    for (name, value) in request.headers() {
        has_length |= name.eq_ignore_ascii_case("content-length");
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    if !has_length && !request.body_bytes().is_empty() {
        head.push_str(&format!(
            "content-length: {}\r\n",
            request.body_bytes().len()
        ));
    }
    head.push_str("\r\n");
    stream.write_all(head.as_bytes()).unwrap();
    stream.write_all(request.body_bytes()).unwrap();
    let mut answer = Vec::new();
    stream.read_to_end(&mut answer).unwrap();
    let end = answer
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("an HTTP answer");
    let head = String::from_utf8_lossy(&answer[..end]).into_owned();
    let mut lines = head.split("\r\n");
    let status: u16 = lines
        .next()
        .unwrap()
        .split(' ')
        .nth(1)
        .unwrap()
        .parse()
        .unwrap();
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    let mut body = answer[end + 4..].to_vec();
    if request.method() == "HEAD" {
        body.clear();
    } else if headers
        .iter()
        .any(|(n, v)| n == "transfer-encoding" && v.contains("chunked"))
    {
        body = dechunk(&body);
    }
    Ok(Response {
        status,
        headers,
        body,
    })
}

fn dechunk(mut data: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    loop {
        let Some(eol) = data.windows(2).position(|w| w == b"\r\n") else {
            return out;
        };
        let size_text = String::from_utf8_lossy(&data[..eol]);
        let size = usize::from_str_radix(size_text.split(';').next().unwrap().trim(), 16).unwrap();
        if size == 0 {
            return out;
        }
        out.extend_from_slice(&data[eol + 2..eol + 2 + size]);
        data = &data[eol + 2 + size + 2..];
    }
}

#[test]
fn sha256_and_hmac_match_their_test_vectors() {
    assert_eq!(
        hex(&sha256(b"abc")),
        "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
    );
    assert_eq!(
        hex(&sha256(b"")),
        "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
    );
    // RFC 4231, test case 2.
    assert_eq!(
        hex(&hmac(b"Jefe", b"what do ya want for nothing?")),
        "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
    );
}

mod round {
    use super::*;
    use crate::S3Store;
    use crate::exports::strata::flavor::artifact_store::{Guest as Files, WriteMode};
    use crate::exports::strata::flavor::lifecycle::Guest as Lifecycle;
    use strata_flavor_sdk::Context;

    /// `s3s-fs` started by the test, stopped when dropped.
    struct S3sFs {
        child: std::process::Child,
        _dir: std::path::PathBuf,
    }

    impl Drop for S3sFs {
        fn drop(&mut self) {
            let _ = self.child.kill();
            let _ = self.child.wait();
            let _ = std::fs::remove_dir_all(&self._dir);
        }
    }

    /// `s3s-fs` from `make servers` on a free loopback port, keys `AK` / `SK`.
    fn start_s3s_fs() -> (String, S3sFs) {
        let bin =
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/tools/bin/s3s-fs");
        assert!(
            bin.exists(),
            "{} is missing: run `make servers` (or name a server with S3_LIVE_ENDPOINT)",
            bin.display()
        );
        let dir = std::env::temp_dir().join(format!("strata-s3-live-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        for _ in 0..5 {
            let port = std::net::TcpListener::bind("127.0.0.1:0")
                .unwrap()
                .local_addr()
                .unwrap()
                .port();
            let mut child = std::process::Command::new(&bin)
                .args(["--host", "127.0.0.1", "--port", &port.to_string()])
                .args(["--access-key", "AK", "--secret-key", "SK"])
                .arg(&dir)
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::null())
                .spawn()
                .unwrap();
            let started = std::time::Instant::now();
            while started.elapsed() < Duration::from_secs(10) {
                if child.try_wait().unwrap().is_some() {
                    break;
                }
                if TcpStream::connect(("127.0.0.1", port)).is_ok() {
                    return (
                        format!("http://127.0.0.1:{port}"),
                        S3sFs { child, _dir: dir },
                    );
                }
                std::thread::sleep(Duration::from_millis(10));
            }
            let _ = child.kill();
            let _ = child.wait();
        }
        panic!("s3s-fs did not start");
    }

    /// The endpoint of the live server (named by `S3_LIVE_ENDPOINT`, else `s3s-fs`
    /// started now) and the server, if this test started it; requests go there, signed.
    fn server() -> (String, Option<S3sFs>) {
        let (endpoint, started) = match std::env::var("S3_LIVE_ENDPOINT") {
            Ok(endpoint) => (endpoint, None),
            Err(_) => {
                let (endpoint, s) = start_s3s_fs();
                (endpoint, Some(s))
            }
        };
        let keys = std::env::var("S3_LIVE_KEYS").unwrap_or_else(|_| "AK:SK".into());
        let (ak, sk) = keys.split_once(':').expect("S3_LIVE_KEYS=ACCESS:SECRET");
        let (ak, sk) = (ak.to_string(), sk.to_string());
        http::answer_with(move |request| forward(request, (&ak, &sk)));
        (endpoint, started)
    }

    struct Live {
        config: Vec<(String, String)>,
        state: Option<Vec<u8>>,
    }

    impl Live {
        fn ctx(&self) -> Context {
            Context {
                component_id: "live-1".into(),
                component_name: "live".into(),
                config: self.config.clone(),
                state: self.state.clone(),
            }
        }
        fn step(&mut self, run: fn(Context) -> Result<Option<Vec<u8>>, String>) {
            let state = run(self.ctx()).unwrap();
            self.state = state.or(self.state.take());
        }
    }

    fn names(c: &Live, path: &str) -> Vec<String> {
        S3Store::list(c.ctx(), path.into())
            .unwrap()
            .into_iter()
            .map(|e| {
                if e.is_dir {
                    format!("{}/", e.name)
                } else {
                    e.name
                }
            })
            .collect()
    }

    #[test]
    fn live_every_call_against_a_real_server() {
        let (endpoint, _server) = server();
        let bucket = format!(
            "strata-live-{}",
            SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .unwrap()
                .as_millis()
        );
        let mut c = Live {
            config: vec![
                ("bucket".into(), bucket.clone()),
                ("prefix".into(), "team/store".into()),
                ("create_bucket".into(), "true".into()),
                ("delete_bucket_contents".into(), "true".into()),
                ("multipart_threshold_mb".into(), "5".into()),
                ("connector.name".into(), "live".into()),
                ("connector.type".into(), "aws".into()),
                ("connector.endpoint".into(), endpoint),
            ],
            state: None,
        };
        c.step(<S3Store as Lifecycle>::provision);
        c.step(<S3Store as Lifecycle>::resume);
        c.step(<S3Store as Lifecycle>::provision);
        let status = <S3Store as Lifecycle>::status(c.ctx());
        assert!(status.provisioned && status.running, "{}", status.detail);

        // What `strata flavor test` does.
        let (dir, file) = ("strata-flavor-test", "strata-flavor-test/probe.txt");
        let data = b"written by strata flavor test\n".to_vec();
        let len = data.len() as u64;
        S3Store::makedirs(c.ctx(), dir.into()).unwrap();
        assert_eq!(
            S3Store::write(c.ctx(), file.into(), data.clone(), WriteMode::CreateNew).unwrap(),
            len
        );
        assert!(
            S3Store::write(c.ctx(), file.into(), data.clone(), WriteMode::CreateNew)
                .unwrap_err()
                .contains("already exists")
        );
        assert_eq!(
            S3Store::write(c.ctx(), file.into(), data.clone(), WriteMode::Append).unwrap(),
            2 * len
        );
        let whole = [data.as_slice(), data.as_slice()].concat();
        assert_eq!(
            S3Store::read(c.ctx(), file.into(), 0, 1 << 20).unwrap(),
            whole
        );
        assert_eq!(
            S3Store::read(c.ctx(), file.into(), len, 5).unwrap(),
            data[..5]
        );
        assert!(
            S3Store::read(c.ctx(), file.into(), 2 * len, 5)
                .unwrap()
                .is_empty()
        );
        assert_eq!(
            S3Store::write(c.ctx(), file.into(), data.clone(), WriteMode::Truncate).unwrap(),
            len
        );
        assert!(S3Store::exists(c.ctx(), file.into()).unwrap());
        let stat = S3Store::stat(c.ctx(), file.into()).unwrap();
        assert!(
            stat.size == len && !stat.is_dir && stat.modified_ms.is_some(),
            "{stat:?}"
        );
        assert!(S3Store::stat(c.ctx(), dir.into()).unwrap().is_dir);
        S3Store::copy(c.ctx(), file.into(), format!("{dir}/copy.txt"), false).unwrap();
        S3Store::rename(
            c.ctx(),
            format!("{dir}/copy.txt"),
            format!("{dir}/moved.txt"),
            false,
        )
        .unwrap();
        assert_eq!(names(&c, dir), ["moved.txt", "probe.txt"]);
        S3Store::remove(c.ctx(), dir.into(), true).unwrap();
        assert!(!S3Store::exists(c.ctx(), dir.into()).unwrap());

        // Directories, renames, odd keys.
        let odd = "models/v1/a b+c=d&e%f~é.bin";
        S3Store::write(c.ctx(), odd.into(), b"0123".to_vec(), WriteMode::CreateNew).unwrap();
        S3Store::write(
            c.ctx(),
            "best.bin".into(),
            b"b".to_vec(),
            WriteMode::CreateNew,
        )
        .unwrap();
        assert_eq!(names(&c, ""), ["best.bin", "models/"]);
        assert_eq!(names(&c, "models/v1"), ["a b+c=d&e%f~é.bin"]);
        assert!(
            S3Store::remove(c.ctx(), "models".into(), false)
                .unwrap_err()
                .contains("not empty")
        );
        S3Store::rename(c.ctx(), "models/v1".into(), "models/v2".into(), false).unwrap();
        assert_eq!(names(&c, "models"), ["v2/"]);
        assert_eq!(
            S3Store::read(c.ctx(), "models/v2/a b+c=d&e%f~é.bin".into(), 1, 2).unwrap(),
            b"12"
        );
        assert!(
            S3Store::rename(
                c.ctx(),
                "best.bin".into(),
                "models/v2/a b+c=d&e%f~é.bin".into(),
                false
            )
            .unwrap_err()
            .contains("already exists")
        );
        S3Store::rename(
            c.ctx(),
            "best.bin".into(),
            "models/v2/a b+c=d&e%f~é.bin".into(),
            true,
        )
        .unwrap();
        assert_eq!(names(&c, ""), ["models/"]);

        // Multipart: 11 MiB in parts of 5, then an append copied on the server.
        let big: Vec<u8> = (0..11 * 1024 * 1024).map(|i| (i % 253) as u8).collect();
        S3Store::write(c.ctx(), "big.bin".into(), big.clone(), WriteMode::CreateNew).unwrap();
        assert!(
            S3Store::write(c.ctx(), "big.bin".into(), big.clone(), WriteMode::CreateNew)
                .unwrap_err()
                .contains("already exists")
        );
        assert_eq!(
            S3Store::write(c.ctx(), "big.bin".into(), vec![9; 1024], WriteMode::Append).unwrap(),
            big.len() as u64 + 1024
        );
        let tail = S3Store::read(c.ctx(), "big.bin".into(), big.len() as u64 - 2, 4).unwrap();
        assert_eq!(tail, [big[big.len() - 2], big[big.len() - 1], 9, 9]);
        let all = S3Store::read(c.ctx(), "big.bin".into(), 0, u64::MAX).unwrap();
        assert_eq!(all.len(), big.len() + 1024);
        assert_eq!(all[..big.len()], big[..]);

        S3Store::remove(c.ctx(), "models".into(), true).unwrap();
        assert_eq!(names(&c, ""), ["big.bin"]);
        c.step(<S3Store as Lifecycle>::suspend);
        c.step(<S3Store as Lifecycle>::deprovision);
        let status = <S3Store as Lifecycle>::status(c.ctx());
        assert!(
            !status.provisioned && status.detail.contains("does not exist"),
            "{}",
            status.detail
        );
    }
}

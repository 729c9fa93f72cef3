//! The team server: `strata server start` nodes over a real MariaDB (Debian's
//! `mariadb-server`, a private instance this test binary starts on a free loopback port),
//! users logged in with `strata login` in config directories of their own, roles and
//! per-stack grants, two nodes on one database, the audit log, and a database that goes
//! away and comes back.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use strata::store::mariadb;

use super::support::wasm;

/// Numbers the data directories of nodes that must refuse to start.
static REFUSED: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

/// A database of this test's own, its secret key, and the nodes started on it.
struct Team {
    db: String,
    dir: tempfile::TempDir,
    nodes: Vec<Node>,
}

struct Node {
    child: Child,
    address: String,
    log: PathBuf,
}

impl Drop for Team {
    fn drop(&mut self) {
        for n in &mut self.nodes {
            // SAFETY: SIGTERM to a node this test started.
            unsafe {
                libc::kill(n.child.id() as libc::pid_t, libc::SIGTERM);
            }
            let _ = n.child.wait();
        }
    }
}

/// One person at a terminal: their own config directory (where `strata login` keeps
/// the token) and no `STRATA_HOME`, so commands go to the server they logged in to.
struct User {
    name: String,
    cfg: tempfile::TempDir,
}

struct Out {
    code: i32,
    stdout: String,
    stderr: String,
}

fn strata(cfg: &Path, data: &Path, args: &[&str]) -> Out {
    let out = Command::new(env!("CARGO_BIN_EXE_strata"))
        .args(args)
        .env_remove("STRATA_HOME")
        .env_remove("STRATA_OUTPUT")
        .env_remove("STRATA_DATABASE")
        .env_remove("STRATA_TOKEN")
        .env("STRATA_CONFIG_DIR", cfg)
        .env("XDG_DATA_HOME", data)
        .env("NO_COLOR", "1")
        .current_dir(data)
        .stdin(Stdio::null())
        .output()
        .expect("the strata binary runs");
    Out {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

impl Team {
    /// A migrated database with an admin `alice`, and one node.
    fn new() -> (Team, User) {
        let db = mariadb::shared().database();
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("server.key"), hex::encode([7u8; 32])).unwrap();
        let mut team = Team {
            db,
            dir,
            nodes: Vec::new(),
        };
        let m = team.admin(&["server", "migrate", "--database", &team.db.clone()]);
        assert_eq!(m.code, 0, "{}", m.stderr);
        team.start_node("n1");
        let alice = team.user_by_database("alice", "admin");
        (team, alice)
    }

    /// A command of the server's administrator on the database's machine.
    fn admin(&self, args: &[&str]) -> Out {
        strata(&self.dir.path().join("admin-cfg"), self.dir.path(), args)
    }

    fn start_node(&mut self, name: &str) -> usize {
        self.start_node_with(name, &[])
    }

    fn start_node_with(&mut self, name: &str, extra: &[&str]) -> usize {
        let data = self.dir.path().join(name);
        let log = self.dir.path().join(format!("{name}.log"));
        let child = Command::new(env!("CARGO_BIN_EXE_strata"))
            .args(["server", "start", "--bind", "127.0.0.1:0", "--node", name])
            .arg("--database")
            .arg(&self.db)
            .arg("--secret-key-file")
            .arg(self.dir.path().join("server.key"))
            .arg("--data-dir")
            .arg(&data)
            .args(extra)
            .env_remove("STRATA_HOME")
            .env_remove("RUST_LOG")
            .stdin(Stdio::null())
            .stdout(std::fs::File::create(&log).unwrap())
            .stderr(std::fs::File::options().append(true).open(&log).unwrap())
            .spawn()
            .expect("the strata binary runs");
        let pid = child.id();
        let mut child = child;
        let deadline = Instant::now() + Duration::from_secs(60);
        let address = loop {
            let file = std::fs::read_to_string(data.join("server.json")).unwrap_or_default();
            if let Ok(v) = serde_json::from_str::<serde_json::Value>(&file)
                && v["pid"].as_u64() == Some(u64::from(pid))
            {
                break v["url"].as_str().unwrap().to_string();
            }
            let exited = child.try_wait().ok().flatten();
            assert!(
                exited.is_none() && Instant::now() < deadline,
                "node {name} did not start ({exited:?}):\n{}",
                std::fs::read_to_string(&log).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(20));
        };
        self.nodes.push(Node {
            child,
            address,
            log,
        });
        self.nodes.len() - 1
    }

    fn url(&self, node: usize) -> String {
        self.nodes[node].address.clone()
    }

    /// A user made straight on the database, logged in to node 0.
    fn user_by_database(&self, name: &str, role: &str) -> User {
        let made = self.admin(&[
            "server",
            "user",
            "create",
            name,
            "--role",
            role,
            "--database",
            &self.db,
        ]);
        assert_eq!(made.code, 0, "{}", made.stderr);
        self.login(name, made.stdout.trim(), 0)
    }

    fn login(&self, name: &str, token: &str, node: usize) -> User {
        let u = User {
            name: name.to_string(),
            cfg: tempfile::tempdir().unwrap(),
        };
        let r = self.run(&u, &["login", &self.url(node), "--token", token]);
        assert_eq!(r.code, 0, "{}", r.stderr);
        u
    }

    fn run(&self, u: &User, args: &[&str]) -> Out {
        strata(u.cfg.path(), self.dir.path(), args)
    }

    fn ok(&self, u: &User, args: &[&str]) -> String {
        let r = self.run(u, args);
        assert_eq!(
            r.code,
            0,
            "{} `strata {}` failed:\n{}",
            u.name,
            args.join(" "),
            r.stderr
        );
        r.stdout
    }

    /// A command the server refuses: exit 1, and the error (stderr).
    fn refused(&self, u: &User, args: &[&str]) -> String {
        let r = self.run(u, args);
        assert_eq!(
            r.code,
            1,
            "{} `strata {}` was not refused:\n{}{}",
            u.name,
            args.join(" "),
            r.stdout,
            r.stderr
        );
        r.stderr
    }

    /// A user made by `alice` through the server.
    fn user(&self, alice: &User, name: &str, role: &str) -> User {
        let token = self.ok(alice, &["server", "user", "create", name, "--role", role]);
        self.login(name, token.trim(), 0)
    }

    /// `strata server start` with `args` (and a data directory of its own, and the
    /// team's key file unless `args` name another), which must refuse to start: its error.
    fn refused_start(&self, args: &[&str]) -> String {
        let key = self.dir.path().join("server.key").display().to_string();
        let data = self
            .dir
            .path()
            .join(format!(
                "refused-{}",
                REFUSED.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
            ))
            .display()
            .to_string();
        let mut all = vec!["server", "start", "--data-dir", &data];
        if !args.contains(&"--secret-key-file") {
            all.extend(["--secret-key-file", &key]);
        }
        all.extend_from_slice(args);
        let r = self.admin(&all);
        assert_eq!(r.code, 1, "the node started: {}{}", r.stdout, r.stderr);
        r.stderr
    }

    /// Where components' directories may be on this team server.
    fn stores(&self) -> PathBuf {
        self.dir.path().join("n1").join("stores")
    }
}

fn api(
    url: &str,
    method: &str,
    path: &str,
    token: &str,
    body: Option<&str>,
    if_match: Option<&str>,
) -> (u16, String, Option<String>) {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .build()
        .into();
    let mut req = ureq::http::Request::builder()
        .method(method)
        .uri(format!("{url}{path}"))
        .header("Authorization", format!("Bearer {token}"))
        .header("Content-Type", "application/json");
    if let Some(m) = if_match {
        req = req.header("If-Match", m);
    }
    let resp = match body {
        Some(b) => agent.run(req.body(b.to_string()).unwrap()),
        None => agent.run(req.body(()).unwrap()),
    }
    .expect("the server answers");
    let status = resp.status().as_u16();
    let etag = resp
        .headers()
        .get("etag")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let text = resp.into_body().read_to_string().unwrap_or_default();
    (status, text, etag)
}

fn token_of(u: &User) -> String {
    let login: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(u.cfg.path().join("login.json")).unwrap())
            .unwrap();
    login["token"].as_str().unwrap().to_string()
}

#[test]
fn roles_and_stack_grants_decide_who_may_do_what_and_the_audit_log_says_who_did() {
    let (team, alice) = Team::new();
    let who = team.ok(&alice, &["whoami", "--output", "json"]);
    let who: serde_json::Value = serde_json::from_str(&who).unwrap();
    assert_eq!(
        (who["user"].as_str(), who["role"].as_str()),
        (Some("alice"), Some("admin"))
    );
    // The login is the user's alone.
    let mode = std::fs::metadata(alice.cfg.path().join("login.json")).unwrap();
    assert_eq!(
        std::os::unix::fs::PermissionsExt::mode(&mode.permissions()) & 0o777,
        0o600
    );

    let bob = team.user(&alice, "bob", "member");
    let vic = team.user(&alice, "vic", "viewer");

    // A viewer reads, and is told which role a change needs.
    assert!(team.ok(&vic, &["stack", "list"]).contains("default"));
    let err = team.refused(&vic, &["orchestrator", "register", "o2", "--flavor=local"]);
    assert!(
        err.contains("needs the `member` role") && err.contains("`vic` is a viewer"),
        "{err}"
    );

    // A member registers components and stacks, and brings up an open stack.
    let stores = team.stores();
    let store_dir = stores.join("bob-store").display().to_string();
    team.ok(
        &bob,
        &["orchestrator", "register", "bob-o", "--flavor=local"],
    );
    team.ok(
        &bob,
        &[
            "artifact-store",
            "register",
            "bob-a",
            "--flavor=local",
            &format!("--path={store_dir}"),
        ],
    );
    team.ok(
        &bob,
        &["stack", "register", "dev", "-o", "bob-o", "-a", "bob-a"],
    );
    team.ok(&bob, &["stack", "up", "dev"]);
    // A directory outside the server's data directory is no one's to grant.
    let err = team.refused(
        &bob,
        &[
            "artifact-store",
            "register",
            "etc",
            "--flavor=local",
            "--path=/etc",
        ],
    );
    assert!(
        err.contains("outside this team server's data directory"),
        "{err}"
    );

    // Production: restricted to alice by a grant. Bob may read it, not change it, not
    // bring it (or a component of it) up or down.
    let prod_dir = stores.join("prod-store").display().to_string();
    team.ok(
        &alice,
        &[
            "artifact-store",
            "register",
            "prod-a",
            "--flavor=local",
            &format!("--path={prod_dir}"),
        ],
    );
    team.ok(
        &alice,
        &["stack", "register", "prod", "-o", "default", "-a", "prod-a"],
    );
    team.ok(
        &alice,
        &["stack", "grant", "prod", "alice", "--role", "member"],
    );
    let err = team.refused(&bob, &["stack", "up", "prod"]);
    assert!(
        err.contains("stack `prod` is restricted")
            && err.contains("`member` role on it")
            && err.contains("strata stack grant prod bob --role member"),
        "{err}"
    );
    let err = team.refused(&bob, &["artifact-store", "up", "prod-a"]);
    assert!(
        err.contains("belongs to stack `prod`, which is restricted"),
        "{err}"
    );
    let err = team.refused(
        &bob,
        &["artifact-store", "update", "prod-a", "--path", &store_dir],
    );
    assert!(err.contains("restricted"), "{err}");
    let err = team.refused(&bob, &["stack", "rename", "prod", "mine"]);
    assert!(err.contains("restricted"), "{err}");
    // The REST answer is a 403 naming the role.
    let (status, body, _) = api(
        &team.url(0),
        "POST",
        "/api/v1/stacks/prod/up",
        &token_of(&bob),
        Some("{}"),
        None,
    );
    assert_eq!(status, 403, "{body}");
    assert!(
        body.contains("\"forbidden\"") && body.contains("member"),
        "{body}"
    );
    // Alice brings it up; granted, bob may too.
    team.ok(&alice, &["stack", "up", "prod"]);
    team.ok(&alice, &["stack", "grant", "prod", "bob"]);
    team.ok(&bob, &["stack", "down", "prod"]);
    assert!(team.ok(&bob, &["whoami"]).contains("stack prod: member"));
    // Renamed, a stack keeps its grants.
    team.ok(&alice, &["stack", "rename", "prod", "production"]);
    assert!(
        team.ok(&alice, &["stack", "grants", "production"])
            .contains("bob")
    );
    team.ok(&alice, &["stack", "revoke", "production", "bob"]);
    team.refused(&bob, &["stack", "up", "production"]);

    // Each user has an active stack of their own.
    team.ok(&bob, &["stack", "set", "dev"]);
    assert_eq!(team.ok(&bob, &["stack", "get"]).trim(), "dev");
    assert_eq!(team.ok(&alice, &["stack", "get"]).trim(), "default");

    // Secrets: sealed with the server's key, never in clear in the database; values
    // shown to admins only.
    team.ok(&bob, &["secret", "create", "db", "--password=hunter2-team"]);
    let err = team.refused(&bob, &["secret", "get", "db", "--reveal"]);
    assert!(err.contains("needs the `admin` role"), "{err}");
    assert!(
        team.ok(&alice, &["secret", "get", "db", "--reveal"])
            .contains("hunter2-team")
    );
    let dump = mariadb_dump(&team.db);
    assert!(
        !dump.contains("hunter2-team"),
        "a secret is in clear in the database"
    );

    // Service connectors: admins make them; a member uses one once granted.
    team.ok(
        &alice,
        &[
            "service-connector",
            "register",
            "reg",
            "--type",
            "bearer",
            "--endpoint=http://127.0.0.1:9",
            "--token=t0ken-team",
        ],
    );
    let err = team.refused(
        &bob,
        &[
            "service-connector",
            "register",
            "mine",
            "--type",
            "bearer",
            "--endpoint=http://127.0.0.1:9",
            "--token=x",
        ],
    );
    assert!(err.contains("`admin` role"), "{err}");
    team.ok(
        &bob,
        &["alerter", "flavor", "register", &wasm("fixture_alerter")],
    );
    let err = team.refused(
        &bob,
        &[
            "alerter",
            "register",
            "al",
            "--flavor=alerter",
            "--connector=reg",
        ],
    );
    assert!(
        err.contains("service connector `reg`")
            && err.contains("strata service-connector grant reg bob"),
        "{err}"
    );
    team.ok(&alice, &["service-connector", "grant", "reg", "bob"]);
    let al_dir = format!("--path={}", stores.join("al").display());
    team.ok(
        &bob,
        &[
            "alerter",
            "register",
            "al",
            "--flavor=alerter",
            "--channel=ops",
            &al_dir,
            "--connector=reg",
        ],
    );
    assert!(!mariadb_dump(&team.db).contains("t0ken-team"));

    // What a component holds is checked against its user, however it comes to hold it.
    let carol = team.user(&alice, "carol", "member");
    team.ok(
        &alice,
        &["secret", "create", "proddb", "--password=hunter2-prod"],
    );
    let leak_dir = format!("--path={}", stores.join("leak").display());
    let err = team.refused(
        &carol,
        &[
            "alerter",
            "register",
            "leak",
            "--flavor=alerter",
            "--channel={{proddb.password}}",
            &leak_dir,
        ],
    );
    assert!(err.contains("secret `proddb` belongs to `alice`"), "{err}");
    let err = team.refused(&carol, &["secret", "update", "db", "--password=x"]);
    assert!(err.contains("secret `db` belongs to `bob`"), "{err}");
    let err = team.refused(&carol, &["alerter", "copy", "al", "al2"]);
    assert!(err.contains("service connector `reg`"), "{err}");
    let err = team.refused(
        &carol,
        &[
            "artifact-store",
            "register",
            "spy",
            "--flavor=local",
            &format!("--path={prod_dir}/x"),
        ],
    );
    assert!(err.contains("no two components share a directory"), "{err}");
    // A component bound to a connector is called by members granted it only.
    let err = team.refused(&carol, &["alerter", "up", "al"]);
    assert!(err.contains("service connector `reg`"), "{err}");
    // Nothing on the server's own disk is a member's to name.
    let (status, body, _) = api(
        &team.url(0),
        "POST",
        "/api/v1/flavors/alerter",
        &token_of(&carol),
        Some(r#"{"path":"/etc/passwd"}"#),
        None,
    );
    assert_eq!(status, 403, "{body}");
    assert!(body.contains("path on the server"), "{body}");
    let (status, body, _) = api(
        &team.url(0),
        "PUT",
        "/api/v1/integrations/%2Fetc",
        &token_of(&carol),
        None,
        None,
    );
    assert!(status == 403 || status == 422, "{status} {body}");
    // A viewer copies no stack; runs are an admin's to stop or delete.
    let err = team.refused(&vic, &["stack", "copy", "dev", "vics"]);
    assert!(err.contains("`member` role"), "{err}");
    let (status, _, _) = api(
        &team.url(0),
        "DELETE",
        "/api/v1/runs/0123abcd",
        &token_of(&bob),
        None,
        None,
    );
    assert_eq!(status, 403);
    // A stack stays restricted when its last grant goes: then admins only.
    team.ok(&alice, &["stack", "revoke", "production", "alice"]);
    assert!(
        team.refused(&carol, &["stack", "up", "production"])
            .contains("admins only")
    );
    // Restricted stacks are not listed to those who may not read them.
    assert!(!team.ok(&carol, &["stack", "list"]).contains("production"));
    assert!(team.ok(&alice, &["stack", "list"]).contains("production"));

    // Tokens: a wrong one is 401; a revoked one stops working at once.
    let (status, body, _) = api(
        &team.url(0),
        "GET",
        "/api/v1/stacks",
        "strata_0123456789abcdef_wrong",
        None,
        None,
    );
    assert_eq!(status, 401, "{body}");
    let t = team.ok(&bob, &["server", "token", "create", "--name", "spare"]);
    let spare = t.trim().to_string();
    let (status, _, _) = api(&team.url(0), "GET", "/api/v1/whoami", &spare, None, None);
    assert_eq!(status, 200);
    let id = spare.split('_').nth(1).unwrap().to_string();
    team.ok(&bob, &["server", "token", "revoke", &id]);
    let (status, body, _) = api(&team.url(0), "GET", "/api/v1/whoami", &spare, None, None);
    assert_eq!(status, 401, "{body}");
    // Bob cannot revoke alice's tokens, nor make users.
    let alice_id = token_of(&alice).split('_').nth(1).unwrap().to_string();
    assert!(
        team.refused(&bob, &["server", "token", "revoke", &alice_id])
            .contains("`admin` role")
    );
    assert!(
        team.refused(&bob, &["server", "user", "create", "eve"])
            .contains("`admin` role")
    );
    // The last admin stays.
    assert!(
        team.refused(&alice, &["server", "user", "delete", "alice"])
            .contains("last admin")
    );
    // Roles change, at once; the last admin stays one.
    team.ok(
        &alice,
        &["server", "user", "update", "vic", "--role", "member"],
    );
    team.ok(
        &vic,
        &["orchestrator", "register", "vic-o", "--flavor=local"],
    );
    let err = team.refused(
        &alice,
        &["server", "user", "update", "alice", "--role", "member"],
    );
    assert!(err.contains("last admin"), "{err}");
    // A deleted user's token stops working.
    team.ok(&alice, &["server", "user", "delete", "vic"]);
    let r = team.run(&vic, &["stack", "list"]);
    assert_eq!(r.code, 1);
    assert!(
        r.stderr.contains("wrong, revoked, or its user was deleted"),
        "{}",
        r.stderr
    );

    // The audit log: who did what, when, with the answer.
    assert!(
        team.refused(&bob, &["server", "audit"])
            .contains("`admin` role")
    );
    let audit = team.ok(
        &alice,
        &["server", "audit", "--limit", "1000", "--output", "json"],
    );
    let audit: Vec<serde_json::Value> = serde_json::from_str(&audit).unwrap();
    let has = |user: &str, method: &str, path: &str, status: u64| {
        audit.iter().any(|e| {
            e["user"] == user && e["method"] == method && e["path"] == path && e["status"] == status
        })
    };
    assert!(has("bob", "POST", "/api/v1/stacks", 201), "{audit:#?}");
    assert!(
        has("bob", "POST", "/api/v1/stacks/prod/up", 403),
        "{audit:#?}"
    );
    assert!(
        has("alice", "POST", "/api/v1/stacks/prod/grants", 200),
        "{audit:#?}"
    );
    assert!(audit.iter().all(|e| e["node"] == "n1"));
    // A local home has no users.
    let home = tempfile::tempdir().unwrap();
    let r = Command::new(env!("CARGO_BIN_EXE_strata"))
        .args(["server", "user", "list"])
        .env("STRATA_HOME", home.path())
        .output()
        .unwrap();
    assert_eq!(r.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&r.stderr).contains("a local home has no users"));
}

/// Everything in the database, as `mariadb-dump` would see it.
fn mariadb_dump(url: &str) -> String {
    use mysql::prelude::Queryable;
    let mut conn = mysql::Conn::new(mysql::Opts::from_url(url).unwrap()).unwrap();
    let rows: Vec<(u8, Vec<u8>, Vec<u8>)> =
        conn.query("SELECT tree, k, v FROM strata_records").unwrap();
    rows.iter()
        .map(|(t, k, v)| {
            format!(
                "{t} {} {}\n",
                String::from_utf8_lossy(k),
                String::from_utf8_lossy(v)
            )
        })
        .collect()
}

#[test]
fn two_nodes_on_one_database_serve_one_state_without_lost_updates_or_double_provisioning() {
    let (mut team, alice) = Team::new();
    let n2 = team.start_node("n2");
    let alice2 = team.login("alice", &token_of(&alice), n2);

    // Registrations sent to both nodes at once all land, and both see all of them.
    std::thread::scope(|s| {
        for i in 0..16 {
            let (team, who) = (&team, if i % 2 == 0 { &alice } else { &alice2 });
            s.spawn(move || {
                team.ok(
                    who,
                    &[
                        "orchestrator",
                        "register",
                        &format!("o{i}"),
                        "--flavor=local",
                    ],
                );
            });
        }
    });
    let count = |u: &User| {
        let v: Vec<serde_json::Value> =
            serde_json::from_str(&team.ok(u, &["orchestrator", "list", "--output", "json"]))
                .unwrap();
        v.len()
    };
    assert_eq!((count(&alice), count(&alice2)), (17, 17));

    // One component changed on both nodes at once keeps both changes (each is read,
    // checked and written under the database's lock): no lost update.
    team.ok(
        &alice,
        &["alerter", "flavor", "register", &wasm("fixture_alerter")],
    );
    let al_dir = format!("--path={}", team.stores().join("al").display());
    team.ok(
        &alice,
        &[
            "alerter",
            "register",
            "al",
            "--flavor=alerter",
            "--channel=ops",
            &al_dir,
        ],
    );
    for round in 1..=5u64 {
        let (t, m) = ((1000 + round).to_string(), (100 + round).to_string());
        std::thread::scope(|s| {
            s.spawn(|| {
                team.ok(
                    &alice,
                    &["orchestrator", "update", "o1", "--timeout-ms", &t],
                )
            });
            s.spawn(|| {
                team.ok(
                    &alice2,
                    &["orchestrator", "update", "o1", "--memory-mb", &m],
                )
            });
        });
        let o1: serde_json::Value = serde_json::from_str(&team.ok(
            &alice,
            &["orchestrator", "describe", "o1", "--output", "json"],
        ))
        .unwrap();
        let text = o1.to_string();
        assert!(
            text.contains(&format!("\"timeout_ms\":{t}"))
                && text.contains(&format!("\"memory_mb\":{m}")),
            "round {round}: an update was lost: {o1:#}"
        );
    }

    // If-Match: a change made from a version read before another change is refused
    // with 412, on any node.
    let token = token_of(&alice);
    team.ok(
        &alice,
        &["stack", "register", "mixed", "-o", "o1", "-a", "default"],
    );
    let (status, _, etag) = api(
        &team.url(0),
        "GET",
        "/api/v1/stacks/mixed",
        &token,
        None,
        None,
    );
    assert_eq!(status, 200);
    let etag = etag.expect("a stack carries its version");
    team.ok(&alice2, &["stack", "update", "mixed", "-al", "al"]);
    let (status, body, _) = api(
        &team.url(n2),
        "PATCH",
        "/api/v1/stacks/mixed",
        &token,
        Some(r#"{"components":{"orchestrator":"o2"}}"#),
        Some(&etag),
    );
    assert_eq!(status, 412, "{body}");
    assert!(
        body.contains("precondition_failed") && body.contains("changed since"),
        "{body}"
    );
    let (_, _, fresh) = api(
        &team.url(n2),
        "GET",
        "/api/v1/stacks/mixed",
        &token,
        None,
        None,
    );
    let (status, body, _) = api(
        &team.url(0),
        "PATCH",
        "/api/v1/stacks/mixed",
        &token,
        Some(r#"{"components":{"orchestrator":"o2"}}"#),
        fresh.as_deref(),
    );
    assert_eq!(status, 200, "{body}");
    assert!(
        team.ok(&alice2, &["stack", "describe", "mixed"])
            .contains("o2")
    );

    // Two users bring one stack up on two nodes at once: its slow component is
    // provisioned once (the database's lock of the component), and both succeed.
    let logs = team.stores().join("slow");
    team.ok(
        &alice,
        &["alerter", "flavor", "register", &wasm("fixture_slowprov")],
    );
    team.ok(
        &alice,
        &[
            "alerter",
            "register",
            "slow",
            "--flavor=slowprov",
            &format!("--path={}", logs.display()),
            "--note=1500",
            "--timeout-ms=20000",
        ],
    );
    team.ok(
        &alice,
        &[
            "stack", "register", "shared", "-o", "default", "-a", "default", "-al", "slow",
        ],
    );
    let outs: Vec<Out> = std::thread::scope(|s| {
        let a = s.spawn(|| team.run(&alice, &["stack", "up", "shared"]));
        let b = s.spawn(|| team.run(&alice2, &["stack", "up", "shared"]));
        vec![a.join().unwrap(), b.join().unwrap()]
    });
    for o in &outs {
        assert_eq!(o.code, 0, "{}", o.stderr);
    }
    let provisions = std::fs::read_to_string(logs.join("provisions.log")).unwrap();
    assert_eq!(
        provisions.lines().count(),
        1,
        "provisioned more than once:\n{provisions}\n{}\n{}",
        outs[0].stderr,
        outs[1].stderr
    );

    // Two admins deleting one stack at once: one wins, the other is told it is gone.
    team.ok(
        &alice,
        &[
            "stack", "register", "twice", "-o", "default", "-a", "default",
        ],
    );
    let outs: Vec<Out> = std::thread::scope(|s| {
        let a = s.spawn(|| team.run(&alice, &["stack", "delete", "twice"]));
        let b = s.spawn(|| team.run(&alice2, &["stack", "delete", "twice"]));
        vec![a.join().unwrap(), b.join().unwrap()]
    });
    let codes: Vec<i32> = outs.iter().map(|o| o.code).collect();
    assert!(codes.contains(&0) && codes.contains(&1), "{codes:?}");
    let lost = outs.iter().find(|o| o.code == 1).unwrap();
    assert!(lost.stderr.contains("does not exist"), "{}", lost.stderr);
    // Both nodes served to the end.
    for n in &team.nodes {
        let log = std::fs::read_to_string(&n.log).unwrap();
        assert!(log.contains("serving the REST API"), "{log}");
    }
}

#[test]
fn a_server_whose_database_goes_away_answers_503_and_recovers_losing_nothing() {
    // A MariaDB of this test's own, to stop and start.
    let server = mariadb::Private::start().expect("starting MariaDB");
    let db = server.database();
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("server.key"), hex::encode([9u8; 32])).unwrap();
    let mut team = Team {
        db: db.clone(),
        dir,
        nodes: Vec::new(),
    };
    assert_eq!(
        team.admin(&["server", "migrate", "--database", &db]).code,
        0
    );
    team.start_node("n1");
    let alice = team.user_by_database("alice", "admin");
    team.ok(
        &alice,
        &["orchestrator", "register", "before", "--flavor=local"],
    );

    server.kill(false);
    let token = token_of(&alice);
    // Tokens checked in the last 2 s are trusted without the database; past that, and
    // for any write, the answer is 503.
    std::thread::sleep(Duration::from_millis(2100));
    let (status, body, _) = api(&team.url(0), "GET", "/api/v1/stacks", &token, None, None);
    assert_eq!(status, 503, "{body}");
    assert!(
        body.contains("unavailable") && body.contains("cannot be reached"),
        "{body}"
    );
    let r = team.run(
        &alice,
        &["orchestrator", "register", "during", "--flavor=local"],
    );
    assert_eq!(r.code, 1);
    assert!(r.stderr.contains("cannot be reached"), "{}", r.stderr);

    server.restart();
    team.ok(
        &alice,
        &["orchestrator", "register", "after", "--flavor=local"],
    );
    let list = team.ok(&alice, &["orchestrator", "list"]);
    assert!(
        list.contains("before") && list.contains("after") && !list.contains("during"),
        "{list}"
    );

    // A node does not start on a database it cannot reach, nor on a wrong URL.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let err = team.refused_start(&["--database", &format!("mysql://u:pw@127.0.0.1:{port}/x")]);
    assert!(
        err.contains("cannot be reached") && !err.contains(":pw@"),
        "{err}"
    );
    let err = team.refused_start(&["--database", "postgres://x/y"]);
    assert!(err.contains("not a MySQL database URL"), "{err}");
    // Nor with another key than the one the database's secrets are sealed with.
    std::fs::write(team.dir.path().join("other.key"), hex::encode([1u8; 32])).unwrap();
    let other = team.dir.path().join("other.key").display().to_string();
    let err = team.refused_start(&["--database", &db, "--secret-key-file", &other]);
    assert!(
        err.contains("not the one the database's secrets are sealed with"),
        "{err}"
    );
}

/// The README's "Run a team server", run as written: its one `sh` block, with `strata`
/// from this build, a MariaDB of its own (`scripts/mariadb.sh`) and a free port.
#[test]
fn the_readme_team_server_runs_as_written() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let dir = tempfile::tempdir().unwrap();
    let db_dir = dir.path().join("mariadb");
    // Whatever happens to the script, its MariaDB and its server node are stopped (the
    // node's files are in this test's TMPDIR, where the script's `mktemp -d` puts them).
    struct Stop(PathBuf, PathBuf, PathBuf);
    impl Drop for Stop {
        fn drop(&mut self) {
            let _ = Command::new("pkill")
                .args(["-f", &format!("server start .*{}", self.2.display())])
                .status();
            let _ = Command::new(self.0.join("scripts/mariadb.sh"))
                .arg("stop")
                .env("STRATA_MARIADB", &self.1)
                .status();
        }
    }
    let _stop = Stop(root.clone(), db_dir.clone(), dir.path().to_path_buf());
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
        .to_string();
    let (stdout, stderr) = super::support::run_readme(
        "team-server",
        &[
            ("STRATA_MARIADB", db_dir.as_os_str()),
            ("TMPDIR", dir.path().as_os_str()),
            ("PORT", std::ffi::OsStr::new(&port)),
            ("XDG_DATA_HOME", dir.path().as_os_str()),
        ],
    );
    assert!(stderr.contains("Stack `prod` is up"), "{stderr}");
    assert!(stderr.contains("stack `prod` is restricted"), "{stderr}");
    assert!(
        stdout.contains("refused: bob is not granted prod"),
        "{stdout}"
    );
    assert!(
        stderr.contains("stacks (laptop)") && stderr.contains("notebooks"),
        "{stderr}"
    );
    assert!(
        stdout.contains("POST /api/v1/stacks/prod/down") && stdout.contains("403"),
        "{stdout}"
    );
}

/// `--tls-cert`/`--tls-key`: the server speaks HTTPS; a client trusts it with the
/// issuer's certificate (`login --ca-cert`), and says what to do when it does not.
#[test]
fn a_server_speaks_https_with_the_certificate_it_is_given() {
    let db = mariadb::shared().database();
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("server.key"), hex::encode([3u8; 32])).unwrap();
    // A CA, and a certificate for 127.0.0.1 that it signs (openssl, as a person would).
    let sh = |cmd: &str| {
        let ok = Command::new("sh")
            .args(["-c", cmd])
            .current_dir(dir.path())
            .stderr(Stdio::null())
            .status()
            .unwrap()
            .success();
        assert!(ok, "{cmd}");
    };
    sh(
        "openssl req -x509 -newkey rsa:2048 -nodes -keyout ca.key -out ca.pem -days 2 -subj '/CN=strata test CA'",
    );
    sh("openssl req -newkey rsa:2048 -nodes -keyout tls.key -out tls.csr -subj '/CN=127.0.0.1'");
    sh(
        "printf 'subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\n' > ext && openssl x509 -req -in tls.csr -CA ca.pem -CAkey ca.key -CAcreateserial -out tls.pem -days 2 -extfile ext",
    );
    let mut team = Team {
        db: db.clone(),
        dir,
        nodes: Vec::new(),
    };
    assert_eq!(
        team.admin(&["server", "migrate", "--database", &db]).code,
        0
    );
    let (cert, key) = (
        team.dir.path().join("tls.pem").display().to_string(),
        team.dir.path().join("tls.key").display().to_string(),
    );
    team.start_node_with("n1", &["--tls-cert", &cert, "--tls-key", &key]);
    let url = team.url(0);
    assert!(url.starts_with("https://"), "{url}");
    let made = team.admin(&[
        "server",
        "user",
        "create",
        "alice",
        "--role",
        "admin",
        "--database",
        &db,
    ]);
    let token = made.stdout.trim().to_string();
    let alice = User {
        name: "alice".into(),
        cfg: tempfile::tempdir().unwrap(),
    };
    // Not trusted without the CA: one clear error.
    let r = team.run(&alice, &["login", &url, "--token", &token]);
    assert_eq!(r.code, 1);
    assert!(
        r.stderr.contains("is not trusted") && r.stderr.contains("--ca-cert"),
        "{}",
        r.stderr
    );
    let ca = team.dir.path().join("ca.pem").display().to_string();
    team.ok(
        &alice,
        &["login", &url, "--token", &token, "--ca-cert", &ca],
    );
    assert!(team.ok(&alice, &["whoami"]).contains(&url));
    team.ok(
        &alice,
        &["stack", "register", "tls", "-o", "default", "-a", "default"],
    );
    assert!(team.ok(&alice, &["stack", "list"]).contains("tls"));
    // A key file that is not a key is refused at start.
    let err = team.refused_start(&["--database", &db, "--tls-cert", &cert, "--tls-key", &cert]);
    assert!(err.contains("cannot be read as PEM"), "{err}");
}

#[test]
fn a_team_server_serves_the_dashboard_and_each_token_sees_what_its_user_may() {
    let (team, alice) = Team::new();
    let bob = team.user(&alice, "bob", "member");
    let stores = team.stores().join("prod").display().to_string();
    team.ok(
        &alice,
        &["orchestrator", "register", "prod_orch", "--flavor=local"],
    );
    team.ok(
        &alice,
        &[
            "artifact-store",
            "register",
            "prod_store",
            "--flavor=local",
            &format!("--path={stores}"),
        ],
    );
    team.ok(
        &alice,
        &[
            "stack",
            "register",
            "prod",
            "-o",
            "prod_orch",
            "-a",
            "prod_store",
        ],
    );
    team.ok(&alice, &["stack", "grant", "prod", "alice"]);
    let url = team.url(0);

    // The same pages as a daemon's, told to ask for a token; no one-time links here.
    let (status, page, _) = api(&url, "GET", "/", "", None, None);
    assert_eq!(status, 200);
    assert!(page.contains("data-mode=\"team\""), "{page}");
    let (status, body, _) = api(
        &url,
        "POST",
        "/api/v1/dashboard/links",
        &token_of(&alice),
        None,
        None,
    );
    assert_eq!(status, 404, "{body}");
    assert!(body.contains("API token"), "{body}");
    // `strata dashboard` of a logged-in user names the server.
    let out = team.ok(&bob, &["dashboard", "--no-open"]);
    assert_eq!(out.trim(), format!("{url}/"));

    let b = crate::browser::Browser::start();
    b.goto(&format!("{url}/"));
    b.wait_for("main", 30, |t| t.contains("Log in to the strata server"));
    // A wrong token is told so, and nothing is shown.
    b.type_into("#token", "strata_nope_nope");
    b.click("form button[type=submit]");
    let refused = b.wait_for("main", 20, |t| t.contains("Logging in failed"));
    assert!(refused.contains("token"), "{refused}");
    // bob, a member, sees the stacks he may: not alice's restricted `prod`.
    b.type_into("#token", &token_of(&bob));
    b.click("form button[type=submit]");
    let stacks = b.wait_for("main", 30, |t| {
        t.contains("default") && t.contains("Stacks")
    });
    assert!(!stacks.contains("prod"), "bob sees prod: {stacks}");
    assert!(
        b.text("#who").contains("bob (member)"),
        "{}",
        b.text("#who")
    );
    // His `up` of prod through the API is refused as the CLI's would be.
    let (status, body, _) = api(
        &url,
        "POST",
        "/api/v1/stacks/prod/up",
        &token_of(&bob),
        None,
        None,
    );
    assert_eq!(status, 403, "{body}");
    b.click("#logout");
    b.wait_for("main", 10, |t| t.contains("Log in to the strata server"));
    // alice, an admin, sees prod and brings it up from the page.
    b.type_into("#token", &token_of(&alice));
    b.click("form button[type=submit]");
    b.wait_for("main", 30, |t| t.contains("prod"));
    b.click("section[data-stack=prod] button.primary");
    let prod = b.wait_for("section[data-stack=prod]", 60, |t| {
        t.contains(": done") || t.contains("failed:")
    });
    assert!(!prod.contains("failed:"), "{prod}");
    let phases = b.js(
        "return [...document.querySelectorAll('section[data-stack=prod] td.phase .badge')].map(e => e.dataset.status)",
        serde_json::json!([]),
    );
    assert_eq!(phases, serde_json::json!(["running", "running"]), "{prod}");
    // The audit log says who did it from the browser.
    let audit = team.ok(&alice, &["server", "audit"]);
    assert!(
        audit
            .lines()
            .any(|l| l.contains("alice") && l.contains("/api/v1/stacks/prod/up")),
        "{audit}"
    );
}

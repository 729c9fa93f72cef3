//! The storage contract: the promises strata's service relies on, checked against both
//! backends, the local sled store and a team server's MariaDB (a private server this test
//! starts; `make servers` installs it). Each case is written once, over [`Backend`], and
//! run on each.

use std::time::Duration;

use strata_model::error::Error;
use strata_store::{Batch, Store, TreeId, mariadb};

/// A way to open one store again and again, as a restarted process would (a sled home
/// only once the process before has closed it; a database from many at once).
trait Backend {
    fn open(&self) -> Store;
    /// Whether other processes share this store (a team server's nodes).
    fn shared(&self) -> bool;
}

struct Sled(tempfile::TempDir);

impl Backend for Sled {
    fn open(&self) -> Store {
        Store::open(&self.0.path().join("db")).expect("opening sled")
    }
    fn shared(&self) -> bool {
        false
    }
}

struct Maria {
    url: String,
    node: tempfile::TempDir,
}

impl Maria {
    fn new() -> Maria {
        let url = mariadb::shared().database();
        strata_store::mysql::migrate(&url).expect("migrating");
        Maria {
            url,
            node: tempfile::tempdir().unwrap(),
        }
    }
}

impl Backend for Maria {
    fn open(&self) -> Store {
        // Each node has a directory of its own.
        let node = self
            .node
            .path()
            .join(hex::encode(rand::random::<[u8; 4]>()));
        Store::connect(&self.url, &node).expect("connecting")
    }
    fn shared(&self) -> bool {
        true
    }
}

/// Runs `case` on both backends.
macro_rules! contract {
    ($($name:ident),* $(,)?) => {
        mod sled_backend {
            $(#[test] fn $name() { super::$name(&super::Sled(tempfile::tempdir().unwrap())); })*
        }
        mod mysql_backend {
            $(#[test] fn $name() { super::$name(&super::Maria::new()); })*
        }
    };
}

contract!(
    acknowledged_means_committed,
    a_batch_applies_in_order_all_or_nothing,
    scans_are_by_prefix_in_byte_order_within_one_tree,
    a_damaged_record_is_named_never_misread,
    flavor_code_is_content_addressed_and_checked,
    replace_all_leaves_exactly_what_it_was_given,
    a_lock_is_held_by_one_process_at_a_time,
    a_request_reads_what_another_process_committed_before_it_began,
    concurrent_writers_under_the_lock_lose_nothing,
);

fn acknowledged_means_committed(b: &dyn Backend) {
    {
        let s = b.open();
        let mut batch = Batch::new();
        batch
            .put(TreeId::Stacks, "prod", &"p".to_string())
            .put(TreeId::Meta, "n", &7u32);
        s.apply(batch).unwrap();
        // Seen at once by this process…
        assert_eq!(s.get::<u32>(TreeId::Meta, "n").unwrap(), Some(7));
    }
    // …and by the next one.
    let s = b.open();
    assert_eq!(
        s.get::<String>(TreeId::Stacks, "prod").unwrap().as_deref(),
        Some("p")
    );
    assert!(s.contains(TreeId::Stacks, "prod").unwrap());
    assert!(!s.contains(TreeId::Stacks, "dev").unwrap());
    assert_eq!(s.get::<u32>(TreeId::Meta, "absent").unwrap(), None);
}

fn a_batch_applies_in_order_all_or_nothing(b: &dyn Backend) {
    let s = b.open();
    let mut batch = Batch::new();
    batch
        .put(TreeId::Stacks, "a", &1u32)
        .remove(TreeId::Stacks, "a")
        .remove(TreeId::Stacks, "b")
        .put(TreeId::Stacks, "b", &2u32)
        .put(TreeId::Stacks, "b", &3u32);
    s.apply(batch).unwrap();
    assert_eq!(s.get::<u32>(TreeId::Stacks, "a").unwrap(), None);
    assert_eq!(s.get::<u32>(TreeId::Stacks, "b").unwrap(), Some(3));
    // A batch that cannot be applied whole changes nothing: here its last key is longer
    // than any backend takes (sled: the blob name cannot be a file).
    let mut batch = Batch::new();
    batch.put(TreeId::Stacks, "c", &4u32).put_raw(
        TreeId::Blobs,
        &"x/".repeat(2000),
        b"code".to_vec(),
    );
    assert!(s.apply(batch).is_err());
    assert_eq!(s.get::<u32>(TreeId::Stacks, "c").unwrap(), None);
    drop(s);
    assert_eq!(b.open().get::<u32>(TreeId::Stacks, "c").unwrap(), None);
}

fn scans_are_by_prefix_in_byte_order_within_one_tree(b: &dyn Backend) {
    let s = b.open();
    let mut batch = Batch::new();
    for k in [
        "run/b",
        "run/a",
        "run/é",
        "run",
        "ruo",
        "rum/x",
        "run/\u{7f}",
    ] {
        batch.put(TreeId::Runs, k, &k.to_string());
    }
    batch.put(TreeId::RunLogs, "run/z", &"other tree".to_string());
    s.apply(batch).unwrap();
    let keys: Vec<String> = s
        .scan::<String>(TreeId::Runs, "run/")
        .unwrap()
        .into_iter()
        .map(|(k, v)| {
            assert_eq!(k, v);
            k
        })
        .collect();
    assert_eq!(keys, ["run/a", "run/b", "run/\u{7f}", "run/é"]);
    assert_eq!(s.scan::<String>(TreeId::Runs, "").unwrap().len(), 7);
    assert!(s.scan::<String>(TreeId::Runs, "zzz").unwrap().is_empty());
}

fn a_damaged_record_is_named_never_misread(b: &dyn Backend) {
    let s = b.open();
    let mut batch = Batch::new();
    batch.put_raw(TreeId::Stacks, "broken", b"garbage".to_vec());
    s.apply(batch).unwrap();
    let err = s.stack("broken").unwrap_err();
    assert!(matches!(err, Error::Corrupt { .. }), "{err}");
    assert!(err.to_string().contains("stacks/broken"), "{err}");
}

fn flavor_code_is_content_addressed_and_checked(b: &dyn Backend) {
    use sha2::Digest;
    let s = b.open();
    // Larger than one part of the MySQL backend (4 MiB), and not a multiple of it.
    let code: Vec<u8> = (0..9 * 1024 * 1024 + 17).map(|i| (i % 251) as u8).collect();
    let sha = hex::encode(sha2::Sha256::digest(&code));
    let mut batch = Batch::new();
    batch
        .put_raw(TreeId::Blobs, &sha, code.clone())
        .put(TreeId::Flavors, "orchestrator/x", &sha);
    s.apply(batch).unwrap();
    // Written twice (another flavor with the same code): stored once, unchanged.
    let mut batch = Batch::new();
    batch.put_raw(TreeId::Blobs, &sha, code.clone());
    s.apply(batch).unwrap();
    drop(s);
    let again = b.open();
    assert!(again.contains(TreeId::Blobs, &sha).unwrap());
    assert_eq!(
        again.get_raw(TreeId::Blobs, &sha).unwrap(),
        Some(code.clone())
    );
    assert!(
        again
            .dump()
            .unwrap()
            .iter()
            .any(|(t, k, v)| *t == TreeId::Blobs && k == sha.as_bytes() && *v == code)
    );
    let mut batch = Batch::new();
    batch.remove(TreeId::Blobs, &sha);
    again.apply(batch).unwrap();
    assert!(!again.contains(TreeId::Blobs, &sha).unwrap());
    assert_eq!(again.get_raw(TreeId::Blobs, &sha).unwrap(), None);
}

fn replace_all_leaves_exactly_what_it_was_given(b: &dyn Backend) {
    let s = b.open();
    let mut batch = Batch::new();
    batch
        .put(TreeId::Stacks, "old", &1u32)
        .put(TreeId::Secrets, "old", &1u32);
    s.apply(batch).unwrap();
    let records = vec![(
        TreeId::Stacks,
        b"new".to_vec(),
        strata_store::codec::encode(&2u32),
    )];
    s.replace_all(records).unwrap();
    drop(s);
    let s = b.open();
    assert_eq!(s.get::<u32>(TreeId::Stacks, "new").unwrap(), Some(2));
    assert_eq!(s.get::<u32>(TreeId::Stacks, "old").unwrap(), None);
    assert_eq!(s.get::<u32>(TreeId::Secrets, "old").unwrap(), None);
}

fn a_lock_is_held_by_one_process_at_a_time(b: &dyn Backend) {
    let one = b.open();
    let held = one
        .lock("catalog", Duration::from_secs(1))
        .unwrap()
        .expect("a free lock is taken");
    if b.shared() {
        // Another node waits, then is told it is still held.
        let two = b.open();
        let started = std::time::Instant::now();
        assert!(
            two.lock("catalog", Duration::from_millis(300))
                .unwrap()
                .is_none()
        );
        assert!(started.elapsed() >= Duration::from_millis(250));
        // Another name is another lock.
        assert!(two.lock("component/x", Duration::ZERO).unwrap().is_some());
        drop(held);
        assert!(two.lock("catalog", Duration::ZERO).unwrap().is_some());
    } else {
        // One process holds a sled home: its own locks are all there is.
        drop(held);
    }
}

fn a_request_reads_what_another_process_committed_before_it_began(b: &dyn Backend) {
    let one = b.open();
    let mut batch = Batch::new();
    batch.put(TreeId::Stacks, "s", &1u32);
    one.apply(batch).unwrap();
    {
        // A request on `one` reads (a team server node remembers what it read).
        let _request = one.fresh_reads().unwrap();
        assert_eq!(one.get::<u32>(TreeId::Stacks, "s").unwrap(), Some(1));
        assert_eq!(one.scan::<u32>(TreeId::Stacks, "").unwrap().len(), 1);
    }
    // Another process (a second node; on sled, the same one) commits.
    let two = if b.shared() { b.open() } else { one.clone() };
    let mut batch = Batch::new();
    batch
        .put(TreeId::Stacks, "s", &2u32)
        .put(TreeId::Stacks, "t", &3u32);
    two.apply(batch).unwrap();
    // The next request on `one` sees it, in gets and scans alike.
    let _request = one.fresh_reads().unwrap();
    assert_eq!(one.get::<u32>(TreeId::Stacks, "s").unwrap(), Some(2));
    assert_eq!(one.scan::<u32>(TreeId::Stacks, "").unwrap().len(), 2);
    // And a request's own commit is read back by it at once.
    let mut batch = Batch::new();
    batch.put(TreeId::Stacks, "s", &4u32);
    one.apply(batch).unwrap();
    assert_eq!(one.get::<u32>(TreeId::Stacks, "s").unwrap(), Some(4));
}

fn concurrent_writers_under_the_lock_lose_nothing(b: &dyn Backend) {
    let writers = if b.shared() { 4 } else { 1 };
    let per = 25;
    let stores: Vec<Store> = (0..writers).map(|_| b.open()).collect();
    std::thread::scope(|scope| {
        for s in &stores {
            scope.spawn(move || {
                for _ in 0..per {
                    let _held = s.lock("counter", Duration::from_secs(30)).unwrap().unwrap();
                    let n = s.get::<u32>(TreeId::Meta, "counter").unwrap().unwrap_or(0);
                    let mut batch = Batch::new();
                    batch.put(TreeId::Meta, "counter", &(n + 1));
                    s.apply(batch).unwrap();
                }
            });
        }
    });
    drop(stores);
    assert_eq!(
        b.open().get::<u32>(TreeId::Meta, "counter").unwrap(),
        Some(writers * per)
    );
}

/// Crash rules on MySQL: the database killed (SIGKILL) while a writer commits batches of
/// two keys leaves every batch whole or absent, and every acknowledged one present.
#[test]
fn mysql_a_killed_database_keeps_every_acknowledged_batch_whole() {
    let server = mariadb::Private::start().expect("starting a MariaDB of this test's own");
    let url = server.database();
    strata_store::mysql::migrate(&url).unwrap();
    let node = tempfile::tempdir().unwrap();
    let store = Store::connect(&url, node.path()).unwrap();
    let acknowledged = std::sync::atomic::AtomicU32::new(0);
    std::thread::scope(|scope| {
        scope.spawn(|| {
            for i in 1..=100_000u32 {
                let mut batch = Batch::new();
                batch.put(TreeId::Stacks, &format!("a{i:06}"), &i).put(
                    TreeId::Components,
                    &format!("b{i:06}"),
                    &i,
                );
                match store.apply(batch) {
                    Ok(()) => acknowledged.store(i, std::sync::atomic::Ordering::SeqCst),
                    Err(e) => {
                        assert!(matches!(e, Error::Unavailable { .. }), "{e}");
                        assert!(e.to_string().contains("cannot be reached"), "{e}");
                        return;
                    }
                }
            }
        });
        std::thread::sleep(Duration::from_millis(700));
        server.kill(true);
    });
    // Down: a read is refused as unavailable, not as damage.
    let err = store.get::<u32>(TreeId::Stacks, "a000001").unwrap_err();
    assert!(matches!(err, Error::Unavailable { .. }), "{err}");
    server.restart();
    // The same store recovers once the database is back.
    let acked = acknowledged.load(std::sync::atomic::Ordering::SeqCst);
    assert!(
        acked > 10,
        "the writer committed {acked} batches before the kill"
    );
    let a = store.scan::<u32>(TreeId::Stacks, "a").unwrap();
    let b = store.scan::<u32>(TreeId::Components, "b").unwrap();
    assert_eq!(a.len(), b.len(), "every batch is whole");
    assert!(
        a.len() as u32 >= acked,
        "{} < {acked} acknowledged",
        a.len()
    );
    assert!(a.len() as u32 <= acked + 1);
}

/// A database that a newer strata migrated is refused, and so is one never migrated.
#[test]
fn mysql_a_database_at_another_version_is_refused_with_what_to_do() {
    let url = mariadb::shared().database();
    let node = tempfile::tempdir().unwrap();
    let err = Store::connect(&url, node.path()).err().unwrap().to_string();
    assert!(err.contains("no strata tables yet"), "{err}");
    let done = strata_store::mysql::migrate(&url).unwrap();
    assert_eq!(done.from, None);
    assert_eq!(done.applied.len(), strata_store::mysql::LATEST as usize);
    // Migrating again does nothing.
    assert!(
        strata_store::mysql::migrate(&url)
            .unwrap()
            .applied
            .is_empty()
    );
    let mut root = mysql::Conn::new(mysql::Opts::from_url(&url).unwrap()).unwrap();
    use mysql::prelude::Queryable;
    root.query_drop(
        "INSERT INTO strata_migrations (version, description, applied_at_ms) VALUES (999, 'future', 0)",
    )
    .unwrap();
    let err = Store::connect(&url, node.path()).err().unwrap().to_string();
    assert!(
        err.contains("migration 999")
            && err.contains(&format!("up to {}", strata_store::mysql::LATEST)),
        "{err}"
    );
    let err = strata_store::mysql::migrate(&url).unwrap_err().to_string();
    assert!(err.contains("migration 999"), "{err}");
}

/// A wrong password and a database nobody listens for are each one clear error, with
/// the password nowhere in it.
#[test]
fn mysql_a_wrong_url_is_one_clear_error() {
    let url = mariadb::shared().database();
    let wrong = {
        let (head, rest) = url.split_once('@').unwrap();
        let (user, _) = head.rsplit_once(':').unwrap();
        format!("{user}:not-the-password@{rest}")
    };
    let err = strata_store::mysql::migrate(&wrong)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("refused the login") && !err.contains("not-the-password"),
        "{err}"
    );
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let down = format!("mysql://u:pw@127.0.0.1:{port}/strata");
    let err = strata_store::mysql::migrate(&down).unwrap_err();
    assert!(matches!(err, Error::Unavailable { .. }), "{err}");
    assert!(err.to_string().contains("cannot be reached"), "{err}");
}

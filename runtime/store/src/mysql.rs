//! The team server's backend: MySQL 8 or MariaDB 10.6+, shared by every server node.
//!
//! The records are those of the local store, in one table, `strata_records (tree, k, v)`,
//! with the key in byte order as sled keeps it; flavor code is content-addressed in
//! `strata_blobs`, cut into 4 MiB parts (under the 16 MiB packet MariaDB allows by
//! default). A [`crate::Batch`] is one InnoDB transaction, committed before the call
//! returns. Locks are the database's own named locks (`GET_LOCK`), held by a connection:
//! a node that dies loses its connections, and with them its locks.
//!
//! What is a node's own stays on the node, in `node_dir`: which compiled flavors it has
//! checked (the `compiled` tree names files in its own cache).
//!
//! The tables are created and changed by numbered migrations ([`migrate`]), recorded in
//! `strata_migrations`; [`Mysql::connect`] refuses a database that is behind (run `strata
//! server migrate`) or ahead (a newer strata wrote it) of this binary.

use std::path::Path;
use std::time::Duration;

use mysql::prelude::Queryable;
use mysql::{OptsBuilder, Pool, PoolConstraints, PoolOpts, PooledConn, TxOpts};
use sha2::Digest;

use crate::error::{Error, Result};
use crate::{Backend, Op, StoreLock, TreeId, corrupt};

/// Each migration, in order: its number, what it does, its statements. A statement is
/// written so that running it twice does no harm (DDL is not transactional in MySQL:
/// a migration interrupted half-way is simply run again).
const MIGRATIONS: &[(u32, &str, &[&str])] = &[
    (
        1,
        "records, flavor code",
        &[
            "CREATE TABLE IF NOT EXISTS strata_records (
            tree TINYINT UNSIGNED NOT NULL,
            k VARBINARY(3000) NOT NULL,
            v LONGBLOB NOT NULL,
            PRIMARY KEY (tree, k)
        ) ENGINE=InnoDB",
            "CREATE TABLE IF NOT EXISTS strata_blobs (
            sha CHAR(64) CHARACTER SET ascii NOT NULL,
            part INT UNSIGNED NOT NULL,
            bytes MEDIUMBLOB NOT NULL,
            PRIMARY KEY (sha, part)
        ) ENGINE=InnoDB",
        ],
    ),
    (
        2,
        "a change counter, for the nodes' read caches",
        &[
            "CREATE TABLE IF NOT EXISTS strata_changes (
                id TINYINT UNSIGNED NOT NULL PRIMARY KEY,
                gen BIGINT NOT NULL
            ) ENGINE=InnoDB",
            "INSERT IGNORE INTO strata_changes (id, gen) VALUES (1, 0)",
        ],
    ),
];

/// The newest migration this strata knows.
pub const LATEST: u32 = 2;

/// Flavor code is stored in parts of this size.
const BLOB_PART: usize = 4 * 1024 * 1024;

/// The longest key the table holds (InnoDB's limit on a primary key is 3072 bytes).
const MAX_KEY: usize = 3000;

/// Connections one node keeps open at most. Two nodes stay well under MariaDB's default
/// `max_connections` of 151.
const POOL_MAX: usize = 32;

/// How long a request waits for a free connection before it is answered 503.
const POOL_WAIT: Duration = Duration::from_secs(10);

pub struct Mysql {
    pool: Pool,
    /// Connections that hold named locks: apart from `pool`, so that calls holding locks
    /// never starve requests of connections, and without a read timeout, since waiting
    /// for a lock is waiting for an answer.
    locks: Pool,
    /// This node's own records: the `compiled` tree.
    node: crate::local::Local,
    /// The URL without its password, for messages.
    shown: String,
    /// What this node read at one generation of the database (see [`Mysql::fresh`]).
    memo: std::sync::Mutex<Memo>,
}

/// Answers read at one generation (the database's change counter, bumped by every
/// commit): a request that checked the counter when it began, and found it at that one,
/// may take them instead of asking the database again.
#[derive(Default)]
struct Memo {
    generation: Option<i64>,
    gets: std::collections::HashMap<(u8, Vec<u8>), Option<Vec<u8>>>,
    scans: std::collections::HashMap<(u8, Vec<u8>), std::sync::Arc<Vec<(Vec<u8>, Vec<u8>)>>>,
}

/// At most this many answers are kept per generation.
const MEMO_MAX: usize = 20_000;

thread_local! {
    /// The generation this thread's request checked, per store (by address).
    static FRESH: std::cell::Cell<Option<(usize, i64)>> = const { std::cell::Cell::new(None) };
}

/// Ends a request's use of the read memo ([`Mysql::fresh`]).
struct FreshScope {
    before: Option<(usize, i64)>,
}

impl Drop for FreshScope {
    fn drop(&mut self) {
        // A commit inside the scope left this thread reading the database: it stays so,
        // rather than going back to a generation older than what it wrote.
        FRESH.with(|f| {
            if f.get().is_some() {
                f.set(self.before);
            }
        });
    }
}

/// The URL with its password replaced by `***`, for messages and logs.
pub fn redact(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_string();
    };
    match rest.rsplit_once('@') {
        Some((cred, host)) => match cred.split_once(':') {
            Some((user, _)) => format!("{scheme}://{user}:***@{host}"),
            None => url.to_string(),
        },
        None => url.to_string(),
    }
}

fn pool(url: &str) -> Result<Pool> {
    pool_with(url, Some(Duration::from_secs(60)))
}

fn pool_with(url: &str, read_timeout: Option<Duration>) -> Result<Pool> {
    if !url.starts_with("mysql://") {
        return Err(Error::invalid(
            format!("`{}` is not a MySQL database URL", redact(url)),
            "give it as mysql://USER:PASSWORD@HOST:PORT/DATABASE (MariaDB too), e.g. mysql://strata:secret@127.0.0.1:3306/strata",
        ));
    }
    let opts = mysql::Opts::from_url(url).map_err(|e| {
        Error::invalid(
            format!("the database URL `{}` cannot be read: {e}", redact(url)),
            "give it as mysql://USER:PASSWORD@HOST:PORT/DATABASE; percent-encode a `@`, `:` or `/` in the password",
        )
    })?;
    if opts.get_db_name().is_none_or(str::is_empty) {
        return Err(Error::invalid(
            format!("the database URL `{}` names no database", redact(url)),
            "end it with /DATABASE, e.g. mysql://strata:secret@127.0.0.1:3306/strata",
        ));
    }
    let constraints = PoolConstraints::new(0, POOL_MAX).expect("invariant: 0 <= max");
    let opts = OptsBuilder::from_opts(opts)
        .tcp_connect_timeout(Some(Duration::from_secs(5)))
        .read_timeout(read_timeout)
        .write_timeout(Some(Duration::from_secs(60)))
        .pool_opts(
            PoolOpts::default()
                .with_constraints(constraints)
                .with_check_health(true),
        );
    Pool::new(opts).map_err(|e| db_error(url, "connecting", e))
}

/// A database error as strata's: the database unreachable is [`Error::Unavailable`]
/// (a running server answers 503 and goes on once it is back); a refused login or an
/// unknown database says what to fix.
fn db_error(url: &str, doing: &str, e: mysql::Error) -> Error {
    let shown = redact(url);
    if e.is_connectivity_error() {
        return Error::Unavailable {
            what: format!("the database at {shown} cannot be reached ({doing}): {e}"),
            hint: "check that the database server is up and the URL's host and port are right; nothing was changed, so the same request can simply be sent again".into(),
        };
    }
    match &e {
        mysql::Error::MySqlError(m) if m.code == 1045 || m.code == 1044 => Error::invalid(
            format!("the database at {shown} refused the login: {}", m.message),
            "check the user and password in the URL, and that the user has ALL on the database (GRANT ALL ON strata.* TO 'strata'@'%')",
        ),
        mysql::Error::MySqlError(m) if m.code == 1049 => Error::invalid(
            format!("the database at {shown} does not exist: {}", m.message),
            "create it first (CREATE DATABASE strata), then run `strata server migrate --database URL`",
        ),
        mysql::Error::MySqlError(m) if m.code == 1040 || m.code == 1203 => Error::Unavailable {
            what: format!("the database at {shown} has no free connection: {}", m.message),
            hint: "raise the server's max_connections, or run fewer strata server nodes; the request can be sent again".into(),
        },
        _ => Error::store(&format!("mysql, {doing}"), e),
    }
}

fn applied_version(conn: &mut PooledConn, url: &str) -> Result<Option<u32>> {
    let exists: Option<u64> = conn
        .query_first(
            "SELECT COUNT(*) FROM information_schema.tables \
             WHERE table_schema = DATABASE() AND table_name = 'strata_migrations'",
        )
        .map_err(|e| db_error(url, "reading the migrations", e))?;
    if exists.unwrap_or(0) == 0 {
        return Ok(None);
    }
    let v: Option<Option<u32>> = conn
        .query_first("SELECT MAX(version) FROM strata_migrations")
        .map_err(|e| db_error(url, "reading the migrations", e))?;
    Ok(v.flatten())
}

/// What [`migrate`] found and did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Migrated {
    /// The version before, `None` for a database strata had never used.
    pub from: Option<u32>,
    pub to: u32,
    /// `N: description` for each migration applied now.
    pub applied: Vec<String>,
}

/// Brings the database at `url` to [`LATEST`]; one node at a time (a named lock), so
/// two nodes started together do not both apply a migration. Refuses a database that a
/// newer strata has migrated further.
pub fn migrate(url: &str) -> Result<Migrated> {
    let pool = pool(url)?;
    let mut conn = pool
        .try_get_conn(POOL_WAIT)
        .map_err(|e| db_error(url, "connecting", e))?;
    let got: Option<Option<i64>> = conn
        .query_first("SELECT GET_LOCK('strata.migrate', 30)")
        .map_err(|e| db_error(url, "locking for the migration", e))?;
    if got.flatten() != Some(1) {
        return Err(Error::Busy {
            what: "another strata server is migrating this database".into(),
            hint: "wait for it to finish, then run the command again".into(),
        });
    }
    let from = applied_version(&mut conn, url)?;
    refuse_newer(from, url)?;
    conn.query_drop(
        "CREATE TABLE IF NOT EXISTS strata_migrations (
            version INT UNSIGNED NOT NULL PRIMARY KEY,
            description VARCHAR(200) NOT NULL,
            applied_at_ms BIGINT NOT NULL
        ) ENGINE=InnoDB",
    )
    .map_err(|e| db_error(url, "creating strata_migrations", e))?;
    let mut applied = Vec::new();
    for (version, description, statements) in MIGRATIONS {
        if from.is_some_and(|f| f >= *version) {
            continue;
        }
        for statement in *statements {
            conn.query_drop(*statement)
                .map_err(|e| db_error(url, &format!("migration {version}"), e))?;
        }
        conn.exec_drop(
            "INSERT INTO strata_migrations (version, description, applied_at_ms) VALUES (?, ?, ?)",
            (version, description, crate::model::now_ms() as i64),
        )
        .map_err(|e| db_error(url, &format!("recording migration {version}"), e))?;
        applied.push(format!("{version}: {description}"));
    }
    let _ = conn.query_drop("DO RELEASE_LOCK('strata.migrate')");
    Ok(Migrated {
        from,
        to: LATEST,
        applied,
    })
}

/// The version the database at `url` is at (`None`: strata never used it).
pub fn version(url: &str) -> Result<Option<u32>> {
    let pool = pool(url)?;
    let mut conn = pool
        .try_get_conn(POOL_WAIT)
        .map_err(|e| db_error(url, "connecting", e))?;
    applied_version(&mut conn, url)
}

fn refuse_newer(v: Option<u32>, url: &str) -> Result<()> {
    match v {
        Some(v) if v > LATEST => Err(Error::invalid(
            format!(
                "the database at {} is at migration {v}; this strata knows migrations up to {LATEST}",
                redact(url)
            ),
            "a newer strata server uses this database: run that release (every node of one database runs the same one)",
        )),
        _ => Ok(()),
    }
}

impl Mysql {
    /// Connects to the database at `url` (`mysql://USER:PASS@HOST:PORT/DB`), which must
    /// be migrated to [`LATEST`].
    pub fn connect(url: &str, node_dir: &Path) -> Result<Mysql> {
        let pool = pool(url)?;
        let mut conn = pool
            .try_get_conn(POOL_WAIT)
            .map_err(|e| db_error(url, "connecting", e))?;
        let v = applied_version(&mut conn, url)?;
        refuse_newer(v, url)?;
        if v != Some(LATEST) {
            return Err(Error::invalid(
                match v {
                    None => format!("the database at {} has no strata tables yet", redact(url)),
                    Some(v) => format!(
                        "the database at {} is at migration {v}, behind this strata's {LATEST}",
                        redact(url)
                    ),
                },
                "run `strata server migrate --database URL` first (back the database up before migrating one in use)",
            ));
        }
        drop(conn);
        let node = crate::local::Local::open(&node_dir.join("node-db"))?;
        Ok(Mysql {
            pool,
            locks: pool_with(url, None)?,
            node,
            shown: redact(url),
            memo: Default::default(),
        })
    }

    fn id(&self) -> usize {
        self as *const Mysql as usize
    }

    /// The generation this thread may read the memo at, if it checked one.
    fn fresh_gen(&self) -> Option<i64> {
        FRESH
            .with(|f| f.get())
            .filter(|(id, _)| *id == self.id())
            .map(|(_, g)| g)
    }

    /// A read of `tree` answered from the memo when this thread's request checked the
    /// database's generation and the memo is at it; else from the database (and kept).
    fn memoized<T: Clone>(
        &self,
        tree: TreeId,
        pick: impl Fn(&mut Memo) -> Option<T>,
        keep: impl FnOnce(&mut Memo, T),
        read: impl FnOnce() -> Result<T>,
    ) -> Result<T> {
        let generation = match self.fresh_gen() {
            Some(g) if !matches!(tree, TreeId::Blobs | TreeId::Audit) => g,
            _ => return read(),
        };
        {
            let mut memo = self.memo.lock().unwrap_or_else(|e| e.into_inner());
            if memo.generation == Some(generation)
                && let Some(hit) = pick(&mut memo)
            {
                return Ok(hit);
            }
        }
        let value = read()?;
        let mut memo = self.memo.lock().unwrap_or_else(|e| e.into_inner());
        if memo.generation == Some(generation) && memo.gets.len() + memo.scans.len() < MEMO_MAX {
            keep(&mut memo, value.clone());
        }
        Ok(value)
    }

    fn conn(&self) -> Result<PooledConn> {
        self.pool
            .try_get_conn(POOL_WAIT)
            .map_err(|e| self.error("connecting", e))
    }

    fn error(&self, doing: &str, e: mysql::Error) -> Error {
        db_error(&self.shown, doing, e)
    }

    fn read_blob(&self, sha: &str) -> Result<Option<Vec<u8>>> {
        let parts: Vec<Vec<u8>> = self
            .conn()?
            .exec(
                "SELECT bytes FROM strata_blobs WHERE sha = ? ORDER BY part",
                (sha,),
            )
            .map_err(|e| self.error("reading flavor code", e))?;
        if parts.is_empty() {
            return Ok(None);
        }
        let bytes = parts.concat();
        if hex::encode(sha2::Sha256::digest(&bytes)) != sha {
            return Err(corrupt(
                TreeId::Blobs,
                sha,
                "the stored code does not match its sha256".into(),
            ));
        }
        Ok(Some(bytes))
    }

    fn blob_keys(&self, prefix: &[u8]) -> Result<Vec<String>> {
        let mut like = String::new();
        for c in String::from_utf8_lossy(prefix).chars() {
            if matches!(c, '%' | '_' | '\\') {
                like.push('\\');
            }
            like.push(c);
        }
        like.push('%');
        self.conn()?
            .exec(
                "SELECT DISTINCT sha FROM strata_blobs WHERE sha LIKE ? ORDER BY sha",
                (like,),
            )
            .map_err(|e| self.error("listing flavor code", e))
    }
}

/// The first key after every key that starts with `prefix` (`None`: no bound).
fn prefix_end(prefix: &[u8]) -> Option<Vec<u8>> {
    let mut end = prefix.to_vec();
    while let Some(last) = end.pop() {
        if last < 0xff {
            end.push(last + 1);
            return Some(end);
        }
    }
    None
}

fn check_key(tree: TreeId, key: &[u8]) -> Result<()> {
    if key.len() > MAX_KEY {
        return Err(Error::invalid(
            format!(
                "a {} key of {} bytes is longer than the {MAX_KEY} bytes the database holds",
                tree.name(),
                key.len()
            ),
            "use shorter names",
        ));
    }
    Ok(())
}

impl Backend for Mysql {
    fn name(&self) -> &'static str {
        "mysql"
    }

    fn get(&self, tree: TreeId, key: &[u8]) -> Result<Option<Vec<u8>>> {
        match tree {
            TreeId::Compiled => self.node.get(tree, key),
            TreeId::Blobs => self.read_blob(&String::from_utf8_lossy(key)),
            _ => {
                let k = (tree as u8, key.to_vec());
                let k2 = k.clone();
                self.memoized(
                    tree,
                    |m| m.gets.get(&k).cloned(),
                    |m, v| {
                        m.gets.insert(k2, v);
                    },
                    || {
                        self.conn()?
                            .exec_first(
                                "SELECT v FROM strata_records WHERE tree = ? AND k = ?",
                                (tree as u8, key),
                            )
                            .map_err(|e| self.error("reading", e))
                    },
                )
            }
        }
    }

    fn contains(&self, tree: TreeId, key: &[u8]) -> Result<bool> {
        let found: Option<u8> = match tree {
            TreeId::Compiled => return self.node.contains(tree, key),
            TreeId::Blobs => self.conn()?.exec_first(
                "SELECT 1 FROM strata_blobs WHERE sha = ? LIMIT 1",
                (String::from_utf8_lossy(key).as_ref(),),
            ),
            _ => return Ok(self.get(tree, key)?.is_some()),
        }
        .map_err(|e| self.error("reading", e))?;
        Ok(found.is_some())
    }

    fn scan(&self, tree: TreeId, prefix: &[u8]) -> Result<Vec<(Vec<u8>, Vec<u8>)>> {
        match tree {
            TreeId::Compiled => return self.node.scan(tree, prefix),
            TreeId::Blobs => {
                let mut out = Vec::new();
                for sha in self.blob_keys(prefix)? {
                    if let Some(bytes) = self.read_blob(&sha)? {
                        out.push((sha.into_bytes(), bytes));
                    }
                }
                return Ok(out);
            }
            _ => {}
        }
        let k = (tree as u8, prefix.to_vec());
        let k2 = k.clone();
        let rows = self.memoized(
            tree,
            |m| m.scans.get(&k).cloned(),
            |m, v| {
                m.scans.insert(k2, v);
            },
            || {
                let mut conn = self.conn()?;
                match prefix_end(prefix) {
                    Some(end) => conn.exec(
                        "SELECT k, v FROM strata_records WHERE tree = ? AND k >= ? AND k < ? ORDER BY k",
                        (tree as u8, prefix, end),
                    ),
                    None => conn.exec(
                        "SELECT k, v FROM strata_records WHERE tree = ? AND k >= ? ORDER BY k",
                        (tree as u8, prefix),
                    ),
                }
                .map(std::sync::Arc::new)
                .map_err(|e| self.error("reading", e))
            },
        )?;
        Ok(rows.as_ref().clone())
    }

    fn keys(&self, tree: TreeId) -> Result<Vec<Vec<u8>>> {
        match tree {
            TreeId::Compiled => self.node.keys(tree),
            TreeId::Blobs => Ok(self
                .blob_keys(b"")?
                .into_iter()
                .map(String::into_bytes)
                .collect()),
            _ => self
                .conn()?
                .exec(
                    "SELECT k FROM strata_records WHERE tree = ? ORDER BY k",
                    (tree as u8,),
                )
                .map_err(|e| self.error("reading", e)),
        }
    }

    /// One transaction for everything but the node's own `compiled` records, which are
    /// written on the node after it commits (a compiled entry is only a hint: the cache
    /// checks the file it names).
    fn commit(&self, ops: Vec<Op>) -> Result<()> {
        let (node, shared): (Vec<Op>, Vec<Op>) = ops
            .into_iter()
            .partition(|(t, _, _)| *t == TreeId::Compiled);
        for (tree, key, _) in &shared {
            check_key(*tree, key)?;
        }
        if !shared.is_empty() {
            let mut conn = self.conn()?;
            let mut tx = conn
                .start_transaction(TxOpts::default())
                .map_err(|e| self.error("starting a transaction", e))?;
            for (tree, key, value) in &shared {
                let done = match (tree, value) {
                    (TreeId::Blobs, Some(bytes)) => {
                        let sha = String::from_utf8_lossy(key);
                        let have: Option<u8> = tx
                            .exec_first(
                                "SELECT 1 FROM strata_blobs WHERE sha = ? LIMIT 1",
                                (sha.as_ref(),),
                            )
                            .map_err(|e| self.error("writing flavor code", e))?;
                        if have.is_some() {
                            continue;
                        }
                        let mut done = Ok(());
                        for (i, part) in bytes.chunks(BLOB_PART).enumerate() {
                            done = tx.exec_drop(
                                "INSERT INTO strata_blobs (sha, part, bytes) VALUES (?, ?, ?)",
                                (sha.as_ref(), i as u32, part),
                            );
                            if done.is_err() {
                                break;
                            }
                        }
                        done
                    }
                    (TreeId::Blobs, None) => tx.exec_drop(
                        "DELETE FROM strata_blobs WHERE sha = ?",
                        (String::from_utf8_lossy(key).as_ref(),),
                    ),
                    (tree, Some(v)) => tx.exec_drop(
                        "INSERT INTO strata_records (tree, k, v) VALUES (?, ?, ?) \
                         ON DUPLICATE KEY UPDATE v = VALUES(v)",
                        (*tree as u8, key, v),
                    ),
                    (tree, None) => tx.exec_drop(
                        "DELETE FROM strata_records WHERE tree = ? AND k = ?",
                        (*tree as u8, key),
                    ),
                };
                done.map_err(|e| self.error("writing", e))?;
            }
            // The audit log is never read from the memo: appending to it changes nothing
            // a node remembers.
            if shared.iter().any(|(t, _, _)| *t != TreeId::Audit) {
                tx.exec_drop("UPDATE strata_changes SET gen = gen + 1 WHERE id = 1", ())
                    .map_err(|e| self.error("writing", e))?;
                // What this node remembered is older than what it just wrote: forget it,
                // and this request reads the database from now on.
                {
                    let mut memo = self.memo.lock().unwrap_or_else(|e| e.into_inner());
                    *memo = Memo::default();
                }
                FRESH.with(|f| f.set(None));
            }
            tx.commit().map_err(|e| self.error("committing", e))?;
        }
        if !node.is_empty() {
            self.node.commit(node)?;
        }
        Ok(())
    }

    fn lock(&self, name: &str, wait: Duration) -> Result<Option<StoreLock>> {
        // MySQL's lock names are at most 64 characters.
        let name = format!(
            "strata.{}",
            &hex::encode(sha2::Sha256::digest(name.as_bytes()))[..40]
        );
        let mut conn = self
            .locks
            .try_get_conn(POOL_WAIT)
            .map_err(|e| self.error("connecting", e))?;
        let got: Option<Option<i64>> = conn
            .exec_first("SELECT GET_LOCK(?, ?)", (&name, wait.as_secs_f64()))
            .map_err(|e| self.error("taking a lock", e))?;
        if got.flatten() != Some(1) {
            return Ok(None);
        }
        Ok(Some(StoreLock::holding(Box::new(Held {
            conn: Some(conn),
            name,
        }))))
    }

    fn flush(&self) -> Result<()> {
        self.node.flush()
    }

    /// Checks the database's generation (one query): until the scope ends, this thread
    /// reads what the node remembers of that generation, and asks the database only
    /// what it has not read at it yet.
    fn fresh(&self) -> Result<StoreLock> {
        let generation: Option<i64> = self
            .conn()?
            .query_first("SELECT gen FROM strata_changes WHERE id = 1")
            .map_err(|e| self.error("reading the change counter", e))?;
        let generation = generation.ok_or_else(|| {
            Error::Internal("the strata_changes row is missing: run `strata server migrate`".into())
        })?;
        {
            let mut memo = self.memo.lock().unwrap_or_else(|e| e.into_inner());
            if memo.generation != Some(generation) {
                *memo = Memo {
                    generation: Some(generation),
                    ..Default::default()
                };
            }
        }
        let before = FRESH.with(|f| f.replace(Some((self.id(), generation))));
        Ok(StoreLock::holding(Box::new(FreshScope { before })))
    }
}

/// A named lock: the connection that holds it, released when dropped. A connection
/// that cannot release it is closed, which releases it too, rather than going back to
/// the pool still holding it.
struct Held {
    conn: Option<PooledConn>,
    name: String,
}

impl Drop for Held {
    fn drop(&mut self) {
        if let Some(mut conn) = self.conn.take()
            && conn.exec_drop("DO RELEASE_LOCK(?)", (&self.name,)).is_err()
        {
            drop(conn.unwrap());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_never_reach_a_message() {
        assert_eq!(
            redact("mysql://strata:s3cret@db:3306/strata"),
            "mysql://strata:***@db:3306/strata"
        );
        assert_eq!(redact("mysql://db/strata"), "mysql://db/strata");
        let err = pool("postgres://u:s3cret@h/db").err().unwrap().to_string();
        assert!(!err.contains("s3cret"), "{err}");
        let err = pool("mysql://u:s3cret@h:3306").err().unwrap().to_string();
        assert!(
            err.contains("names no database") && !err.contains("s3cret"),
            "{err}"
        );
    }

    #[test]
    fn a_prefix_scan_ends_where_the_prefix_does() {
        assert_eq!(prefix_end(b"ab"), Some(b"ac".to_vec()));
        assert_eq!(prefix_end(b"a\xff"), Some(b"b".to_vec()));
        assert_eq!(prefix_end(b"\xff\xff"), None);
        assert_eq!(prefix_end(b""), None);
    }
}

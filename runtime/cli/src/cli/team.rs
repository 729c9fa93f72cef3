//! The team server from the command line: `strata server …` (start a node, migrate its
//! database, manage users and tokens, read the audit log, move a home up), `strata
//! login | logout | whoami`, and the grants of stacks and service connectors.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use clap::Subcommand;

use super::render::{properties, table};
use super::run::Output;
use crate::client::Backend;
use crate::error::{Error, Result};
use crate::home::Home;
use crate::service::{Role, Service, Team};

/// `strata server …`.
#[derive(Subcommand, Debug)]
pub enum ServerCmd {
    /// Start a team server node: the REST API of `strata daemon` for many users, over a
    /// MySQL or MariaDB database. Start several on one database behind a load balancer;
    /// they share every record and lock
    #[command(
        after_help = "Example:\n  openssl rand -hex 32 > server.key    # once; the same file for every node\n  export STRATA_DATABASE=mysql://strata:PW@127.0.0.1:3306/strata\n  strata server migrate\n  strata server user create alice --role admin --database \"$STRATA_DATABASE\"   # her token\n  strata server start --bind 0.0.0.0:8080 --secret-key-file server.key \\\n      --tls-cert server.pem --tls-key server-key.pem"
    )]
    Start {
        /// mysql://USER:PASSWORD@HOST:PORT/DATABASE (MariaDB too)
        #[arg(long, env = "STRATA_DATABASE", value_name = "URL")]
        database: String,
        /// The address and port to listen on (port 0: any free one; `server.json` in the
        /// data directory says which)
        #[arg(long, default_value = "127.0.0.1:8080", value_name = "ADDR:PORT")]
        bind: std::net::SocketAddr,
        /// The 32-byte key secrets are sealed with, as 64 hex digits (`openssl rand -hex 32`):
        /// the same for every node of one database; or STRATA_SECRET_KEY
        #[arg(long, value_name = "FILE")]
        secret_key_file: Option<PathBuf>,
        /// This node's own files: compiled flavors, the working directories of runs, the
        /// data directories of components [default: ~/.local/share/strata-server/NODE]
        #[arg(long, value_name = "DIR")]
        data_dir: Option<PathBuf>,
        /// This node's name in the audit log [default: HOSTNAME-PORT]
        #[arg(long)]
        node: Option<String>,
        /// On stop, how long calls under way may take to finish
        #[arg(long, default_value_t = 10_000, value_name = "MS")]
        grace_ms: u64,
        /// Serve HTTPS with this PEM certificate chain (with --tls-key); clients that do
        /// not trust its issuer log in with `--ca-cert`
        #[arg(long, value_name = "FILE", requires = "tls_key")]
        tls_cert: Option<PathBuf>,
        /// The PEM private key of --tls-cert
        #[arg(long, value_name = "FILE", requires = "tls_cert")]
        tls_key: Option<PathBuf>,
    },
    /// Create or upgrade the database's tables to this strata's version (back it up first)
    Migrate {
        /// mysql://USER:PASSWORD@HOST:PORT/DATABASE (MariaDB too)
        #[arg(long, env = "STRATA_DATABASE", value_name = "URL")]
        database: String,
        /// Only say which version the database is at
        #[arg(long)]
        check: bool,
    },
    /// Users of the server: each has a role and tokens
    #[command(subcommand)]
    User(UserCmd),
    /// Tokens: how a user proves who they are (`strata login`)
    #[command(subcommand)]
    Token(TokenCmd),
    /// Who changed what, and when: every request that changes something, with its answer
    Audit {
        /// Only entries from this long ago on: `90s`, `30m`, `12h`, `7d`
        #[arg(long, value_name = "AGE")]
        since: Option<String>,
        /// At most this many entries (the newest)
        #[arg(long, default_value_t = 100)]
        limit: usize,
    },
    /// Move a local home up to the server you are logged in to: its flavors, secrets,
    /// service connectors and stacks (with their components), in one step
    ImportHome {
        /// The home's directory (the one STRATA_HOME names)
        path: PathBuf,
    },
}

/// `strata server user …`: through the server you are logged in to as an admin, or with
/// `--database` straight on the database (how the first admin is made).
#[derive(Subcommand, Debug)]
pub enum UserCmd {
    /// Create a user; prints their first token, once
    Create {
        /// The user's name: letters, digits, `.`, `_`, `-`
        name: String,
        /// admin (everything), member (registers and brings up what they may), viewer (reads)
        #[arg(long, default_value = "member", value_parser = parse_role)]
        role: Role,
        /// Work on this database directly, without a server (for the first admin)
        #[arg(long, value_name = "URL")]
        database: Option<String>,
    },
    /// List the users, their roles and how many tokens each holds
    List {
        /// Work on this database directly, without a server
        #[arg(long, value_name = "URL")]
        database: Option<String>,
    },
    /// Give a user another role (their tokens carry it at once)
    Update {
        /// The user
        name: String,
        /// admin, member or viewer
        #[arg(long, value_parser = parse_role)]
        role: Role,
        /// Work on this database directly, without a server
        #[arg(long, value_name = "URL")]
        database: Option<String>,
    },
    /// Delete a user, their tokens and grants
    Delete {
        /// The user
        name: String,
        /// Work on this database directly, without a server
        #[arg(long, value_name = "URL")]
        database: Option<String>,
    },
}

#[derive(Subcommand, Debug)]
pub enum TokenCmd {
    /// Make a token (for yourself, or as an admin for USER); printed once
    Create {
        /// Whose token it is [default: yours]
        user: Option<String>,
        /// A name to tell your tokens apart (`laptop`, `ci`)
        #[arg(long, default_value = "cli")]
        name: String,
        /// Work on this database directly, without a server (for the first admin's token)
        #[arg(long, value_name = "URL")]
        database: Option<String>,
    },
    /// List tokens (yours; an admin sees everyone's, or USER's with --user)
    List {
        /// Only this user's tokens (admins)
        #[arg(long)]
        user: Option<String>,
    },
    /// Revoke a token by its id: it stops working at once on this node, within 2 s on others
    Revoke {
        /// The token's id (`server token list`; in a token, the part after `strata_`)
        id: String,
    },
}

fn parse_role(s: &str) -> std::result::Result<Role, String> {
    Role::parse(s).ok_or_else(|| format!("`{s}` is not a role: use admin, member or viewer"))
}

/// A stack's role in a grant: `member` or `viewer`.
pub fn parse_stack_role(s: &str) -> std::result::Result<Role, String> {
    match Role::parse(s) {
        Some(r @ (Role::Member | Role::Viewer)) => Ok(r),
        _ => Err(format!(
            "`{s}` is not a stack role: use member (may change it and bring it up or down) or viewer (may read it)"
        )),
    }
}

/// The commands of `strata server` that need no server: they start one, or work on its
/// database directly. `None`: the command goes to the server logged in to.
pub(super) fn local(cmd: &ServerCmd, out: &Output) -> Option<Result<()>> {
    match cmd {
        ServerCmd::Start {
            database,
            bind,
            secret_key_file,
            data_dir,
            node,
            grace_ms,
            tls_cert,
            tls_key,
        } => Some(start(
            database,
            *bind,
            secret_key_file.as_deref(),
            data_dir.clone(),
            node.clone(),
            *grace_ms,
            tls_cert.clone().zip(tls_key.clone()),
        )),
        ServerCmd::Migrate { database, check } => Some(migrate(out, database, *check)),
        ServerCmd::User(UserCmd::Create {
            database: Some(db), ..
        })
        | ServerCmd::User(UserCmd::List { database: Some(db) })
        | ServerCmd::User(UserCmd::Delete {
            database: Some(db), ..
        })
        | ServerCmd::User(UserCmd::Update {
            database: Some(db), ..
        })
        | ServerCmd::Token(TokenCmd::Create {
            database: Some(db), ..
        }) => Some(on_database(db).and_then(|svc| remote(&svc, out, cmd))),
        _ => None,
    }
}

/// A service on the database itself, for an administrator on a machine that reaches it.
fn on_database(url: &str) -> Result<Service> {
    let dir = std::env::temp_dir().join(format!("strata-admin-{}", std::process::id()));
    let svc = Service::open_team(
        Home::at(&dir),
        url,
        Team {
            node: format!("cli-{}", hostname()),
            secret_key: None,
            admin_only: true,
            stores: PathBuf::new(),
        },
    );
    // The node directory held only this command's compiled-flavor index.
    let _ = std::fs::remove_dir_all(&dir);
    svc
}

fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .ok()
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "localhost".into())
}

/// The server's secret key: 64 hex digits (or 32 raw bytes) in the file, else in
/// STRATA_SECRET_KEY.
fn secret_key(file: Option<&Path>) -> Result<[u8; 32]> {
    let (text, from) = match file {
        Some(f) => (
            std::fs::read(f).map_err(|e| Error::io(format!("reading {}", f.display()), e))?,
            f.display().to_string(),
        ),
        None => match std::env::var("STRATA_SECRET_KEY") {
            Ok(v) if !v.is_empty() => (v.into_bytes(), "STRATA_SECRET_KEY".to_string()),
            _ => {
                return Err(Error::invalid(
                    "a team server needs the key its secrets are sealed with",
                    "make one once with `openssl rand -hex 32 > server.key` and give every node `--secret-key-file server.key` (or its 64 hex digits in STRATA_SECRET_KEY)",
                ));
            }
        },
    };
    if text.len() == 32 {
        let mut k = [0u8; 32];
        k.copy_from_slice(&text);
        return Ok(k);
    }
    let hexed = String::from_utf8_lossy(&text).trim().to_string();
    match hex::decode(&hexed) {
        Ok(b) if b.len() == 32 => {
            let mut k = [0u8; 32];
            k.copy_from_slice(&b);
            Ok(k)
        }
        _ => Err(Error::invalid(
            format!("{from} does not hold a 32-byte key"),
            "it must hold 64 hex digits (`openssl rand -hex 32`) or 32 raw bytes",
        )),
    }
}

fn start(
    database: &str,
    bind: std::net::SocketAddr,
    key_file: Option<&Path>,
    data_dir: Option<PathBuf>,
    node: Option<String>,
    grace_ms: u64,
    tls: Option<(PathBuf, PathBuf)>,
) -> Result<()> {
    let secret_key = secret_key(key_file)?;
    let node = node.unwrap_or_else(|| format!("{}-{}", hostname(), bind.port()));
    if node.is_empty()
        || node.len() > 64
        || !node
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b))
    {
        return Err(Error::invalid(
            format!(
                "`{}` cannot be a node name",
                crate::model::text::visible(&node)
            ),
            "use up to 64 letters, digits, `.`, `_` or `-`",
        ));
    }
    let data_dir = match data_dir {
        Some(d) => d,
        None => dirs::data_dir()
            .map(|d| d.join("strata-server").join(&node))
            .ok_or_else(|| {
                Error::invalid(
                    "cannot find a data directory for the server node",
                    "give one with `--data-dir DIR`",
                )
            })?,
    };
    crate::daemon::server::serve_team(crate::daemon::server::TeamOptions {
        database: database.to_string(),
        bind,
        data_dir,
        secret_key,
        node,
        grace: std::time::Duration::from_millis(grace_ms),
        tls,
    })
}

fn migrate(out: &Output, url: &str, check: bool) -> Result<()> {
    use crate::store::mysql;
    if check {
        let v = mysql::version(url)?;
        let said = match v {
            None => "no strata tables yet (`strata server migrate` creates them)".to_string(),
            Some(v) if v == mysql::LATEST => format!("at migration {v}, this strata's"),
            Some(v) if v < mysql::LATEST => format!(
                "at migration {v}, behind this strata's {} (`strata server migrate` upgrades it)",
                mysql::LATEST
            ),
            Some(v) => format!(
                "at migration {v}, ahead of this strata's {}: a newer strata uses it",
                mysql::LATEST
            ),
        };
        out.done(
            format!("The database at {} is {said}.", mysql::redact(url)),
            &serde_json::json!({"version": v, "latest": mysql::LATEST}),
        );
        return Ok(());
    }
    let m = mysql::migrate(url)?;
    let msg = if m.applied.is_empty() {
        format!(
            "The database at {} is already at migration {}.",
            mysql::redact(url),
            m.to
        )
    } else {
        format!(
            "Migrated the database at {} to {} ({}).",
            mysql::redact(url),
            m.to,
            m.applied.join("; ")
        )
    };
    out.done(
        msg,
        &serde_json::json!({"from": m.from, "to": m.to, "applied": m.applied}),
    );
    Ok(())
}

/// `strata server …` through a backend (the server logged in to, or the database).
pub(super) fn remote(svc: &dyn Backend, out: &Output, cmd: &ServerCmd) -> Result<()> {
    match cmd {
        ServerCmd::Start { .. } | ServerCmd::Migrate { .. } => Err(Error::Internal(
            "a server command that needs no server was sent to one".into(),
        )),
        ServerCmd::User(UserCmd::Create { name, role, .. }) => {
            let (u, t) = svc.user_create(name, *role)?;
            out.show(&serde_json::json!({"user": u, "token": t}), || {
                format!("{}\n", t.token)
            });
            out.say(format!(
                "Created {} `{}`. Their token is above, shown this once: they log in with `strata login URL` and paste it.",
                u.role, u.name
            ));
            Ok(())
        }
        ServerCmd::User(UserCmd::List { .. }) => {
            let users = svc.user_list()?;
            out.show(&users, || {
                let rows: Vec<Vec<String>> = users
                    .iter()
                    .map(|u| {
                        vec![
                            u.name.clone(),
                            u.role.to_string(),
                            u.tokens.to_string(),
                            u.created_by.clone(),
                        ]
                    })
                    .collect();
                table(&["USER", "ROLE", "TOKENS", "CREATED BY"], &rows)
            });
            Ok(())
        }
        ServerCmd::User(UserCmd::Update { name, role, .. }) => {
            let u = svc.user_set_role(name, *role)?;
            out.done(format!("`{}` is now a {}.", u.name, u.role), &u);
            Ok(())
        }
        ServerCmd::User(UserCmd::Delete { name, .. }) => {
            svc.user_delete(name)?;
            out.say(format!("Deleted user `{name}`, their tokens and grants."));
            Ok(())
        }
        ServerCmd::Token(TokenCmd::Create { user, name, .. }) => {
            let t = svc.token_create(user.as_deref(), name)?;
            out.show(&t, || format!("{}\n", t.token));
            out.say(format!(
                "Made token `{}` ({}) for `{}`, shown this once above.",
                t.id, t.name, t.user
            ));
            Ok(())
        }
        ServerCmd::Token(TokenCmd::List { user }) => {
            let tokens = svc.token_list(user.as_deref())?;
            out.show(&tokens, || {
                let rows: Vec<Vec<String>> = tokens
                    .iter()
                    .map(|t| vec![t.id.clone(), t.user.clone(), t.name.clone()])
                    .collect();
                table(&["ID", "USER", "NAME"], &rows)
            });
            Ok(())
        }
        ServerCmd::Token(TokenCmd::Revoke { id }) => {
            let t = svc.token_revoke(id)?;
            out.done(
                format!("Revoked token `{}` ({}) of `{}`.", t.id, t.name, t.user),
                &t,
            );
            Ok(())
        }
        ServerCmd::Audit { since, limit } => {
            let since_ms = match since {
                None => 0,
                Some(age) => {
                    let ms = parse_age(age).ok_or_else(|| {
                        Error::invalid(
                            format!("`--since {age}` is not an age"),
                            "give a whole number and a unit: 90s, 30m, 12h or 7d",
                        )
                    })?;
                    crate::model::now_ms().saturating_sub(ms)
                }
            };
            let entries = svc.audit(since_ms, *limit)?;
            out.show(&entries, || {
                let rows: Vec<Vec<String>> = entries
                    .iter()
                    .map(|e| {
                        vec![
                            super::render::utc(e.at_ms),
                            e.user.clone(),
                            format!("{} {}", e.method, e.path),
                            e.status.to_string(),
                            e.node.clone(),
                        ]
                    })
                    .collect();
                table(&["WHEN (UTC)", "USER", "REQUEST", "STATUS", "NODE"], &rows)
            });
            Ok(())
        }
        ServerCmd::ImportHome { path } => import_home(svc, out, path),
    }
}

/// `strata login URL`: checks the token against the server, then keeps both.
pub(super) fn login(
    out: &Output,
    url: &str,
    token: Option<&str>,
    ca_cert: Option<&Path>,
) -> Result<()> {
    let url = crate::client::login::check_url(url)?;
    let ca_cert = match ca_cert {
        Some(p) => Some(
            std::path::absolute(p).map_err(|e| Error::io(format!("reading {}", p.display()), e))?,
        ),
        None => None,
    };
    let token = match token {
        Some(t) => t.to_string(),
        None => match std::env::var("STRATA_TOKEN") {
            Ok(t) if !t.is_empty() => t,
            _ => super::prompt::ask_hidden("Token (from `strata server token create`): ")?,
        },
    };
    let token = token.trim().to_string();
    let login = crate::client::login::Login {
        url: url.clone(),
        token,
        user: String::new(),
        ca_cert,
    };
    let remote = crate::client::Remote::server(&login)?;
    let me = remote.whoami()?;
    let path = crate::client::login::write(&crate::client::login::Login {
        user: me.user.clone(),
        ..login
    })?;
    out.done(
        format!(
            "Logged in to {url} as `{}` ({}). Every strata command now goes to this server (except one given --home or STRATA_HOME); the token is kept in {} (readable by you only). `strata logout` forgets it.",
            me.user,
            me.role,
            path.display()
        ),
        &me,
    );
    Ok(())
}

pub(super) fn logout(out: &Output) -> Result<()> {
    let had = crate::client::login::read().ok().flatten();
    if crate::client::login::remove()? {
        out.say(format!(
            "Logged out of {}: strata commands use the local home again.",
            had.map_or_else(|| "the server".to_string(), |l| l.url)
        ));
    } else {
        out.say("Not logged in to a server: strata commands use the local home.".into());
    }
    Ok(())
}

pub(super) fn whoami(svc: &dyn Backend, out: &Output) -> Result<()> {
    let me = svc.whoami()?;
    out.show(&me, || {
        let mut pairs = vec![
            ("User".to_string(), me.user.clone()),
            ("Role".to_string(), me.role.to_string()),
            ("Server".to_string(), me.server.clone()),
        ];
        pairs.push((
            "Grants".to_string(),
            if me.grants.is_empty() {
                "-".to_string()
            } else {
                me.grants.join("\n")
            },
        ));
        properties("Logged in", &pairs)
    });
    Ok(())
}

/// `stack grant|revoke|grants` and `service-connector grant|revoke|grants`.
pub(super) fn grant(
    svc: &dyn Backend,
    out: &Output,
    kind: &str,
    name: &str,
    user: &str,
    role: Role,
) -> Result<()> {
    let g = svc.grant(kind, name, user, role)?;
    let what = if kind == "stack" {
        "stack"
    } else {
        "service connector"
    };
    out.done(
        match kind {
            "stack" => format!(
                "Granted `{user}` the {role} role on stack `{name}`: it is restricted to the users granted `member` (and admins) for changes and lifecycle."
            ),
            _ => format!("Granted `{user}` the use of {what} `{name}`."),
        },
        &g,
    );
    Ok(())
}

pub(super) fn revoke(
    svc: &dyn Backend,
    out: &Output,
    kind: &str,
    name: &str,
    user: &str,
) -> Result<()> {
    svc.revoke(kind, name, user)?;
    out.say(format!("Revoked the grant of {kind} `{name}` to `{user}`."));
    Ok(())
}

pub(super) fn grants(svc: &dyn Backend, out: &Output, kind: &str, name: &str) -> Result<()> {
    let gs = svc.grants(kind, name)?;
    out.show(&gs, || {
        if gs.is_empty() {
            return format!(
                "No grants: {}\n",
                if kind == "stack" {
                    "every member may change this stack and bring it up or down, unless it was granted once (then: admins only)"
                } else {
                    "only admins may use this connector"
                }
            );
        }
        let rows: Vec<Vec<String>> = gs
            .iter()
            .map(|g| vec![g.user.clone(), g.role.to_string(), g.granted_by.clone()])
            .collect();
        table(&["USER", "ROLE", "GRANTED BY"], &rows)
    });
    Ok(())
}

/// Moves a local home's flavors, secrets, connectors and stacks to the server: each
/// through the server's own API (so its rules and its key apply), skipping what is
/// there already.
fn import_home(svc: &dyn Backend, out: &Output, path: &Path) -> Result<()> {
    if !path.join("db").is_dir() {
        return Err(Error::not_found(
            format!("a strata home at {}", path.display()),
            "give the directory STRATA_HOME names (it holds `db/`), e.g. ~/.local/share/strata",
        ));
    }
    let home = Service::open(Home::at(path))?;
    let mut moved: BTreeMap<&str, Vec<String>> = BTreeMap::new();
    // Flavors, with their code: registered from a file written for the upload.
    let on_server: Vec<(String, String)> = svc
        .flavor_list(None)?
        .into_iter()
        .map(|f| (f.component_type.to_string(), f.sha256))
        .collect();
    let tmp = tempdir()?;
    for f in home.store().flavors(None)? {
        if f.is_builtin()
            || on_server.contains(&(f.info.component_type.to_string(), f.sha256.clone()))
        {
            continue;
        }
        let code = home
            .store()
            .get_raw(crate::store::TreeId::Blobs, &f.sha256)?
            .ok_or_else(|| Error::Corrupt {
                key: format!("blobs/{}", f.sha256),
                reason: format!("the code of flavor `{}` is missing", f.info.name),
            })?;
        let file = tmp.join(format!("{}.wasm", f.sha256));
        std::fs::write(&file, &code)
            .map_err(|e| Error::io(format!("writing {}", file.display()), e))?;
        svc.flavor_register(
            f.info.component_type,
            &file,
            crate::service::FlavorOptions {
                timeout_ms: Some(f.limits.timeout_ms),
                memory_mb: Some(f.limits.memory_bytes / (1024 * 1024)),
                allow_origins: f.allowed_origins.clone(),
                ..Default::default()
            },
        )?;
        moved
            .entry("flavors")
            .or_default()
            .push(f.info.name.clone());
    }
    let _ = std::fs::remove_dir_all(&tmp);
    // Secrets: opened with the home's key, sealed again with the server's.
    let secrets_there: Vec<String> = svc.secret_list()?.into_iter().map(|s| s.name).collect();
    for s in home.secret_list()? {
        if secrets_there.contains(&s.name) {
            continue;
        }
        let values = home.secret_get(&s.name, true)?.values;
        svc.secret_create(&s.name, values)?;
        moved.entry("secrets").or_default().push(s.name);
    }
    // Connectors, with their credentials.
    let connectors_there: Vec<String> = svc.connector_list()?.into_iter().map(|c| c.name).collect();
    for (name, kind, values) in home.connectors_with_credentials()? {
        if connectors_there.contains(&name) {
            continue;
        }
        svc.connector_register(&name, &kind, values)?;
        moved.entry("connectors").or_default().push(name);
    }
    // Stacks, with their components.
    let stacks_there: Vec<String> = svc.stack_list()?.into_iter().map(|s| s.name).collect();
    for s in home.stack_list()? {
        if stacks_there.contains(&s.name) {
            out.err(format!(
                "stack `{}` is on the server already: left as it is there",
                s.name
            ));
            continue;
        }
        let export = home.stack_export(&s.name)?;
        let r = svc.stack_import(&export, None, false)?;
        moved.entry("components").or_default().extend(r.created);
        moved.entry("stacks").or_default().push(s.name);
    }
    moved.retain(|_, v| !v.is_empty());
    let said: Vec<String> = moved
        .iter()
        .map(|(k, v)| format!("{} {k} ({})", v.len(), v.join(", ")))
        .collect();
    out.done(
        if said.is_empty() {
            format!(
                "Nothing to move: everything in {} is on the server already.",
                path.display()
            )
        } else {
            format!(
                "Moved {} from {} to the server.",
                said.join(", "),
                path.display()
            )
        },
        &moved,
    );
    Ok(())
}

/// `90s`, `30m`, `12h`, `7d` in milliseconds.
fn parse_age(text: &str) -> Option<u64> {
    let t = text.trim();
    let split = t.find(|c: char| !c.is_ascii_digit())?;
    let n: u64 = t[..split].parse().ok()?;
    let unit = match &t[split..] {
        "s" => 1_000,
        "m" => 60_000,
        "h" => 3_600_000,
        "d" => 86_400_000,
        _ => return None,
    };
    n.checked_mul(unit)
}

fn tempdir() -> Result<PathBuf> {
    let dir = std::env::temp_dir().join(format!(
        "strata-import-{}-{}",
        std::process::id(),
        crate::model::now_ms()
    ));
    std::fs::create_dir_all(&dir)
        .map_err(|e| Error::io(format!("creating {}", dir.display()), e))?;
    Ok(dir)
}

//! Who may do what on a team server: users with a role, tokens that prove who calls,
//! grants of stacks and service connectors to users, and the audit log.
//!
//! A local home has none of this: its one user owns it, and [`Service::require`] lets
//! every request through. On a team server every request is made by a [`Principal`]
//! (the server checks the token before the request reaches the service), and the rules
//! are, besides the role's:
//!
//! - A stack with grants is *restricted*: only admins and the users granted `member` on
//!   it may change it or bring it up or down, and only they and those granted `viewer`
//!   may read it. A stack without grants is open to every member.
//! - A lifecycle call on a component, or a change to it, needs the right to change every
//!   restricted stack it belongs to: a component shared by `prod` and `dev` cannot be
//!   taken down through `dev`.
//! - A stack stays restricted once granted, even with no grant left (then: admins only).
//! - A component may name a service connector only when its user is an admin or has
//!   been granted the connector, and may be called (by a member) only while that holds.
//! - A secret belongs to who created it: only they (and admins) may change it or name it
//!   in a component. A component (or a copy, or an import) may hold only the secrets,
//!   connector and directories its user may use, and no directory another component has.
//! - A request that names a file or directory on the server itself needs `admin`.
//!
//! Tokens are `strata_ID_SECRET`; the store keeps the ID and the SHA-256 of the secret,
//! so a copy of the database gives no working token.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use sha2::Digest;

use crate::error::{Error, Result};
use crate::model::{ComponentType, now_ms};
use crate::store::{Batch, TreeId};
use crate::{AccessGrant, AuditEntry, NewToken, Role, Service, TokenView, UserView, WhoAmI};

/// Who makes a request on a team server.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Principal {
    pub user: String,
    pub role: Role,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
struct UserRecord {
    name: String,
    role: Role,
    created_at_ms: u64,
    created_by: String,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
struct TokenRecord {
    id: String,
    user: String,
    name: String,
    /// SHA-256 of the secret part, hex.
    secret_sha256: String,
    created_at_ms: u64,
}

/// What a request needs, checked by [`Service::require`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Need {
    /// Any user.
    Read,
    Member,
    Admin,
    /// Reading one stack.
    StackRead(String),
    /// Changing a stack's record (its components, its name, deleting it).
    StackChange(String),
    /// Bringing a stack up or down: the stack, and every restricted stack that shares one
    /// of its components.
    StackLifecycle(String),
    /// The active stack of the caller, brought up or down.
    ActiveStackLifecycle,
    /// A component changed, deleted, or called (lifecycle, files, posts).
    Component(ComponentType, String),
    /// Naming a service connector in a component's configuration.
    ConnectorUse(String),
    /// Copying a stack: a member's, of a stack it may read.
    StackCopy(String),
    /// Reading a component (its configuration, its live status, its files): allowed to
    /// whoever may read every restricted stack it belongs to.
    ComponentRead(ComponentType, String),
    /// Changing, deleting or renaming a secret, or naming it in a component: its owner
    /// (who created it) or an admin.
    Secret(String),
}

/// How long a node trusts a token it has checked before reading it again: a token
/// revoked on another node stops working within this time (at once on the node that
/// revoked it).
pub const TOKEN_CACHE: Duration = Duration::from_secs(2);

/// Tokens this node has checked recently: id → (secret hash, who, when).
#[derive(Default)]
pub(crate) struct TokenCache(Mutex<HashMap<String, (String, Principal, Instant)>>);

impl TokenCache {
    fn get(&self, id: &str, hash: &str) -> Option<Principal> {
        let map = self.0.lock().unwrap_or_else(|e| e.into_inner());
        map.get(id)
            .filter(|(h, _, at)| at.elapsed() < TOKEN_CACHE && same(h.as_bytes(), hash.as_bytes()))
            .map(|(_, p, _)| p.clone())
    }

    fn put(&self, id: &str, hash: &str, p: &Principal) {
        let mut map = self.0.lock().unwrap_or_else(|e| e.into_inner());
        if map.len() > 10_000 {
            map.retain(|_, (_, _, at)| at.elapsed() < TOKEN_CACHE);
        }
        map.insert(
            id.to_string(),
            (hash.to_string(), p.clone(), Instant::now()),
        );
    }

    fn forget_all(&self) {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).clear();
    }
}

/// Compares in time that does not depend on where the first difference is.
fn same(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

fn sha256_hex(s: &str) -> String {
    hex::encode(sha2::Sha256::digest(s.as_bytes()))
}

fn user_key(name: &str) -> String {
    format!("user/{name}")
}

fn grant_key(kind: &str, name: &str, user: &str) -> String {
    format!("grant/{kind}/{name}/{user}")
}

/// A user name: 1 to 64 of `a-z A-Z 0-9 . _ -`, starting with a letter or digit (it is
/// part of keys, and shown in the audit log).
fn check_user_name(name: &str) -> Result<()> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && name.as_bytes()[0].is_ascii_alphanumeric()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'));
    if ok {
        Ok(())
    } else {
        Err(Error::invalid(
            format!(
                "`{}` cannot be a user name",
                crate::model::text::visible(name)
            ),
            "use 1 to 64 letters, digits, `.`, `_` or `-`, starting with a letter or digit (e.g. `alice`)",
        ))
    }
}

fn forbidden(what: String, hint: String) -> Error {
    Error::Forbidden { what, hint }
}

impl Service {
    /// Whether this service is a team server's (users, tokens and grants apply).
    pub fn is_team(&self) -> bool {
        self.shared.team.is_some()
    }

    fn team_only(&self) -> Result<()> {
        if self.is_team() {
            Ok(())
        } else {
            Err(Error::invalid(
                "a local home has no users, tokens or grants: its owner does everything",
                "run a team server (`strata server start --database mysql://…`) and log in to it with `strata login URL`",
            ))
        }
    }

    /// Who makes this request (`None`: the owner of a local home).
    pub fn who(&self) -> Option<&Principal> {
        self.who.as_ref()
    }

    fn user(&self, name: &str) -> Result<Option<UserRecord>> {
        self.store.get(TreeId::Access, &user_key(name))
    }

    fn user_or_err(&self, name: &str) -> Result<UserRecord> {
        self.user(name)?.ok_or_else(|| {
            Error::not_found(
                format!("user `{name}`"),
                "list the users with `strata server user list`",
            )
        })
    }

    /// The user a token belongs to, or `None` for a token that is malformed, unknown,
    /// revoked, or whose user was deleted.
    pub fn authenticate(&self, token: &str) -> Result<Option<Principal>> {
        let Some((id, secret)) = token
            .strip_prefix("strata_")
            .and_then(|rest| rest.split_once('_'))
        else {
            return Ok(None);
        };
        if id.len() != 16 || !id.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Ok(None);
        }
        let hash = sha256_hex(secret);
        if let Some(p) = self.shared.tokens.get(id, &hash) {
            return Ok(Some(p));
        }
        let Some(t) = self
            .store
            .get::<TokenRecord>(TreeId::Access, &format!("token/{id}"))?
        else {
            return Ok(None);
        };
        if !same(t.secret_sha256.as_bytes(), hash.as_bytes()) {
            return Ok(None);
        }
        let Some(u) = self.user(&t.user)? else {
            return Ok(None);
        };
        let p = Principal {
            user: u.name,
            role: u.role,
        };
        self.shared.tokens.put(id, &hash, &p);
        Ok(Some(p))
    }

    /// Whether the caller may do what `need` says; an error naming the role it needs
    /// when not.
    pub fn require(&self, need: &Need) -> Result<()> {
        let Some(p) = &self.who else {
            return Ok(());
        };
        if p.role == Role::Admin {
            return Ok(());
        }
        let at_least = |role: Role, doing: &str| -> Result<()> {
            if p.role >= role {
                Ok(())
            } else {
                Err(forbidden(
                    format!(
                        "{doing} needs the `{role}` role; `{}` is a {}",
                        p.user, p.role
                    ),
                    format!("ask an admin to do it, or to give you the {role} role"),
                ))
            }
        };
        match need {
            Need::Read => Ok(()),
            Need::Member => at_least(Role::Member, "this request"),
            Need::Admin => at_least(Role::Admin, "this request"),
            Need::StackRead(stack) => {
                let grants = self.grants("stack", stack)?;
                if !self.is_restricted(stack)? || grants.iter().any(|g| g.user == p.user) {
                    Ok(())
                } else {
                    Err(forbidden(
                        format!(
                            "stack `{stack}` is restricted: reading it needs a `viewer` or `member` grant on it, which `{}` does not hold",
                            p.user
                        ),
                        format!(
                            "ask an admin: `strata stack grant {stack} {} --role viewer`",
                            p.user
                        ),
                    ))
                }
            }
            Need::StackChange(stack) => {
                at_least(Role::Member, &format!("changing stack `{stack}`"))?;
                self.may_change_stack(p, stack)
            }
            Need::StackLifecycle(stack) => {
                at_least(
                    Role::Member,
                    &format!("bringing stack `{stack}` up or down"),
                )?;
                self.may_change_stack(p, stack)?;
                let s = self.stack_or_err(stack)?;
                for (t, names) in &s.components {
                    for n in names {
                        self.may_change_component(p, *t, n)?;
                    }
                }
                Ok(())
            }
            Need::ActiveStackLifecycle => {
                let active = self.active_stack_name()?;
                self.require(&Need::StackLifecycle(active))
            }
            Need::Component(t, name) => {
                at_least(Role::Member, &format!("changing {} `{name}`", t.label()))?;
                self.may_change_component(p, *t, name)?;
                // A member calls a component bound to a connector only while granted it.
                if let Some(c) = self.store.component(*t, name)?
                    && let Some(id) = &c.connector
                    && let Some(connector) = self.connector_name(id)
                {
                    self.require(&Need::ConnectorUse(connector))?;
                }
                Ok(())
            }
            Need::ComponentRead(t, name) => {
                for s in self.store.stacks()? {
                    if s.components
                        .get(t)
                        .is_some_and(|n| n.iter().any(|n| n == name))
                    {
                        self.require(&Need::StackRead(s.name.clone()))?;
                    }
                }
                Ok(())
            }
            Need::StackCopy(stack) => {
                at_least(Role::Member, &format!("copying stack `{stack}`"))?;
                self.require(&Need::StackRead(stack.clone()))
            }
            Need::Secret(name) => {
                at_least(Role::Member, &format!("using secret `{name}`"))?;
                let owner: Option<String> = self
                    .store
                    .get(TreeId::Access, &format!("owner/secret/{name}"))?;
                // A secret that does not exist is not found, not forbidden (its name is
                // checked again wherever it is created).
                if owner.as_deref() == Some(p.user.as_str())
                    || !self.store.contains(TreeId::Secrets, name)?
                {
                    Ok(())
                } else {
                    Err(forbidden(
                        format!(
                            "secret `{name}` belongs to {}: changing it or naming it in a component needs the `admin` role",
                            owner.map_or_else(|| "the server".to_string(), |o| format!("`{o}`"))
                        ),
                        "ask its owner or an admin, or create a secret of your own".into(),
                    ))
                }
            }
            Need::ConnectorUse(name) => {
                at_least(Role::Member, &format!("using service connector `{name}`"))?;
                let granted = self
                    .store
                    .contains(TreeId::Access, &grant_key("connector", name, &p.user))?;
                if granted {
                    Ok(())
                } else {
                    Err(forbidden(
                        format!(
                            "using service connector `{name}` needs a grant of it (or the `admin` role); `{}` has none",
                            p.user
                        ),
                        format!(
                            "ask an admin: `strata service-connector grant {name} {}`",
                            p.user
                        ),
                    ))
                }
            }
        }
    }

    /// Whether a stack was ever granted (and so is restricted, grants or none).
    pub fn is_restricted(&self, stack: &str) -> Result<bool> {
        self.store
            .contains(TreeId::Access, &format!("restricted/stack/{stack}"))
    }

    /// A member may change a stack that is not restricted, or one granting them `member`.
    fn may_change_stack(&self, p: &Principal, stack: &str) -> Result<()> {
        let grants = self.grants("stack", stack)?;
        if !self.is_restricted(stack)?
            || grants
                .iter()
                .any(|g| g.user == p.user && g.role >= Role::Member)
        {
            return Ok(());
        }
        let granted: Vec<&str> = grants
            .iter()
            .filter(|g| g.role >= Role::Member)
            .map(|g| g.user.as_str())
            .collect();
        Err(forbidden(
            format!(
                "stack `{stack}` is restricted: changing it or bringing it up or down needs the `member` role on it, held by {}; `{}` does not hold it",
                if granted.is_empty() {
                    "admins only".to_string()
                } else {
                    granted.join(", ")
                },
                p.user
            ),
            format!(
                "ask an admin: `strata stack grant {stack} {} --role member`",
                p.user
            ),
        ))
    }

    /// A component may be changed by whoever may change every restricted stack it is in.
    fn may_change_component(&self, p: &Principal, t: ComponentType, name: &str) -> Result<()> {
        for s in self.store.stacks()? {
            if s.components
                .get(&t)
                .is_some_and(|n| n.iter().any(|n| n == name))
            {
                self.may_change_stack(p, &s.name).map_err(|e| match e {
                    Error::Forbidden { what, hint } => Error::Forbidden {
                        what: format!(
                            "{} `{name}` belongs to {}",
                            t.label(),
                            what.replacen(" is restricted:", ", which is restricted:", 1)
                        ),
                        hint,
                    },
                    other => other,
                })?;
            }
        }
        Ok(())
    }

    /// Creates a user with `role`, and its first token (shown once).
    pub fn user_create(&self, name: &str, role: Role) -> Result<(UserView, NewToken)> {
        self.team_only()?;
        check_user_name(name)?;
        if self.user(name)?.is_some() {
            return Err(Error::exists(
                format!("user `{name}`"),
                format!(
                    "give another name, or make a new token for it: `strata server token create {name}`"
                ),
            ));
        }
        let u = UserRecord {
            name: name.to_string(),
            role,
            created_at_ms: now_ms(),
            created_by: self.actor(),
        };
        let (record, token) = self.new_token(name, "first")?;
        let mut batch = Batch::new();
        batch.put(TreeId::Access, &user_key(name), &u).put(
            TreeId::Access,
            &format!("token/{}", record.id),
            &record,
        );
        self.store.apply(batch)?;
        Ok((self.user_view(&u)?, token))
    }

    fn actor(&self) -> String {
        self.who
            .as_ref()
            .map_or_else(|| "server".to_string(), |p| p.user.clone())
    }

    fn user_view(&self, u: &UserRecord) -> Result<UserView> {
        let tokens = self
            .store
            .scan::<TokenRecord>(TreeId::Access, "token/")?
            .into_iter()
            .filter(|(_, t)| t.user == u.name)
            .count();
        Ok(UserView {
            name: u.name.clone(),
            role: u.role,
            created_at_ms: u.created_at_ms,
            created_by: u.created_by.clone(),
            tokens,
        })
    }

    pub fn user_list(&self) -> Result<Vec<UserView>> {
        self.team_only()?;
        let users: Vec<UserRecord> = self
            .store
            .scan::<UserRecord>(TreeId::Access, "user/")?
            .into_iter()
            .map(|(_, u)| u)
            .collect();
        let tokens = self.store.scan::<TokenRecord>(TreeId::Access, "token/")?;
        Ok(users
            .into_iter()
            .map(|u| UserView {
                tokens: tokens.iter().filter(|(_, t)| t.user == u.name).count(),
                name: u.name,
                role: u.role,
                created_at_ms: u.created_at_ms,
                created_by: u.created_by,
            })
            .collect())
    }

    /// Refuses to take the admin role from `u` when it is the last admin.
    fn keep_an_admin(&self, u: &UserRecord) -> Result<()> {
        if u.role != Role::Admin {
            return Ok(());
        }
        let admins = self
            .store
            .scan::<UserRecord>(TreeId::Access, "user/")?
            .into_iter()
            .filter(|(_, v)| v.role == Role::Admin)
            .count();
        if admins <= 1 {
            return Err(Error::invalid(
                format!("`{}` is the last admin", u.name),
                "make another user an admin first (`strata server user update NAME --role admin`)",
            ));
        }
        Ok(())
    }

    /// Gives a user another role (admins); the last admin stays one. It applies at once
    /// on this node, within 2 s on the others (as a revoked token).
    pub fn user_set_role(&self, name: &str, role: Role) -> Result<UserView> {
        self.team_only()?;
        self.require(&Need::Admin)?;
        let mut u = self.user_or_err(name)?;
        if role != Role::Admin {
            self.keep_an_admin(&u)?;
        }
        u.role = role;
        let mut batch = Batch::new();
        batch.put(TreeId::Access, &user_key(name), &u);
        self.store.apply(batch)?;
        self.shared.tokens.forget_all();
        self.user_view(&u)
    }

    /// Deletes a user with its tokens and grants; the last admin stays.
    pub fn user_delete(&self, name: &str) -> Result<()> {
        self.team_only()?;
        let u = self.user_or_err(name)?;
        self.keep_an_admin(&u)?;
        let mut batch = Batch::new();
        batch.remove(TreeId::Access, &user_key(name));
        for (k, t) in self.store.scan::<TokenRecord>(TreeId::Access, "token/")? {
            if t.user == name {
                batch.remove(TreeId::Access, &k);
            }
        }
        for (k, g) in self.store.scan::<AccessGrant>(TreeId::Access, "grant/")? {
            if g.user == name {
                batch.remove(TreeId::Access, &k);
            }
        }
        // What they owned becomes the admins' (a new user of the same name owns nothing).
        for (k, owner) in self.store.scan::<String>(TreeId::Access, "owner/")? {
            if owner == name {
                batch.remove(TreeId::Access, &k);
            }
        }
        self.store.apply(batch)?;
        self.shared.tokens.forget_all();
        Ok(())
    }

    fn new_token(&self, user: &str, name: &str) -> Result<(TokenRecord, NewToken)> {
        crate::model::text::check_name_chars("token name", name)?;
        if name.len() > 128 {
            return Err(Error::invalid(
                "a token name is at most 128 bytes",
                "give a short name, such as `laptop` or `ci`",
            ));
        }
        let id = hex::encode(rand::random::<[u8; 8]>());
        let secret = hex::encode(rand::random::<[u8; 32]>());
        let record = TokenRecord {
            id: id.clone(),
            user: user.to_string(),
            name: name.to_string(),
            secret_sha256: sha256_hex(&secret),
            created_at_ms: now_ms(),
        };
        let token = NewToken {
            id: id.clone(),
            user: user.to_string(),
            name: name.to_string(),
            token: format!("strata_{id}_{secret}"),
        };
        Ok((record, token))
    }

    /// A new token for `user` (the caller's own when `None`). Only an admin makes tokens
    /// for someone else.
    pub fn token_create(&self, user: Option<&str>, name: &str) -> Result<NewToken> {
        self.team_only()?;
        let user = match user {
            Some(u) => u.to_string(),
            None => self.actor(),
        };
        if self.who.as_ref().is_some_and(|p| p.user != user) {
            self.require(&Need::Admin)?;
        }
        self.user_or_err(&user)?;
        let (record, token) = self.new_token(&user, name)?;
        let mut batch = Batch::new();
        batch.put(TreeId::Access, &format!("token/{}", record.id), &record);
        self.store.apply(batch)?;
        Ok(token)
    }

    /// The tokens of `user` (every user's for an admin asking with `None`).
    pub fn token_list(&self, user: Option<&str>) -> Result<Vec<TokenView>> {
        self.team_only()?;
        let mine = self.who.as_ref().map(|p| p.user.clone());
        let user = user.map(str::to_string).or_else(|| {
            self.who
                .as_ref()
                .filter(|p| p.role != Role::Admin)
                .map(|p| p.user.clone())
        });
        if user.is_some() && user != mine {
            self.require(&Need::Admin)?;
        }
        Ok(self
            .store
            .scan::<TokenRecord>(TreeId::Access, "token/")?
            .into_iter()
            .map(|(_, t)| t)
            .filter(|t| user.as_ref().is_none_or(|u| *u == t.user))
            .map(|t| TokenView {
                id: t.id,
                user: t.user,
                name: t.name,
                created_at_ms: t.created_at_ms,
            })
            .collect())
    }

    /// Revokes a token by its id; a user revokes their own, an admin anyone's.
    pub fn token_revoke(&self, id: &str) -> Result<TokenView> {
        self.team_only()?;
        let key = format!("token/{id}");
        let t = self
            .store
            .get::<TokenRecord>(TreeId::Access, &key)?
            .ok_or_else(|| {
                Error::not_found(
                    format!("token `{id}`"),
                    "list the tokens with `strata server token list`",
                )
            })?;
        if self.who.as_ref().is_some_and(|p| p.user != t.user) {
            self.require(&Need::Admin)?;
        }
        let mut batch = Batch::new();
        batch.remove(TreeId::Access, &key);
        self.store.apply(batch)?;
        self.shared.tokens.forget_all();
        Ok(TokenView {
            id: t.id,
            user: t.user,
            name: t.name,
            created_at_ms: t.created_at_ms,
        })
    }

    /// The grants of the stack or connector `name` (`kind` is `stack` or `connector`).
    pub fn grants(&self, kind: &str, name: &str) -> Result<Vec<AccessGrant>> {
        Ok(self
            .store
            .scan::<AccessGrant>(TreeId::Access, &format!("grant/{kind}/{name}/"))?
            .into_iter()
            .map(|(_, g)| g)
            // A name may hold `/`: `grant/stack/a/` also starts the keys of stack `a/b`.
            .filter(|g| g.kind == kind && g.name == name)
            .collect())
    }

    /// [`Service::grants`] as `stack grants` and its route ask: on a team server only.
    pub fn grants_of(&self, kind: &str, name: &str) -> Result<Vec<AccessGrant>> {
        self.team_only()?;
        self.grants(kind, name)
    }

    /// Grants `user` `role` on the stack or connector `name`.
    pub fn grant(&self, kind: &str, name: &str, user: &str, role: Role) -> Result<AccessGrant> {
        self.team_only()?;
        self.require(&Need::Admin)?;
        match kind {
            "stack" => {
                self.stack_or_err(name)?;
                if role == Role::Admin {
                    return Err(Error::invalid(
                        "a stack is granted as `member` or `viewer`",
                        format!("`strata stack grant {name} {user} --role member`"),
                    ));
                }
            }
            "connector" => {
                self.connector_id(name)?;
            }
            other => {
                return Err(Error::invalid(
                    format!("`{other}` cannot be granted"),
                    "grant a `stack` or a `connector`",
                ));
            }
        }
        self.user_or_err(user)?;
        let g = AccessGrant {
            kind: kind.to_string(),
            name: name.to_string(),
            user: user.to_string(),
            role,
            granted_by: self.actor(),
            at_ms: now_ms(),
        };
        let mut batch = Batch::new();
        batch.put(TreeId::Access, &grant_key(kind, name, user), &g);
        if kind == "stack" {
            batch.put(TreeId::Access, &format!("restricted/stack/{name}"), &true);
        }
        self.store.apply(batch)?;
        Ok(g)
    }

    pub fn revoke(&self, kind: &str, name: &str, user: &str) -> Result<()> {
        self.team_only()?;
        self.require(&Need::Admin)?;
        let key = grant_key(kind, name, user);
        if !self.store.contains(TreeId::Access, &key)? {
            return Err(Error::not_found(
                format!("a grant of {kind} `{name}` to `{user}`"),
                format!(
                    "see the grants with `strata {} grants {name}`",
                    if kind == "stack" {
                        "stack"
                    } else {
                        "service-connector"
                    }
                ),
            ));
        }
        let mut batch = Batch::new();
        batch.remove(TreeId::Access, &key);
        self.store.apply(batch)
    }

    /// The grants of a stack or connector follow it when it is renamed (`to`), and go
    /// with it when it is deleted (`None`): a renamed production stack stays restricted.
    pub(crate) fn move_grants(
        &self,
        batch: &mut Batch,
        kind: &str,
        name: &str,
        to: Option<&str>,
    ) -> Result<()> {
        for mut g in self.grants(kind, name)? {
            batch.remove(TreeId::Access, &grant_key(kind, name, &g.user));
            if let Some(to) = to {
                g.name = to.to_string();
                batch.put(TreeId::Access, &grant_key(kind, to, &g.user), &g);
            }
        }
        for marker in ["restricted", "owner"] {
            let key = format!("{marker}/{kind}/{name}");
            if let Some(v) = self.store.get::<serde_json::Value>(TreeId::Access, &key)? {
                batch.remove(TreeId::Access, &key);
                if let Some(to) = to {
                    batch.put(TreeId::Access, &format!("{marker}/{kind}/{to}"), &v);
                }
            }
        }
        Ok(())
    }

    /// On a team server, a request that names a file or directory on the server's own
    /// disk (`what`) is an admin's: its users are not the machine's.
    pub(crate) fn require_server_path(&self, what: &str) -> Result<()> {
        match &self.who {
            Some(p) if p.role != Role::Admin => Err(forbidden(
                format!(
                    "{what} names a path on the server's own disk, which needs the `admin` role; `{}` is a {}",
                    p.user, p.role
                ),
                "send the file itself (the CLI uploads a flavor's .wasm from your machine), or ask an admin".into(),
            )),
            _ => Ok(()),
        }
    }

    /// A member may not create (or rename a secret to) a name that components they may
    /// not change already name: the secret would be theirs, and those components would
    /// run with its values.
    pub(crate) fn check_secret_name_free(&self, name: &str) -> Result<()> {
        let Some(p) = &self.who else {
            return Ok(());
        };
        if p.role == Role::Admin {
            return Ok(());
        }
        for c in self.store.components(None)? {
            let names_it = c
                .config
                .values()
                .any(|v| crate::model::secret_reference(v).is_some_and(|(s, _)| s == name));
            if names_it
                && let Err(Error::Forbidden { .. }) =
                    self.require(&Need::Component(c.component_type, c.name.clone()))
            {
                return Err(forbidden(
                    format!(
                        "{} `{}` names a secret `{name}`, and it is not yours to change: a secret of that name would be handed to it",
                        c.component_type.label(),
                        c.name
                    ),
                    "pick another name".into(),
                ));
            }
        }
        Ok(())
    }

    /// Records who created secret `name` (its owner, on a team server).
    pub(crate) fn own_secret(&self, batch: &mut Batch, name: &str) {
        if let Some(p) = &self.who {
            batch.put(TreeId::Access, &format!("owner/secret/{name}"), &p.user);
        }
    }

    /// What a component holds, checked against its user on a team server: each secret
    /// it names is theirs, its connector is granted to them, and each directory it is
    /// granted is no other component's (nor inside or around one). Admins may do all three.
    /// On an update, `before` is the record as it was: only what the update adds (a
    /// secret reference, a connector) is checked against the one who makes it.
    pub(crate) fn check_team_use(
        &self,
        f: &crate::model::FlavorRecord,
        c: &crate::model::ComponentRecord,
        before: Option<&crate::model::ComponentRecord>,
    ) -> Result<()> {
        let Some(p) = &self.who else {
            return Ok(());
        };
        if p.role != Role::Admin {
            let had = |secret: &str| {
                before.is_some_and(|b| {
                    b.config.values().any(|v| {
                        crate::model::secret_reference(v).is_some_and(|(s, _)| s == secret)
                    })
                })
            };
            for value in c.config.values() {
                if let Some((secret, _)) = crate::model::secret_reference(value)
                    && !had(secret)
                {
                    self.require(&Need::Secret(secret.to_string()))?;
                }
            }
            if let Some(id) = &c.connector
                && before.is_none_or(|b| b.connector.as_ref() != Some(id))
                && let Some(name) = self.connector_name(id)
            {
                self.require(&Need::ConnectorUse(name))?;
            }
        }
        let mine: Vec<std::path::PathBuf> = super::lifecycle::local_paths(f, c)
            .map(|(_, v)| std::path::PathBuf::from(v))
            .collect();
        // An admin may hand two components one directory (admins do everything); the
        // check reads every component, so it is kept for who it protects against.
        if mine.is_empty() || p.role == Role::Admin {
            return Ok(());
        }
        // Each flavor read once: a server holds thousands of components of a few flavors.
        let mut flavors: HashMap<(ComponentType, String), Option<crate::model::FlavorRecord>> =
            HashMap::new();
        for other in self.store.components(None)? {
            if other.id == c.id
                || (other.component_type == c.component_type && other.name == c.name)
            {
                continue;
            }
            let key = (other.component_type, other.flavor.clone());
            if !flavors.contains_key(&key) {
                let f = self.store.flavor(other.component_type, &other.flavor)?;
                flavors.insert(key.clone(), f);
            }
            let Some(of) = flavors.get(&key).and_then(Option::as_ref) else {
                continue;
            };
            for (_, theirs) in super::lifecycle::local_paths(of, &other) {
                let theirs = std::path::Path::new(theirs);
                if let Some(m) = mine
                    .iter()
                    .find(|m| m.starts_with(theirs) || theirs.starts_with(m))
                {
                    return Err(Error::invalid(
                        format!(
                            "`{}` is, holds or is inside the directory of {} `{}` ({}): on a team server no two components share a directory",
                            m.display(),
                            other.component_type.label(),
                            other.name,
                            theirs.display()
                        ),
                        "give this component a directory of its own",
                    ));
                }
            }
        }
        Ok(())
    }

    /// The stacks `stack_list` shows the caller: on a team server, not the restricted
    /// ones it holds no grant on (but to admins).
    pub(crate) fn may_see_stack(&self, stack: &str) -> Result<bool> {
        match self.require(&Need::StackRead(stack.to_string())) {
            Ok(()) => Ok(true),
            Err(Error::Forbidden { .. }) => Ok(false),
            Err(e) => Err(e),
        }
    }

    pub fn whoami(&self) -> Result<WhoAmI> {
        let Some(p) = &self.who else {
            return Err(Error::invalid(
                "this is a local home: there are no users",
                "`strata login URL` connects to a team server",
            ));
        };
        let grants = self
            .store
            .scan::<AccessGrant>(TreeId::Access, "grant/")?
            .into_iter()
            .filter(|(_, g)| g.user == p.user)
            .map(|(_, g)| match g.kind.as_str() {
                "stack" => format!("stack {}: {}", g.name, g.role),
                _ => format!("{} {}", g.kind, g.name),
            })
            .collect();
        Ok(WhoAmI {
            user: p.user.clone(),
            role: p.role,
            server: String::new(),
            grants,
        })
    }

    /// Appends an entry to the audit log.
    pub fn audit(&self, method: &str, path: &str, status: u16) -> Result<()> {
        let node = self
            .shared
            .team
            .as_ref()
            .map_or_else(String::new, |t| t.node.clone());
        let entry = AuditEntry {
            at_ms: now_ms(),
            user: self.actor(),
            method: method.to_string(),
            path: path.to_string(),
            status,
            node: node.clone(),
        };
        let seq = self
            .shared
            .audit_seq
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let mut batch = Batch::new();
        batch.put(
            TreeId::Audit,
            &format!("{:016}-{node}-{seq:010}", entry.at_ms),
            &entry,
        );
        self.store.apply(batch)
    }

    /// The audit log from `since_ms` on, oldest first, at most `limit` entries (the
    /// newest of them).
    pub fn audit_list(&self, since_ms: u64, limit: usize) -> Result<Vec<AuditEntry>> {
        self.team_only()?;
        self.require(&Need::Admin)?;
        let mut all: Vec<AuditEntry> = self
            .store
            .scan::<AuditEntry>(TreeId::Audit, "")?
            .into_iter()
            .map(|(_, e)| e)
            .filter(|e| e.at_ms >= since_ms)
            .collect();
        if all.len() > limit {
            all.drain(..all.len() - limit);
        }
        Ok(all)
    }
}

//! Secrets: key/value sets stored encrypted (ChaCha20-Poly1305) in the store, with the
//! key in `secret.key` (0600) in the home. Components reference them as
//! `{{name.key}}`; a reference is resolved only inside the call that needs it.

#[allow(unused_imports)]
use crate::fsutil::write_private;
use std::collections::BTreeMap;
use strata_api::views::*;

use chacha20poly1305::aead::{Aead, AeadCore, KeyInit, OsRng, Payload};
use chacha20poly1305::{ChaCha20Poly1305, Key, Nonce};
use serde::{Deserialize, Serialize};

use super::components::check_name;
use super::{Service, new_id};
use crate::error::{Error, Result};
use crate::model::{now_ms, secret_reference};
use crate::store::{Batch, TreeId, type_key};

/// A secret as stored: the values are sealed, bound to the secret's id.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct SecretRecord {
    pub id: String,
    pub name: String,
    pub keys: Vec<String>,
    pub created_at: u64,
    pub updated_at: u64,
    nonce: String,
    sealed: String,
}

const MASK: &str = "********";

/// A secret's keys follow the rule of every name: printable, never a control character.
fn check_keys(values: &BTreeMap<String, String>) -> Result<()> {
    for k in values.keys() {
        crate::model::text::check_name_chars("secret key", k)?;
    }
    Ok(())
}

impl Service {
    fn cipher(&self) -> Result<ChaCha20Poly1305> {
        if let Some(team) = &self.shared.team {
            // A team server's key is given to every node, never written by one.
            let key = team.secret_key.ok_or_else(|| {
                Error::invalid(
                    "this command was not given the server's secret key",
                    "give it with `--secret-key-file FILE` (or STRATA_SECRET_KEY), as `strata server start` has it",
                )
            })?;
            return Ok(ChaCha20Poly1305::new(Key::from_slice(&key)));
        }
        let path = self.home.key_file();
        let key = match std::fs::read(&path) {
            Ok(k) if k.len() == 32 => k,
            Ok(_) => {
                return Err(Error::Corrupt {
                    key: path.display().to_string(),
                    reason: "the secret key file is not 32 bytes".into(),
                });
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let k = ChaCha20Poly1305::generate_key(&mut OsRng).to_vec();
                write_private(&path, &k)?;
                k
            }
            Err(e) => return Err(Error::io(format!("reading {}", path.display()), e)),
        };
        Ok(ChaCha20Poly1305::new(Key::from_slice(&key)))
    }

    pub(super) fn seal(
        &self,
        id: &str,
        values: &BTreeMap<String, String>,
    ) -> Result<(String, String)> {
        let cipher = self.cipher()?;
        let nonce = ChaCha20Poly1305::generate_nonce(&mut OsRng);
        let plain = serde_json::to_vec(values).expect("invariant: a string map serializes");
        let sealed = cipher
            .encrypt(
                &nonce,
                Payload {
                    msg: &plain,
                    aad: id.as_bytes(),
                },
            )
            .map_err(|_| Error::Internal("encrypting a secret failed".into()))?;
        Ok((hex::encode(nonce), hex::encode(sealed)))
    }

    fn open_secret(&self, r: &SecretRecord) -> Result<BTreeMap<String, String>> {
        self.open_sealed(&format!("secrets/{}", r.name), &r.id, &r.nonce, &r.sealed)
    }

    /// The values [`Service::seal`] sealed for `id`; `key` names the record in an error.
    pub(super) fn open_sealed(
        &self,
        key: &str,
        id: &str,
        nonce: &str,
        sealed: &str,
    ) -> Result<BTreeMap<String, String>> {
        let cipher = self.cipher()?;
        let damaged = |reason: &str| Error::Corrupt {
            key: key.to_string(),
            reason: reason.to_string(),
        };
        let nonce = hex::decode(nonce).map_err(|_| damaged("bad nonce"))?;
        if nonce.len() != 12 {
            return Err(damaged("bad nonce"));
        }
        let sealed = hex::decode(sealed).map_err(|_| damaged("bad ciphertext"))?;
        let plain = cipher
            .decrypt(
                Nonce::from_slice(&nonce),
                Payload {
                    msg: &sealed,
                    aad: id.as_bytes(),
                },
            )
            .map_err(|_| {
                damaged("it does not decrypt with this home's secret.key (was the key replaced?)")
            })?;
        serde_json::from_slice(&plain).map_err(|_| damaged("unreadable after decryption"))
    }

    fn secret_or_err(&self, name: &str) -> Result<SecretRecord> {
        self.store.get(TreeId::Secrets, name)?.ok_or_else(|| {
            Error::not_found(
                format!("secret `{name}`"),
                format!("create it with `strata secret create {name} --KEY=VALUE`"),
            )
        })
    }

    /// The value of `key` in secret `name`, for one call.
    pub(super) fn secret_value(&self, name: &str, key: &str) -> Result<String> {
        let r = self.secret_or_err(name)?;
        let mut values = self.open_secret(&r)?;
        values.remove(key).ok_or_else(|| {
            Error::not_found(
                format!("key `{key}` in secret `{name}`"),
                format!("secret `{name}` has keys: {}; add it with `strata secret update {name} --{key}=VALUE`", r.keys.join(", ")),
            )
        })
    }

    /// Creates a secret. A `-` in a key is read as `_` (`--aws-key` and `aws_key` are one
    /// key), whoever asks: the CLI, a values file, or a REST call.
    pub fn secret_create(
        &self,
        name: &str,
        values: BTreeMap<String, String>,
    ) -> Result<SecretView> {
        check_name("secret", name)?;
        self.check_secret_name_free(name)?;
        let values = normalized_keys(values)?;
        check_keys(&values)?;
        if values.is_empty() {
            return Err(Error::invalid(
                format!("secret `{name}` has no values"),
                "give at least one `--KEY=VALUE`",
            ));
        }
        if self
            .store
            .get::<SecretRecord>(TreeId::Secrets, name)?
            .is_some()
        {
            return Err(Error::exists(
                format!("secret `{name}`"),
                format!("change it with `strata secret update {name} --KEY=VALUE`"),
            ));
        }
        let id = new_id();
        let (nonce, sealed) = self.seal(&id, &values)?;
        let now = now_ms();
        let r = SecretRecord {
            id,
            name: name.to_string(),
            keys: values.keys().cloned().collect(),
            created_at: now,
            updated_at: now,
            nonce,
            sealed,
        };
        let mut batch = Batch::new();
        batch.put(TreeId::Secrets, name, &r);
        self.own_secret(&mut batch, name);
        self.store.apply(batch)?;
        self.secret_view(&r, false)
    }

    /// Merges `values` into the secret; an empty value removes that key.
    pub fn secret_update(
        &self,
        name: &str,
        values: BTreeMap<String, String>,
    ) -> Result<SecretView> {
        let mut r = self.secret_or_err(name)?;
        self.require(&crate::Need::Secret(name.to_string()))?;
        let values = normalized_keys(values)?;
        check_keys(&values)?;
        let mut current = self.open_secret(&r)?;
        for (k, v) in values {
            if v.is_empty() {
                current.remove(&k);
            } else {
                current.insert(k, v);
            }
        }
        if current.is_empty() {
            return Err(Error::invalid(
                format!("secret `{name}` would have no values left"),
                format!("delete it instead: `strata secret delete {name}`"),
            ));
        }
        let (nonce, sealed) = self.seal(&r.id, &current)?;
        r.nonce = nonce;
        r.sealed = sealed;
        r.keys = current.keys().cloned().collect();
        r.updated_at = now_ms();
        let mut batch = Batch::new();
        batch.put(TreeId::Secrets, name, &r);
        self.store.apply(batch)?;
        self.secret_view(&r, false)
    }

    pub fn secret_get(&self, name: &str, reveal: bool) -> Result<SecretView> {
        if reveal {
            // On a team server, values are shown to admins only.
            self.require(&crate::Need::Admin)?;
        }
        let r = self.secret_or_err(name)?;
        self.secret_view(&r, reveal)
    }

    pub fn secret_list(&self) -> Result<Vec<SecretView>> {
        self.store
            .scan::<SecretRecord>(TreeId::Secrets, "")?
            .into_iter()
            .map(|(_, r)| self.secret_view(&r, false))
            .collect()
    }

    pub fn secret_delete(&self, name: &str) -> Result<()> {
        self.secret_or_err(name)?;
        self.require(&crate::Need::Secret(name.to_string()))?;
        if self.is_team() {
            // Deleted while named, its name could be taken by anyone, and the components
            // that name it would run with the new owner's values.
            let users: Vec<String> = self
                .store
                .components(None)?
                .into_iter()
                .filter(|c| {
                    c.config
                        .values()
                        .any(|v| secret_reference(v).is_some_and(|(s, _)| s == name))
                })
                .map(|c| format!("{} `{}`", c.component_type.label(), c.name))
                .collect();
            if !users.is_empty() {
                return Err(Error::invalid(
                    format!("secret `{name}` is named by {}", users.join(", ")),
                    "change those components first; on a team server a secret is not deleted while named",
                ));
            }
        }
        let mut batch = Batch::new();
        batch.remove(TreeId::Secrets, name);
        self.move_grants(&mut batch, "secret", name, None)?;
        self.store.apply(batch)
    }

    /// Renames a secret and, in the same batch, every component reference to it
    /// (`{{old.key}}` becomes `{{new.key}}`). Returns the components rewritten.
    pub fn secret_rename(&self, old: &str, new: &str) -> Result<Vec<String>> {
        let mut r = self.secret_or_err(old)?;
        self.require(&crate::Need::Secret(old.to_string()))?;
        check_name("secret", new)?;
        self.check_secret_name_free(new)?;
        if self
            .store
            .get::<SecretRecord>(TreeId::Secrets, new)?
            .is_some()
        {
            return Err(Error::exists(
                format!("secret `{new}`"),
                "pick another name",
            ));
        }
        r.name = new.to_string();
        r.updated_at = now_ms();
        let mut batch = Batch::new();
        batch
            .remove(TreeId::Secrets, old)
            .put(TreeId::Secrets, new, &r);
        self.move_grants(&mut batch, "secret", old, Some(new))?;
        let mut rewritten = Vec::new();
        for mut c in self.store.components(None)? {
            let mut changed = false;
            for value in c.config.values_mut() {
                if let Some((name, key)) = secret_reference(value)
                    && name == old
                {
                    *value = format!("{{{{{new}.{key}}}}}");
                    changed = true;
                }
            }
            if changed {
                batch.put(TreeId::Components, &type_key(c.component_type, &c.name), &c);
                rewritten.push(format!("{} `{}`", c.component_type.label(), c.name));
            }
        }
        self.store.apply(batch)?;
        Ok(rewritten)
    }

    fn secret_view(&self, r: &SecretRecord, reveal: bool) -> Result<SecretView> {
        let values = if reveal {
            self.open_secret(r)?
        } else {
            r.keys
                .iter()
                .map(|k| (k.clone(), MASK.to_string()))
                .collect()
        };
        Ok(SecretView {
            id: r.id.clone(),
            name: r.name.clone(),
            values,
            created_at: r.created_at,
            updated_at: r.updated_at,
        })
    }
}

/// The keys as stored: `-` read as `_`, so that a key given as a flag (`--api-key`), in
/// a values file or over REST is the same key. Two spellings of one key are refused.
pub(super) fn normalized_keys(
    values: BTreeMap<String, String>,
) -> Result<BTreeMap<String, String>> {
    let mut out = BTreeMap::new();
    for (given, v) in values {
        let key = given.replace('-', "_");
        if out.insert(key.clone(), v).is_some() {
            return Err(Error::invalid(
                format!("key `{key}` is given twice (a `-` in a key is read as `_`)"),
                "give each key once",
            ));
        }
    }
    Ok(out)
}

//! `strata backup FILE` / `strata restore FILE`: the whole store in one checked file.
//!
//! The file holds every record raw (secrets stay sealed), a sha256 over all of them, and
//! a fingerprint of the home's secret key, so a restore can say when the secrets will
//! not open. The compiled-code cache is left out: it is rebuilt on first use. Restore
//! checks every record (the file's checksum, each record's envelope and CRC, each
//! flavor blob against its sha256, the schema version) before it replaces anything, then
//! replaces the whole store in one transaction.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
#[allow(unused_imports)]
use strata_api::views::*;

use super::Service;
use crate::error::{Error, Result};
use crate::fsutil::write_private;
use crate::model::{DEFAULT_NAME, now_ms};
use crate::store::{RawRecord, SCHEMA_VERSION, TreeId, codec, meta};

/// The backup format this strata writes and reads.
const BACKUP_FORMAT: u32 = 1;

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct BackupFile {
    strata_backup: u32,
    strata_version: String,
    created_at: u64,
    /// The first 16 hex digits of sha256(secret.key), or `none` without a key.
    secret_key: String,
    records: Vec<BackupRecord>,
    /// sha256 over every record (tree, key, value), hex.
    sha256: String,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct BackupRecord {
    tree: String,
    key: String,
    /// The stored bytes, hex.
    value: String,
}

fn digest(records: &[RawRecord]) -> String {
    let mut h = Sha256::new();
    for (t, k, v) in records {
        for part in [t.name().as_bytes(), k.as_slice(), v.as_slice()] {
            h.update((part.len() as u64).to_le_bytes());
            h.update(part);
        }
    }
    hex::encode(h.finalize())
}

impl Service {
    fn key_fingerprint(&self) -> String {
        match std::fs::read(self.home.key_file()) {
            Ok(k) => hex::encode(Sha256::digest(&k))[..16].to_string(),
            Err(_) => "none".into(),
        }
    }

    fn report(
        &self,
        file: &std::path::Path,
        records: &[RawRecord],
        warning: Option<String>,
    ) -> BackupReport {
        let count = |t: TreeId| records.iter().filter(|(id, _, _)| *id == t).count();
        BackupReport {
            file: file.display().to_string(),
            records: records.len(),
            stacks: count(TreeId::Stacks),
            components: count(TreeId::Components),
            flavors: count(TreeId::Flavors),
            secrets: count(TreeId::Secrets),
            warning,
        }
    }

    /// Writes the whole store to `file` (0600: it holds sealed secrets).
    pub fn backup(&self, file: &std::path::Path, force: bool) -> Result<BackupReport> {
        let at = self.resolve(file);
        if at.exists() && !force {
            return Err(Error::exists(
                format!("file `{}`", file.display()),
                "give another file, or pass --force to overwrite it",
            ));
        }
        let records = self.store.dump()?;
        let body = BackupFile {
            strata_backup: BACKUP_FORMAT,
            strata_version: env!("CARGO_PKG_VERSION").into(),
            created_at: now_ms(),
            secret_key: self.key_fingerprint(),
            sha256: digest(&records),
            records: records
                .iter()
                .map(|(t, k, v)| BackupRecord {
                    tree: t.name().into(),
                    key: String::from_utf8_lossy(k).into_owned(),
                    value: hex::encode(v),
                })
                .collect(),
        };
        let text = serde_json::to_vec(&body).expect("invariant: a backup serializes");
        write_private(&at, &text)?;
        Ok(self.report(file, &records, None))
    }

    /// Replaces the whole store with the backup in `file`. Refused, with nothing
    /// changed, if any record fails a check, or (without `force`) if this home holds
    /// anything beyond what `init` creates.
    pub fn restore(&self, file: &std::path::Path, force: bool) -> Result<BackupReport> {
        if self.runs_under_way() > 0 {
            return Err(Error::Busy {
                what: "a pipeline run is under way on this home".into(),
                hint:
                    "wait for it to end, or cancel it (`strata pipeline cancel RUN`), then restore"
                        .into(),
            });
        }
        let bad = |why: String| {
            Error::invalid(
                format!("`{}` is not a usable strata backup: {why}", file.display()),
                "give a file written by `strata backup FILE`, unchanged",
            )
        };
        let text = std::fs::read(self.resolve(file)).map_err(|e| {
            Error::invalid(
                format!("cannot read `{}`: {e}", file.display()),
                "give a file written by `strata backup FILE`",
            )
        })?;
        let body: BackupFile =
            serde_json::from_slice(&text).map_err(|e| bad(format!("it does not parse ({e})")))?;
        if body.strata_backup > BACKUP_FORMAT {
            return Err(bad(format!(
                "it is in backup format {} (strata {}); this strata reads format {BACKUP_FORMAT}",
                body.strata_backup, body.strata_version
            )));
        }
        let mut records = Vec::with_capacity(body.records.len());
        for r in &body.records {
            let tree = TreeId::from_name(&r.tree)
                .filter(|t| *t != TreeId::Compiled)
                .ok_or_else(|| bad(format!("unknown tree `{}`", r.tree)))?;
            let value = hex::decode(&r.value)
                .map_err(|_| bad(format!("the value of {}/{} is not hex", r.tree, r.key)))?;
            records.push((tree, r.key.as_bytes().to_vec(), value));
        }
        if digest(&records) != body.sha256 {
            return Err(bad(
                "its checksum does not match its records (truncated or edited?)".into(),
            ));
        }
        for (t, k, v) in &records {
            let key = String::from_utf8_lossy(k);
            if *t == TreeId::Blobs {
                if hex::encode(Sha256::digest(v)) != key {
                    return Err(bad(format!(
                        "flavor code blobs/{key} does not match its sha256"
                    )));
                }
            } else if let Err(e) = codec::decode::<serde_json::Value>(v) {
                return Err(bad(format!("record {}/{key}: {e}", t.name())));
            }
        }
        let schema = records
            .iter()
            .find(|(t, k, _)| *t == TreeId::Meta && k == meta::SCHEMA_VERSION.as_bytes())
            .and_then(|(_, _, v)| codec::decode::<u32>(v).ok());
        // Version 1 differs only in where flavor code lives, which restore decides.
        if !schema.is_some_and(|v| (1..=SCHEMA_VERSION).contains(&v)) {
            return Err(bad(format!(
                "its store schema is {schema:?}; this strata reads versions 1 to {SCHEMA_VERSION}"
            )));
        }
        // Every flavor's code must be in the file: a flavor restored without it could
        // never run.
        let blobs: std::collections::BTreeSet<&[u8]> = records
            .iter()
            .filter(|(t, _, _)| *t == TreeId::Blobs)
            .map(|(_, k, _)| k.as_slice())
            .collect();
        for (t, k, v) in &records {
            if *t != TreeId::Flavors {
                continue;
            }
            let f: crate::model::FlavorRecord = codec::decode(v).map_err(|e| {
                bad(format!(
                    "record flavors/{}: {e}",
                    String::from_utf8_lossy(k)
                ))
            })?;
            if !blobs.contains(f.sha256.as_bytes()) {
                return Err(bad(format!(
                    "flavor {} has no code in it (blobs/{})",
                    String::from_utf8_lossy(k),
                    f.sha256
                )));
            }
        }
        if !force {
            let mut held = Vec::new();
            let stacks = self.store.stacks()?;
            held.extend(
                stacks
                    .iter()
                    .filter(|s| s.name != DEFAULT_NAME)
                    .map(|s| format!("stack `{}`", s.name)),
            );
            let comps = self.store.components(None)?;
            held.extend(
                comps
                    .iter()
                    .filter(|c| c.name != DEFAULT_NAME)
                    .map(|c| format!("{} `{}`", c.component_type.label(), c.name)),
            );
            let secrets = self.secret_list()?;
            held.extend(secrets.iter().map(|s| format!("secret `{}`", s.name)));
            held.extend(
                self.store
                    .flavors(None)?
                    .iter()
                    .filter(|f| !f.is_builtin())
                    .map(|f| format!("{} flavor `{}`", f.info.component_type.label(), f.info.name)),
            );
            if !held.is_empty() {
                let shown: Vec<String> = held.iter().take(5).cloned().collect();
                return Err(Error::invalid(
                    format!(
                        "this home holds {} that the restore would replace: {}{}",
                        super::flavors::plural(held.len(), "thing"),
                        shown.join(", "),
                        if held.len() > 5 { ", …" } else { "" }
                    ),
                    "back it up first with `strata backup FILE`, then pass --force to replace it",
                ));
            }
        }
        let warning = (body.secret_key != "none"
            && body.secret_key != self.key_fingerprint()
            && records.iter().any(|(t, _, _)| *t == TreeId::Secrets))
        .then(|| {
            format!(
                "the secrets were sealed with another secret.key (fingerprint {}); they open only with that key: copy it to {}",
                body.secret_key,
                self.home.key_file().display()
            )
        });
        // The store is at this strata's schema whatever the file says: a version 1
        // backup's flavor code goes to files like any other.
        for (t, k, v) in &mut records {
            if *t == TreeId::Meta && k.as_slice() == meta::SCHEMA_VERSION.as_bytes() {
                *v = codec::encode(&SCHEMA_VERSION);
            }
        }
        self.store.replace_all(records.clone())?;
        // Built-in flavors of this binary, if the backup came from another version.
        self.ensure_initialized()?;
        // A run the backup caught under way is not under way here: interrupted.
        self.recover_runs()?;
        Ok(self.report(file, &records, warning))
    }
}

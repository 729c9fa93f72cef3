//! Files in an artifact store, through its flavor's `artifact-store` interface:
//! `strata artifact-store put|get|ls|rm` and their REST routes. The same calls a
//! pipeline's steps will make, so a store can be tried, filled and emptied by hand.
//!
//! A file goes to the flavor in calls of at most [`WRITE_CHUNK`] bytes (the first
//! `truncate` or `create-new`, the rest `append`, through a temporary file renamed over
//! the path) and comes back in calls of at most [`READ_CHUNK`], up to
//! [`PARALLEL_READS`] at once, each a fresh instance bounded like every call.

#[allow(unused_imports)]
use strata_api::views::*;

use super::Service;
use super::lifecycle::Bound;
use crate::error::{Error, Result};
use crate::model::{ComponentRecord, ComponentType, Phase};
use crate::sandbox::Called;
use crate::sandbox::calls::WriteMode;

/// The most bytes one `write` call carries: a file this size or smaller is one call.
/// Larger files are appended to in calls of this size (for S3, each append is a
/// server-side copy of what is there: keep artifacts under it where you can).
pub const WRITE_CHUNK: usize = 64 * 1024 * 1024;
/// The most bytes one `read` call returns.
pub const READ_CHUNK: u64 = 16 * 1024 * 1024;
/// How many `read` calls `get` makes at once.
pub const PARALLEL_READS: usize = 4;
/// The largest file `put` and `get` move: they hold it in memory.
pub const MAX_ARTIFACT_BYTES: u64 = 1024 * 1024 * 1024;

impl Service {
    /// The artifact store `name`, bound for calls, after checking it exports the
    /// interface and is provisioned.
    fn store_bound(&self, c: &ComponentRecord) -> Result<(Bound, String)> {
        let t = ComponentType::ArtifactStore;
        let b = self.bind(c, false)?;
        let subject = format!("{} `{}` (flavor `{}`)", t.label(), c.name, b.f.info.name);
        if !b.loaded.exports_artifact_store() {
            return Err(Error::invalid(
                format!("{subject} does not export the `artifact-store` interface"),
                "rebuild its flavor for the `artifact-store-flavor` world",
            ));
        }
        let provisioned = self.store.state(&c.id)?.is_some_and(|s| {
            matches!(
                s.phase,
                Phase::Provisioned | Phase::Resuming | Phase::Running | Phase::Suspending
            )
        });
        if !provisioned {
            return Err(Error::invalid(
                format!("{subject} is not provisioned"),
                format!("bring it up first: `strata artifact-store up {}`", c.name),
            ));
        }
        Ok((b, subject))
    }

    /// The value of one call, its logs noted, or the flavor's error as strata's.
    pub(super) fn flavor_value<T>(
        &self,
        subject: &str,
        call: &str,
        called: Called<std::result::Result<T, String>>,
    ) -> Result<T> {
        self.note_logs(
            &format!("{subject} {call}"),
            &called.logs,
            called.dropped_logs,
        );
        called.value.map_err(|message| Error::Flavor {
            subject: subject.to_string(),
            call: call.to_string(),
            message,
        })
    }

    /// Writes `data` to `path` in the store `name`; an existing file is replaced only
    /// if `overwrite`.
    pub fn artifact_put(
        &self,
        name: &str,
        path: &str,
        data: &[u8],
        overwrite: bool,
    ) -> Result<ArtifactView> {
        check_path(path)?;
        if data.len() as u64 > MAX_ARTIFACT_BYTES {
            return Err(too_large(data.len() as u64));
        }
        self.as_call(ComponentType::ArtifactStore, name, "write", |c| {
            let (b, subject) = self.store_bound(c)?;
            let target = b.target(self.sandbox()?);
            let started = std::time::Instant::now();
            let mode = if overwrite {
                WriteMode::Truncate
            } else {
                WriteMode::CreateNew
            };
            // One call writes the file whole. A larger one is written to a temporary file
            // first, then renamed over `path`: a failure on the way leaves the old file (or
            // none) as it was, and the temporary one is removed.
            let size = if data.len() <= WRITE_CHUNK {
                let size = self.flavor_value(
                    &subject,
                    "write",
                    target.store_write(&b.ctx, path, data, mode)?,
                )?;
                check_size(&subject, path, size, data.len())?;
                size
            } else {
                if !overwrite
                    && self.flavor_value(&subject, "exists", target.store_exists(&b.ctx, path)?)?
                {
                    return Err(Error::exists(
                        format!("`{path}` in {subject}"),
                        "put it with --overwrite to replace it, or choose another path",
                    ));
                }
                let partial = format!("{path}.strata-partial-{}", super::new_id());
                let written = (|| {
                    let mut size = 0;
                    for (i, chunk) in data.chunks(WRITE_CHUNK).enumerate() {
                        let mode = if i == 0 {
                            WriteMode::CreateNew
                        } else {
                            WriteMode::Append
                        };
                        size = self.flavor_value(
                            &subject,
                            "write",
                            target.store_write(&b.ctx, &partial, chunk, mode)?,
                        )?;
                    }
                    check_size(&subject, &partial, size, data.len())?;
                    self.flavor_value(
                        &subject,
                        "rename",
                        target.store_rename(&b.ctx, &partial, path, overwrite)?,
                    )?;
                    Ok(size)
                })();
                if written.is_err() {
                    let _ = target.store_remove(&b.ctx, &partial, false);
                }
                written?
            };
            Ok(ArtifactView {
                store: name.to_string(),
                path: path.to_string(),
                size,
                is_dir: false,
                modified_ms: None,
                elapsed_ms: started.elapsed().as_millis() as u64,
            })
        })
    }

    /// The whole file at `path` in the store `name`.
    pub fn artifact_get(&self, name: &str, path: &str) -> Result<Vec<u8>> {
        check_path(path)?;
        self.as_call(ComponentType::ArtifactStore, name, "read", |c| {
            let (mut b, subject) = self.store_bound(c)?;
            // A read returns up to READ_CHUNK bytes: let the call carry them back.
            b.limits.max_return_bytes = b.limits.max_return_bytes.max(READ_CHUNK + 64 * 1024);
            let target = b.target(self.sandbox()?);
            let stat = self.flavor_value(&subject, "stat", target.store_stat(&b.ctx, path)?)?;
            if stat.is_dir {
                return Err(Error::invalid(
                    format!("`{path}` in {subject} is a directory"),
                    format!("list it with `strata artifact-store ls {name} {path}`"),
                ));
            }
            if stat.size > MAX_ARTIFACT_BYTES {
                return Err(too_large(stat.size));
            }
            // The file as `stat` found it, in chunks of READ_CHUNK read by up to
            // PARALLEL_READS calls at once (each a fresh instance, as every call): a store
            // whose server answers each request at its own pace (S3) is read that much
            // faster. Each chunk must come back whole; a file that shrank meanwhile fails.
            let size = stat.size;
            let chunks = size.div_ceil(READ_CHUNK) as usize;
            let parts: Vec<std::sync::Mutex<Option<Vec<u8>>>> =
                (0..chunks).map(|_| std::sync::Mutex::new(None)).collect();
            let next = std::sync::atomic::AtomicUsize::new(0);
            let failed: std::sync::Mutex<Option<Error>> = std::sync::Mutex::new(None);
            std::thread::scope(|scope| {
                for _ in 0..PARALLEL_READS.min(chunks) {
                    scope.spawn(|| {
                        loop {
                            let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                            if i >= chunks || failed.lock().is_ok_and(|f| f.is_some()) {
                                return;
                            }
                            let offset = i as u64 * READ_CHUNK;
                            let want = READ_CHUNK.min(size - offset);
                            let got = target
                                .store_read(&b.ctx, path, offset, want)
                                .and_then(|called| self.flavor_value(&subject, "read", called))
                                .and_then(|chunk| {
                                    if chunk.len() as u64 == want {
                                        Ok(chunk)
                                    } else {
                                        Err(Error::Flavor {
                                            subject: subject.clone(),
                                            call: "read".into(),
                                            message: format!(
                                                "`{path}` changed while it was read: {want} bytes at {offset} were asked, {} came back; get it again",
                                                chunk.len()
                                            ),
                                        })
                                    }
                                });
                            match got {
                                Ok(chunk) => {
                                    if let Ok(mut slot) = parts[i].lock() {
                                        *slot = Some(chunk);
                                    }
                                }
                                Err(e) => {
                                    if let Ok(mut f) = failed.lock() {
                                        f.get_or_insert(e);
                                    }
                                    return;
                                }
                            }
                        }
                    });
                }
            });
            if let Some(e) = failed.into_inner().ok().flatten() {
                return Err(e);
            }
            let mut out: Vec<u8> = Vec::new();
            out.try_reserve_exact(size as usize)
                .map_err(|_| Error::Internal("no memory left to hold the file".into()))?;
            for part in parts {
                let chunk = part
                    .into_inner()
                    .ok()
                    .flatten()
                    .ok_or_else(|| Error::Internal("a chunk of the file was not read".into()))?;
                out.extend_from_slice(&chunk);
            }
            Ok(out)
        })
    }

    /// The entries of the directory `path` (`""`: the root) of the store `name`.
    pub fn artifact_list(&self, name: &str, path: &str) -> Result<Vec<ArtifactEntry>> {
        if !path.is_empty() {
            check_path(path)?;
        }
        self.as_call(ComponentType::ArtifactStore, name, "list", |c| {
            let (b, subject) = self.store_bound(c)?;
            let target = b.target(self.sandbox()?);
            let entries = self.flavor_value(&subject, "list", target.store_list(&b.ctx, path)?)?;
            Ok(entries
                .into_iter()
                .map(|e| ArtifactEntry {
                    name: e.name,
                    is_dir: e.is_dir,
                })
                .collect())
        })
    }

    /// Size, kind and time of `path` in the store `name`.
    pub fn artifact_stat(&self, name: &str, path: &str) -> Result<ArtifactView> {
        check_path(path)?;
        self.as_call(ComponentType::ArtifactStore, name, "stat", |c| {
            let (b, subject) = self.store_bound(c)?;
            let target = b.target(self.sandbox()?);
            let started = std::time::Instant::now();
            let st = self.flavor_value(&subject, "stat", target.store_stat(&b.ctx, path)?)?;
            Ok(ArtifactView {
                store: name.to_string(),
                path: path.to_string(),
                size: st.size,
                is_dir: st.is_dir,
                modified_ms: st.modified_ms,
                elapsed_ms: started.elapsed().as_millis() as u64,
            })
        })
    }

    /// Removes `path` from the store `name` (a non-empty directory only if `recursive`).
    pub fn artifact_remove(&self, name: &str, path: &str, recursive: bool) -> Result<()> {
        check_path(path)?;
        self.as_call(ComponentType::ArtifactStore, name, "remove", |c| {
            let (b, subject) = self.store_bound(c)?;
            let target = b.target(self.sandbox()?);
            self.flavor_value(
                &subject,
                "remove",
                target.store_remove(&b.ctx, path, recursive)?,
            )
        })
    }
}

/// A path inside a store: relative, `/`-separated, no `.` or `..` part, no empty part.
/// The flavor checks it again; this names the mistake before any call.
pub fn check_path(path: &str) -> Result<()> {
    let bad = path.is_empty()
        || path.starts_with('/')
        || path.len() > 1024
        || path.chars().any(char::is_control)
        || path
            .split('/')
            .any(|part| part.is_empty() || part == "." || part == "..");
    if bad {
        return Err(Error::invalid(
            format!("`{path}` is not a path inside an artifact store"),
            "give a relative path of names separated by `/`, without `.`, `..` or empty parts: `models/v1/model.pkl`",
        ));
    }
    Ok(())
}

/// A flavor that says the file holds another size than what was written is wrong.
fn check_size(subject: &str, path: &str, size: u64, written: usize) -> Result<()> {
    if size == written as u64 {
        return Ok(());
    }
    Err(Error::Flavor {
        subject: subject.to_string(),
        call: "write".into(),
        message: format!("it says `{path}` holds {size} bytes after writing {written}"),
    })
}

fn too_large(size: u64) -> Error {
    Error::invalid(
        format!(
            "the file is {size} bytes, more than the {} MiB `put` and `get` move",
            MAX_ARTIFACT_BYTES >> 20
        ),
        "move it with the store's own tools (for S3: `aws s3 cp`)",
    )
}

//! The artifact-store operations, on the real file system below the store's root.
//!
//! Everything here is plain `std::fs`, so it runs (and is unit-tested) natively as well as
//! inside the sandbox, where the root is the one directory strata preopens.

use std::fs::{self, File, OpenOptions};
use std::hash::{BuildHasher, Hasher, RandomState};
use std::io::{self, ErrorKind, Read, Seek, SeekFrom, Write};
use std::path::{Component, Path, PathBuf};
use std::time::UNIX_EPOCH;

use strata_flavor_sdk::resolve_inside;

/// The marker file `provision` writes at the root. Every name at the root that starts
/// with it (the marker's temporary copy, write probes) is reserved too: refused as an
/// argument and hidden from listings.
pub const MARKER: &str = ".strata-artifact-store";

/// The prefix of the temporary files a write or a copy fills before moving them into
/// place, so that a call cut short never leaves a half-written file under the real name.
/// Reserved anywhere in the store and hidden from listings.
pub const PARTIAL_PREFIX: &str = ".strata-partial-";

/// Facts about one file or directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stat {
    /// Size in bytes (0 for a directory).
    pub size: u64,
    /// Whether it is a directory.
    pub is_dir: bool,
    /// Last modification, in milliseconds since the Unix epoch, if known.
    pub modified_ms: Option<u64>,
}

/// One entry of a directory listing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// The entry's file name.
    pub name: String,
    /// Whether it is a directory (a link to a directory counts as one).
    pub is_dir: bool,
}

/// How `write` treats a file that already exists.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Fail if the file exists.
    CreateNew,
    /// Replace the file's contents.
    Truncate,
    /// Add to the end of the file, creating it if needed.
    Append,
}

/// An artifact store rooted at one absolute directory.
#[derive(Debug, Clone)]
pub struct Store {
    root: PathBuf,
}

impl Store {
    /// A store rooted at `root`, the value of the `path` field.
    ///
    /// # Errors
    /// A message if `root` has a URL scheme, is not absolute, or holds a NUL byte.
    pub fn new(root: &str) -> Result<Store, String> {
        check_root(root)?;
        Ok(Store {
            root: PathBuf::from(root),
        })
    }

    /// The store's root directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Maps `rel` to its location, refusing paths that leave the root and reserved names.
    fn locate(&self, rel: &str) -> Result<PathBuf, String> {
        let path = resolve_inside(&self.root, rel)?;
        let inside = path.strip_prefix(&self.root).unwrap_or(Path::new(""));
        for (depth, component) in inside.components().enumerate() {
            if let Component::Normal(name) = component {
                let name = name.to_string_lossy();
                if depth == 0 && name.starts_with(MARKER) {
                    return Err(format!(
                        "path `{rel}` is reserved: `{MARKER}` is the marker strata keeps at \
                         the root of the store; choose another name"
                    ));
                }
                if name.starts_with(PARTIAL_PREFIX) {
                    return Err(format!(
                        "path `{rel}` is reserved: names starting with `{PARTIAL_PREFIX}` are \
                         the store's unfinished writes; choose another name"
                    ));
                }
            }
        }
        Ok(path)
    }

    /// As [`Store::locate`], and refuses the root itself.
    fn locate_entry(&self, rel: &str, action: &str) -> Result<PathBuf, String> {
        let path = self.locate(rel)?;
        if path == self.root {
            return Err(format!(
                "cannot {action} the root of the store ({}): give a path inside it",
                self.root.display()
            ));
        }
        Ok(path)
    }

    /// Whether `rel` exists.
    ///
    /// # Errors
    /// A refused path, or a file system error naming the path.
    pub fn exists(&self, rel: &str) -> Result<bool, String> {
        let path = self.locate(rel)?;
        path.try_exists()
            .map_err(|err| failure("check whether", rel, &path, &err))
    }

    /// Size, kind and modification time of `rel`.
    ///
    /// # Errors
    /// A refused path, a missing entry, or another file system error naming the path.
    pub fn stat(&self, rel: &str) -> Result<Stat, String> {
        let path = self.locate(rel)?;
        let metadata = fs::metadata(&path).map_err(|err| failure("stat", rel, &path, &err))?;
        let is_dir = metadata.is_dir();
        Ok(Stat {
            size: if is_dir { 0 } else { metadata.len() },
            is_dir,
            modified_ms: metadata
                .modified()
                .ok()
                .and_then(|time| time.duration_since(UNIX_EPOCH).ok())
                .and_then(|since| u64::try_from(since.as_millis()).ok()),
        })
    }

    /// Up to `length` bytes of the file `rel`, from byte `offset`; fewer (or none) at the
    /// end of the file.
    ///
    /// # Errors
    /// A refused path, a directory, a missing file, or another file system error naming
    /// the path.
    pub fn read(&self, rel: &str, offset: u64, length: u64) -> Result<Vec<u8>, String> {
        let path = self.locate(rel)?;
        let mut file = File::open(&path).map_err(|err| failure("read", rel, &path, &err))?;
        let metadata = file
            .metadata()
            .map_err(|err| failure("read", rel, &path, &err))?;
        if metadata.is_dir() {
            return Err(format!(
                "cannot read `{rel}` ({}): it is a directory; list it instead",
                path.display()
            ));
        }
        let available = metadata.len().saturating_sub(offset);
        let wanted = length.min(available);
        if wanted == 0 {
            return Ok(Vec::new());
        }
        file.seek(SeekFrom::Start(offset))
            .map_err(|err| failure("read", rel, &path, &err))?;
        let mut data = Vec::with_capacity(usize::try_from(wanted.min(1 << 20)).unwrap_or(0));
        file.take(wanted)
            .read_to_end(&mut data)
            .map_err(|err| failure("read", rel, &path, &err))?;
        Ok(data)
    }

    /// Writes `data` to the file `rel`, creating parent directories, and returns the
    /// file's size afterwards.
    ///
    /// `CreateNew` and `Truncate` fill a temporary file beside the target and move it into
    /// place, so the file is either as before or completely written, even if the call is
    /// cut short. `Append` adds to the file in place.
    ///
    /// # Errors
    /// A refused path, an existing file with `CreateNew`, a directory in the way, or
    /// another file system error naming the path.
    pub fn write(&self, rel: &str, data: &[u8], mode: Mode) -> Result<u64, String> {
        let path = self.locate_entry(rel, "write to")?;
        if path.is_dir() {
            return Err(format!(
                "cannot write `{rel}` ({}): it is a directory; give a file path",
                path.display()
            ));
        }
        if mode == Mode::CreateNew && existing(&path, rel)?.is_some() {
            return Err(format!(
                "cannot create `{rel}` ({}): it already exists; write it with mode \
                 `truncate` to replace it, or remove it first",
                path.display()
            ));
        }
        let parent = self.make_parents(rel, &path)?;
        match mode {
            Mode::Append => {
                let mut file = OpenOptions::new()
                    .append(true)
                    .create(true)
                    .open(&path)
                    .map_err(|err| failure("append to", rel, &path, &err))?;
                file.write_all(data)
                    .map_err(|err| failure("append to", rel, &path, &err))?;
            }
            Mode::Truncate | Mode::CreateNew => {
                let partial = fill_partial(&parent, |file| file.write_all(data))
                    .map_err(|err| failure("write", rel, &path, &err))?;
                finish_partial(&partial, &path, mode == Mode::Truncate).map_err(|err| {
                    if err.kind() == ErrorKind::AlreadyExists {
                        format!(
                            "cannot create `{rel}` ({}): it already exists; write it with \
                             mode `truncate` to replace it, or remove it first",
                            path.display()
                        )
                    } else {
                        failure("write", rel, &path, &err)
                    }
                })?;
            }
        }
        fs::metadata(&path)
            .map(|metadata| metadata.len())
            .map_err(|err| failure("stat", rel, &path, &err))
    }

    /// The entries of the directory `rel` (`""` for the root), sorted by name, without
    /// strata's marker and unfinished writes.
    ///
    /// # Errors
    /// A refused path, a file, a missing directory, or another file system error naming
    /// the path.
    pub fn list(&self, rel: &str) -> Result<Vec<Entry>, String> {
        let path = self.locate(rel)?;
        if path.is_file() {
            return Err(format!(
                "cannot list `{rel}` ({}): it is a file, not a directory",
                path.display()
            ));
        }
        let at_root = path == self.root;
        let mut entries = Vec::new();
        for entry in fs::read_dir(&path).map_err(|err| failure("list", rel, &path, &err))? {
            let entry = entry.map_err(|err| failure("list", rel, &path, &err))?;
            let name = entry.file_name().to_string_lossy().into_owned();
            if (at_root && name.starts_with(MARKER)) || name.starts_with(PARTIAL_PREFIX) {
                continue;
            }
            let is_dir = match entry.file_type() {
                Ok(kind) if kind.is_symlink() => entry.path().is_dir(),
                Ok(kind) => kind.is_dir(),
                Err(_) => entry.path().is_dir(),
            };
            entries.push(Entry { name, is_dir });
        }
        entries.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(entries)
    }

    /// Creates the directory `rel` and its missing parents; succeeds if it exists.
    ///
    /// # Errors
    /// A refused path, a file in the way, or another file system error naming the path.
    pub fn makedirs(&self, rel: &str) -> Result<(), String> {
        let path = self.locate(rel)?;
        if path.is_file() {
            return Err(format!(
                "cannot create directory `{rel}` ({}): a file of that name exists",
                path.display()
            ));
        }
        fs::create_dir_all(&path).map_err(|err| failure("create directory", rel, &path, &err))
    }

    /// Removes the file or directory `rel`; a non-empty directory only if `recursive`.
    /// The root itself is refused.
    ///
    /// # Errors
    /// A refused path, a missing entry, a non-empty directory without `recursive`, or
    /// another file system error naming the path.
    pub fn remove(&self, rel: &str, recursive: bool) -> Result<(), String> {
        let path = self.locate_entry(rel, "remove")?;
        let metadata =
            fs::symlink_metadata(&path).map_err(|err| failure("remove", rel, &path, &err))?;
        let result = if !metadata.is_dir() {
            fs::remove_file(&path)
        } else if recursive {
            fs::remove_dir_all(&path)
        } else {
            fs::remove_dir(&path)
        };
        result.map_err(|err| {
            if metadata.is_dir() && !recursive && is_not_empty(&err, &path) {
                format!(
                    "cannot remove directory `{rel}` ({}): it is not empty; remove it \
                     recursively, or remove its contents first",
                    path.display()
                )
            } else {
                failure("remove", rel, &path, &err)
            }
        })
    }

    /// Moves `source` to `destination`, creating the destination's parents. An existing
    /// destination of the same kind is replaced only if `overwrite`.
    ///
    /// # Errors
    /// A refused path, a missing source, an existing destination without `overwrite`, a
    /// file and a directory in each other's place, a directory moved into itself, or
    /// another file system error naming the paths.
    pub fn rename(&self, source: &str, destination: &str, overwrite: bool) -> Result<(), String> {
        let from = self.locate_entry(source, "move")?;
        let to = self.locate_entry(destination, "replace")?;
        let from_meta =
            fs::symlink_metadata(&from).map_err(|err| failure("move", source, &from, &err))?;
        if from == to {
            return Ok(());
        }
        if from_meta.is_dir() && to.starts_with(&from) {
            return Err(format!(
                "cannot move directory `{source}` into itself (to `{destination}`)"
            ));
        }
        if let Some(to_meta) = existing(&to, destination)? {
            if !overwrite {
                return Err(exists_error(destination, &to));
            }
            match (from_meta.is_dir(), to_meta.is_dir()) {
                (false, true) => {
                    return Err(format!(
                        "cannot replace directory `{destination}` ({}) with file `{source}`: \
                         remove the directory first",
                        to.display()
                    ));
                }
                (true, false) => {
                    return Err(format!(
                        "cannot replace file `{destination}` ({}) with directory `{source}`: \
                         remove the file first",
                        to.display()
                    ));
                }
                (true, true) => fs::remove_dir_all(&to)
                    .map_err(|err| failure("replace", destination, &to, &err))?,
                (false, false) => {}
            }
        }
        self.make_parents(destination, &to)?;
        let moved = if overwrite || from_meta.is_dir() {
            fs::rename(&from, &to)
        } else {
            move_no_clobber(&from, &to)
        };
        moved.map_err(|err| {
            if err.kind() == ErrorKind::AlreadyExists {
                exists_error(destination, &to)
            } else {
                format!(
                    "could not move `{source}` ({}) to `{destination}` ({}): {}",
                    from.display(),
                    to.display(),
                    cause(&err)
                )
            }
        })
    }

    /// Copies the file `source` to `destination`, creating the destination's parents. An
    /// existing destination file is replaced only if `overwrite`. The copy is filled
    /// under a temporary name and moved into place.
    ///
    /// # Errors
    /// A refused path, a missing source, a directory as source or destination, an
    /// existing destination without `overwrite`, or another file system error naming the
    /// paths.
    pub fn copy(&self, source: &str, destination: &str, overwrite: bool) -> Result<(), String> {
        let from = self.locate_entry(source, "copy")?;
        let to = self.locate_entry(destination, "replace")?;
        let from_meta = fs::metadata(&from).map_err(|err| failure("copy", source, &from, &err))?;
        if from_meta.is_dir() {
            return Err(format!(
                "cannot copy `{source}` ({}): it is a directory, and copy copies files only; \
                 create the directory and copy its files one by one",
                from.display()
            ));
        }
        if let Some(to_meta) = existing(&to, destination)? {
            if to_meta.is_dir() {
                return Err(format!(
                    "cannot copy to `{destination}` ({}): it is a directory; give the path \
                     of the new file",
                    to.display()
                ));
            }
            if !overwrite {
                return Err(exists_error(destination, &to));
            }
        }
        let parent = self.make_parents(destination, &to)?;
        let mut input = File::open(&from).map_err(|err| failure("copy", source, &from, &err))?;
        let partial =
            fill_partial(&parent, |file| io::copy(&mut input, file).map(drop)).map_err(|err| {
                format!(
                    "could not copy `{source}` ({}) to `{destination}` ({}): {}",
                    from.display(),
                    to.display(),
                    cause(&err)
                )
            })?;
        finish_partial(&partial, &to, overwrite).map_err(|err| {
            if err.kind() == ErrorKind::AlreadyExists {
                exists_error(destination, &to)
            } else {
                failure("copy to", destination, &to, &err)
            }
        })
    }

    /// Creates the missing parents of `path` (which names `rel`) and returns its parent.
    fn make_parents(&self, rel: &str, path: &Path) -> Result<PathBuf, String> {
        let parent = path.parent().unwrap_or(&self.root).to_path_buf();
        fs::create_dir_all(&parent).map_err(|err| {
            format!(
                "could not create the parent directories of `{rel}` ({}): {}",
                parent.display(),
                cause(&err)
            )
        })?;
        Ok(parent)
    }
}

/// Checks the value of the `path` field: a plain, absolute local path.
///
/// # Errors
/// A message naming the value and what is wrong with it.
pub fn check_root(root: &str) -> Result<(), String> {
    if root.contains('\0') {
        return Err(format!(
            "path {root:?} contains a NUL byte, which no file name can hold"
        ));
    }
    if let Some((scheme, _)) = root.split_once("://") {
        return Err(format!(
            "path `{root}` has a URL scheme (`{scheme}://`): the local artifact store keeps \
             artifacts in a directory of this machine; give a plain absolute path, or use a \
             flavor that supports `{scheme}`"
        ));
    }
    if !Path::new(root).is_absolute() {
        return Err(format!(
            "path `{root}` is not absolute: give the full path of the directory, starting \
             with `/`"
        ));
    }
    Ok(())
}

/// A name for a temporary file that no other call is likely to pick at the same moment.
pub fn unique_suffix() -> String {
    // Each `RandomState` gets fresh keys, from a seed drawn at random once per instance,
    // so hashing a constant gives a different value on every call and in every instance.
    let mut hasher = RandomState::new().build_hasher();
    hasher.write_u8(0);
    format!("{:016x}", hasher.finish())
}

/// Creates a temporary file in `dir`, lets `fill` write it, and returns its path. The file
/// is removed if anything fails.
fn fill_partial(dir: &Path, fill: impl FnOnce(&mut File) -> io::Result<()>) -> io::Result<PathBuf> {
    let partial = dir.join(format!("{PARTIAL_PREFIX}{}", unique_suffix()));
    let result = OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&partial)
        .and_then(|mut file| {
            fill(&mut file)?;
            file.flush()
        });
    match result {
        Ok(()) => Ok(partial),
        Err(err) => {
            let _ = fs::remove_file(&partial);
            Err(err)
        }
    }
}

/// Moves the finished temporary file `partial` to `target`, replacing it if `replace`,
/// otherwise failing with `AlreadyExists` if it exists. The temporary file is removed if
/// the move fails.
fn finish_partial(partial: &Path, target: &Path, replace: bool) -> io::Result<()> {
    let result = if replace {
        fs::rename(partial, target)
    } else {
        move_no_clobber(partial, target)
    };
    if result.is_err() {
        let _ = fs::remove_file(partial);
    }
    result
}

/// Moves the file `from` to `to` unless `to` exists (`AlreadyExists`). Uses a hard link,
/// which cannot replace anything, where the file system has them; elsewhere checks first.
fn move_no_clobber(from: &Path, to: &Path) -> io::Result<()> {
    match fs::hard_link(from, to) {
        Ok(()) => fs::remove_file(from),
        Err(err) if err.kind() == ErrorKind::AlreadyExists => Err(err),
        Err(_) => {
            if fs::symlink_metadata(to).is_ok() {
                Err(io::Error::from(ErrorKind::AlreadyExists))
            } else {
                fs::rename(from, to)
            }
        }
    }
}

/// The metadata of `path` (which names `rel`) if it exists.
fn existing(path: &Path, rel: &str) -> Result<Option<fs::Metadata>, String> {
    match fs::symlink_metadata(path) {
        Ok(metadata) => Ok(Some(metadata)),
        Err(err) if err.kind() == ErrorKind::NotFound => Ok(None),
        Err(err) => Err(failure("check whether", rel, path, &err)),
    }
}

/// Whether `err`, from removing the directory `path`, means it was not empty.
fn is_not_empty(err: &io::Error, path: &Path) -> bool {
    err.kind() == ErrorKind::DirectoryNotEmpty
        || fs::read_dir(path).is_ok_and(|mut entries| entries.next().is_some())
}

/// The message for a destination that exists when it may not be replaced.
fn exists_error(rel: &str, path: &Path) -> String {
    format!(
        "destination `{rel}` ({}) already exists: pass overwrite to replace it, or choose \
         another name",
        path.display()
    )
}

/// The message for a failed operation: what was done to which path, and why it failed.
fn failure(action: &str, rel: &str, path: &Path, err: &io::Error) -> String {
    let what = if rel.is_empty() {
        "the root of the store".to_string()
    } else {
        format!("`{rel}`")
    };
    format!(
        "could not {action} {what} ({}): {}",
        path.display(),
        cause(err)
    )
}

/// A short, readable cause for an I/O error.
pub fn cause(err: &io::Error) -> String {
    match err.kind() {
        ErrorKind::NotFound => "it does not exist".to_string(),
        ErrorKind::PermissionDenied => {
            "permission denied (by the file system, or by the sandbox if the path is outside \
             the store)"
                .to_string()
        }
        ErrorKind::AlreadyExists => "it already exists".to_string(),
        ErrorKind::NotADirectory => "a part of the path is a file, not a directory".to_string(),
        ErrorKind::IsADirectory => "it is a directory".to_string(),
        ErrorKind::StorageFull => "the disk is full".to_string(),
        ErrorKind::ReadOnlyFilesystem => "the file system is read-only".to_string(),
        _ => err.to_string(),
    }
}

//! Opening a granted directory without following a symlink anywhere in its path.
//!
//! A flavor can write inside its grants, and so can plant a symlink there: with two nested
//! grants (`--root=D --cache=D/cache`) it can replace `D/cache` by a link to `/` through
//! `root`. Opening `D/cache` by name on the next call would follow that link and grant
//! the whole machine. So strata opens every granted path with `openat2` and
//! `RESOLVE_NO_SYMLINKS` or, where that cannot answer (an older kernel, a missing
//! directory to create, an error to explain), walks it from `/` one component at a time
//! with `O_NOFOLLOW` (and `O_DIRECTORY`); it refuses a symlink at any step, and hands wasmtime
//! the descriptor it ended on (through `/proc/self/fd/N`, which names exactly that open
//! directory, never a path to resolve again). What a flavor does to the names meanwhile
//! cannot change what was opened.

use std::ffi::CString;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Component, Path, PathBuf};
use std::sync::Arc;

/// A directory opened for a grant, with the absolute path the flavor knows it by.
#[derive(Clone, Debug)]
pub struct GrantedDir {
    pub path: PathBuf,
    fd: Arc<OwnedFd>,
}

impl GrantedDir {
    /// Opens `path` (absolute, without `.` or `..`) without following symlinks; with
    /// `create`, makes the directories that are missing on the way. `Ok(None)`: it does
    /// not exist (and `create` was not asked).
    pub fn open(path: &Path, create: bool) -> Result<Option<GrantedDir>, OpenError> {
        Ok(open_nofollow(path, create)?.map(|fd| GrantedDir {
            path: path.to_path_buf(),
            fd: Arc::new(fd),
        }))
    }

    /// A path that opens exactly this directory, for the WASI context.
    pub fn proc_path(&self) -> PathBuf {
        PathBuf::from(format!("/proc/self/fd/{}", self.fd.as_raw_fd()))
    }
}

/// Why a granted directory could not be opened.
#[derive(Debug)]
pub enum OpenError {
    /// The path is relative or has `.` / `..` in it.
    NotPlain,
    /// A component of the path is a symlink (`at` is the path up to it).
    Symlink {
        at: PathBuf,
    },
    /// A component of the path is not a directory.
    NotADirectory {
        at: PathBuf,
    },
    Io {
        at: PathBuf,
        error: io::Error,
    },
}

impl std::fmt::Display for OpenError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            OpenError::NotPlain => f.write_str("it is not an absolute path without `.` and `..`"),
            OpenError::Symlink { at } => write!(
                f,
                "{} is a symlink, and strata never follows a symlink into a grant",
                at.display()
            ),
            OpenError::NotADirectory { at } => write!(f, "{} is not a directory", at.display()),
            OpenError::Io { at, error } => write!(f, "cannot open {}: {error}", at.display()),
        }
    }
}

fn last_error() -> io::Error {
    io::Error::last_os_error()
}

fn open_at(dir: &OwnedFd, name: &CString) -> io::Result<OwnedFd> {
    // SAFETY: `dir` is an open descriptor we own, `name` a NUL-terminated single path
    // component; on success the returned descriptor is new and owned by no one else.
    let fd = unsafe {
        libc::openat(
            dir.as_raw_fd(),
            name.as_ptr(),
            libc::O_PATH | libc::O_DIRECTORY | libc::O_NOFOLLOW | libc::O_CLOEXEC,
        )
    };
    if fd < 0 {
        return Err(last_error());
    }
    // SAFETY: `fd` was just returned by openat and is owned by nothing else.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

fn is_symlink_at(dir: &OwnedFd, name: &CString) -> bool {
    // SAFETY: plain fstatat into a zeroed `stat` we own, not following the last link.
    unsafe {
        let mut st: libc::stat = std::mem::zeroed();
        libc::fstatat(
            dir.as_raw_fd(),
            name.as_ptr(),
            &mut st,
            libc::AT_SYMLINK_NOFOLLOW,
        ) == 0
            && (st.st_mode & libc::S_IFMT) == libc::S_IFLNK
    }
}

/// The whole path in one `openat2` with `RESOLVE_NO_SYMLINKS` (Linux 5.6 and later):
/// `None` when that cannot say (an old kernel, a filter that forbids the call, a missing
/// or symlinked component), and the walk below finds out which.
fn open_at_once(path: &Path) -> Option<OwnedFd> {
    let cpath = CString::new(path.as_os_str().as_bytes()).ok()?;
    // `struct open_how` of openat2(2), declared here (libc's is non-exhaustive).
    #[repr(C)]
    struct OpenHow {
        flags: u64,
        mode: u64,
        resolve: u64,
    }
    let how = OpenHow {
        flags: (libc::O_PATH | libc::O_DIRECTORY | libc::O_CLOEXEC) as u64,
        mode: 0,
        resolve: libc::RESOLVE_NO_SYMLINKS | libc::RESOLVE_NO_MAGICLINKS,
    };
    // SAFETY: openat2(2) with a NUL-terminated path and an `open_how` of the size passed;
    // on success the returned descriptor is new and owned by no one else.
    let fd = unsafe {
        libc::syscall(
            libc::SYS_openat2,
            libc::AT_FDCWD,
            cpath.as_ptr(),
            &how as *const OpenHow,
            std::mem::size_of::<OpenHow>(),
        )
    };
    if fd < 0 {
        return None;
    }
    // SAFETY: `fd` was just returned by openat2 and is owned by nothing else.
    Some(unsafe { OwnedFd::from_raw_fd(fd as i32) })
}

fn open_nofollow(path: &Path, create: bool) -> Result<Option<OwnedFd>, OpenError> {
    if !path.is_absolute()
        || path
            .components()
            .any(|c| matches!(c, Component::CurDir | Component::ParentDir))
    {
        return Err(OpenError::NotPlain);
    }
    if let Some(fd) = open_at_once(path) {
        return Ok(Some(fd));
    }
    let root = CString::new("/").expect("invariant: no NUL");
    // SAFETY: open of a constant path; the descriptor is owned below.
    let fd = unsafe {
        libc::open(
            root.as_ptr(),
            libc::O_PATH | libc::O_DIRECTORY | libc::O_CLOEXEC,
        )
    };
    if fd < 0 {
        return Err(OpenError::Io {
            at: "/".into(),
            error: last_error(),
        });
    }
    // SAFETY: `fd` was just returned by open and is owned by nothing else.
    let mut dir = unsafe { OwnedFd::from_raw_fd(fd) };
    let mut at = PathBuf::from("/");
    for c in path.components() {
        let Component::Normal(name) = c else {
            continue;
        };
        at.push(name);
        let cname = CString::new(name.as_bytes()).map_err(|_| OpenError::NotPlain)?;
        let next = match open_at(&dir, &cname) {
            Ok(fd) => fd,
            Err(e) if e.raw_os_error() == Some(libc::ENOENT) => {
                if !create {
                    return Ok(None);
                }
                // SAFETY: mkdirat under a directory descriptor we own, one component.
                let made = unsafe { libc::mkdirat(dir.as_raw_fd(), cname.as_ptr(), 0o777) };
                if made != 0 && last_error().raw_os_error() != Some(libc::EEXIST) {
                    return Err(OpenError::Io {
                        at,
                        error: last_error(),
                    });
                }
                open_at(&dir, &cname).map_err(|e| classify(&dir, &cname, at.clone(), e))?
            }
            Err(e) => return Err(classify(&dir, &cname, at, e)),
        };
        dir = next;
    }
    Ok(Some(dir))
}

fn classify(dir: &OwnedFd, name: &CString, at: PathBuf, error: io::Error) -> OpenError {
    match error.raw_os_error() {
        Some(libc::ENOTDIR) | Some(libc::ELOOP) if is_symlink_at(dir, name) => {
            OpenError::Symlink { at }
        }
        Some(libc::ENOTDIR) => OpenError::NotADirectory { at },
        _ => OpenError::Io { at, error },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_symlink_anywhere_in_the_path_is_refused() {
        let t = tempfile::tempdir().unwrap();
        let real = t.path().join("real");
        std::fs::create_dir_all(real.join("inner")).unwrap();
        std::os::unix::fs::symlink(&real, t.path().join("link")).unwrap();
        std::os::unix::fs::symlink("../../../..", real.join("up")).unwrap();
        assert!(
            GrantedDir::open(&real.join("inner"), false)
                .unwrap()
                .is_some()
        );
        for p in [
            t.path().join("link"),
            t.path().join("link/inner"),
            real.join("up"),
        ] {
            match GrantedDir::open(&p, true) {
                Err(OpenError::Symlink { .. }) => {}
                other => panic!("{}: {other:?}", p.display()),
            }
        }
        // Nothing was created through the link.
        assert!(!real.join("inner/x").exists());
    }

    #[test]
    fn missing_directories_are_made_only_when_asked() {
        let t = tempfile::tempdir().unwrap();
        let p = t.path().join("a/b");
        assert!(GrantedDir::open(&p, false).unwrap().is_none());
        assert!(GrantedDir::open(&p, true).unwrap().is_some());
        assert!(p.is_dir());
        assert!(matches!(
            GrantedDir::open(Path::new("relative"), false),
            Err(OpenError::NotPlain)
        ));
        assert!(matches!(
            GrantedDir::open(&t.path().join("a/../a"), false),
            Err(OpenError::NotPlain)
        ));
        std::fs::write(t.path().join("file"), b"").unwrap();
        assert!(matches!(
            GrantedDir::open(&t.path().join("file"), false),
            Err(OpenError::NotADirectory { .. })
        ));
    }

    #[test]
    fn the_opened_directory_is_the_one_walked_even_if_renamed_after() {
        let t = tempfile::tempdir().unwrap();
        let p = t.path().join("grant");
        std::fs::create_dir(&p).unwrap();
        let g = GrantedDir::open(&p, false).unwrap().unwrap();
        std::fs::rename(&p, t.path().join("moved")).unwrap();
        std::os::unix::fs::symlink("/", &p).unwrap();
        std::fs::write(t.path().join("moved/marker"), b"").unwrap();
        assert!(g.proc_path().join("marker").exists());
    }
}

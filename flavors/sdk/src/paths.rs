//! Keeping user-supplied paths inside a granted directory.

use std::path::{Component, Path, PathBuf};

/// Resolves `rel`, a path given by a user or a caller, against the directory `root`, and
/// returns the absolute location it names, which is guaranteed to be `root` or below it.
///
/// The resolution is purely lexical: nothing is read from the file system, `.` is
/// dropped and `..` removes the previous component. It refuses:
/// - a `..` that would climb above `root` (`../etc`, `a/../../b`);
/// - an absolute path that does not lie inside `root` (an absolute path inside it is
///   accepted and normalised the same way);
/// - a NUL byte anywhere, which no file name can hold;
/// - a `root` that is not absolute.
///
/// An empty `rel` (or `.`) names `root` itself. Symbolic links are not followed here:
/// inside the sandbox, the WASI host refuses any link that leaves a granted directory.
///
/// ```
/// use std::path::Path;
/// use strata_flavor_sdk::resolve_inside;
///
/// let root = Path::new("/data/store");
/// assert_eq!(resolve_inside(root, "models/./v1/../v2").unwrap(), Path::new("/data/store/models/v2"));
/// assert!(resolve_inside(root, "../other").is_err());
/// ```
///
/// # Errors
/// A message naming `rel`, `root` and which rule it broke.
pub fn resolve_inside(root: &Path, rel: &str) -> Result<PathBuf, String> {
    if rel.contains('\0') {
        return Err(format!(
            "path {rel:?} contains a NUL byte, which no file name can hold: remove it"
        ));
    }
    let root_text = root.to_string_lossy();
    if root_text.contains('\0') {
        return Err(format!(
            "directory {root_text:?} contains a NUL byte, which no file name can hold: \
             fix the configured path"
        ));
    }
    if !root.is_absolute() {
        return Err(format!(
            "directory `{}` is not an absolute path: configure it as an absolute path \
             (strata makes local paths absolute when a component is registered)",
            root.display()
        ));
    }
    let root = normalize_absolute(root);
    let requested = Path::new(rel);

    if requested.is_absolute() {
        let normalized = normalize_absolute(requested);
        if normalized.starts_with(&root) {
            return Ok(normalized);
        }
        return Err(format!(
            "path `{rel}` is outside the directory {}: give a path relative to that \
             directory, or an absolute path inside it",
            root.display()
        ));
    }

    let mut resolved = root.clone();
    let mut depth = 0usize;
    for component in requested.components() {
        match component {
            Component::CurDir => {}
            Component::ParentDir => {
                if depth == 0 {
                    return Err(format!(
                        "path `{rel}` leaves the directory {}: a `..` may not climb above \
                         it; give a path inside it, relative to it",
                        root.display()
                    ));
                }
                resolved.pop();
                depth -= 1;
            }
            Component::Normal(name) => {
                resolved.push(name);
                depth += 1;
            }
            Component::RootDir | Component::Prefix(_) => {
                return Err(format!(
                    "path `{rel}` is not a plain relative path: give a path relative to the \
                     directory {}",
                    root.display()
                ));
            }
        }
    }
    Ok(resolved)
}

/// Lexically normalises an absolute path: drops `.`, applies `..` (which stops at `/`).
fn normalize_absolute(path: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for component in path.components() {
        match component {
            Component::Prefix(prefix) => out.push(prefix.as_os_str()),
            Component::RootDir => out.push(component.as_os_str()),
            Component::CurDir => {}
            Component::ParentDir => {
                out.pop();
            }
            Component::Normal(name) => out.push(name),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const ROOT: &str = "/data/store";

    fn ok(rel: &str) -> PathBuf {
        resolve_inside(Path::new(ROOT), rel).unwrap_or_else(|err| panic!("{rel}: {err}"))
    }

    fn err(rel: &str) -> String {
        resolve_inside(Path::new(ROOT), rel).expect_err(rel)
    }

    #[test]
    fn relative_paths_land_below_the_root() {
        assert_eq!(ok("a/b.txt"), Path::new("/data/store/a/b.txt"));
        assert_eq!(ok("./a//b/"), Path::new("/data/store/a/b"));
        assert_eq!(ok("a/../b"), Path::new("/data/store/b"));
        assert_eq!(ok("a/b/../../c"), Path::new("/data/store/c"));
        assert_eq!(ok("a/.."), Path::new(ROOT));
    }

    #[test]
    fn empty_and_dot_name_the_root() {
        assert_eq!(ok(""), Path::new(ROOT));
        assert_eq!(ok("."), Path::new(ROOT));
        assert_eq!(ok("./"), Path::new(ROOT));
    }

    #[test]
    fn climbing_above_the_root_is_refused() {
        for rel in [
            "..",
            "../",
            "../store/x",
            "a/../../b",
            "./../x",
            "a/b/../../../c",
        ] {
            let message = err(rel);
            assert!(
                message.contains("leaves the directory /data/store"),
                "{rel}: {message}"
            );
            assert!(message.contains(rel), "{rel}: {message}");
        }
    }

    #[test]
    fn absolute_paths_inside_are_accepted() {
        assert_eq!(ok("/data/store"), Path::new(ROOT));
        assert_eq!(ok("/data/store/x/y"), Path::new("/data/store/x/y"));
        assert_eq!(ok("/data/other/../store/x"), Path::new("/data/store/x"));
    }

    #[test]
    fn absolute_paths_outside_are_refused() {
        for rel in [
            "/etc/passwd",
            "/",
            "/data",
            "/data/store2/x",
            "/data/store/../x",
        ] {
            let message = err(rel);
            assert!(
                message.contains("outside the directory /data/store"),
                "{rel}: {message}"
            );
        }
    }

    #[test]
    fn nul_bytes_are_refused() {
        assert!(err("a\0b").contains("NUL"));
        assert!(
            resolve_inside(Path::new("/data/\0"), "a")
                .unwrap_err()
                .contains("NUL")
        );
    }

    #[test]
    fn root_must_be_absolute_and_is_normalised() {
        let message = resolve_inside(Path::new("data/store"), "a").unwrap_err();
        assert!(message.contains("not an absolute path"), "{message}");
        assert_eq!(
            resolve_inside(Path::new("/data/./x/../store/"), "a").unwrap(),
            Path::new("/data/store/a")
        );
    }

    #[test]
    fn file_names_with_dots_are_plain_names() {
        assert_eq!(ok("...").file_name().unwrap(), "...");
        assert_eq!(
            ok("..a/b..").parent().unwrap(),
            Path::new("/data/store/..a")
        );
    }
}

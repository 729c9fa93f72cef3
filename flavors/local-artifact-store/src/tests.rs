//! Unit tests of the store operations and of provisioning, run natively on a temporary
//! directory: `cargo test -p local-artifact-store --target x86_64-unknown-linux-gnu`.

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};

use crate::lifecycle::{self, ARTIFACTS_DIR, MarkerStatus, StoreState};
use crate::store::{MARKER, Mode, Store, check_root};

/// A fresh, empty directory removed when dropped.
struct TempRoot(PathBuf);

impl TempRoot {
    fn new() -> TempRoot {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let dir = std::env::temp_dir().join(format!(
            "strata-local-artifact-store-test-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::SeqCst)
        ));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
        TempRoot(dir)
    }

    fn path(&self) -> &Path {
        &self.0
    }

    fn store(&self) -> Store {
        Store::new(self.0.to_str().unwrap()).unwrap()
    }
}

impl Drop for TempRoot {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

fn names(store: &Store, rel: &str) -> Vec<String> {
    store
        .list(rel)
        .unwrap()
        .into_iter()
        .map(|entry| {
            if entry.is_dir {
                format!("{}/", entry.name)
            } else {
                entry.name
            }
        })
        .collect()
}

#[test]
fn root_must_be_plain_and_absolute() {
    assert!(check_root("/data/store").is_ok());
    assert!(check_root("s3://bucket/x").unwrap_err().contains("`s3://`"));
    assert!(
        check_root("relative/dir")
            .unwrap_err()
            .contains("not absolute")
    );
    assert!(check_root("/a\0b").unwrap_err().contains("NUL"));
}

#[test]
fn write_read_stat_and_modes() {
    let root = TempRoot::new();
    let store = root.store();
    assert_eq!(
        store.write("models/v1/w.bin", b"hello", Mode::CreateNew),
        Ok(5)
    );
    assert_eq!(store.read("models/v1/w.bin", 0, 100).unwrap(), b"hello");
    assert_eq!(store.read("models/v1/w.bin", 1, 3).unwrap(), b"ell");
    assert_eq!(store.read("models/v1/w.bin", 5, 3).unwrap(), b"");
    assert_eq!(store.read("models/v1/w.bin", 99, 3).unwrap(), b"");

    let err = store
        .write("models/v1/w.bin", b"x", Mode::CreateNew)
        .unwrap_err();
    assert!(
        err.contains("already exists") && err.contains("models/v1/w.bin"),
        "{err}"
    );
    assert_eq!(store.write("models/v1/w.bin", b"hi", Mode::Truncate), Ok(2));
    assert_eq!(store.write("models/v1/w.bin", b"!!", Mode::Append), Ok(4));
    assert_eq!(store.read("models/v1/w.bin", 0, u64::MAX).unwrap(), b"hi!!");
    assert_eq!(store.write("log.txt", b"a", Mode::Append), Ok(1));

    let stat = store.stat("models/v1/w.bin").unwrap();
    assert_eq!((stat.size, stat.is_dir), (4, false));
    assert!(stat.modified_ms.is_some());
    let dir = store.stat("models").unwrap();
    assert_eq!((dir.size, dir.is_dir), (0, true));

    assert!(store.exists("models/v1").unwrap());
    assert!(!store.exists("nothing").unwrap());
    let missing = store.read("nothing", 0, 1).unwrap_err();
    assert!(
        missing.contains("`nothing`") && missing.contains("does not exist"),
        "{missing}"
    );
    assert!(
        store
            .read("models", 0, 1)
            .unwrap_err()
            .contains("is a directory")
    );
    assert!(
        store
            .write("models", b"x", Mode::Truncate)
            .unwrap_err()
            .contains("is a directory")
    );
    // No temporary file is left behind.
    assert_eq!(names(&store, "models/v1"), ["w.bin"]);
}

#[test]
fn paths_cannot_leave_the_root_or_touch_the_marker() {
    let root = TempRoot::new();
    let store = root.store();
    for rel in ["../x", "a/../../x", "/etc/passwd"] {
        assert!(store.write(rel, b"x", Mode::Truncate).is_err(), "{rel}");
        assert!(store.exists(rel).is_err(), "{rel}");
    }
    for rel in [
        MARKER,
        ".strata-artifact-store.partial-1",
        "./.strata-artifact-store",
    ] {
        let err = store.read(rel, 0, 1).unwrap_err();
        assert!(err.contains("reserved"), "{rel}: {err}");
        assert!(
            store.remove(rel, false).unwrap_err().contains("reserved"),
            "{rel}"
        );
    }
    assert!(
        store
            .write("a/.strata-partial-x", b"x", Mode::Truncate)
            .unwrap_err()
            .contains("reserved")
    );
    // A marker-like name below the root is an ordinary name.
    assert!(
        store
            .write("sub/.strata-artifact-store", b"x", Mode::Truncate)
            .is_ok()
    );
    // An absolute path inside the root is fine.
    let inside = format!("{}/abs.txt", root.path().display());
    assert_eq!(store.write(&inside, b"abc", Mode::Truncate), Ok(3));
    assert!(store.exists("abs.txt").unwrap());
}

#[test]
fn list_is_sorted_and_hides_the_marker() {
    let root = TempRoot::new();
    let store = root.store();
    lifecycle::provision(root.path(), "id-1", &StoreState::default()).unwrap();
    store.write("b.txt", b"", Mode::Truncate).unwrap();
    store.makedirs("a/deep/er").unwrap();
    store.makedirs("a/deep").unwrap();
    fs::write(root.path().join("a/.strata-partial-leftover"), b"").unwrap();
    assert_eq!(names(&store, ""), ["a/", "artifacts/", "b.txt"]);
    assert_eq!(names(&store, "a"), ["deep/"]);
    assert!(store.list("b.txt").unwrap_err().contains("is a file"));
    assert!(store.list("nope").unwrap_err().contains("does not exist"));
    assert!(
        store
            .makedirs("b.txt")
            .unwrap_err()
            .contains("a file of that name")
    );
}

#[test]
fn remove_refuses_the_root_and_non_empty_directories() {
    let root = TempRoot::new();
    let store = root.store();
    store.write("d/f.txt", b"x", Mode::Truncate).unwrap();
    for rel in ["", ".", "d/.."] {
        assert!(
            store
                .remove(rel, true)
                .unwrap_err()
                .contains("root of the store"),
            "{rel}"
        );
    }
    let err = store.remove("d", false).unwrap_err();
    assert!(err.contains("not empty") && err.contains("`d`"), "{err}");
    store.remove("d/f.txt", false).unwrap();
    store.remove("d", false).unwrap();
    store.write("e/f/g.txt", b"x", Mode::Truncate).unwrap();
    store.remove("e", true).unwrap();
    assert!(!store.exists("e").unwrap());
    assert!(
        store
            .remove("e", true)
            .unwrap_err()
            .contains("does not exist")
    );
    assert!(root.path().is_dir());
}

#[test]
fn rename_and_copy_respect_overwrite() {
    let root = TempRoot::new();
    let store = root.store();
    store.write("a.txt", b"A", Mode::Truncate).unwrap();
    store.write("b.txt", b"B", Mode::Truncate).unwrap();

    let err = store.rename("a.txt", "b.txt", false).unwrap_err();
    assert!(
        err.contains("already exists") && err.contains("overwrite"),
        "{err}"
    );
    store.rename("a.txt", "b.txt", true).unwrap();
    assert_eq!(store.read("b.txt", 0, 9).unwrap(), b"A");
    assert!(!store.exists("a.txt").unwrap());
    store.rename("b.txt", "moved/deeper/c.txt", false).unwrap();
    assert_eq!(store.read("moved/deeper/c.txt", 0, 9).unwrap(), b"A");
    assert!(
        store
            .rename("ghost", "x", false)
            .unwrap_err()
            .contains("does not exist")
    );
    assert!(
        store
            .rename("moved", "moved/inner", true)
            .unwrap_err()
            .contains("into itself")
    );
    store.write("file", b"F", Mode::Truncate).unwrap();
    assert!(
        store
            .rename("file", "moved", true)
            .unwrap_err()
            .contains("replace directory")
    );
    assert!(
        store
            .rename("moved", "file", true)
            .unwrap_err()
            .contains("replace file")
    );
    store.makedirs("other/sub").unwrap();
    store.rename("moved", "other", true).unwrap();
    assert_eq!(names(&store, "other"), ["deeper/"]);

    store.copy("file", "copies/f1", false).unwrap();
    assert_eq!(store.read("copies/f1", 0, 9).unwrap(), b"F");
    store.write("file", b"G", Mode::Truncate).unwrap();
    assert!(
        store
            .copy("file", "copies/f1", false)
            .unwrap_err()
            .contains("already exists")
    );
    store.copy("file", "copies/f1", true).unwrap();
    assert_eq!(store.read("copies/f1", 0, 9).unwrap(), b"G");
    assert!(
        store
            .copy("other", "x", true)
            .unwrap_err()
            .contains("copies files only")
    );
    assert!(
        store
            .copy("file", "other", true)
            .unwrap_err()
            .contains("is a directory")
    );
    assert_eq!(names(&store, "copies"), ["f1"]);
}

#[test]
fn provision_is_idempotent_and_deprovision_removes_only_its_own() {
    let root = TempRoot::new();
    fs::write(root.path().join("keep.txt"), b"user data").unwrap();

    let first = lifecycle::provision(root.path(), "id-1", &StoreState::default()).unwrap();
    assert!(first.provisioned && !first.running);
    assert_eq!(first.created, [MARKER, ARTIFACTS_DIR]);
    let again = lifecycle::provision(root.path(), "id-1", &first).unwrap();
    assert_eq!(again.created, first.created);
    match lifecycle::read_marker(root.path(), "id-1") {
        MarkerStatus::Ours(marker) => assert_eq!(marker.created, first.created),
        other => panic!("{other:?}"),
    }
    assert!(lifecycle::probe_writable(root.path()).is_ok());

    let store = root.store();
    store
        .write("artifacts/run-1/out.bin", b"x", Mode::Truncate)
        .unwrap();
    let (removed, warning) = lifecycle::deprovision(root.path(), "id-1", &again).unwrap();
    assert_eq!(removed, ["artifacts/", MARKER]);
    assert!(warning.is_none());
    assert!(root.path().is_dir());
    let left: Vec<_> = fs::read_dir(root.path())
        .unwrap()
        .map(|entry| entry.unwrap().file_name().into_string().unwrap())
        .collect();
    assert_eq!(left, ["keep.txt"]);
    // Idempotent.
    let (removed, _) = lifecycle::deprovision(root.path(), "id-1", &StoreState::default()).unwrap();
    assert!(removed.is_empty());
}

#[test]
fn an_existing_artifacts_directory_is_not_ours_to_remove() {
    let root = TempRoot::new();
    fs::create_dir(root.path().join(ARTIFACTS_DIR)).unwrap();
    fs::write(root.path().join("artifacts/old.bin"), b"old").unwrap();
    let state = lifecycle::provision(root.path(), "id-1", &StoreState::default()).unwrap();
    assert_eq!(state.created, [MARKER]);
    let (removed, _) = lifecycle::deprovision(root.path(), "id-1", &state).unwrap();
    assert_eq!(removed, [MARKER]);
    assert!(root.path().join("artifacts/old.bin").is_file());
}

#[test]
fn another_components_marker_is_respected() {
    let root = TempRoot::new();
    let state = lifecycle::provision(root.path(), "id-1", &StoreState::default()).unwrap();
    let err = lifecycle::provision(root.path(), "id-2", &StoreState::default()).unwrap_err();
    assert!(
        err.contains("another component") && err.contains("id-1"),
        "{err}"
    );
    let reason = lifecycle::not_provisioned_reason(
        root.path(),
        &lifecycle::read_marker(root.path(), "id-2"),
        "other",
    )
    .unwrap();
    assert!(reason.contains("belongs to another component"), "{reason}");
    let (removed, warning) = lifecycle::deprovision(root.path(), "id-2", &state).unwrap();
    assert!(removed.is_empty());
    assert!(warning.unwrap().contains("removed nothing"));
    assert!(root.path().join(MARKER).is_file());
}

#[test]
fn missing_and_broken_markers_are_explained() {
    let root = TempRoot::new();
    let missing = lifecycle::read_marker(root.path(), "id-1");
    assert_eq!(missing, MarkerStatus::Missing);
    let reason = lifecycle::not_provisioned_reason(root.path(), &missing, "store").unwrap();
    assert!(
        reason.starts_with("marker missing: run `strata artifact-store up store`"),
        "{reason}"
    );

    fs::write(root.path().join(MARKER), b"garbage").unwrap();
    assert!(matches!(
        lifecycle::read_marker(root.path(), "id-1"),
        MarkerStatus::Unreadable(_)
    ));
    assert!(
        lifecycle::provision(root.path(), "id-1", &StoreState::default())
            .unwrap_err()
            .contains("unreadable")
    );
    assert!(
        lifecycle::deprovision(root.path(), "id-1", &StoreState::default())
            .unwrap_err()
            .contains("unreadable")
    );

    let file_root = root.path().join("plain-file");
    fs::write(&file_root, b"").unwrap();
    assert!(
        lifecycle::provision(&file_root, "id-1", &StoreState::default())
            .unwrap_err()
            .contains("not a directory")
    );
}

#[test]
fn interrupted_marker_writes_are_tidied() {
    let root = TempRoot::new();
    fs::write(root.path().join(format!("{MARKER}.partial-0000")), b"{").unwrap();
    let state = lifecycle::provision(root.path(), "id-1", &StoreState::default()).unwrap();
    assert!(!root.path().join(format!("{MARKER}.partial-0000")).exists());
    lifecycle::deprovision(root.path(), "id-1", &state).unwrap();
    assert_eq!(fs::read_dir(root.path()).unwrap().count(), 0);
}

//! Provisioning a store: the marker file, the `artifacts/` directory, and what may be
//! removed again.
//!
//! The marker (`<root>/.strata-artifact-store`, JSON) says which component owns the
//! directory and which entries its `provision` created. It is written *before* anything
//! else is created and removed *last*, so a `provision` or `deprovision` cut short and
//! called again knows what is its own. The same list is kept in the component's state.

use std::fs::{self, OpenOptions};
use std::io::{ErrorKind, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::store::{MARKER, cause, unique_suffix};

/// The directory `provision` creates for artifacts, if it does not exist yet.
pub const ARTIFACTS_DIR: &str = "artifacts";

/// The contents of the marker file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Marker {
    /// The id of the component whose store this directory is.
    pub component_id: String,
    /// The flavor that wrote the marker.
    #[serde(default)]
    pub flavor: String,
    /// The entries of the root that `provision` created (and `deprovision` may remove).
    #[serde(default)]
    pub created: Vec<String>,
}

/// What the flavor remembers between calls.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoreState {
    /// `provision` succeeded and `deprovision` has not run since.
    #[serde(default)]
    pub provisioned: bool,
    /// `resume` ran more recently than `suspend`.
    #[serde(default)]
    pub running: bool,
    /// The entries of the root that `provision` created.
    #[serde(default)]
    pub created: Vec<String>,
}

/// What the marker at a root says about a component.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MarkerStatus {
    /// There is no marker.
    Missing,
    /// The marker names this component.
    Ours(Marker),
    /// The marker names another component, whose id is given.
    Foreign(String),
    /// The marker cannot be read or parsed; the cause is given.
    Unreadable(String),
}

/// The path of the marker at `root`.
pub fn marker_path(root: &Path) -> PathBuf {
    root.join(MARKER)
}

/// Reads the marker at `root` and compares it with `component_id`.
pub fn read_marker(root: &Path, component_id: &str) -> MarkerStatus {
    let path = marker_path(root);
    let bytes = match fs::read(&path) {
        Ok(bytes) => bytes,
        Err(err) if err.kind() == ErrorKind::NotFound => return MarkerStatus::Missing,
        Err(err) => return MarkerStatus::Unreadable(cause(&err)),
    };
    match serde_json::from_slice::<Marker>(&bytes) {
        Ok(marker) if marker.component_id == component_id => MarkerStatus::Ours(marker),
        Ok(marker) => MarkerStatus::Foreign(marker.component_id),
        Err(err) => MarkerStatus::Unreadable(format!("not a marker written by strata: {err}")),
    }
}

/// Why the store at `root` is not provisioned for this component, as one line for the
/// user, or `None` if it is.
pub fn not_provisioned_reason(root: &Path, status: &MarkerStatus, name: &str) -> Option<String> {
    let marker = marker_path(root);
    match status {
        MarkerStatus::Ours(_) => None,
        MarkerStatus::Missing => Some(format!(
            "marker missing: run `strata artifact-store up {name}` (expected {})",
            marker.display()
        )),
        MarkerStatus::Foreign(other) => Some(format!(
            "marker {} belongs to another component (id `{other}`): give this component \
             another path",
            marker.display()
        )),
        MarkerStatus::Unreadable(why) => Some(format!(
            "marker {} is unreadable ({why}): move it away, then run `strata artifact-store \
             up {name}`",
            marker.display()
        )),
    }
}

/// Creates the marker and `artifacts/` at `root` for `component_id`, keeping what an
/// earlier, possibly interrupted, attempt recorded. Returns the new state.
///
/// # Errors
/// A message if the root is missing or not a directory, belongs to another component,
/// holds an unreadable marker, has a file where `artifacts/` should be, or cannot be
/// written.
pub fn provision(
    root: &Path,
    component_id: &str,
    previous: &StoreState,
) -> Result<StoreState, String> {
    match fs::metadata(root) {
        Ok(metadata) if metadata.is_dir() => {}
        Ok(_) => {
            return Err(format!(
                "path {} is a file, not a directory: give the artifact store a directory",
                root.display()
            ));
        }
        Err(err) => {
            return Err(format!(
                "cannot provision the artifact store at {}: {} (strata creates this \
                 directory before provisioning: check the configured path)",
                root.display(),
                cause(&err)
            ));
        }
    }

    let mut created = match read_marker(root, component_id) {
        MarkerStatus::Ours(marker) => marker.created,
        MarkerStatus::Missing => vec![MARKER.to_string()],
        MarkerStatus::Foreign(other) => {
            return Err(format!(
                "{} already holds the artifact store of another component (id `{other}`): \
                 give this component another path, or, if that component no longer exists, \
                 remove {}",
                root.display(),
                marker_path(root).display()
            ));
        }
        MarkerStatus::Unreadable(why) => {
            return Err(format!(
                "{} is unreadable ({why}): it was not written by this flavor; move it away \
                 or give this component another path",
                marker_path(root).display()
            ));
        }
    };
    for entry in &previous.created {
        if !created.contains(entry) {
            created.push(entry.clone());
        }
    }

    let artifacts = root.join(ARTIFACTS_DIR);
    let artifacts_missing = match fs::symlink_metadata(&artifacts) {
        Ok(metadata) if metadata.is_dir() => false,
        Ok(_) => {
            return Err(format!(
                "{} exists and is not a directory: move it away so the store can keep \
                 artifacts there",
                artifacts.display()
            ));
        }
        Err(err) if err.kind() == ErrorKind::NotFound => true,
        Err(err) => {
            return Err(format!(
                "could not check {}: {}",
                artifacts.display(),
                cause(&err)
            ));
        }
    };
    if artifacts_missing && !created.iter().any(|entry| entry == ARTIFACTS_DIR) {
        created.push(ARTIFACTS_DIR.to_string());
    }

    // The marker first: if what follows is cut short, the next attempt knows it is ours.
    write_marker(
        root,
        &Marker {
            component_id: component_id.to_string(),
            flavor: "local".to_string(),
            created: created.clone(),
        },
    )?;
    if artifacts_missing {
        fs::create_dir(&artifacts)
            .map_err(|err| format!("could not create {}: {}", artifacts.display(), cause(&err)))?;
    }
    Ok(StoreState {
        provisioned: true,
        running: previous.running,
        created,
    })
}

/// Removes what `provision` created at `root` for `component_id`: `artifacts/` with its
/// contents if provision created it, then the marker. Never the root, never anything
/// else. Returns what it removed, and a warning if it found another component's marker
/// (in which case it removes nothing).
///
/// # Errors
/// A message if the marker is unreadable or something cannot be removed.
pub fn deprovision(
    root: &Path,
    component_id: &str,
    previous: &StoreState,
) -> Result<(Vec<String>, Option<String>), String> {
    if !root.exists() {
        return Ok((Vec::new(), None));
    }
    let (mut created, ours) = match read_marker(root, component_id) {
        MarkerStatus::Ours(marker) => (marker.created, true),
        MarkerStatus::Missing => (Vec::new(), false),
        MarkerStatus::Foreign(other) => {
            let warning = format!(
                "{} now belongs to another component (id `{other}`): removed nothing",
                marker_path(root).display()
            );
            return Ok((Vec::new(), Some(warning)));
        }
        MarkerStatus::Unreadable(why) => {
            return Err(format!(
                "cannot deprovision: {} is unreadable ({why}), so what this store created \
                 is unknown; remove it by hand, with anything else you no longer need, then \
                 run `down --force` again",
                marker_path(root).display()
            ));
        }
    };
    created.extend(previous.created.iter().cloned());

    let mut removed = Vec::new();
    let artifacts = root.join(ARTIFACTS_DIR);
    if created.iter().any(|entry| entry == ARTIFACTS_DIR) {
        match fs::symlink_metadata(&artifacts) {
            Ok(metadata) if metadata.is_dir() => {
                fs::remove_dir_all(&artifacts).map_err(|err| {
                    format!(
                        "could not remove {}: {}; remove it by hand, then run `down --force` \
                         again",
                        artifacts.display(),
                        cause(&err)
                    )
                })?;
                removed.push(format!("{ARTIFACTS_DIR}/"));
            }
            Ok(_) | Err(_) => {}
        }
    }
    // Leftovers of an interrupted marker write are ours whoever the marker names.
    remove_marker_leftovers(root);
    if ours {
        let marker = marker_path(root);
        match fs::remove_file(&marker) {
            Ok(()) => removed.push(MARKER.to_string()),
            Err(err) if err.kind() == ErrorKind::NotFound => {}
            Err(err) => {
                return Err(format!(
                    "could not remove {}: {}",
                    marker.display(),
                    cause(&err)
                ));
            }
        }
    }
    Ok((removed, None))
}

/// Checks that files can be created in `root`, by creating and removing a probe file.
///
/// # Errors
/// `path <root> is not writable: <cause>`.
pub fn probe_writable(root: &Path) -> Result<(), String> {
    let probe = root.join(format!("{MARKER}.probe-{}", unique_suffix()));
    let result = OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&probe)
        .and_then(|mut file| file.write_all(b"probe"));
    // A concurrent `provision` may have tidied the probe away already.
    let removed = match fs::remove_file(&probe) {
        Err(err) if err.kind() == ErrorKind::NotFound => Ok(()),
        other => other,
    };
    match (result, removed) {
        (Ok(()), Ok(())) => Ok(()),
        (Err(err), _) | (Ok(()), Err(err)) => Err(format!(
            "path {} is not writable: {}",
            root.display(),
            cause(&err)
        )),
    }
}

/// Writes the marker atomically: to a temporary name, then renamed into place.
fn write_marker(root: &Path, marker: &Marker) -> Result<(), String> {
    let path = marker_path(root);
    let partial = root.join(format!("{MARKER}.partial-{}", unique_suffix()));
    let json = serde_json::to_vec_pretty(marker)
        .map_err(|err| format!("could not encode the marker: {err}"))?;
    let result = fs::write(&partial, json).and_then(|()| fs::rename(&partial, &path));
    if let Err(err) = result {
        let _ = fs::remove_file(&partial);
        return Err(format!(
            "could not write the marker {}: {}",
            path.display(),
            cause(&err)
        ));
    }
    remove_marker_leftovers(root);
    Ok(())
}

/// Removes temporary copies of the marker and probe files left by calls cut short.
fn remove_marker_leftovers(root: &Path) {
    let Ok(entries) = fs::read_dir(root) else {
        return;
    };
    let prefixes = [format!("{MARKER}.partial-"), format!("{MARKER}.probe-")];
    for entry in entries.flatten() {
        let name = entry.file_name();
        let name = name.to_string_lossy();
        if prefixes
            .iter()
            .any(|prefix| name.starts_with(prefix.as_str()))
        {
            let _ = fs::remove_file(entry.path());
        }
    }
}

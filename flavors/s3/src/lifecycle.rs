//! Provisioning a store: the bucket (created only if asked), the marker object, and
//! what `deprovision` may remove again.

use serde::{Deserialize, Serialize};
use strata_flavor_sdk::http::Request;
use strata_flavor_sdk::{info, warn};

use crate::s3::SMALL_ANSWER;
use crate::settings::Settings;
use crate::store::Store;

/// What the flavor remembers between calls (beside the SDK's phase).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoreState {
    /// `provision` created the bucket, so `deprovision` may delete it.
    #[serde(default)]
    pub created_bucket: bool,
    /// The bucket it created (a later `--bucket=` change does not make another bucket
    /// strata's).
    #[serde(default)]
    pub bucket: String,
}

/// The contents of the marker object (JSON).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Marker {
    /// The id of the component whose store this is.
    pub component_id: String,
    /// The flavor that wrote it.
    #[serde(default)]
    pub flavor: String,
    /// Whether strata created the bucket: kept here too, so the bucket is known as
    /// strata's even if the component's state is lost.
    #[serde(default)]
    pub created_bucket: bool,
}

/// What the marker object says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MarkerStatus {
    Missing,
    Ours(Marker),
    /// Another component's, or not strata's: who it names (or its first bytes).
    Foreign(String),
}

/// Reads the marker `bytes` as seen by the component `component_id`.
pub fn judge_marker(bytes: &[u8], component_id: &str) -> MarkerStatus {
    match serde_json::from_slice::<Marker>(bytes) {
        Ok(marker) if marker.component_id == component_id => MarkerStatus::Ours(marker),
        Ok(marker) => MarkerStatus::Foreign(format!("component id `{}`", marker.component_id)),
        Err(_) => {
            let text = String::from_utf8_lossy(bytes);
            let text = text.trim();
            // A marker holding just the id is ours too.
            if text == component_id {
                MarkerStatus::Ours(Marker {
                    component_id: component_id.to_string(),
                    flavor: String::new(),
                    created_bucket: false,
                })
            } else {
                let shown: String = text.chars().take(60).collect();
                MarkerStatus::Foreign(format!("contents `{}`", shown.escape_debug()))
            }
        }
    }
}

/// `GetObject` of the marker.
///
/// # Errors
/// A failed request.
pub fn read_marker(store: &Store, component_id: &str) -> Result<MarkerStatus, String> {
    let key = store.marker_key();
    let s3 = store.s3();
    let response = s3.send(
        "GetObject",
        Some(&key),
        Request::get(&s3.object_url(&key, "")).max_bytes(SMALL_ANSWER),
    )?;
    match response.status {
        200 => Ok(judge_marker(&response.body, component_id)),
        404 => Ok(MarkerStatus::Missing),
        _ => Err(s3.failure("GetObject", Some(&key), &response)),
    }
}

/// `PutObject` of the marker: it also proves the bucket writable.
fn write_marker(store: &Store, marker: &Marker) -> Result<(), String> {
    let key = store.marker_key();
    let s3 = store.s3();
    let body =
        serde_json::to_vec(marker).map_err(|e| format!("could not encode the marker: {e}"))?;
    let response = s3.send(
        "PutObject",
        Some(&key),
        Request::put(&s3.object_url(&key, ""))
            .header("content-type", "application/json")
            .body(body),
    )?;
    if response.is_success() {
        Ok(())
    } else {
        Err(s3.failure("PutObject", Some(&key), &response))
    }
}

/// `CreateBucket`, in the connector's region. Returns whether this call created it
/// (`false` if it was ours already).
fn create_bucket(store: &Store) -> Result<bool, String> {
    let s3 = store.s3();
    let mut request = Request::put(&s3.bucket_url(""));
    if s3.region() == "us-east-1" {
        request = request.header("content-length", "0");
    } else {
        let body = format!(
            "<CreateBucketConfiguration xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\">\
             <LocationConstraint>{}</LocationConstraint></CreateBucketConfiguration>",
            crate::codec::xml_escape(s3.region())
        );
        request = request
            .header("content-type", "application/xml")
            .body(body.into_bytes());
    }
    let response = s3.send("CreateBucket", None, request.max_bytes(SMALL_ANSWER))?;
    if response.is_success() {
        return Ok(true);
    }
    if crate::xml::error_of(&response.body).is_some_and(|e| e.code == "BucketAlreadyOwnedByYou") {
        return Ok(false);
    }
    Err(s3.failure("CreateBucket", None, &response))
}

/// `provision`: the bucket (created if missing and `create_bucket`), then the marker.
/// Returns the new state.
///
/// # Errors
/// A missing bucket without `create_bucket`, another component's marker, or a failed
/// request.
pub fn provision(
    store: &Store,
    settings: &Settings,
    component_id: &str,
    previous: &StoreState,
) -> Result<StoreState, String> {
    let s3 = store.s3();
    let name = s3.component();
    let bucket = s3.bucket();
    let mut created_now = false;
    if !store.bucket_exists()? {
        if !settings.create_bucket {
            return Err(format!(
                "artifact store `{name}`: bucket `{bucket}` does not exist at {}: create it, \
                 or let strata create it (`strata artifact-store update {name} \
                 --create_bucket=true`, then `strata artifact-store up {name}`)",
                s3.endpoint()
            ));
        }
        created_now = create_bucket(store)?;
        if created_now {
            info!(
                "created bucket `{bucket}` at {} in region {}",
                s3.endpoint(),
                s3.region()
            );
        }
    }
    let created_before = match read_marker(store, component_id)? {
        MarkerStatus::Ours(marker) => marker.created_bucket,
        MarkerStatus::Missing => false,
        MarkerStatus::Foreign(who) => {
            return Err(format!(
                "artifact store `{name}`: {} already holds the artifact store of another \
                 component ({who} in its marker `{}`): give this component another \
                 `--prefix` or `--bucket`, or, if that component no longer exists, delete the \
                 marker",
                store.location(),
                store.marker_key()
            ));
        }
    };
    let created = created_now
        || created_before
        || (previous.created_bucket && (previous.bucket.is_empty() || previous.bucket == bucket));
    write_marker(
        store,
        &Marker {
            component_id: component_id.to_string(),
            flavor: "s3".to_string(),
            created_bucket: created,
        },
    )
    .map_err(|why| {
        if !created_now {
            return why;
        }
        // Without its marker nothing would say strata made the bucket: take it back
        // (it is empty), so that no half-made resource is left without a record.
        let undone = s3
            .send("DeleteBucket", None, Request::delete(&s3.bucket_url("")))
            .is_ok_and(|r| r.is_success() || r.status == 404);
        if undone {
            format!("{why} (the bucket `{bucket}` this call created was deleted again)")
        } else {
            format!(
                "{why} (bucket `{bucket}` was created by this call and could not be deleted \
                 again: without its marker strata will not know it made it, so delete it by \
                 hand if you give up)"
            )
        }
    })?;
    info!(
        "artifact store at {} ({}) is provisioned; the bucket was created by strata: {}",
        store.location(),
        s3.endpoint(),
        if created { "yes" } else { "no" }
    );
    Ok(StoreState {
        created_bucket: created,
        bucket: bucket.to_string(),
    })
}

/// `deprovision`: the marker, and the bucket with its objects if strata created it
/// (its objects only with `delete_bucket_contents`). A bucket strata did not create is
/// never deleted, nor the artifacts in it.
///
/// # Errors
/// A bucket strata created that still holds objects without `delete_bucket_contents`,
/// more objects than one call can delete, or a failed request.
pub fn deprovision(
    store: &Store,
    settings: &Settings,
    component_id: &str,
    state: &StoreState,
) -> Result<(), String> {
    let s3 = store.s3();
    let name = s3.component();
    let bucket = s3.bucket();
    if !store.bucket_exists()? {
        info!(
            "bucket `{bucket}` at {} is already gone: nothing to remove",
            s3.endpoint()
        );
        return Ok(());
    }
    let marker = read_marker(store, component_id)?;
    let marker_says = match &marker {
        MarkerStatus::Foreign(who) => {
            warn!(
                "{} now belongs to another component ({who} in `{}`): removed nothing",
                store.location(),
                store.marker_key()
            );
            return Ok(());
        }
        MarkerStatus::Ours(marker) => marker.created_bucket,
        MarkerStatus::Missing => false,
    };
    let created = marker_says
        || (state.created_bucket && (state.bucket.is_empty() || state.bucket == bucket));
    let marker_key = store.marker_key();

    if created && !settings.delete_bucket_contents {
        // Count first, so a refusal changes nothing.
        let page = store.count_below("", &marker_key, 8)?;
        if page.0 > 0 {
            return Err(format!(
                "artifact store `{name}`: bucket `{bucket}`, created by strata, still holds \
                 {}{} object{} besides the marker: keep them with a plain `down` (without \
                 `--force`), or let strata delete them with the bucket (`strata \
                 artifact-store update {name} --delete_bucket_contents=true`, then `down \
                 --force` again)",
                if page.1 { "" } else { "at least " },
                page.0,
                if page.0 == 1 { "" } else { "s" }
            ));
        }
    }

    if !created {
        delete_marker(store, &marker)?;
        info!(
            "removed the marker `{marker_key}`; bucket `{bucket}` was not created by strata: \
             it is kept, with the artifacts under `{}`",
            if store.prefix().is_empty() {
                "/"
            } else {
                store.prefix()
            }
        );
        return Ok(());
    }

    // The marker goes last: while it is there, `status` says provisioned, so a `down
    // --force` cut short (by the call's bounds) is run again to go on.
    let (deleted, complete) = store.delete_below("", Some(&marker_key))?;
    if !complete {
        return Err(format!(
            "artifact store `{name}`: deleted {deleted} objects of bucket `{bucket}`, and more \
             remain (one call makes at most {} requests): run `down --force` again to go on",
            crate::s3::MAX_REQUESTS
        ));
    }
    delete_marker(store, &marker)?;
    let response = s3.send("DeleteBucket", None, Request::delete(&s3.bucket_url("")))?;
    if response.is_success() || response.status == 404 {
        info!(
            "deleted bucket `{bucket}` at {}{}",
            s3.endpoint(),
            if deleted > 0 {
                format!(" and the {deleted} objects in it")
            } else {
                String::new()
            }
        );
        return Ok(());
    }
    let mut line = s3.failure("DeleteBucket", None, &response);
    if crate::xml::error_of(&response.body).is_some_and(|e| e.code == "BucketNotEmpty") {
        line.push_str(
            "; objects were written meanwhile, or the bucket keeps older versions \
             (versioning): remove them, then run `down --force` again",
        );
    }
    // The marker back, so that `status` still says provisioned and `down --force` runs
    // this again.
    if let MarkerStatus::Ours(marker) = &marker
        && let Err(why) = write_marker(store, marker)
    {
        warn!("could not write the marker `{marker_key}` back: {why}");
    }
    Err(line)
}

/// `DeleteObject` of the marker, if there is one.
fn delete_marker(store: &Store, marker: &MarkerStatus) -> Result<(), String> {
    if *marker == MarkerStatus::Missing {
        return Ok(());
    }
    let s3 = store.s3();
    let key = store.marker_key();
    let response = s3.send(
        "DeleteObject",
        Some(&key),
        Request::delete(&s3.object_url(&key, "")),
    )?;
    if response.is_success() || response.status == 404 {
        Ok(())
    } else {
        Err(s3.failure("DeleteObject", Some(&key), &response))
    }
}

/// What `status` reports: whether the bucket and this component's marker exist.
pub struct Seen {
    pub provisioned: bool,
    pub detail: String,
    /// The server could not say (it is down, or refused the request): what strata
    /// recorded stands.
    pub unknown: bool,
}

/// Looks at the bucket and the marker, changing nothing.
pub fn look(store: &Store, component_id: &str) -> Seen {
    let s3 = store.s3();
    let name = s3.component();
    let at = format!("bucket `{}` at {}", s3.bucket(), s3.endpoint());
    let missing = |detail: String| Seen {
        provisioned: false,
        detail,
        unknown: false,
    };
    let unknown = |detail: String| Seen {
        provisioned: false,
        detail,
        unknown: true,
    };
    match store.bucket_exists() {
        Err(why) => return unknown(why),
        Ok(false) => {
            return missing(format!(
                "{at}: does not exist: run `strata artifact-store up {name}` (with \
                 `--create_bucket=true` set on the component, strata creates it)"
            ));
        }
        Ok(true) => {}
    }
    match read_marker(store, component_id) {
        Err(why) => unknown(why),
        Ok(MarkerStatus::Missing) => missing(format!(
            "{at}: exists, marker `{}` missing: run `strata artifact-store up {name}`",
            store.marker_key()
        )),
        Ok(MarkerStatus::Foreign(who)) => missing(format!(
            "{at}: exists, but marker `{}` belongs to another component ({who}): give this \
             component another `--prefix` or `--bucket`",
            store.marker_key()
        )),
        Ok(MarkerStatus::Ours(_)) => Seen {
            provisioned: true,
            detail: format!("{at}: exists, marker present ({})", store.location()),
            unknown: false,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn markers_are_judged_by_their_component_id() {
        let ours = br#"{"component_id":"c-1","flavor":"s3","created_bucket":true}"#;
        assert_eq!(
            judge_marker(ours, "c-1"),
            MarkerStatus::Ours(Marker {
                component_id: "c-1".into(),
                flavor: "s3".into(),
                created_bucket: true
            })
        );
        assert_eq!(
            judge_marker(ours, "c-2"),
            MarkerStatus::Foreign("component id `c-1`".into())
        );
        assert!(matches!(
            judge_marker(b"c-1\n", "c-1"),
            MarkerStatus::Ours(_)
        ));
        assert_eq!(
            judge_marker(b"something else", "c-1"),
            MarkerStatus::Foreign("contents `something else`".into())
        );
    }
}

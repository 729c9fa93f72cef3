//! strata's `s3` artifact store: keeps a pipeline's artifacts in a bucket of any
//! S3-compatible server (AWS S3, MinIO, Ceph, s3s-fs…), under a key prefix.
//!
//! # Setting it up
//!
//! ```sh
//! strata service-connector register s3 --type aws --endpoint=http://127.0.0.1:9000 \
//!     --access-key-id=AK… --secret-access-key=… [--region=eu-west-1]
//! strata artifact-store flavor register s3_artifact_store.wasm
//! strata artifact-store register st --flavor=s3 --bucket=my-bucket [--prefix=team/store] \
//!     [--create_bucket=true] --connector=s3
//! strata artifact-store up st
//! ```
//!
//! The credentials, the endpoint and the region come only from the component's service
//! connector, which must be of type `aws`: strata tells the flavor `connector.endpoint`
//! and `connector.region` (default `us-east-1`), never the keys, and its network gate
//! signs every request to the endpoint with AWS Signature Version 4. Every request goes
//! to `{endpoint}/{bucket}/{key}` (path style, so any endpoint works, `localhost`
//! included), with `x-amz-content-sha256: UNSIGNED-PAYLOAD`: bodies are not hashed in the
//! sandbox. Without a connector, every call fails saying how to register and bind one.
//!
//! # Configuration
//!
//! | field | kind | default | what it does |
//! |---|---|---|---|
//! | `bucket` | text | required | the bucket: 3–63 characters, lower-case letters, digits, `.` and `-`, starting and ending with a letter or digit, not an IP address (every broken rule is reported at `register`) |
//! | `prefix` | text | `""` | the key prefix the store lives under (`team/store` keeps `models/x` as `team/store/models/x`); no leading `/`, no `.`/`..` segments |
//! | `create_bucket` | boolean | `false` | `up` creates the bucket if it is missing (in the connector's region) |
//! | `delete_bucket_contents` | boolean | `false` | `down --force` may delete a bucket strata created even if objects are left in it |
//! | `multipart_threshold_mb` | integer | `64` | a write larger than this is a multipart upload in parts of this size; 5 (S3's smallest part) to 5120 |
//!
//! # The lifecycle
//!
//! - **provision** (`up`): `HeadBucket`. A missing bucket is created (`CreateBucket`,
//!   with a `LocationConstraint` outside `us-east-1`) if `create_bucket` is set, and
//!   recorded as strata's in the component's state; otherwise `up` fails, saying to
//!   create it or to pass `--create_bucket=true`. Then the marker object
//!   `{prefix}.strata-artifact-store` is written (JSON: the component's id, and whether
//!   strata created the bucket): it proves the bucket writable and marks the prefix as
//!   this component's. A marker of another component stops `up`. Running it again
//!   changes nothing.
//! - **resume**, **suspend**: record the phase only.
//! - **status**: `HeadBucket`, then `GetObject` of the marker: provisioned when both
//!   exist and the marker is this component's; the detail says what is missing, or why
//!   the server refused (a wrong key, say). It changes nothing.
//! - **deprovision** (`down --force`): for a bucket strata did not create, deletes the
//!   marker and nothing else: the bucket and the artifacts under the prefix stay (a log
//!   line says so). For a bucket strata created: if objects besides the marker are left
//!   and `delete_bucket_contents` is not set, nothing is deleted and `down --force`
//!   fails, naming how many objects there are and the flag; otherwise every object goes
//!   (`DeleteObjects` batches of 1,000, with the `Content-MD5` S3 requires), then the
//!   marker, then the bucket (`DeleteBucket`). The marker goes last so that, while
//!   anything is left, `status` still says provisioned and another `down --force` goes
//!   on where this one stopped; if `DeleteBucket` fails, the marker is written back.
//!
//! # Files and directories
//!
//! The artifact-store functions take paths relative to the store's root (the prefix):
//! an absolute path, a `..`, a control character, and the marker's name at the root are
//! refused. S3 has only keys, so:
//!
//! - a **file** is the object of that key;
//! - a **directory** is a key prefix `path/`: it exists while any key lies below it.
//!   `makedirs` writes the zero-byte object `path/`, as the S3 console's "Create folder"
//!   does, so an empty directory exists too (its parents need nothing: `path/` lies below
//!   them). `list` shows `ListObjectsV2` with `delimiter=/`, following
//!   `NextContinuationToken`: objects as files, common prefixes as directories, sorted by
//!   name, the marker hidden.
//! - **exists** and **stat**: `HeadObject` (size from `Content-Length`, time from
//!   `Last-Modified`); if there is no such object, a one-key listing of `path/` tells a
//!   directory (size 0, no time) from nothing.
//! - **read**: a ranged `GetObject` (`Range: bytes=OFFSET-LAST`); past the end (`416`),
//!   no bytes.
//! - **write**: `create-new` checks first and writes with `If-None-Match: *`, so a file
//!   written meanwhile is not replaced; `truncate` replaces. Up to
//!   `multipart_threshold_mb` a write is one `PutObject`; above it, a multipart upload
//!   (`CreateMultipartUpload`, `UploadPart` per part of the threshold's size,
//!   `CompleteMultipartUpload`), aborted (`AbortMultipartUpload`) if any step fails, so
//!   no half-made upload is left behind. `append` to an object whose old and new bytes
//!   fit under the threshold reads it back and writes it whole; to a larger one (5 MiB
//!   or more) it is a multipart upload whose first part is the existing object, copied
//!   on the server (`UploadPartCopy`), so appending to a large artifact never downloads
//!   it.
//! - **copy**: `CopyObject` (`x-amz-copy-source`; a multipart copy above 5 GiB).
//!   **rename**: S3 has no rename: each object is copied, then the originals deleted.
//!   **remove**: `DeleteObject` for a file; a directory is everything below `path/`,
//!   deleted in `DeleteObjects` batches, refused unless `recursive` if it holds anything
//!   but its own `path/` object. The root cannot be removed.
//!
//! # Bounds
//!
//! strata gives every call at most 64 requests, 64 MiB of response bodies, 10 s and
//! 256 MiB of memory. Each function counts what it needs before it starts: a read
//! returns at most 64 MiB per call (read in pieces), a write that would need more parts
//! than requests left says to raise `multipart_threshold_mb` or write in pieces, `list`
//! stops past about 60,000 entries, a directory `rename` moves at most about 55 objects,
//! and a recursive `remove` or `down --force` of more than about 30,000 objects says to
//! call again to go on, having removed what it could. Over a slow link, give the
//! component a longer deadline (`strata artifact-store update NAME --timeout-ms=60000`):
//! strata writes a large file in calls of 64 MiB. A call cut short by its deadline
//! in a multipart upload leaves that upload unfinished: an S3 lifecycle rule
//! `AbortIncompleteMultipartUpload` cleans such uploads up.
//!
//! # Errors
//!
//! Every failure is one line naming the component, the S3 operation and what it was
//! about, the endpoint, the HTTP status, S3's error code and message, and what to do:
//! `SignatureDoesNotMatch` points at the connector's secret access key
//! (`strata service-connector update NAME --secret-access-key=…`), `NoSuchBucket` at
//! `--create_bucket=true`, a region mismatch at `--region=`. For a `HEAD`, whose answer
//! has no body, a `GET` of the same thing learns the code. No answer at all (connection
//! refused, a timeout) names the endpoint and says the server may be down.
//!
//! # Servers that keep objects as files
//!
//! s3s-fs (and servers like it) store `a/b` as a file `b` in a directory `a`: there an
//! empty directory (made by `makedirs`, or left by removing its last file) is not seen
//! by listings, and a `HEAD` of it fails with 500 `InternalError`. Removing a directory
//! recursively also deletes the `dir/` keys of the directories below it, deepest first,
//! which such servers need to remove the directories themselves (elsewhere these deletes
//! do nothing).

mod codec;
mod lifecycle;
mod s3;
mod settings;
mod store;
mod xml;

#[cfg(test)]
mod live;
#[cfg(test)]
mod mock;
#[cfg(test)]
mod tests;

strata_flavor_sdk::wit_bindgen::generate!({
    path: "../../wit",
    world: "strata:flavor/artifact-store-flavor",
    runtime_path: "strata_flavor_sdk::rt",
    with: {
        "strata:flavor/types@0.2.0": strata_flavor_sdk::bindings::strata::flavor::types,
        "strata:flavor/host@0.2.0": strata_flavor_sdk::bindings::strata::flavor::host,
        "wasi:http/types@0.2.12": strata_flavor_sdk::bindings::wasi::http::types,
        "wasi:http/outgoing-handler@0.2.12": strata_flavor_sdk::bindings::wasi::http::outgoing_handler,
        "wasi:io/poll@0.2.12": strata_flavor_sdk::bindings::wasi::io::poll,
        "wasi:io/error@0.2.12": strata_flavor_sdk::bindings::wasi::io::error,
        "wasi:io/streams@0.2.12": strata_flavor_sdk::bindings::wasi::io::streams,
        "wasi:clocks/monotonic-clock@0.2.12": strata_flavor_sdk::bindings::wasi::clocks::monotonic_clock,
    },
});

use exports::strata::flavor::artifact_store::{self, DirEntry, FileStat, WriteMode};
use strata_flavor_sdk::{
    Call, ComponentType, Config, Context, Error, Field, Flavor, Info, Problems, Result, Status,
    info,
};

use lifecycle::StoreState;
use settings::Settings;
use store::{Mode, Store};

/// The `s3` artifact store.
pub struct S3Store;

impl Flavor for S3Store {
    type Settings = Settings;
    type State = StoreState;

    fn info() -> Info {
        Info::new("s3", ComponentType::ArtifactStore)
            .version(env!("CARGO_PKG_VERSION"))
            .description(
                "Keeps artifacts in a bucket of an S3-compatible server (AWS S3, MinIO, …), \
                 under a key prefix. Needs a service connector of type `aws` \
                 (`--connector=NAME`): its endpoint, region and credentials.",
            )
            .schemes(Vec::<String>::new())
            .field(
                Field::text(
                    "bucket",
                    "The S3 bucket: 3-63 lower-case letters, digits, `.` and `-`, starting \
                     and ending with a letter or digit.",
                )
                .required(),
            )
            .field(
                Field::text(
                    "prefix",
                    "The key prefix the store lives under, like `team/store` (no leading \
                     `/`); empty for the whole bucket.",
                )
                .default(""),
            )
            .field(
                Field::boolean(
                    "create_bucket",
                    "Whether `up` creates the bucket if it does not exist (and `down --force` \
                     deletes it again).",
                )
                .default(false),
            )
            .field(
                Field::boolean(
                    "delete_bucket_contents",
                    "Whether `down --force` may delete a bucket strata created while objects \
                     are still in it.",
                )
                .default(false),
            )
            .field(
                Field::integer(
                    "multipart_threshold_mb",
                    "Writes larger than this many MiB use a multipart upload in parts of this \
                     size (5 to 5120).",
                )
                .default(settings::DEFAULT_THRESHOLD_MB),
            )
    }

    fn settings(config: &Config<'_>, problems: &mut Problems) -> Option<Settings> {
        settings::read(config, problems)
    }

    fn provision(call: &mut Call<'_, Self>) -> Result<()> {
        let store = Store::new(call.component_name, &call.settings)?;
        call.state = lifecycle::provision(&store, &call.settings, call.component_id, &call.state)?;
        Ok(())
    }

    fn deprovision(call: &mut Call<'_, Self>) -> Result<()> {
        let store = Store::new(call.component_name, &call.settings)?;
        lifecycle::deprovision(&store, &call.settings, call.component_id, &call.state)?;
        Ok(())
    }

    fn status(call: &Call<'_, Self>) -> Status {
        let store = match Store::new(call.component_name, &call.settings) {
            Ok(store) => store,
            Err(message) => return Status::not_provisioned(message),
        };
        let seen = lifecycle::look(&store, call.component_id);
        // The server cannot say: the phase strata recorded stands, so that `down
        // --force` still tries (and names the server) rather than skipping a
        // deprovision it cannot know is done.
        if seen.unknown && call.phase().provisioned {
            return Status::provisioned(
                call.phase().running,
                format!("{} (the phase shown is the last one recorded)", seen.detail),
            );
        }
        if !seen.provisioned {
            return Status::not_provisioned(seen.detail);
        }
        let running = call.phase().running;
        Status::provisioned(
            running,
            if running {
                format!("{}; running", seen.detail)
            } else {
                format!("{}; suspended: run {}", seen.detail, call.command("up"))
            },
        )
    }

    fn prepare_pipeline_deployment(call: &Call<'_, Self>, _runtime: &Config<'_>) -> Result<()> {
        if !call.phase().running {
            return Err(Error::new(format!(
                "artifact store `{}` is not running",
                call.component_name
            ))
            .with_hint(format!("run {}", call.command("up"))));
        }
        let store = Store::new(call.component_name, &call.settings)?;
        info!(
            "artifacts of this run go to {} at {}",
            store.location(),
            store.s3().endpoint()
        );
        Ok(())
    }
}

strata_flavor_sdk::impl_lifecycle!(S3Store, exports::strata::flavor::lifecycle::Guest);

/// The store of the call `ctx`.
fn open(ctx: &Context) -> std::result::Result<Store, String> {
    let call = Call::<S3Store>::new(ctx)?;
    Store::new(call.component_name, &call.settings)
}

impl artifact_store::Guest for S3Store {
    fn exists(ctx: Context, path: String) -> std::result::Result<bool, String> {
        open(&ctx)?.exists(&path)
    }

    fn stat(ctx: Context, path: String) -> std::result::Result<FileStat, String> {
        let (size, is_dir, modified_ms) = open(&ctx)?.stat(&path)?;
        Ok(FileStat {
            size,
            is_dir,
            modified_ms,
        })
    }

    fn read(
        ctx: Context,
        path: String,
        offset: u64,
        length: u64,
    ) -> std::result::Result<Vec<u8>, String> {
        open(&ctx)?.read(&path, offset, length)
    }

    fn write(
        ctx: Context,
        path: String,
        data: Vec<u8>,
        mode: WriteMode,
    ) -> std::result::Result<u64, String> {
        let mode = match mode {
            WriteMode::CreateNew => Mode::CreateNew,
            WriteMode::Truncate => Mode::Truncate,
            WriteMode::Append => Mode::Append,
        };
        open(&ctx)?.write(&path, data, mode)
    }

    fn list(ctx: Context, path: String) -> std::result::Result<Vec<DirEntry>, String> {
        Ok(open(&ctx)?
            .list(&path)?
            .into_iter()
            .map(|entry| DirEntry {
                name: entry.name,
                is_dir: entry.is_dir,
            })
            .collect())
    }

    fn makedirs(ctx: Context, path: String) -> std::result::Result<(), String> {
        open(&ctx)?.makedirs(&path)
    }

    fn remove(ctx: Context, path: String, recursive: bool) -> std::result::Result<(), String> {
        open(&ctx)?.remove(&path, recursive)
    }

    fn rename(
        ctx: Context,
        source: String,
        destination: String,
        overwrite: bool,
    ) -> std::result::Result<(), String> {
        open(&ctx)?.rename(&source, &destination, overwrite)
    }

    fn copy(
        ctx: Context,
        source: String,
        destination: String,
        overwrite: bool,
    ) -> std::result::Result<(), String> {
        open(&ctx)?.copy(&source, &destination, overwrite)
    }
}

export!(S3Store);

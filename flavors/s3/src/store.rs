//! The artifact-store operations on a bucket: paths of the store become keys under its
//! prefix, and S3's flat key space is read as files and directories.
//!
//! Every operation stays inside one call's budget (64 requests, 64 MiB of answers): it
//! counts what it will need before it starts, and refuses with a clear message what it
//! cannot finish, rather than stopping half way.

use strata_flavor_sdk::http::{Request, Response};

use crate::codec::{base64, encode_query, md5, parse_http_date, xml_escape};
use crate::s3::{S3, SMALL_ANSWER};
use crate::settings::{MARKER, MAX_PART, MIN_PART, Settings};
use crate::xml::{self, ListPage, ListedObject};

/// The largest existing object an append reads back and writes again whole (when old and
/// new fit under the multipart threshold); a larger one is copied on the server.
const MAX_REWRITE: u64 = 32 * 1024 * 1024;
/// The least a `GetObject` may read, whatever it asks for: room for an error's XML.
const ERROR_ROOM: u64 = 64 * 1024;
/// Keys per `DeleteObjects`, S3's maximum.
const DELETE_BATCH: usize = 1000;
/// Keys per page of a listing, S3's maximum.
const PAGE: u32 = 1000;

/// How `write` treats a file that exists.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    CreateNew,
    Truncate,
    Append,
}

/// What a path of the store is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// An object of that key.
    File {
        size: u64,
        modified_ms: Option<u64>,
    },
    /// No object of that key, but keys below `key/` (or the zero-byte `key/` itself).
    Dir,
    Missing,
}

/// One entry of a listing.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Entry {
    pub name: String,
    pub is_dir: bool,
}

/// The answer to a `HEAD` of an object.
enum Head {
    Found {
        size: u64,
        modified_ms: Option<u64>,
    },
    NotFound,
    /// A 5xx: some servers (s3s-fs) answer so for a key that is a directory on their disk.
    ServerError(Response),
}

/// One part of a multipart upload.
enum Part<'a> {
    /// Bytes sent with the request (`UploadPart`).
    Data(&'a [u8]),
    /// A range of an existing object, copied on the server (`UploadPartCopy`).
    Copy {
        key: &'a str,
        range: Option<(u64, u64)>,
    },
}

/// The store of one component, for one call.
pub struct Store {
    s3: S3,
    prefix: String,
    threshold: u64,
}

/// Checks a path given to the store and returns it relative to the root, normalised:
/// no leading, trailing or doubled `/`, no `.` segments; `""` is the root.
///
/// # Errors
/// An absolute path (`outside`), a `..` (`leaves`), a NUL or control character, or the
/// reserved marker name at the root.
pub fn relative(path: &str) -> Result<String, String> {
    if path.starts_with('/') {
        return Err(format!(
            "path `{}` is absolute, outside the store: give a path relative to the store's \
             root, like `models/v1/weights.bin`",
            path.escape_debug()
        ));
    }
    if path.chars().any(char::is_control) {
        return Err(format!(
            "path `{}` holds a control character, which this store does not keep in a key: \
             remove it",
            path.escape_debug()
        ));
    }
    let mut parts = Vec::new();
    for part in path.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                return Err(format!(
                    "path `{path}` holds `..`, which could leave the store's root: give the path \
                     inside the store without `..`"
                ));
            }
            part => parts.push(part),
        }
    }
    if parts.first().is_some_and(|first| first.starts_with(MARKER)) {
        return Err(format!(
            "path `{path}` is reserved: `{MARKER}` is the marker strata keeps at the root of \
             the store; choose another name"
        ));
    }
    Ok(parts.join("/"))
}

/// `what` for messages: `` `models/x` `` or "the root of the store".
fn shown(rel: &str) -> String {
    if rel.is_empty() {
        "the root of the store".to_string()
    } else {
        format!("`{rel}`")
    }
}

/// The range `bytes=FIRST-LAST` for `length` bytes from `offset` (`length` ≥ 1).
pub fn range_header(offset: u64, length: u64) -> String {
    let last = offset.saturating_add(length.max(1) - 1);
    format!("bytes={offset}-{last}")
}

/// The total size in a `Content-Range: bytes 0-99/1234` header, if it says.
pub fn total_of_content_range(value: &str) -> Option<u64> {
    value.rsplit_once('/')?.1.trim().parse().ok()
}

/// The ranges `UploadPartCopy` copies an object of `size` bytes in: the whole object if
/// it fits in one part, else equal ranges of at most 5 GiB (each well over 5 MiB).
pub fn copy_ranges(size: u64) -> Vec<Option<(u64, u64)>> {
    if size <= MAX_PART {
        return vec![None];
    }
    let count = size.div_ceil(MAX_PART);
    let each = size.div_ceil(count);
    (0..count)
        .map(|i| {
            let first = i * each;
            Some((first, (first + each).min(size) - 1))
        })
        .collect()
}

/// The "directories" strictly below `prefix` that `key` lies in, and `prefix` itself:
/// `a/`, `a/b/` for `a/b/c` under `a/`.
fn dirs_of(prefix: &str, key: &str, into: &mut Vec<String>) {
    if let Some(rest) = key.strip_prefix(prefix) {
        let mut at = prefix.len();
        into.push(prefix.to_string());
        for (i, c) in rest.char_indices() {
            if c == '/' {
                let end = prefix.len() + i + 1;
                if end > at {
                    into.push(key[..end].to_string());
                    at = end;
                }
            }
        }
    }
}

/// `keys` sorted deepest first, without duplicates: the order in which empty
/// "directories" can be removed from a server that keeps them as directories on disk.
fn deepest_first(mut keys: Vec<String>) -> Vec<String> {
    keys.sort();
    keys.dedup();
    keys.sort_by(|a, b| {
        b.matches('/')
            .count()
            .cmp(&a.matches('/').count())
            .then_with(|| b.cmp(a))
    });
    keys
}

impl Store {
    /// The store of the component `component` configured by `settings`.
    ///
    /// # Errors
    /// The message for a missing or unsuitable service connector.
    pub fn new(component: &str, settings: &Settings) -> Result<Store, String> {
        let connector = settings
            .connector
            .as_ref()
            .map_err(|problem| problem.message(component))?;
        Ok(Store {
            s3: S3::new(component, connector, &settings.bucket),
            prefix: settings.prefix.clone(),
            threshold: settings.threshold,
        })
    }

    /// The client, for the lifecycle.
    pub fn s3(&self) -> &S3 {
        &self.s3
    }

    /// The key prefix of the root: `""` or ending with `/`.
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// The key of the marker object.
    pub fn marker_key(&self) -> String {
        format!("{}{MARKER}", self.prefix)
    }

    /// `s3://bucket/prefix`, for messages.
    pub fn location(&self) -> String {
        format!("s3://{}/{}", self.s3.bucket(), self.prefix)
    }

    fn key(&self, rel: &str) -> String {
        format!("{}{rel}", self.prefix)
    }

    /// The prefix of the keys inside the directory `rel`.
    fn dir_prefix(&self, rel: &str) -> String {
        if rel.is_empty() {
            self.prefix.clone()
        } else {
            format!("{}{rel}/", self.prefix)
        }
    }

    fn component(&self) -> &str {
        self.s3.component()
    }

    // ----- requests -----

    /// `HeadBucket`: whether the bucket exists.
    ///
    /// # Errors
    /// Any answer but 200 and 404, or none.
    pub fn bucket_exists(&self) -> Result<bool, String> {
        let response =
            self.s3
                .send("HeadBucket", None, crate::s3::head(&self.s3.bucket_url("")))?;
        match response.status {
            200..=299 => Ok(true),
            404 => Ok(false),
            _ => Err(self.s3.head_failure("HeadBucket", None, &response)),
        }
    }

    /// `HeadObject` of `key`.
    fn head(&self, key: &str) -> Result<Head, String> {
        let response = self.s3.send(
            "HeadObject",
            Some(key),
            crate::s3::head(&self.s3.object_url(key, "")),
        )?;
        match response.status {
            200..=299 => Ok(Head::Found {
                size: response
                    .header("content-length")
                    .and_then(|l| l.trim().parse().ok())
                    .unwrap_or(0),
                modified_ms: response.header("last-modified").and_then(parse_http_date),
            }),
            404 => Ok(Head::NotFound),
            500..=599 => Ok(Head::ServerError(response)),
            _ => Err(self.s3.head_failure("HeadObject", Some(key), &response)),
        }
    }

    /// One page of `ListObjectsV2` of the keys starting with `prefix`, grouped by `/`
    /// if `delimited`.
    fn list_page(
        &self,
        prefix: &str,
        delimited: bool,
        max_keys: u32,
        token: Option<&str>,
    ) -> Result<ListPage, String> {
        let mut query = format!(
            "list-type=2&max-keys={max_keys}&prefix={}",
            encode_query(prefix)
        );
        if delimited {
            query.push_str("&delimiter=%2F");
        }
        if let Some(token) = token {
            query.push_str("&continuation-token=");
            query.push_str(&encode_query(token));
        }
        let shown_prefix = if prefix.is_empty() {
            None
        } else {
            Some(prefix)
        };
        let response = self.s3.send(
            "ListObjectsV2",
            shown_prefix,
            Request::get(&self.s3.bucket_url(&query)).max_bytes(SMALL_ANSWER),
        )?;
        if response.status != 200 {
            return Err(self.s3.failure("ListObjectsV2", shown_prefix, &response));
        }
        xml::list_page(&response.body).map_err(|why| {
            format!(
                "artifact store `{}`: S3 ListObjectsV2 of bucket `{}` answered 200 with a body \
                 this flavor cannot read ({why})",
                self.component(),
                self.s3.bucket()
            )
        })
    }

    /// Whether any key starts with `prefix`.
    fn any_below(&self, prefix: &str) -> Result<bool, String> {
        let page = self.list_page(prefix, false, 1, None)?;
        Ok(!page.objects.is_empty() || !page.prefixes.is_empty())
    }

    /// What `rel` is.
    ///
    /// # Errors
    /// A failed request.
    pub fn kind(&self, rel: &str) -> Result<Kind, String> {
        if rel.is_empty() {
            return Ok(Kind::Dir);
        }
        let key = self.key(rel);
        match self.head(&key)? {
            Head::Found { size, modified_ms } => Ok(Kind::File { size, modified_ms }),
            Head::NotFound => Ok(if self.any_below(&format!("{key}/"))? {
                Kind::Dir
            } else {
                Kind::Missing
            }),
            Head::ServerError(response) => {
                if self.any_below(&format!("{key}/"))? {
                    Ok(Kind::Dir)
                } else {
                    Err(format!(
                        "{} (a server that keeps objects as files on its disk, like s3s-fs, \
                         answers so for an empty directory)",
                        self.s3.failure("HeadObject", Some(&key), &response)
                    ))
                }
            }
        }
    }

    /// `PutObject` of `body` at `key`; with `create_new`, only if no object has that key
    /// (`If-None-Match: *`).
    fn put_object(
        &self,
        key: &str,
        body: Vec<u8>,
        create_new: bool,
        rel: &str,
    ) -> Result<(), String> {
        let mut request = Request::put(&self.s3.object_url(key, ""))
            .header("content-type", "application/octet-stream");
        if body.is_empty() {
            request = request.header("content-length", "0");
        }
        if create_new {
            request = request.header("if-none-match", "*");
        }
        let response = self.s3.send("PutObject", Some(key), request.body(body))?;
        match response.status {
            200..=299 => Ok(()),
            412 if create_new => Err(exists_error(rel)),
            _ => Err(self.s3.failure("PutObject", Some(key), &response)),
        }
    }

    /// `DeleteObject` of `key` (already gone counts as deleted).
    fn delete_object(&self, key: &str) -> Result<(), String> {
        let response = self.s3.send(
            "DeleteObject",
            Some(key),
            Request::delete(&self.s3.object_url(key, "")),
        )?;
        match response.status {
            200..=299 | 404 => Ok(()),
            _ => Err(self.s3.failure("DeleteObject", Some(key), &response)),
        }
    }

    /// Deletes `keys` with `DeleteObjects`, in batches of 1,000 (one key: `DeleteObject`).
    ///
    /// # Errors
    /// A failed request, or the keys the server could not delete.
    fn delete_keys(&self, keys: &[String]) -> Result<(), String> {
        if let [key] = keys {
            return self.delete_object(key);
        }
        for batch in keys.chunks(DELETE_BATCH) {
            let mut body = String::from(
                "<Delete xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\"><Quiet>true</Quiet>",
            );
            for key in batch {
                body.push_str("<Object><Key>");
                body.push_str(&xml_escape(key));
                body.push_str("</Key></Object>");
            }
            body.push_str("</Delete>");
            let body = body.into_bytes();
            let request = Request::post(&self.s3.bucket_url("delete"))
                .header("content-type", "application/xml")
                .header("content-md5", &base64(&md5(&body)))
                .body(body)
                .max_bytes(SMALL_ANSWER);
            let response = self.s3.send("DeleteObjects", None, request)?;
            if response.status != 200 {
                return Err(self.s3.failure("DeleteObjects", None, &response));
            }
            let failed = xml::delete_failures(&response.body).map_err(|why| {
                format!(
                    "artifact store `{}`: S3 DeleteObjects in bucket `{}` answered 200 with a \
                     body this flavor cannot read ({why})",
                    self.component(),
                    self.s3.bucket()
                )
            })?;
            if let Some((key, error)) = failed.first() {
                return Err(format!(
                    "{} (and {} more of the {} keys)",
                    self.s3
                        .describe("DeleteObjects", Some(key), 200, error, None),
                    failed.len() - 1,
                    batch.len()
                ));
            }
        }
        Ok(())
    }

    /// `CopyObject` of `from` (of `size` bytes) to `to`: one request, or a multipart
    /// copy above 5 GiB.
    fn copy_object(&self, from: &str, to: &str, size: u64) -> Result<(), String> {
        if size > MAX_PART {
            let parts: Vec<Part<'_>> = copy_ranges(size)
                .into_iter()
                .map(|range| Part::Copy { key: from, range })
                .collect();
            return self.multipart(to, &parts, false, to);
        }
        let request = Request::put(&self.s3.object_url(to, ""))
            .header("x-amz-copy-source", &self.s3.copy_source(from))
            .header("content-length", "0")
            .max_bytes(SMALL_ANSWER);
        let response = self.s3.send("CopyObject", Some(to), request)?;
        // S3 may answer 200 and then fail: the body says which.
        if response.status != 200 || xml::error_of(&response.body).is_some() {
            return Err(self.s3.failure("CopyObject", Some(to), &response));
        }
        Ok(())
    }

    /// A multipart upload of `parts` to `key`; with `create_new`, completed only if no
    /// object has that key. Aborted if any step fails, so no unfinished upload is left.
    fn multipart(
        &self,
        key: &str,
        parts: &[Part<'_>],
        create_new: bool,
        rel: &str,
    ) -> Result<(), String> {
        // Create, each part, complete, and an abort in reserve.
        let needed = parts.len() as u32 + 3;
        if needed > self.s3.requests_left() {
            return Err(format!(
                "artifact store `{}`: writing {} takes a multipart upload of {} parts of at \
                 most {} MiB, and with what this call did already that is more requests than \
                 the {} strata lets one call make: raise the part size (`strata \
                 artifact-store update {} --multipart_threshold_mb=…`) or write in smaller \
                 pieces",
                self.component(),
                shown(rel),
                parts.len(),
                self.threshold / (1024 * 1024),
                crate::s3::MAX_REQUESTS,
                self.component()
            ));
        }
        let response = self.s3.send(
            "CreateMultipartUpload",
            Some(key),
            Request::post(&self.s3.object_url(key, "uploads"))
                .header("content-type", "application/octet-stream")
                .header("content-length", "0")
                .max_bytes(SMALL_ANSWER),
        )?;
        if response.status != 200 {
            return Err(self
                .s3
                .failure("CreateMultipartUpload", Some(key), &response));
        }
        let upload = xml::upload_id(&response.body).map_err(|why| {
            format!(
                "artifact store `{}`: S3 CreateMultipartUpload of `{key}` answered 200 with a \
                 body this flavor cannot read ({why})",
                self.component()
            )
        })?;
        let result = self.upload_parts(key, &upload, parts, create_new, rel);
        if result.is_err() {
            self.abort(key, &upload);
        }
        result
    }

    /// The parts and the completion of the multipart upload `upload`.
    fn upload_parts(
        &self,
        key: &str,
        upload: &str,
        parts: &[Part<'_>],
        create_new: bool,
        rel: &str,
    ) -> Result<(), String> {
        let upload_query = encode_query(upload);
        let mut etags = Vec::with_capacity(parts.len());
        for (i, part) in parts.iter().enumerate() {
            let number = i + 1;
            let url = self
                .s3
                .object_url(key, &format!("partNumber={number}&uploadId={upload_query}"));
            let etag = match part {
                Part::Data(bytes) => {
                    let request = Request::put(&url).body(bytes.to_vec());
                    let request = if bytes.is_empty() {
                        request.header("content-length", "0")
                    } else {
                        request
                    };
                    let response = self.s3.send("UploadPart", Some(key), request)?;
                    if !response.is_success() {
                        return Err(self.s3.failure("UploadPart", Some(key), &response));
                    }
                    response.header("etag").unwrap_or("").to_string()
                }
                Part::Copy { key: source, range } => {
                    let mut request = Request::put(&url)
                        .header("x-amz-copy-source", &self.s3.copy_source(source))
                        .header("content-length", "0")
                        .max_bytes(SMALL_ANSWER);
                    if let Some((first, last)) = range {
                        request = request
                            .header("x-amz-copy-source-range", &format!("bytes={first}-{last}"));
                    }
                    let response = self.s3.send("UploadPartCopy", Some(key), request)?;
                    if response.status != 200 || xml::error_of(&response.body).is_some() {
                        return Err(self.s3.failure("UploadPartCopy", Some(key), &response));
                    }
                    xml::copy_etag(&response.body).map_err(|why| {
                        format!(
                            "artifact store `{}`: S3 UploadPartCopy of `{key}` answered 200 \
                             with a body this flavor cannot read ({why})",
                            self.component()
                        )
                    })?
                }
            };
            etags.push(etag);
        }
        let mut body = String::from(
            "<CompleteMultipartUpload xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\">",
        );
        for (i, etag) in etags.iter().enumerate() {
            body.push_str(&format!(
                "<Part><PartNumber>{}</PartNumber><ETag>{}</ETag></Part>",
                i + 1,
                xml_escape(etag)
            ));
        }
        body.push_str("</CompleteMultipartUpload>");
        let mut request =
            Request::post(&self.s3.object_url(key, &format!("uploadId={upload_query}")))
                .header("content-type", "application/xml")
                .body(body.into_bytes())
                .max_bytes(SMALL_ANSWER);
        if create_new {
            request = request.header("if-none-match", "*");
        }
        let response = self
            .s3
            .send("CompleteMultipartUpload", Some(key), request)?;
        match response.status {
            412 if create_new => Err(exists_error(rel)),
            200 if xml::error_of(&response.body).is_none() => Ok(()),
            _ => Err(self
                .s3
                .failure("CompleteMultipartUpload", Some(key), &response)),
        }
    }

    /// `AbortMultipartUpload`, after a failure: a failure to abort is only logged.
    fn abort(&self, key: &str, upload: &str) {
        let url = self
            .s3
            .object_url(key, &format!("uploadId={}", encode_query(upload)));
        let outcome = if self.s3.requests_left() == 0 {
            Err("no request left in this call".to_string())
        } else {
            self.s3
                .send("AbortMultipartUpload", Some(key), Request::delete(&url))
                .and_then(|response| match response.status {
                    200..=299 | 404 => Ok(()),
                    _ => Err(self
                        .s3
                        .failure("AbortMultipartUpload", Some(key), &response)),
                })
        };
        if let Err(why) = outcome {
            strata_flavor_sdk::warn!(
                "could not abort the multipart upload `{upload}` of `{key}`: {why}; its parts \
                 stay (and are billed) until it is aborted: an S3 lifecycle rule \
                 AbortIncompleteMultipartUpload removes such uploads"
            );
        }
    }

    /// `GetObject` of the whole of `key`, expected to be `size` bytes.
    fn get_whole(&self, key: &str, size: u64) -> Result<Vec<u8>, String> {
        let response = self.s3.send(
            "GetObject",
            Some(key),
            Request::get(&self.s3.object_url(key, "")).max_bytes(size.max(ERROR_ROOM)),
        )?;
        if !response.is_success() {
            return Err(self.s3.failure("GetObject", Some(key), &response));
        }
        Ok(response.body)
    }

    /// Every object whose key starts with `prefix`, listed page by page while the call
    /// has more than `reserve` requests left. The flag says whether the list is
    /// complete.
    fn objects_below(
        &self,
        prefix: &str,
        reserve: u32,
    ) -> Result<(Vec<ListedObject>, bool), String> {
        let mut objects = Vec::new();
        let mut token: Option<String> = None;
        loop {
            let page = self.list_page(prefix, false, PAGE, token.as_deref())?;
            objects.extend(page.objects);
            match page.next_token {
                Some(next) if page.truncated => {
                    if self.s3.requests_left() <= reserve {
                        return Ok((objects, false));
                    }
                    token = Some(next);
                }
                _ => return Ok((objects, true)),
            }
        }
    }

    /// How many objects have keys starting with `prefix`, `exclude` aside, and whether
    /// that is all of them (the count stops when the call has `reserve` requests left).
    ///
    /// # Errors
    /// A failed request.
    pub fn count_below(
        &self,
        prefix: &str,
        exclude: &str,
        reserve: u32,
    ) -> Result<(u64, bool), String> {
        let (objects, complete) = self.objects_below(prefix, reserve)?;
        let count = objects.iter().filter(|o| o.key != exclude).count() as u64;
        Ok((count, complete))
    }

    /// Deletes every object whose key starts with `prefix` (and the empty "directories"
    /// below it, for servers that keep them on disk), page by page within the call's
    /// budget. Returns how many were deleted, and whether that was all of them.
    pub fn delete_below(&self, prefix: &str, keep: Option<&str>) -> Result<(u64, bool), String> {
        let mut deleted = 0u64;
        let mut dirs = Vec::new();
        let mut token: Option<String> = None;
        loop {
            // The listing goes on from its token: the keys before it, deleted or kept,
            // are not listed again.
            let page = self.list_page(prefix, false, PAGE, token.as_deref())?;
            let keys: Vec<String> = page
                .objects
                .iter()
                .map(|o| o.key.clone())
                .filter(|k| Some(k.as_str()) != keep)
                .collect();
            for key in &keys {
                dirs_of(prefix, key, &mut dirs);
            }
            if !keys.is_empty() {
                self.delete_keys(&keys)?;
                deleted += keys.len() as u64;
            }
            match page.next_token {
                Some(next) if page.truncated => token = Some(next),
                _ => break,
            }
            // The next page and its batch, the directories' batch, and whatever the
            // caller does afterwards (`DeleteBucket`).
            if self.s3.requests_left() < 5 {
                return Ok((deleted, false));
            }
        }
        let dirs: Vec<String> = deepest_first(dirs)
            .into_iter()
            .filter(|d| !d.is_empty() && Some(d.as_str()) != keep)
            .collect();
        if !dirs.is_empty() && self.s3.requests_left() > 0 {
            // Harmless where they are no objects (S3 says it deleted them); on a server
            // that keeps directories on disk it removes the ones left empty.
            self.delete_keys(&dirs)?;
        }
        Ok((deleted, true))
    }

    // ----- the artifact-store functions -----

    /// Whether `path` exists, as a file or a directory.
    ///
    /// # Errors
    /// A refused path or a failed request.
    pub fn exists(&self, path: &str) -> Result<bool, String> {
        let rel = relative(path)?;
        Ok(self.kind(&rel)? != Kind::Missing)
    }

    /// Size, kind and time of `path`.
    ///
    /// # Errors
    /// A refused path, a missing one, or a failed request.
    pub fn stat(&self, path: &str) -> Result<(u64, bool, Option<u64>), String> {
        let rel = relative(path)?;
        match self.kind(&rel)? {
            Kind::File { size, modified_ms } => Ok((size, false, modified_ms)),
            Kind::Dir => Ok((0, true, None)),
            Kind::Missing => Err(missing_error(&rel)),
        }
    }

    /// Up to `length` bytes of the file `path` from `offset`.
    ///
    /// # Errors
    /// A refused path, a directory, a missing file, more than this call may read, or a
    /// failed request.
    pub fn read(&self, path: &str, offset: u64, length: u64) -> Result<Vec<u8>, String> {
        let rel = relative(path)?;
        if rel.is_empty() {
            return Err(dir_read_error(&rel));
        }
        let key = self.key(&rel);
        if length == 0 {
            return match self.kind(&rel)? {
                Kind::File { .. } => Ok(Vec::new()),
                Kind::Dir => Err(dir_read_error(&rel)),
                Kind::Missing => Err(missing_error(&rel)),
            };
        }
        let want = length.min(self.s3.bytes_left());
        if want == 0 {
            return Err(self.too_much_error(&rel));
        }
        let response = self.s3.send(
            "GetObject",
            Some(&key),
            Request::get(&self.s3.object_url(&key, ""))
                .header("range", &range_header(offset, want))
                // Room for an error's XML too.
                .max_bytes(want.max(ERROR_ROOM)),
        )?;
        match response.status {
            206 => {
                let total = response
                    .header("content-range")
                    .and_then(total_of_content_range);
                let mut body = response.body;
                body.truncate(usize::try_from(want).unwrap_or(usize::MAX));
                let got = body.len() as u64;
                if got < length && total.is_some_and(|total| offset + got < total) {
                    return Err(self.too_much_error(&rel));
                }
                Ok(body)
            }
            // A server that ignores `Range` sends the whole object.
            200 => {
                let body = response.body;
                let start = usize::try_from(offset)
                    .unwrap_or(usize::MAX)
                    .min(body.len());
                let end = usize::try_from(offset.saturating_add(length))
                    .unwrap_or(usize::MAX)
                    .min(body.len());
                Ok(body[start..end].to_vec())
            }
            // The offset is at or past the end (or the object is empty).
            416 => Ok(Vec::new()),
            404 => Err(if self.any_below(&format!("{key}/"))? {
                dir_read_error(&rel)
            } else {
                missing_error(&rel)
            }),
            500..=599 if self.any_below(&format!("{key}/"))? => Err(dir_read_error(&rel)),
            _ => Err(self.s3.failure("GetObject", Some(&key), &response)),
        }
    }

    /// Writes `data` to the file `path`; returns its size afterwards.
    ///
    /// # Errors
    /// A refused path, a directory, an existing file with `CreateNew`, more than one call
    /// can send, or a failed request.
    pub fn write(&self, path: &str, data: Vec<u8>, mode: Mode) -> Result<u64, String> {
        let rel = relative(path)?;
        if rel.is_empty() {
            return Err(
                "cannot write to the root of the store: give the path of a file inside \
                        it"
                .to_string(),
            );
        }
        let key = self.key(&rel);
        let existing = match self.kind(&rel)? {
            Kind::Dir => {
                return Err(format!(
                    "cannot write `{rel}`: it is a directory; give a file path"
                ));
            }
            Kind::File { size, .. } => Some(size),
            Kind::Missing => None,
        };
        let new = data.len() as u64;
        match (mode, existing) {
            (Mode::CreateNew, Some(_)) => Err(exists_error(&rel)),
            (Mode::Append, Some(old)) => self.append(&key, &rel, old, data),
            (mode, _) => {
                self.upload(&key, &rel, data, mode == Mode::CreateNew)?;
                Ok(new)
            }
        }
    }

    /// Writes `data` as the whole object `key`: one `PutObject`, or a multipart upload
    /// above the threshold.
    fn upload(&self, key: &str, rel: &str, data: Vec<u8>, create_new: bool) -> Result<(), String> {
        if data.len() as u64 <= self.threshold {
            return self.put_object(key, data, create_new, rel);
        }
        let parts: Vec<Part<'_>> = data
            .chunks(usize::try_from(self.threshold).unwrap_or(usize::MAX))
            .map(Part::Data)
            .collect();
        self.multipart(key, &parts, create_new, rel)
    }

    /// Adds `data` to the end of the object `key`, of `old` bytes.
    fn append(&self, key: &str, rel: &str, old: u64, data: Vec<u8>) -> Result<u64, String> {
        if data.is_empty() {
            return Ok(old);
        }
        let total = old + data.len() as u64;
        if total <= self.threshold && old <= MAX_REWRITE {
            // Small: read it back and write it whole.
            let mut whole = self.get_whole(key, old)?;
            let total = whole.len() as u64 + data.len() as u64;
            whole.extend_from_slice(&data);
            drop(data);
            self.put_object(key, whole, false, rel)?;
            return Ok(total);
        }
        if old >= MIN_PART {
            // Large: the existing object is copied on the server as the first part(s).
            let mut parts: Vec<Part<'_>> = copy_ranges(old)
                .into_iter()
                .map(|range| Part::Copy { key, range })
                .collect();
            parts.extend(
                data.chunks(usize::try_from(self.threshold).unwrap_or(usize::MAX))
                    .map(Part::Data),
            );
            self.multipart(key, &parts, false, rel)?;
            return Ok(total);
        }
        // Too small to be a part of its own: read it back and put it in front.
        let mut whole = self.get_whole(key, old)?;
        let total = whole.len() as u64 + data.len() as u64;
        whole.extend_from_slice(&data);
        drop(data);
        self.upload(key, rel, whole, false)?;
        Ok(total)
    }

    /// The entries of the directory `path`, sorted by name, without the marker.
    ///
    /// # Errors
    /// A refused path, a file, a missing directory, more entries than one call can list,
    /// or a failed request.
    pub fn list(&self, path: &str) -> Result<Vec<Entry>, String> {
        let rel = relative(path)?;
        let prefix = self.dir_prefix(&rel);
        let mut entries = Vec::new();
        let mut seen_self = false;
        let mut token: Option<String> = None;
        loop {
            let page = self.list_page(&prefix, true, PAGE, token.as_deref())?;
            for object in &page.objects {
                let Some(name) = object.key.strip_prefix(&prefix) else {
                    continue;
                };
                if name.is_empty() {
                    seen_self = true;
                } else {
                    let hidden = rel.is_empty() && name.starts_with(MARKER);
                    if hidden || name.contains('/') {
                        continue;
                    }
                    entries.push(Entry {
                        name: name.to_string(),
                        is_dir: false,
                    });
                }
            }
            for dir in &page.prefixes {
                let name = dir
                    .strip_prefix(&prefix)
                    .unwrap_or("")
                    .trim_end_matches('/');
                if !name.is_empty() && !name.contains('/') {
                    entries.push(Entry {
                        name: name.to_string(),
                        is_dir: true,
                    });
                }
            }
            match page.next_token {
                Some(next) if page.truncated => {
                    if self.s3.requests_left() < 2 {
                        return Err(format!(
                            "{} holds more than the {} entries one call can list (it makes \
                             at most {} requests of {PAGE}): list a directory below it",
                            shown(&rel),
                            entries.len(),
                            crate::s3::MAX_REQUESTS
                        ));
                    }
                    token = Some(next);
                }
                _ => break,
            }
        }
        if entries.is_empty() && !rel.is_empty() && !seen_self {
            let key = self.key(&rel);
            return Err(match self.head(&key)? {
                Head::Found { .. } => format!("cannot list `{rel}`: it is a file, not a directory"),
                Head::NotFound | Head::ServerError(_) => missing_error(&rel),
            });
        }
        entries.sort();
        entries.dedup();
        Ok(entries)
    }

    /// Makes the directory `path` exist: the zero-byte object `path/`, as the S3
    /// console's "Create folder" does. Parents need none: `path/` lies below them.
    ///
    /// # Errors
    /// A refused path, a file of that name, or a failed request.
    pub fn makedirs(&self, path: &str) -> Result<(), String> {
        let rel = relative(path)?;
        if rel.is_empty() {
            return Ok(());
        }
        let key = self.key(&rel);
        if let Head::Found { .. } = self.head(&key)? {
            return Err(format!(
                "cannot create directory `{rel}`: a file of that name exists"
            ));
        }
        self.put_object(&format!("{key}/"), Vec::new(), false, &rel)
    }

    /// Removes the file or directory `path`; a non-empty directory only if `recursive`.
    ///
    /// # Errors
    /// The root, a refused or missing path, a non-empty directory without `recursive`,
    /// more objects than one call can remove, or a failed request.
    pub fn remove(&self, path: &str, recursive: bool) -> Result<(), String> {
        let rel = relative(path)?;
        if rel.is_empty() {
            return Err(format!(
                "cannot remove the root of the store ({}): give a path inside it",
                self.location()
            ));
        }
        let key = self.key(&rel);
        let server_error = match self.head(&key)? {
            Head::Found { .. } => return self.delete_object(&key),
            Head::NotFound => None,
            Head::ServerError(response) => Some(response),
        };
        let prefix = format!("{key}/");
        let page = self.list_page(&prefix, false, if recursive { PAGE } else { 2 }, None)?;
        if page.objects.is_empty() {
            return Err(match server_error {
                Some(response) => self.s3.failure("HeadObject", Some(&key), &response),
                None => missing_error(&rel),
            });
        }
        if !recursive {
            if page.objects.iter().any(|o| o.key != prefix) {
                return Err(format!(
                    "cannot remove directory `{rel}`: it is not empty; remove it \
                     recursively, or remove its contents first"
                ));
            }
            return self.delete_keys(&[prefix]);
        }
        let (deleted, complete) = self.delete_below(&prefix, None)?;
        if complete {
            Ok(())
        } else {
            Err(format!(
                "removed {deleted} objects of directory `{rel}`, and more remain: one call \
                 makes at most {} requests; call remove again to remove the rest",
                crate::s3::MAX_REQUESTS
            ))
        }
    }

    /// Copies the file `source` to `destination`.
    ///
    /// # Errors
    /// The root, a refused or missing source, a directory, an existing destination
    /// without `overwrite`, or a failed request.
    pub fn copy(&self, source: &str, destination: &str, overwrite: bool) -> Result<(), String> {
        let from = relative(source)?;
        let to = relative(destination)?;
        if from.is_empty() || to.is_empty() {
            return Err(
                "cannot copy the root of the store, or onto it: give file paths inside \
                        it"
                .to_string(),
            );
        }
        let size = match self.kind(&from)? {
            Kind::File { size, .. } => size,
            Kind::Dir => {
                return Err(format!(
                    "cannot copy `{from}`: it is a directory, and copy copies files only; \
                     create the directory and copy its files one by one"
                ));
            }
            Kind::Missing => return Err(missing_error(&from)),
        };
        if from == to {
            return Ok(());
        }
        match self.kind(&to)? {
            Kind::Dir => {
                return Err(format!(
                    "cannot copy to `{to}`: it is a directory; give the path of the new file"
                ));
            }
            Kind::File { .. } if !overwrite => return Err(destination_error(&to)),
            _ => {}
        }
        self.copy_object(&self.key(&from), &self.key(&to), size)
    }

    /// Moves `source` to `destination`: S3 has no rename, so each object is copied, then
    /// the originals deleted.
    ///
    /// # Errors
    /// The root, a refused or missing source, an existing destination without
    /// `overwrite`, a file and a directory in each other's place, a directory moved into
    /// itself, more objects than one call can move, or a failed request.
    pub fn rename(&self, source: &str, destination: &str, overwrite: bool) -> Result<(), String> {
        let from = relative(source)?;
        let to = relative(destination)?;
        if from.is_empty() || to.is_empty() {
            return Err(
                "cannot move the root of the store, or onto it: give paths inside it".to_string(),
            );
        }
        let source_kind = self.kind(&from)?;
        if source_kind == Kind::Missing {
            return Err(missing_error(&from));
        }
        if from == to {
            return Ok(());
        }
        let target_kind = self.kind(&to)?;
        match (source_kind, target_kind) {
            (Kind::File { size, .. }, target) => {
                match target {
                    Kind::Dir => {
                        return Err(format!(
                            "cannot replace directory `{to}` with file `{from}`: remove the \
                             directory first"
                        ));
                    }
                    Kind::File { .. } if !overwrite => return Err(destination_error(&to)),
                    _ => {}
                }
                let from_key = self.key(&from);
                self.copy_object(&from_key, &self.key(&to), size)?;
                self.delete_object(&from_key)
            }
            (Kind::Dir, target) => {
                if to.starts_with(&format!("{from}/")) {
                    return Err(format!(
                        "cannot move directory `{from}` into itself (to `{to}`)"
                    ));
                }
                match target {
                    Kind::File { .. } if overwrite => {
                        return Err(format!(
                            "cannot replace file `{to}` with directory `{from}`: remove the \
                             file first"
                        ));
                    }
                    Kind::File { .. } | Kind::Dir if !overwrite => {
                        return Err(destination_error(&to));
                    }
                    _ => {}
                }
                self.move_dir(&from, &to, target == Kind::Dir)
            }
            (Kind::Missing, _) => Err(missing_error(&from)),
        }
    }

    /// Moves every object below `from/` to `to/`, first removing those below `to/` if
    /// `replace`.
    fn move_dir(&self, from: &str, to: &str, replace: bool) -> Result<(), String> {
        let from_prefix = format!("{}/", self.key(from));
        let to_prefix = format!("{}/", self.key(to));
        let (objects, complete) = self.objects_below(&from_prefix, 8)?;
        // One copy per object (more above 5 GiB), the deletes, the replaced directory.
        let needed = objects.len() as u32 + 4 + if replace { 4 } else { 0 };
        if !complete
            || needed > self.s3.requests_left()
            || objects.iter().any(|o| o.size > MAX_PART)
        {
            return Err(format!(
                "cannot move directory `{from}`: S3 has no rename, so moving it copies each of \
                 its {}{} objects, and one call makes at most {} requests; move its \
                 subdirectories or files one by one",
                if complete { "" } else { "more than " },
                objects.len(),
                crate::s3::MAX_REQUESTS
            ));
        }
        if replace {
            let (_, done) = self.delete_below(&to_prefix, None)?;
            if !done {
                return Err(format!(
                    "could not empty `{to}` to replace it within one call: remove it first"
                ));
            }
        }
        let mut keys = Vec::with_capacity(objects.len());
        for object in &objects {
            let rest = &object.key[from_prefix.len()..];
            self.copy_object(&object.key, &format!("{to_prefix}{rest}"), object.size)
                .map_err(|why| {
                    format!(
                        "{why} (moving directory `{from}` to `{to}`: the objects copied so far \
                         are in both places; `{from}` is complete)"
                    )
                })?;
            keys.push(object.key.clone());
        }
        let mut dirs = Vec::new();
        for key in &keys {
            dirs_of(&from_prefix, key, &mut dirs);
        }
        let dirs: Vec<String> = deepest_first(dirs)
            .into_iter()
            .filter(|d| !keys.contains(d))
            .collect();
        keys.extend(dirs);
        self.delete_keys(&keys)
    }

    /// The message for a read of more than one call may receive.
    fn too_much_error(&self, rel: &str) -> String {
        format!(
            "cannot read that much of `{rel}` in one call: strata lets a call receive at \
             most {} MiB; read it in smaller pieces",
            crate::s3::MAX_RECEIVED / (1024 * 1024)
        )
    }
}

fn missing_error(rel: &str) -> String {
    format!("`{rel}` does not exist in the store")
}

fn dir_read_error(rel: &str) -> String {
    format!(
        "cannot read {}: it is a directory; list it instead",
        shown(rel)
    )
}

fn exists_error(rel: &str) -> String {
    format!(
        "cannot create `{rel}`: it already exists; write it with mode `truncate` to replace \
         it, or remove it first"
    )
}

fn destination_error(rel: &str) -> String {
    format!(
        "destination `{rel}` already exists: pass overwrite to replace it, or choose another \
         name"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_are_relative_normalised_and_kept_inside() {
        assert_eq!(relative("").unwrap(), "");
        assert_eq!(relative("models/./v1//w.bin/").unwrap(), "models/v1/w.bin");
        assert!(relative("/etc/passwd").unwrap_err().contains("outside"));
        for climbing in ["../x", "a/../../x", "a/.."] {
            assert!(
                relative(climbing).unwrap_err().contains("leave"),
                "{climbing}"
            );
        }
        assert!(
            relative(".strata-artifact-store")
                .unwrap_err()
                .contains("reserved")
        );
        assert!(
            relative("./.strata-artifact-store.x")
                .unwrap_err()
                .contains("reserved")
        );
        assert_eq!(
            relative("dir/.strata-artifact-store").unwrap(),
            "dir/.strata-artifact-store"
        );
        assert!(relative("a\nb").unwrap_err().contains("control"));
    }

    #[test]
    fn range_maths() {
        assert_eq!(range_header(0, 1), "bytes=0-0");
        assert_eq!(range_header(10, 5), "bytes=10-14");
        assert_eq!(
            range_header(u64::MAX - 1, u64::MAX),
            format!("bytes={}-{}", u64::MAX - 1, u64::MAX)
        );
        assert_eq!(total_of_content_range("bytes 0-99/1234"), Some(1234));
        assert_eq!(total_of_content_range("bytes */1234"), Some(1234));
        assert_eq!(total_of_content_range("bytes 0-99/*"), None);
    }

    #[test]
    fn copies_above_five_gib_go_in_equal_ranges() {
        assert_eq!(copy_ranges(0), [None]);
        assert_eq!(copy_ranges(MAX_PART), [None]);
        let ranges = copy_ranges(MAX_PART + 1);
        assert_eq!(ranges.len(), 2);
        let sizes: Vec<u64> = ranges
            .iter()
            .map(|r| r.map(|(a, b)| b - a + 1).unwrap())
            .collect();
        assert_eq!(sizes.iter().sum::<u64>(), MAX_PART + 1);
        assert!(sizes.iter().all(|&s| (MIN_PART..=MAX_PART).contains(&s)));
        assert_eq!(ranges[0].unwrap().0, 0);
        assert_eq!(ranges[1].unwrap().1, MAX_PART);
        let many = copy_ranges(3 * MAX_PART);
        assert_eq!(many.len(), 3);
    }

    #[test]
    fn the_directories_a_key_lies_in_deepest_first() {
        let mut dirs = Vec::new();
        dirs_of("s/d/", "s/d/a/b/c.txt", &mut dirs);
        dirs_of("s/d/", "s/d/a/x", &mut dirs);
        dirs_of("s/d/", "s/d/top", &mut dirs);
        dirs_of("s/d/", "elsewhere", &mut dirs);
        assert_eq!(deepest_first(dirs), ["s/d/a/b/", "s/d/a/", "s/d/"]);
    }
}

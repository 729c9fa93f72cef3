//! An S3 server in memory, for the native tests: it answers the requests the flavor
//! sends on the test's thread (through `strata_flavor_sdk::http::answer_with`) the way
//! S3 does, strictly where it matters: `Content-MD5` of `DeleteObjects`, the 5 MiB
//! minimum of every part but the last, part ETags, `If-None-Match: *`, ranges and
//! continuation tokens. It records every request, and can be told to fail some.

use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet};
use std::rc::Rc;

use strata_flavor_sdk::http::{self, Request, Response};

use crate::codec::{base64, md5, percent_decode, xml_escape};
use crate::xml;

pub const ENDPOINT: &str = "http://127.0.0.1:9000";

#[derive(Debug, Clone)]
pub struct Object {
    pub data: Vec<u8>,
}

#[derive(Debug, Default)]
struct Upload {
    bucket: String,
    key: String,
    parts: BTreeMap<u32, Vec<u8>>,
}

/// A request to fail: the first one whose `METHOD path?query` contains `pattern`
/// (after `skip` such) is answered `status` with S3 error `code`.
#[derive(Debug, Clone)]
pub struct Failure {
    pub pattern: String,
    pub skip: usize,
    pub status: u16,
    pub code: String,
    /// Fail every matching request, not just one.
    pub always: bool,
}

#[derive(Default)]
pub struct Mock {
    pub buckets: BTreeMap<String, BTreeMap<String, Object>>,
    uploads: BTreeMap<String, Upload>,
    next_upload: u32,
    /// `METHOD /path?query` of every request, in order.
    pub requests: Vec<String>,
    pub failures: Vec<Failure>,
    /// The most keys a listing page holds, whatever `max-keys` asks (S3: 1,000).
    pub page_cap: usize,
    /// Answer ranged GETs with the whole object (200), as some servers do.
    pub ignore_range: bool,
}

/// Installs a fresh mock server for this thread's requests, and returns it.
pub fn install() -> Rc<RefCell<Mock>> {
    let mock = Rc::new(RefCell::new(Mock {
        page_cap: 1000,
        ..Mock::default()
    }));
    let answering = Rc::clone(&mock);
    http::answer_with(move |request: &Request| Ok(answering.borrow_mut().answer(request)));
    mock
}

fn response(status: u16, headers: &[(&str, String)], body: Vec<u8>) -> Response {
    Response {
        status,
        headers: headers
            .iter()
            .map(|(k, v)| (k.to_string(), v.clone()))
            .collect(),
        body,
    }
}

fn error(status: u16, code: &str, head: bool) -> Response {
    let body = if head {
        Vec::new()
    } else {
        format!(
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>{code}</Code><Message>mock says {code}</Message><RequestId>r</RequestId></Error>"
        )
        .into_bytes()
    };
    response(status, &[("content-type", "application/xml".into())], body)
}

/// The value of the request's header `name`.
fn header_of<'a>(request: &'a Request, name: &str) -> Option<&'a str> {
    request
        .headers()
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
}

fn etag_of(data: &[u8]) -> String {
    let digest: String = md5(data).iter().map(|b| format!("{b:02x}")).collect();
    format!("\"{digest}\"")
}

const LAST_MODIFIED: &str = "Wed, 02 Dec 2026 07:55:55 GMT";
const LAST_MODIFIED_ISO: &str = "2026-12-02T07:55:55.000Z";
const MIN_PART: usize = 5 * 1024 * 1024;

impl Mock {
    /// The object `key` of `bucket`, if it exists.
    pub fn object(&self, bucket: &str, key: &str) -> Option<&Object> {
        self.buckets.get(bucket)?.get(key)
    }

    /// Puts an object directly.
    pub fn put(&mut self, bucket: &str, key: &str, data: &[u8]) {
        self.buckets.entry(bucket.to_string()).or_default().insert(
            key.to_string(),
            Object {
                data: data.to_vec(),
            },
        );
    }

    /// The keys of `bucket`, sorted.
    pub fn keys(&self, bucket: &str) -> Vec<String> {
        self.buckets
            .get(bucket)
            .map(|b| b.keys().cloned().collect())
            .unwrap_or_default()
    }

    /// How many multipart uploads are unfinished.
    pub fn open_uploads(&self) -> usize {
        self.uploads.len()
    }

    /// Requests whose line contains `pattern`.
    pub fn count(&self, pattern: &str) -> usize {
        self.requests.iter().filter(|r| r.contains(pattern)).count()
    }

    fn answer(&mut self, request: &Request) -> Response {
        let method = request.method().to_ascii_uppercase();
        let head = method == "HEAD";
        if head {
            // On WebAssembly the SDK compares a HEAD's content-length (the object's size)
            // with max_bytes: a HEAD must lift it.
            let debug = format!("{request:?}");
            let limit: u64 = debug
                .split("max_bytes: ")
                .nth(1)
                .and_then(|rest| rest.split(|c: char| !c.is_ascii_digit()).next())
                .and_then(|n| n.parse().ok())
                .unwrap();
            assert!(limit >= 1 << 40, "a HEAD with max_bytes {limit}");
        }
        let rest = request
            .url()
            .strip_prefix(ENDPOINT)
            .expect("every request goes to the connector's endpoint");
        self.requests.push(format!("{method} {rest}"));
        let line = format!("{method} {rest}");
        if let Some(i) = self.failures.iter().position(|f| line.contains(&f.pattern)) {
            let failure = &mut self.failures[i];
            if failure.skip > 0 {
                failure.skip -= 1;
            } else {
                let (status, code) = (failure.status, failure.code.clone());
                if !failure.always {
                    self.failures.remove(i);
                }
                return error(status, &code, head);
            }
        }
        if header_of(request, "x-amz-content-sha256") != Some("UNSIGNED-PAYLOAD") {
            return error(400, "MissingPayloadHeader", head);
        }
        assert!(
            !rest.contains(' ') && !rest.contains('+'),
            "the URL is percent-encoded: {rest}"
        );
        let (path, query) = rest.split_once('?').unwrap_or((rest, ""));
        let query: BTreeMap<String, String> = query
            .split('&')
            .filter(|p| !p.is_empty())
            .map(|p| {
                let (k, v) = p.split_once('=').unwrap_or((p, ""));
                (percent_decode(k), percent_decode(v))
            })
            .collect();
        let path = path.strip_prefix('/').unwrap_or(path);
        let (bucket, key) = match path.split_once('/') {
            Some((bucket, key)) => (percent_decode(bucket), percent_decode(key)),
            None => (percent_decode(path), String::new()),
        };
        let body = request.body_bytes();
        if key.is_empty() {
            return self.bucket_request(&method, &bucket, &query, body, request);
        }
        if !self.buckets.contains_key(&bucket) {
            return error(404, "NoSuchBucket", head);
        }
        match method.as_str() {
            "HEAD" | "GET" => self.get(&bucket, &key, head, header_of(request, "range")),
            "PUT" if query.contains_key("uploadId") => {
                let Some(upload) = self.uploads.get(&query["uploadId"]) else {
                    return error(404, "NoSuchUpload", false);
                };
                let number: u32 = query["partNumber"].parse().unwrap();
                assert!((1..=10_000).contains(&number));
                assert_eq!((&upload.bucket, &upload.key), (&bucket, &key));
                let (data, copied) = match header_of(request, "x-amz-copy-source") {
                    Some(source) => match self
                        .copy_source(source, header_of(request, "x-amz-copy-source-range"))
                    {
                        Ok(data) => (data, true),
                        Err(failed) => return failed,
                    },
                    None => (body.to_vec(), false),
                };
                let etag = etag_of(&data);
                self.uploads
                    .get_mut(&query["uploadId"])
                    .unwrap()
                    .parts
                    .insert(number, data);
                if copied {
                    let xml = format!(
                        "<CopyPartResult><LastModified>{LAST_MODIFIED_ISO}</LastModified><ETag>{}</ETag></CopyPartResult>",
                        xml_escape(&etag)
                    );
                    response(200, &[], xml.into_bytes())
                } else {
                    response(200, &[("etag", etag)], Vec::new())
                }
            }
            "PUT" => {
                if let Some(source) = header_of(request, "x-amz-copy-source") {
                    let data = match self.copy_source(source, None) {
                        Ok(data) => data,
                        Err(failed) => return failed,
                    };
                    let etag = etag_of(&data);
                    self.put(&bucket, &key, &data);
                    let xml = format!(
                        "<CopyObjectResult><LastModified>{LAST_MODIFIED_ISO}</LastModified><ETag>{}</ETag></CopyObjectResult>",
                        xml_escape(&etag)
                    );
                    return response(200, &[], xml.into_bytes());
                }
                if body.is_empty() && header_of(request, "content-length") != Some("0") {
                    return error(411, "MissingContentLength", false);
                }
                if header_of(request, "if-none-match") == Some("*")
                    && self.object(&bucket, &key).is_some()
                {
                    return error(412, "PreconditionFailed", false);
                }
                self.put(&bucket, &key, body);
                response(200, &[("etag", etag_of(body))], Vec::new())
            }
            "POST" if query.contains_key("uploads") => {
                self.next_upload += 1;
                let id = format!("up/{}+=", self.next_upload);
                self.uploads.insert(
                    id.clone(),
                    Upload {
                        bucket: bucket.clone(),
                        key: key.clone(),
                        parts: BTreeMap::new(),
                    },
                );
                let xml = format!(
                    "<?xml version=\"1.0\"?><InitiateMultipartUploadResult xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\"><Bucket>{bucket}</Bucket><Key>{}</Key><UploadId>{}</UploadId></InitiateMultipartUploadResult>",
                    xml_escape(&key),
                    xml_escape(&id)
                );
                response(200, &[], xml.into_bytes())
            }
            "POST" if query.contains_key("uploadId") => {
                let id = &query["uploadId"];
                if !self.uploads.contains_key(id) {
                    return error(404, "NoSuchUpload", false);
                }
                let listed = xml::parse(&String::from_utf8_lossy(body)).unwrap();
                assert_eq!(listed.name, "CompleteMultipartUpload");
                let upload = &self.uploads[id];
                let mut data = Vec::new();
                let parts: Vec<_> = listed.children("Part").collect();
                for (i, part) in parts.iter().enumerate() {
                    let number: u32 = part.child_text("PartNumber").unwrap().parse().unwrap();
                    assert_eq!(number as usize, i + 1, "parts in order");
                    let Some(bytes) = upload.parts.get(&number) else {
                        return error(400, "InvalidPart", false);
                    };
                    if part.child_text("ETag") != Some(etag_of(bytes).as_str()) {
                        return error(400, "InvalidPart", false);
                    }
                    if i + 1 < parts.len() && bytes.len() < MIN_PART {
                        return error(400, "EntityTooSmall", false);
                    }
                    data.extend_from_slice(bytes);
                }
                if header_of(request, "if-none-match") == Some("*")
                    && self.object(&bucket, &key).is_some()
                {
                    return error(412, "PreconditionFailed", false);
                }
                self.uploads.remove(id);
                self.put(&bucket, &key, &data);
                let xml = format!(
                    "<CompleteMultipartUploadResult><Key>{}</Key><ETag>\"x-{}\"</ETag></CompleteMultipartUploadResult>",
                    xml_escape(&key),
                    parts.len()
                );
                response(200, &[], xml.into_bytes())
            }
            "DELETE" if query.contains_key("uploadId") => {
                match self.uploads.remove(&query["uploadId"]) {
                    Some(_) => response(204, &[], Vec::new()),
                    None => error(404, "NoSuchUpload", false),
                }
            }
            "DELETE" => {
                self.buckets.get_mut(&bucket).unwrap().remove(&key);
                response(204, &[], Vec::new())
            }
            other => panic!("the mock does not know {other} of an object"),
        }
    }

    fn copy_source(&self, source: &str, range: Option<&str>) -> Result<Vec<u8>, Response> {
        let source = source.strip_prefix('/').unwrap_or(source);
        let (bucket, key) = source.split_once('/').unwrap();
        let (bucket, key) = (percent_decode(bucket), percent_decode(key));
        let Some(object) = self.object(&bucket, &key) else {
            return Err(error(404, "NoSuchKey", false));
        };
        Ok(match range {
            None => object.data.clone(),
            Some(range) => {
                let (first, last) = range
                    .strip_prefix("bytes=")
                    .unwrap()
                    .split_once('-')
                    .unwrap();
                let (first, last): (usize, usize) = (first.parse().unwrap(), last.parse().unwrap());
                object.data[first..=last].to_vec()
            }
        })
    }

    fn get(&self, bucket: &str, key: &str, head: bool, range: Option<&str>) -> Response {
        let Some(object) = self.object(bucket, key) else {
            return error(404, "NoSuchKey", head);
        };
        let len = object.data.len();
        let common = |length: usize| {
            vec![
                ("content-length", length.to_string()),
                ("last-modified", LAST_MODIFIED.to_string()),
                ("etag", etag_of(&object.data)),
            ]
        };
        match range {
            Some(range) if !head && !self.ignore_range => {
                let (first, last) = range
                    .strip_prefix("bytes=")
                    .unwrap()
                    .split_once('-')
                    .unwrap();
                let first: u64 = first.parse().unwrap();
                let last: u64 = last.parse().unwrap();
                if first >= len as u64 {
                    return error(416, "InvalidRange", false);
                }
                let end = (last.min(len as u64 - 1)) as usize;
                let body = object.data[first as usize..=end].to_vec();
                let mut headers = common(body.len());
                headers.push(("content-range", format!("bytes {first}-{end}/{len}")));
                response(206, &headers, body)
            }
            _ => response(
                200,
                &common(len),
                if head {
                    Vec::new()
                } else {
                    object.data.clone()
                },
            ),
        }
    }

    fn bucket_request(
        &mut self,
        method: &str,
        bucket: &str,
        query: &BTreeMap<String, String>,
        body: &[u8],
        request: &Request,
    ) -> Response {
        let head = method == "HEAD";
        if bucket.len() < 3 {
            return error(400, "InvalidBucketName", head);
        }
        let exists = self.buckets.contains_key(bucket);
        match method {
            "PUT" => {
                if exists {
                    return error(409, "BucketAlreadyOwnedByYou", false);
                }
                if !body.is_empty() {
                    let config = xml::parse(&String::from_utf8_lossy(body)).unwrap();
                    assert_eq!(config.name, "CreateBucketConfiguration");
                    assert!(config.child_text("LocationConstraint").is_some());
                } else if header_of(request, "content-length") != Some("0") {
                    return error(411, "MissingContentLength", false);
                }
                self.buckets.insert(bucket.to_string(), BTreeMap::new());
                response(200, &[], Vec::new())
            }
            _ if !exists => error(404, "NoSuchBucket", head),
            "HEAD" => response(200, &[], Vec::new()),
            "DELETE" => {
                if !self.buckets[bucket].is_empty() {
                    return error(409, "BucketNotEmpty", false);
                }
                self.buckets.remove(bucket);
                response(204, &[], Vec::new())
            }
            "GET" if query.get("list-type").map(String::as_str) == Some("2") => {
                self.list(bucket, query)
            }
            "POST" if query.contains_key("delete") => {
                if header_of(request, "content-md5") != Some(base64(&md5(body)).as_str()) {
                    return error(400, "InvalidDigest", false);
                }
                let asked = xml::parse(&String::from_utf8_lossy(body)).unwrap();
                let keys: Vec<String> = asked
                    .children("Object")
                    .map(|o| o.child_text("Key").unwrap().to_string())
                    .collect();
                assert!(keys.len() <= 1000);
                let objects = self.buckets.get_mut(bucket).unwrap();
                let mut xml = String::from("<DeleteResult>");
                for key in keys {
                    objects.remove(&key);
                    if asked.child_text("Quiet") != Some("true") {
                        xml.push_str(&format!(
                            "<Deleted><Key>{}</Key></Deleted>",
                            xml_escape(&key)
                        ));
                    }
                }
                xml.push_str("</DeleteResult>");
                response(200, &[], xml.into_bytes())
            }
            other => panic!("the mock does not know {other} of a bucket {query:?}"),
        }
    }

    fn list(&self, bucket: &str, query: &BTreeMap<String, String>) -> Response {
        let prefix = query.get("prefix").cloned().unwrap_or_default();
        let delimiter = query.get("delimiter").cloned();
        let max: usize = query
            .get("max-keys")
            .map_or(1000, |m| m.parse().unwrap())
            .min(self.page_cap);
        let after = query.get("continuation-token").cloned();
        let mut entries: BTreeSet<(String, bool)> = BTreeSet::new();
        for key in self.buckets[bucket].keys() {
            let Some(rest) = key.strip_prefix(&prefix) else {
                continue;
            };
            match delimiter
                .as_deref()
                .and_then(|d| rest.find(d).map(|at| (d, at)))
            {
                Some((d, at)) => {
                    entries.insert((format!("{prefix}{}", &rest[..at + d.len()]), true));
                }
                None => {
                    entries.insert((key.clone(), false));
                }
            }
        }
        let mut xml = format!(
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<ListBucketResult xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\"><Name>{bucket}</Name><Prefix>{}</Prefix>",
            xml_escape(&prefix)
        );
        let mut shown = 0;
        let mut last = None;
        let mut truncated = false;
        for (name, is_prefix) in entries
            .iter()
            .filter(|(n, _)| after.as_ref().is_none_or(|a| n > a))
        {
            if shown == max {
                truncated = true;
                break;
            }
            shown += 1;
            last = Some(name.clone());
            if *is_prefix {
                xml.push_str(&format!(
                    "<CommonPrefixes><Prefix>{}</Prefix></CommonPrefixes>",
                    xml_escape(name)
                ));
            } else {
                let size = self.buckets[bucket][name].data.len();
                xml.push_str(&format!(
                    "<Contents><Key>{}</Key><LastModified>{LAST_MODIFIED_ISO}</LastModified><Size>{size}</Size></Contents>",
                    xml_escape(name)
                ));
            }
        }
        xml.push_str(&format!(
            "<KeyCount>{shown}</KeyCount><MaxKeys>{max}</MaxKeys><IsTruncated>{truncated}</IsTruncated>"
        ));
        if truncated {
            xml.push_str(&format!(
                "<NextContinuationToken>{}</NextContinuationToken>",
                xml_escape(&last.unwrap_or_default())
            ));
        }
        xml.push_str("</ListBucketResult>");
        response(200, &[], xml.into_bytes())
    }
}

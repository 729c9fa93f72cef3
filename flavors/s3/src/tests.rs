//! The flavor's calls end to end, natively, against the S3 server in memory of
//! [`crate::mock`]: `cargo test -p s3-artifact-store --target x86_64-unknown-linux-gnu`.

use std::cell::RefCell;
use std::rc::Rc;

use crate::S3Store;
use crate::exports::strata::flavor::artifact_store::{Guest as Files, WriteMode};
use crate::exports::strata::flavor::lifecycle::Guest as Lifecycle;
use crate::mock::{self, ENDPOINT, Failure, Mock};
use strata_flavor_sdk::Context;

const BUCKET: &str = "my-bucket";
const MIB: usize = 1024 * 1024;

/// A component's calls: its configuration and the state its last call handed back.
struct Component {
    config: Vec<(String, String)>,
    state: Option<Vec<u8>>,
}

impl Component {
    fn new(fields: &[(&str, &str)]) -> Component {
        let mut config: Vec<(String, String)> = vec![
            ("bucket".into(), BUCKET.into()),
            ("connector.name".into(), "s3c".into()),
            ("connector.type".into(), "aws".into()),
            ("connector.endpoint".into(), ENDPOINT.into()),
            ("connector.region".into(), "us-east-1".into()),
        ];
        for (k, v) in fields {
            config.retain(|(key, _)| key != k);
            if !v.is_empty() || !k.starts_with("connector.") {
                config.push((k.to_string(), v.to_string()));
            }
        }
        Component {
            config,
            state: None,
        }
    }

    fn ctx(&self) -> Context {
        Context {
            component_id: "c-1".into(),
            component_name: "st".into(),
            config: self.config.clone(),
            state: self.state.clone(),
        }
    }

    fn up(&mut self) -> Result<(), String> {
        let state = <S3Store as Lifecycle>::provision(self.ctx())?;
        self.state = state.or(self.state.take());
        let state = <S3Store as Lifecycle>::resume(self.ctx())?;
        self.state = state.or(self.state.take());
        Ok(())
    }

    fn down_force(&mut self) -> Result<(), String> {
        let state = <S3Store as Lifecycle>::suspend(self.ctx())?;
        self.state = state.or(self.state.take());
        let state = <S3Store as Lifecycle>::deprovision(self.ctx())?;
        self.state = state.or(self.state.take());
        Ok(())
    }

    fn state_json(&self) -> serde_json::Value {
        serde_json::from_slice(self.state.as_deref().unwrap()).unwrap()
    }
}

fn server() -> Rc<RefCell<Mock>> {
    strata_flavor_sdk::log::take();
    mock::install()
}

fn bucket(mock: &Rc<RefCell<Mock>>) {
    mock.borrow_mut().buckets.entry(BUCKET.into()).or_default();
}

fn names(c: &Component, path: &str) -> Vec<String> {
    S3Store::list(c.ctx(), path.into())
        .unwrap()
        .into_iter()
        .map(|e| {
            if e.is_dir {
                format!("{}/", e.name)
            } else {
                e.name
            }
        })
        .collect()
}

#[test]
fn describe_says_what_the_flavor_is() {
    let info = <S3Store as Lifecycle>::describe();
    assert_eq!(info.name, "s3");
    assert!(info.supported_schemes.is_empty() && info.origins.is_empty());
    let fields: Vec<(&str, bool, Option<&str>)> = info
        .config
        .iter()
        .map(|f| (f.name.as_str(), f.required, f.default.as_deref()))
        .collect();
    assert_eq!(
        fields,
        [
            ("bucket", true, None),
            ("prefix", false, Some("")),
            ("create_bucket", false, Some("false")),
            ("delete_bucket_contents", false, Some("false")),
            ("multipart_threshold_mb", false, Some("64")),
        ]
    );
    let errors = <S3Store as Lifecycle>::validate(vec![
        ("bucket".into(), "Bad_Bucket".into()),
        ("multipart_threshold_mb".into(), "1".into()),
    ])
    .unwrap_err();
    let fields: Vec<Option<&str>> = errors.iter().map(|e| e.field.as_deref()).collect();
    assert_eq!(fields, [Some("bucket"), Some("multipart_threshold_mb")]);
}

#[test]
fn without_an_aws_connector_every_call_says_how_to_bind_one() {
    let _mock = server();
    let c = Component::new(&[("connector.endpoint", ""), ("connector.type", "")]);
    let err = <S3Store as Lifecycle>::provision(c.ctx()).unwrap_err();
    assert!(
        err.starts_with("artifact store `st` has no service connector: register one with `strata service-connector register s3 --type aws --endpoint=URL"),
        "{err}"
    );
    assert!(err.contains("`strata artifact-store update st --connector=s3`"));
    assert!(
        S3Store::exists(c.ctx(), "x".into())
            .unwrap_err()
            .contains("no service connector")
    );
    let status = <S3Store as Lifecycle>::status(c.ctx());
    assert!(!status.provisioned && status.detail.contains("no service connector"));

    let c = Component::new(&[("connector.type", "bearer")]);
    let err = <S3Store as Lifecycle>::provision(c.ctx()).unwrap_err();
    assert!(
        err.contains("type `bearer`")
            && err.contains("strata service-connector register NAME --type aws"),
        "{err}"
    );
}

#[test]
fn up_refuses_a_missing_bucket_unless_asked_to_create_it() {
    let mock = server();
    let mut c = Component::new(&[]);
    let err = c.up().unwrap_err();
    assert!(
        err.contains("bucket `my-bucket` does not exist at http://127.0.0.1:9000")
            && err.contains("--create_bucket=true"),
        "{err}"
    );
    assert!(mock.borrow().buckets.is_empty());
    let status = <S3Store as Lifecycle>::status(c.ctx());
    assert!(!status.provisioned);
    assert!(
        status.detail.contains("does not exist"),
        "{}",
        status.detail
    );
}

#[test]
fn a_full_round_creates_marks_and_deletes_the_bucket() {
    let mock = server();
    let mut c = Component::new(&[("create_bucket", "true")]);
    c.up().unwrap();
    assert_eq!(c.state_json()["state"]["created_bucket"], true);
    let marker = mock
        .borrow()
        .object(BUCKET, ".strata-artifact-store")
        .unwrap()
        .clone();
    let marker: serde_json::Value = serde_json::from_slice(&marker.data).unwrap();
    assert_eq!(marker["component_id"], "c-1");
    assert_eq!(marker["created_bucket"], true);
    // Idempotent: up again changes nothing.
    let before = c.state.clone();
    c.up().unwrap();
    assert_eq!(c.state, before);
    let creates = mock
        .borrow()
        .requests
        .iter()
        .filter(|r| *r == "PUT /my-bucket")
        .count();
    assert_eq!(creates, 1, "created once");

    let status = <S3Store as Lifecycle>::status(c.ctx());
    assert!(status.provisioned && status.running, "{}", status.detail);
    assert_eq!(
        status.detail,
        "bucket `my-bucket` at http://127.0.0.1:9000: exists, marker present (s3://my-bucket/); running"
    );
    <S3Store as Lifecycle>::prepare_pipeline_deployment(c.ctx(), vec![]).unwrap();

    c.down_force().unwrap();
    assert!(
        mock.borrow().buckets.is_empty(),
        "the bucket strata made is gone"
    );
    let status = <S3Store as Lifecycle>::status(c.ctx());
    assert!(!status.provisioned);
    // Again: already gone.
    c.down_force().unwrap();
}

#[test]
fn down_force_keeps_a_bucket_with_objects_unless_told_to_delete_them() {
    let mock = server();
    let mut c = Component::new(&[("create_bucket", "true")]);
    c.up().unwrap();
    S3Store::write(c.ctx(), "a.txt".into(), b"a".to_vec(), WriteMode::CreateNew).unwrap();
    S3Store::write(
        c.ctx(),
        "d/b.txt".into(),
        b"b".to_vec(),
        WriteMode::CreateNew,
    )
    .unwrap();
    let err = c.down_force().unwrap_err();
    assert!(
        err.contains("still holds 2 objects besides the marker")
            && err.contains("`strata artifact-store update st --delete_bucket_contents=true`"),
        "{err}"
    );
    // Nothing changed: the marker is still there.
    assert_eq!(
        mock.borrow().keys(BUCKET),
        [".strata-artifact-store", "a.txt", "d/b.txt"]
    );
    c.config
        .push(("delete_bucket_contents".into(), "true".into()));
    c.down_force().unwrap();
    assert!(mock.borrow().buckets.is_empty());
    assert!(
        mock.borrow().count("POST /my-bucket?delete") >= 1,
        "{:?}",
        mock.borrow().requests
    );
}

#[test]
fn a_bucket_strata_did_not_create_is_kept_with_its_artifacts() {
    let mock = server();
    bucket(&mock);
    let mut c = Component::new(&[("prefix", "team/store"), ("delete_bucket_contents", "true")]);
    c.up().unwrap();
    assert_eq!(c.state_json()["state"]["created_bucket"], false);
    S3Store::write(
        c.ctx(),
        "m/w.bin".into(),
        b"w".to_vec(),
        WriteMode::CreateNew,
    )
    .unwrap();
    assert_eq!(
        mock.borrow().keys(BUCKET),
        ["team/store/.strata-artifact-store", "team/store/m/w.bin"]
    );
    strata_flavor_sdk::log::take();
    c.down_force().unwrap();
    assert_eq!(mock.borrow().keys(BUCKET), ["team/store/m/w.bin"]);
    let said = strata_flavor_sdk::log::take();
    assert!(
        said.iter()
            .any(|(_, l)| l.contains("was not created by strata: it is kept")),
        "{said:?}"
    );
}

#[test]
fn another_components_marker_stops_up() {
    let mock = server();
    bucket(&mock);
    mock.borrow_mut().put(
        BUCKET,
        ".strata-artifact-store",
        br#"{"component_id":"other"}"#,
    );
    let mut c = Component::new(&[]);
    let err = c.up().unwrap_err();
    assert!(
        err.contains("another component (component id `other`"),
        "{err}"
    );
    let status = <S3Store as Lifecycle>::status(c.ctx());
    assert!(!status.provisioned && status.detail.contains("belongs to another component"));
}

#[test]
fn a_wrong_secret_is_named_even_for_a_head() {
    let mock = server();
    bucket(&mock);
    mock.borrow_mut().failures.push(Failure {
        pattern: String::new(),
        skip: 0,
        status: 403,
        code: "SignatureDoesNotMatch".into(),
        always: true,
    });
    let mut c = Component::new(&[]);
    let err = c.up().unwrap_err();
    assert!(
        err.starts_with("artifact store `st`: S3 HeadBucket of bucket `my-bucket` at http://127.0.0.1:9000 answered 403 SignatureDoesNotMatch"),
        "{err}"
    );
    assert!(
        err.contains("`strata service-connector update s3c --secret-access-key=…`"),
        "{err}"
    );
    assert!(!err.contains('\n'));
    // The HEAD, then one GET to learn the code.
    assert_eq!(mock.borrow().requests.len(), 2);
    let status = <S3Store as Lifecycle>::status(c.ctx());
    assert!(
        status.detail.contains("SignatureDoesNotMatch"),
        "{}",
        status.detail
    );
}

/// What `strata flavor test` does with a store, call by call.
#[test]
fn the_calls_of_strata_flavor_test() {
    let mock = server();
    let mut c = Component::new(&[("create_bucket", "true")]);
    c.up().unwrap();
    let (dir, file) = ("strata-flavor-test", "strata-flavor-test/probe.txt");
    let data = b"written by strata flavor test\n".to_vec();
    let len = data.len() as u64;
    S3Store::makedirs(c.ctx(), dir.into()).unwrap();
    assert_eq!(
        S3Store::write(c.ctx(), file.into(), data.clone(), WriteMode::CreateNew).unwrap(),
        len
    );
    let again =
        S3Store::write(c.ctx(), file.into(), data.clone(), WriteMode::CreateNew).unwrap_err();
    assert!(again.contains("already exists"), "{again}");
    assert_eq!(
        S3Store::write(c.ctx(), file.into(), data.clone(), WriteMode::Append).unwrap(),
        2 * len
    );
    let whole = [data.as_slice(), data.as_slice()].concat();
    assert_eq!(
        S3Store::read(c.ctx(), file.into(), 0, 1 << 20).unwrap(),
        whole
    );
    assert_eq!(
        S3Store::read(c.ctx(), file.into(), len, 5).unwrap(),
        data[..5]
    );
    assert!(
        S3Store::read(c.ctx(), file.into(), 2 * len, 5)
            .unwrap()
            .is_empty()
    );
    assert!(
        S3Store::read(c.ctx(), file.into(), 1000, 5)
            .unwrap()
            .is_empty()
    );
    assert!(
        S3Store::read(c.ctx(), file.into(), 0, 0)
            .unwrap()
            .is_empty()
    );
    assert_eq!(
        S3Store::write(c.ctx(), file.into(), data.clone(), WriteMode::Truncate).unwrap(),
        len
    );
    assert!(S3Store::exists(c.ctx(), file.into()).unwrap());
    let stat = S3Store::stat(c.ctx(), file.into()).unwrap();
    assert_eq!(
        (stat.size, stat.is_dir, stat.modified_ms),
        (len, false, Some(1_796_198_155_000))
    );
    let stat = S3Store::stat(c.ctx(), dir.into()).unwrap();
    assert!(stat.is_dir && stat.size == 0);
    S3Store::copy(c.ctx(), file.into(), format!("{dir}/copy.txt"), false).unwrap();
    S3Store::rename(
        c.ctx(),
        format!("{dir}/copy.txt"),
        format!("{dir}/moved.txt"),
        false,
    )
    .unwrap();
    assert_eq!(names(&c, dir), ["moved.txt", "probe.txt"]);
    assert_eq!(
        names(&c, ""),
        ["strata-flavor-test/"],
        "the marker is hidden"
    );
    S3Store::remove(c.ctx(), dir.into(), true).unwrap();
    assert!(!S3Store::exists(c.ctx(), dir.into()).unwrap());
    assert_eq!(mock.borrow().keys(BUCKET), [".strata-artifact-store"]);
    c.down_force().unwrap();
    assert!(mock.borrow().buckets.is_empty());
}

#[test]
fn directories_are_prefixes_and_makedirs_makes_an_empty_one() {
    let mock = server();
    bucket(&mock);
    let mut c = Component::new(&[("prefix", "p")]);
    c.up().unwrap();
    S3Store::makedirs(c.ctx(), "empty/dir".into()).unwrap();
    S3Store::makedirs(c.ctx(), "empty/dir".into()).unwrap();
    assert!(S3Store::exists(c.ctx(), "empty/dir".into()).unwrap());
    assert!(S3Store::exists(c.ctx(), "empty".into()).unwrap());
    assert!(names(&c, "empty/dir").is_empty());
    assert_eq!(names(&c, "empty"), ["dir/"]);
    S3Store::write(
        c.ctx(),
        "models/v1/w.bin".into(),
        b"0123".to_vec(),
        WriteMode::CreateNew,
    )
    .unwrap();
    S3Store::write(
        c.ctx(),
        "best.bin".into(),
        b"b".to_vec(),
        WriteMode::CreateNew,
    )
    .unwrap();
    assert_eq!(names(&c, ""), ["best.bin", "empty/", "models/"]);
    assert!(S3Store::stat(c.ctx(), "models".into()).unwrap().is_dir);
    assert!(
        S3Store::list(c.ctx(), "best.bin".into())
            .unwrap_err()
            .contains("is a file")
    );
    assert!(
        S3Store::list(c.ctx(), "nothing".into())
            .unwrap_err()
            .contains("does not exist")
    );
    assert!(
        S3Store::read(c.ctx(), "models".into(), 0, 9)
            .unwrap_err()
            .contains("is a directory")
    );
    assert!(
        S3Store::read(c.ctx(), "nothing".into(), 0, 9)
            .unwrap_err()
            .contains("does not exist")
    );
    assert!(
        S3Store::stat(c.ctx(), "nothing".into())
            .unwrap_err()
            .contains("does not exist")
    );
    assert!(
        S3Store::write(c.ctx(), "models".into(), b"x".to_vec(), WriteMode::Truncate)
            .unwrap_err()
            .contains("is a directory")
    );
    assert!(
        S3Store::makedirs(c.ctx(), "best.bin".into())
            .unwrap_err()
            .contains("a file of that name exists")
    );

    // Rename of a file onto another: only with overwrite.
    let taken =
        S3Store::rename(c.ctx(), "best.bin".into(), "models/v1/w.bin".into(), false).unwrap_err();
    assert!(taken.contains("already exists"), "{taken}");
    S3Store::rename(c.ctx(), "best.bin".into(), "models/v1/w.bin".into(), true).unwrap();
    assert_eq!(
        S3Store::read(c.ctx(), "models/v1/w.bin".into(), 0, 9).unwrap(),
        b"b"
    );
    // A directory moves with everything in it.
    S3Store::rename(c.ctx(), "models/v1".into(), "models/v2".into(), false).unwrap();
    assert_eq!(names(&c, "models"), ["v2/"]);
    assert!(
        S3Store::rename(c.ctx(), "models".into(), "models/v2/x".into(), false)
            .unwrap_err()
            .contains("into itself")
    );
    // Non-recursive removal refuses a non-empty directory, removes an empty one.
    assert!(
        S3Store::remove(c.ctx(), "models".into(), false)
            .unwrap_err()
            .contains("not empty")
    );
    S3Store::remove(c.ctx(), "empty/dir".into(), false).unwrap();
    assert!(!S3Store::exists(c.ctx(), "empty/dir".into()).unwrap());
    S3Store::remove(c.ctx(), "models".into(), true).unwrap();
    assert!(!S3Store::exists(c.ctx(), "models".into()).unwrap());
    assert!(
        S3Store::remove(c.ctx(), "models".into(), true)
            .unwrap_err()
            .contains("does not exist")
    );
    assert!(
        S3Store::remove(c.ctx(), "".into(), true)
            .unwrap_err()
            .contains("root of the store")
    );
    assert_eq!(mock.borrow().keys(BUCKET), ["p/.strata-artifact-store"]);
}

#[test]
fn paths_that_leave_the_store_or_name_the_marker_are_refused() {
    let mock = server();
    bucket(&mock);
    let mut c = Component::new(&[]);
    c.up().unwrap();
    let before = mock.borrow().requests.len();
    for escape in ["../outside.txt", "models/../../outside.txt", "/etc/passwd"] {
        let refused = S3Store::read(c.ctx(), escape.into(), 0, 100).unwrap_err();
        assert!(
            refused.contains("outside") || refused.contains("leave"),
            "{escape}: {refused}"
        );
    }
    let own = S3Store::read(c.ctx(), ".strata-artifact-store".into(), 0, 100).unwrap_err();
    assert!(own.contains("reserved"), "{own}");
    assert_eq!(
        mock.borrow().requests.len(),
        before,
        "refused before any request"
    );
}

#[test]
fn keys_with_odd_characters_round_trip() {
    let mock = server();
    bucket(&mock);
    let mut c = Component::new(&[]);
    c.up().unwrap();
    let name = "dir with space/a+b=c&d%e~é.txt";
    S3Store::write(c.ctx(), name.into(), b"odd".to_vec(), WriteMode::CreateNew).unwrap();
    assert!(mock.borrow().object(BUCKET, name).is_some());
    assert_eq!(S3Store::read(c.ctx(), name.into(), 0, 10).unwrap(), b"odd");
    assert_eq!(names(&c, "dir with space"), ["a+b=c&d%e~é.txt"]);
    S3Store::copy(c.ctx(), name.into(), "x/<&>.txt".into(), false).unwrap();
    assert_eq!(names(&c, "x"), ["<&>.txt"]);
    S3Store::remove(c.ctx(), "x".into(), true).unwrap();
    S3Store::remove(c.ctx(), "dir with space".into(), true).unwrap();
    assert_eq!(mock.borrow().keys(BUCKET), [".strata-artifact-store"]);
}

#[test]
fn large_writes_are_multipart_uploads_and_appends_copy_on_the_server() {
    let mock = server();
    bucket(&mock);
    let mut c = Component::new(&[("multipart_threshold_mb", "5")]);
    c.up().unwrap();
    let big: Vec<u8> = (0..11 * MIB).map(|i| (i % 251) as u8).collect();
    assert_eq!(
        S3Store::write(c.ctx(), "big.bin".into(), big.clone(), WriteMode::CreateNew).unwrap(),
        big.len() as u64
    );
    assert_eq!(mock.borrow().count("?uploads"), 1);
    assert_eq!(mock.borrow().count("partNumber="), 3);
    assert_eq!(mock.borrow().object(BUCKET, "big.bin").unwrap().data, big);
    assert_eq!(mock.borrow().open_uploads(), 0);

    // Appending to it: the 11 MiB are copied on the server, never read back.
    let more = vec![7u8; 2 * MIB];
    let gets = mock.borrow().count("GET /my-bucket/big.bin");
    assert_eq!(
        S3Store::write(c.ctx(), "big.bin".into(), more.clone(), WriteMode::Append).unwrap(),
        13 * MIB as u64
    );
    assert_eq!(mock.borrow().count("GET /my-bucket/big.bin"), gets);
    let expected = [big.as_slice(), more.as_slice()].concat();
    assert_eq!(
        mock.borrow().object(BUCKET, "big.bin").unwrap().data,
        expected
    );
    // A range across the parts.
    let middle = S3Store::read(c.ctx(), "big.bin".into(), 11 * MIB as u64 - 3, 6).unwrap();
    assert_eq!(middle, expected[11 * MIB - 3..11 * MIB + 3]);

    // Appending to a small file past the threshold: read back, then a multipart upload.
    S3Store::write(
        c.ctx(),
        "small.bin".into(),
        vec![1; MIB],
        WriteMode::CreateNew,
    )
    .unwrap();
    assert_eq!(
        S3Store::write(
            c.ctx(),
            "small.bin".into(),
            vec![2; 5 * MIB],
            WriteMode::Append
        )
        .unwrap(),
        6 * MIB as u64
    );
    let small = mock
        .borrow()
        .object(BUCKET, "small.bin")
        .unwrap()
        .data
        .clone();
    assert_eq!(small.len(), 6 * MIB);
    assert!(small[..MIB].iter().all(|&b| b == 1) && small[MIB..].iter().all(|&b| b == 2));

    // create-new of a large file that exists: refused, and no upload left.
    let err = S3Store::write(c.ctx(), "big.bin".into(), big, WriteMode::CreateNew).unwrap_err();
    assert!(err.contains("already exists"), "{err}");
    assert_eq!(mock.borrow().open_uploads(), 0);
}

#[test]
fn a_failed_part_aborts_the_upload() {
    let mock = server();
    bucket(&mock);
    let mut c = Component::new(&[("multipart_threshold_mb", "5")]);
    c.up().unwrap();
    mock.borrow_mut().failures.push(Failure {
        pattern: "partNumber=2".into(),
        skip: 0,
        status: 500,
        code: "InternalError".into(),
        always: false,
    });
    let err = S3Store::write(
        c.ctx(),
        "big.bin".into(),
        vec![0; 11 * MIB],
        WriteMode::Truncate,
    )
    .unwrap_err();
    assert!(
        err.contains("S3 UploadPart of `big.bin` in bucket `my-bucket` at http://127.0.0.1:9000 answered 500 InternalError"),
        "{err}"
    );
    assert_eq!(
        mock.borrow().count("DELETE /my-bucket/big.bin?uploadId="),
        1
    );
    assert_eq!(mock.borrow().open_uploads(), 0);
    assert!(mock.borrow().object(BUCKET, "big.bin").is_none());
}

#[test]
fn a_write_needing_more_requests_than_a_call_has_is_refused_before_it_starts() {
    let mock = server();
    bucket(&mock);
    let mut c = Component::new(&[("multipart_threshold_mb", "5")]);
    c.up().unwrap();
    let before = mock.borrow().requests.len();
    let err = S3Store::write(
        c.ctx(),
        "huge.bin".into(),
        vec![0; 5 * 61 * MIB],
        WriteMode::Truncate,
    )
    .unwrap_err();
    assert!(err.contains("--multipart_threshold_mb="), "{err}");
    // The HEAD and the listing that look for what is there, nothing more.
    assert_eq!(mock.borrow().requests.len(), before + 2);
}

#[test]
fn listings_follow_continuation_tokens() {
    let mock = server();
    bucket(&mock);
    let mut c = Component::new(&[]);
    c.up().unwrap();
    for i in 0..7 {
        mock.borrow_mut().put(BUCKET, &format!("d/f{i}"), b"x");
        mock.borrow_mut().put(BUCKET, &format!("d/s{i}/x"), b"x");
    }
    mock.borrow_mut().page_cap = 3;
    let listed = names(&c, "d");
    assert_eq!(listed.len(), 14);
    assert_eq!(listed[0], "f0");
    assert_eq!(listed[13], "s6/");
    assert!(mock.borrow().count("continuation-token=") >= 4);
}

#[test]
fn a_recursive_remove_too_large_for_one_call_goes_on_in_the_next() {
    let mock = server();
    bucket(&mock);
    let mut c = Component::new(&[]);
    c.up().unwrap();
    for i in 0..100 {
        mock.borrow_mut().put(BUCKET, &format!("d/f{i:03}"), b"x");
    }
    mock.borrow_mut().page_cap = 2;
    let err = S3Store::remove(c.ctx(), "d".into(), true).unwrap_err();
    assert!(err.contains("call remove again"), "{err}");
    let left = mock.borrow().keys(BUCKET).len();
    assert!(left > 1 && left < 101, "{left}");
    mock.borrow_mut().page_cap = 1000;
    S3Store::remove(c.ctx(), "d".into(), true).unwrap();
    assert_eq!(mock.borrow().keys(BUCKET), [".strata-artifact-store"]);
}

#[test]
fn a_server_that_ignores_ranges_still_gives_the_range() {
    let mock = server();
    bucket(&mock);
    let mut c = Component::new(&[]);
    c.up().unwrap();
    S3Store::write(
        c.ctx(),
        "f".into(),
        b"0123456789".to_vec(),
        WriteMode::CreateNew,
    )
    .unwrap();
    mock.borrow_mut().ignore_range = true;
    assert_eq!(S3Store::read(c.ctx(), "f".into(), 2, 3).unwrap(), b"234");
    assert_eq!(S3Store::read(c.ctx(), "f".into(), 8, 30).unwrap(), b"89");
    assert!(
        S3Store::read(c.ctx(), "f".into(), 20, 3)
            .unwrap()
            .is_empty()
    );
}

#[test]
fn a_bucket_is_created_in_the_connectors_region() {
    let mock = server();
    let mut c = Component::new(&[("create_bucket", "true"), ("connector.region", "eu-west-1")]);
    c.up().unwrap();
    assert!(mock.borrow().buckets.contains_key(BUCKET));
}

#[test]
fn a_down_force_too_large_for_one_call_goes_on_in_the_next() {
    let mock = server();
    let mut c = Component::new(&[
        ("create_bucket", "true"),
        ("delete_bucket_contents", "true"),
    ]);
    c.up().unwrap();
    for i in 0..100 {
        mock.borrow_mut().put(BUCKET, &format!("d/f{i:03}"), b"x");
    }
    mock.borrow_mut().page_cap = 2;
    let err = c.down_force().unwrap_err();
    assert!(err.contains("run `down --force` again"), "{err}");
    assert!(!mock.borrow().keys(BUCKET).is_empty());
    // The marker is kept till the end, so `status` still says provisioned.
    assert!(
        mock.borrow()
            .object(BUCKET, ".strata-artifact-store")
            .is_some()
    );
    assert!(<S3Store as Lifecycle>::status(c.ctx()).provisioned);
    c.down_force().unwrap();
    assert!(mock.borrow().buckets.is_empty());
}

#[test]
fn a_bucket_that_cannot_be_deleted_gets_its_marker_back() {
    let mock = server();
    let mut c = Component::new(&[("create_bucket", "true")]);
    c.up().unwrap();
    mock.borrow_mut().failures.push(Failure {
        pattern: "DELETE /my-bucket".into(),
        skip: 1, // the marker's DELETE goes through
        status: 409,
        code: "BucketNotEmpty".into(),
        always: false,
    });
    let err = c.down_force().unwrap_err();
    assert!(
        err.contains("S3 DeleteBucket of bucket `my-bucket` at http://127.0.0.1:9000 answered 409 BucketNotEmpty")
            && err.contains("versioning"),
        "{err}"
    );
    assert!(<S3Store as Lifecycle>::status(c.ctx()).provisioned);
    c.down_force().unwrap();
    assert!(mock.borrow().buckets.is_empty());
}

//! The configuration: the flavor's fields, checked, and the service connector strata
//! adds under `connector.*`.

use strata_flavor_sdk::{Config, Problems};

/// The marker object `provision` writes at the root of the store (`{prefix}` +
/// this). Every name at the root starting with it is reserved: refused as an argument,
/// hidden from listings.
pub const MARKER: &str = ".strata-artifact-store";

/// S3's smallest part of a multipart upload (every part but the last): 5 MiB.
pub const MIN_PART: u64 = 5 * 1024 * 1024;
/// S3's largest part, and largest single `PUT` or `CopyObject`: 5 GiB.
pub const MAX_PART: u64 = 5 * 1024 * 1024 * 1024;
/// Keys are at most 1,024 bytes long; the prefix leaves room for paths below it.
const MAX_PREFIX: usize = 512;

/// The default of `multipart_threshold_mb`: what one strata `write` call carries at
/// most (64 MiB), so a write is one `PutObject` (S3 takes up to 5 GiB in one). Parts
/// of one call go one after the other, so splitting a write gains nothing, and costs
/// the server the join of `CompleteMultipartUpload`.
pub const DEFAULT_THRESHOLD_MB: i64 = 64;

/// The configuration of one component, read and checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settings {
    pub bucket: String,
    /// The key prefix of the store's root: `""`, or ending with `/`.
    pub prefix: String,
    pub create_bucket: bool,
    pub delete_bucket_contents: bool,
    /// Bytes: a write larger than this is a multipart upload, in parts of this size.
    pub threshold: u64,
    /// The service connector, or why there is none that fits.
    pub connector: Result<Connector, ConnectorProblem>,
}

/// What strata says of the component's service connector (never its credentials).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Connector {
    /// `connector.name`, for hints.
    pub name: String,
    /// `connector.endpoint` without a trailing `/`: `http://127.0.0.1:9000`.
    pub endpoint: String,
    /// `connector.region`, `us-east-1` if not given (as strata signs).
    pub region: String,
}

/// Why the component cannot reach S3.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConnectorProblem {
    /// No connector is bound (`connector.endpoint` missing).
    Missing,
    /// The connector is not of type `aws`: its name and type.
    WrongType { name: String, kind: String },
    /// The endpoint is not an `http(s)://` URL: the connector's name and the value.
    BadEndpoint { name: String, endpoint: String },
}

impl ConnectorProblem {
    /// The message for the user, naming the component `component`.
    pub fn message(&self, component: &str) -> String {
        match self {
            ConnectorProblem::Missing => format!(
                "artifact store `{component}` has no service connector: register one with \
                 `strata service-connector register s3 --type aws --endpoint=URL \
                 --access-key-id=… --secret-access-key=…` and bind it with `strata \
                 artifact-store update {component} --connector=s3`"
            ),
            ConnectorProblem::WrongType { name, kind } => format!(
                "artifact store `{component}` is bound to service connector `{name}` of type \
                 `{kind}`, but the s3 flavor needs one of type `aws` (strata signs each of its \
                 requests with AWS Signature Version 4): register one with `strata \
                 service-connector register NAME --type aws --endpoint=URL --access-key-id=… \
                 --secret-access-key=…` and bind it with `strata artifact-store update \
                 {component} --connector=NAME`"
            ),
            ConnectorProblem::BadEndpoint { name, endpoint } => format!(
                "artifact store `{component}`: the endpoint of service connector `{name}`, \
                 `{endpoint}`, is not an http:// or https:// URL: fix it with `strata \
                 service-connector update {name} --endpoint=URL`"
            ),
        }
    }
}

/// Reads the connector strata described under `connector.*`.
pub fn connector(config: &Config<'_>) -> Result<Connector, ConnectorProblem> {
    let name = config.get("connector.name").unwrap_or("").to_string();
    let Some(endpoint) = config.get("connector.endpoint").filter(|e| !e.is_empty()) else {
        return Err(ConnectorProblem::Missing);
    };
    let kind = config.get("connector.type").unwrap_or("");
    if kind != "aws" {
        return Err(ConnectorProblem::WrongType {
            name,
            kind: kind.to_string(),
        });
    }
    let endpoint = endpoint.trim().trim_end_matches('/');
    let lower = endpoint.to_ascii_lowercase();
    let rest = lower
        .strip_prefix("http://")
        .or_else(|| lower.strip_prefix("https://"));
    if rest.is_none_or(|r| r.is_empty() || r.contains(['?', '#'])) {
        return Err(ConnectorProblem::BadEndpoint {
            name,
            endpoint: endpoint.to_string(),
        });
    }
    let region = config
        .get("connector.region")
        .map(str::trim)
        .filter(|r| !r.is_empty())
        .unwrap_or("us-east-1")
        .to_string();
    Ok(Connector {
        name,
        endpoint: endpoint.to_string(),
        region,
    })
}

/// Every problem with `name` as an S3 bucket name (general purpose buckets), each one
/// sentence; empty if it is a valid name.
pub fn bucket_problems(name: &str) -> Vec<String> {
    let mut problems = Vec::new();
    let len = name.chars().count();
    if !(3..=63).contains(&len) {
        let plural = if len == 1 { "" } else { "s" };
        problems.push(format!(
            "is {len} character{plural} long: a bucket name has 3 to 63 characters"
        ));
    }
    let mut bad: Vec<char> = name
        .chars()
        .filter(|c| !(c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '.' | '-')))
        .collect();
    bad.dedup();
    if !bad.is_empty() {
        let shown: String = bad
            .iter()
            .map(|c| format!("`{}`", c.escape_debug()))
            .collect::<Vec<_>>()
            .join(", ");
        let upper = if bad.iter().any(char::is_ascii_uppercase) {
            " (upper-case letters are not allowed)"
        } else {
            ""
        };
        problems.push(format!(
            "holds {shown}: only lower-case letters, digits, `.` and `-` are allowed{upper}"
        ));
    }
    let edge_ok = |c: Option<char>| c.is_some_and(|c| c.is_ascii_lowercase() || c.is_ascii_digit());
    if !name.is_empty() && !edge_ok(name.chars().next()) {
        problems.push("must start with a lower-case letter or a digit".to_string());
    }
    if !name.is_empty() && !edge_ok(name.chars().last()) {
        problems.push("must end with a lower-case letter or a digit".to_string());
    }
    if name.contains("..") {
        problems.push("has two periods in a row".to_string());
    }
    if name.contains(".-") || name.contains("-.") {
        problems.push("has a period next to a hyphen".to_string());
    }
    let parts: Vec<&str> = name.split('.').collect();
    if parts.len() == 4
        && parts
            .iter()
            .all(|p| !p.is_empty() && p.len() <= 3 && p.bytes().all(|b| b.is_ascii_digit()))
    {
        problems.push("is formatted as an IP address".to_string());
    }
    for reserved in ["xn--", "sthree-", "amzn-s3-demo-"] {
        if name.starts_with(reserved) {
            problems.push(format!("starts with `{reserved}`, which S3 reserves"));
        }
    }
    for reserved in ["-s3alias", "--ol-s3", ".mrap", "--x-s3", "--table-s3"] {
        if name.ends_with(reserved) {
            problems.push(format!("ends with `{reserved}`, which S3 reserves"));
        }
    }
    problems
}

/// The prefix as the store uses it (`""`, or ending with `/`), or every problem with it.
pub fn normalize_prefix(prefix: &str) -> Result<String, Vec<String>> {
    let mut problems = Vec::new();
    if prefix.starts_with('/') {
        problems.push(
            "starts with `/`: a prefix is a key prefix inside the bucket, like `team/store`"
                .to_string(),
        );
    }
    if prefix.contains("//") {
        problems.push("holds an empty segment (`//`)".to_string());
    }
    if prefix.split('/').any(|s| s == "." || s == "..") {
        problems.push("holds a `.` or `..` segment".to_string());
    }
    if prefix.chars().any(char::is_control) {
        problems.push("holds a control character".to_string());
    }
    if prefix.len() > MAX_PREFIX {
        problems.push(format!(
            "is {} bytes long: keep it under {MAX_PREFIX} (an S3 key has at most 1,024)",
            prefix.len()
        ));
    }
    if !problems.is_empty() {
        return Err(problems);
    }
    let trimmed = prefix.trim_end_matches('/');
    Ok(if trimmed.is_empty() {
        String::new()
    } else {
        format!("{trimmed}/")
    })
}

/// Reads the configuration, recording every problem in `problems`.
pub fn read(config: &Config<'_>, problems: &mut Problems) -> Option<Settings> {
    let bucket = problems
        .check("bucket", config.require("bucket").map(str::to_string))
        .and_then(|bucket| {
            let found = bucket_problems(&bucket);
            if found.is_empty() {
                Some(bucket)
            } else {
                problems.field(
                    "bucket",
                    format!(
                        "bucket name `{}` is not valid in S3: it {}",
                        bucket.escape_debug(),
                        found.join("; it ")
                    ),
                );
                None
            }
        });
    let prefix = match normalize_prefix(config.get("prefix").unwrap_or("")) {
        Ok(prefix) => Some(prefix),
        Err(found) => {
            problems.field(
                "prefix",
                format!(
                    "prefix `{}` {}",
                    config.get("prefix").unwrap_or("").escape_debug(),
                    found.join("; it ")
                ),
            );
            None
        }
    };
    let create_bucket = problems.check("create_bucket", config.bool_or("create_bucket", false));
    let delete_bucket_contents = problems.check(
        "delete_bucket_contents",
        config.bool_or("delete_bucket_contents", false),
    );
    let threshold = problems
        .check(
            "multipart_threshold_mb",
            config.int_or("multipart_threshold_mb", DEFAULT_THRESHOLD_MB),
        )
        .and_then(|mb| {
            let max = (MAX_PART / (1024 * 1024)) as i64;
            if (5..=max).contains(&mb) {
                Some(mb as u64 * 1024 * 1024)
            } else {
                problems.field(
                    "multipart_threshold_mb",
                    format!(
                        "multipart_threshold_mb must be between 5 (S3's smallest part) and \
                         {max} (its largest), not {mb}"
                    ),
                );
                None
            }
        });
    Some(Settings {
        bucket: bucket?,
        prefix: prefix?,
        create_bucket: create_bucket?,
        delete_bucket_contents: delete_bucket_contents?,
        threshold: threshold?,
        connector: connector(config),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs(items: &[(&str, &str)]) -> Vec<(String, String)> {
        items
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn valid_bucket_names() {
        for name in ["abc", "my-bucket", "my.bucket.2", "0ab", &"a".repeat(63)] {
            assert!(bucket_problems(name).is_empty(), "{name}");
        }
    }

    #[test]
    fn every_problem_of_a_bucket_name_is_reported() {
        assert_eq!(
            bucket_problems("ab"),
            ["is 2 characters long: a bucket name has 3 to 63 characters"]
        );
        let found = bucket_problems("-My_Bucket..");
        assert_eq!(found.len(), 4, "{found:?}");
        assert!(found[0].contains("`M`, `_`, `B`") && found[0].contains("upper-case"));
        assert!(found[1].contains("start"));
        assert!(found[2].contains("end"));
        assert!(found[3].contains("two periods"));
        assert!(bucket_problems("192.168.5.4")[0].contains("IP address"));
        assert!(bucket_problems("192.168.5.4a").is_empty());
        assert!(bucket_problems("a.-b")[0].contains("hyphen"));
        assert!(bucket_problems("xn--abc")[0].contains("`xn--`"));
        assert!(bucket_problems("abc-s3alias")[0].contains("`-s3alias`"));
        assert!(bucket_problems(&"a".repeat(64))[0].contains("64 characters"));
        assert!(bucket_problems("")[0].contains("0 characters"));
    }

    #[test]
    fn prefixes_are_normalised_or_refused() {
        assert_eq!(normalize_prefix("").unwrap(), "");
        assert_eq!(normalize_prefix("team/store").unwrap(), "team/store/");
        assert_eq!(normalize_prefix("team/store/").unwrap(), "team/store/");
        let found = normalize_prefix("/a//../b").unwrap_err();
        assert_eq!(found.len(), 3, "{found:?}");
        assert!(normalize_prefix(&"p".repeat(600)).unwrap_err()[0].contains("600 bytes"));
    }

    #[test]
    fn defaults_apply_and_every_field_is_checked() {
        let config = pairs(&[("bucket", "my-bucket")]);
        let mut problems = Problems::new();
        let settings = read(&Config::new(&config), &mut problems).unwrap();
        assert!(problems.is_empty());
        assert_eq!(settings.prefix, "");
        assert!(!settings.create_bucket && !settings.delete_bucket_contents);
        assert_eq!(settings.threshold, 64 * 1024 * 1024);
        assert_eq!(settings.connector, Err(ConnectorProblem::Missing));

        let config = pairs(&[
            ("bucket", "B"),
            ("prefix", "/x"),
            ("create_bucket", "maybe"),
            ("multipart_threshold_mb", "4"),
        ]);
        let mut problems = Problems::new();
        assert!(read(&Config::new(&config), &mut problems).is_none());
        let found = problems.into_result().unwrap_err();
        let fields: Vec<&str> = found.iter().filter_map(|p| p.field.as_deref()).collect();
        assert_eq!(
            fields,
            [
                "bucket",
                "prefix",
                "create_bucket",
                "multipart_threshold_mb"
            ]
        );
        assert!(
            found[0]
                .message
                .starts_with("bucket name `B` is not valid in S3: it is 1 character long")
        );
        assert!(found[3].message.contains("between 5"));
    }

    #[test]
    fn the_connector_must_be_an_aws_one_with_an_http_endpoint() {
        let read = |items: &[(&str, &str)]| connector(&Config::new(&pairs(items)));
        assert_eq!(
            read(&[
                ("connector.name", "s3c"),
                ("connector.type", "aws"),
                ("connector.endpoint", "http://127.0.0.1:9000/"),
            ]),
            Ok(Connector {
                name: "s3c".into(),
                endpoint: "http://127.0.0.1:9000".into(),
                region: "us-east-1".into()
            })
        );
        assert_eq!(
            read(&[
                ("connector.type", "aws"),
                ("connector.endpoint", "https://s3.eu-west-1.amazonaws.com"),
                ("connector.region", "eu-west-1"),
            ])
            .unwrap()
            .region,
            "eu-west-1"
        );
        assert_eq!(read(&[]), Err(ConnectorProblem::Missing));
        let wrong = read(&[
            ("connector.name", "hooks"),
            ("connector.type", "bearer"),
            ("connector.endpoint", "https://hooks.example"),
        ])
        .unwrap_err();
        let message = wrong.message("st");
        assert!(
            message.contains("`bearer`")
                && message.contains("strata service-connector register NAME --type aws"),
            "{message}"
        );
        assert!(matches!(
            read(&[("connector.type", "aws"), ("connector.endpoint", "ftp://x")]),
            Err(ConnectorProblem::BadEndpoint { .. })
        ));
        let missing = ConnectorProblem::Missing.message("st");
        assert!(missing.contains("`strata artifact-store update st --connector=s3`"));
    }
}

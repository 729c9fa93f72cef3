//! A small, tolerant XML reader, enough for S3's answers, and the answers themselves:
//! `ListBucketResult`, `Error`, `InitiateMultipartUploadResult`, `CopyObjectResult` /
//! `CopyPartResult`, `CompleteMultipartUploadResult` and `DeleteResult`.
//!
//! Tolerant means: namespaces and attributes are ignored (`<s3:Key xmlns=…>` is `Key`),
//! the XML declaration, comments, a DOCTYPE and processing instructions are skipped,
//! CDATA is text, the five predefined entities and numeric character references are
//! decoded (anything else is kept as written), and an unclosed or mismatched tag ends
//! where the document does rather than failing: S3 servers vary, and a message built
//! from half an answer says more than "unparseable".

/// One element: its local name, its child elements, and its own text (every text node
/// directly inside it, concatenated and decoded; white space kept).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Element {
    pub name: String,
    pub children: Vec<Element>,
    pub text: String,
}

impl Element {
    /// The first child named `name`.
    pub fn child(&self, name: &str) -> Option<&Element> {
        self.children.iter().find(|c| c.name == name)
    }

    /// Every child named `name`, in order.
    pub fn children<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a Element> + 'a {
        self.children.iter().filter(move |c| c.name == name)
    }

    /// The text of the first child named `name`.
    pub fn child_text(&self, name: &str) -> Option<&str> {
        self.child(name).map(|c| c.text.as_str())
    }

    /// The first element named `name` at any depth, this one included (depth first).
    pub fn find(&self, name: &str) -> Option<&Element> {
        if self.name == name {
            return Some(self);
        }
        self.children.iter().find_map(|c| c.find(name))
    }
}

/// `name` without a namespace prefix: `s3:Key` is `Key`.
fn local(name: &str) -> &str {
    name.rsplit_once(':').map_or(name, |(_, l)| l)
}

/// Decodes the predefined entities and character references of `text`.
fn decode_entities(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find('&') {
        out.push_str(&rest[..at]);
        rest = &rest[at..];
        // A reference is short: look for its `;` in the next few bytes only.
        let near = &rest.as_bytes()[..rest.len().min(12)];
        let Some(end) = near.iter().position(|&b| b == b';') else {
            out.push('&');
            rest = &rest[1..];
            continue;
        };
        let entity = &rest[1..end];
        let decoded = match entity {
            "amp" => Some('&'),
            "lt" => Some('<'),
            "gt" => Some('>'),
            "quot" => Some('"'),
            "apos" => Some('\''),
            _ => entity
                .strip_prefix("#x")
                .or_else(|| entity.strip_prefix("#X"))
                .map(|hex| u32::from_str_radix(hex, 16))
                .or_else(|| entity.strip_prefix('#').map(str::parse::<u32>))
                .and_then(Result::ok)
                .and_then(char::from_u32),
        };
        match decoded {
            Some(c) => {
                out.push(c);
                rest = &rest[end + 1..];
            }
            None => {
                out.push('&');
                rest = &rest[1..];
            }
        }
    }
    out.push_str(rest);
    out
}

/// Parses `input` and returns its root element.
///
/// # Errors
/// If the input holds no element at all (an empty body, plain text, HTML cut short).
pub fn parse(input: &str) -> Result<Element, String> {
    // stack[0] is the document; the rest are the elements open at this point.
    let mut stack: Vec<Element> = vec![Element::default()];
    let mut rest = input;
    while !rest.is_empty() {
        let Some(lt) = rest.find('<') else {
            push_text(&mut stack, &decode_entities(rest));
            break;
        };
        if lt > 0 {
            push_text(&mut stack, &decode_entities(&rest[..lt]));
        }
        rest = &rest[lt..];
        if let Some(body) = rest.strip_prefix("<![CDATA[") {
            let end = body.find("]]>").unwrap_or(body.len());
            push_text(&mut stack, &body[..end]);
            rest = body.get(end + 3..).unwrap_or("");
        } else if let Some(body) = rest.strip_prefix("<!--") {
            rest = body.find("-->").map_or("", |end| &body[end + 3..]);
        } else if let Some(body) = rest.strip_prefix("<?") {
            rest = body.find("?>").map_or("", |end| &body[end + 2..]);
        } else if rest.starts_with("<!") {
            // A DOCTYPE, with an internal subset in brackets perhaps.
            let mut depth = 0i32;
            let end = rest
                .char_indices()
                .find(|&(_, c)| {
                    match c {
                        '[' => depth += 1,
                        ']' => depth -= 1,
                        '>' if depth <= 0 => return true,
                        _ => {}
                    }
                    false
                })
                .map_or(rest.len(), |(i, _)| i + 1);
            rest = &rest[end..];
        } else if let Some(body) = rest.strip_prefix("</") {
            let end = body.find('>').unwrap_or(body.len());
            let name = local(body[..end].trim()).to_string();
            rest = body.get(end + 1..).unwrap_or("");
            // Close up to the matching open element; a stray end tag is ignored.
            if let Some(depth) = stack.iter().rposition(|e| e.name == name)
                && depth > 0
            {
                while stack.len() > depth {
                    close(&mut stack);
                }
            }
        } else {
            let body = &rest[1..];
            let end = tag_end(body);
            let tag = &body[..end];
            rest = body.get(end + 1..).unwrap_or("");
            let self_closing = tag.ends_with('/');
            let tag = tag.trim_end_matches('/');
            let name_end = tag
                .find(|c: char| c.is_ascii_whitespace())
                .unwrap_or(tag.len());
            let name = local(&tag[..name_end]);
            if name.is_empty() {
                // A lone `<`: keep it as text.
                push_text(&mut stack, "<");
                continue;
            }
            stack.push(Element {
                name: name.to_string(),
                ..Element::default()
            });
            if self_closing {
                close(&mut stack);
            }
        }
    }
    while stack.len() > 1 {
        close(&mut stack);
    }
    let document = stack.pop().unwrap_or_default();
    document
        .children
        .into_iter()
        .next()
        .ok_or_else(|| "the answer holds no XML element".to_string())
}

/// Where the tag that `body` starts ends: the first `>` outside quotes.
fn tag_end(body: &str) -> usize {
    let mut quote = None;
    for (i, c) in body.char_indices() {
        match (quote, c) {
            (None, '"' | '\'') => quote = Some(c),
            (Some(q), c) if c == q => quote = None,
            (None, '>') => return i,
            _ => {}
        }
    }
    body.len()
}

fn push_text(stack: &mut [Element], text: &str) {
    if let Some(top) = stack.last_mut() {
        top.text.push_str(text);
    }
}

fn close(stack: &mut Vec<Element>) {
    if let Some(done) = stack.pop()
        && let Some(parent) = stack.last_mut()
    {
        parent.children.push(done);
    }
}

// ----- S3's answers -----

/// An S3 `<Error>`: its `Code` and `Message`, each possibly empty.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct S3ErrorBody {
    pub code: String,
    pub message: String,
    /// The region a `PermanentRedirect` or `AuthorizationHeaderMalformed` names.
    pub region: Option<String>,
}

/// The `<Error>` in `body`, if it holds one (as the root, or anywhere: a 200 answer to
/// `CompleteMultipartUpload` or `CopyObject` can be an error too).
pub fn error_of(body: &[u8]) -> Option<S3ErrorBody> {
    let text = String::from_utf8_lossy(body);
    let root = parse(&text).ok()?;
    let error = root.find("Error")?;
    let code = error.child_text("Code").unwrap_or("").trim().to_string();
    let message = error.child_text("Message").unwrap_or("").trim().to_string();
    if code.is_empty() && message.is_empty() {
        return None;
    }
    let region = error
        .child_text("Region")
        .map(|r| r.trim().to_string())
        .filter(|r| !r.is_empty());
    Some(S3ErrorBody {
        code,
        message,
        region,
    })
}

/// One object of a listing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListedObject {
    pub key: String,
    pub size: u64,
    pub modified_ms: Option<u64>,
}

/// One page of `ListObjectsV2`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ListPage {
    pub objects: Vec<ListedObject>,
    /// `CommonPrefixes`: the "directories", each ending with the delimiter.
    pub prefixes: Vec<String>,
    pub truncated: bool,
    pub next_token: Option<String>,
}

/// A `ListBucketResult` (of `ListObjectsV2`).
///
/// # Errors
/// If the body is not a `ListBucketResult`.
pub fn list_page(body: &[u8]) -> Result<ListPage, String> {
    let text = String::from_utf8_lossy(body);
    let root = parse(&text)?;
    if root.name != "ListBucketResult" {
        return Err(format!(
            "the answer is a <{}>, not the <ListBucketResult> of a listing",
            root.name
        ));
    }
    let objects = root
        .children("Contents")
        .filter_map(|c| {
            Some(ListedObject {
                key: c.child_text("Key")?.to_string(),
                size: c
                    .child_text("Size")
                    .and_then(|s| s.trim().parse().ok())
                    .unwrap_or(0),
                modified_ms: c
                    .child_text("LastModified")
                    .and_then(crate::codec::parse_iso8601),
            })
        })
        .collect();
    let prefixes = root
        .children("CommonPrefixes")
        .flat_map(|c| c.children("Prefix").map(|p| p.text.clone()))
        .collect();
    let truncated = root
        .child_text("IsTruncated")
        .is_some_and(|t| t.trim().eq_ignore_ascii_case("true"));
    let next_token = root
        .child_text("NextContinuationToken")
        .map(str::to_string)
        .filter(|t| !t.is_empty());
    Ok(ListPage {
        objects,
        prefixes,
        truncated,
        next_token,
    })
}

/// The `UploadId` of an `InitiateMultipartUploadResult`.
///
/// # Errors
/// If the body holds none.
pub fn upload_id(body: &[u8]) -> Result<String, String> {
    let text = String::from_utf8_lossy(body);
    let root = parse(&text)?;
    root.find("UploadId")
        .map(|u| u.text.trim().to_string())
        .filter(|u| !u.is_empty())
        .ok_or_else(|| {
            format!(
                "the answer (<{}>) holds no UploadId of an InitiateMultipartUploadResult",
                root.name
            )
        })
}

/// The `ETag` of a `CopyObjectResult` or `CopyPartResult`.
///
/// # Errors
/// If the body holds none.
pub fn copy_etag(body: &[u8]) -> Result<String, String> {
    let text = String::from_utf8_lossy(body);
    let root = parse(&text)?;
    root.find("ETag")
        .map(|e| e.text.trim().to_string())
        .filter(|e| !e.is_empty())
        .ok_or_else(|| format!("the answer (<{}>) holds no ETag of a copy", root.name))
}

/// The keys a `DeleteResult` could not delete, each with its code and message.
///
/// # Errors
/// If the body is not a `DeleteResult`.
pub fn delete_failures(body: &[u8]) -> Result<Vec<(String, S3ErrorBody)>, String> {
    let text = String::from_utf8_lossy(body);
    if text.trim().is_empty() {
        return Ok(Vec::new());
    }
    let root = parse(&text)?;
    if root.name != "DeleteResult" {
        return Err(format!(
            "the answer is a <{}>, not the <DeleteResult> of DeleteObjects",
            root.name
        ));
    }
    Ok(root
        .children("Error")
        .map(|e| {
            (
                e.child_text("Key").unwrap_or("").to_string(),
                S3ErrorBody {
                    code: e.child_text("Code").unwrap_or("").trim().to_string(),
                    message: e.child_text("Message").unwrap_or("").trim().to_string(),
                    region: None,
                },
            )
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn elements_text_and_children() {
        let root = parse(
            r#"<?xml version="1.0" encoding="UTF-8"?>
            <!-- a comment -->
            <a x="1 > 0"><b>one</b><b>two &amp; &lt;three&gt; &#65;&#x42;</b><c/><d><![CDATA[<raw&>]]></d></a>"#,
        )
        .unwrap();
        assert_eq!(root.name, "a");
        let texts: Vec<&str> = root.children("b").map(|b| b.text.as_str()).collect();
        assert_eq!(texts, ["one", "two & <three> AB"]);
        assert_eq!(root.child_text("c"), Some(""));
        assert_eq!(root.child_text("d"), Some("<raw&>"));
        assert!(root.child("e").is_none());
    }

    #[test]
    fn namespaces_doctypes_and_unknown_entities_are_tolerated() {
        let root = parse(
            "<!DOCTYPE x [<!ENTITY e 'v'>]><s3:R xmlns:s3='urn:x'><s3:K>a &e; &bogus b&</s3:K></s3:R>",
        )
        .unwrap();
        assert_eq!(root.name, "R");
        assert_eq!(root.child_text("K"), Some("a &e; &bogus b&"));
    }

    #[test]
    fn unclosed_and_mismatched_tags_end_with_the_document() {
        let root = parse("<a><b>x</c><d>y").unwrap();
        assert_eq!(root.child_text("b"), Some("x"));
        assert_eq!(root.find("d").map(|d| d.text.as_str()), Some("y"));
        assert!(parse("").is_err());
        assert!(parse("plain text").is_err());
    }

    #[test]
    fn an_s3_error_with_code_message_and_region() {
        let body = br#"<?xml version="1.0" encoding="UTF-8"?>
<Error><Code>SignatureDoesNotMatch</Code><Message>The request signature we calculated does not match the signature you provided.</Message><RequestId>1</RequestId></Error>"#;
        let error = error_of(body).unwrap();
        assert_eq!(error.code, "SignatureDoesNotMatch");
        assert!(error.message.starts_with("The request signature"));
        assert_eq!(error.region, None);
        let redirect = error_of(
            b"<Error><Code>AuthorizationHeaderMalformed</Code><Message>m</Message><Region>eu-west-1</Region></Error>",
        )
        .unwrap();
        assert_eq!(redirect.region.as_deref(), Some("eu-west-1"));
        // What s3s sends: a code and no message.
        assert_eq!(
            error_of(b"<Error><Code>NoSuchKey</Code></Error>").unwrap(),
            S3ErrorBody {
                code: "NoSuchKey".into(),
                ..S3ErrorBody::default()
            }
        );
        assert_eq!(error_of(b""), None);
        assert_eq!(error_of(b"<html>Bad Gateway</html>"), None);
        assert_eq!(
            error_of(
                b"<CompleteMultipartUploadResult><ETag>x</ETag></CompleteMultipartUploadResult>"
            ),
            None
        );
    }

    #[test]
    fn a_list_bucket_result_with_objects_prefixes_and_a_token() {
        let body = br#"<?xml version="1.0" encoding="UTF-8"?>
<ListBucketResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/">
  <Name>b</Name><Prefix>store/</Prefix><KeyCount>3</KeyCount><MaxKeys>2</MaxKeys>
  <IsTruncated>true</IsTruncated>
  <Contents><Key>store/a &amp; b.txt</Key><LastModified>2026-12-02T07:55:55.000Z</LastModified><ETag>"x"</ETag><Size>5</Size></Contents>
  <Contents><Key> store/spaced </Key><Size>0</Size></Contents>
  <CommonPrefixes><Prefix>store/dir/</Prefix></CommonPrefixes>
  <NextContinuationToken>1ueGcxLPRx1Tr/XYExHnhbYLgveDs2J/wm36Hy4vbOwM=</NextContinuationToken>
</ListBucketResult>"#;
        let page = list_page(body).unwrap();
        assert_eq!(
            page.objects,
            [
                ListedObject {
                    key: "store/a & b.txt".into(),
                    size: 5,
                    modified_ms: Some(1_796_198_155_000)
                },
                ListedObject {
                    key: " store/spaced ".into(),
                    size: 0,
                    modified_ms: None
                },
            ]
        );
        assert_eq!(page.prefixes, ["store/dir/"]);
        assert!(page.truncated);
        assert_eq!(
            page.next_token.as_deref(),
            Some("1ueGcxLPRx1Tr/XYExHnhbYLgveDs2J/wm36Hy4vbOwM=")
        );
        let empty = list_page(
            b"<ListBucketResult><Name>b</Name><KeyCount>0</KeyCount><IsTruncated>false</IsTruncated></ListBucketResult>",
        )
        .unwrap();
        assert_eq!(empty, ListPage::default());
        assert!(
            list_page(b"<Error><Code>NoSuchBucket</Code></Error>")
                .unwrap_err()
                .contains("<Error>")
        );
    }

    #[test]
    fn multipart_and_copy_answers() {
        let initiated = br#"<?xml version="1.0" encoding="UTF-8"?>
<InitiateMultipartUploadResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><Bucket>b</Bucket><Key>k</Key><UploadId>VXBsb2FkIElE</UploadId></InitiateMultipartUploadResult>"#;
        assert_eq!(upload_id(initiated).unwrap(), "VXBsb2FkIElE");
        assert!(upload_id(b"<InitiateMultipartUploadResult/>").is_err());
        let copied = br#"<CopyObjectResult><LastModified>2026-12-02T07:55:55.000Z</LastModified><ETag>&quot;9b2cf535f27731c974343645a3985328&quot;</ETag></CopyObjectResult>"#;
        assert_eq!(
            copy_etag(copied).unwrap(),
            "\"9b2cf535f27731c974343645a3985328\""
        );
        assert_eq!(
            copy_etag(b"<CopyPartResult><ETag>\"p1\"</ETag></CopyPartResult>").unwrap(),
            "\"p1\""
        );
        assert!(copy_etag(b"").is_err());
    }

    #[test]
    fn a_delete_result_lists_what_failed() {
        let body = br#"<DeleteResult><Deleted><Key>a</Key></Deleted><Error><Key>b</Key><Code>AccessDenied</Code><Message>Access Denied</Message></Error></DeleteResult>"#;
        let failed = delete_failures(body).unwrap();
        assert_eq!(failed.len(), 1);
        assert_eq!(failed[0].0, "b");
        assert_eq!(failed[0].1.code, "AccessDenied");
        assert!(delete_failures(b"<DeleteResult/>").unwrap().is_empty());
        assert!(delete_failures(b"").unwrap().is_empty());
        assert!(delete_failures(b"<Other/>").is_err());
    }
}

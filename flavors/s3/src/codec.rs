//! The small encodings S3 needs, written by hand so the flavor needs no dependency
//! beyond strata's SDK: percent-encoding of keys and query values, XML escaping, MD5 and
//! base64 (for `Content-MD5`, which `DeleteObjects` requires), and the dates S3 answers
//! with (HTTP dates in `Last-Modified`, ISO 8601 in listings).

/// Whether `b` is one of the characters AWS never percent-encodes: `A-Z a-z 0-9 - . _ ~`.
fn unreserved(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~')
}

fn encode(s: &str, keep_slash: bool) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if unreserved(b) || (keep_slash && b == b'/') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// An object key as it goes in a URL path: every byte but the unreserved characters and
/// `/` percent-encoded, in upper-case hex. This is exactly AWS's canonical form, so the
/// path strata signs is the path sent.
pub fn encode_key(key: &str) -> String {
    encode(key, true)
}

/// A query parameter's value (or a copy source's bucket and key): as [`encode_key`], and
/// `/` encoded too.
pub fn encode_query(value: &str) -> String {
    encode(value, false)
}

/// Decodes `%XX` escapes; anything malformed is kept as written. (For the tests' S3
/// server: the flavor itself never decodes.)
#[cfg(test)]
pub fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            let digit = |b: u8| (b as char).to_digit(16);
            if let (Some(high), Some(low)) = (digit(bytes[i + 1]), digit(bytes[i + 2])) {
                out.push((high * 16 + low) as u8);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// `s` with `& < > " '` escaped, for text and attribute values in an XML body.
pub fn xml_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            // Carriage returns would be normalised away by the server's parser.
            '\r' => out.push_str("&#13;"),
            c => out.push(c),
        }
    }
    out
}

/// The MD5 digest of `data` (RFC 1321). Not for security: S3 wants it as a checksum of
/// a `DeleteObjects` body.
pub fn md5(data: &[u8]) -> [u8; 16] {
    const S: [u32; 64] = [
        7, 12, 17, 22, 7, 12, 17, 22, 7, 12, 17, 22, 7, 12, 17, 22, 5, 9, 14, 20, 5, 9, 14, 20, 5,
        9, 14, 20, 5, 9, 14, 20, 4, 11, 16, 23, 4, 11, 16, 23, 4, 11, 16, 23, 4, 11, 16, 23, 6, 10,
        15, 21, 6, 10, 15, 21, 6, 10, 15, 21, 6, 10, 15, 21,
    ];
    let k: [u32; 64] =
        std::array::from_fn(|i| ((i as f64 + 1.0).sin().abs() * 4_294_967_296.0) as u32);
    let mut state: [u32; 4] = [0x6745_2301, 0xefcd_ab89, 0x98ba_dcfe, 0x1032_5476];

    let mut message = data.to_vec();
    let bit_len = (data.len() as u64).wrapping_mul(8);
    message.push(0x80);
    while message.len() % 64 != 56 {
        message.push(0);
    }
    message.extend_from_slice(&bit_len.to_le_bytes());

    for block in message.chunks_exact(64) {
        let m: [u32; 16] = std::array::from_fn(|i| {
            u32::from_le_bytes([
                block[4 * i],
                block[4 * i + 1],
                block[4 * i + 2],
                block[4 * i + 3],
            ])
        });
        let [mut a, mut b, mut c, mut d] = state;
        for i in 0..64 {
            let (f, g) = match i / 16 {
                0 => ((b & c) | (!b & d), i),
                1 => ((d & b) | (!d & c), (5 * i + 1) % 16),
                2 => (b ^ c ^ d, (3 * i + 5) % 16),
                _ => (c ^ (b | !d), (7 * i) % 16),
            };
            let rotated = a
                .wrapping_add(f)
                .wrapping_add(k[i])
                .wrapping_add(m[g])
                .rotate_left(S[i]);
            a = d;
            d = c;
            c = b;
            b = b.wrapping_add(rotated);
        }
        state[0] = state[0].wrapping_add(a);
        state[1] = state[1].wrapping_add(b);
        state[2] = state[2].wrapping_add(c);
        state[3] = state[3].wrapping_add(d);
    }
    let mut digest = [0u8; 16];
    for (i, word) in state.iter().enumerate() {
        digest[4 * i..4 * i + 4].copy_from_slice(&word.to_le_bytes());
    }
    digest
}

/// Standard base64 (RFC 4648), with padding.
pub fn base64(data: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(data.len().div_ceil(3) * 4);
    for chunk in data.chunks(3) {
        let b = [
            chunk[0],
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for (i, shift) in [18u32, 12, 6, 0].into_iter().enumerate() {
            if i <= chunk.len() {
                out.push(ALPHABET[((n >> shift) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// Days since 1970-01-01 of a civil date (Howard Hinnant's `days_from_civil`).
fn days_from_civil(year: i64, month: u32, day: u32) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let m = i64::from(month);
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(day) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// Milliseconds since the Unix epoch of a UTC date and time, if it is one (and not
/// before 1970).
fn epoch_ms(year: i64, month: u32, day: u32, h: u32, m: u32, s: u32, ms: u32) -> Option<u64> {
    if !(1..=12).contains(&month) || !(1..=31).contains(&day) || h > 23 || m > 59 || s > 60 {
        return None;
    }
    let days = days_from_civil(year, month, day);
    let secs = days * 86_400 + i64::from(h) * 3600 + i64::from(m) * 60 + i64::from(s);
    u64::try_from(secs)
        .ok()
        .map(|secs| secs * 1000 + u64::from(ms))
}

const MONTHS: [&str; 12] = [
    "jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec",
];

/// `hh:mm:ss` (seconds may carry a fraction, which is dropped).
fn parse_clock(token: &str) -> Option<(u32, u32, u32)> {
    let mut parts = token.split(':');
    let h = parts.next()?.parse().ok()?;
    let m = parts.next()?.parse().ok()?;
    let s = parts
        .next()
        .map_or(Some(0), |s| s.split('.').next()?.parse().ok())?;
    Some((h, m, s))
}

/// An HTTP date (`Last-Modified`) in milliseconds since the Unix epoch. Accepts the
/// three forms HTTP allows, read loosely: IMF-fixdate (`Sun, 06 Nov 1994 08:49:37 GMT`,
/// what S3 sends), RFC 850 (`Sunday, 06-Nov-94 08:49:37 GMT`) and asctime
/// (`Sun Nov  6 08:49:37 1994`). `None` if it is none of them.
pub fn parse_http_date(text: &str) -> Option<u64> {
    let (mut day, mut month, mut year, mut clock) = (None, None, None, None);
    for token in text
        .split(|c: char| c.is_ascii_whitespace() || c == ',' || c == '-')
        .filter(|t| !t.is_empty())
    {
        if token.contains(':') {
            clock = Some(parse_clock(token)?);
        } else if token.bytes().all(|b| b.is_ascii_digit()) {
            let n: i64 = token.parse().ok()?;
            match token.len() {
                1 | 2 if day.is_none() => day = Some(n as u32),
                2 => year = Some(if n >= 70 { 1900 + n } else { 2000 + n }),
                4 => year = Some(n),
                _ => return None,
            }
        } else if token.len() >= 3 {
            let lower = token.to_ascii_lowercase();
            if let Some(i) = MONTHS.iter().position(|m| lower == *m) {
                month = Some(i as u32 + 1);
            }
            // Week days and the `GMT` zone say nothing more.
        }
    }
    let (h, m, s) = clock?;
    epoch_ms(year?, month?, day?, h, m, s, 0)
}

/// An ISO 8601 UTC timestamp as S3 lists it (`2026-12-02T07:55:55.000Z`) in milliseconds
/// since the Unix epoch.
pub fn parse_iso8601(text: &str) -> Option<u64> {
    let text = text.trim();
    let (date, time) = text.split_once(['T', 't', ' '])?;
    let mut parts = date.split('-');
    let year = parts.next()?.parse().ok()?;
    let month = parts.next()?.parse().ok()?;
    let day = parts.next()?.parse().ok()?;
    let time = time.trim_end_matches(['Z', 'z']);
    let (clock, fraction) = time.split_once('.').unwrap_or((time, ""));
    let (h, m, s) = parse_clock(clock)?;
    let digits: String = fraction
        .chars()
        .take_while(char::is_ascii_digit)
        .chain("000".chars())
        .take(3)
        .collect();
    epoch_ms(year, month, day, h, m, s, digits.parse().ok()?)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(bytes: &[u8]) -> String {
        bytes.iter().map(|b| format!("{b:02x}")).collect()
    }

    #[test]
    fn keys_keep_slashes_and_unreserved_characters_only() {
        assert_eq!(encode_key("models/v1/weights.bin"), "models/v1/weights.bin");
        assert_eq!(encode_key("a b+c=d&e"), "a%20b%2Bc%3Dd%26e");
        assert_eq!(encode_key("~tilde_-."), "~tilde_-.");
        assert_eq!(encode_key("100%"), "100%25");
        assert_eq!(encode_key("é"), "%C3%A9");
        assert_eq!(encode_query("a/b c"), "a%2Fb%20c");
        assert_eq!(percent_decode("a%2Fb%20c%C3%A9"), "a/b cé");
        assert_eq!(percent_decode("100%"), "100%");
        assert_eq!(percent_decode("%zz%4"), "%zz%4");
        for s in ["x y/z", "%", "é~", ""] {
            assert_eq!(percent_decode(&encode_key(s)), s);
        }
    }

    #[test]
    fn xml_text_is_escaped() {
        assert_eq!(
            xml_escape(r#"a<b>&"c"'d'"#),
            "a&lt;b&gt;&amp;&quot;c&quot;&apos;d&apos;"
        );
    }

    #[test]
    fn md5_matches_rfc_1321() {
        let cases = [
            ("", "d41d8cd98f00b204e9800998ecf8427e"),
            ("a", "0cc175b9c0f1b6a831c399e269772661"),
            ("abc", "900150983cd24fb0d6963f7d28e17f72"),
            ("message digest", "f96b697d7cb7938d525a2f31aaf161d0"),
            (
                "12345678901234567890123456789012345678901234567890123456789012345678901234567890",
                "57edf4a22be3c955ac49da2e2107b67a",
            ),
        ];
        for (input, digest) in cases {
            assert_eq!(hex(&md5(input.as_bytes())), digest, "{input:?}");
        }
        // Across the 56-byte padding boundary.
        assert_eq!(hex(&md5(&[b'x'; 56])), "668a72d5ba17f08e62dabcafad6db14b");
        assert_eq!(hex(&md5(&[b'x'; 1000])), "398533d48111e9f664b1f64cb10c4b63");
    }

    #[test]
    fn base64_matches_rfc_4648() {
        let cases = [
            ("", ""),
            ("f", "Zg=="),
            ("fo", "Zm8="),
            ("foo", "Zm9v"),
            ("foob", "Zm9vYg=="),
            ("fooba", "Zm9vYmE="),
            ("foobar", "Zm9vYmFy"),
        ];
        for (input, encoded) in cases {
            assert_eq!(base64(input.as_bytes()), encoded);
        }
        assert_eq!(base64(&md5(b"")), "1B2M2Y8AsgTpgAmY7PhCfg==");
    }

    #[test]
    fn http_dates_in_all_three_forms() {
        let want = Some(784_111_777_000);
        assert_eq!(parse_http_date("Sun, 06 Nov 1994 08:49:37 GMT"), want);
        assert_eq!(parse_http_date("Sunday, 06-Nov-94 08:49:37 GMT"), want);
        assert_eq!(parse_http_date("Sun Nov  6 08:49:37 1994"), want);
        assert_eq!(
            parse_http_date("Wed, 02 Dec 2026 07:55:55 GMT"),
            Some(1_796_198_155_000)
        );
        assert_eq!(parse_http_date("Thu, 01 Jan 1970 00:00:00 GMT"), Some(0));
        assert_eq!(
            parse_http_date("Tue, 29 Feb 2028 23:59:59 GMT"),
            Some(1_835_481_599_000)
        );
        assert_eq!(parse_http_date(""), None);
        assert_eq!(parse_http_date("yesterday"), None);
        assert_eq!(parse_http_date("Sun, 06 Foo 1994 08:49:37 GMT"), None);
        assert_eq!(parse_http_date("Sun, 06 Nov 1994 25:49:37 GMT"), None);
    }

    #[test]
    fn iso_dates_as_s3_lists_them() {
        assert_eq!(
            parse_iso8601("2026-12-02T07:55:55.000Z"),
            Some(1_796_198_155_000)
        );
        assert_eq!(
            parse_iso8601("1994-11-06T08:49:37.5Z"),
            Some(784_111_777_500)
        );
        assert_eq!(parse_iso8601("1994-11-06T08:49:37Z"), Some(784_111_777_000));
        assert_eq!(parse_iso8601("not a date"), None);
    }
}

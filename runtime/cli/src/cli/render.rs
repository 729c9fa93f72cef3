//! Tables in the style of ZenML's CLI, and the JSON / YAML forms of every view.

use serde::Serialize;
use unicode_width::UnicodeWidthStr;

use super::Format;
use crate::model::text::visible;

/// Columns a terminal gives `s`: two for a wide character (CJK, emoji such as ✅, an
/// emoji presentation sequence), none for a combining mark, after Unicode's East Asian
/// Width and emoji data (UAX #11), as terminals count them.
fn width(s: &str) -> usize {
    UnicodeWidthStr::width(s)
}

fn pad(s: &str, w: usize) -> String {
    format!("{s}{}", " ".repeat(w.saturating_sub(width(s))))
}

/// A box-drawn table, as `zenml … list` prints them. Every cell is data (a flavor's
/// description, a status detail, a secret's value…), so each is made [`visible`]: no
/// control character reaches the terminal, and no line break leaves its cell.
///
/// Drawn here rather than by a table crate. comfy-table 8.0.1, given this style as a
/// `TableStyle`, prints every table strata prints byte for byte the same, but it keeps a
/// column's width in a `u16` (`Table::column_max_content_widths`, `table.rs` line 636:
/// `try_into().unwrap_or(u16::MAX)`): a cell wider than 65,535 columns (a long secret
/// value once its control characters are spelled out) is wrapped and its lines come out
/// two columns shorter than the borders. Whatever draws these tables must keep their look,
/// since scripts parse them; the layout is twenty lines, and the one hard part, how wide
/// a character is, comes from `unicode-width`.
pub fn table(headers: &[&str], rows: &[Vec<String>]) -> String {
    let headers: Vec<String> = headers.iter().map(|h| visible(h).into_owned()).collect();
    let rows: Vec<Vec<String>> = rows
        .iter()
        .map(|r| r.iter().map(|c| visible(c).into_owned()).collect())
        .collect();
    let mut widths: Vec<usize> = headers.iter().map(|h| width(h)).collect();
    for row in &rows {
        for (i, cell) in row.iter().enumerate() {
            widths[i] = widths[i].max(width(cell));
        }
    }
    let line = |l: &str, fill: &str, mid: &str, r: &str| {
        let parts: Vec<String> = widths.iter().map(|w| fill.repeat(w + 2)).collect();
        format!("{l}{}{r}\n", parts.join(mid))
    };
    let row_text = |cells: &[String], edge: &str| {
        let parts: Vec<String> = cells
            .iter()
            .zip(&widths)
            .map(|(c, w)| format!(" {} ", pad(c, *w)))
            .collect();
        format!("{edge}{}{edge}\n", parts.join("│"))
    };
    let mut out = line("┏", "━", "┯", "┓");
    out.push_str(&row_text(&headers, "┃"));
    out.push_str(&line("┠", "─", "┼", "┨"));
    for row in &rows {
        out.push_str(&row_text(row, "┃"));
    }
    out.push_str(&line("┗", "━", "┷", "┛"));
    out
}

/// Two columns: a property and its value, for `describe`.
pub fn properties(title: &str, pairs: &[(String, String)]) -> String {
    let rows: Vec<Vec<String>> = pairs
        .iter()
        .map(|(k, v)| vec![k.clone(), v.clone()])
        .collect();
    format!(
        "{}\n{}",
        visible(title),
        table(&["PROPERTY", "VALUE"], &rows)
    )
}

/// A time strata recorded (milliseconds since the Unix epoch) as people read it:
/// `2026-12-01 23:40:18 UTC`.
pub fn utc(ms: u64) -> String {
    let (y, m, d, h, mi, sec, _) = crate::model::civil_utc(ms);
    format!("{y:04}-{m:02}-{d:02} {h:02}:{mi:02}:{sec:02} UTC")
}

pub fn check(b: bool) -> String {
    if b { "✅".into() } else { "❌".into() }
}

/// Serializes `value` for `--output json|yaml`; `None` for tables. Both stay exact and
/// print no control character raw: JSON escapes the C0 controls itself and the rest
/// here ([`SafeJson`]); YAML escapes the controls itself, and the format characters
/// here ([`safe_yaml`]).
pub fn structured<T: Serialize>(format: Format, value: &T) -> Option<String> {
    match format {
        Format::Table => None,
        Format::Json => {
            let mut out = Vec::new();
            let mut ser = serde_json::Serializer::with_formatter(&mut out, SafeJson::default());
            value
                .serialize(&mut ser)
                .expect("invariant: views serialize");
            let mut s = String::from_utf8(out).expect("invariant: serde_json writes UTF-8");
            s.push('\n');
            Some(s)
        }
        Format::Yaml => Some(safe_yaml(value)),
    }
}

/// Appended to a string that holds a format character, so that libyaml writes it
/// double-quoted (as `\x01\x02\x03"`), where the character can be escaped.
const YAML_MARK: &str = "\u{1}\u{2}\u{3}";

/// `value` as YAML, with no character of [`crate::model::text::needs_escape`] but line
/// breaks raw. libyaml escapes the C0 and C1 controls and DEL itself, in a double-quoted
/// string; the bidi and invisible format characters it counts as printable and writes
/// as they are, even in a plain string. So each string holding one is marked to force
/// double quotes, and the characters are written there as `\u` escapes (`\u202e`). The result is
/// parsed back and must be the same document; if not, libyaml's own text is used.
fn safe_yaml<T: Serialize>(value: &T) -> String {
    use crate::model::text::needs_escape;
    use serde_norway::Value;
    let plain = serde_norway::to_string(value).expect("invariant: views serialize");
    if !plain.chars().any(|c| c != '\n' && needs_escape(c)) {
        return plain;
    }
    fn mark(v: Value) -> Value {
        match v {
            Value::String(s) if s.chars().any(needs_escape) => Value::String(s + YAML_MARK),
            Value::Sequence(items) => Value::Sequence(items.into_iter().map(mark).collect()),
            Value::Mapping(m) => {
                Value::Mapping(m.into_iter().map(|(k, v)| (mark(k), mark(v))).collect())
            }
            Value::Tagged(t) => Value::Tagged(Box::new(serde_norway::value::TaggedValue {
                tag: t.tag,
                value: mark(t.value),
            })),
            other => other,
        }
    }
    let Ok(original) = serde_norway::to_value(value) else {
        return plain;
    };
    let Ok(marked) = serde_norway::to_string(&mark(original.clone())) else {
        return plain;
    };
    let mut out = String::with_capacity(marked.len());
    for c in marked.replace("\\x01\\x02\\x03\"", "\"").chars() {
        match c as u32 {
            u if c != '\n' && needs_escape(c) && u > 0xffff => out.push_str(&format!("\\U{u:08x}")),
            u if c != '\n' && needs_escape(c) => out.push_str(&format!("\\u{u:04x}")),
            _ => out.push(c),
        }
    }
    let same = serde_norway::from_str::<Value>(&out).is_ok_and(|back| back == original);
    if same { out } else { plain }
}

/// serde_json's pretty printer, writing as `\u` escapes (`\u202e`) also the characters it would leave
/// raw but a terminal obeys: DEL, the C1 controls (U+009B is a CSI), and the bidi and
/// invisible format characters of [`crate::model::text::needs_escape`]. The JSON means
/// the same string; only its spelling changes.
#[derive(Default)]
struct SafeJson(serde_json::ser::PrettyFormatter<'static>);

impl serde_json::ser::Formatter for SafeJson {
    fn write_string_fragment<W: ?Sized + std::io::Write>(
        &mut self,
        w: &mut W,
        fragment: &str,
    ) -> std::io::Result<()> {
        let mut rest = fragment;
        while let Some((at, c)) = rest
            .char_indices()
            .find(|(_, c)| crate::model::text::needs_escape(*c))
        {
            w.write_all(&rest.as_bytes()[..at])?;
            let mut units = [0u16; 2];
            for u in c.encode_utf16(&mut units) {
                write!(w, "\\u{:04x}", u)?;
            }
            rest = &rest[at + c.len_utf8()..];
        }
        w.write_all(rest.as_bytes())
    }

    fn begin_array<W: ?Sized + std::io::Write>(&mut self, w: &mut W) -> std::io::Result<()> {
        self.0.begin_array(w)
    }
    fn end_array<W: ?Sized + std::io::Write>(&mut self, w: &mut W) -> std::io::Result<()> {
        self.0.end_array(w)
    }
    fn begin_array_value<W: ?Sized + std::io::Write>(
        &mut self,
        w: &mut W,
        first: bool,
    ) -> std::io::Result<()> {
        self.0.begin_array_value(w, first)
    }
    fn end_array_value<W: ?Sized + std::io::Write>(&mut self, w: &mut W) -> std::io::Result<()> {
        self.0.end_array_value(w)
    }
    fn begin_object<W: ?Sized + std::io::Write>(&mut self, w: &mut W) -> std::io::Result<()> {
        self.0.begin_object(w)
    }
    fn end_object<W: ?Sized + std::io::Write>(&mut self, w: &mut W) -> std::io::Result<()> {
        self.0.end_object(w)
    }
    fn begin_object_key<W: ?Sized + std::io::Write>(
        &mut self,
        w: &mut W,
        first: bool,
    ) -> std::io::Result<()> {
        self.0.begin_object_key(w, first)
    }
    fn begin_object_value<W: ?Sized + std::io::Write>(&mut self, w: &mut W) -> std::io::Result<()> {
        self.0.begin_object_value(w)
    }
    fn end_object_value<W: ?Sized + std::io::Write>(&mut self, w: &mut W) -> std::io::Result<()> {
        self.0.end_object_value(w)
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn recorded_times_read_as_utc_dates() {
        assert_eq!(utc(0), "1970-01-01 00:00:00 UTC");
        assert_eq!(utc(1_764_632_418_123), "2025-12-01 23:40:18 UTC");
        assert_eq!(utc(951_782_400_000), "2000-02-29 00:00:00 UTC");
        assert_eq!(utc(4_107_542_399_000), "2100-02-28 23:59:59 UTC");
    }

    use super::*;

    const HOSTILE: &str = "v1\u{1b}]0;pwned\u{7}\u{1b}]52;c;aGk=\u{7}\u{1b}[2J\rStack `default` is up.\n\u{9b}2J\u{7f}\u{202e}\u{e0041}";

    #[test]
    fn tables_show_controls_and_keep_their_lines() {
        let t = table(
            &["A", "B"],
            &[
                vec![HOSTILE.into(), "ok".into()],
                vec!["x".into(), HOSTILE.into()],
            ],
        );
        assert!(
            !t.contains(['\u{1b}', '\u{7}', '\r', '\u{9b}', '\u{202e}']),
            "{t}"
        );
        assert!(t.contains("\\u{1b}]0;pwned"), "{t}");
        assert_eq!(t.lines().count(), 6, "a line break left its cell:\n{t}");
        let widths: Vec<usize> = t.lines().map(width).collect();
        assert!(widths.windows(2).all(|w| w[0] == w[1]), "{t}");
        let p = properties(HOSTILE, &[("K".into(), HOSTILE.into())]);
        assert!(!p.contains(['\u{1b}', '\r']), "{p}");
    }

    #[test]
    fn json_and_yaml_stay_exact_and_escape_controls_themselves() {
        let value = serde_json::json!({ "detail": HOSTILE });
        for format in [Format::Json, Format::Yaml] {
            let text = structured(format, &value).unwrap();
            assert!(
                !text.contains(['\u{1b}', '\u{7}', '\r', '\u{9b}', '\u{7f}']),
                "{format:?} printed a control character raw:\n{text}"
            );
            assert!(
                !text.contains(['\u{202e}', '\u{e0041}']),
                "{format:?}:\n{text}"
            );
            let back: serde_json::Value = match format {
                Format::Json => serde_json::from_str(&text).unwrap(),
                _ => serde_norway::from_str(&text).unwrap(),
            };
            assert_eq!(back["detail"], HOSTILE, "{format:?} is not exact");
        }
    }

    #[test]
    fn yaml_escapes_format_characters_in_every_kind_of_string() {
        // Alone (libyaml would write it plain), as a key, in a long folded string, in a
        // multi-line one, beside a quote and a backslash, and a string that merely looks
        // like the mark.
        let value = serde_json::json!({
            "plain": "a\u{202e}b",
            "k\u{200b}ey": ["\u{feff}", "x\\\"\u{2066}'y"],
            "long": format!("{} \u{202e} {}", "word ".repeat(40), "end ".repeat(30)),
            "lines": "one\ntwo\u{202e}\nthree",
            "mark": "m\u{1}\u{2}\u{3}",
            "tag": "\u{e0041}",
        });
        let text = structured(Format::Yaml, &value).unwrap();
        assert!(
            !text
                .chars()
                .any(|c| c != '\n' && crate::model::text::needs_escape(c)),
            "{text}"
        );
        let back: serde_json::Value = serde_norway::from_str(&text).unwrap();
        assert_eq!(back, value, "{text}");
    }

    /// The display column of every box-drawing character in each line of `t`.
    fn rule_columns(t: &str) -> Vec<Vec<usize>> {
        t.lines()
            .map(|line| {
                line.char_indices()
                    .filter(|(_, c)| "┏┯┓┃│┠┼┨┗┷┛".contains(*c))
                    .map(|(at, _)| width(&line[..at]))
                    .collect()
            })
            .collect()
    }

    #[test]
    fn columns_line_up_with_cjk_and_emoji() {
        let t = table(
            &["名前", "READY", "説明"],
            &[
                vec!["模型训练".into(), "✅".into(), "ascii".into()],
                vec!["x".into(), "❌".into(), "한국어 텍스트".into()],
                vec!["⏳ 待機".into(), "⚠\u{fe0f}".into(), "👩‍🔬 e\u{301}".into()],
                vec!["ｆｕｌｌ".into(), "🚀".into(), "".into()],
            ],
        );
        let cols = rule_columns(&t);
        assert!(cols.windows(2).all(|w| w[0] == w[1]), "{t}\n{cols:?}");
        assert_eq!(cols[0].len(), 4, "{t}");
        let widths: Vec<usize> = t.lines().map(width).collect();
        assert!(widths.windows(2).all(|w| w[0] == w[1]), "{t}");
        // 模型训练 is four wide characters: eight columns, and the column is as wide.
        assert_eq!(cols[0][1] - cols[0][0], 8 + 3, "{t}");
    }

    #[test]
    fn columns_line_up_with_emoji() {
        let t = table(
            &["A", "READY"],
            &[
                vec!["x".into(), "✅".into()],
                vec!["long".into(), "❌".into()],
            ],
        );
        let widths: Vec<usize> = t.lines().map(width).collect();
        assert!(widths.windows(2).all(|w| w[0] == w[1]), "{t}");
    }
}

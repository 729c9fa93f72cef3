//! Tables in the style of ZenML's CLI, and the JSON / YAML forms of every view.

use serde::Serialize;

use super::Format;

/// Columns a terminal gives a character: emoji such as ✅ take two.
fn width(s: &str) -> usize {
    s.chars()
        .map(|c| match c as u32 {
            0x2705 | 0x274C | 0x23F3 | 0x1F300..=0x1FAFF => 2,
            0x0300..=0x036F | 0xFE0F => 0,
            _ => 1,
        })
        .sum()
}

fn pad(s: &str, w: usize) -> String {
    format!("{s}{}", " ".repeat(w.saturating_sub(width(s))))
}

/// A box-drawn table, as `zenml … list` prints them.
pub fn table(headers: &[&str], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = headers.iter().map(|h| width(h)).collect();
    for row in rows {
        for (i, cell) in row.iter().enumerate() {
            widths[i] = widths[i].max(width(cell));
        }
    }
    let line = |l: &str, fill: &str, mid: &str, r: &str| {
        let parts: Vec<String> = widths.iter().map(|w| fill.repeat(w + 2)).collect();
        format!("{l}{}{r}\n", parts.join(mid))
    };
    let row_text = |cells: Vec<String>, edge: &str| {
        let parts: Vec<String> = cells
            .iter()
            .zip(&widths)
            .map(|(c, w)| format!(" {} ", pad(c, *w)))
            .collect();
        format!("{edge}{}{edge}\n", parts.join("│"))
    };
    let mut out = line("┏", "━", "┯", "┓");
    out.push_str(&row_text(
        headers.iter().map(|h| h.to_string()).collect(),
        "┃",
    ));
    out.push_str(&line("┠", "─", "┼", "┨"));
    for row in rows {
        out.push_str(&row_text(row.clone(), "┃"));
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
    format!("{title}\n{}", table(&["PROPERTY", "VALUE"], &rows))
}

pub fn check(b: bool) -> String {
    if b { "✅".into() } else { "❌".into() }
}

/// Serializes `value` for `--output json|yaml`; `None` for tables.
pub fn structured<T: Serialize>(format: Format, value: &T) -> Option<String> {
    match format {
        Format::Table => None,
        Format::Json => {
            Some(serde_json::to_string_pretty(value).expect("invariant: views serialize") + "\n")
        }
        Format::Yaml => Some(serde_yaml::to_string(value).expect("invariant: views serialize")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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

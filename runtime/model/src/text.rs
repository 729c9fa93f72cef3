//! Text that did not come from strata, made safe for a terminal.
//!
//! A flavor is untrusted, and so is everything it says: its version, descriptions,
//! defaults, requirement reasons, status details, logs, errors and launch reports. A
//! terminal obeys control characters in what it prints: ESC starts sequences that set
//! the window title, write the clipboard (OSC 52) or clear the screen, `\r` returns to
//! the start of the line so later text overwrites earlier text, and the bidi and
//! zero-width format characters reorder or hide text. [`visible`] writes every such
//! character as a visible escape instead, so it is shown, never obeyed.
//!
//! The CLI's renderers pass everything they print through [`visible`] (a cell, a line)
//! or [`visible_block`] (an error or hint that may span lines), and add strata's own
//! colour codes afterwards; `--output json|yaml` stays exact (both formats escape
//! control characters themselves). Names and keys are checked with [`check_name_chars`]:
//! one that needs escaping is refused wherever it comes from, CLI or REST.

use std::borrow::Cow;

/// Whether `c` must not reach a terminal as it is: the C0 controls (also `\n`, `\r`,
/// `\t`), DEL, the C1 controls, and the invisible format characters that can reorder,
/// hide or break lines of text (bidi embeddings, overrides and isolates, zero-width
/// characters, line and paragraph separators, the byte-order mark, tag characters).
pub fn needs_escape(c: char) -> bool {
    matches!(
        c,
        '\u{0}'..='\u{1f}'
            | '\u{7f}'..='\u{9f}'
            | '\u{61c}'
            | '\u{180e}'
            | '\u{200b}'..='\u{200f}'
            | '\u{2028}'..='\u{202e}'
            | '\u{2060}'..='\u{2064}'
            | '\u{2066}'..='\u{206f}'
            | '\u{feff}'
            | '\u{fff9}'..='\u{fffb}'
            | '\u{e0000}'..='\u{e007f}'
    )
}

fn escape_into(out: &mut String, c: char) {
    match c {
        '\n' => out.push_str("\\n"),
        '\r' => out.push_str("\\r"),
        '\t' => out.push_str("\\t"),
        c => out.push_str(&format!("\\u{{{:x}}}", c as u32)),
    }
}

/// `s` with every character of [`needs_escape`] written as a visible escape: `\n`, `\r`,
/// `\t`, and `\u{1b}` (Rust's notation) for the rest. Borrowed when nothing needed it.
pub fn visible(s: &str) -> Cow<'_, str> {
    if !s.chars().any(needs_escape) {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() + 16);
    for c in s.chars() {
        if needs_escape(c) {
            escape_into(&mut out, c);
        } else {
            out.push(c);
        }
    }
    Cow::Owned(out)
}

/// Like [`visible`], but keeps `\n` for a text that may span lines (an error, a hint):
/// every line after the first is indented by at least `indent` spaces, so no line of
/// it can pass for one of strata's own (`Stack … is up.`, `error: …`, `hint: …`).
pub fn visible_block(s: &str, indent: usize) -> Cow<'_, str> {
    let pad = " ".repeat(indent);
    let needs_indent = s
        .split('\n')
        .skip(1)
        .any(|l| !l.is_empty() && !l.starts_with(&pad));
    if !needs_indent && !s.chars().any(|c| c != '\n' && needs_escape(c)) {
        return Cow::Borrowed(s);
    }
    let lines: Vec<String> = s
        .split('\n')
        .enumerate()
        .map(|(i, l)| {
            let l = visible(l);
            if i == 0 || l.is_empty() || l.starts_with(&pad) {
                l.into_owned()
            } else {
                format!("{pad}{l}")
            }
        })
        .collect();
    Cow::Owned(lines.join("\n"))
}

/// The first character of `s` that [`needs_escape`], as `U+001B`.
pub fn first_control(s: &str) -> Option<String> {
    s.chars()
        .find(|c| needs_escape(*c))
        .map(|c| format!("U+{:04X}", c as u32))
}

/// strata's one rule for the characters of a name or key (of a component, stack,
/// secret, secret key, config key, runtime parameter, pipeline or step): it must not be
/// empty or hold a character that [`needs_escape`]. `what` names the field as the
/// caller wrote it (`secret key`, `--param key`); the error says what to use instead.
pub fn check_name_chars(what: &str, value: &str) -> Result<(), crate::error::Error> {
    if value.is_empty() {
        return Err(crate::error::Error::invalid(
            format!("the {what} is empty"),
            format!("give the {what} as printable text"),
        ));
    }
    if let Some(c) = first_control(value) {
        return Err(crate::error::Error::invalid(
            format!(
                "the {what} `{}` contains the control character {c}",
                visible(value)
            ),
            format!(
                "a {what} may not contain control or invisible formatting characters (escape sequences, line breaks, tabs, bidi overrides): use printable text, e.g. letters, digits, `-` and `_`"
            ),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_control_is_made_visible() {
        let hostile = "a\u{1b}]0;pwned\u{7}b\u{1b}]52;c;aGk=\u{7}\u{1b}[2J\rStack `default` is up.\u{9b}31m\u{202e}x\u{200b}\u{7f}\t\n";
        let v = visible(hostile);
        assert!(!v.chars().any(needs_escape), "{v}");
        assert_eq!(
            v,
            "a\\u{1b}]0;pwned\\u{7}b\\u{1b}]52;c;aGk=\\u{7}\\u{1b}[2J\\rStack `default` is up.\\u{9b}31m\\u{202e}x\\u{200b}\\u{7f}\\t\\n"
        );
        assert!(matches!(visible("plain ✅ 👉 ünïcode"), Cow::Borrowed(_)));
    }

    #[test]
    fn a_block_keeps_its_lines_but_indents_them() {
        let v = visible_block("failed\nStack `default` is up.\n  - kept\n\x1b[2J", 2);
        assert_eq!(
            v,
            "failed\n  Stack `default` is up.\n  - kept\n  \\u{1b}[2J"
        );
        assert!(matches!(visible_block("one\n  two", 2), Cow::Borrowed(_)));
    }

    #[test]
    fn names_with_controls_are_refused() {
        assert!(check_name_chars("secret key", "token").is_ok());
        assert!(check_name_chars("secret key", "naïve-key_1").is_ok());
        for bad in [
            "",
            "a\u{1b}[2J",
            "a\rb",
            "a\nb",
            "a\tb",
            "\u{202e}x",
            "x\u{9b}",
        ] {
            let e = check_name_chars("secret key", bad).unwrap_err();
            assert!(
                !e.to_string().chars().any(needs_escape),
                "the error itself is safe: {e}"
            );
        }
        let e = check_name_chars("secret key", "a\u{1b}b").unwrap_err();
        assert_eq!(
            e.to_string(),
            "the secret key `a\\u{1b}b` contains the control character U+001B"
        );
    }
}

/// A duration for a person: `840 ms`, `12.3 s`.
pub fn human_ms(ms: u64) -> String {
    if ms < 1000 {
        format!("{ms} ms")
    } else {
        format!("{:.1} s", ms as f64 / 1000.0)
    }
}

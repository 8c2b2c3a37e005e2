//! Server-supplied text made safe to print.
//!
//! An `error_description`, an error body or a response header comes from the server, and a
//! hostile or broken server can put anything in it: an ANSI escape sequence that recolours the
//! terminal, rewrites its title or writes to the clipboard (OSC 52), a carriage return or line
//! feed that starts a forged log line, or a bidirectional override that makes text read
//! differently from what it is. Everything the client relays goes through [`printable`] first.

use std::borrow::Cow;
use std::fmt::Write as _;

/// Whether `c` must not reach a terminal or a log line as it is: every control character (C0,
/// DEL and C1, which includes the 8-bit CSI), the Unicode line and paragraph separators, and the
/// bidirectional formatting characters.
pub fn is_hazardous(c: char) -> bool {
    c.is_control()
        || matches!(
            c,
            '\u{061C}'
                | '\u{200E}'
                | '\u{200F}'
                | '\u{2028}'
                | '\u{2029}'
                | '\u{202A}'..='\u{202E}'
                | '\u{2066}'..='\u{2069}'
        )
}

/// Writes `c` as a visible escape: `\n`, `\r`, `\t`, or `\u{1b}`.
pub fn push_escaped(out: &mut String, c: char) {
    match c {
        '\n' => out.push_str("\\n"),
        '\r' => out.push_str("\\r"),
        '\t' => out.push_str("\\t"),
        other => {
            let _ = write!(out, "\\u{{{:x}}}", u32::from(other));
        }
    }
}

/// `text` with every [hazardous](is_hazardous) character replaced by a visible escape, so that
/// it stays on one line and cannot control the terminal it is printed on.
pub fn printable(text: &str) -> Cow<'_, str> {
    if !text.chars().any(is_hazardous) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 16);
    for c in text.chars() {
        if is_hazardous(c) {
            push_escaped(&mut out, c);
        } else {
            out.push(c);
        }
    }
    Cow::Owned(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escape_sequences_and_line_breaks_become_visible() {
        assert_eq!(printable("plain text: ok"), "plain text: ok");
        assert_eq!(
            printable("bad\x1b[31mred\r\n2024 INFO forged\u{9b}2J\u{202e}"),
            "bad\\u{1b}[31mred\\r\\n2024 INFO forged\\u{9b}2J\\u{202e}"
        );
    }

    proptest::proptest! {
        /// Whatever the server sends, the result is one line without a control character.
        #[test]
        fn printable_text_never_holds_a_hazardous_character(text in "\\PC*|[\\x00-\\x{ff}\\x{2028}\\x{202e}]*") {
            let out = printable(&text);
            proptest::prop_assert!(!out.chars().any(is_hazardous), "{out:?}");
            proptest::prop_assert!(!out.contains('\n') && !out.contains('\r'));
            if !text.chars().any(is_hazardous) {
                proptest::prop_assert_eq!(out.as_ref(), text.as_str());
            }
        }
    }
}

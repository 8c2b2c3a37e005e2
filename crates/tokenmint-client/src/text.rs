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

/// `text` with the password of every URL in it (`scheme://user:password@host`) replaced by
/// `***`, the user kept: an endpoint given with credentials in it appears in errors, hints and
/// log lines, which must not repeat the password.
pub fn without_url_passwords(text: &str) -> Cow<'_, str> {
    if !text.contains("://") || !text.contains('@') {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find("://") {
        let (before, after) = rest.split_at(at + 3);
        out.push_str(before);
        // The authority ends where a path, query, fragment, space or quote begins.
        let end = after
            .find(|c: char| {
                matches!(c, '/' | '?' | '#' | '"' | '\'' | ')' | '>') || c.is_whitespace()
            })
            .unwrap_or(after.len());
        let authority = &after[..end];
        match authority.rfind('@').map(|i| authority.split_at(i)) {
            Some((userinfo, host)) => match userinfo.split_once(':') {
                Some((user, _password)) => {
                    out.push_str(user);
                    out.push_str(":***");
                    out.push_str(host);
                }
                None => out.push_str(authority),
            },
            None => out.push_str(authority),
        }
        rest = &after[end..];
    }
    out.push_str(rest);
    Cow::Owned(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn url_passwords_are_masked_wherever_they_are_in_a_text() {
        for (given, said) in [
            ("http://u:pw@h/x", "http://u:***@h/x"),
            (
                "error sending request for url (https://a:b@c:8080/t): refused",
                "error sending request for url (https://a:***@c:8080/t): refused",
            ),
            (
                "token_url=http://u:p%40ss@h:1 and http://x:y@z",
                "token_url=http://u:***@h:1 and http://x:***@z",
            ),
            ("redis://:secret@cache:6379/0", "redis://:***@cache:6379/0"),
            ("http://user@h/", "http://user@h/"),
            ("no url here @ all", "no url here @ all"),
            ("http://h/path?q=a@b", "http://h/path?q=a@b"),
        ] {
            assert_eq!(without_url_passwords(given), said, "{given}");
        }
    }

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

//! Server-supplied bytes made safe for a terminal.
//!
//! A response body or header can carry escape sequences that recolour the terminal, rewrite its
//! title, write to the clipboard (OSC 52) or, with a carriage return, overwrite what was printed
//! and forge a line. When the output is a terminal, [`TerminalSafe`] shows such characters as
//! visible escapes (`\u{1b}`, `\r`, `\x9b` for a byte that is not UTF-8) and lets line feeds, tabs
//! and CRLF line ends through, so text still reads as text. Output to a pipe or a file is left
//! byte for byte as the server sent it: that is data, not display.

use std::fmt::Write as _;
use std::io::{self, Write};

use tokenmint_client::text::{is_hazardous, push_escaped};

/// A header value as printed by `call -i`: one line, every hazardous character escaped.
pub fn header_value(bytes: &[u8]) -> String {
    let mut writer = TerminalSafe::new(Vec::new()).single_line();
    // Writing to memory cannot fail.
    let _ = writer.write_chunk(bytes);
    let out = writer.finish().unwrap_or_default();
    String::from_utf8(out).unwrap_or_default()
}

/// Writes a byte stream, received in chunks, with hazardous characters escaped.
#[derive(Debug)]
pub struct TerminalSafe<W: Write> {
    out: W,
    /// The start of a UTF-8 sequence that the next chunk completes.
    pending: Vec<u8>,
    /// A carriage return whose fate (CRLF or a lone CR) the next character decides.
    cr: bool,
    /// Line feeds and tabs escaped too.
    single_line: bool,
}

impl<W: Write> TerminalSafe<W> {
    pub fn new(out: W) -> Self {
        Self { out, pending: Vec::new(), cr: false, single_line: false }
    }

    fn single_line(mut self) -> Self {
        self.single_line = true;
        self
    }

    /// Writes the next chunk of the stream.
    pub fn write_chunk(&mut self, chunk: &[u8]) -> io::Result<()> {
        let mut buffer = std::mem::take(&mut self.pending);
        buffer.extend_from_slice(chunk);
        let mut text = String::with_capacity(buffer.len() + 16);
        let mut rest: &[u8] = &buffer;
        loop {
            match std::str::from_utf8(rest) {
                Ok(valid) => {
                    self.push_str(&mut text, valid);
                    break;
                }
                Err(e) => {
                    let (valid, after) = rest.split_at(e.valid_up_to());
                    self.push_str(&mut text, std::str::from_utf8(valid).unwrap_or_default());
                    match e.error_len() {
                        // A sequence cut by the chunk boundary: the next chunk completes it.
                        None => {
                            self.pending = after.to_vec();
                            break;
                        }
                        Some(len) => {
                            let (invalid, after) = after.split_at(len);
                            for byte in invalid {
                                self.settle_cr(&mut text);
                                let _ = write!(text, "\\x{byte:02x}");
                            }
                            rest = after;
                        }
                    }
                }
            }
        }
        self.out.write_all(text.as_bytes())
    }

    /// Writes what the end of the stream leaves undecided and returns the writer.
    pub fn finish(mut self) -> io::Result<W> {
        let mut text = String::new();
        self.settle_cr(&mut text);
        for byte in std::mem::take(&mut self.pending) {
            let _ = write!(text, "\\x{byte:02x}");
        }
        self.out.write_all(text.as_bytes())?;
        self.out.flush()?;
        Ok(self.out)
    }

    /// A carriage return not followed by a line feed is shown, not obeyed.
    fn settle_cr(&mut self, out: &mut String) {
        if std::mem::take(&mut self.cr) {
            out.push_str("\\r");
        }
    }

    fn push_str(&mut self, out: &mut String, text: &str) {
        for c in text.chars() {
            if std::mem::take(&mut self.cr) {
                if c == '\n' && !self.single_line {
                    out.push_str("\r\n");
                    continue;
                }
                out.push_str("\\r");
            }
            match c {
                '\r' if !self.single_line => self.cr = true,
                '\n' | '\t' if !self.single_line => out.push(c),
                c if is_hazardous(c) => push_escaped(out, c),
                c => out.push(c),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn safe(chunks: &[&[u8]]) -> String {
        let mut writer = TerminalSafe::new(Vec::new());
        for chunk in chunks {
            writer.write_chunk(chunk).unwrap();
        }
        String::from_utf8(writer.finish().unwrap()).unwrap()
    }

    #[test]
    fn text_keeps_its_lines_and_loses_its_escape_sequences() {
        assert_eq!(safe(&[b"{\"a\": 1,\n\t\"b\": 2}\r\n"]), "{\"a\": 1,\n\t\"b\": 2}\r\n");
        assert_eq!(
            safe(&[b"ok\x1b[2J\x1b]52;c;cHduZWQ=\x07 done\rforged"]),
            "ok\\u{1b}[2J\\u{1b}]52;c;cHduZWQ=\\u{7} done\\rforged"
        );
        assert_eq!(safe(&["\u{9b}31m \u{202e}evil".as_bytes()]), "\\u{9b}31m \\u{202e}evil");
        assert_eq!(safe(&[b"bin\xff\xfe"]), "bin\\xff\\xfe");
    }

    #[test]
    fn a_character_or_a_crlf_split_between_chunks_is_read_whole() {
        let e_acute = "é".as_bytes();
        assert_eq!(safe(&[b"caf", &e_acute[..1], &e_acute[1..], b"\r", b"\nnext"]), "café\r\nnext");
        let csi = "\u{9b}".as_bytes();
        assert_eq!(safe(&[&csi[..1], &csi[1..]]), "\\u{9b}");
        assert_eq!(safe(&[b"end\r"]), "end\\r");
        assert_eq!(safe(&[&e_acute[..1]]), "\\xc3");
    }

    #[test]
    fn header_values_stay_on_one_line() {
        assert_eq!(header_value(b"a\tb\r\nc\x1bd"), "a\\tb\\r\\nc\\u{1b}d");
    }

    proptest::proptest! {
        /// However the bytes are cut into chunks, nothing hazardous reaches the terminal, and
        /// text without hazards is written unchanged.
        #[test]
        fn no_chunking_of_any_bytes_lets_a_hazardous_character_through(
            bytes in proptest::collection::vec(proptest::num::u8::ANY, 0..300),
            cut in proptest::collection::vec(0usize..300, 0..6),
        ) {
            let mut cuts: Vec<usize> = cut.into_iter().map(|c| c.min(bytes.len())).collect();
            cuts.sort_unstable();
            let mut chunks = Vec::new();
            let mut start = 0;
            for end in cuts.into_iter().chain([bytes.len()]) {
                chunks.push(&bytes[start..end]);
                start = end;
            }
            let out = safe(&chunks);
            let mut chars = out.chars().peekable();
            while let Some(c) = chars.next() {
                let allowed = c == '\n' || c == '\t' || (c == '\r' && chars.peek() == Some(&'\n'));
                proptest::prop_assert!(allowed || !is_hazardous(c), "{out:?}");
            }
            if let Ok(text) = std::str::from_utf8(&bytes) {
                let clean = text.chars().all(|c| c == '\n' || c == '\t' || !is_hazardous(c));
                if clean {
                    proptest::prop_assert_eq!(out.as_str(), text);
                }
            }
        }
    }
}

//! A server-sent-events parser (WHATWG HTML §9.2.6 "Interpreting an event stream"), fed with
//! network chunks as they arrive.
//!
//! Small enough to own rather than depend on: the feed needs `id`, `event`, `data` and `retry`,
//! the three line endings, comments for keep-alives, and a bound on how much one event may
//! buffer so that a broken server cannot make the verifier grow without limit.

use std::time::Duration;

/// One dispatched event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct SseEvent {
    /// The `event` field; `message` when absent.
    pub(crate) event: String,
    pub(crate) data: String,
    /// The last event id seen on the stream so far.
    pub(crate) id: Option<String>,
}

/// An event (or a line) grew past the configured bound.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("server-sent event larger than {0} bytes")]
pub(crate) struct EventTooLarge(pub(crate) usize);

#[derive(Debug)]
pub(crate) struct SseParser {
    line: Vec<u8>,
    data: String,
    event: String,
    last_id: Option<String>,
    /// The last `retry` field: the reconnection delay the server asks for.
    pub(crate) retry: Option<Duration>,
    /// A `\r` ended the previous chunk; a `\n` starting the next belongs to it.
    after_cr: bool,
    at_start: bool,
    max_bytes: usize,
}

impl SseParser {
    pub(crate) fn new(max_bytes: usize) -> Self {
        Self {
            line: Vec::new(),
            data: String::new(),
            event: String::new(),
            last_id: None,
            retry: None,
            after_cr: false,
            at_start: true,
            max_bytes,
        }
    }

    /// Feeds one chunk; complete events are pushed to `out`.
    pub(crate) fn feed(
        &mut self,
        chunk: &[u8],
        out: &mut Vec<SseEvent>,
    ) -> Result<(), EventTooLarge> {
        let mut rest = chunk;
        if self.after_cr {
            self.after_cr = false;
            if let Some(stripped) = rest.strip_prefix(b"\n") {
                rest = stripped;
            }
        }
        while let Some(end) = rest.iter().position(|&b| b == b'\n' || b == b'\r') {
            self.push_bytes(&rest[..end])?;
            let line = std::mem::take(&mut self.line);
            self.process_line(&line, out);
            if rest[end] == b'\r' {
                match rest.get(end + 1) {
                    Some(b'\n') => rest = &rest[end + 2..],
                    Some(_) => rest = &rest[end + 1..],
                    None => {
                        self.after_cr = true;
                        rest = &[];
                    }
                }
            } else {
                rest = &rest[end + 1..];
            }
        }
        self.push_bytes(rest)
    }

    fn push_bytes(&mut self, bytes: &[u8]) -> Result<(), EventTooLarge> {
        if self.line.len() + self.data.len() + bytes.len() > self.max_bytes {
            return Err(EventTooLarge(self.max_bytes));
        }
        self.line.extend_from_slice(bytes);
        Ok(())
    }

    fn process_line(&mut self, raw: &[u8], out: &mut Vec<SseEvent>) {
        let mut line = String::from_utf8_lossy(raw);
        if self.at_start {
            self.at_start = false;
            // A byte-order mark may open the stream and is not part of the first line.
            if let Some(stripped) = line.strip_prefix('\u{feff}') {
                line = stripped.to_owned().into();
            }
        }
        if line.is_empty() {
            self.dispatch(out);
            return;
        }
        if line.starts_with(':') {
            return; // a comment: the keep-alives look like this
        }
        let (field, value) = match line.split_once(':') {
            Some((field, value)) => (field, value.strip_prefix(' ').unwrap_or(value)),
            None => (line.as_ref(), ""),
        };
        match field {
            "event" => value.clone_into(&mut self.event),
            "data" => {
                self.data.push_str(value);
                self.data.push('\n');
            }
            "id" if !value.contains('\0') => self.last_id = Some(value.to_owned()),
            "retry" if !value.is_empty() && value.bytes().all(|b| b.is_ascii_digit()) => {
                self.retry = value.parse().ok().map(Duration::from_millis);
            }
            _ => {}
        }
    }

    fn dispatch(&mut self, out: &mut Vec<SseEvent>) {
        let event = std::mem::take(&mut self.event);
        if self.data.is_empty() {
            return;
        }
        let mut data = std::mem::take(&mut self.data);
        data.pop(); // the last "\n" is a separator, not data
        out.push(SseEvent {
            event: if event.is_empty() { "message".to_owned() } else { event },
            data,
            id: self.last_id.clone(),
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn parse_chunks(chunks: &[&[u8]]) -> Vec<SseEvent> {
        let mut parser = SseParser::new(1024);
        let mut out = Vec::new();
        for chunk in chunks {
            parser.feed(chunk, &mut out).ok();
        }
        out
    }

    fn event(event: &str, data: &str, id: Option<&str>) -> SseEvent {
        SseEvent { event: event.into(), data: data.into(), id: id.map(Into::into) }
    }

    #[test]
    fn a_feed_entry_with_id_event_and_data_is_dispatched_on_the_blank_line() {
        let events = parse_chunks(&[b"id: 7\nevent: revocation\ndata: {\"a\":1}\n\n"]);
        assert_eq!(events, [event("revocation", "{\"a\":1}", Some("7"))]);
    }

    #[test]
    fn keep_alive_comments_dispatch_nothing() {
        assert!(parse_chunks(&[b": keep-alive\n\n: keep-alive\n\n"]).is_empty());
    }

    #[test]
    fn events_split_across_chunks_and_line_endings_are_reassembled() {
        let events = parse_chunks(&[
            b"id: 1\r",
            b"\nevent: revo",
            b"cation\rdata: x\r\n",
            b"data: y\n",
            b"\n",
        ]);
        assert_eq!(events, [event("revocation", "x\ny", Some("1"))]);
    }

    #[test]
    fn an_event_without_type_is_a_message_and_retry_is_remembered() {
        let mut parser = SseParser::new(1024);
        let mut out = Vec::new();
        parser.feed(b"retry: 1500\ndata:no space\n\n", &mut out).ok();
        assert_eq!(out, [event("message", "no space", None)]);
        assert_eq!(parser.retry, Some(Duration::from_millis(1500)));
    }

    #[test]
    fn an_event_larger_than_the_bound_is_an_error() {
        let mut parser = SseParser::new(16);
        let mut out = Vec::new();
        assert_eq!(
            parser.feed(b"data: 0123456789\ndata: 0123456789\n", &mut out),
            Err(EventTooLarge(16))
        );
    }

    proptest! {
        #[test]
        fn chunk_boundaries_do_not_change_the_events(
            text in "(id: [0-9]{1,3}\r?\n|event: [a-z]{1,8}\r?\n|data: [a-z{}:\"]{0,12}\r?\n|: ka\r?\n|\r?\n){0,20}",
            split in 0usize..400,
        ) {
            let bytes = text.as_bytes();
            let split = split.min(bytes.len());
            let whole = parse_chunks(&[bytes]);
            let parts = parse_chunks(&[&bytes[..split], &bytes[split..]]);
            prop_assert_eq!(whole, parts);
        }

        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..500)) {
            let mut parser = SseParser::new(256);
            let mut out = Vec::new();
            let _ = parser.feed(&bytes, &mut out);
        }
    }
}

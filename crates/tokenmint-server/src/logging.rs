//! The log's two formats, as `--log-format` chooses them: `text` for a person, `json` (one
//! object a line) for a collector.
//!
//! A field's value is written once, escaped by the format alone, so a caller logs any text,
//! outside text too, with `%value` (its `Display`) or as a `&str`, and never quotes it itself:
//!
//! - `text` writes `key=value` with the value bare when it is one plain word and otherwise
//!   quoted ([`tokenmint_core::ids::write_log_value`]): a `"` inside becomes `\"`, a control,
//!   line-separator or bidirectional character `\u{…}`, and the escapes a [`SafeText`] carries
//!   already (`\u{7}`) stay as they are. No value can end its field early, add a field or start
//!   a line. The message is written as it is, but for those characters, escaped the same way.
//! - `json` writes each value as a JSON string of its plain text: JSON's own escaping, and the
//!   non-ASCII characters a line-oriented reader would take for a line break (U+0085, U+2028)
//!   or a terminal would reorder written as JSON escapes (`\u2028`), which parse back to the
//!   same text ([`tokenmint_core::ids::escape_unsafe_in_json`]).
//!
//! [`SafeText`]: tokenmint_core::SafeText

use std::fmt;
use std::io;
use tokenmint_core::ids::{is_unsafe_char, write_log_value};
use tracing::field::{Field, Visit};
use tracing_subscriber::Layer;
use tracing_subscriber::field::{MakeVisitor, VisitFmt, VisitOutput};
use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::registry::LookupSpan;

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    /// `2026-12-07T14:00:00.000000Z  INFO target: message key=value key="two words"`.
    Text,
    /// One JSON object a line, the event's fields at its top level.
    Json,
}

impl LogFormat {
    /// `text` or `json`.
    pub fn parse(name: &str) -> Option<Self> {
        match name {
            "text" => Some(Self::Text),
            "json" => Some(Self::Json),
            _ => None,
        }
    }
}

/// The layer that writes log lines in `format` to `writer`; `ansi` colours the text format's
/// levels (for a person at a terminal).
pub fn layer<S, W>(format: LogFormat, writer: W, ansi: bool) -> Box<dyn Layer<S> + Send + Sync>
where
    S: tracing::Subscriber + for<'a> LookupSpan<'a>,
    W: for<'w> MakeWriter<'w> + Send + Sync + 'static,
{
    let fmt = tracing_subscriber::fmt::layer();
    match format {
        LogFormat::Text => fmt.fmt_fields(TextFields).with_ansi(ansi).with_writer(writer).boxed(),
        LogFormat::Json => {
            fmt.json().flatten_event(true).with_ansi(false).with_writer(EscapedJson(writer)).boxed()
        }
    }
}

/// The text format's fields: `key=value`, separated by a space, each value written by
/// [`write_log_value`].
#[derive(Debug, Clone, Copy, Default)]
pub struct TextFields;

impl<'a> MakeVisitor<Writer<'a>> for TextFields {
    type Visitor = TextVisitor<'a>;

    fn make_visitor(&self, writer: Writer<'a>) -> Self::Visitor {
        TextVisitor { writer, result: Ok(()), empty: true, value: String::new() }
    }
}

/// Writes one event's or span's fields for [`TextFields`].
#[derive(Debug)]
pub struct TextVisitor<'a> {
    writer: Writer<'a>,
    result: fmt::Result,
    empty: bool,
    /// The value being written, reused from field to field.
    value: String,
}

impl TextVisitor<'_> {
    fn field(&mut self, field: &Field, value: fmt::Arguments<'_>) {
        if self.result.is_err() {
            return;
        }
        let name = field.name();
        // Metadata of events from the `log` crate, written by the event's own format.
        if name.starts_with("log.") {
            return;
        }
        self.value.clear();
        if fmt::Write::write_fmt(&mut self.value, value).is_err() {
            self.result = Err(fmt::Error);
            return;
        }
        let separator = if std::mem::take(&mut self.empty) { "" } else { " " };
        self.result = if name == "message" {
            write_message(&mut self.writer, separator, &self.value)
        } else {
            let name = name.strip_prefix("r#").unwrap_or(name);
            write!(self.writer, "{separator}{name}=")
                .and_then(|()| write_log_value(&mut self.writer, &self.value))
        };
    }
}

/// The message as it is, but for the characters no line may carry raw (`\u{…}`).
fn write_message(out: &mut Writer<'_>, separator: &str, message: &str) -> fmt::Result {
    out.write_str(separator)?;
    for c in message.chars() {
        if is_unsafe_char(c) {
            write!(out, "\\u{{{:x}}}", u32::from(c))?;
        } else {
            fmt::Write::write_char(out, c)?;
        }
    }
    Ok(())
}

impl Visit for TextVisitor<'_> {
    fn record_str(&mut self, field: &Field, value: &str) {
        self.field(field, format_args!("{value}"));
    }

    fn record_error(&mut self, field: &Field, value: &(dyn std::error::Error + 'static)) {
        self.field(field, format_args!("{value}"));
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.field(field, format_args!("{value:?}"));
    }
}

impl VisitOutput<fmt::Result> for TextVisitor<'_> {
    fn finish(self) -> fmt::Result {
        self.result
    }
}

impl VisitFmt for TextVisitor<'_> {
    fn writer(&mut self) -> &mut dyn fmt::Write {
        &mut self.writer
    }
}

/// Makes writers that write a JSON log line with its unsafe non-ASCII characters as JSON
/// escapes ([`tokenmint_core::ids::escape_unsafe_in_json`]).
#[derive(Debug, Clone)]
struct EscapedJson<W>(W);

impl<'a, W: MakeWriter<'a>> MakeWriter<'a> for EscapedJson<W> {
    type Writer = EscapedJson<W::Writer>;

    fn make_writer(&'a self) -> Self::Writer {
        EscapedJson(self.0.make_writer())
    }

    fn make_writer_for(&'a self, meta: &tracing::Metadata<'_>) -> Self::Writer {
        EscapedJson(self.0.make_writer_for(meta))
    }
}

/// The JSON format writes each line whole, in one call: the line is escaped as one text.
impl<W: io::Write> io::Write for EscapedJson<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match std::str::from_utf8(buf) {
            Ok(line) => {
                self.0.write_all(tokenmint_core::ids::escape_unsafe_in_json(line).as_bytes())?
            }
            Err(_) => self.0.write_all(buf)?,
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        self.0.flush()
    }
}

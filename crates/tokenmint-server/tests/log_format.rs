//! The two log formats as `serve --log-format` writes them: a field holding outside text is
//! quoted and escaped once in `text`, where nothing in it can end the field early, add a field
//! or start a line; and is a plain JSON string of the same text in `json`, escaped by JSON
//! alone, with the characters a line reader would break on written as JSON escapes.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::LogBuffer;
use serde_json::Value;
use tokenmint_core::SafeText;
use tokenmint_server::logging::{LogFormat, layer};
use tracing_subscriber::layer::SubscriberExt;

/// The lines `events` logs in `format`.
fn logged(format: LogFormat, events: impl FnOnce()) -> String {
    let buffer = LogBuffer::default();
    let writer = buffer.clone();
    let subscriber =
        tracing_subscriber::registry().with(layer(format, move || writer.clone(), false));
    tracing::subscriber::with_default(subscriber, events);
    buffer.text()
}

/// What a token hook said, as the token endpoint logs it.
fn said() -> SafeText {
    SafeText::new("no \"x\"\u{7} policy=issued\\")
}

fn refusal() {
    tracing::info!(client_id = "tmc_abc", reason = %said(), "the token hook refused the token");
}

#[test]
fn a_safe_text_field_is_a_plain_json_string_in_the_json_format() {
    let json = logged(LogFormat::Json, refusal);
    assert_eq!(json.lines().count(), 1, "{json}");
    let v: Value = serde_json::from_str(json.trim_end()).unwrap();
    // The text itself, escaped by JSON alone: not quoted a second time.
    assert_eq!(v["reason"], r#"no "x"\u{7} policy=issued\u{5c}"#, "{json}");
    assert!(json.contains(r#""reason":"no \"x\"\\u{7} policy=issued\\u{5c}""#), "{json}");
    assert_eq!(v["client_id"], "tmc_abc");
    assert_eq!(v["message"], "the token hook refused the token");
    assert!(v.get("policy").is_none(), "{json}");
}

#[test]
fn a_safe_text_field_is_quoted_and_escaped_once_in_the_text_format() {
    let text = logged(LogFormat::Text, refusal);
    assert_eq!(text.lines().count(), 1, "{text}");
    assert!(
        text.trim_end().ends_with(
            r#"the token hook refused the token client_id=tmc_abc reason="no \"x\"\u{7} policy=issued\u{5c}""#
        ),
        "{text}"
    );
}

#[test]
fn any_outside_text_is_one_value_on_one_line_in_both_formats() {
    let raw = "x\" forged=1\n2026-12-07T00:00:00Z  INFO forged\u{2028}\u{85}\u{202e}\\";
    let events = || {
        let span = tracing::info_span!("request", request_id = raw);
        let _entered = span.enter();
        tracing::warn!(client_id = raw, other = %raw, error = %std::io::Error::other(raw), "claim holds {raw}");
        tracing::info!(empty = "", n = 3, ok = true, list = ?["a", "b"], "plain");
    };
    let text = logged(LogFormat::Text, events);
    assert_eq!(text.lines().count(), 2, "{text}");
    let quoted = r#""x\" forged=1\u{a}2026-12-07T00:00:00Z  INFO forged\u{2028}\u{85}\u{202e}\\""#;
    let first = text.lines().next().unwrap();
    for field in ["request_id", "client_id", "other", "error"] {
        assert!(first.contains(&format!("{field}={quoted}")), "{field}: {first}");
    }
    // The message is as written, but for the characters no line may carry raw.
    assert!(first.contains(r#"claim holds x" forged=1\u{a}2026"#), "{first}");
    for c in ['\r', '\u{2028}', '\u{85}', '\u{202e}'] {
        assert!(!text.contains(c), "{c:?} raw in {text:?}");
    }
    let second = text.lines().nth(1).unwrap();
    assert!(second.ends_with(r#"plain empty="" n=3 ok=true list="[\"a\", \"b\"]""#), "{second}");

    let json = logged(LogFormat::Json, events);
    assert_eq!(json.lines().count(), 2, "{json}");
    for c in ['\u{2028}', '\u{85}', '\u{202e}'] {
        assert!(!json.contains(c), "{c:?} raw in {json:?}");
    }
    let v: Value = serde_json::from_str(json.lines().next().unwrap()).unwrap();
    for field in ["client_id", "other", "error"] {
        assert_eq!(v[field], raw, "{field}: {v}");
    }
    assert_eq!(v["span"]["request_id"], raw, "{v}");
    assert_eq!(v["message"], format!("claim holds {raw}"));
}

//! Strict JSON reading for what a provider sends to be stored or acted on (admin-API bodies,
//! claim values, token-hook answers) and for the claims of a token a verifier reads: a key
//! given twice in one object is refused at any depth, and so is a number no reader can hold.
//!
//! RFC 8259 §4 leaves a repeated key's meaning to the reader, and readers disagree (the first
//! wins in some, the last in serde_json, an error in others), so a document with one means
//! different things to a proxy, to tokenmint and to a verifier reading a token's claims.
//! serde_json's `Value` silently keeps the last, at the top level as inside nested objects.
//!
//! RFC 8259 §6 lets a number be any length; a reader holds a binary64 at most. `1e400` is
//! refused by serde_json ("number out of range") and `1e-400` silently read as `0`: both are
//! told here as [`StrictJsonError::NumberOutOfRange`], naming the number as it was written.
//!
//! Where a refusal is found costs nothing while reading: the path of the object is gathered
//! only when a refusal unwinds through the levels above it.

use serde::de::{self, DeserializeSeed, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Value};
use std::fmt;
use thiserror::Error;

/// The deepest nesting serde_json reads (its limit of 128 counts the level it refuses).
pub const MAX_JSON_DEPTH: usize = 127;

/// The most characters of a refused key or number shown in a refusal.
const SHOWN_CHARS: usize = 64;

/// Why a document was refused.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum StrictJsonError {
    #[error(
        "the key {key} appears twice in the object at {at}: JSON readers disagree on which one \
         counts, so give each key once"
    )]
    DuplicateKey {
        /// The key, quoted and escaped, cut to 64 characters.
        key: String,
        /// A JSON pointer to the object (`/` for the document itself).
        at: String,
    },
    #[error("arrays and objects are nested more than {MAX_JSON_DEPTH} levels deep")]
    TooDeep,
    #[error(
        "the number {literal} cannot be held by JSON readers: it is beyond ±1.8e308, or so \
         close to 0 that it would be read as 0; give it as a string"
    )]
    NumberOutOfRange {
        /// The number as it was written, cut to 64 characters.
        literal: String,
    },
    #[error("{0}")]
    Invalid(String),
}

/// Reads `text` as one JSON document, refusing repeated keys at any depth.
pub fn from_str(text: &str) -> Result<Value, StrictJsonError> {
    from_slice(text.as_bytes())
}

/// Reads `bytes` as one JSON document, refusing repeated keys at any depth and numbers no
/// reader can hold.
pub fn from_slice(bytes: &[u8]) -> Result<Value, StrictJsonError> {
    let mut walk = Walk { duplicate: None, float_zero: false };
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let read = Strict(&mut walk).deserialize(&mut de).and_then(|v| de.end().map(|()| v));
    match (read, walk.duplicate) {
        // Only a document that read a float as 0 may hold a non-zero number read as 0: the
        // text is scanned again only then.
        (Ok(value), _) => match walk.float_zero.then(|| unholdable_number(bytes)).flatten() {
            Some(literal) => Err(StrictJsonError::NumberOutOfRange { literal }),
            None => Ok(value),
        },
        (Err(_), Some(found)) => Err(found.refusal()),
        (Err(e), None) if e.to_string().starts_with("recursion limit exceeded") => {
            Err(StrictJsonError::TooDeep)
        }
        (Err(e), None) if e.to_string().starts_with("number out of range") => {
            match unholdable_number(bytes) {
                Some(literal) => Err(StrictJsonError::NumberOutOfRange { literal }),
                None => Err(StrictJsonError::Invalid(e.to_string())),
            }
        }
        (Err(e), None) => Err(StrictJsonError::Invalid(e.to_string())),
    }
}

/// The first number written in `bytes` (outside strings) that a binary64 cannot hold: one
/// that reads as infinite, or one with a non-zero digit that reads as 0. Shown as written.
fn unholdable_number(bytes: &[u8]) -> Option<String> {
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        match b {
            b'"' => {
                i += 1;
                while let Some(&c) = bytes.get(i) {
                    i += if c == b'\\' { 2 } else { 1 };
                    if c == b'"' {
                        break;
                    }
                }
            }
            b'-' | b'0'..=b'9' => {
                let start = i;
                while bytes
                    .get(i)
                    .is_some_and(|c| matches!(c, b'0'..=b'9' | b'-' | b'+' | b'.' | b'e' | b'E'))
                {
                    i += 1;
                }
                let text = std::str::from_utf8(&bytes[start..i]).unwrap_or_default();
                let read = text.parse::<f64>().unwrap_or(1.0);
                let mantissa = text.split(['e', 'E']).next().unwrap_or_default();
                let non_zero = mantissa.bytes().any(|c| matches!(c, b'1'..=b'9'));
                if read.is_infinite() || (read == 0.0 && non_zero) {
                    return Some(shown(text));
                }
            }
            _ => i += 1,
        }
    }
    None
}

/// `text` cut to [`SHOWN_CHARS`] characters.
fn shown(text: &str) -> String {
    let mut out: String = text.chars().take(SHOWN_CHARS).collect();
    if out.len() < text.len() {
        out.push('…');
    }
    out
}

/// A repeated key met while reading, and the path to its object, gathered innermost first as
/// the refusal unwinds.
struct Duplicate {
    key: String,
    path: Vec<String>,
}

impl Duplicate {
    fn refusal(self) -> StrictJsonError {
        let mut at = String::new();
        for segment in self.path.iter().rev() {
            at.push('/');
            at.push_str(segment);
        }
        if at.is_empty() {
            at.push('/');
        }
        StrictJsonError::DuplicateKey {
            key: self.key,
            at: at.chars().filter(|c| !c.is_control()).take(200).collect(),
        }
    }
}

/// The refusal the reader met, if any, and whether it read a float as 0 (`0.0`, or a number
/// too small for a binary64).
struct Walk {
    duplicate: Option<Duplicate>,
    float_zero: bool,
}

impl Walk {
    /// Adds the segment of the level a refusal unwinds through.
    fn unwinding(&mut self, segment: impl FnOnce() -> String) {
        if let Some(found) = &mut self.duplicate {
            found.path.push(segment());
        }
    }
}

struct Strict<'w>(&'w mut Walk);

impl<'de> DeserializeSeed<'de> for Strict<'_> {
    type Value = Value;

    fn deserialize<D: de::Deserializer<'de>>(self, deserializer: D) -> Result<Value, D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Strict<'_> {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_bool<E>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }

    fn visit_i64<E>(self, v: i64) -> Result<Value, E> {
        Ok(Value::from(v))
    }

    fn visit_u64<E>(self, v: u64) -> Result<Value, E> {
        Ok(Value::from(v))
    }

    fn visit_f64<E>(self, v: f64) -> Result<Value, E> {
        self.0.float_zero |= v == 0.0;
        // serde_json hands only finite numbers to a visitor.
        Ok(serde_json::Number::from_f64(v).map_or(Value::Null, Value::Number))
    }

    fn visit_str<E>(self, v: &str) -> Result<Value, E> {
        Ok(Value::String(v.to_owned()))
    }

    fn visit_string<E>(self, v: String) -> Result<Value, E> {
        Ok(Value::String(v))
    }

    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_none<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let walk = self.0;
        let mut items = Vec::new();
        loop {
            match seq.next_element_seed(Strict(&mut *walk)) {
                Ok(Some(item)) => items.push(item),
                Ok(None) => return Ok(Value::Array(items)),
                Err(e) => {
                    let index = items.len();
                    walk.unwinding(|| index.to_string());
                    return Err(e);
                }
            }
        }
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let walk = self.0;
        let mut members = Map::new();
        while let Some(key) = map.next_key::<String>()? {
            if members.contains_key(&key) {
                let quoted = format!("{:?}", shown(&key));
                walk.duplicate = Some(Duplicate { key: quoted, path: Vec::new() });
                return Err(de::Error::custom("repeated key"));
            }
            match map.next_value_seed(Strict(&mut *walk)) {
                Ok(value) => {
                    members.insert(key, value);
                }
                Err(e) => {
                    walk.unwinding(|| key.replace('~', "~0").replace('/', "~1"));
                    return Err(e);
                }
            }
        }
        Ok(Value::Object(members))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use serde_json::json;

    #[test]
    fn documents_without_repeated_keys_read_as_serde_json_reads_them() {
        for text in [
            r#"{"a":1,"b":[true,null,"x",-2,1.5,{"a":1}],"c":{"d":{"e":"f"}}}"#,
            "[]",
            "{}",
            "\"text\"",
            "12345678901234567890",
            "-9223372036854775808",
            "1e300",
        ] {
            assert_eq!(from_str(text).unwrap(), serde_json::from_str::<Value>(text).unwrap());
        }
    }

    #[test]
    fn a_repeated_key_is_refused_at_any_depth_and_named_with_where() {
        let cases = [
            (r#"{"a":1,"a":2}"#, "\"a\"", "/"),
            (r#"{"claims":{"plan":{"tier":"a","tier":"b"}}}"#, "\"tier\"", "/claims/plan"),
            (r#"[{"x":1},{"y":1,"y":1}]"#, "\"y\"", "/1"),
            (r#"{"a/b":{"k~":[{"z":1,"z":null}]}}"#, "\"z\"", "/a~1b/k~0/0"),
            (r#"{"q":{"":1,"":1}}"#, "\"\"", "/q"),
        ];
        for (text, key, at) in cases {
            assert_eq!(
                from_str(text).unwrap_err(),
                StrictJsonError::DuplicateKey { key: key.into(), at: at.into() },
                "{text}"
            );
        }
        // A key holding a control character is shown escaped.
        let e = from_str("{\"a\\n\":1,\"a\\n\":1}").unwrap_err().to_string();
        assert!(e.contains(r#""a\n""#) && !e.contains('\n'), "{e}");
    }

    #[test]
    fn nesting_beyond_serde_jsons_limit_and_broken_text_are_told_apart() {
        let deep = format!("{}{}", "[".repeat(MAX_JSON_DEPTH + 1), "]".repeat(MAX_JSON_DEPTH + 1));
        assert_eq!(from_str(&deep).unwrap_err(), StrictJsonError::TooDeep);
        let fits = format!("{}{}", "[".repeat(MAX_JSON_DEPTH), "]".repeat(MAX_JSON_DEPTH));
        assert!(from_str(&fits).is_ok());
        for broken in ["{", "{\"a\":1} x", "[1,]", "", "nul"] {
            assert!(matches!(from_str(broken), Err(StrictJsonError::Invalid(_))), "{broken}");
        }
        assert_eq!(from_str("[1]").unwrap(), json!([1]));
    }

    #[test]
    fn a_number_no_reader_can_hold_is_refused_as_written() {
        for (text, literal) in [
            ("1e400", "1e400"),
            ("[1, -1E+309]", "-1E+309"),
            (r#"{"a":{"b":1e-400}}"#, "1e-400"),
            (r#"{"s":"1e400","n":0.5e-330}"#, "0.5e-330"),
        ] {
            assert_eq!(
                from_str(text).unwrap_err(),
                StrictJsonError::NumberOutOfRange { literal: literal.into() },
                "{text}"
            );
        }
        let tiny = format!("0.{}1", "0".repeat(400));
        assert!(matches!(from_str(&tiny), Err(StrictJsonError::NumberOutOfRange { .. })));
        // Zero however written, and numbers inside strings, are read.
        for text in ["0", "-0.0", "0e-400", "0.000e5", r#"["1e400", "1e-400"]"#, "5e-324"] {
            assert!(from_str(text).is_ok(), "{text}");
        }
    }

    #[test]
    fn a_decimal_reads_as_the_nearest_binary64_as_rusts_own_parser_reads_it() {
        // serde_json's fast reading may be one step off (9007199254740991.0 read as
        // 9007199254740990.0); with its float_roundtrip feature it is not.
        for text in [
            "9007199254740991.0",
            "199839420177143.06",
            "90071992547409910e-1",
            "0.1",
            "2.2250738585072014e-308",
            "5e-324",
            "1.7976931348623157e308",
            "123456.789012345678",
            "-0.30000000000000004",
        ] {
            let read = from_str(text).unwrap();
            assert_eq!(read.as_f64(), text.parse::<f64>().ok(), "{text}");
        }
    }
}

//! Strict JSON reading for what a provider sends to be stored or acted on (admin-API bodies,
//! claim values): a key given twice in one object is refused at any depth.
//!
//! RFC 8259 §4 leaves a repeated key's meaning to the reader, and readers disagree (the first
//! wins in some, the last in serde_json, an error in others), so a document with one means
//! different things to a proxy, to tokenmint and to a verifier reading a token's claims. The
//! token endpoint and the verifier refuse repeated members at the top level of their own
//! documents; this reader does the same inside nested objects, where serde_json's `Value`
//! silently keeps the last.

use serde::de::{self, DeserializeSeed, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Value};
use std::fmt;
use thiserror::Error;

/// The deepest nesting serde_json reads (its limit of 128 counts the level it refuses).
pub const MAX_JSON_DEPTH: usize = 127;

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
    #[error("{0}")]
    Invalid(String),
}

/// Reads `text` as one JSON document, refusing repeated keys at any depth.
pub fn from_str(text: &str) -> Result<Value, StrictJsonError> {
    from_slice(text.as_bytes())
}

/// Reads `bytes` as one JSON document, refusing repeated keys at any depth.
pub fn from_slice(bytes: &[u8]) -> Result<Value, StrictJsonError> {
    let mut walk = Walk { at: String::new(), duplicate: None };
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let read = Strict(&mut walk).deserialize(&mut de).and_then(|v| de.end().map(|()| v));
    match (read, walk.duplicate) {
        (Ok(value), _) => Ok(value),
        (Err(_), Some(refusal)) => Err(refusal),
        (Err(e), None) if e.to_string().starts_with("recursion limit exceeded") => {
            Err(StrictJsonError::TooDeep)
        }
        (Err(e), None) => Err(StrictJsonError::Invalid(e.to_string())),
    }
}

/// Where the reader is, and the refusal it met.
struct Walk {
    at: String,
    duplicate: Option<StrictJsonError>,
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
            let len = walk.at.len();
            walk.at.push('/');
            walk.at.push_str(&items.len().to_string());
            let item = seq.next_element_seed(Strict(&mut *walk))?;
            walk.at.truncate(len);
            match item {
                Some(item) => items.push(item),
                None => return Ok(Value::Array(items)),
            }
        }
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let walk = self.0;
        let mut members = Map::new();
        while let Some(key) = map.next_key::<String>()? {
            if members.contains_key(&key) {
                let shown: String = key.chars().take(64).collect();
                let at = if walk.at.is_empty() { "/".to_owned() } else { walk.at.clone() };
                walk.duplicate = Some(StrictJsonError::DuplicateKey {
                    key: format!("{shown:?}"),
                    at: at.chars().filter(|c| !c.is_control()).take(200).collect(),
                });
                return Err(de::Error::custom("repeated key"));
            }
            let len = walk.at.len();
            walk.at.push('/');
            walk.at.push_str(&key.replace('~', "~0").replace('/', "~1"));
            let value = map.next_value_seed(Strict(&mut *walk))?;
            walk.at.truncate(len);
            members.insert(key, value);
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
}

//! Types for values that must never leak: client secrets and access tokens.
//!
//! Neither type implements `Serialize`, and both print as `[redacted]` through `Debug` and
//! `Display`, so a stray `{:?}` in a log line, a `tracing` field or an error message cannot
//! expose them. The only way to the value is a method whose name says what it does.

use std::fmt;

const REDACTED: &str = "[redacted]";

/// A client secret (or any other credential string) that prints as `[redacted]`.
///
/// Cloning is cheap enough for a secret fetched once per token request; the value is kept in
/// memory only.
#[derive(Clone, PartialEq, Eq)]
pub struct SecretString(Box<str>);

impl SecretString {
    /// Wraps a secret value.
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into().into_boxed_str())
    }

    /// The secret itself. Call it only where the value goes onto the wire.
    pub fn expose_secret(&self) -> &str {
        &self.0
    }
}

impl From<String> for SecretString {
    fn from(value: String) -> Self {
        Self::new(value)
    }
}

impl From<&str> for SecretString {
    fn from(value: &str) -> Self {
        Self::new(value)
    }
}

impl fmt::Debug for SecretString {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(REDACTED)
    }
}

impl fmt::Display for SecretString {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(REDACTED)
    }
}

/// An OAuth 2.0 access token (RFC 6749 §1.4): a bearer credential, so as secret as the client
/// secret that obtained it.
#[derive(Clone, PartialEq, Eq)]
pub struct AccessToken(Box<str>);

impl AccessToken {
    pub(crate) fn new(value: String) -> Self {
        Self(value.into_boxed_str())
    }

    /// The token itself, for an `Authorization: Bearer` header.
    pub fn secret(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for AccessToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(REDACTED)
    }
}

impl fmt::Display for AccessToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(REDACTED)
    }
}

/// Every form in which a client secret can come back from a server that echoes the request.
///
/// A server that quotes the request in an error body does not quote the secret as it was
/// configured: it quotes what was on the wire (form-encoded in a body, percent-encoded and then
/// base64-encoded in HTTP Basic), often re-encoded (JSON-escaped inside a JSON error, or
/// percent-encoded again). Masking only the literal would print the others. The masker knows
/// every encoding the client sends and the usual re-encodings of each, and replaces whichever
/// occurs, leftmost and longest first, so one form never leaves part of another behind.
#[derive(Clone)]
pub(crate) struct Masker {
    /// Non-empty, distinct, longest first.
    needles: Vec<String>,
}

impl fmt::Debug for Masker {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Masker").field("forms", &self.needles.len()).finish()
    }
}

impl Masker {
    /// The masker of `secret`, sent by `client_id`.
    pub(crate) fn new(client_id: &str, secret: &str) -> Self {
        if secret.is_empty() {
            return Self { needles: Vec::new() };
        }
        let mut needles = Vec::new();
        // The secret, and each form it takes in a URL or a form body, each as it is and
        // JSON-escaped the ways common serializers do it.
        // JSON-escaped twice too: a JSON body quoted inside a JSON error or log record.
        for form in encode::percent_forms(secret).into_iter().chain([secret.to_owned()]) {
            for json in encode::json_forms(&form) {
                needles.push(encode::json(&json, false, false, false, false));
                needles.push(json);
            }
            needles.push(form);
        }
        // HTTP Basic: base64 of `id:secret`, with the halves as this client encodes them
        // (RFC 6749 §2.3.1) and as most other clients send them (raw), and the secret alone.
        let halves = [
            (client_id.to_owned(), secret.to_owned()),
            (encode::basic_half(client_id), encode::basic_half(secret)),
            (encode::form(client_id), encode::form(secret)),
        ];
        for (id, secret) in halves {
            needles.extend(encode::base64_forms(format!("{id}:{secret}").as_bytes()));
        }
        needles.extend(encode::base64_forms(secret.as_bytes()));
        needles.retain(|n| !n.is_empty());
        needles.sort_unstable_by(|a, b| b.len().cmp(&a.len()).then_with(|| a.cmp(b)));
        needles.dedup();
        Self { needles }
    }

    /// `text` with every form of the secret replaced by `[redacted]`.
    pub(crate) fn mask(&self, text: &str) -> String {
        if self.needles.is_empty() || !self.needles.iter().any(|n| text.contains(n.as_str())) {
            return text.to_owned();
        }
        let mut out = String::with_capacity(text.len());
        let mut rest = text;
        'scan: while let Some(c) = rest.chars().next() {
            let first = rest.as_bytes().first().copied();
            for needle in self.needles.iter().filter(|n| n.as_bytes().first().copied() == first) {
                if let Some(after) = rest.strip_prefix(needle.as_str()) {
                    out.push_str(REDACTED);
                    rest = after;
                    continue 'scan;
                }
            }
            out.push(c);
            rest = &rest[c.len_utf8()..];
        }
        out
    }
}

/// The encodings a secret goes through on the wire and when a server echoes it.
pub(crate) mod encode {
    use base64::Engine as _;
    use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD};

    /// `application/x-www-form-urlencoded` (WHATWG URL §5.2), as in a form body: space as `+`.
    pub(crate) fn form(value: &str) -> String {
        form_urlencoded::byte_serialize(value.as_bytes()).collect()
    }

    /// One half of an HTTP Basic credential: form-encoded, but with a space as `%20`.
    ///
    /// RFC 6749 §2.3.1 asks for `application/x-www-form-urlencoded`, which writes a space as
    /// `+`. Servers decode the halves two ways: form-decoding (Spring, node-oidc-provider, most
    /// Java and Go servers) reads `+` and `%20` as a space; plain percent-decoding (authlib's
    /// `unquote`, several others) reads `%20` as a space but leaves `+` a plus, so a secret
    /// with a space sent as `+` is refused there. `%20` is the one spelling both read as a
    /// space, and a literal `+` is `%2B` either way.
    pub(crate) fn basic_half(value: &str) -> String {
        form(value).replace('+', "%20")
    }

    /// Percent-encodes every byte outside `keep`, with upper- or lower-case hex digits.
    fn percent(value: &str, keep: fn(u8) -> bool, space_plus: bool, lower: bool) -> String {
        let mut out = String::with_capacity(value.len() * 3);
        for b in value.bytes() {
            if keep(b) {
                out.push(char::from(b));
            } else if b == b' ' && space_plus {
                out.push('+');
            } else if lower {
                out.push_str(&format!("%{b:02x}"));
            } else {
                out.push_str(&format!("%{b:02X}"));
            }
        }
        out
    }

    /// The percent-encodings in common use: WHATWG forms (space as `+` or `%20`), RFC 3986
    /// unreserved characters, and JavaScript's `encodeURIComponent`, each with either case of
    /// hex digits.
    pub(crate) fn percent_forms(value: &str) -> Vec<String> {
        fn whatwg(b: u8) -> bool {
            b.is_ascii_alphanumeric() || matches!(b, b'*' | b'-' | b'.' | b'_')
        }
        fn rfc3986(b: u8) -> bool {
            b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~')
        }
        fn uri_component(b: u8) -> bool {
            b.is_ascii_alphanumeric()
                || matches!(b, b'-' | b'_' | b'.' | b'!' | b'~' | b'*' | b'\'' | b'(' | b')')
        }
        let mut forms = Vec::new();
        for lower in [false, true] {
            forms.push(percent(value, whatwg, true, lower));
            forms.push(percent(value, whatwg, false, lower));
            forms.push(percent(value, rfc3986, false, lower));
            forms.push(percent(value, uri_component, false, lower));
        }
        forms
    }

    /// A JSON string's content (without the quotes) as serializers write it: only what JSON
    /// requires escaped, or also every non-ASCII character (Python's default), `/` (PHP) and
    /// `<`, `>`, `&` (Go), with either case of hex digits.
    pub(crate) fn json_forms(value: &str) -> Vec<String> {
        let mut forms = Vec::new();
        for options in 0u8..16 {
            forms.push(json(
                value,
                options & 1 != 0,
                options & 2 != 0,
                options & 4 != 0,
                options & 8 != 0,
            ));
        }
        forms
    }

    pub(crate) fn json(
        value: &str,
        ascii_only: bool,
        slash: bool,
        html: bool,
        upper: bool,
    ) -> String {
        let unicode = |out: &mut String, unit: u16| {
            if upper {
                out.push_str(&format!("\\u{unit:04X}"));
            } else {
                out.push_str(&format!("\\u{unit:04x}"));
            }
        };
        let mut out = String::with_capacity(value.len() + 8);
        for c in value.chars() {
            match c {
                '"' => out.push_str("\\\""),
                '\\' => out.push_str("\\\\"),
                '/' if slash => out.push_str("\\/"),
                '\n' => out.push_str("\\n"),
                '\r' => out.push_str("\\r"),
                '\t' => out.push_str("\\t"),
                '\u{8}' => out.push_str("\\b"),
                '\u{c}' => out.push_str("\\f"),
                '<' | '>' | '&' if html => unicode(&mut out, c as u16),
                c if u32::from(c) < 0x20 => unicode(&mut out, c as u16),
                c if ascii_only && !c.is_ascii() => {
                    let mut units = [0u16; 2];
                    for unit in c.encode_utf16(&mut units) {
                        unicode(&mut out, *unit);
                    }
                }
                c => out.push(c),
            }
        }
        out
    }

    /// Base64 in the four alphabets and paddings of RFC 4648.
    pub(crate) fn base64_forms(bytes: &[u8]) -> Vec<String> {
        vec![
            STANDARD.encode(bytes),
            STANDARD_NO_PAD.encode(bytes),
            URL_SAFE.encode(bytes),
            URL_SAFE_NO_PAD.encode(bytes),
        ]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secret_and_token_print_as_redacted() {
        let secret = SecretString::new("hunter2");
        let token = AccessToken::new("eyJ.secret.token".to_owned());
        for text in [
            format!("{secret:?}"),
            format!("{secret}"),
            format!("{token:?}"),
            format!("{token}"),
            format!("{:?}", Some(&secret)),
        ] {
            assert!(!text.contains("hunter2") && !text.contains("eyJ"), "{text}");
            assert!(text.contains(REDACTED));
        }
        assert_eq!(secret.expose_secret(), "hunter2");
        assert_eq!(token.secret(), "eyJ.secret.token");
    }

    #[test]
    fn an_echoed_secret_is_masked_in_every_form_it_was_sent_in() {
        use base64::Engine as _;
        let masker = Masker::new("my client", "s3 cr+t/é");
        assert_eq!(masker.mask("bad secret s3 cr+t/é here"), "bad secret [redacted] here");
        assert_eq!(
            masker.mask("client_secret=s3+cr%2Bt%2F%C3%A9&x=1"),
            "client_secret=[redacted]&x=1"
        );
        let basic =
            base64::engine::general_purpose::STANDARD.encode("my%20client:s3%20cr%2Bt%2F%C3%A9");
        assert_eq!(masker.mask(&format!("Basic {basic}")), "Basic [redacted]");
        assert_eq!(masker.mask(r#"{"echo":"s3 cr+t\/\u00e9"}"#), r#"{"echo":"[redacted]"}"#);
        assert_eq!(Masker::new("id", "").mask("nothing"), "nothing");
    }

    /// RFC 3986 percent-encoding with lower-case hex, as some servers re-encode.
    fn rfc3986_lower(value: &str) -> String {
        value
            .bytes()
            .map(|b| match b {
                b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                    char::from(b).to_string()
                }
                _ => format!("%{b:02x}"),
            })
            .collect()
    }

    /// Independent encoders of what a server may echo: each must be masked completely.
    fn echoed_forms(client_id: &str, secret: &str) -> Vec<String> {
        use base64::Engine as _;
        use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
        let form = |v: &str| form_urlencoded::byte_serialize(v.as_bytes()).collect::<String>();
        let unquote = |s: String| s[1..s.len() - 1].to_owned();
        let json = unquote(serde_json::to_string(secret).unwrap());
        let form_json = unquote(serde_json::to_string(&form(secret)).unwrap());
        vec![
            secret.to_owned(),
            form(secret),
            form(secret).replace('+', "%20"),
            rfc3986_lower(secret),
            json,
            form_json,
            STANDARD.encode(format!("{client_id}:{secret}")),
            STANDARD.encode(format!(
                "{}:{}",
                form(client_id).replace('+', "%20"),
                form(secret).replace('+', "%20")
            )),
            URL_SAFE_NO_PAD.encode(format!("{client_id}:{secret}")),
            STANDARD.encode(secret),
        ]
    }

    proptest::proptest! {
        /// For any id and secret, each echoed form of the secret is replaced whole: nothing of
        /// it is left around the marker.
        #[test]
        fn every_echoed_form_of_any_secret_is_masked_whole(
            client_id in "[^<>]{0,12}",
            secret in "[^<>]{1,24}",
        ) {
            let masker = Masker::new(&client_id, &secret);
            for form in echoed_forms(&client_id, &secret) {
                let masked = masker.mask(&format!("<{form}>"));
                proptest::prop_assert_eq!(&masked, "<[redacted]>", "form {:?}", form);
            }
        }
    }
}

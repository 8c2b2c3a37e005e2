//! Identifiers: client ids, organization slugs and the random ids of secrets, keys and tokens;
//! and the text a request brings that may be written down ([`SafeText`], [`PresentedClientId`]).
//!
//! Generated identifiers use base62 so they survive double-click selection and URLs unescaped,
//! and carry a short prefix so a human (or a secret scanner) can tell what they are.
//!
//! Untrusted text that reaches a log line, an alert, the audit trail or a webhook goes through
//! these types, parsed once where it enters: a client_id that is a possible credential id is
//! kept as it is (it cannot hold anything but visible ASCII); anything else is *escaped*, not
//! refused, because the attempt itself must be recorded: control characters, Unicode line
//! separators, bidirectional and zero-width format characters become `\u{…}`, and the text is
//! cut to a bounded length. So a value can never start a new log line, move a terminal's
//! cursor or reorder what a reader sees.
//!
//! How a log line writes a value is here too ([`write_log_value`], [`write_quoted`],
//! [`escape_unsafe_in_json`]), so that the text and JSON log formats escape what a value holds
//! once, in the same terms as [`SafeText`].

use crate::crypto;
use std::fmt;
use thiserror::Error;

const ALPHABET: &[u8; 62] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

/// Appends `len` uniformly random base62 characters to `out`.
///
/// Rejection sampling keeps the distribution uniform: bytes >= 248 (4 * 62) are discarded
/// instead of being folded, which would bias the first characters of the alphabet.
pub fn push_random_base62(out: &mut String, len: usize) {
    let mut produced = 0;
    let mut buf = [0u8; 64];
    while produced < len {
        crypto::fill_random(&mut buf);
        for &b in &buf {
            if b < 248 {
                out.push(char::from(ALPHABET[usize::from(b % 62)]));
                produced += 1;
                if produced == len {
                    break;
                }
            }
        }
    }
}

/// `prefix` followed by `len` random base62 characters.
pub fn random_id(prefix: &str, len: usize) -> String {
    let mut s = String::with_capacity(prefix.len() + len);
    s.push_str(prefix);
    push_random_base62(&mut s, len);
    s
}

/// Encodes `value` as exactly `width` base62 digits (most significant first).
pub fn base62_fixed(mut value: u64, width: usize) -> String {
    let mut digits = vec![b'0'; width];
    for slot in digits.iter_mut().rev() {
        *slot = ALPHABET[(value % 62) as usize];
        value /= 62;
    }
    String::from_utf8(digits).unwrap_or_default()
}

pub(crate) fn is_base62(s: &str) -> bool {
    s.bytes().all(|b| b.is_ascii_alphanumeric())
}

/// Prefix of every generated client id.
pub const CLIENT_ID_PREFIX: &str = "tmc_";
const CLIENT_ID_RANDOM_LEN: usize = 24;
/// Longest client id accepted.
pub const CLIENT_ID_MAX_LEN: usize = 128;

/// A credential's public identifier.
///
/// tokenmint generates `tmc_` followed by 24 base62 characters, but a client id presented at
/// the token endpoint is untrusted input: [`ClientId::parse`] only bounds its length and
/// character set, so lookups of foreign-looking ids fail as "unknown client", not as a
/// malformed request that would tell an attacker something.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ClientId(String);

#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum IdError {
    #[error("a client_id is 1 to 128 visible ASCII characters")]
    ClientId,
    #[error(
        "an organization slug is 1 to 63 characters: lower-case letters, digits and '-', \
         starting with a letter or digit"
    )]
    OrgSlug,
}

impl ClientId {
    pub fn generate() -> Self {
        Self(random_id(CLIENT_ID_PREFIX, CLIENT_ID_RANDOM_LEN))
    }

    pub fn parse(s: &str) -> Result<Self, IdError> {
        if s.is_empty() || s.len() > CLIENT_ID_MAX_LEN || !s.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(IdError::ClientId);
        }
        Ok(Self(s.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn into_string(self) -> String {
        self.0
    }
}

impl fmt::Display for ClientId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for ClientId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ClientId({})", self.0)
    }
}

impl AsRef<str> for ClientId {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl std::borrow::Borrow<str> for ClientId {
    fn borrow(&self) -> &str {
        &self.0
    }
}

/// Longest text kept, in characters, when no other bound is given.
pub const SAFE_TEXT_MAX_CHARS: usize = 256;

/// Text from an untrusted source, safe to write into a log line, an alert, the audit trail or
/// a webhook: no control characters, no line or paragraph separators, no bidirectional or
/// zero-width format characters and no bare backslash (each becomes `\u{hex}`), and at most a bounded number of
/// characters (longer text is cut and ends with `…`).
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct SafeText(String);

/// Whether `c` must not reach a log line as it is. The backslash is escaped too, so that a
/// sent `\u{a}` (six visible characters) reads `\u{5c}u{a}` and never looks like an escaped
/// newline.
fn must_escape(c: char) -> bool {
    c == '\\' || is_unsafe_char(c)
}

/// Whether `c` must never be written raw where a person or a line-oriented reader looks:
/// control characters (C0 and C1, line breaks among them), Unicode line and paragraph
/// separators, bidirectional and zero-width format characters, the byte order mark.
pub fn is_unsafe_char(c: char) -> bool {
    c.is_control()
        || matches!(
            c,
            '\u{2028}' | '\u{2029}'        // line and paragraph separators
            | '\u{200B}'..='\u{200F}'        // zero-width characters, LRM, RLM
            | '\u{202A}'..='\u{202E}'        // bidirectional embeddings and overrides
            | '\u{2060}'..='\u{2069}'        // word joiner, invisible operators, isolates
            | '\u{FEFF}'                     // byte order mark
            | '\u{FFF9}'..='\u{FFFB}'        // interlinear annotations
        )
}

/// Whether `c` may not be part of a name or identifier that is stored and shown (an email
/// address, a credential's or organization's name, an audience, a key id): a control character
/// (C0 and C1), a Unicode line or paragraph separator, or a format character (general category
/// `Cf`: bidirectional embeddings, overrides, isolates and marks, zero-width spaces and
/// joiners, the byte order mark, the soft hyphen, tags and the like), or any other of Unicode's
/// `Default_Ignorable_Code_Point` characters ([`DEFAULT_IGNORABLE`]). None of them shows as
/// itself: each is invisible, breaks the line, or reorders the text around it, so that one
/// value could display as another (`\u{202e}elpmaxe.emca@ada` reads `ada@acme.example`).
/// Such text is refused where it is entered, not escaped, since it is never legitimate there.
///
/// `tokenmint_proto::limits::HIDDEN_CLASS` states the same characters (but the few outside the
/// Basic Multilingual Plane) for the API document.
pub fn is_hidden_char(c: char) -> bool {
    c.is_control()
        || DEFAULT_IGNORABLE.iter().chain(OTHER_HIDDEN).any(|&(lo, hi)| (lo..=hi).contains(&c))
}

/// The hidden characters that are not [`DEFAULT_IGNORABLE`]: the line and paragraph
/// separators, and the format characters (`Cf`) that show as a sign or a mark of their own
/// where a font has them but change no text around them, which Unicode leaves out of that set.
const OTHER_HIDDEN: &[(char, char)] = &[
    ('\u{0600}', '\u{0605}'),   // Arabic number signs
    ('\u{06DD}', '\u{06DD}'),   // Arabic end of ayah
    ('\u{070F}', '\u{070F}'),   // Syriac abbreviation mark
    ('\u{0890}', '\u{0891}'),   // Arabic pound and piastre marks above
    ('\u{08E2}', '\u{08E2}'),   // Arabic disputed end of ayah
    ('\u{2028}', '\u{2029}'),   // line and paragraph separators
    ('\u{FFF9}', '\u{FFFB}'),   // interlinear annotations
    ('\u{110BD}', '\u{110BD}'), // Kaithi number sign
    ('\u{110CD}', '\u{110CD}'), // Kaithi number sign above
    ('\u{13430}', '\u{1343F}'), // Egyptian hieroglyph format controls
];

/// Unicode's `Default_Ignorable_Code_Point` set, as `DerivedCoreProperties.txt` of Unicode
/// 16.0.0 lists it: characters a renderer shows as nothing when it has no glyph for them
/// (the combining grapheme joiner, the Hangul fillers, Khmer inherent vowels, variation
/// selectors, the reserved ranges kept for more of them). [`is_hidden_char`] refuses them all.
const DEFAULT_IGNORABLE: &[(char, char)] = &[
    ('\u{00AD}', '\u{00AD}'),   // soft hyphen
    ('\u{034F}', '\u{034F}'),   // combining grapheme joiner
    ('\u{061C}', '\u{061C}'),   // Arabic letter mark
    ('\u{115F}', '\u{1160}'),   // Hangul choseong and jungseong fillers
    ('\u{17B4}', '\u{17B5}'),   // Khmer inherent vowels
    ('\u{180B}', '\u{180F}'),   // Mongolian free variation selectors, vowel separator
    ('\u{200B}', '\u{200F}'),   // zero-width characters, LRM, RLM
    ('\u{202A}', '\u{202E}'),   // bidirectional embeddings and overrides
    ('\u{2060}', '\u{206F}'),   // word joiner, invisible operators, isolates, deprecated
    ('\u{3164}', '\u{3164}'),   // Hangul filler
    ('\u{FE00}', '\u{FE0F}'),   // variation selectors
    ('\u{FEFF}', '\u{FEFF}'),   // zero-width no-break space
    ('\u{FFA0}', '\u{FFA0}'),   // halfwidth Hangul filler
    ('\u{FFF0}', '\u{FFF8}'),   // reserved
    ('\u{1BCA0}', '\u{1BCA3}'), // shorthand format controls
    ('\u{1D173}', '\u{1D17A}'), // musical symbol format controls
    ('\u{E0000}', '\u{E0FFF}'), // tags, variation selectors supplement, reserved
];

/// The first [hidden character](is_hidden_char) of `text`, written as a person can read it
/// (`U+202E`), for a message that says what to remove.
pub fn find_hidden_char(text: &str) -> Option<String> {
    text.chars().find(|&c| is_hidden_char(c)).map(|c| format!("U+{:04X}", u32::from(c)))
}

impl SafeText {
    /// Escapes and bounds `raw` to [`SAFE_TEXT_MAX_CHARS`] characters.
    pub fn new(raw: &str) -> Self {
        Self::bounded(raw, SAFE_TEXT_MAX_CHARS)
    }

    /// Escapes and bounds `raw` to `max_chars` characters of the original (an escape counts
    /// as one).
    pub fn bounded(raw: &str, max_chars: usize) -> Self {
        Self::escaped_with(raw, max_chars, must_escape)
    }

    /// Text composed of the program's own words and values that are escaped already
    /// (`SafeText`, `PresentedClientId`, `ClientId`, addresses), as an alert's summary is:
    /// escaped like [`new`](Self::new) except that a backslash stays one, so the escapes the
    /// parts carry are not escaped a second time. Nothing unescaped can pass: every character
    /// [`new`](Self::new) would escape but the backslash is escaped here too.
    pub fn composed(text: &str) -> Self {
        Self::escaped_with(text, SAFE_TEXT_MAX_CHARS, |c| c != '\\' && must_escape(c))
    }

    fn escaped_with(raw: &str, max_chars: usize, must_escape: impl Fn(char) -> bool) -> Self {
        if raw.len() <= max_chars && !raw.chars().any(&must_escape) {
            return Self(raw.to_owned());
        }
        let mut out = String::with_capacity(raw.len().min(max_chars * 4));
        for (i, c) in raw.chars().enumerate() {
            if i == max_chars {
                out.push('…');
                break;
            }
            if must_escape(c) {
                use std::fmt::Write as _;
                let _ = write!(out, "\\u{{{:x}}}", u32::from(c));
            } else {
                out.push(c);
            }
        }
        Self(out)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn into_string(self) -> String {
        self.0
    }
}

impl From<&str> for SafeText {
    fn from(raw: &str) -> Self {
        Self::new(raw)
    }
}

impl From<String> for SafeText {
    fn from(raw: String) -> Self {
        Self::new(&raw)
    }
}

impl From<&String> for SafeText {
    fn from(raw: &String) -> Self {
        Self::new(raw)
    }
}

impl fmt::Display for SafeText {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Quoted, so that a log field holding outside text cannot read as further `key=value` fields,
/// and escaped only where it is not already (see [`write_quoted`]): a `"` becomes `\"`, and the
/// escapes the text carries (`\u{7}`) stay as they are rather than becoming `\\u{7}`. A log
/// line takes a `SafeText` by its `Display` (`%text`): the log's own format quotes it (text) or
/// makes it a JSON string, so that it is escaped once in either.
impl fmt::Debug for SafeText {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write_quoted(f, &self.0)
    }
}

/// Writes `text` as the value of a `key=value` log field: as it is when it is one plain word
/// (no white space, quote, backslash, `=` or [unsafe character](is_unsafe_char)), otherwise
/// quoted by [`write_quoted`], so that no value can end its field early, add another field or
/// start a new line.
pub fn write_log_value(out: &mut dyn fmt::Write, text: &str) -> fmt::Result {
    let plain = !text.is_empty()
        && !text
            .chars()
            .any(|c| c.is_whitespace() || matches!(c, '"' | '\\' | '=') || is_unsafe_char(c));
    if plain { out.write_str(text) } else { write_quoted(out, text) }
}

/// Writes `text` between double quotes, escaped so that the quotes hold it whole and nothing
/// in it is raw: a `"` becomes `\"`, an [unsafe character](is_unsafe_char) `\u{hex}`, and a
/// backslash that starts no escape `\\`. Escapes the text already carries (`\u{hex}` as
/// [`SafeText`] writes them; `\n`, `\r`, `\t`, `\0`, `\\`, `\"`, `\'` as Rust's and serde's
/// quoting writes them) are kept as they are, not escaped a second time: read left to right,
/// every `"` inside is escaped, so the text cannot close the quotes early.
pub fn write_quoted(out: &mut dyn fmt::Write, text: &str) -> fmt::Result {
    out.write_char('"')?;
    let mut rest = text;
    while let Some(c) = rest.chars().next() {
        let len = match c {
            '\\' => match escape_len(rest) {
                Some(n) => {
                    out.write_str(&rest[..n])?;
                    n
                }
                None => {
                    out.write_str("\\\\")?;
                    1
                }
            },
            '"' => {
                out.write_str("\\\"")?;
                1
            }
            c if is_unsafe_char(c) => {
                write!(out, "\\u{{{:x}}}", u32::from(c))?;
                c.len_utf8()
            }
            c => {
                out.write_char(c)?;
                c.len_utf8()
            }
        };
        rest = &rest[len..];
    }
    out.write_char('"')
}

/// The length in bytes of the escape `text` starts with (`text` starts with a backslash):
/// `\u{` one to six hex digits `}`, or a backslash and one of `nrt0\"'`.
fn escape_len(text: &str) -> Option<usize> {
    let b = text.as_bytes();
    match b.get(1)? {
        b'n' | b'r' | b't' | b'0' | b'\\' | b'"' | b'\'' => Some(2),
        b'u' if b.get(2) == Some(&b'{') => {
            let digits = b[3..].iter().take_while(|d| d.is_ascii_hexdigit()).count();
            let end = 3 + digits;
            ((1..=6).contains(&digits) && b.get(end) == Some(&b'}')).then_some(end + 1)
        }
        _ => None,
    }
}

/// `json` (a JSON text) with each non-ASCII [unsafe character](is_unsafe_char) written as a
/// JSON escape (`\u2028`): what a reader parses is the same, while the text itself carries no
/// character a line-oriented reader takes for a line break (U+0085, U+2028) or a terminal shows
/// reordered. JSON writers escape the ASCII control characters themselves, and every
/// non-ASCII character of a JSON text is inside a string, where an escape is allowed.
pub fn escape_unsafe_in_json(json: &str) -> std::borrow::Cow<'_, str> {
    if !json.chars().any(|c| !c.is_ascii() && is_unsafe_char(c)) {
        return std::borrow::Cow::Borrowed(json);
    }
    let mut out = String::with_capacity(json.len() + 16);
    for c in json.chars() {
        if !c.is_ascii() && is_unsafe_char(c) {
            use std::fmt::Write as _;
            // Every unsafe character is in the Basic Multilingual Plane: one escape each.
            let _ = write!(out, "\\u{:04x}", u32::from(c));
        } else {
            out.push(c);
        }
    }
    std::borrow::Cow::Owned(out)
}

impl serde::Serialize for SafeText {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.0)
    }
}

/// A client_id as a request presented it: a [`ClientId`] when it could be one, else the
/// escaped text (marked as such) so the attempt can be recorded without carrying what it held;
/// and a client secret sent in its place (fields swapped) redacted, so that no record keeps it.
#[derive(Clone, PartialEq, Eq, Hash)]
pub enum PresentedClientId {
    /// It parses as a client id (1 to 128 visible ASCII characters), kept as sent.
    Valid(ClientId),
    /// It cannot be any credential's id; escaped and cut to 128 characters.
    Malformed(SafeText),
    /// It [looks like a client secret](looks_like_secret): no credential's id, and kept only
    /// as [`redacted_secret`] writes it (`tms_` and four characters, as the credential's secret
    /// hint shows them, so the owner can tell which secret to rotate).
    Secret(SafeText),
}

/// Characters of a secret's random part kept when it is redacted: as many as a credential's
/// secret hint shows, far too few to help guess the rest.
const REDACTED_KEEP: usize = 4;

/// Where a presented text holds a client secret, and how long its prefix is there: the byte
/// offset of tokenmint's secret prefix (`tms_`, in any case), else of a run of base62
/// characters that is a secret's random part and valid checksum with the prefix cut off (a
/// prefix of length 0). `None` when it holds neither.
///
/// No client id can contain the prefix (a generated id is `tmc_` and base62, which has no
/// `_`), so a text holding it is never a credential's id, and a mistyped or cut secret is
/// recognised as well as a whole one.
fn secret_at(raw: &str) -> Option<(usize, usize)> {
    let prefix = crate::secret::SECRET_PREFIX.as_bytes();
    if let Some(i) =
        raw.as_bytes().windows(prefix.len()).position(|w| w.eq_ignore_ascii_case(prefix))
    {
        return Some((i, prefix.len()));
    }
    let unprefixed = crate::secret::SECRET_LEN - prefix.len();
    // Byte by byte: an ASCII letter or digit is always a whole character.
    let bytes = raw.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        let run = bytes[i..].iter().take_while(|b| b.is_ascii_alphanumeric()).count();
        if run == unprefixed
            && crate::secret::ClientSecret::has_valid_format(&format!(
                "{}{}",
                crate::secret::SECRET_PREFIX,
                &raw[i..i + run]
            ))
        {
            return Some((i, 0));
        }
        i += run.max(1);
    }
    None
}

/// Whether a presented text holds what looks like a client secret (see [`PresentedClientId`]).
pub fn looks_like_secret(raw: &str) -> bool {
    secret_at(raw).is_some()
}

/// What an error description shows of a request's value: at most `max_chars` characters
/// without control characters, or, when it [looks like a secret](looks_like_secret) (sent in
/// the wrong parameter), only that it was one.
pub fn echoed(raw: &str, max_chars: usize) -> String {
    if looks_like_secret(raw) {
        return "[a client secret, redacted]".to_owned();
    }
    raw.chars().take(max_chars).filter(|c| !c.is_control()).collect()
}

/// `raw` as it may be recorded when it [looks like a secret](looks_like_secret): the secret's
/// prefix and first four characters, then `…[redacted]`; whatever else the text held is left
/// out with it. `None` when it does not look like one.
pub fn redacted_secret(raw: &str) -> Option<String> {
    let (at, prefix_len) = secret_at(raw)?;
    let rest = &raw[at..];
    let kept = rest[prefix_len..]
        .bytes()
        .take(REDACTED_KEEP)
        .take_while(u8::is_ascii_alphanumeric)
        .count();
    Some(format!("{}…[redacted]", &rest[..prefix_len + kept]))
}

impl PresentedClientId {
    pub fn parse(raw: &str) -> Self {
        if let Some(redacted) = redacted_secret(raw) {
            return Self::Secret(SafeText::new(&redacted));
        }
        match ClientId::parse(raw) {
            Ok(id) => Self::Valid(id),
            Err(_) => Self::Malformed(SafeText::bounded(raw, CLIENT_ID_MAX_LEN)),
        }
    }

    /// The text to write down: the id itself, its escaped form, or the redacted secret.
    pub fn as_str(&self) -> &str {
        match self {
            Self::Valid(id) => id.as_str(),
            Self::Malformed(t) | Self::Secret(t) => t.as_str(),
        }
    }

    /// The id, when it could be a credential's.
    pub fn client_id(&self) -> Option<&ClientId> {
        match self {
            Self::Valid(id) => Some(id),
            Self::Malformed(_) | Self::Secret(_) => None,
        }
    }

    /// Whether what was sent as a client_id looks like a client secret.
    pub fn is_secret(&self) -> bool {
        matches!(self, Self::Secret(_))
    }
}

impl From<ClientId> for PresentedClientId {
    fn from(id: ClientId) -> Self {
        Self::Valid(id)
    }
}

impl From<&ClientId> for PresentedClientId {
    fn from(id: &ClientId) -> Self {
        Self::Valid(id.clone())
    }
}

impl fmt::Display for PresentedClientId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Debug for PresentedClientId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Valid(id) => fmt::Debug::fmt(id, f),
            Self::Malformed(t) => write!(f, "Malformed({t:?})"),
            Self::Secret(t) => write!(f, "Secret({t:?})"),
        }
    }
}

impl serde::Serialize for PresentedClientId {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

/// An organization's slug: the stable short name in URLs, `--org` and the `org` claim.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct OrgSlug(String);

impl OrgSlug {
    pub fn parse(s: &str) -> Result<Self, IdError> {
        let b = s.as_bytes();
        let valid = !b.is_empty()
            && b.len() <= tokenmint_proto::limits::SLUG_MAX_LEN
            && b[0].is_ascii_alphanumeric()
            && b.iter().all(|&c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == b'-');
        if valid { Ok(Self(s.to_owned())) } else { Err(IdError::OrgSlug) }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn into_string(self) -> String {
        self.0
    }
}

impl fmt::Display for OrgSlug {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn safe_text_is_quoted_in_debug_output_and_its_escapes_are_not_escaped_again() {
        let text = SafeText::new("say \"hi\"\u{7} key=value\\");
        assert_eq!(format!("{text:?}"), r#""say \"hi\"\u{7} key=value\u{5c}""#);
        assert_eq!(format!("{:?}", SafeText::new("")), r#""""#);
    }

    fn log_value(text: &str) -> String {
        let mut out = String::new();
        write_log_value(&mut out, text).unwrap();
        out
    }

    #[test]
    fn a_log_value_is_bare_when_it_is_one_word_and_quoted_once_otherwise() {
        assert_eq!(log_value("tmc_abc"), "tmc_abc");
        assert_eq!(log_value(""), r#""""#);
        assert_eq!(log_value("a b=c"), r#""a b=c""#);
        assert_eq!(log_value("x\n2026 INFO forged"), r#""x\u{a}2026 INFO forged""#);
        // Raw characters are escaped; escapes already made are kept.
        assert_eq!(log_value("a\nb\u{2028}c"), r#""a\u{a}b\u{2028}c""#);
        let said = SafeText::new("no \"x\"\u{7} y=1\\");
        assert_eq!(log_value(said.as_str()), r#""no \"x\"\u{7} y=1\u{5c}""#);
        assert_eq!(log_value(said.as_str()), format!("{said:?}"));
        // serde's quoting (`string "yes\n"`) is escaped once, not twice.
        assert_eq!(log_value(r#"string "yes\n""#), r#""string \"yes\n\"""#);
        // A backslash that starts no escape is one itself; one at the end cannot swallow the
        // closing quote.
        assert_eq!(log_value(r"C:\dir\x y"), r#""C:\\dir\\x y""#);
        assert_eq!(log_value("a \\"), r#""a \\""#);
        assert_eq!(log_value(r"a \u{110000000}"), r#""a \\u{110000000}""#);
    }

    proptest::proptest! {
        /// Whatever the value, a reader of the quoted form finds the closing quote where it
        /// was written: every `"` inside is escaped, no raw unsafe character is left.
        #[test]
        fn a_quoted_log_value_cannot_end_early_or_carry_unsafe_characters(raw in "[\\\\\"u{}0-9a \\x00-\\x1f\\u{85}\\u{2028}\\u{202e}]{0,40}") {
            let out = log_value(&raw);
            proptest::prop_assert!(!out.chars().any(is_unsafe_char), "{:?}", out);
            if let Some(inner) = out.strip_prefix('"') {
                let mut chars = inner.chars();
                let mut closed_at_end = false;
                while let Some(c) = chars.next() {
                    match c {
                        '\\' => { chars.next(); }
                        '"' => { closed_at_end = chars.next().is_none(); break; }
                        _ => {}
                    }
                }
                proptest::prop_assert!(closed_at_end, "{:?} ends early or never", out);
            } else {
                proptest::prop_assert!(!out.contains([' ', '"', '=']), "{:?}", out);
            }
        }
    }

    #[test]
    fn unsafe_characters_in_a_json_text_become_json_escapes_that_parse_back() {
        let value = serde_json::json!({"reason": "a\u{85}b\u{2028}c\u{202e}d\u{7}é"});
        let text = serde_json::to_string(&value).unwrap();
        let escaped = escape_unsafe_in_json(&text);
        assert_eq!(escaped, r#"{"reason":"a\u0085b\u2028c\u202ed\u0007é"}"#);
        let back: serde_json::Value = serde_json::from_str(&escaped).unwrap();
        assert_eq!(back, value);
        assert!(matches!(escape_unsafe_in_json("{\"a\":\"é\"}"), std::borrow::Cow::Borrowed(_)));
    }

    #[test]
    fn generated_client_ids_have_the_prefix_and_parse_back() {
        let id = ClientId::generate();
        assert!(id.as_str().starts_with("tmc_"));
        assert_eq!(id.as_str().len(), 28);
        assert!(is_base62(&id.as_str()[4..]));
        assert_eq!(ClientId::parse(id.as_str()).unwrap(), id);
    }

    #[test]
    fn client_id_parse_refuses_empty_long_and_control_characters() {
        assert!(ClientId::parse("").is_err());
        assert!(ClientId::parse(&"a".repeat(129)).is_err());
        assert!(ClientId::parse("a b").is_err());
        assert!(ClientId::parse("a\u{0}").is_err());
        assert!(ClientId::parse("legacy-client.01").is_ok());
    }

    #[test]
    fn presented_client_ids_keep_valid_ids_and_escape_the_rest() {
        let ok = PresentedClientId::parse("tmc_abc");
        assert_eq!(ok.as_str(), "tmc_abc");
        assert!(ok.client_id().is_some());
        let forged = PresentedClientId::parse("x\n2026-01-01T00:00:00Z INFO admin signed in");
        assert_eq!(forged.as_str(), "x\\u{a}2026-01-01T00:00:00Z INFO admin signed in");
        assert!(forged.client_id().is_none());
        // In escaped text, a sent escape is not mistaken for one tokenmint wrote.
        let lookalike = PresentedClientId::parse("x y\\u{a}");
        assert_eq!(lookalike.as_str(), "x y\\u{5c}u{a}");
        let ansi = PresentedClientId::parse("\u{1b}[31mred\u{202e}");
        assert_eq!(ansi.as_str(), "\\u{1b}[31mred\\u{202e}");
        let long = PresentedClientId::parse(&"é".repeat(500));
        assert_eq!(long.as_str().chars().count(), CLIENT_ID_MAX_LEN + 1);
        assert!(long.as_str().ends_with('…'));
    }

    #[test]
    fn a_secret_sent_as_a_client_id_is_redacted_in_every_form() {
        let secret = crate::ClientSecret::generate();
        let s = secret.expose();
        let mut mistyped = s.to_owned().into_bytes();
        mistyped[20] = if mistyped[20] == b'a' { b'b' } else { b'a' };
        let mistyped = String::from_utf8(mistyped).unwrap();
        let forms = [
            s.to_owned(),
            format!(" {s}\n"),
            format!("Basic {s}"),
            format!("\u{202e}{s}"),
            format!("TMS_{}", &s[4..]),
            mistyped,
            s[..30].to_owned(),
            s[4..].to_owned(),
            format!("x-{}-y", &s[4..]),
        ];
        for form in &forms {
            let p = PresentedClientId::parse(form);
            assert!(p.is_secret(), "{form:?} is not recognised");
            assert!(p.client_id().is_none(), "{form:?} would be looked up");
            let kept = p.as_str().strip_suffix("…[redacted]").unwrap_or_else(|| panic!("{p:?}"));
            assert!(kept.len() <= 8, "{form:?} keeps {kept:?}");
            assert!(!p.as_str().contains(&s[8..14]), "{form:?}");
            assert!(!format!("{p:?}").contains(&s[8..14]));
        }
        // What is kept is what the credential's secret hint shows, to tell which one to rotate.
        assert_eq!(PresentedClientId::parse(s).as_str(), format!("{}[redacted]", secret.hint()));
        assert_eq!(PresentedClientId::parse(&s[4..]).as_str(), format!("{}…[redacted]", &s[4..8]));
    }

    #[test]
    fn no_client_id_or_ordinary_text_is_taken_for_a_secret() {
        for _ in 0..1000 {
            let id = ClientId::generate();
            assert!(!looks_like_secret(id.as_str()));
            assert!(PresentedClientId::parse(id.as_str()).client_id().is_some());
        }
        for text in ["legacy-client.01", "tms", "tms-abc", "tm s_", &"a".repeat(49), ""] {
            assert!(!looks_like_secret(text), "{text:?}");
        }
    }

    proptest::proptest! {
        /// Whatever comes in, what goes out has no character a log line must not carry, is
        /// bounded, and is the input itself when the input needed nothing.
        #[test]
        fn safe_text_never_carries_control_or_format_characters(raw in "\\PC*|[\\x00-\\x20\\u{80}-\\u{9f}\\u{2028}\\u{202e}\\u{feff}a\\\\]{0,300}") {
            let t = SafeText::bounded(&raw, 100);
            proptest::prop_assert!(!t.as_str().chars().any(|c| c != '\\' && must_escape(c)));
            // Every backslash that goes out starts an escape.
            let text = t.as_str();
            let escapes_only = text.match_indices('\\').all(|(i, _)| text[i..].starts_with("\\u{"));
            proptest::prop_assert!(escapes_only, "a bare backslash in {:?}", text);
            proptest::prop_assert!(t.as_str().chars().count() <= 100 * 8 + 1);
            if raw.chars().count() <= 100 && !raw.chars().any(must_escape) {
                proptest::prop_assert_eq!(t.as_str(), raw.as_str());
            }
            let p = PresentedClientId::parse(&raw);
            proptest::prop_assert!(!p.as_str().chars().any(|c| c != '\\' && must_escape(c)));
            proptest::prop_assert!(!p.as_str().contains('\n') && !p.as_str().contains('\r'));
        }
    }

    #[test]
    fn hidden_characters_are_every_control_separator_and_format_character() {
        let hidden = [
            '\u{0}',
            '\u{1b}',
            '\u{7f}',
            '\u{85}',
            '\u{9f}', // C0, DEL, C1
            '\u{202A}',
            '\u{202B}',
            '\u{202C}',
            '\u{202D}',
            '\u{202E}', // embeddings, overrides
            '\u{2066}',
            '\u{2067}',
            '\u{2068}',
            '\u{2069}', // isolates
            '\u{200E}',
            '\u{200F}',
            '\u{61C}', // marks
            '\u{2028}',
            '\u{2029}', // separators
            '\u{200B}',
            '\u{200C}',
            '\u{200D}',
            '\u{FEFF}',
            '\u{2060}', // zero-width
            '\u{AD}',
            '\u{600}',
            '\u{180E}',
            '\u{2061}',
            '\u{206F}',
            '\u{FFF9}', // other Cf
            '\u{110BD}',
            '\u{1D173}',
            '\u{E0001}',
            '\u{E0041}',
            '\u{E007F}',
            // The rest of Default_Ignorable_Code_Point.
            '\u{34F}',
            '\u{115F}',
            '\u{1160}',
            '\u{17B4}',
            '\u{17B5}',
            '\u{180B}',
            '\u{180F}',
            '\u{3164}',
            '\u{FE00}',
            '\u{FE0F}',
            '\u{FFA0}',
            '\u{FFF0}',
            '\u{E0000}',
            '\u{E0100}',
            '\u{E0FFF}',
        ];
        for c in hidden {
            assert!(is_hidden_char(c), "U+{:04X}", u32::from(c));
            let text = format!("ada{c}@acme.example");
            assert_eq!(find_hidden_char(&text), Some(format!("U+{:04X}", u32::from(c))));
        }
        // Every character a log line must escape (but the backslash) is one a name may not hold.
        for c in (0..0x11_0000).filter_map(char::from_u32).filter(|&c| is_unsafe_char(c)) {
            assert!(is_hidden_char(c), "U+{:04X}", u32::from(c));
        }
        for text in ["ada@acme.example", "Zoë Müller", "名前", "مرحبا", "🦀 team", "a-b_c.d"]
        {
            assert_eq!(find_hidden_char(text), None, "{text}");
        }
    }

    #[test]
    fn org_slugs_are_lower_case_dns_like_labels() {
        assert!(OrgSlug::parse("acme").is_ok());
        assert!(OrgSlug::parse("acme-2").is_ok());
        assert!(OrgSlug::parse("-acme").is_err());
        assert!(OrgSlug::parse("Acme").is_err());
        assert!(OrgSlug::parse("ac me").is_err());
        assert!(OrgSlug::parse(&"a".repeat(64)).is_err());
    }

    #[test]
    fn base62_fixed_pads_and_encodes() {
        assert_eq!(base62_fixed(0, 3), "000");
        assert_eq!(base62_fixed(61, 2), "0z");
        assert_eq!(base62_fixed(62, 2), "10");
    }
}

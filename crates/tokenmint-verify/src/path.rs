//! One canonical request path, computed once per request, that picks the route and is the path
//! forwarded or handed on.
//!
//! A prefix rule such as "`/files/private` needs `files:admin`" only holds if the component
//! that checks it and the component that serves the request read the path the same way. Web
//! servers and frameworks disagree: they percent-decode, resolve `.` and `..`, merge `//`, drop
//! `;` parameters, treat `\` as `/`, fold letter case or trim trailing dots and spaces. So the
//! path is brought to one spelling that all of them read alike, and every spelling they might
//! read differently is refused with a 400 that says why:
//!
//! | input | rule |
//! |---|---|
//! | `%41`-style escapes of unreserved characters (RFC 3986 §2.3: letters, digits, `-._~`) | decoded (`/files/%70rivate` is `/files/private`) |
//! | other escapes | kept, hex digits upper-cased (RFC 3986 §6.2.2.1) |
//! | characters a path may not hold raw (space, `"`, `<`, `{`, non-ASCII, …) | percent-encoded |
//! | `%` not followed by two hex digits | refused (`InvalidEscape`) |
//! | `%2F`, `%5C`, raw `\` | refused: an upstream may read them as separators |
//! | `%00`, other control characters (C0 and C1, U+2028/U+2029) | refused: an upstream may cut the path there |
//! | `.` and `..` segments, raw or encoded (`%2e`, `.%2E`) | refused: an upstream resolves them |
//! | empty segments (`//`), except the trailing one of `/dir/` | refused: an upstream merges them |
//! | `;` raw or `%3B` | refused: matrix parameters are dropped by some upstreams |
//! | a segment ending in `.` or a space, or beginning with a space (`private.`, `private%20`) | refused: Windows servers and trimming frameworks drop them |
//! | `%25` followed by two hex digits (`%2570`) | refused: an upstream that decodes twice reads `%70` |
//! | escapes that do not decode to UTF-8 (overlong `%C0%AF`, …) | refused |
//!
//! Letter case: route prefixes match case-sensitively, and a path is also refused when its
//! folded form would fall under a different route than the path itself
//! ([`PathError::CaseConflict`]). An upstream on a case-insensitive file system or framework
//! would read `/files/PRIVATE/x` as `/files/private/x`; such a request is refused rather than
//! matched to the weaker `/files` route. See [`PrefixTable`].
//!
//! Upstreams ignore case in different ways, so the fold takes, for each character of the
//! decoded path, the ASCII reading any of them could give it: full Unicode case folding (`ß` is
//! `ss`, `ſ` is `s`, the Kelvin sign is `k`), the simple lower-case mapping (Java's
//! `toLowerCase`, Python's `re` with `(?i)`: `İ` is `i`), the simple upper-case mapping (`ı` is
//! `I`), and compatibility normalisation (NFKC, which IIS-style "best fit" and Unicode-aware
//! frameworks apply: fullwidth `ｐ` is `p`, `／` is `/`, the ligature `ﬁ` is `fi`). Route
//! prefixes are plain ASCII, so only characters some reading turns into ASCII can change the
//! route; the others are folded fully and never match a prefix. A fold that holds `.` or `..`
//! segments (fullwidth dots) is refused as [`PathError::DotSegment`], one with a segment ending
//! in a dot or a space as [`PathError::TrailingDotOrSpace`]. Two readings go further than case:
//! default-ignorable code points (soft hyphen, zero-width characters, variation selectors, the
//! byte-order mark), which NFKC_Casefold deletes, fold to nothing, and accented Latin letters
//! fold to their base letter (`ī` is `i`, `ø` is `o`), as transliterating and "best fit"
//! conversions read them. A fold holding `\` (fullwidth `＼`, small `﹨`, and `¥`/`₩`, which
//! Japanese and Korean code pages put at 0x5C) is refused as [`PathError::Backslash`].
//!
//! The query string is not part of the path: it is carried through untouched.

use std::borrow::Cow;
use std::fmt::Write as _;

/// Why a request path was refused. Each text says what to send instead.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PathError {
    #[error("the path must start with /")]
    NotAbsolute,
    #[error("every % in the path must be followed by two hexadecimal digits")]
    InvalidEscape,
    #[error("the path must not contain an encoded slash or backslash (%2F, %5C)")]
    EncodedSeparator,
    #[error("the path must not contain a backslash; separate segments with /")]
    Backslash,
    #[error("the path must not contain NUL (%00)")]
    Nul,
    #[error("the path must not contain control characters")]
    ControlCharacter,
    #[error(
        "the path must not contain . or .. segments, raw or encoded; send the path they lead to"
    )]
    DotSegment,
    #[error("the path must not contain empty segments (//)")]
    EmptySegment,
    #[error("the path must not contain ; (matrix parameters), raw or encoded")]
    MatrixParameter,
    #[error("a path segment must not begin with a space nor end with a dot or a space")]
    TrailingDotOrSpace,
    #[error("the path must not contain %25 followed by two hexadecimal digits (double encoding)")]
    DoubleEncoding,
    #[error("percent-encoded bytes in the path must form UTF-8")]
    InvalidUtf8,
    #[error(
        "the path differs only in letter case (or character width) from a path another route \
         serves; use the exact spelling of the route, in ASCII"
    )]
    CaseConflict,
    #[error("the path is not in canonical form; send {canonical}")]
    NotCanonical { canonical: String },
}

impl PathError {
    /// A stable snake_case name for metric labels and logs.
    pub const fn as_str(&self) -> &'static str {
        match self {
            Self::NotAbsolute => "not_absolute",
            Self::InvalidEscape => "invalid_escape",
            Self::EncodedSeparator => "encoded_separator",
            Self::Backslash => "backslash",
            Self::Nul => "nul",
            Self::ControlCharacter => "control_character",
            Self::DotSegment => "dot_segment",
            Self::EmptySegment => "empty_segment",
            Self::MatrixParameter => "matrix_parameter",
            Self::TrailingDotOrSpace => "trailing_dot_or_space",
            Self::DoubleEncoding => "double_encoding",
            Self::InvalidUtf8 => "invalid_utf8",
            Self::CaseConflict => "case_conflict",
            Self::NotCanonical { .. } => "not_canonical",
        }
    }
}

/// A request path in canonical form (see the module documentation): the only spelling that
/// routing, scope checks and forwarding look at.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct CanonicalPath<'a>(Cow<'a, str>);

impl<'a> CanonicalPath<'a> {
    /// Brings `raw` (a request target's path, without query) to canonical form, or says why it
    /// cannot be. A path already canonical is borrowed, not copied.
    pub fn parse(raw: &'a str) -> Result<Self, PathError> {
        canonicalize(raw).map(Self)
    }

    /// Like [`parse`](Self::parse), but refuses a path that is not already canonical: for a
    /// service whose router has matched the raw spelling before this check runs, so that the
    /// route chosen and the path checked can never differ.
    pub fn parse_exact(raw: &'a str) -> Result<Self, PathError> {
        let path = canonicalize(raw)?;
        if path != raw {
            return Err(PathError::NotCanonical { canonical: path.into_owned() });
        }
        Ok(Self(path))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// An owned copy, for request extensions and the like.
    pub fn into_owned(self) -> CanonicalPath<'static> {
        CanonicalPath(Cow::Owned(self.0.into_owned()))
    }

    /// Whether the path falls under `prefix` by whole segments: `/files` covers `/files` and
    /// `/files/x` but not `/files-x`; `/` covers everything.
    pub fn is_under(&self, prefix: &str) -> bool {
        is_under(&self.0, prefix)
    }

    /// The path's segments, still percent-encoded as in the canonical form (`/a/b/` gives
    /// `a`, `b`, ``).
    pub fn segments(&self) -> impl Iterator<Item = &str> {
        self.0[1..].split('/')
    }

    /// The case-folded, fully decoded path, or `None` when folding would change nothing (no
    /// upper-case ASCII letter and no non-ASCII character): what an upstream that ignores
    /// letter case reads.
    pub fn folded(&self) -> Option<String> {
        let bytes = self.0.as_bytes();
        // Hex digits of escapes count as upper-case letters here: at worst a needless fold.
        let has_upper = bytes.iter().any(u8::is_ascii_uppercase);
        // Canonical escapes left are upper-case hex; `%C2`..`%F4` start non-ASCII characters.
        let has_non_ascii = bytes.windows(3).any(|w| w[0] == b'%' && w[1] >= b'8');
        if !has_upper && !has_non_ascii {
            return None;
        }
        Some(fold(&percent_decode(&self.0)))
    }
}

impl std::fmt::Display for CanonicalPath<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl AsRef<str> for CanonicalPath<'_> {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

/// Whether `path` falls under `prefix` by whole segments.
pub(crate) fn is_under(path: &str, prefix: &str) -> bool {
    prefix == "/"
        || path.strip_prefix(prefix).is_some_and(|rest| rest.is_empty() || rest.starts_with('/'))
}

/// What a case-insensitive (or compatibility-normalising) upstream may read `text` as: each
/// character becomes the ASCII text one of the readings of the module documentation gives it,
/// when one does, else its full case fold.
fn fold(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if c.is_ascii() {
            out.push(c.to_ascii_lowercase());
        } else {
            fold_char(c, &mut out);
        }
    }
    out
}

/// Full case folding of one character, as far as `char` offers it: lower, upper, lower again
/// (`ẞ` → `ß` → `SS` → `ss`; `ſ` → `S` → `s`).
fn full_fold(c: char) -> impl Iterator<Item = char> {
    c.to_lowercase().flat_map(char::to_uppercase).flat_map(char::to_lowercase)
}

/// Unicode's Default_Ignorable_Code_Point property (DerivedCoreProperties.txt): soft hyphen,
/// zero-width space and joiners, bidirectional controls, variation selectors, the byte-order
/// mark, tags and the like. NFKC_Casefold removes them, and so do frameworks that normalise
/// identifiers, so `pri\u{AD}vate` may be read as `private`.
fn is_default_ignorable(c: char) -> bool {
    matches!(
        u32::from(c),
        0x00AD
            | 0x034F
            | 0x061C
            | 0x115F..=0x1160
            | 0x17B4..=0x17B5
            | 0x180B..=0x180F
            | 0x200B..=0x200F
            | 0x202A..=0x202E
            | 0x2060..=0x206F
            | 0x3164
            | 0xFE00..=0xFE0F
            | 0xFEFF
            | 0xFFA0
            | 0xFFF0..=0xFFF8
            | 0x1BCA0..=0x1BCA3
            | 0x1D173..=0x1D17A
            | 0xE0000..=0xE0FFF
    )
}

/// Latin letters without a decomposition that "best fit" code-page conversions and
/// transliterating frameworks still read as ASCII (`ł` as `l`, `ø` as `o`).
fn best_fit(c: char) -> Option<&'static str> {
    Some(match c {
        'ł' | 'Ł' => "l",
        'đ' | 'Đ' | 'ð' | 'Ð' => "d",
        'ø' | 'Ø' => "o",
        'ħ' | 'Ħ' => "h",
        'ŧ' | 'Ŧ' => "t",
        'ƀ' | 'Ƀ' => "b",
        'ƒ' | 'Ƒ' => "f",
        'ĸ' => "k",
        'æ' | 'Æ' => "ae",
        'œ' | 'Œ' => "oe",
        'þ' | 'Þ' => "th",
        // Japanese and Korean code pages put these at 0x5C, where ASCII has `\`.
        '¥' | '₩' => "\\",
        _ => return None,
    })
}

fn fold_char(c: char, out: &mut String) {
    // Default-ignorables vanish under NFKC_Casefold; a lone combining mark vanishes where
    // accents are stripped.
    if is_default_ignorable(c) || unicode_normalization::char::is_combining_mark(c) {
        return;
    }
    // Every Unicode space (White_Space: NBSP, U+1680 OGHAM SPACE MARK, U+2000–U+200A, U+3000,
    // …) is one to a trimming upstream (`str.strip()`, `String.prototype.trim()`).
    if c.is_whitespace() {
        out.push(' ');
        return;
    }
    let ascii = |s: &str| !s.is_empty() && s.is_ascii();
    let full: String = full_fold(c).collect();
    if ascii(&full) {
        out.push_str(&full);
        return;
    }
    // Simple lower-case mapping: a character whose full lower case is several characters
    // (only `İ`, "i̇") maps to the first of them.
    if let Some(lower) = c.to_lowercase().next()
        && lower.is_ascii()
    {
        out.push(lower.to_ascii_lowercase());
        return;
    }
    // Simple upper-case mapping, then lower case (`ı` → `I` → `i`).
    let mut upper = c.to_uppercase();
    if let (Some(u), None) = (upper.next(), upper.next())
        && u.is_ascii()
    {
        out.push(u.to_ascii_lowercase());
        return;
    }
    // Compatibility decomposition (fullwidth forms, ligatures, letterlike symbols), folded.
    let mut compatible = String::new();
    unicode_normalization::char::decompose_compatible(c, |d| compatible.extend(full_fold(d)));
    if ascii(&compatible) {
        out.push_str(&compatible);
        return;
    }
    // Accents stripped (`ī` is `i` + macron, `å` is `a` + ring), as transliterating and
    // "best fit" readings do, and Latin letters those readings map without a decomposition.
    let mut stripped = String::new();
    unicode_normalization::char::decompose_compatible(c, |d| {
        if !unicode_normalization::char::is_combining_mark(d) {
            stripped.extend(full_fold(d));
        }
    });
    if ascii(&stripped) {
        out.push_str(&stripped);
        return;
    }
    if let Some(text) = best_fit(c) {
        out.push_str(text);
        return;
    }
    out.push_str(&full);
}

/// Decodes every escape of a canonical path (which holds only valid escapes of UTF-8).
fn percent_decode(path: &str) -> String {
    let bytes = path.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && let Some(v) = escape_at(bytes, i)
        {
            out.push(v);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn hex(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

/// The byte the escape at `bytes[i]` (a `%`) encodes, if it is one.
fn escape_at(bytes: &[u8], i: usize) -> Option<u8> {
    let hi = hex(*bytes.get(i + 1)?)?;
    let lo = hex(*bytes.get(i + 2)?)?;
    Some(hi << 4 | lo)
}

/// RFC 3986 §2.3.
const fn is_unreserved(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~')
}

/// What a canonical path holds raw: unreserved characters, the sub-delimiters other than `;`,
/// `:` and `@` (RFC 3986 §3.3 `pchar`).
const fn is_plain(b: u8) -> bool {
    is_unreserved(b)
        || matches!(b, b'!' | b'$' | b'&' | b'\'' | b'(' | b')' | b'*' | b'+' | b',' | b'=')
        || matches!(b, b':' | b'@')
}

/// Characters refused anywhere in a decoded path besides C0 controls: the C1 controls (U+0085
/// NEL among them), the line and paragraph separators and the format characters that stand for
/// line or annotation breaks. Trimming and line-splitting upstreams (`str.strip()`,
/// `String.Trim()`, `splitlines`) cut or drop them, so `private\u{85}` could be read as
/// `private`.
fn is_refused_control(c: char) -> bool {
    c.is_control()
        || matches!(
            c,
            '\u{2028}'
                | '\u{2029}'
                | '\u{FFF9}'..='\u{FFFB}'
                | '\u{0600}'..='\u{0605}'
                | '\u{0890}'..='\u{0891}'
                | '\u{13430}'..='\u{1343F}'
                | '\u{06DD}'
                | '\u{070F}'
                | '\u{08E2}'
                | '\u{110BD}'
                | '\u{110CD}'
        )
}

/// Refusals that depend on a whole decoded segment.
fn check_segment(decoded: &[u8], first_empty_allowed: bool) -> Result<(), PathError> {
    match decoded {
        [] if first_empty_allowed => Ok(()),
        [] => Err(PathError::EmptySegment),
        b"." | b".." => Err(PathError::DotSegment),
        [.., b'.' | b' '] | [b' ', ..] => Err(PathError::TrailingDotOrSpace),
        _ => match std::str::from_utf8(decoded) {
            Err(_) => Err(PathError::InvalidUtf8),
            Ok(text) if !text.is_ascii() && text.chars().any(is_refused_control) => {
                Err(PathError::ControlCharacter)
            }
            Ok(_) => Ok(()),
        },
    }
}

fn canonicalize(raw: &str) -> Result<Cow<'_, str>, PathError> {
    if !raw.starts_with('/') {
        return Err(PathError::NotAbsolute);
    }
    // The common case, a path of plain characters, is checked without building a copy.
    if raw.bytes().all(|b| is_plain(b) || b == b'/') {
        let segments = raw[1..].split('/');
        let count = raw[1..].split('/').count();
        for (index, segment) in segments.enumerate() {
            check_segment(segment.as_bytes(), index + 1 == count)?;
        }
        return Ok(Cow::Borrowed(raw));
    }

    let bytes = raw.as_bytes();
    let mut out = String::with_capacity(raw.len() + 8);
    let mut decoded: Vec<u8> = Vec::with_capacity(32);
    let count = raw[1..].split('/').count();
    let mut index = 0;
    out.push('/');
    let mut i = 1;
    loop {
        let end = i >= bytes.len() || bytes[i] == b'/';
        if end {
            check_segment(&decoded, index + 1 == count)?;
            decoded.clear();
            index += 1;
            if i >= bytes.len() {
                break;
            }
            out.push('/');
            i += 1;
            continue;
        }
        let b = bytes[i];
        if b == b'%' {
            let v = escape_at(bytes, i).ok_or(PathError::InvalidEscape)?;
            match v {
                0 => return Err(PathError::Nul),
                b'/' | b'\\' => return Err(PathError::EncodedSeparator),
                0x01..=0x1F | 0x7F => return Err(PathError::ControlCharacter),
                b';' => return Err(PathError::MatrixParameter),
                v if is_unreserved(v) => out.push(char::from(v)),
                v => push_escape(&mut out, v),
            }
            decoded.push(v);
            i += 3;
            continue;
        }
        match b {
            0 => return Err(PathError::Nul),
            0x01..=0x1F | 0x7F => return Err(PathError::ControlCharacter),
            b';' => return Err(PathError::MatrixParameter),
            b'\\' => return Err(PathError::Backslash),
            b if is_plain(b) => out.push(char::from(b)),
            b => push_escape(&mut out, b),
        }
        decoded.push(b);
        i += 1;
    }
    // Checked on the result, so that `%25%37%30` (whose digits are decoded) is caught too.
    let out_bytes = out.as_bytes();
    if (0..out_bytes.len())
        .any(|i| out_bytes[i..].starts_with(b"%25") && escape_at(out_bytes, i + 2).is_some())
    {
        return Err(PathError::DoubleEncoding);
    }
    Ok(Cow::Owned(out))
}

fn push_escape(out: &mut String, byte: u8) {
    // Writing to a String cannot fail.
    let _ = write!(out, "%{byte:02X}");
}

/// Route prefixes, matched against canonical paths by whole segments, longest first, with the
/// letter-case rule of the module documentation.
#[derive(Debug, Clone)]
pub struct PrefixTable<T> {
    /// Longest prefix first, so the first match is the most specific.
    entries: Vec<Entry<T>>,
    /// Whether every prefix is its own case fold, so that a path without upper-case or
    /// non-ASCII letters needs no folding at all.
    prefixes_folded: bool,
}

#[derive(Debug, Clone)]
struct Entry<T> {
    prefix: String,
    folded: String,
    value: T,
}

/// A route prefix that cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PrefixError {
    #[error(
        "'{prefix}' is not a canonical path prefix: {reason}; use a path like /eligibility made \
         of letters, digits and -._~!$&'()*+,=:@"
    )]
    NotCanonical { prefix: String, reason: String },
    #[error("'{prefix}' and '{other}' differ only in letter case, so one path could match both")]
    CaseDuplicate { prefix: String, other: String },
    #[error("'{prefix}' is given twice")]
    Duplicate { prefix: String },
}

/// Checks that `prefix` is a canonical path of plain characters (no escapes), without a
/// trailing `/` except for the root, and returns it.
pub fn validate_prefix(prefix: &str) -> Result<String, PrefixError> {
    let not_canonical =
        |reason: String| PrefixError::NotCanonical { prefix: prefix.to_owned(), reason };
    let trimmed = if prefix.len() > 1 { prefix.trim_end_matches('/') } else { prefix };
    let trimmed = if trimmed.is_empty() { "/" } else { trimmed };
    if let Some(bad) = trimmed.bytes().find(|b| !is_plain(*b) && *b != b'/') {
        return Err(not_canonical(format!("it holds {:?}", char::from(bad))));
    }
    match CanonicalPath::parse_exact(trimmed) {
        Ok(_) => Ok(trimmed.to_owned()),
        Err(error) => Err(not_canonical(error.to_string())),
    }
}

impl<T> PrefixTable<T> {
    /// A table of `(prefix, value)` pairs; prefixes are validated with [`validate_prefix`] and
    /// must differ from each other in more than letter case.
    pub fn new(routes: impl IntoIterator<Item = (String, T)>) -> Result<Self, PrefixError> {
        let mut entries: Vec<Entry<T>> = Vec::new();
        for (prefix, value) in routes {
            let prefix = validate_prefix(&prefix)?;
            let folded = fold(&prefix);
            if let Some(other) = entries.iter().find(|e| e.folded == folded) {
                return Err(if other.prefix == prefix {
                    PrefixError::Duplicate { prefix }
                } else {
                    PrefixError::CaseDuplicate { prefix, other: other.prefix.clone() }
                });
            }
            entries.push(Entry { prefix, folded, value });
        }
        entries.sort_by_key(|e| std::cmp::Reverse(e.prefix.len()));
        let prefixes_folded = entries.iter().all(|e| e.prefix == e.folded);
        Ok(Self { entries, prefixes_folded })
    }

    /// The value of the longest prefix `path` falls under; `Ok(None)` when none covers it;
    /// [`PathError::CaseConflict`] when the path's case fold falls under another prefix.
    pub fn route(&self, path: &CanonicalPath<'_>) -> Result<Option<&T>, PathError> {
        let exact = self.entries.iter().position(|e| path.is_under(&e.prefix));
        let folded = path.folded();
        if folded.is_none() && self.prefixes_folded {
            return Ok(exact.map(|i| &self.entries[i].value));
        }
        let folded = folded.as_deref().unwrap_or(path.as_str());
        // A fullwidth dot folds to `.`, an ideographic space to ` `: an upstream that
        // normalises them resolves such a segment or trims it, as it would the ASCII ones.
        // A segment of default-ignorable characters only folds to nothing: an upstream that
        // drops them merges the `//` that is left, as it would a raw one.
        // A fullwidth or small reverse solidus (or a yen or won sign under a Japanese or
        // Korean code page) folds to `\`, which upstreams read as a separator.
        if folded.contains('\\') {
            return Err(PathError::Backslash);
        }
        let count = folded[1..].split('/').count();
        for (index, segment) in folded[1..].split('/').enumerate() {
            match segment.as_bytes() {
                b"." | b".." => return Err(PathError::DotSegment),
                [.., b'.' | b' '] | [b' ', ..] => return Err(PathError::TrailingDotOrSpace),
                [] if index + 1 < count => return Err(PathError::EmptySegment),
                _ => {}
            }
        }
        let insensitive = self.entries.iter().position(|e| is_under(folded, &e.folded));
        if insensitive != exact {
            return Err(PathError::CaseConflict);
        }
        Ok(exact.map(|i| &self.entries[i].value))
    }

    /// The prefixes and their values, longest prefix first.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &T)> {
        self.entries.iter().map(|e| (e.prefix.as_str(), &e.value))
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn canonical(raw: &str) -> Result<String, PathError> {
        CanonicalPath::parse(raw).map(|p| p.as_str().to_owned())
    }

    #[test]
    fn plain_paths_are_already_canonical_and_borrowed() {
        for raw in
            ["/", "/files", "/files/", "/files/x.json", "/a/..b/c~d/e-f_g", "/a:b@c!$&'()*+,="]
        {
            let path = CanonicalPath::parse(raw).unwrap_or_else(|e| panic!("{raw}: {e}"));
            assert!(matches!(path.0, Cow::Borrowed(_)), "{raw}");
            assert_eq!(path.as_str(), raw);
        }
    }

    #[test]
    fn escapes_of_unreserved_characters_are_decoded_and_others_upper_cased() {
        assert_eq!(canonical("/files/%70rivate/x").unwrap(), "/files/private/x");
        assert_eq!(canonical("/files/priv%61te/x").unwrap(), "/files/private/x");
        assert_eq!(canonical("/a%7E%2d%5F%2E1").unwrap(), "/a~-_.1");
        assert_eq!(canonical("/a%3fb%23c%25").unwrap(), "/a%3Fb%23c%25");
        assert_eq!(canonical("/a%20b").unwrap(), "/a%20b");
        assert_eq!(canonical("/caf%c3%a9").unwrap(), "/caf%C3%A9");
    }

    #[test]
    fn characters_a_path_cannot_hold_raw_are_encoded() {
        assert_eq!(canonical("/a b\"c{d}|é").unwrap(), "/a%20b%22c%7Bd%7D%7C%C3%A9");
    }

    #[test]
    fn each_spelling_an_upstream_could_read_differently_is_refused_with_its_reason() {
        use PathError::*;
        let cases: &[(&str, PathError)] = &[
            ("files", NotAbsolute),
            ("", NotAbsolute),
            ("*", NotAbsolute),
            ("/a%2", InvalidEscape),
            ("/a%zz", InvalidEscape),
            ("/a%u0070", InvalidEscape),
            ("/files%2fprivate", EncodedSeparator),
            ("/files%2Fprivate", EncodedSeparator),
            ("/files%5cprivate", EncodedSeparator),
            ("/files\\private", Backslash),
            ("/files/private%00", Nul),
            ("/files/private%00/x", Nul),
            ("/files/private%0a", ControlCharacter),
            ("/files/private%7F", ControlCharacter),
            ("/files/private\t", ControlCharacter),
            ("/files/../files/private", DotSegment),
            ("/files/./private", DotSegment),
            ("/files/%2e%2E/private", DotSegment),
            ("/files/.%2e", DotSegment),
            ("/files/%2e", DotSegment),
            ("/files//private/x", EmptySegment),
            ("//files/private", EmptySegment),
            ("/files/private;x=1/y", MatrixParameter),
            ("/files;x=1/private", MatrixParameter),
            ("/files/private%3bx", MatrixParameter),
            ("/files/private%20", TrailingDotOrSpace),
            ("/files/private%20/x", TrailingDotOrSpace),
            ("/files/private./x", TrailingDotOrSpace),
            ("/files/private%2E", TrailingDotOrSpace),
            ("/files/%2570rivate", DoubleEncoding),
            ("/files/%25%37%30rivate", DoubleEncoding),
            ("/files/%c0%af", InvalidUtf8),
            ("/files/%ff", InvalidUtf8),
        ];
        for (raw, expected) in cases {
            assert_eq!(canonical(raw).as_ref(), Err(expected), "{raw:?}");
        }
    }

    #[test]
    fn a_single_trailing_slash_is_kept_and_a_lone_percent_sign_stays_encoded() {
        assert_eq!(canonical("/files/").unwrap(), "/files/");
        assert_eq!(canonical("/100%25").unwrap(), "/100%25");
        assert_eq!(canonical("/100%25x").unwrap(), "/100%25x");
    }

    #[test]
    fn parse_exact_refuses_a_path_that_canonicalisation_would_change() {
        assert!(CanonicalPath::parse_exact("/files/private").is_ok());
        assert_eq!(
            CanonicalPath::parse_exact("/files/%70rivate"),
            Err(PathError::NotCanonical { canonical: "/files/private".to_owned() })
        );
    }

    fn table() -> PrefixTable<&'static str> {
        PrefixTable::new([
            ("/files".to_owned(), "files"),
            ("/files/private/".to_owned(), "private"),
            ("/Reports".to_owned(), "reports"),
        ])
        .unwrap()
    }

    fn route(raw: &str) -> Result<Option<&'static str>, PathError> {
        let table = table();
        let path = CanonicalPath::parse(raw)?;
        table.route(&path).map(|v| v.copied())
    }

    #[test]
    fn routes_match_whole_segments_longest_first() {
        assert_eq!(route("/files"), Ok(Some("files")));
        assert_eq!(route("/files/x"), Ok(Some("files")));
        assert_eq!(route("/files/private"), Ok(Some("private")));
        assert_eq!(route("/files/private/x"), Ok(Some("private")));
        assert_eq!(route("/files/%70rivate/x"), Ok(Some("private")));
        assert_eq!(route("/files/privatex"), Ok(Some("files")));
        assert_eq!(route("/files-x"), Ok(None));
        assert_eq!(route("/Reports/1"), Ok(Some("reports")));
    }

    #[test]
    fn a_path_whose_case_fold_reaches_another_route_is_refused() {
        assert_eq!(route("/files/Private/x"), Err(PathError::CaseConflict));
        assert_eq!(route("/files/PRIVATE"), Err(PathError::CaseConflict));
        assert_eq!(route("/reports/1"), Err(PathError::CaseConflict));
        // Upper-case elsewhere is fine when the fold lands on the same route.
        assert_eq!(route("/files/Other"), Ok(Some("files")));
        assert_eq!(route("/files/private/X"), Ok(Some("private")));
        // "/FILES/x" folds onto /files, which it does not match as spelled.
        assert_eq!(route("/FILES/x"), Err(PathError::CaseConflict));
    }

    #[test]
    fn unicode_case_folding_is_applied_to_decoded_characters() {
        let table =
            PrefixTable::new([("/".to_owned(), "root"), ("/ask".to_owned(), "ask")]).unwrap();
        // U+212A KELVIN SIGN folds to k; U+017F LONG S folds to s.
        for raw in ["/as%E2%84%AA", "/a%C5%BFk"] {
            let path = CanonicalPath::parse(raw).unwrap();
            assert_eq!(table.route(&path), Err(PathError::CaseConflict), "{raw}");
        }
    }

    #[test]
    fn every_simple_and_compatibility_reading_that_gives_ascii_is_folded() {
        for (text, folded) in [
            ("\u{130}", "i"),                                   // İ: simple lower case
            ("\u{131}", "i"),                                   // ı: simple upper case
            ("\u{17F}", "s"),                                   // ſ
            ("\u{212A}", "k"),                                  // Kelvin sign
            ("\u{DF}", "ss"),                                   // ß
            ("\u{1E9E}", "ss"),                                 // ẞ
            ("\u{FF50}\u{FF32}", "pr"),                         // fullwidth
            ("\u{FF0F}", "/"),                                  // fullwidth solidus
            ("\u{FB01}", "fi"),                                 // ligature
            ("\u{212B}", "a"),                                  // Angstrom sign: å, accent stripped
            ("\u{3A3}\u{3C2}\u{3C3}", "\u{3C3}\u{3C3}\u{3C3}"), // Σςσ
            ("PrIvAtE", "private"),
        ] {
            assert_eq!(fold(text), folded, "{text}");
        }
        let table = table();
        for raw in ["/files/pr%C4%B0vate/x", "/files/pr%C4%B1vate", "/files/%EF%BD%90rivate"] {
            let path = CanonicalPath::parse(raw).unwrap();
            assert_eq!(table.route(&path), Err(PathError::CaseConflict), "{raw}");
        }
        let path = CanonicalPath::parse("/files/%EF%BC%8E%EF%BC%8E/x").unwrap();
        assert_eq!(table.route(&path), Err(PathError::DotSegment));
    }

    #[test]
    fn default_ignorable_characters_fold_to_nothing_and_accents_are_stripped() {
        for (text, folded) in [
            ("pri\u{AD}vate", "private"),            // soft hyphen
            ("pri\u{200B}v\u{200D}ate", "private"),  // zero-width space and joiner
            ("\u{FEFF}private\u{FE0F}", "private"),  // byte-order mark, variation selector
            ("p\u{E0041}rivate\u{2060}", "private"), // tag, word joiner
            ("pr\u{12B}v\u{E0}te", "private"),       // ī, à
            ("p\u{155}iv\u{E5}te", "private"),       // ŕ, å
            ("pri\u{30A}vate", "private"),           // a combining ring on its own
            ("\u{142}\u{F8}\u{111}", "lod"),         // ł, ø, đ: best fit
            ("\u{3B1}\u{436}", "\u{3B1}\u{436}"),    // Greek and Cyrillic stay themselves
        ] {
            assert_eq!(fold(text), folded, "{text}");
        }
        let table = table();
        for raw in [
            "/files/pri%C2%ADvate/x",
            "/files/%E2%80%8Bprivate",
            "/files/%EF%BB%BFprivate",
            "/files/pr%C4%ABvate",
            "/files/p%C5%95iv%C3%A5te/x",
            "/files/private%EF%B8%8F/x",
        ] {
            let path = CanonicalPath::parse(raw).unwrap();
            assert_eq!(table.route(&path), Err(PathError::CaseConflict), "{raw}");
        }
        // A segment of ignorable characters alone leaves `//` behind, which upstreams merge.
        let path = CanonicalPath::parse("/files/%C2%AD/private").unwrap();
        assert_eq!(table.route(&path), Err(PathError::EmptySegment));
        // Under the same route either way: served.
        let path = CanonicalPath::parse("/files/caf%C3%A9").unwrap();
        assert_eq!(table.route(&path), Ok(Some(&"files")));
    }

    #[test]
    fn c1_controls_separators_and_leading_spaces_are_refused_in_any_segment() {
        for raw in [
            "/files/private%C2%85",
            "/files/private%C2%80/x",
            "/files/pri%C2%9Fvate",
            "/files/private%E2%80%A8",
            "/files/%E2%80%A9private",
            "/files/private%EF%BF%B9",
            "/files/%D8%80private",
            "/files/pri%E0%A2%90vate/x",
            "/files/pri%F0%93%90%B0vate/x",
        ] {
            assert_eq!(canonical(raw), Err(PathError::ControlCharacter), "{raw}");
        }
        for raw in ["/files/%20private", "/files/%20private/x", "/%20"] {
            assert_eq!(canonical(raw), Err(PathError::TrailingDotOrSpace), "{raw}");
        }
        // A leading NBSP or en quad folds to a space: refused where a route is picked.
        let table = table();
        for raw in [
            "/files/%C2%A0private/x",
            "/files/%E2%80%80private",
            "/files/%E3%80%80x",
            "/files/private%E1%9A%80/x", // U+1680 OGHAM SPACE MARK
            "/files/%E1%9A%80private/x",
        ] {
            let path = CanonicalPath::parse(raw).unwrap();
            assert_eq!(table.route(&path), Err(PathError::TrailingDotOrSpace), "{raw}");
        }
        // Ordinary non-ASCII text is not a control character.
        assert!(canonical("/files/%C2%A9%E2%80%94caf%C3%A9").is_ok());
    }

    #[test]
    fn characters_that_fold_to_a_backslash_are_refused_as_backslashes() {
        let table = table();
        for raw in [
            "/files/x%EF%BC%BC..%EF%BC%BCprivate/y", // fullwidth reverse solidus
            "/files/x%EF%B9%A8..%EF%B9%A8private/y", // small reverse solidus
            "/files/private%EF%BC%BCy",
            "/files/a%C2%A5b",    // yen sign (0x5C on Japanese code pages)
            "/files/a%E2%82%A9b", // won sign (0x5C on Korean code pages)
        ] {
            let path = CanonicalPath::parse(raw).unwrap();
            assert_eq!(table.route(&path), Err(PathError::Backslash), "{raw}");
        }
    }

    #[test]
    fn prefixes_that_are_not_canonical_or_clash_by_case_are_refused() {
        for prefix in ["files", "/a%20b", "/a/../b", "/a//b", "/a;b", "/a b", "/é"] {
            assert!(validate_prefix(prefix).is_err(), "{prefix}");
        }
        assert_eq!(validate_prefix("/files/").unwrap(), "/files");
        assert_eq!(validate_prefix("/").unwrap(), "/");
        assert!(matches!(
            PrefixTable::new([("/a".to_owned(), 1), ("/A".to_owned(), 2)]),
            Err(PrefixError::CaseDuplicate { .. })
        ));
        assert!(matches!(
            PrefixTable::new([("/a".to_owned(), 1), ("/a/".to_owned(), 2)]),
            Err(PrefixError::Duplicate { .. })
        ));
    }
}

//! The canonical request path against the ways real upstreams read paths: for every generated
//! path that is accepted, no upstream reading (decoding once or twice, resolving dot segments,
//! merging slashes, dropping matrix parameters, treating `\` as `/`, trimming trailing dots and
//! spaces, cutting at NUL, ignoring letter case by full folding or by the simple mappings
//! Java and Python use, normalising to NFKC, or any of those together) lands under a guarded
//! prefix unless the route chosen is the guarded one.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use proptest::prelude::*;
use tokenmint_verify::{CanonicalPath, PathError, PrefixTable};

const GUARDED: &str = "/files/private";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Route {
    Root,
    Files,
    Private,
}

fn table() -> PrefixTable<Route> {
    PrefixTable::new([
        ("/".to_owned(), Route::Root),
        ("/files".to_owned(), Route::Files),
        (GUARDED.to_owned(), Route::Private),
    ])
    .unwrap()
}

fn percent_decode(path: &str) -> String {
    let bytes = path.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |b: u8| (b as char).to_digit(16);
        if bytes[i] == b'%'
            && i + 2 < bytes.len()
            && let (Some(h), Some(l)) = (hex(bytes[i + 1]), hex(bytes[i + 2]))
        {
            out.push((h * 16 + l) as u8);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// RFC 3986 §5.2.4, as most servers resolve dot segments.
fn remove_dot_segments(path: &str) -> String {
    let mut out: Vec<&str> = Vec::new();
    let segments: Vec<&str> = path.split('/').collect();
    for (i, segment) in segments.iter().enumerate().skip(1) {
        let last = i + 1 == segments.len();
        match *segment {
            "." => {
                if last {
                    out.push("");
                }
            }
            ".." => {
                out.pop();
                if last {
                    out.push("");
                }
            }
            s => out.push(s),
        }
    }
    format!("/{}", out.join("/"))
}

fn merge_slashes(path: &str) -> String {
    let mut out = String::with_capacity(path.len());
    for c in path.chars() {
        if !(c == '/' && out.ends_with('/')) {
            out.push(c);
        }
    }
    out
}

fn strip_matrix(path: &str) -> String {
    path.split('/')
        .map(|segment| segment.split(';').next().unwrap_or(""))
        .collect::<Vec<_>>()
        .join("/")
}

fn trim_segments(path: &str) -> String {
    path.split('/')
        .map(|segment| segment.trim_end_matches(['.', ' ']))
        .collect::<Vec<_>>()
        .join("/")
}

fn cut_at_nul(path: &str) -> String {
    path.split('\0').next().unwrap_or("").to_owned()
}

/// Python's `http.server` (`SimpleHTTPRequestHandler.translate_path`): unquote, normpath,
/// drop empty, `.` and `..` words.
fn python_http_server(path: &str) -> String {
    let decoded = percent_decode(path);
    let normalized = remove_dot_segments(&merge_slashes(&decoded));
    let words: Vec<&str> =
        normalized.split('/').filter(|w| !w.is_empty() && *w != "." && *w != "..").collect();
    format!("/{}", words.join("/"))
}

/// How one upstream reads a path, and whether it ignores letter case.
struct Reader {
    name: &'static str,
    read: fn(&str) -> String,
    case_insensitive: bool,
}

const READERS: &[Reader] = &[
    Reader { name: "raw", read: |p| p.to_owned(), case_insensitive: false },
    Reader { name: "decode", read: percent_decode, case_insensitive: false },
    Reader {
        name: "decode twice",
        read: |p| percent_decode(&percent_decode(p)),
        case_insensitive: false,
    },
    Reader {
        name: "nginx (decode, merge slashes, dot segments)",
        read: |p| remove_dot_segments(&merge_slashes(&percent_decode(p))),
        case_insensitive: false,
    },
    Reader {
        name: "dot segments then decode",
        read: |p| percent_decode(&remove_dot_segments(p)),
        case_insensitive: false,
    },
    Reader {
        name: "servlet (matrix parameters, decode, dot segments)",
        read: |p| remove_dot_segments(&percent_decode(&strip_matrix(p))),
        case_insensitive: false,
    },
    Reader {
        name: "windows (decode, backslash, dot segments, trim, case)",
        read: |p| {
            let decoded = percent_decode(p).replace('\\', "/");
            trim_segments(&remove_dot_segments(&merge_slashes(&decoded)))
        },
        case_insensitive: true,
    },
    Reader {
        name: "C string (decode, cut at NUL)",
        read: |p| cut_at_nul(&percent_decode(p)),
        case_insensitive: false,
    },
    Reader { name: "python http.server", read: python_http_server, case_insensitive: false },
    Reader {
        name: "everything at once, twice decoded",
        read: |p| {
            let once = percent_decode(&strip_matrix(p));
            let twice = cut_at_nul(&percent_decode(&once)).replace('\\', "/");
            trim_segments(&remove_dot_segments(&merge_slashes(&strip_matrix(&twice))))
        },
        case_insensitive: true,
    },
];

/// The ways case-insensitive upstreams compare, each written from its own definition.
/// A named reading of a path, as one kind of upstream would make it.
type Fold = (&'static str, fn(&str) -> String);

const FOLDS: &[Fold] = &[
    // Unicode full case folding (ICU, Go's strings.EqualFold for most, .NET's OrdinalIgnoreCase
    // for the rest): upper then lower, with the multi-character mappings.
    ("full case folding", |t| {
        t.chars()
            .flat_map(char::to_lowercase)
            .flat_map(char::to_uppercase)
            .flat_map(char::to_lowercase)
            .collect()
    }),
    // Java's toLowerCase per character and Python's re (?i): the simple lower-case mapping,
    // which for U+0130 is plain i (the full mapping's first character).
    ("simple lower case", |t| t.chars().map(|c| c.to_lowercase().next().unwrap_or(c)).collect()),
    // Java's equalsIgnoreCase: simple upper case, then simple lower case, per character.
    ("simple upper then lower case", |t| {
        t.chars()
            .map(|c| {
                let mut u = c.to_uppercase();
                let u = match (u.next(), u.next()) {
                    (Some(one), None) => one,
                    _ => c,
                };
                u.to_lowercase().next().unwrap_or(u)
            })
            .collect()
    }),
    // Unicode-aware frameworks that normalise (NFKC) before a case-insensitive compare.
    ("NFKC then full case folding", |t| {
        use unicode_normalization::UnicodeNormalization;
        t.nfkc().flat_map(char::to_uppercase).flat_map(char::to_lowercase).collect()
    }),
];

fn under(path: &str, prefix: &str) -> bool {
    path.strip_prefix(prefix).is_some_and(|rest| rest.is_empty() || rest.starts_with('/'))
}

/// Pieces that upstreams are known to read in surprising ways, and plain ones.
const ATOMS: &[&str] = &[
    "files",
    "private",
    "Private",
    "PRIVATE",
    "priv",
    "ate",
    "%70",
    "%50",
    "%61",
    "%2e",
    "%2E",
    ".",
    "..",
    "%2f",
    "%2F",
    "%5c",
    "\\",
    ";x=1",
    ";",
    "%3b",
    "%00",
    "%20",
    " ",
    "%09",
    "%25",
    "%2570",
    "%252e",
    "%C5%BF",
    "%E2%84%AA",
    "%C4%B0",
    "%C4%B1",
    "\u{130}",
    "\u{131}",
    "\u{17F}",
    "%E2%84%AB",
    "%C3%9F",
    "%E1%BA%9E",
    "%CE%A3",
    "%CF%82",
    "%CF%83",
    "%EF%BD%90",
    "%EF%BC%B0",
    "%EF%BC%8F",
    "%EF%BC%8E",
    "\u{FF49}",
    "pr%C4%B0vate",
    "pr\u{131}vate",
    "%EF%BD%86iles",
    "%E3%80%80",
    "%c0%af",
    "x",
    "~",
    "%7e",
    "%",
    "%zz",
    "é",
    "",
    "%2e%2e",
    "..;",
    "private.",
    "privat%65",
    "PRIV%41TE",
];

fn segment() -> impl Strategy<Value = String> {
    proptest::collection::vec(proptest::sample::select(ATOMS), 1..4).prop_map(|a| a.concat())
}

fn path() -> impl Strategy<Value = String> {
    proptest::collection::vec(segment(), 1..6)
        .prop_map(|segments| format!("/{}", segments.join("/")))
}

/// The decision for `raw`, and the canonical path forwarded when it is accepted.
fn decide(table: &PrefixTable<Route>, raw: &str) -> Result<(Route, String), PathError> {
    let path = CanonicalPath::parse(raw)?;
    let route = table.route(&path)?.copied().unwrap_or(Route::Root);
    Ok((route, path.as_str().to_owned()))
}

fn check_no_upstream_reads_a_guarded_path(raw: &str) -> Result<(), TestCaseError> {
    let table = table();
    let Ok((route, forwarded)) = decide(&table, raw) else { return Ok(()) };
    for reader in READERS {
        let seen = (reader.read)(&forwarded);
        let reaches = under(&seen, GUARDED);
        prop_assert!(
            !reaches || route == Route::Private,
            "{raw:?} went to {route:?} as {forwarded:?}, which {} reads as {seen:?}",
            reader.name
        );
        if reader.case_insensitive {
            for (how, fold) in FOLDS {
                // A normalising upstream also resolves the dot segments its fold makes, and
                // Windows trims the trailing dots and spaces.
                let folded = trim_segments(&remove_dot_segments(&fold(&seen)));
                prop_assert!(
                    !under(&folded, GUARDED) || route == Route::Private,
                    "{raw:?} went to {route:?} as {forwarded:?}, which {} with {how} reads \
                     as {folded:?}",
                    reader.name
                );
            }
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(20_000))]

    #[test]
    fn no_generated_path_reaches_the_guarded_prefix_through_a_weaker_route(raw in path()) {
        check_no_upstream_reads_a_guarded_path(&raw)?;
    }

    #[test]
    fn canonical_paths_are_fixed_points_that_decode_to_what_the_original_decodes_to(raw in path()) {
        if let Ok(path) = CanonicalPath::parse(&raw) {
            let again = CanonicalPath::parse_exact(path.as_str());
            prop_assert!(again.is_ok(), "{raw:?} -> {path} -> {again:?}");
            prop_assert_eq!(percent_decode(path.as_str()), percent_decode(&raw));
        }
    }

    #[test]
    fn arbitrary_text_never_panics_the_canonicaliser(raw in "/\\PC{0,60}") {
        let table = table();
        if let Ok(path) = CanonicalPath::parse(&raw) {
            let _ = table.route(&path);
        }
    }
}

/// The spellings of the review's finding, each either routed to the guarded route or refused.
#[test]
fn every_spelling_of_the_finding_is_routed_to_the_guarded_route_or_refused() {
    let table = table();
    let cases: &[(&str, Result<Route, PathError>)] = &[
        ("/files/%70rivate/x", Ok(Route::Private)),
        ("/files/priv%61te/x", Ok(Route::Private)),
        ("/files//private/x", Err(PathError::EmptySegment)),
        ("/files/private;x=1/y", Err(PathError::MatrixParameter)),
        ("/files;x=1/private/y", Err(PathError::MatrixParameter)),
        ("/files/Private/x", Err(PathError::CaseConflict)),
        ("/FILES/PRIVATE/x", Err(PathError::CaseConflict)),
        ("/files/private%00", Err(PathError::Nul)),
        ("/files/private%20", Err(PathError::TrailingDotOrSpace)),
        ("/files/private%00/x", Err(PathError::Nul)),
        ("/files/private%20/x", Err(PathError::TrailingDotOrSpace)),
        ("/files/x/../private", Err(PathError::DotSegment)),
        ("/files/x/%2e%2e/private", Err(PathError::DotSegment)),
        ("/files%2fprivate", Err(PathError::EncodedSeparator)),
        ("/files/%2570rivate", Err(PathError::DoubleEncoding)),
        ("/files/pr%C4%B0vate/x", Err(PathError::CaseConflict)),
        ("/files/pr\u{130}vate/x", Err(PathError::CaseConflict)),
        ("/files/pr%C4%B1vate/x", Err(PathError::CaseConflict)),
        ("/files/%C5%BF/../private", Err(PathError::DotSegment)),
        ("/files/%EF%BD%90rivate/x", Err(PathError::CaseConflict)),
        ("/files%EF%BC%8Fprivate/x", Err(PathError::CaseConflict)),
        ("/files/%EF%BC%8E%EF%BC%8E/private", Err(PathError::DotSegment)),
        ("/files/pr%C3%9F", Ok(Route::Files)),
        ("/files/%CE%A3", Ok(Route::Files)),
        ("/files/other", Ok(Route::Files)),
    ];
    for (raw, expected) in cases {
        let got = decide(&table, raw).map(|(route, _)| route);
        assert_eq!(&got, expected, "{raw}");
        check_no_upstream_reads_a_guarded_path(raw).unwrap();
    }
}

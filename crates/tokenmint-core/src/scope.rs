//! Product areas, permissions and scopes.
//!
//! A provider configures its product areas (`--product-area eligibility`); a credential is
//! granted, per area, `read` or `write`, and `write` includes `read`, as the Wellhub portal's
//! "No access / Read / Read & write" choice implies. A token carries scopes `AREA:read` /
//! `AREA:write`. tokenmint's own powers are scopes of the reserved `tokenmint` area
//! (`tokenmint:admin`, ...), granted only by platform admins.

use std::fmt;
use thiserror::Error;
use tokenmint_proto::system_scopes;

/// Longest accepted area name.
pub const MAX_AREA_LEN: usize = 63;

#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ScopeError {
    #[error(
        "product area '{0}' is not a valid name: use 1 to 63 lower-case letters, digits, '-' or \
         '_', starting with a letter"
    )]
    InvalidAreaName(String),
    #[error("product area name 'tokenmint' is reserved")]
    ReservedArea,
    #[error("product area '{0}' is listed twice")]
    DuplicateArea(String),
    #[error("permission '{0}' is not of the form AREA:read or AREA:write")]
    Malformed(String),
    #[error("permission '{perm}' names an unknown product area; known areas: {known}")]
    UnknownArea { perm: String, known: String },
    #[error("'{0}' is not a tokenmint system scope; known: {known}", known = system_scopes::ALL.join(", "))]
    UnknownSystemScope(String),
}

fn valid_area_name(s: &str) -> bool {
    let b = s.as_bytes();
    !b.is_empty()
        && b.len() <= MAX_AREA_LEN
        && b[0].is_ascii_lowercase()
        && b.iter().all(|&c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == b'-' || c == b'_')
}

/// The configured product areas, validated once at start-up.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ProductAreas(Vec<String>);

impl ProductAreas {
    pub fn parse<S: AsRef<str>>(names: &[S]) -> Result<Self, ScopeError> {
        let mut out: Vec<String> = Vec::with_capacity(names.len());
        for n in names {
            let n = n.as_ref().trim();
            if n == system_scopes::AREA {
                return Err(ScopeError::ReservedArea);
            }
            if !valid_area_name(n) {
                return Err(ScopeError::InvalidAreaName(n.to_owned()));
            }
            if out.iter().any(|a| a == n) {
                return Err(ScopeError::DuplicateArea(n.to_owned()));
            }
            out.push(n.to_owned());
        }
        Ok(Self(out))
    }

    pub fn names(&self) -> &[String] {
        &self.0
    }

    pub fn contains(&self, name: &str) -> bool {
        self.0.iter().any(|a| a == name)
    }

    /// Every scope a credential could be granted, for the discovery document.
    pub fn all_scopes(&self) -> Vec<String> {
        self.0.iter().flat_map(|a| [format!("{a}:read"), format!("{a}:write")]).collect()
    }
}

/// The access level granted on one product area.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum AccessLevel {
    Read,
    Write,
}

impl AccessLevel {
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Read => "read",
            Self::Write => "write",
        }
    }
}

/// A credential's grants: at most one level per product area, plus system scopes.
///
/// Kept normalised (areas sorted, duplicates merged to the highest level) so that two
/// credentials with the same powers compare equal and print the same. The areas are a sorted
/// vector, not a map: a credential has a handful of them, and the credential cache holds one
/// `Permissions` per credential in use, where a map's node would cost ten times the space.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Permissions {
    areas: Vec<(Box<str>, AccessLevel)>,
    system: Vec<&'static str>,
}

impl Permissions {
    /// Parses permissions given by an admin, checking areas against the configuration.
    /// System scopes are accepted only when `allow_system` (the caller is a platform admin).
    pub fn parse<S: AsRef<str>>(
        items: &[S],
        areas: &ProductAreas,
        allow_system: bool,
    ) -> Result<Self, ScopeError> {
        let mut p = Self::default();
        for item in items {
            let item = item.as_ref().trim();
            if item.starts_with("tokenmint:") {
                let known = system_scopes::ALL.iter().find(|s| **s == item);
                match known {
                    Some(s) if allow_system => p.add_system(s),
                    _ => return Err(ScopeError::UnknownSystemScope(item.to_owned())),
                }
                continue;
            }
            let (area, level) = split_permission(item)?;
            if !areas.contains(area) {
                return Err(ScopeError::UnknownArea {
                    perm: item.to_owned(),
                    known: if areas.names().is_empty() {
                        "none configured (start the server with --product-area NAME)".to_owned()
                    } else {
                        areas.names().join(", ")
                    },
                });
            }
            p.grant(area, level);
        }
        p.areas.shrink_to_fit();
        Ok(p)
    }

    /// Parses permissions as stored: no check against the configured areas, so that removing
    /// an area from the configuration never makes stored credentials unreadable.
    pub fn from_stored<S: AsRef<str>>(items: &[S]) -> Self {
        let mut p = Self::default();
        for item in items {
            let item = item.as_ref();
            if let Some(s) = system_scopes::ALL.iter().find(|s| **s == item) {
                p.add_system(s);
            } else if let Ok((area, level)) = split_permission(item) {
                p.grant(area, level);
            }
        }
        p.areas.shrink_to_fit();
        p
    }

    fn add_system(&mut self, s: &'static str) {
        if !self.system.contains(&s) {
            self.system.push(s);
            self.system.sort_unstable();
        }
    }

    fn grant(&mut self, area: &str, level: AccessLevel) {
        match self.areas.binary_search_by(|(a, _)| (**a).cmp(area)) {
            Ok(i) => self.areas[i].1 = self.areas[i].1.max(level),
            Err(i) => self.areas.insert(i, (area.into(), level)),
        }
    }

    pub fn level(&self, area: &str) -> Option<AccessLevel> {
        let i = self.areas.binary_search_by(|(a, _)| (**a).cmp(area)).ok()?;
        Some(self.areas[i].1)
    }

    pub fn has_system(&self, scope: &str) -> bool {
        self.system.contains(&scope)
    }

    pub fn is_platform_admin(&self) -> bool {
        self.has_system(system_scopes::ADMIN)
    }

    pub fn has_system_scopes(&self) -> bool {
        !self.system.is_empty()
    }

    /// The permissions as granted, e.g. `["billing:read", "eligibility:write"]`.
    pub fn to_strings(&self) -> Vec<String> {
        self.areas
            .iter()
            .map(|(a, l)| format!("{a}:{}", l.as_str()))
            .chain(self.system.iter().map(|s| (*s).to_owned()))
            .collect()
    }

    /// The scopes a token may carry: `write` expanded to `read` + `write`.
    pub fn scopes(&self) -> Vec<String> {
        let mut out = Vec::with_capacity(self.areas.len() * 2 + self.system.len());
        for (a, l) in &self.areas {
            out.push(format!("{a}:read"));
            if *l == AccessLevel::Write {
                out.push(format!("{a}:write"));
            }
        }
        out.extend(self.system.iter().map(|s| (*s).to_owned()));
        out
    }

    /// Whether a single scope string is among [`Permissions::scopes`], without allocating.
    pub fn allows_scope(&self, scope: &str) -> bool {
        if scope.starts_with("tokenmint:") {
            return self.system.contains(&scope);
        }
        match split_permission(scope) {
            Ok((area, wanted)) => self.level(area).is_some_and(|have| have >= wanted),
            Err(_) => false,
        }
    }
}

impl fmt::Display for Permissions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_strings().join(" "))
    }
}

fn split_permission(item: &str) -> Result<(&str, AccessLevel), ScopeError> {
    let (area, level) =
        item.rsplit_once(':').ok_or_else(|| ScopeError::Malformed(item.to_owned()))?;
    let level = match level {
        "read" => AccessLevel::Read,
        "write" => AccessLevel::Write,
        _ => return Err(ScopeError::Malformed(item.to_owned())),
    };
    if !valid_area_name(area) {
        return Err(ScopeError::Malformed(item.to_owned()));
    }
    Ok((area, level))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn areas() -> ProductAreas {
        ProductAreas::parse(&["eligibility", "billing"]).unwrap()
    }

    #[test]
    fn write_includes_read_and_scopes_are_normalised() {
        let p = Permissions::parse(
            &["eligibility:write", "billing:read", "billing:read"],
            &areas(),
            false,
        )
        .unwrap();
        assert_eq!(p.to_strings(), ["billing:read", "eligibility:write"]);
        assert_eq!(p.scopes(), ["billing:read", "eligibility:read", "eligibility:write"]);
        assert!(p.allows_scope("eligibility:read"));
        assert!(!p.allows_scope("billing:write"));
        assert!(!p.allows_scope("payroll:read"));
    }

    #[test]
    fn read_and_write_of_one_area_merge_to_write() {
        let p = Permissions::parse(&["billing:write", "billing:read"], &areas(), false).unwrap();
        assert_eq!(p.to_strings(), ["billing:write"]);
    }

    #[test]
    fn unknown_areas_and_malformed_permissions_are_refused_with_guidance() {
        let e = Permissions::parse(&["payroll:read"], &areas(), false).unwrap_err();
        assert!(e.to_string().contains("eligibility, billing"), "{e}");
        assert!(Permissions::parse(&["eligibility"], &areas(), false).is_err());
        assert!(Permissions::parse(&["eligibility:admin"], &areas(), false).is_err());
    }

    #[test]
    fn system_scopes_need_a_platform_admin() {
        assert!(Permissions::parse(&["tokenmint:admin"], &areas(), false).is_err());
        let p = Permissions::parse(&["tokenmint:admin"], &areas(), true).unwrap();
        assert!(p.is_platform_admin());
        assert!(Permissions::parse(&["tokenmint:root"], &areas(), true).is_err());
    }

    #[test]
    fn area_configuration_is_validated() {
        assert_eq!(ProductAreas::parse(&["tokenmint"]), Err(ScopeError::ReservedArea));
        assert!(ProductAreas::parse(&["Eligibility"]).is_err());
        assert!(ProductAreas::parse(&["a", "a"]).is_err());
        assert_eq!(areas().all_scopes().len(), 4);
    }
}

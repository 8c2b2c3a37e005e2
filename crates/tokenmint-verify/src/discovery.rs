//! RFC 8414 discovery: from the issuer URL to its metadata document.

use crate::error::{BuildError, FetchError};
use crate::fetch::get_json;
use http::StatusCode;
use reqwest::Url;
use std::time::Duration;
use tokenmint_proto::metadata::AuthorizationServerMetadata;

/// Checks an issuer identifier (RFC 8414 §2: an `http(s)` URL without query or fragment).
pub(crate) fn parse_issuer(issuer: &str) -> Result<Url, BuildError> {
    let invalid = |reason| BuildError::InvalidIssuer { issuer: issuer.to_owned(), reason };
    let url = Url::parse(issuer).map_err(|_| invalid("not a URL"))?;
    if !matches!(url.scheme(), "https" | "http") {
        return Err(invalid("the scheme must be https (or http for local testing)"));
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err(invalid("an issuer has no query or fragment (RFC 8414 §2)"));
    }
    if url.host_str().is_none() {
        return Err(invalid("the URL has no host"));
    }
    Ok(url)
}

/// The metadata URLs to try, in order.
///
/// RFC 8414 §3.1 inserts the well-known segment between the host and the issuer's path;
/// OpenID Connect Discovery appends `/.well-known/openid-configuration` to the issuer. For an
/// issuer without a path (tokenmint's usual case) the first is simply
/// `{issuer}/.well-known/oauth-authorization-server`.
pub(crate) fn metadata_urls(issuer: &Url) -> Vec<Url> {
    let path = issuer.path().trim_end_matches('/');
    let mut rfc8414 = issuer.clone();
    rfc8414.set_path(&format!("/.well-known/oauth-authorization-server{path}"));
    let mut oidc = issuer.clone();
    oidc.set_path(&format!("{path}/.well-known/openid-configuration"));
    vec![rfc8414, oidc]
}

/// Fetches and checks the metadata of `issuer`.
pub(crate) async fn discover(
    http: &reqwest::Client,
    issuer: &str,
    timeout: Duration,
    max_bytes: usize,
) -> Result<AuthorizationServerMetadata, BuildError> {
    let issuer_url = parse_issuer(issuer)?;
    let urls = metadata_urls(&issuer_url);
    let mut last_error = None;
    for url in urls {
        match get_json::<AuthorizationServerMetadata>(http.get(url.clone()), timeout, max_bytes)
            .await
        {
            Ok(fetched) => {
                let metadata = fetched.body;
                // RFC 8414 §3.3: a metadata document naming another issuer must not be used,
                // or one issuer could vouch for keys in the name of another.
                if metadata.issuer != issuer {
                    return Err(BuildError::IssuerMismatch {
                        expected: issuer.to_owned(),
                        found: metadata.issuer,
                    });
                }
                return Ok(metadata);
            }
            // Only a missing document sends us to the next well-known location; anything
            // else (the server is down, the JSON is wrong) is the answer.
            Err(FetchError::Status(StatusCode::NOT_FOUND)) => {
                last_error = Some((url, FetchError::Status(StatusCode::NOT_FOUND)));
            }
            Err(source) => return Err(BuildError::Discovery { url: url.to_string(), source }),
        }
    }
    let (url, source) = last_error
        .unwrap_or_else(|| (issuer_url.clone(), FetchError::Status(StatusCode::NOT_FOUND)));
    Err(BuildError::Discovery { url: url.to_string(), source })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn urls(issuer: &str) -> Vec<String> {
        let Ok(url) = parse_issuer(issuer) else { return vec![] };
        metadata_urls(&url).into_iter().map(|u| u.to_string()).collect()
    }

    #[test]
    fn metadata_url_of_an_issuer_without_path_is_the_plain_well_known_location() {
        assert_eq!(
            urls("http://127.0.0.1:8080"),
            [
                "http://127.0.0.1:8080/.well-known/oauth-authorization-server",
                "http://127.0.0.1:8080/.well-known/openid-configuration"
            ]
        );
    }

    #[test]
    fn metadata_url_of_an_issuer_with_a_path_inserts_the_well_known_segment() {
        assert_eq!(
            urls("https://auth.example.com/tenant/a"),
            [
                "https://auth.example.com/.well-known/oauth-authorization-server/tenant/a",
                "https://auth.example.com/tenant/a/.well-known/openid-configuration"
            ]
        );
    }

    #[test]
    fn issuers_with_query_fragment_or_other_scheme_are_refused() {
        assert!(parse_issuer("https://a.example/?x=1").is_err());
        assert!(parse_issuer("https://a.example/#f").is_err());
        assert!(parse_issuer("ftp://a.example").is_err());
        assert!(parse_issuer("not a url").is_err());
    }
}

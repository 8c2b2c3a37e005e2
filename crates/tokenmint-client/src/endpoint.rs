//! The token endpoint's wire format: building a client-credentials request in each dialect
//! (RFC 6749 §4.4.2), reading the answer (§5.1, §5.2), and discovering the endpoint (RFC 8414).

use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use reqwest::header::{ACCEPT, AUTHORIZATION, CONTENT_TYPE, HeaderValue};
use reqwest::{StatusCode, Url};
use serde_json::{Map, Value};
use tokenmint_proto::metadata::AuthorizationServerMetadata;

use crate::config::{AuthStyle, TokenParams};
use crate::error::Error;
use crate::error::ErrorKind;
use crate::secret::{AccessToken, Masker, SecretString, encode};
use crate::text::printable;

/// Token and error bodies are small; anything larger is not a token endpoint talking.
const MAX_BODY: usize = 256 * 1024;
/// How much of an unexpected error body is kept for the error message.
const EXCERPT: usize = 200;

/// The pieces of one token request.
pub(crate) struct TokenRequest<'a> {
    pub(crate) url: &'a Url,
    pub(crate) client_id: &'a str,
    pub(crate) secret: &'a SecretString,
    pub(crate) style: AuthStyle,
    pub(crate) send_grant_type: bool,
    pub(crate) params: &'a TokenParams,
    /// `secret` holds a `private_key_jwt` assertion (RFC 7523 §2.2), not a client secret.
    pub(crate) assertion: bool,
}

impl TokenRequest<'_> {
    /// The parameters other than client authentication, in a stable order.
    fn params(&self) -> Vec<(&str, String)> {
        let mut out = Vec::new();
        if self.send_grant_type {
            out.push(("grant_type", "client_credentials".to_owned()));
        }
        if let Some(scope) = self.params.scope_param() {
            out.push(("scope", scope));
        }
        if let Some(audience) = self.params.audience_param() {
            out.push(("audience", audience.to_owned()));
        }
        for resource in self.params.resources() {
            out.push(("resource", resource.clone()));
        }
        for (name, value) in self.params.extra_params() {
            out.push((name, value.to_owned()));
        }
        out
    }

    pub(crate) fn build(
        &self,
        http: &reqwest::Client,
        timeout: Duration,
    ) -> Result<reqwest::RequestBuilder, Error> {
        let builder = http
            .post(self.url.clone())
            .timeout(timeout)
            .header(ACCEPT, HeaderValue::from_static("application/json"));
        let secret = self.secret.expose_secret();
        if self.assertion {
            let auth = [
                ("client_id", self.client_id),
                ("client_assertion_type", crate::assertion::JWT_BEARER),
                ("client_assertion", secret),
            ];
            let params = self.params();
            let pairs = params.iter().map(|(k, v)| (*k, v.as_str())).chain(auth);
            return Ok(if self.style == AuthStyle::Json {
                let body: Map<String, Value> =
                    pairs.map(|(k, v)| (k.to_owned(), Value::String(v.to_owned()))).collect();
                let bytes = serde_json::to_vec(&Value::Object(body))
                    .map_err(|e| Error::Config(format!("cannot encode the JSON body: {e}")))?;
                builder
                    .header(CONTENT_TYPE, HeaderValue::from_static("application/json"))
                    .body(bytes)
            } else {
                builder.form_body(form(pairs))
            });
        }
        Ok(match self.style {
            AuthStyle::Basic => {
                let mut auth = HeaderValue::from_str(&basic_credentials(self.client_id, secret))
                    .map_err(|_| {
                        Error::Config("client id cannot be sent in a header".to_owned())
                    })?;
                // Keeps the credentials out of `Debug` output of the request in hyper/reqwest.
                auth.set_sensitive(true);
                let body = form(self.params().iter().map(|(k, v)| (*k, v.as_str())));
                builder.header(AUTHORIZATION, auth).form_body(body)
            }
            AuthStyle::Post => {
                let params = self.params();
                let body = form(
                    params
                        .iter()
                        .map(|(k, v)| (*k, v.as_str()))
                        .chain([("client_id", self.client_id), ("client_secret", secret)]),
                );
                builder.form_body(body)
            }
            AuthStyle::Json => {
                let mut body = Map::new();
                for (name, value) in self.params() {
                    match (name, body.get_mut(name)) {
                        // RFC 8707 allows several resources; a JSON body carries them as an array.
                        ("resource", Some(Value::Array(items))) => items.push(Value::String(value)),
                        ("resource", Some(first)) => {
                            let first = first.take();
                            body.insert(name.to_owned(), Value::Array(vec![first, value.into()]));
                        }
                        _ => {
                            body.insert(name.to_owned(), Value::String(value));
                        }
                    }
                }
                body.insert("client_id".to_owned(), self.client_id.into());
                body.insert("client_secret".to_owned(), secret.into());
                let bytes = serde_json::to_vec(&Value::Object(body))
                    .map_err(|e| Error::Config(format!("cannot encode the JSON body: {e}")))?;
                builder
                    .header(CONTENT_TYPE, HeaderValue::from_static("application/json"))
                    .body(bytes)
            }
        })
    }
}

trait FormBody {
    fn form_body(self, body: String) -> Self;
}

impl FormBody for reqwest::RequestBuilder {
    fn form_body(self, body: String) -> Self {
        self.header(CONTENT_TYPE, HeaderValue::from_static("application/x-www-form-urlencoded"))
            .body(body)
    }
}

fn form<'a>(pairs: impl IntoIterator<Item = (&'a str, &'a str)>) -> String {
    form_urlencoded::Serializer::new(String::new()).extend_pairs(pairs).finish()
}

/// RFC 6749 §2.3.1: the client id and secret are each encoded with
/// `application/x-www-form-urlencoded` (Appendix B) before they are joined with `:` and
/// base64-encoded as RFC 7617 says. Skipping that step breaks every id or secret containing
/// `:`, `+` or `%`. A space is written `%20` rather than the form encoding's `+`, because
/// servers that percent-decode instead of form-decoding (authlib) read `+` as a plus; see
/// [`encode::basic_half`].
pub(crate) fn basic_credentials(client_id: &str, secret: &str) -> String {
    let id = encode::basic_half(client_id);
    let secret = encode::basic_half(secret);
    format!("Basic {}", STANDARD.encode(format!("{id}:{secret}")))
}

/// A successful token response (RFC 6749 §5.1), read leniently.
#[derive(Clone)]
pub(crate) struct TokenResponse {
    pub(crate) access_token: AccessToken,
    pub(crate) token_type: String,
    pub(crate) expires_in: Option<Duration>,
    pub(crate) scope: Option<String>,
    /// The whole response as received, access token included; never printed by `Debug`.
    pub(crate) raw: Map<String, Value>,
}

/// Reads a 2xx body. The body is never quoted in an error: it may hold a token.
pub(crate) fn parse_token_response(body: &[u8]) -> Result<TokenResponse, Error> {
    if too_large(body) {
        return Err(Error::InvalidResponse(format!(
            "the token response is larger than {MAX_BODY} bytes, which no token response is"
        )));
    }
    let raw = match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(map)) => map,
        Ok(_) => return Err(Error::InvalidResponse("the body is not a JSON object".to_owned())),
        Err(_) => return Err(Error::InvalidResponse("the body is not JSON".to_owned())),
    };
    let access_token = match raw.get("access_token") {
        // RFC 6750 §2.1: a bearer token is a b64token, visible ASCII. One holding a control
        // character, a space or non-ASCII text cannot be sent in a header, and printed it would
        // drive the terminal or split the line a script builds a header from.
        Some(Value::String(token))
            if !token.is_empty() && !token.bytes().all(|b| (0x21..=0x7e).contains(&b)) =>
        {
            return Err(Error::InvalidResponse(
                "the access token cannot be sent in a header (it is not visible ASCII, RFC 6750)"
                    .to_owned(),
            ));
        }
        Some(Value::String(token)) if !token.is_empty() => AccessToken::new(token.clone()),
        Some(_) => {
            return Err(Error::InvalidResponse(
                "access_token is not a non-empty string".to_owned(),
            ));
        }
        None => return Err(Error::InvalidResponse("access_token is missing".to_owned())),
    };
    let token_type = match raw.get("token_type") {
        // RFC 6749 §7.1: a client must not use a token whose type it does not understand, and
        // a DPoP- or MAC-bound token sent as a bearer token fails or, worse, leaks. The type
        // name is case-insensitive (RFC 6749 §5.1).
        Some(Value::String(t)) if t.eq_ignore_ascii_case("bearer") => t.clone(),
        Some(Value::String(t)) => {
            return Err(Error::UnsupportedTokenType(printable(t).chars().take(40).collect()));
        }
        // Some dialects omit it; a client-credentials token is a bearer token (RFC 6750).
        None | Some(Value::Null) => "Bearer".to_owned(),
        Some(_) => return Err(Error::InvalidResponse("token_type is not a string".to_owned())),
    };
    let expires_in = expires_in(raw.get("expires_in"))?;
    let scope = match raw.get("scope") {
        Some(Value::String(s)) => Some(s.clone()),
        _ => None,
    };
    Ok(TokenResponse { access_token, token_type, expires_in, scope, raw })
}

/// `expires_in` is a number in RFC 6749 §5.1, but servers in the wild send a string or nothing;
/// `None` means "not given" and the configured default lifetime applies.
fn expires_in(value: Option<&Value>) -> Result<Option<Duration>, Error> {
    let seconds = match value {
        None | Some(Value::Null) => return Ok(None),
        Some(Value::Number(n)) => n.as_f64(),
        Some(Value::String(s)) if s.trim().is_empty() => return Ok(None),
        Some(Value::String(s)) => s.trim().parse::<f64>().ok(),
        Some(_) => None,
    };
    match seconds {
        Some(s) if s.is_finite() => Ok(Some(Duration::from_secs_f64(s.clamp(0.0, 1e12)))),
        _ => Err(Error::InvalidResponse("expires_in is not a number of seconds".to_owned())),
    }
}

/// Server text as the client relays it: every form of the secret masked first (before anything
/// is cut, so no part of it survives at the cut), then control characters made visible (so it
/// cannot forge a log line or drive a terminal), then cut to `max` characters.
pub(crate) fn relay(text: &str, masker: &Masker, max: usize) -> String {
    let masked = masker.mask(text.trim());
    let safe = printable(&masked);
    let mut chars = safe.chars();
    let mut out: String = chars.by_ref().take(max).collect();
    if chars.next().is_some() {
        out.push('…');
    }
    out
}

/// Turns a non-2xx answer into an error: RFC 6749 §5.2 when the body says so, else the status
/// with a short excerpt. Server text is relayed masked and made printable; see [`relay`].
pub(crate) fn error_from_response(
    status: StatusCode,
    body: &[u8],
    attempts: u32,
    retry_after: Option<Duration>,
    client_id: &str,
    secret: &SecretString,
) -> Error {
    let masker = Masker::new(client_id, secret.expose_secret());
    if let Ok(error) = serde_json::from_slice::<tokenmint_proto::OAuthError>(body) {
        let description = error.error_description.as_deref().map(|d| relay(d, &masker, EXCERPT));
        let error = relay(&error.error, &masker, 80);
        return Error::OAuth { status, error, description, retry_after };
    }
    let text = String::from_utf8_lossy(body);
    let text = relay(&text, &masker, EXCERPT);
    let body = (!text.is_empty()).then_some(text);
    Error::Status { status, attempts, retry_after, body }
}

/// Reads a response body, refusing more than [`MAX_BODY`] bytes: at most one byte more is
/// read, so a body longer than that is told apart ([`too_large`]) from one that is cut there.
pub(crate) async fn read_body(mut response: reqwest::Response) -> Result<Vec<u8>, reqwest::Error> {
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await? {
        let room = (MAX_BODY + 1).saturating_sub(body.len());
        body.extend_from_slice(chunk.get(..room.min(chunk.len())).unwrap_or_default());
        if body.len() > MAX_BODY {
            break;
        }
    }
    Ok(body)
}

/// Whether a body read by [`read_body`] went on past [`MAX_BODY`].
pub(crate) fn too_large(body: &[u8]) -> bool {
    body.len() > MAX_BODY
}

/// The metadata locations to try for `issuer`, in order: RFC 8414 §3.1 inserts the well-known
/// suffix between the host and the issuer's path; OpenID Connect Discovery 1.0 §4 appends it.
pub(crate) fn discovery_urls(issuer: &Url) -> Vec<Url> {
    let path = issuer.path().trim_end_matches('/');
    let mut origin = issuer.clone();
    origin.set_query(None);
    origin.set_fragment(None);
    let mut urls = Vec::with_capacity(2);
    let mut rfc8414 = origin.clone();
    rfc8414.set_path(&format!("/.well-known/oauth-authorization-server{path}"));
    urls.push(rfc8414);
    let mut oidc = origin;
    oidc.set_path(&format!("{path}/.well-known/openid-configuration"));
    urls.push(oidc);
    urls
}

/// Finds the token endpoint of `issuer`.
pub(crate) async fn discover(
    http: &reqwest::Client,
    issuer: &Url,
    timeout: Duration,
) -> Result<(Url, String), Error> {
    let fail = |kind: ErrorKind, reason: String| Error::Discovery {
        issuer: issuer.to_string(),
        reason,
        kind,
    };
    let mut reasons = Vec::new();
    // The kind of the whole failure: an answer of any sort says more than a failed connection.
    let mut kind = ErrorKind::Network;
    for url in discovery_urls(issuer) {
        let response = match http.get(url.clone()).timeout(timeout).send().await {
            Ok(response) => response,
            Err(e) => {
                if e.is_timeout() && kind == ErrorKind::Network {
                    kind = ErrorKind::Timeout;
                }
                reasons.push(format!("{url}: {e}"));
                continue;
            }
        };
        let status = response.status();
        if !status.is_success() {
            if kind != ErrorKind::InvalidResponse {
                kind = ErrorKind::Status;
            }
            reasons.push(format!("{url}: HTTP {status}"));
            continue;
        }
        let body = read_body(response).await.map_err(|e| {
            let kind = if e.is_timeout() { ErrorKind::Timeout } else { ErrorKind::Network };
            fail(kind, format!("{url}: {e}"))
        })?;
        if too_large(&body) {
            kind = ErrorKind::InvalidResponse;
            reasons.push(format!("{url}: the metadata is larger than {MAX_BODY} bytes"));
            continue;
        }
        let meta = match serde_json::from_slice::<AuthorizationServerMetadata>(&body) {
            Ok(meta) => meta,
            Err(e) => {
                kind = ErrorKind::InvalidResponse;
                reasons.push(format!("{url}: not authorization server metadata ({e})"));
                continue;
            }
        };
        let invalid = |reason: String| fail(ErrorKind::InvalidResponse, reason);
        // RFC 8414 §3.3: the metadata must name the issuer it was fetched for, or an attacker
        // controlling one issuer's metadata could point clients at another's endpoint.
        if meta.issuer.trim_end_matches('/') != issuer.as_str().trim_end_matches('/') {
            return Err(invalid(format!("{url} names issuer {:?}", printable(&meta.issuer))));
        }
        let endpoint = meta.token_endpoint.as_str();
        tracing::debug!(%issuer, metadata = %url, token_endpoint = %printable(endpoint), "token endpoint discovered");
        return Url::parse(endpoint)
            .map(|url| (url, meta.issuer.clone()))
            .map_err(|e| invalid(format!("token_endpoint {:?}: {e}", printable(endpoint))));
    }
    Err(fail(kind, reasons.join("; ")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn basic_credentials_are_form_encoded_before_base64() {
        let header = basic_credentials("id:with+plus", "s p%c:é");
        let decoded = STANDARD.decode(header.trim_start_matches("Basic ")).unwrap();
        assert_eq!(String::from_utf8(decoded).unwrap(), "id%3Awith%2Bplus:s%20p%25c%3A%C3%A9");
    }

    #[test]
    fn expires_in_is_read_as_a_number_a_string_or_nothing() {
        let parse = |body: &str| parse_token_response(body.as_bytes()).map(|t| t.expires_in);
        assert_eq!(
            parse(r#"{"access_token":"t","expires_in":600}"#).unwrap(),
            Some(Duration::from_secs(600))
        );
        assert_eq!(
            parse(r#"{"access_token":"t","expires_in":"3600"}"#).unwrap(),
            Some(Duration::from_secs(3600))
        );
        assert_eq!(
            parse(r#"{"access_token":"t","expires_in":1.5}"#).unwrap(),
            Some(Duration::from_millis(1500))
        );
        assert_eq!(parse(r#"{"access_token":"t"}"#).unwrap(), None);
        assert_eq!(parse(r#"{"access_token":"t","expires_in":null}"#).unwrap(), None);
        assert_eq!(parse(r#"{"access_token":"t","expires_in":-5}"#).unwrap(), Some(Duration::ZERO));
        assert!(parse(r#"{"access_token":"t","expires_in":"soon"}"#).is_err());
    }

    #[test]
    fn unusable_token_responses_never_quote_the_body() {
        for body in
            [r#"{"access_token":42,"x":"SECRETTOKEN"}"#, "SECRETTOKEN", r#"["SECRETTOKEN"]"#]
        {
            let err = parse_token_response(body.as_bytes()).err().unwrap();
            assert!(!format!("{err} {err:?}").contains("SECRETTOKEN"));
        }
    }

    #[test]
    fn error_bodies_become_typed_errors_scrubbed_of_the_secret() {
        let secret = SecretString::new("hunter2");
        let body = br#"{"error":"invalid_client","error_description":"bad secret hunter2"}"#;
        let err = error_from_response(StatusCode::UNAUTHORIZED, body, 1, None, "id", &secret);
        assert_eq!(err.oauth_error(), Some("invalid_client"));
        assert!(
            matches!(&err, Error::OAuth { description: Some(d), .. } if d == "bad secret [redacted]")
        );
        let err = error_from_response(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            b"nope",
            1,
            None,
            "id",
            &secret,
        );
        assert!(
            matches!(err, Error::Status { status, body: Some(b), .. } if status == 415 && b == "nope")
        );
    }

    proptest::proptest! {
        /// RFC 6749 §2.3.1 round trip: what a conforming server decodes is what was configured.
        #[test]
        fn basic_credentials_decode_to_the_original_id_and_secret(id in "\\PC*", secret in "\\PC*") {
            let header = basic_credentials(&id, &secret);
            let decoded = String::from_utf8(STANDARD.decode(&header["Basic ".len()..]).unwrap()).unwrap();
            let (enc_id, enc_secret) = decoded.split_once(':').unwrap();
            let decode = |part: &str| -> String {
                form_urlencoded::parse(format!("v={part}").as_bytes()).next().map(|(_, v)| v.into_owned()).unwrap_or_default()
            };
            proptest::prop_assert_eq!(decode(enc_id), id);
            proptest::prop_assert_eq!(decode(enc_secret), secret);
        }

        /// Untrusted bodies never panic the parser, and an error never quotes the body.
        #[test]
        fn token_response_parsing_never_panics_or_quotes_the_body(body in proptest::collection::vec(proptest::num::u8::ANY, 0..200), token in "[A-Za-z0-9]{24}") {
            let _ = parse_token_response(&body);
            let body = format!(r#"{{"access_token":"{token}","expires_in":{{"x":"{token}"}}}}"#);
            let err = parse_token_response(body.as_bytes()).err().unwrap();
            let text = format!("{err} {err:?}");
            proptest::prop_assert!(!text.contains(&token));
        }

        #[test]
        fn expires_in_of_any_number_or_string_never_panics(n in proptest::num::f64::ANY, s in "\\PC*") {
            let _ = expires_in(Some(&serde_json::json!(n)));
            let _ = expires_in(Some(&Value::String(s)));
        }
    }

    #[test]
    fn discovery_urls_follow_rfc_8414_then_openid_connect() {
        let urls = discovery_urls(&Url::parse("https://as.example/tenant/").unwrap());
        assert_eq!(
            urls[0].as_str(),
            "https://as.example/.well-known/oauth-authorization-server/tenant"
        );
        assert_eq!(urls[1].as_str(), "https://as.example/tenant/.well-known/openid-configuration");
        let urls = discovery_urls(&Url::parse("https://as.example").unwrap());
        assert_eq!(urls[0].as_str(), "https://as.example/.well-known/oauth-authorization-server");
        assert_eq!(urls[1].as_str(), "https://as.example/.well-known/openid-configuration");
    }
}

//! Parsing of the parameters that the token, introspection and revocation endpoints receive.
//!
//! The seed providers disagree on almost everything: form or JSON bodies, credentials in the
//! body or in HTTP Basic, `audience` (Auth0 style) or `resource` (RFC 8707), with or without
//! `grant_type`. This module turns any of those into one typed [`EndpointParams`], and turns
//! every malformed input into a [`RequestError`] that names the problem; it never panics (see
//! the property tests) and does no I/O.

use crate::ids::PresentedClientId;
use crate::secret::{ClientSecret, MAX_PRESENTED_SECRET_LEN};
use base64::Engine;
use std::borrow::Cow;
use thiserror::Error;
use tokenmint_proto::OAuthErrorCode;

/// Longest value accepted for any single parameter.
pub const MAX_PARAM_LEN: usize = 4096;
/// Most parameters accepted in one body.
pub const MAX_PARAMS: usize = 32;

/// The body formats the endpoints accept.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyFormat {
    Form,
    Json,
}

/// How the client authenticated.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AuthMethod {
    /// `client_secret_basic`: HTTP Basic (RFC 6749 §2.3.1).
    Basic,
    /// `client_secret_post`: in the form body.
    Post,
    /// Credentials in a JSON body (the Auth0 / Candid / Wealthyhood dialect).
    Json,
    /// `private_key_jwt`: a JWT signed by one of the client's registered keys (RFC 7523 §2.2).
    PrivateKeyJwt,
}

impl AuthMethod {
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Basic => "client_secret_basic",
            Self::Post => "client_secret_post",
            Self::Json => "client_secret_json",
            Self::PrivateKeyJwt => "private_key_jwt",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum RequestError {
    #[error("unsupported content type: send application/x-www-form-urlencoded or application/json")]
    UnsupportedMediaType,
    #[error("{0}")]
    Invalid(Cow<'static, str>),
    #[error("parameter '{0}' is repeated; send each parameter once")]
    DuplicateParameter(String),
    #[error("grant_type is required; send grant_type=client_credentials")]
    MissingGrantType,
    #[error("grant type '{0}' is not supported; this server issues client_credentials tokens only")]
    UnsupportedGrantType(String),
    #[error(
        "the client authenticated in more than one way (HTTP Basic and the request body); \
         use exactly one"
    )]
    MultipleAuthMethods,
    #[error("client authentication is required: send client_id and client_secret, or HTTP Basic")]
    MissingClientAuthentication,
    #[error(
        "a client assertion and a client secret were both sent; authenticate with exactly one \
         (RFC 7521 §4.2: no other client authentication beside client_assertion)"
    )]
    AssertionWithSecret,
    #[error(
        "client_assertion_type must be urn:ietf:params:oauth:client-assertion-type:jwt-bearer, \
         sent together with client_assertion"
    )]
    BadAssertionType,
    #[error(
        "the client_assertion names no client: set its sub (and iss) to the client_id, or send \
         client_id"
    )]
    AssertionWithoutClient,
    #[error(
        "the body looks like JSON but was sent as application/x-www-form-urlencoded (curl -d sends \
         that type unless told otherwise); send the header Content-Type: application/json, or a \
         form body such as grant_type=client_credentials&client_id=..."
    )]
    JsonSentAsForm,
}

impl RequestError {
    pub fn oauth_code(&self) -> OAuthErrorCode {
        match self {
            Self::UnsupportedGrantType(_) => OAuthErrorCode::UnsupportedGrantType,
            Self::MissingClientAuthentication => OAuthErrorCode::InvalidClient,
            _ => OAuthErrorCode::InvalidRequest,
        }
    }
}

/// Classifies a `Content-Type` header value. Parameters such as `charset` are ignored; the
/// comparison is case-insensitive (RFC 9110 §8.3.1).
pub fn body_format(content_type: Option<&str>) -> Result<BodyFormat, RequestError> {
    let ct = content_type.ok_or(RequestError::UnsupportedMediaType)?;
    let essence = ct.split(';').next().unwrap_or("").trim();
    if essence.eq_ignore_ascii_case("application/x-www-form-urlencoded") {
        Ok(BodyFormat::Form)
    } else if essence.eq_ignore_ascii_case("application/json") {
        Ok(BodyFormat::Json)
    } else {
        Err(RequestError::UnsupportedMediaType)
    }
}

/// Every parameter the three client-authenticated endpoints understand. Unknown parameters
/// are ignored, as RFC 6749 §3.2 requires.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct EndpointParams {
    pub grant_type: Option<String>,
    pub client_id: Option<String>,
    pub client_secret: Option<ClientSecret>,
    pub scope: Option<String>,
    pub audience: Option<String>,
    /// RFC 8707 §2: repeatable, each an absolute URI naming one target.
    pub resource: Vec<String>,
    pub token: Option<String>,
    pub token_type_hint: Option<String>,
    pub client_assertion_type: Option<String>,
    pub client_assertion: Option<ClientAssertion>,
}

/// A `private_key_jwt` client assertion as presented. It proves the client's identity to
/// whoever holds it until it expires (or is used), so its `Debug` never shows it.
#[derive(Clone, PartialEq, Eq)]
pub struct ClientAssertion(String);

impl ClientAssertion {
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for ClientAssertion {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ClientAssertion([redacted])")
    }
}

/// How the client proved who it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClientProof {
    Secret(ClientSecret),
    Assertion(ClientAssertion),
}

fn set(
    slot: &mut Option<String>,
    name: &'static str,
    value: Cow<'_, str>,
) -> Result<(), RequestError> {
    if slot.is_some() {
        return Err(RequestError::DuplicateParameter(name.to_owned()));
    }
    if value.len() > MAX_PARAM_LEN {
        return Err(RequestError::Invalid(Cow::Owned(format!(
            "parameter '{name}' is longer than {MAX_PARAM_LEN} bytes"
        ))));
    }
    *slot = Some(value.into_owned());
    Ok(())
}

impl EndpointParams {
    fn assign(&mut self, name: &str, value: Cow<'_, str>) -> Result<(), RequestError> {
        match name {
            "grant_type" => set(&mut self.grant_type, "grant_type", value),
            "client_id" => set(&mut self.client_id, "client_id", value),
            "client_secret" => {
                if self.client_secret.is_some() {
                    return Err(RequestError::DuplicateParameter("client_secret".into()));
                }
                if value.len() > MAX_PRESENTED_SECRET_LEN {
                    return Err(RequestError::Invalid(Cow::Borrowed("client_secret is too long")));
                }
                self.client_secret = Some(ClientSecret::from_presented(value.into_owned()));
                Ok(())
            }
            "scope" => set(&mut self.scope, "scope", value),
            "audience" => set(&mut self.audience, "audience", value),
            "resource" => {
                if self.resource.len() == MAX_PARAMS {
                    return Err(RequestError::Invalid(Cow::Borrowed(
                        "too many resource parameters",
                    )));
                }
                let mut slot = None;
                set(&mut slot, "resource", value)?;
                self.resource.extend(slot);
                Ok(())
            }
            "token" => set(&mut self.token, "token", value),
            "token_type_hint" => set(&mut self.token_type_hint, "token_type_hint", value),
            "client_assertion_type" => {
                set(&mut self.client_assertion_type, "client_assertion_type", value)
            }
            "client_assertion" => {
                let mut slot = None;
                set(&mut slot, "client_assertion", value)?;
                if self.client_assertion.is_some() {
                    return Err(RequestError::DuplicateParameter("client_assertion".into()));
                }
                self.client_assertion = slot.map(ClientAssertion);
                Ok(())
            }
            _ => Ok(()),
        }
    }

    /// Parses an `application/x-www-form-urlencoded` body.
    ///
    /// A JSON object sent with the form type (what `curl -d '{...}'` does) would otherwise parse
    /// as one unknown parameter and end in a baffling "client authentication is required": it is
    /// refused with what to send instead. No parameter name starts with `{`, so nothing valid is
    /// refused.
    pub fn from_form(body: &[u8]) -> Result<Self, RequestError> {
        if body.trim_ascii_start().starts_with(b"{")
            && serde_json::from_slice::<serde::de::IgnoredAny>(body).is_ok()
        {
            return Err(RequestError::JsonSentAsForm);
        }
        let mut p = Self::default();
        let mut count = 0usize;
        for (k, v) in form_urlencoded::parse(body) {
            count += 1;
            if count > MAX_PARAMS {
                return Err(RequestError::Invalid(Cow::Borrowed("too many parameters")));
            }
            p.assign(&k, v)?;
        }
        Ok(p)
    }

    /// Parses an `application/json` body: one object whose known members are strings.
    ///
    /// A member name given twice is refused, as a repeated form parameter is: parsers disagree
    /// on which of the two wins (RFC 8259 §4), so a request that means different things to a
    /// proxy and to tokenmint is no request at all.
    pub fn from_json(body: &[u8]) -> Result<Self, RequestError> {
        use serde::Deserializer as _;
        let mut refusal = None;
        let mut de = serde_json::Deserializer::from_slice(body);
        let members = de
            .deserialize_map(MembersVisitor { refusal: &mut refusal })
            .and_then(|m| de.end().map(|()| m));
        let members = match (members, refusal) {
            (Ok(m), _) => m,
            (Err(_), Some(refusal)) => return Err(refusal),
            (Err(e), None) if e.is_data() => {
                return Err(RequestError::Invalid(Cow::Borrowed(
                    "the JSON body must be an object",
                )));
            }
            (Err(_), None) => {
                return Err(RequestError::Invalid(Cow::Borrowed("the body is not valid JSON")));
            }
        };
        let mut p = Self::default();
        for (k, v) in members {
            match v {
                serde_json::Value::String(s) => p.assign(&k, Cow::Owned(s))?,
                serde_json::Value::Null => {}
                // RFC 8707's repeated parameter, as a JSON body can say it.
                serde_json::Value::Array(items) if k == "resource" => {
                    for item in items {
                        let serde_json::Value::String(s) = item else {
                            return Err(RequestError::Invalid(Cow::Borrowed(
                                "parameter 'resource' must be a JSON string or an array of strings",
                            )));
                        };
                        p.assign(&k, Cow::Owned(s))?;
                    }
                }
                _ if is_known(&k) => {
                    return Err(RequestError::Invalid(Cow::Owned(format!(
                        "parameter '{k}' must be a JSON string"
                    ))));
                }
                _ => {}
            }
        }
        Ok(p)
    }

    pub fn parse(format: BodyFormat, body: &[u8]) -> Result<Self, RequestError> {
        match format {
            BodyFormat::Form => Self::from_form(body),
            BodyFormat::Json => Self::from_json(body),
        }
    }
}

/// The members of a JSON object in order, refusing a repeated name and more than
/// [`MAX_PARAMS`] members while reading (`serde_json::Value` would keep the last of two). Why
/// it refused goes to `refusal`; serde's error only stops the parse.
struct MembersVisitor<'r> {
    refusal: &'r mut Option<RequestError>,
}

impl<'de> serde::de::Visitor<'de> for MembersVisitor<'_> {
    type Value = Vec<(String, serde_json::Value)>;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a JSON object")
    }

    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        use serde::de::Error as _;
        let mut members: Vec<(String, serde_json::Value)> = Vec::new();
        while let Some(name) = map.next_key::<String>()? {
            if members.len() == MAX_PARAMS {
                *self.refusal = Some(RequestError::Invalid(Cow::Borrowed("too many parameters")));
                return Err(A::Error::custom("refused"));
            }
            if members.iter().any(|(n, _)| *n == name) {
                // Shown as the form parser would: cut short, without control characters.
                let shown = crate::ids::echoed(&name, 64);
                *self.refusal = Some(RequestError::DuplicateParameter(shown));
                return Err(A::Error::custom("refused"));
            }
            let value = map.next_value::<serde_json::Value>()?;
            members.push((name, value));
        }
        Ok(members)
    }
}

fn is_known(k: &str) -> bool {
    matches!(
        k,
        "grant_type"
            | "client_id"
            | "client_secret"
            | "scope"
            | "audience"
            | "resource"
            | "token"
            | "token_type_hint"
            | "client_assertion_type"
            | "client_assertion"
    )
}

/// Credentials taken from an `Authorization: Basic` header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BasicCredentials {
    pub client_id: String,
    pub client_secret: ClientSecret,
}

/// Parses an `Authorization` header value if it uses the Basic scheme.
///
/// Returns `Ok(None)` for other schemes. Per RFC 6749 §2.3.1 the id and secret are
/// form-url-encoded before being joined with `:`, so they are decoded after the split.
pub fn parse_basic(header: &[u8]) -> Result<Option<BasicCredentials>, RequestError> {
    let header = std::str::from_utf8(header).map_err(|_| {
        RequestError::Invalid(Cow::Borrowed("the Authorization header is not valid text"))
    })?;
    let Some((scheme, rest)) = header.trim().split_once(' ') else {
        return Ok(None);
    };
    if !scheme.eq_ignore_ascii_case("basic") {
        return Ok(None);
    }
    let bad = || RequestError::Invalid(Cow::Borrowed("the Basic credentials are malformed"));
    let rest = rest.trim();
    if rest.len() > 2 * MAX_PARAM_LEN {
        return Err(bad());
    }
    let decoded = base64::engine::general_purpose::STANDARD.decode(rest).map_err(|_| bad())?;
    let decoded = String::from_utf8(decoded).map_err(|_| bad())?;
    let (id, secret) = decoded.split_once(':').ok_or_else(bad)?;
    let id = form_decode(id);
    let secret = form_decode(secret);
    if id.is_empty() || secret.len() > MAX_PRESENTED_SECRET_LEN {
        return Err(bad());
    }
    Ok(Some(BasicCredentials {
        client_id: id.into_owned(),
        client_secret: ClientSecret::from_presented(secret.into_owned()),
    }))
}

fn form_decode(s: &str) -> Cow<'_, str> {
    if !s.contains(['%', '+']) {
        return Cow::Borrowed(s);
    }
    // `parse` decodes a `key` with no `=` as a name with an empty value: exactly one pair.
    form_urlencoded::parse(s.as_bytes())
        .next()
        .map(|(k, _)| Cow::Owned(k.into_owned()))
        .unwrap_or(Cow::Borrowed(""))
}

/// The client's claimed identity and its secret, however they were sent. The id is parsed here,
/// once: everything downstream (lookup, brute-force counting, audit, alerts, logs) takes the
/// typed value, which can carry no control character however it was sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientAuthentication {
    pub client_id: PresentedClientId,
    pub proof: ClientProof,
    pub method: AuthMethod,
}

/// Decides which credentials authenticate the request (RFC 6749 §2.3: exactly one method).
pub fn client_authentication(
    params: &mut EndpointParams,
    basic: Option<BasicCredentials>,
    format: BodyFormat,
) -> Result<ClientAuthentication, RequestError> {
    if params.client_assertion.is_some() || params.client_assertion_type.is_some() {
        return assertion_authentication(params, basic.is_some());
    }
    match basic {
        Some(b) => {
            if params.client_secret.is_some() {
                return Err(RequestError::MultipleAuthMethods);
            }
            // A body client_id alongside Basic is tolerated when it names the same client.
            if let Some(id) = &params.client_id
                && *id != b.client_id
            {
                return Err(RequestError::MultipleAuthMethods);
            }
            Ok(ClientAuthentication {
                client_id: PresentedClientId::parse(&b.client_id),
                proof: ClientProof::Secret(b.client_secret),
                method: AuthMethod::Basic,
            })
        }
        None => match (params.client_id.take(), params.client_secret.take()) {
            (Some(client_id), Some(client_secret)) => Ok(ClientAuthentication {
                client_id: PresentedClientId::parse(&client_id),
                proof: ClientProof::Secret(client_secret),
                method: match format {
                    BodyFormat::Form => AuthMethod::Post,
                    BodyFormat::Json => AuthMethod::Json,
                },
            }),
            _ => Err(RequestError::MissingClientAuthentication),
        },
    }
}

/// `private_key_jwt` (RFC 7523 §2.2, RFC 7521 §4.2): the assertion alone authenticates, so a
/// secret beside it is refused; `client_id` is optional, and taken from the assertion's `sub`
/// (else `iss`) when absent. That claim is read unverified, only to find whose keys to check the
/// signature with; the check then requires `iss` = `sub` = that client_id.
fn assertion_authentication(
    params: &mut EndpointParams,
    basic: bool,
) -> Result<ClientAuthentication, RequestError> {
    if basic || params.client_secret.is_some() {
        return Err(RequestError::AssertionWithSecret);
    }
    let (Some(kind), Some(assertion)) =
        (params.client_assertion_type.take(), params.client_assertion.take())
    else {
        return Err(RequestError::BadAssertionType);
    };
    if kind != crate::assertion::JWT_BEARER {
        return Err(RequestError::BadAssertionType);
    }
    let client_id = match params.client_id.take() {
        Some(id) => id,
        None => crate::assertion::claimed_client(assertion.expose())
            .ok_or(RequestError::AssertionWithoutClient)?,
    };
    Ok(ClientAuthentication {
        client_id: PresentedClientId::parse(&client_id),
        proof: ClientProof::Assertion(assertion),
        method: AuthMethod::PrivateKeyJwt,
    })
}

/// A checked client-credentials request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenRequest {
    pub auth: ClientAuthentication,
    pub scope: Option<String>,
    /// The targets asked for: `audience` (Auth0's dialect, one) or `resource` (RFC 8707,
    /// repeatable), in the order sent, without repeats; empty when neither was sent.
    pub audiences: Vec<String>,
}

/// Validates the parameters of a token request.
pub fn token_request(
    mut params: EndpointParams,
    basic: Option<BasicCredentials>,
    format: BodyFormat,
    allow_missing_grant_type: bool,
) -> Result<TokenRequest, RequestError> {
    match params.grant_type.as_deref() {
        Some("client_credentials") => {}
        Some("") | None if !allow_missing_grant_type => return Err(RequestError::MissingGrantType),
        Some("") | None => {}
        Some(other) => {
            let shown = crate::ids::echoed(other, 64);
            return Err(RequestError::UnsupportedGrantType(shown));
        }
    }
    // Both dialects at once are taken only when they say the same thing (some SDKs send
    // both): guessing whether a different pair means "both" or "either" would issue a token
    // for targets the client may not have meant.
    let mut requested = std::mem::take(&mut params.resource);
    match params.audience.take() {
        Some(a) if requested.is_empty() => requested.push(a),
        Some(a) if requested.iter().any(|r| *r != a) => {
            return Err(RequestError::Invalid(Cow::Borrowed(
                "audience and resource name different targets; send either audience (one \
                 target) or resource (repeatable, one target each)",
            )));
        }
        _ => {}
    }
    let mut audiences: Vec<String> = Vec::with_capacity(requested.len());
    for r in requested {
        if !audiences.contains(&r) {
            audiences.push(r);
        }
    }
    let scope = params.scope.take().filter(|s| !s.trim().is_empty());
    let auth = client_authentication(&mut params, basic, format)?;
    Ok(TokenRequest { auth, scope, audiences })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn basic(id: &str, secret: &str) -> Vec<u8> {
        let enc = |s: &str| form_urlencoded::byte_serialize(s.as_bytes()).collect::<String>();
        let raw = format!("{}:{}", enc(id), enc(secret));
        format!("Basic {}", base64::engine::general_purpose::STANDARD.encode(raw)).into_bytes()
    }

    #[test]
    fn content_types_are_matched_on_their_essence() {
        assert_eq!(body_format(Some("application/json; charset=utf-8")), Ok(BodyFormat::Json));
        assert_eq!(body_format(Some("Application/X-WWW-Form-Urlencoded")), Ok(BodyFormat::Form));
        assert_eq!(body_format(Some("text/plain")), Err(RequestError::UnsupportedMediaType));
        assert_eq!(body_format(None), Err(RequestError::UnsupportedMediaType));
    }

    #[test]
    fn form_bodies_with_body_credentials_parse_as_client_secret_post() {
        let p = EndpointParams::from_form(
            b"grant_type=client_credentials&client_id=abc&client_secret=s%2Bx&scope=a:read&x=1",
        )
        .unwrap();
        let r = token_request(p, None, BodyFormat::Form, false).unwrap();
        assert_eq!(r.auth.client_id.as_str(), "abc");
        assert!(matches!(&r.auth.proof, ClientProof::Secret(s) if s.expose() == "s+x"));
        assert_eq!(r.auth.method, AuthMethod::Post);
        assert_eq!(r.scope.as_deref(), Some("a:read"));
    }

    #[test]
    fn json_bodies_take_audience_and_refuse_non_string_members() {
        let p = EndpointParams::from_json(
            br#"{"grant_type":"client_credentials","client_id":"abc","client_secret":"s","audience":"https://api"}"#,
        )
        .unwrap();
        let r = token_request(p, None, BodyFormat::Json, false).unwrap();
        assert_eq!(r.audiences, ["https://api"]);
        assert_eq!(r.auth.method, AuthMethod::Json);
        assert!(EndpointParams::from_json(br#"{"client_id":5}"#).is_err());
        assert!(EndpointParams::from_json(br#"["client_id"]"#).is_err());
        assert!(EndpointParams::from_json(br#"{"other":{"deep":[1,2]}}"#).is_ok());
    }

    #[test]
    fn assertions_authenticate_alone_and_name_their_client() {
        use base64::engine::general_purpose::URL_SAFE_NO_PAD as B;
        let payload = B.encode(br#"{"sub":"tmc_abc","iss":"tmc_abc"}"#);
        let jwt = format!("eyJhbGciOiJFUzI1NiJ9.{payload}.c2ln");
        let body = format!(
            "grant_type=client_credentials&client_assertion_type={}&client_assertion={jwt}",
            crate::assertion::JWT_BEARER
        );
        let r = token_request(
            EndpointParams::from_form(body.as_bytes()).unwrap(),
            None,
            BodyFormat::Form,
            false,
        )
        .unwrap();
        assert_eq!(r.auth.client_id.as_str(), "tmc_abc");
        assert_eq!(r.auth.method, AuthMethod::PrivateKeyJwt);
        assert!(!format!("{r:?}").contains(&payload));
        let with_secret = format!("{body}&client_id=tmc_abc&client_secret=x");
        let e = token_request(
            EndpointParams::from_form(with_secret.as_bytes()).unwrap(),
            None,
            BodyFormat::Form,
            false,
        )
        .unwrap_err();
        assert_eq!(e, RequestError::AssertionWithSecret);
        let with_basic = parse_basic(&basic("tmc_abc", "x")).unwrap();
        let e = token_request(
            EndpointParams::from_form(body.as_bytes()).unwrap(),
            with_basic,
            BodyFormat::Form,
            false,
        )
        .unwrap_err();
        assert_eq!(e, RequestError::AssertionWithSecret);
        let wrong_type = body.replace("jwt-bearer", "saml2-bearer");
        let e = token_request(
            EndpointParams::from_form(wrong_type.as_bytes()).unwrap(),
            None,
            BodyFormat::Form,
            false,
        )
        .unwrap_err();
        assert_eq!(e, RequestError::BadAssertionType);
    }

    #[test]
    fn repeated_parameters_are_refused() {
        let e = EndpointParams::from_form(b"client_id=a&client_id=b").unwrap_err();
        assert_eq!(e, RequestError::DuplicateParameter("client_id".into()));
    }

    #[test]
    fn repeated_json_members_are_refused_and_named() {
        for body in [
            &br#"{"client_id":"a","client_id":"b"}"#[..],
            br#"{"client_id":"a","client_secret":"s","client_id":"a"}"#,
            br#"{"client_id":null,"client_id":"b"}"#,
        ] {
            let e = EndpointParams::from_json(body).unwrap_err();
            assert_eq!(e, RequestError::DuplicateParameter("client_id".into()));
            assert_eq!(e.oauth_code(), OAuthErrorCode::InvalidRequest);
        }
        let e = EndpointParams::from_json(br#"{"x-extra":1,"x-extra":2}"#).unwrap_err();
        assert_eq!(e, RequestError::DuplicateParameter("x-extra".into()));
        // Nested objects are an unknown member's business.
        assert!(EndpointParams::from_json(br#"{"other":{"a":1,"a":2},"client_id":"a"}"#).is_ok());
        assert_eq!(
            EndpointParams::from_json(b"[1]").unwrap_err(),
            RequestError::Invalid(Cow::Borrowed("the JSON body must be an object"))
        );
        assert_eq!(
            EndpointParams::from_json(br#"{"a":1} x"#).unwrap_err(),
            RequestError::Invalid(Cow::Borrowed("the body is not valid JSON"))
        );
    }

    #[test]
    fn grant_type_rules_follow_the_dialect() {
        let p = || EndpointParams::from_form(b"client_id=a&client_secret=b").unwrap();
        assert_eq!(
            token_request(p(), None, BodyFormat::Form, false).unwrap_err(),
            RequestError::MissingGrantType
        );
        assert!(token_request(p(), None, BodyFormat::Form, true).is_ok());
        let pw =
            EndpointParams::from_form(b"grant_type=password&client_id=a&client_secret=b").unwrap();
        let e = token_request(pw, None, BodyFormat::Form, true).unwrap_err();
        assert_eq!(e.oauth_code(), OAuthErrorCode::UnsupportedGrantType);
    }

    #[test]
    fn basic_credentials_are_form_decoded_per_rfc_6749() {
        let b = parse_basic(&basic("id:with colon", "p+ss%word")).unwrap().unwrap();
        assert_eq!(b.client_id, "id:with colon");
        assert_eq!(b.client_secret.expose(), "p+ss%word");
        assert_eq!(parse_basic(b"Bearer abc").unwrap(), None);
        assert!(parse_basic(b"Basic !!!").is_err());
    }

    #[test]
    fn basic_and_body_secret_together_are_invalid_request() {
        let p =
            EndpointParams::from_form(b"grant_type=client_credentials&client_secret=x").unwrap();
        let b = parse_basic(&basic("a", "b")).unwrap();
        assert_eq!(
            token_request(p, b, BodyFormat::Form, false).unwrap_err(),
            RequestError::MultipleAuthMethods
        );
    }

    #[test]
    fn missing_credentials_are_invalid_client() {
        let p = EndpointParams::from_form(b"grant_type=client_credentials&client_id=a").unwrap();
        let e = token_request(p, None, BodyFormat::Form, false).unwrap_err();
        assert_eq!(e.oauth_code(), OAuthErrorCode::InvalidClient);
    }

    #[test]
    fn audience_and_resource_must_agree() {
        let p = EndpointParams::from_form(
            b"grant_type=client_credentials&client_id=a&client_secret=b&audience=x&resource=y",
        )
        .unwrap();
        assert!(token_request(p, None, BodyFormat::Form, false).is_err());
        let p = EndpointParams::from_form(
            b"grant_type=client_credentials&client_id=a&client_secret=b&audience=x&resource=x&resource=y",
        )
        .unwrap();
        assert!(token_request(p, None, BodyFormat::Form, false).is_err());
        let p = EndpointParams::from_form(
            b"grant_type=client_credentials&client_id=a&client_secret=b&audience=x&resource=x",
        )
        .unwrap();
        assert_eq!(token_request(p, None, BodyFormat::Form, false).unwrap().audiences, ["x"]);
    }

    #[test]
    fn resource_repeats_in_forms_and_arrays_in_json_in_order_without_repeats() {
        let p = EndpointParams::from_form(
            b"grant_type=client_credentials&client_id=a&client_secret=b&resource=y&resource=x&resource=y",
        )
        .unwrap();
        assert_eq!(token_request(p, None, BodyFormat::Form, false).unwrap().audiences, ["y", "x"]);
        let p = EndpointParams::from_json(
            br#"{"grant_type":"client_credentials","client_id":"a","client_secret":"b","resource":["y","x"]}"#,
        )
        .unwrap();
        assert_eq!(token_request(p, None, BodyFormat::Json, false).unwrap().audiences, ["y", "x"]);
        assert!(EndpointParams::from_json(br#"{"resource":["y",1]}"#).is_err());
        let many: Vec<String> = (0..=MAX_PARAMS).map(|i| format!("\"r{i}\"")).collect();
        let body = format!("{{\"resource\":[{}]}}", many.join(","));
        assert!(EndpointParams::from_json(body.as_bytes()).is_err());
    }

    #[test]
    fn json_sent_as_a_form_is_refused_with_what_to_send() {
        for body in [
            &br#"{"grant_type":"client_credentials","client_id":"a","client_secret":"b"}"#[..],
            b"  {\"client_id\":\"a\"}\n",
            b"{}",
        ] {
            let e = EndpointParams::from_form(body).unwrap_err();
            assert_eq!(e, RequestError::JsonSentAsForm);
            assert_eq!(e.oauth_code(), OAuthErrorCode::InvalidRequest);
            assert!(e.to_string().contains("Content-Type: application/json"));
        }
        // A form body that merely contains braces is still a form.
        assert!(EndpointParams::from_form(b"scope=%7Bx%7D&client_id=a").is_ok());
        assert!(EndpointParams::from_form(b"{not json=1").is_ok());
    }

    proptest! {
        #[test]
        fn form_parsing_never_panics(body in proptest::collection::vec(any::<u8>(), 0..512)) {
            if let Ok(p) = EndpointParams::from_form(&body) {
                let _ = token_request(p, None, BodyFormat::Form, true);
            }
        }

        #[test]
        fn json_parsing_never_panics(body in proptest::collection::vec(any::<u8>(), 0..512)) {
            let _ = EndpointParams::from_json(&body);
        }

        #[test]
        fn json_shaped_input_never_panics(s in r#"\{("[a-z_]{1,14}":("[ -~]{0,20}"|[0-9]{1,3}|null|\[\]|\{\}),?){0,6}\}"#) {
            if let Ok(p) = EndpointParams::from_json(s.as_bytes()) {
                let _ = token_request(p, None, BodyFormat::Json, false);
            }
        }

        #[test]
        fn basic_header_parsing_never_panics(h in proptest::collection::vec(any::<u8>(), 0..256)) {
            let _ = parse_basic(&h);
            let mut with_scheme = b"Basic ".to_vec();
            with_scheme.extend_from_slice(&h);
            let _ = parse_basic(&with_scheme);
        }

        #[test]
        fn basic_round_trips_any_printable_credentials(id in "[ -~]{1,40}", secret in "[ -~]{0,60}") {
            let b = parse_basic(&basic(&id, &secret)).unwrap().unwrap();
            prop_assert_eq!(b.client_id, id);
            prop_assert_eq!(b.client_secret.expose(), secret.as_str());
        }

        /// Any object with a repeated member name is refused with that name, whichever values
        /// and other members surround it; the same object without the repetition is not.
        #[test]
        fn any_repeated_json_member_is_refused_by_name(
            names in proptest::collection::vec(
                prop_oneof![
                    Just("grant_type".to_owned()), Just("client_id".to_owned()),
                    Just("client_secret".to_owned()), Just("scope".to_owned()),
                    Just("audience".to_owned()), "[a-z_]{1,10}",
                ],
                1..8,
            ),
            repeat in any::<proptest::sample::Index>(),
            at in any::<proptest::sample::Index>(),
            value in prop_oneof![Just("null".to_owned()), "\"[a-z]{0,8}\"", Just("1".to_owned())],
        ) {
            let mut unique = names.clone();
            unique.sort();
            unique.dedup();
            let object = |list: &[String]| {
                let members: Vec<String> = list.iter().map(|n| format!("\"{n}\":{value}")).collect();
                format!("{{{}}}", members.join(","))
            };
            let ok = EndpointParams::from_json(object(&unique).as_bytes());
            prop_assert!(!matches!(ok, Err(RequestError::DuplicateParameter(_))));
            let dup = unique[repeat.index(unique.len())].clone();
            let mut with_dup = unique.clone();
            with_dup.insert(at.index(with_dup.len() + 1), dup.clone());
            let e = EndpointParams::from_json(object(&with_dup).as_bytes());
            prop_assert_eq!(e, Err(RequestError::DuplicateParameter(dup)));
        }

        #[test]
        fn content_type_classification_never_panics(ct in "[ -~]{0,80}") {
            let _ = body_format(Some(&ct));
        }
    }
}

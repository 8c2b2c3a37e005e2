//! Portal sessions and form protection.
//!
//! The browser holds a random 256-bit session id in a cookie that is `HttpOnly` (no script can
//! read it), `SameSite=Strict` (no other site can make the browser send it), and `Secure` when
//! the issuer is HTTPS. The database holds only its SHA-256, so a leaked database cannot be
//! replayed as a session. Sessions end at sign-out, when their user is deactivated, or after
//! [`SESSION_LIFETIME_SECS`], measured on the server's clock.
//!
//! Every POST is checked twice against cross-site request forgery: the `Origin` header (when
//! the browser sends one, which all current browsers do for POST) must be this server, and the
//! form must carry the session's CSRF secret (synchronizer token), compared in constant time.
//! The sign-in form, which has no session yet, uses a short-lived cookie with the same value as
//! its hidden field instead (double submit).

use super::PortalError;
use crate::state::AppState;
use crate::users::actor_for;
use axum::extract::{Form, FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{HeaderMap, header};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use std::fmt;
use tokenmint_core::crypto::{constant_time_eq, fill_random, sha256};
use tokenmint_store::{PortalSession, PortalUser, UserStatus};

use crate::service::Actor;

pub const SESSION_COOKIE: &str = "tm_session";
pub const SIGN_IN_COOKIE: &str = "tm_signin";
/// Sessions last a working day.
pub const SESSION_LIFETIME_SECS: i64 = 8 * 3600;

/// 32 random bytes, base64url without padding.
pub fn random_token() -> String {
    let mut bytes = [0u8; 32];
    fill_random(&mut bytes);
    URL_SAFE_NO_PAD.encode(bytes)
}

pub fn hash_session_id(id: &str) -> String {
    sha256(id.as_bytes()).iter().map(|b| format!("{b:02x}")).collect()
}

/// Whether cookies must be `Secure`: when the server is reached over HTTPS.
pub fn secure_cookies(state: &AppState) -> bool {
    state.issuer.starts_with("https://")
}

/// A `Set-Cookie` value for a portal cookie.
pub fn cookie(state: &AppState, name: &str, value: &str, max_age: i64) -> String {
    let secure = if secure_cookies(state) { "; Secure" } else { "" };
    format!("{name}={value}; Path=/portal; HttpOnly; SameSite=Strict; Max-Age={max_age}{secure}")
}

/// The value of one cookie of the request.
pub fn read_cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}

/// The origin (`scheme://host[:port]`) of a URL.
fn origin_of(url: &str) -> &str {
    let after_scheme = url.find("://").map_or(0, |i| i + 3);
    match url[after_scheme..].find('/') {
        Some(i) => &url[..after_scheme + i],
        None => url,
    }
}

/// Whether a state-changing request comes from this server's own pages.
///
/// The `Origin` header names the page that sent the form. It must be the issuer's origin, or
/// the origin the browser itself addressed (its `Host`), which an attacker's page cannot
/// choose. Without `Origin`, a `Referer` is checked the same way; with neither (old clients,
/// tests), the CSRF token alone decides.
pub fn same_origin(state: &AppState, headers: &HeaderMap) -> bool {
    let claimed =
        headers.get(header::ORIGIN).and_then(|v| v.to_str().ok()).map(str::to_owned).or_else(
            || {
                headers
                    .get(header::REFERER)
                    .and_then(|v| v.to_str().ok())
                    .map(|r| origin_of(r).to_owned())
            },
        );
    let Some(claimed) = claimed else { return true };
    if claimed.eq_ignore_ascii_case(origin_of(&state.issuer)) {
        return true;
    }
    let scheme = if secure_cookies(state) { "https" } else { "http" };
    headers
        .get(header::HOST)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|host| claimed.eq_ignore_ascii_case(&format!("{scheme}://{host}")))
}

pub fn tokens_match(expected: &str, given: &str) -> bool {
    !expected.is_empty() && constant_time_eq(expected.as_bytes(), given.as_bytes())
}

/// A signed-in user and their session.
#[derive(Clone)]
pub struct SignedIn {
    pub user: PortalUser,
    pub session: PortalSession,
    pub actor: Actor,
}

impl fmt::Debug for SignedIn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SignedIn").field("user", &self.user).finish_non_exhaustive()
    }
}

impl SignedIn {
    /// Whether the policy lets this user do `action` to `target`: for deciding which forms a
    /// page shows. The operation behind each form asks again.
    pub fn may(&self, action: crate::service::Action, target: &crate::service::Target<'_>) -> bool {
        crate::service::policy::may(&self.actor, action, target).is_ok()
    }

    /// The page's viewer working in `org` with `org_query` its `?org=` suffix (see
    /// [`super::pages::org_query`]).
    pub fn viewer<'a>(&'a self, org: &'a str, org_query: &'a str) -> super::html::Viewer<'a> {
        super::html::Viewer {
            email: &self.user.email,
            org,
            org_query,
            role: self.user.role.as_str(),
            csrf: &self.session.csrf_secret,
        }
    }
}

/// Loads the session named by the request's cookie, if it is live and its user active.
pub async fn current(
    state: &AppState,
    headers: &HeaderMap,
) -> Result<Option<SignedIn>, PortalError> {
    let Some(id) = read_cookie(headers, SESSION_COOKIE) else { return Ok(None) };
    if id.is_empty() || id.len() > 128 {
        return Ok(None);
    }
    let now = state.now();
    let Some(session) = state.store.get_session(&hash_session_id(id), now).await? else {
        return Ok(None);
    };
    let Some(user) = state.store.get_user(&session.user_id).await? else { return Ok(None) };
    if user.status != UserStatus::Active {
        return Ok(None);
    }
    let actor = actor_for(&user);
    Ok(Some(SignedIn { user, session, actor }))
}

impl FromRequestParts<AppState> for SignedIn {
    type Rejection = PortalError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        // A page asked for while signed out is where the sign-in goes on to; a form (any other
        // method) is not sent again, so its page is not remembered.
        let next = (parts.method == axum::http::Method::GET)
            .then(|| parts.uri.path_and_query().map(|p| p.as_str().to_owned()))
            .flatten();
        current(state, &parts.headers).await?.ok_or(PortalError::SignedOut { next })
    }
}

/// A page's query, read as `T`. One that cannot be read (a parameter repeated or malformed) is
/// answered with a portal page saying so, not the framework's plain-text 400.
#[derive(Debug)]
pub struct PageQuery<T>(pub T);

impl<T> FromRequestParts<AppState> for PageQuery<T>
where
    T: serde::de::DeserializeOwned + Send,
{
    type Rejection = PortalError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        match axum::extract::Query::<T>::from_request_parts(parts, state).await {
            Ok(axum::extract::Query(query)) => Ok(Self(query)),
            Err(_) => Err(PortalError::BadRequest(
                "this page's address could not be read (a parameter is repeated or malformed): \
                 open the page again from the navigation"
                    .into(),
            )),
        }
    }
}

/// A form posted by a signed-in user, with its origin and CSRF token verified.
#[derive(Debug)]
pub struct Posted {
    pub who: SignedIn,
    pub fields: Fields,
    /// The address the form came from, for throttling what guesses a secret.
    pub ip: Option<std::net::IpAddr>,
}

/// The fields of a submitted form, in order.
#[derive(Default)]
pub struct Fields(pub Vec<(String, String)>);

/// Field values can be secrets (passwords): never printed.
impl fmt::Debug for Fields {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.0.iter().map(|(k, _)| k)).finish()
    }
}

impl Fields {
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
    }

    pub fn text(&self, name: &str) -> String {
        self.get(name).unwrap_or("").to_owned()
    }
}

/// Reads a urlencoded form body.
pub async fn read_form(req: Request, state: &AppState) -> Result<Fields, PortalError> {
    // Read within the admin API's limit first (413 naming it), then parsed as a form.
    let (parts, body) = req.into_parts();
    let (method, headers) = (parts.method.clone(), parts.headers.clone());
    let bytes = crate::extract::json::read_body(Request::from_parts(parts, body)).await.map_err(
        |e| match e {
            crate::error::ApiError::PayloadTooLarge(_) => PortalError::Api(e),
            _ => PortalError::BadRequest("the form could not be read".into()),
        },
    )?;
    let mut req = Request::new(axum::body::Body::from(bytes));
    *req.method_mut() = method;
    *req.headers_mut() = headers;
    let Form(pairs) = Form::<Vec<(String, String)>>::from_request(req, state)
        .await
        .map_err(|_| PortalError::BadRequest("the form could not be read".into()))?;
    // No portal form repeats a field: one that is repeated means different things depending on
    // which copy a reader takes (the first, the last), so it is refused, as the token endpoint
    // and the admin API refuse a repeated parameter or key.
    for (i, (name, _)) in pairs.iter().enumerate() {
        if pairs[..i].iter().any(|(earlier, _)| earlier == name) {
            let shown: String = name.chars().filter(|c| !c.is_control()).take(64).collect();
            return Err(PortalError::BadRequest(format!(
                "the form gives the field '{shown}' more than once; send each field once"
            )));
        }
    }
    Ok(Fields(pairs))
}

/// A form posted by someone not signed in (sign-in, redeeming a reset code): it must come
/// from the portal's own origin and carry the CSRF token of the sign-in cookie.
pub async fn read_signed_out_form(req: Request, state: &AppState) -> Result<Fields, PortalError> {
    if !same_origin(state, req.headers()) {
        return Err(PortalError::Csrf);
    }
    let expected = read_cookie(req.headers(), SIGN_IN_COOKIE).unwrap_or("").to_owned();
    let fields = read_form(req, state).await?;
    if !tokens_match(&expected, fields.get("csrf").unwrap_or("")) {
        return Err(PortalError::Csrf);
    }
    Ok(fields)
}

impl FromRequest<AppState> for Posted {
    type Rejection = PortalError;

    async fn from_request(req: Request, state: &AppState) -> Result<Self, Self::Rejection> {
        if !same_origin(state, req.headers()) {
            return Err(PortalError::Csrf);
        }
        let who = current(state, req.headers()).await?;
        let ip = crate::extract::client_auth::peer_ip(req.extensions());
        let fields = read_form(req, state).await?;
        // A forged post without a session is refused as forged, not sent to sign-in.
        let who = who.ok_or(PortalError::Csrf)?;
        if !tokens_match(&who.session.csrf_secret, fields.get("csrf").unwrap_or("")) {
            return Err(PortalError::Csrf);
        }
        Ok(Self { who, fields, ip })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    #[test]
    fn cookies_are_found_among_others() {
        let mut h = HeaderMap::new();
        h.insert(header::COOKIE, HeaderValue::from_static("a=1; tm_session=abc; b=2"));
        assert_eq!(read_cookie(&h, SESSION_COOKIE), Some("abc"));
        assert_eq!(read_cookie(&h, "tm_signin"), None);
    }

    #[test]
    fn origins_are_cut_from_urls() {
        assert_eq!(origin_of("https://a.example:8443/portal/x?y"), "https://a.example:8443");
        assert_eq!(origin_of("http://127.0.0.1:8080"), "http://127.0.0.1:8080");
    }

    #[test]
    fn session_ids_are_random_and_stored_hashed() {
        let a = random_token();
        assert_eq!(a.len(), 43);
        assert_ne!(a, random_token());
        assert_eq!(hash_session_id(&a).len(), 64);
        assert_ne!(hash_session_id(&a), a);
        assert!(!tokens_match("", ""));
        assert!(tokens_match("x", "x"));
        assert!(!tokens_match("x", "y"));
    }
}

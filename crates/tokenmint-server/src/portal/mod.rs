//! The credential portal at `/portal/`: server-rendered pages where an organization's people
//! sign in and manage their API OAuth credentials, its users, and read its audit trail.
//!
//! Why server-rendered HTML with one small script: there is no front-end build for a fresh
//! clone to run, every page works without JavaScript except the copy buttons, and the pages
//! call the same [`crate::service`] and [`crate::users`] operations as the admin API, with the
//! signed-in user as the [`crate::service::Actor`], and those ask the one policy
//! ([`crate::service::policy`]), so the portal cannot grant more than the API would. Every
//! route is declared once in [`routes`], with the action it is authorized for.
//!
//! Safety, in one place each: [`session`] (cookie flags, server-side sessions, CSRF tokens and
//! the Origin check on every form), [`auth`] (sign-in throttling and no user enumeration),
//! [`security_headers`] (CSP without inline script, framing refused), and [`PortalError`] (the
//! one mapping of failures to pages). One-time secrets travel from the form's POST to the page
//! that shows them through the database ([`put_flash`], [`take_flash`]): sealed with the master
//! key and bound to the session, deleted by the statement that reads them, so that whichever
//! instance serves the next page shows them exactly once, without sticky sessions; they never
//! appear in a URL, and a reload finds them gone.

pub mod accounts;
pub mod audit;
pub mod auth;
pub mod html;
pub mod pages;
pub mod session;

use crate::error::ApiError;
use crate::routes::admin::{Access, RouteSpec};
use crate::service::{Action, ServiceError};
use crate::state::AppState;
use axum::Router;
use axum::http::{HeaderName, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{MethodRouter, get, post};
use std::fmt;
use tower_http::set_header::SetResponseHeaderLayer;

/// The portal's Content-Security-Policy: only this origin's script and style, no inline
/// script or style at all, no framing, forms only to this origin.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'self'; style-src 'self'; \
     img-src 'self' data:; connect-src 'self'; font-src 'self'; form-action 'self'; \
     frame-ancestors 'none'; base-uri 'none'";

const CSS: &str = include_str!("assets/portal.css");
const JS: &str = include_str!("assets/portal.js");
/// The portal's icon, linked from every page: the logo's diamond on the brand colour.
const FAVICON_SVG: &str = include_str!("assets/favicon.svg");
/// The same icon as a 32×32 ICO, for `/favicon.ico`, which browsers and other clients ask for
/// whatever a page links.
const FAVICON_ICO: &[u8] = include_bytes!("assets/favicon.ico");

/// How long a one-time secret waits for the page that shows it.
const FLASH_TTL_SECS: i64 = 300;

/// Something to show once on the next page of a session.
#[derive(Clone, serde::Serialize, serde::Deserialize)]
pub enum Flash {
    /// A credential's new secret (after generating or rotating).
    Secret { client_id: String, secret: String, rotated: bool },
    /// A new user's generated password.
    Password { email: String, password: String },
    /// A password-reset code an admin generated for a user.
    ResetCode { user_id: String, email: String, code: String, reset_url: String, expires_at: i64 },
    /// Why an action on a credential was refused, shown once on its page after the redirect, so
    /// that a reload neither repeats the action nor shows the refusal again.
    Refused { client_id: String, message: String },
}

/// Secrets stay out of Debug output.
impl fmt::Debug for Flash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Secret { client_id, rotated, .. } => f
                .debug_struct("Secret")
                .field("client_id", client_id)
                .field("rotated", rotated)
                .finish_non_exhaustive(),
            Self::Password { email, .. } => {
                f.debug_struct("Password").field("email", email).finish_non_exhaustive()
            }
            Self::Refused { client_id, message } => f
                .debug_struct("Refused")
                .field("client_id", client_id)
                .field("message", message)
                .finish(),
            Self::ResetCode { user_id, .. } => {
                f.debug_struct("ResetCode").field("user_id", user_id).finish_non_exhaustive()
            }
        }
    }
}

/// Which page takes a flash: the credential's page its secret, the users page a password, the
/// user's page their reset code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FlashFor<'a> {
    Secret { client_id: &'a str },
    Password,
    ResetCode { user_id: &'a str },
}

impl FlashFor<'_> {
    fn purpose(self) -> String {
        match self {
            Self::Secret { client_id } => format!("secret:{client_id}"),
            Self::Password => "password".to_owned(),
            Self::ResetCode { user_id } => format!("reset:{user_id}"),
        }
    }
}

impl Flash {
    fn for_page(&self) -> FlashFor<'_> {
        match self {
            Self::Secret { client_id, .. } | Self::Refused { client_id, .. } => {
                FlashFor::Secret { client_id }
            }
            Self::Password { .. } => FlashFor::Password,
            Self::ResetCode { user_id, .. } => FlashFor::ResetCode { user_id },
        }
    }
}

/// Binds a sealed flash to its session and purpose: one copied onto another session's row, or
/// relabelled for another page, does not open.
fn flash_associated_data(session_hash: &str, purpose: &str) -> Vec<u8> {
    format!("tokenmint portal flash\n{session_hash}\n{purpose}").into_bytes()
}

/// Keeps `flash` for the session's next page, on whichever instance serves it: sealed with the
/// master key (AES-256-GCM, as signing keys at rest), for [`FLASH_TTL_SECS`].
pub async fn put_flash(
    state: &AppState,
    session_hash: &str,
    flash: &Flash,
) -> Result<(), PortalError> {
    let purpose = flash.for_page().purpose();
    let plain = serde_json::to_vec(flash).map_err(|e| {
        PortalError::Api(ApiError::Internal(format!("the one-time value cannot be encoded: {e}")))
    })?;
    let sealed = state
        .config
        .master_key
        .key_encryption()
        .seal(&plain, &flash_associated_data(session_hash, &purpose))
        .map_err(|e| PortalError::Api(ApiError::Internal(e.to_string())))?;
    let now = state.now();
    let row = tokenmint_store::PortalFlash {
        session_hash: session_hash.to_owned(),
        purpose,
        sealed,
        expires_at: now + FLASH_TTL_SECS,
    };
    state.store.put_portal_flash(&row, now).await?;
    Ok(())
}

/// Takes the session's flash meant for `page`, once: the database deletes it as it hands it
/// over, so a second view (on this or another instance) finds nothing.
pub async fn take_flash(
    state: &AppState,
    session_hash: &str,
    page: FlashFor<'_>,
) -> Result<Option<Flash>, PortalError> {
    let purpose = page.purpose();
    let Some(sealed) = state.store.take_portal_flash(session_hash, &purpose, state.now()).await?
    else {
        return Ok(None);
    };
    let opened = state
        .config
        .master_key
        .key_encryption()
        .open(&sealed, &flash_associated_data(session_hash, &purpose));
    let flash = opened.ok().and_then(|plain| serde_json::from_slice::<Flash>(&plain).ok());
    if flash.is_none() {
        // Sealed under another master key, or damaged: not shown, and the page says nothing
        // internal. The value is gone either way; the user rotates the secret again.
        tracing::warn!(purpose = %purpose, "a one-time portal value could not be opened");
    }
    Ok(flash.filter(|f| f.for_page() == page))
}

/// The portal's in-process state: sign-in throttling and the dummy password hash that unknown
/// emails are checked against. One-time values are not here but in the database (see
/// [`put_flash`]), so that no instance holds what another must show.
pub struct PortalState {
    pub throttle: auth::SignInThrottle,
    /// See [`PortalState::dummy_hash`].
    dummy_hash: tokio::sync::OnceCell<String>,
}

impl fmt::Debug for PortalState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PortalState").finish_non_exhaustive()
    }
}

impl PortalState {
    pub fn new() -> Self {
        Self { throttle: auth::SignInThrottle::new(), dummy_hash: tokio::sync::OnceCell::new() }
    }

    /// A hash of a random password nobody knows, with the same parameters as real ones: an
    /// unknown email costs the same Argon2id verification as a wrong password. Made on the
    /// password threads at the first sign-in, not at start, where it would take a thread's
    /// hashing memory for good ([`crate::hashing`]).
    pub async fn dummy_hash(&self) -> String {
        self.dummy_hash
            .get_or_init(|| async {
                let random = crate::users::Password::new(tokenmint_core::ids::random_id("", 32));
                crate::users::hash_password(random).await.unwrap_or_default()
            })
            .await
            .clone()
    }
}

impl Default for PortalState {
    fn default() -> Self {
        Self::new()
    }
}

/// The `done` query parameter: which success message a page shows after a form's redirect
/// (see [`html::NOTICES`]). Other parameters of the page are read by its own extractor.
#[derive(Debug, Default, serde::Deserialize)]
pub struct Done {
    pub done: Option<String>,
}

/// Every way a portal request can fail, and the page each one gets.
#[derive(Debug, thiserror::Error)]
pub enum PortalError {
    /// Not signed in: to the sign-in page, which goes on to `next` (the page asked for, when it
    /// was a page the user can come back to) once signed in.
    #[error("not signed in")]
    SignedOut { next: Option<String> },
    #[error("the form could not be verified")]
    Csrf,
    #[error("{0}")]
    BadRequest(String),
    #[error(transparent)]
    Api(#[from] ApiError),
}

/// A service failure a page does not answer itself gets the page of its HTTP answer (see
/// [`crate::error`], the one mapping).
impl From<ServiceError> for PortalError {
    fn from(e: ServiceError) -> Self {
        Self::Api(e.into())
    }
}

impl From<tokenmint_store::StoreError> for PortalError {
    fn from(e: tokenmint_store::StoreError) -> Self {
        Self::Api(e.into())
    }
}

fn error_page(status: StatusCode, title: &str, message: &str) -> Response {
    let body = format!(
        r#"<section class="card narrow"><h1>{}</h1><p>{}</p><p><a class="btn" href="/portal/">Back to the portal</a></p></section>"#,
        html::esc(title),
        html::esc(message)
    );
    html_response(status, html::layout(title, None, html::Nav::None, &body))
}

impl IntoResponse for PortalError {
    fn into_response(self) -> Response {
        match self {
            Self::SignedOut { next } => {
                match next.as_deref().and_then(|n| auth::return_path(Some(n))) {
                    Some(n) => {
                        Redirect::to(&format!("/portal/sign-in?next={}", accounts::urlencoding(n)))
                            .into_response()
                    }
                    None => Redirect::to("/portal/sign-in").into_response(),
                }
            }
            Self::Csrf => error_page(
                StatusCode::FORBIDDEN,
                "Request refused",
                "This form could not be verified: it expired or was sent from another site. \
                 Go back, reload the page and try again.",
            ),
            Self::BadRequest(m) => error_page(StatusCode::BAD_REQUEST, "Bad request", &m),
            Self::Api(e) => match e {
                ApiError::NotFound(what) => error_page(
                    StatusCode::NOT_FOUND,
                    "Not found",
                    &format!("This {what} does not exist, or you cannot see it."),
                ),
                ApiError::Forbidden { reason, .. } => {
                    error_page(StatusCode::FORBIDDEN, "Not allowed", &reason)
                }
                ApiError::Validation { message, .. } => {
                    error_page(StatusCode::UNPROCESSABLE_ENTITY, "Invalid input", &message)
                }
                ApiError::Conflict(m) => error_page(StatusCode::CONFLICT, "Conflict", &m),
                ApiError::PayloadTooLarge(limit) => error_page(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    "Form too large",
                    &format!("The form sent is larger than {limit} bytes."),
                ),
                ApiError::Unavailable(_) => error_page(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "Temporarily unavailable",
                    "The database cannot be reached right now. Try again in a moment.",
                ),
                other => {
                    // Logs the detail; the page says nothing internal.
                    let _ = other.to_problem();
                    error_page(
                        StatusCode::INTERNAL_SERVER_ERROR,
                        "Something went wrong",
                        "The request could not be completed; the error was logged.",
                    )
                }
            },
        }
    }
}

/// An HTML page that no cache may keep (pages can hold a one-time secret).
pub fn html_response(status: StatusCode, body: String) -> Response {
    let mut res = (status, body).into_response();
    let h = res.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static("text/html; charset=utf-8"));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    res
}

fn asset(content_type: &'static str, body: &'static str) -> Response {
    let mut res = body.into_response();
    let h = res.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("public, max-age=300"));
    res
}

/// An icon: it changes with a release at most, so caches keep it for a day.
fn icon(content_type: &'static str, body: &'static [u8]) -> Response {
    let mut res = body.into_response();
    let h = res.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("public, max-age=86400"));
    res
}

/// The security headers every portal response carries.
fn security_headers(router: Router<AppState>) -> Router<AppState> {
    let set = |name: &'static str, value: &'static str| {
        SetResponseHeaderLayer::overriding(
            HeaderName::from_static(name),
            HeaderValue::from_static(value),
        )
    };
    router
        .layer(set("content-security-policy", CONTENT_SECURITY_POLICY))
        .layer(set("x-frame-options", "DENY"))
        .layer(set("referrer-policy", "same-origin"))
        .layer(set("x-content-type-options", "nosniff"))
        .layer(set("cross-origin-opener-policy", "same-origin"))
        .layer(set("permissions-policy", "camera=(), microphone=(), geolocation=()"))
}

/// Every portal route with its handler and who may call it. The router is built from this
/// table alone, so [`routes`] is the router's list, which a test holds against the
/// authorization matrix.
fn table() -> Vec<(RouteSpec, MethodRouter<AppState>)> {
    use Access::{OwnSession, Policy, Public};
    use Action::*;
    let spec =
        |method: Method, path: &'static str, access: Access| RouteSpec { method, path, access };
    vec![
        (spec(Method::GET, "/portal", Public), get(|| async { Redirect::permanent("/portal/") })),
        (spec(Method::GET, "/portal/", Public), get(pages::home)),
        (spec(Method::GET, "/portal/sign-in", Public), get(auth::sign_in_page)),
        (spec(Method::POST, "/portal/sign-in", Public), post(auth::sign_in)),
        (spec(Method::POST, "/portal/sign-out", OwnSession), post(auth::sign_out)),
        (
            spec(Method::GET, "/portal/credentials", Policy(ListCredentials)),
            get(pages::list_credentials),
        ),
        (
            spec(Method::POST, "/portal/credentials", Policy(CreateCredential)),
            post(pages::create_credential),
        ),
        (
            spec(Method::GET, "/portal/credentials/new", Policy(CreateCredential)),
            get(pages::new_credential),
        ),
        (
            spec(Method::GET, "/portal/credentials/{client_id}", Policy(ReadCredential)),
            get(pages::show_credential),
        ),
        (
            spec(Method::POST, "/portal/credentials/{client_id}", Policy(EditCredential)),
            post(pages::update_credential),
        ),
        (
            spec(Method::POST, "/portal/credentials/{client_id}/rotate", Policy(RotateSecret)),
            post(pages::rotate_secret),
        ),
        (
            spec(
                Method::GET,
                "/portal/credentials/{client_id}/deactivate",
                Policy(DeactivateCredential),
            ),
            get(pages::confirm_deactivate),
        ),
        (
            spec(
                Method::POST,
                "/portal/credentials/{client_id}/deactivate",
                Policy(DeactivateCredential),
            ),
            post(pages::deactivate_credential),
        ),
        (
            spec(
                Method::POST,
                "/portal/credentials/{client_id}/activate",
                Policy(ActivateCredential),
            ),
            post(pages::activate_credential),
        ),
        (
            spec(
                Method::POST,
                "/portal/credentials/{client_id}/public-keys",
                Policy(AddPublicKeys),
            ),
            post(pages::add_public_key),
        ),
        (
            spec(
                Method::GET,
                "/portal/credentials/{client_id}/public-keys/{key}/remove",
                Policy(RemovePublicKey),
            ),
            get(pages::confirm_remove_public_key),
        ),
        (
            spec(
                Method::POST,
                "/portal/credentials/{client_id}/public-keys/{key}/remove",
                Policy(RemovePublicKey),
            ),
            post(pages::remove_public_key),
        ),
        (
            spec(
                Method::GET,
                "/portal/credentials/{client_id}/secrets/{secret_id}/delete",
                Policy(DeleteSecret),
            ),
            get(pages::confirm_delete_secret),
        ),
        (
            spec(
                Method::POST,
                "/portal/credentials/{client_id}/secrets/{secret_id}/delete",
                Policy(DeleteSecret),
            ),
            post(pages::delete_secret),
        ),
        (spec(Method::GET, "/portal/users", Policy(ListUsers)), get(accounts::list_users)),
        (spec(Method::POST, "/portal/users", Policy(CreateUser)), post(accounts::create_user)),
        (spec(Method::GET, "/portal/users/{id}", Policy(ListUsers)), get(accounts::show_user)),
        (
            spec(Method::GET, "/portal/users/{id}/deactivate", Policy(DeactivateUser)),
            get(accounts::confirm_deactivate_user),
        ),
        (
            spec(Method::POST, "/portal/users/{id}/deactivate", Policy(DeactivateUser)),
            post(accounts::deactivate_user),
        ),
        (
            spec(Method::POST, "/portal/users/{id}/reactivate", Policy(ReactivateUser)),
            post(accounts::reactivate_user),
        ),
        (
            spec(Method::POST, "/portal/users/{id}/role", Policy(ChangeUserRole)),
            post(accounts::change_role),
        ),
        (
            spec(Method::POST, "/portal/users/{id}/reset-password", Policy(ResetUserPassword)),
            post(accounts::reset_password),
        ),
        (spec(Method::GET, "/portal/account", Policy(ChangeOwnPassword)), get(accounts::account)),
        (
            spec(Method::POST, "/portal/account", Policy(ChangeOwnPassword)),
            post(accounts::change_password),
        ),
        (spec(Method::GET, "/portal/reset-password", Public), get(accounts::reset_page)),
        (spec(Method::POST, "/portal/reset-password", Public), post(accounts::redeem_reset)),
        (spec(Method::GET, "/portal/audit", Policy(ReadAudit)), get(audit::audit_log)),
        (
            spec(Method::GET, "/portal/static/portal.css", Public),
            get(|| async { asset("text/css; charset=utf-8", CSS) }),
        ),
        (
            spec(Method::GET, "/portal/static/portal.js", Public),
            get(|| async { asset("text/javascript; charset=utf-8", JS) }),
        ),
        (
            spec(Method::GET, "/portal/static/favicon.svg", Public),
            get(|| async { icon("image/svg+xml", FAVICON_SVG.as_bytes()) }),
        ),
        (
            spec(Method::GET, "/favicon.ico", Public),
            get(|| async { icon("image/x-icon", FAVICON_ICO) }),
        ),
        (spec(Method::GET, "/portal/{*rest}", Public), get(not_found)),
        (spec(Method::POST, "/portal/{*rest}", Public), post(not_found)),
    ]
}

/// Every portal route.
pub fn routes() -> Vec<RouteSpec> {
    table().into_iter().map(|(spec, _)| spec).collect()
}

/// The portal's routes, with their security headers.
pub fn router() -> Router<AppState> {
    let r =
        table().into_iter().fold(Router::new(), |r, (spec, handler)| r.route(spec.path, handler));
    security_headers(r)
}

async fn not_found() -> Response {
    error_page(StatusCode::NOT_FOUND, "Not found", "There is no such page in the portal.")
}

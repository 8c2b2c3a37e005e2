//! The credential portal at `/portal/`: server-rendered pages where an organization's people
//! sign in and manage their API OAuth credentials, its users, and read its audit trail.
//!
//! Why server-rendered HTML with one small script: there is no front-end build for a fresh
//! clone to run, every page works without JavaScript except the copy buttons, and the pages
//! call the same [`crate::service`] and [`crate::users`] operations as the admin API, with the
//! signed-in user as the [`crate::service::Actor`], so the portal cannot grant more than the
//! API would.
//!
//! Safety, in one place each: [`session`] (cookie flags, server-side sessions, CSRF tokens and
//! the Origin check on every form), [`auth`] (sign-in throttling and no user enumeration),
//! [`security_headers`] (CSP without inline script, framing refused), and [`PortalError`] (the
//! one mapping of failures to pages). One-time secrets travel from the form's POST to the page
//! that shows them in process memory, keyed by the session, and are taken on first view, so
//! they never appear in a URL and a reload finds them gone.

pub mod auth;
pub mod html;
pub mod pages;
pub mod session;

use crate::error::ApiError;
use crate::state::AppState;
use axum::Router;
use axum::http::{HeaderName, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use quick_cache::sync::Cache;
use std::fmt;
use tokenmint_core::UnixTime;
use tower_http::set_header::SetResponseHeaderLayer;

/// The portal's Content-Security-Policy: only this origin's script and style, no inline
/// script or style at all, no framing, forms only to this origin.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'self'; style-src 'self'; \
     img-src 'self' data:; connect-src 'self'; font-src 'self'; form-action 'self'; \
     frame-ancestors 'none'; base-uri 'none'";

const CSS: &str = include_str!("assets/portal.css");
const JS: &str = include_str!("assets/portal.js");

/// How long a one-time secret waits for the page that shows it.
const FLASH_TTL_SECS: i64 = 300;

/// Something to show once on the next page of a session.
#[derive(Clone)]
pub enum Flash {
    /// A credential's new secret (after generating or rotating).
    Secret { client_id: String, secret: String, rotated: bool },
    /// A new user's generated password.
    Password { email: String, password: String },
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
        }
    }
}

/// The portal's in-process state: sign-in throttling, the one-time flashes, and the dummy
/// password hash that unknown emails are checked against.
pub struct PortalState {
    pub throttle: auth::SignInThrottle,
    flashes: Cache<String, (UnixTime, Flash)>,
    pub dummy_hash: String,
}

impl fmt::Debug for PortalState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PortalState").finish_non_exhaustive()
    }
}

impl PortalState {
    pub fn new() -> Self {
        // A hash of a random password nobody knows, with the same parameters as real ones: an
        // unknown email costs the same Argon2id verification as a wrong password.
        let random = tokenmint_core::ids::random_id("", 32);
        let dummy_hash = crate::users::hash_password_blocking(&crate::users::Password::new(random))
            .unwrap_or_default();
        Self { throttle: auth::SignInThrottle::new(), flashes: Cache::new(10_000), dummy_hash }
    }

    pub fn put_flash(&self, session_hash: &str, flash: Flash, now: UnixTime) {
        self.flashes.insert(session_hash.to_owned(), (now + FLASH_TTL_SECS, flash));
    }

    /// Takes the session's flash if `accept` wants it; it is gone afterwards either way only
    /// when taken.
    pub fn take_flash(
        &self,
        session_hash: &str,
        now: UnixTime,
        accept: impl Fn(&Flash) -> bool,
    ) -> Option<Flash> {
        let (until, flash) = self.flashes.get(session_hash)?;
        if until <= now {
            self.flashes.remove(session_hash);
            return None;
        }
        if accept(&flash) {
            self.flashes.remove(session_hash);
            Some(flash)
        } else {
            None
        }
    }

    pub fn drop_flash(&self, session_hash: &str) {
        self.flashes.remove(session_hash);
    }
}

impl Default for PortalState {
    fn default() -> Self {
        Self::new()
    }
}

/// Every way a portal request can fail, and the page each one gets.
#[derive(Debug, thiserror::Error)]
pub enum PortalError {
    #[error("not signed in")]
    SignedOut,
    #[error("the form could not be verified")]
    Csrf,
    #[error("{0}")]
    BadRequest(String),
    #[error(transparent)]
    Api(#[from] ApiError),
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
            Self::SignedOut => Redirect::to("/portal/sign-in").into_response(),
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
                ApiError::Forbidden { .. } => error_page(
                    StatusCode::FORBIDDEN,
                    "Not allowed",
                    "Your role does not allow this change. Ask an administrator of your organization.",
                ),
                ApiError::Validation { message, .. } => {
                    error_page(StatusCode::UNPROCESSABLE_ENTITY, "Invalid input", &message)
                }
                ApiError::Conflict(m) => error_page(StatusCode::CONFLICT, "Conflict", &m),
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

/// The portal's routes, with their security headers.
pub fn router() -> Router<AppState> {
    let r = Router::new()
        .route("/portal", get(|| async { Redirect::permanent("/portal/") }))
        .route("/portal/", get(pages::home))
        .route("/portal/sign-in", get(auth::sign_in_page).post(auth::sign_in))
        .route("/portal/sign-out", post(auth::sign_out))
        .route("/portal/credentials", get(pages::list_credentials).post(pages::create_credential))
        .route("/portal/credentials/new", get(pages::new_credential))
        .route(
            "/portal/credentials/{client_id}",
            get(pages::show_credential).post(pages::update_credential),
        )
        .route("/portal/credentials/{client_id}/rotate", post(pages::rotate_secret))
        .route(
            "/portal/credentials/{client_id}/deactivate",
            get(pages::confirm_deactivate).post(pages::deactivate_credential),
        )
        .route("/portal/credentials/{client_id}/activate", post(pages::activate_credential))
        .route("/portal/users", get(pages::list_users).post(pages::create_user))
        .route("/portal/users/{id}/deactivate", post(pages::deactivate_user))
        .route("/portal/audit", get(pages::audit_log))
        .route("/portal/static/portal.css", get(|| async { asset("text/css; charset=utf-8", CSS) }))
        .route(
            "/portal/static/portal.js",
            get(|| async { asset("text/javascript; charset=utf-8", JS) }),
        )
        .route("/portal/{*rest}", get(not_found).post(not_found));
    security_headers(r)
}

async fn not_found() -> Response {
    error_page(StatusCode::NOT_FOUND, "Not found", "There is no such page in the portal.")
}

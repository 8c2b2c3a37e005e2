//! The tower middleware and the axum extractor.
//!
//! [`VerifyLayer`] authenticates every request: it refuses a path that is not in canonical
//! form (400, see [`CanonicalPath`]), verifies the bearer token and stores the
//! [`VerifiedToken`] and the [`CanonicalPath`] in the request extensions, or answers the
//! refusal itself. [`RequireScope`]
//! (per route, after it) checks a scope. Handlers take [`VerifiedToken`] as an extractor.
//!
//! ```ignore
//! let app = Router::new()
//!     .route("/eligibility", get(read).route_layer(RequireScope::new("eligibility:read")))
//!     .layer(VerifyLayer::new(verifier));
//! ```

use crate::path::CanonicalPath;
use crate::rejection::{Rejection, ScopeRule, bearer_token};
use crate::verifier::{VerifiedToken, Verifier};
use axum::extract::{FromRequestParts, OptionalFromRequestParts};
use axum::response::{IntoResponse, Response};
use futures_util::future::{BoxFuture, Either, Ready, ready};
use http::request::Parts;
use http::{HeaderMap, Request};
use std::convert::Infallible;
use std::sync::Arc;
use std::task::{Context, Poll};
use tower::{Layer, Service};

/// Verifies the request's bearer token: the building block of the layer, for a gateway or any
/// code outside tower.
pub async fn authenticate(
    verifier: &Verifier,
    headers: &HeaderMap,
) -> Result<VerifiedToken, Rejection> {
    let token = bearer_token(headers)?.ok_or(Rejection::MissingToken)?;
    verifier.verify(token).await.map_err(Rejection::InvalidToken)
}

/// Requires a valid bearer token on every request of the wrapped service.
#[derive(Debug, Clone)]
pub struct VerifyLayer {
    verifier: Verifier,
    optional: bool,
}

impl VerifyLayer {
    /// Refuses requests without a valid token.
    pub fn new(verifier: Verifier) -> Self {
        Self { verifier, optional: false }
    }

    /// Lets requests without any token through (handlers see `Option<VerifiedToken>` as
    /// `None`) but still refuses an invalid one: for routes that serve more to authenticated
    /// callers.
    pub fn optional(verifier: Verifier) -> Self {
        Self { verifier, optional: true }
    }
}

impl<S> Layer<S> for VerifyLayer {
    type Service = VerifyService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        VerifyService { inner, verifier: self.verifier.clone(), optional: self.optional }
    }
}

/// The service [`VerifyLayer`] produces.
#[derive(Debug, Clone)]
pub struct VerifyService<S> {
    inner: S,
    verifier: Verifier,
    optional: bool,
}

impl<S, B> Service<Request<B>> for VerifyService<S>
where
    S: Service<Request<B>, Response = Response> + Clone + Send + 'static,
    S::Future: Send + 'static,
    B: Send + 'static,
{
    type Response = Response;
    type Error = S::Error;
    type Future = BoxFuture<'static, Result<Response, S::Error>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: Request<B>) -> Self::Future {
        // The clone that was polled ready is the one that must be called (tower's contract);
        // a fresh clone stays behind for the next request.
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        let verifier = self.verifier.clone();
        let optional = self.optional;
        // The router in front has matched the raw path: a path that is not canonical could
        // have been matched under one spelling and served under another, so it goes no
        // further (see `CanonicalPath::parse_exact`).
        let path = CanonicalPath::parse_exact(request.uri().path()).map(CanonicalPath::into_owned);
        Box::pin(async move {
            match path {
                Ok(path) => request.extensions_mut().insert(path),
                Err(error) => return Ok(Rejection::InvalidPath(error).into_response()),
            };
            match authenticate(&verifier, request.headers()).await {
                Ok(token) => {
                    request.extensions_mut().insert(token);
                    inner.call(request).await
                }
                Err(Rejection::MissingToken) if optional => inner.call(request).await,
                Err(rejection) => Ok(rejection.into_response()),
            }
        })
    }
}

/// Requires a scope (or a read and a write scope by method) of the token [`VerifyLayer`]
/// verified; answers 403 `insufficient_scope` naming it otherwise.
#[derive(Debug, Clone)]
pub struct RequireScope {
    rule: Arc<ScopeRule>,
}

impl RequireScope {
    /// Requires `scope` for every method.
    pub fn new(scope: impl Into<Arc<str>>) -> Self {
        Self { rule: Arc::new(ScopeRule::Always(scope.into())) }
    }

    /// Requires `read` for GET, HEAD and OPTIONS and `write` for every other method, and for a
    /// read whose method-override header or query parameter names another (see
    /// [`ScopeRule::required_for`]).
    pub fn read_write(read: impl Into<Arc<str>>, write: impl Into<Arc<str>>) -> Self {
        Self { rule: Arc::new(ScopeRule::ReadWrite { read: read.into(), write: write.into() }) }
    }

    /// The rule this layer enforces.
    pub fn rule(&self) -> &ScopeRule {
        &self.rule
    }
}

impl<S> Layer<S> for RequireScope {
    type Service = RequireScopeService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        RequireScopeService { inner, rule: Arc::clone(&self.rule) }
    }
}

/// The service [`RequireScope`] produces.
#[derive(Debug, Clone)]
pub struct RequireScopeService<S> {
    inner: S,
    rule: Arc<ScopeRule>,
}

impl<S, B> Service<Request<B>> for RequireScopeService<S>
where
    S: Service<Request<B>, Response = Response>,
{
    type Response = Response;
    type Error = S::Error;
    type Future = Either<Ready<Result<Response, S::Error>>, S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<B>) -> Self::Future {
        let required =
            self.rule.required_for(request.method(), request.headers(), request.uri().query());
        let refusal = match request.extensions().get::<VerifiedToken>() {
            Some(token) => token.require_scope(required).err(),
            None => {
                tracing::error!("RequireScope runs without VerifyLayer in front of it");
                Some(Rejection::LayerMissing)
            }
        };
        match refusal {
            Some(rejection) => Either::Left(ready(Ok(rejection.into_response()))),
            None => Either::Right(self.inner.call(request)),
        }
    }
}

/// Extracts the token [`VerifyLayer`] verified. Without the layer the handler answers 500
/// (see [`Rejection::LayerMissing`]); use `Option<VerifiedToken>` where a token is optional.
impl<S: Send + Sync> FromRequestParts<S> for VerifiedToken {
    type Rejection = Rejection;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Rejection> {
        parts.extensions.get::<VerifiedToken>().cloned().ok_or_else(|| {
            tracing::error!("VerifiedToken extracted on a route without VerifyLayer");
            Rejection::LayerMissing
        })
    }
}

impl<S: Send + Sync> OptionalFromRequestParts<S> for VerifiedToken {
    type Rejection = Infallible;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Option<Self>, Infallible> {
        Ok(parts.extensions.get::<VerifiedToken>().cloned())
    }
}

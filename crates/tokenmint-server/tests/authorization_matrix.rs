//! The authorization matrix: every kind of actor × every action of the admin API and of the
//! portal × every kind of target, exercised over the real HTTP routes (the admin API with access
//! tokens, the portal with a signed-in session and its CSRF token) and held against the tables
//! written out below. Any cell that answers otherwise fails the test, with every differing cell
//! listed. A second test walks the routes the admin API and the portal are built from and fails
//! when one of them is not in these tables, so a new route cannot skip the policy.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::browser::Browser;
use common::{TestApp, spawn_app};
use reqwest::Method;
use serde_json::{Value, json};
use std::collections::{BTreeMap, BTreeSet};
use tokenmint_server::routes::admin::{Access, RouteSpec};

/// The kinds of target, relative to the actor: `own` is an object of the actor's organization,
/// `other` one of another organization, `system` one holding a `tokenmint:*` scope (a
/// credential with `tokenmint:introspect`, a `platform` user, or a grant of
/// `tokenmint:introspect`), `self` the actor itself, `none` an id or organization that does not
/// exist.
const COLUMNS: [&str; 5] = ["own", "other", "system", "self", "none"];

/// The admin API, under `/admin/v1`. Actors: `A` a credential holding `tokenmint:admin`, `I`
/// one holding only `tokenmint:introspect`, `R` only `tokenmint:revocations`, `N` no
/// `tokenmint:*` scope. `ok` is any 2xx answer; `-` is a combination that does not arise.
const ADMIN_API: &str = "
ListOrganizations      GET    /organizations                               | A ok  -   -   -   -   | I 403 -   -   -   -   | R 403 -   -   -   -   | N 403 -   -   -   -
CreateOrganization     POST   /organizations                               | A ok  -   -   -   -   | I 403 -   -   -   -   | R 403 -   -   -   -   | N 403 -   -   -   -
ReadOrganization       GET    /organizations/{slug}                        | A ok  ok  -   -   404 | I 403 403 -   -   403 | R 403 403 -   -   403 | N 403 403 -   -   403
EditOrganization       PATCH  /organizations/{slug}                        | A ok  ok  -   -   404 | I 403 403 -   -   403 | R 403 403 -   -   403 | N 403 403 -   -   403
ListCredentials        GET    /credentials                                 | A ok  ok  -   -   ok  | I 403 403 -   -   403 | R 403 403 -   -   403 | N 403 403 -   -   403
CreateCredential       POST   /credentials                                 | A ok  ok  ok  -   ok  | I 403 403 403 -   403 | R 403 403 403 -   403 | N 403 403 403 -   403
ReadCredential         GET    /credentials/{client_id}                     | A ok  ok  ok  ok  404 | I 403 403 403 403 403 | R 403 403 403 403 403 | N 403 403 403 403 403
EditCredential         PATCH  /credentials/{client_id}                     | A ok  ok  ok  ok  404 | I 403 403 403 403 403 | R 403 403 403 403 403 | N 403 403 403 403 403
DeactivateCredential   POST   /credentials/{client_id}/deactivate          | A ok  ok  ok  409 404 | I 403 403 403 403 403 | R 403 403 403 403 403 | N 403 403 403 403 403
ActivateCredential     POST   /credentials/{client_id}/activate            | A ok  ok  ok  ok  404 | I 403 403 403 403 403 | R 403 403 403 403 403 | N 403 403 403 403 403
RotateSecret           POST   /credentials/{client_id}/secrets             | A ok  ok  ok  ok  404 | I 403 403 403 403 403 | R 403 403 403 403 403 | N 403 403 403 403 403
DeleteSecret           DELETE /credentials/{client_id}/secrets/{secret_id} | A ok  ok  ok  409 404 | I 403 403 403 403 403 | R 403 403 403 403 403 | N 403 403 403 403 403
AddPublicKeys          POST   /credentials/{client_id}/public-keys         | A ok  ok  ok  ok  404 | I 403 403 403 403 403 | R 403 403 403 403 403 | N 403 403 403 403 403
RemovePublicKey        DELETE /credentials/{client_id}/public-keys/{key_id} | A ok  ok  ok  409 404 | I 403 403 403 403 403 | R 403 403 403 403 403 | N 403 403 403 403 403
RevokeCredentialTokens POST   /credentials/{client_id}/revoke-tokens       | A ok  ok  ok  409 404 | I 403 403 403 403 403 | R 403 403 403 403 403 | N 403 403 403 403 403
ReadCredential         GET    /credentials/{client_id}/activity            | A ok  ok  ok  ok  404 | I 403 403 403 403 403 | R 403 403 403 403 403 | N 403 403 403 403 403
ListUsers              GET    /users                                       | A ok  ok  -   -   ok  | I 403 403 -   -   403 | R 403 403 -   -   403 | N 403 403 -   -   403
CreateUser             POST   /users                                       | A ok  ok  ok  -   ok  | I 403 403 403 -   403 | R 403 403 403 -   403 | N 403 403 403 -   403
DeactivateUser         POST   /users/{id}/deactivate                       | A ok  ok  ok  -   404 | I 403 403 403 -   403 | R 403 403 403 -   403 | N 403 403 403 -   403
ReactivateUser         POST   /users/{id}/reactivate                       | A ok  ok  ok  -   404 | I 403 403 403 -   403 | R 403 403 403 -   403 | N 403 403 403 -   403
ChangeUserRole         PATCH  /users/{id}                                  | A ok  ok  ok  -   404 | I 403 403 403 -   403 | R 403 403 403 -   403 | N 403 403 403 -   403
ResetUserPassword      POST   /users/{id}/reset-password                   | A ok  ok  ok  -   404 | I 403 403 403 -   403 | R 403 403 403 -   403 | N 403 403 403 -   403
ReadAudit              GET    /audit                                       | A ok  ok  -   -   ok  | I 403 403 -   -   403 | R 403 403 -   -   403 | N 403 403 -   -   403
ReadAlerts             GET    /alerts                                      | A ok  -   -   -   -   | I 403 -   -   -   -   | R 403 -   -   -   -   | N 403 -   -   -   -
ReadKeys               GET    /keys                                        | A ok  -   -   -   -   | I 403 -   -   -   -   | R 403 -   -   -   -   | N 403 -   -   -   -
RotateKey              POST   /keys/rotate                                 | A ok  -   -   -   -   | I 403 -   -   -   -   | R 403 -   -   -   -   | N 403 -   -   -   -
WithdrawKey            POST   /keys/{kid}/withdraw                         | A ok  -   -   -   404 | I 403 -   -   -   403 | R 403 -   -   -   403 | N 403 -   -   -   403
FollowRevocations      GET    /revocations                                 | A ok  -   -   -   -   | I 403 -   -   -   -   | R ok  -   -   -   -   | N 403 -   -   -   -
FollowRevocations      GET    /revocations/stream                          | A ok  -   -   -   -   | I 403 -   -   -   -   | R ok  -   -   -   -   | N 403 -   -   -   -
";

/// The portal. Actors: `P` a `platform` user, `OA` an organization's admin, `OV` its viewer,
/// `XA` the admin of another organization. The lists, the Generate form and its POST work in the
/// user's own organization, or in the one named by `?org=` (the hidden `org` field of a form):
/// `other` names another organization, `none` one that does not exist; only the platform may
/// name another. Adding a user always works in the user's own organization (no `org` field).
/// `ok` is a page (200) or a redirect after a form (303); 403, 404 and 409 are the portal's
/// error pages.
const PORTAL: &str = "
ListCredentials        GET    /portal/credentials                          | P ok  ok  -   -   404 | OA ok  404 -   -   404 | OV ok  404 -   -   404 | XA ok  404 -   -   404
CreateCredential       POST   /portal/credentials                          | P ok  ok  -   -   404 | OA ok  404 -   -   404 | OV 403 404 -   -   404 | XA ok  404 -   -   404
CreateCredential       GET    /portal/credentials/new                      | P ok  ok  -   -   404 | OA ok  404 -   -   404 | OV 403 404 -   -   404 | XA ok  404 -   -   404
ReadCredential         GET    /portal/credentials/{client_id}              | P ok  ok  ok  -   404 | OA ok  404 ok  -   404 | OV ok  404 ok  -   404 | XA ok  404 ok  -   404
EditCredential         POST   /portal/credentials/{client_id}              | P ok  ok  ok  -   404 | OA ok  404 403 -   404 | OV 403 404 403 -   404 | XA ok  404 403 -   404
RotateSecret           POST   /portal/credentials/{client_id}/rotate       | P ok  ok  ok  -   404 | OA ok  404 403 -   404 | OV 403 404 403 -   404 | XA ok  404 403 -   404
DeactivateCredential   GET    /portal/credentials/{client_id}/deactivate   | P ok  ok  ok  -   404 | OA ok  404 403 -   404 | OV 403 404 403 -   404 | XA ok  404 403 -   404
DeactivateCredential   POST   /portal/credentials/{client_id}/deactivate   | P ok  ok  ok  -   404 | OA ok  404 403 -   404 | OV 403 404 403 -   404 | XA ok  404 403 -   404
ActivateCredential     POST   /portal/credentials/{client_id}/activate     | P ok  ok  ok  -   404 | OA ok  404 403 -   404 | OV 403 404 403 -   404 | XA ok  404 403 -   404
AddPublicKeys          POST   /portal/credentials/{client_id}/public-keys  | P ok  ok  ok  -   404 | OA ok  404 403 -   404 | OV 403 404 403 -   404 | XA ok  404 403 -   404
RemovePublicKey        GET    /portal/credentials/{client_id}/public-keys/{key}/remove | P ok  ok  ok  -   404 | OA ok  404 403 -   404 | OV 403 404 403 -   404 | XA ok  404 403 -   404
RemovePublicKey        POST   /portal/credentials/{client_id}/public-keys/{key}/remove | P ok  ok  ok  -   404 | OA ok  404 403 -   404 | OV 403 404 403 -   404 | XA ok  404 403 -   404
DeleteSecret           GET    /portal/credentials/{client_id}/secrets/{secret_id}/delete | P ok  ok  ok  -   404 | OA ok  404 403 -   404 | OV 403 404 403 -   404 | XA ok  404 403 -   404
DeleteSecret           POST   /portal/credentials/{client_id}/secrets/{secret_id}/delete | P ok  ok  ok  -   404 | OA ok  404 403 -   404 | OV 403 404 403 -   404 | XA ok  404 403 -   404
ListUsers              GET    /portal/users                                | P ok  ok  -   -   404 | OA ok  404 -   -   404 | OV ok  404 -   -   404 | XA ok  404 -   -   404
CreateUser             POST   /portal/users                                | P ok  -   -   -   -   | OA ok  -   -   -   -   | OV 403 -   -   -   -   | XA ok  -   -   -   -
ListUsers              GET    /portal/users/{id}                           | P ok  ok  ok  ok  404 | OA ok  404 ok  ok  404 | OV ok  404 ok  ok  404 | XA ok  404 ok  ok  404
DeactivateUser         GET    /portal/users/{id}/deactivate                | P ok  ok  ok  409 404 | OA ok  404 403 409 404 | OV 403 404 403 403 404 | XA ok  404 403 409 404
DeactivateUser         POST   /portal/users/{id}/deactivate                | P ok  ok  ok  409 404 | OA ok  404 403 409 404 | OV 403 404 403 403 404 | XA ok  404 403 409 404
ReactivateUser         POST   /portal/users/{id}/reactivate                | P ok  ok  ok  ok  404 | OA ok  404 403 ok  404 | OV 403 404 403 403 404 | XA ok  404 403 ok  404
ChangeUserRole         POST   /portal/users/{id}/role                      | P ok  ok  ok  409 404 | OA ok  404 403 409 404 | OV 403 404 403 403 404 | XA ok  404 403 409 404
ResetUserPassword      POST   /portal/users/{id}/reset-password            | P ok  ok  ok  409 404 | OA ok  404 403 409 404 | OV 403 404 403 403 404 | XA ok  404 403 409 404
ChangeOwnPassword      GET    /portal/account                              | P ok  -   -   -   -   | OA ok  -   -   -   -   | OV ok  -   -   -   -   | XA ok  -   -   -   -
ChangeOwnPassword      POST   /portal/account                              | P ok  -   -   -   -   | OA ok  -   -   -   -   | OV ok  -   -   -   -   | XA ok  -   -   -   -
ReadAudit              GET    /portal/audit                                | P ok  ok  -   -   404 | OA ok  404 -   -   404 | OV ok  404 -   -   404 | XA ok  404 -   -   404
";

/// Routes anyone may call, and what they answer without a token or session.
const PUBLIC: &[(&str, &str, u16)] = &[
    ("GET", "/admin/v1/openapi.json", 200),
    ("GET", "/portal", 308),
    ("GET", "/portal/", 303),
    ("GET", "/portal/sign-in", 200),
    // Without the sign-in form's double-submit cookie: refused as forged.
    ("POST", "/portal/sign-in", 403),
    ("GET", "/portal/reset-password", 200),
    // Without the form's double-submit cookie: refused as forged.
    ("POST", "/portal/reset-password", 403),
    ("GET", "/portal/static/portal.css", 200),
    ("GET", "/portal/static/portal.js", 200),
    ("GET", "/portal/static/favicon.svg", 200),
    ("GET", "/favicon.ico", 200),
    ("GET", "/portal/{*rest}", 404),
    ("POST", "/portal/{*rest}", 404),
];

/// Routes a signed-in user calls for their own session only.
const OWN_SESSION: &[(&str, &str)] = &[("POST", "/portal/sign-out")];

#[derive(Debug, Clone)]
struct Row {
    action: String,
    method: Method,
    path: String,
    cells: BTreeMap<String, [String; 5]>,
}

fn parse(table: &str) -> Vec<Row> {
    table
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|line| {
            let mut parts = line.split('|');
            let head: Vec<&str> = parts.next().unwrap().split_whitespace().collect();
            let [action, method, path] = head[..] else { panic!("bad row: {line}") };
            let cells = parts
                .map(|group| {
                    let words: Vec<&str> = group.split_whitespace().collect();
                    let [actor, a, b, c, d, e] = words[..] else { panic!("bad cells: {group}") };
                    (actor.to_owned(), [a, b, c, d, e].map(str::to_owned))
                })
                .collect();
            Row {
                action: action.to_owned(),
                method: method.parse().unwrap(),
                path: path.to_owned(),
                cells,
            }
        })
        .collect()
}

const NONE_CLIENT: &str = "tmc_000000000000000000000000";

/// A public key (RFC 8037's example Ed25519 key) for the key cells.
const PUBLIC_JWK: &str = r#"{"kty":"OKP","crv":"Ed25519","kid":"cell-key","x":"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"}"#;
const PASSWORD: &str = "a long enough password";

struct Cred {
    id: String,
    token: String,
    org: &'static str,
    other: &'static str,
}

struct User {
    id: String,
    email: String,
    org: &'static str,
    other: &'static str,
    browser: Browser,
    csrf: String,
}

/// One server with the actors of both tables, and a setup token (the first platform admin's)
/// that makes a fresh target for each cell, so no cell sees what another did.
struct World {
    app: TestApp,
    setup: String,
    creds: BTreeMap<&'static str, Cred>,
    users: BTreeMap<&'static str, User>,
    made: usize,
}

impl World {
    async fn new() -> World {
        let app = spawn_app().await;
        let setup = app.admin_token().await;
        let mut w = World { app, setup, creds: BTreeMap::new(), users: BTreeMap::new(), made: 0 };
        for org in ["acme", "globex"] {
            w.call(Method::POST, "/organizations", Some(json!({"slug": org}))).await;
        }
        for (name, org, other, permission) in [
            ("A", "platform", "acme", "tokenmint:admin"),
            ("I", "acme", "globex", "tokenmint:introspect"),
            ("R", "acme", "globex", "tokenmint:revocations"),
            ("N", "acme", "globex", "eligibility:read"),
        ] {
            let created = w
                .call(
                    Method::POST,
                    "/credentials",
                    Some(json!({"name": name, "org": org, "environment": "production",
                        "permissions": [permission]})),
                )
                .await;
            let id = created["client_id"].as_str().unwrap().to_owned();
            let token =
                w.app.token(&id, created["client_secret"].as_str().unwrap()).await["access_token"]
                    .as_str()
                    .unwrap()
                    .to_owned();
            w.creds.insert(name, Cred { id, token, org, other });
        }
        for (name, org, other, role) in [
            ("P", "acme", "globex", "platform"),
            ("OA", "acme", "globex", "admin"),
            ("OV", "acme", "globex", "viewer"),
            ("XA", "globex", "acme", "admin"),
        ] {
            let email = format!("{}@{org}.test", name.to_lowercase());
            let id = w.user(org, &email, role).await;
            let mut browser = Browser::new(&w.app);
            let csrf = browser.sign_in(&email, PASSWORD).await;
            w.users.insert(name, User { id, email, org, other, browser, csrf });
        }
        w
    }

    fn unique(&mut self, prefix: &str) -> String {
        self.made += 1;
        format!("{prefix}{}", self.made)
    }

    /// A setup call, which must succeed.
    async fn call(&self, method: Method, path: &str, body: Option<Value>) -> Value {
        let mut req = self
            .app
            .http
            .request(method.clone(), self.app.url(&format!("/admin/v1{path}")))
            .bearer_auth(&self.setup);
        if let Some(b) = body {
            req = req.json(&b);
        }
        let res = req.send().await.unwrap();
        let status = res.status();
        let text = res.text().await.unwrap();
        assert!(status.is_success(), "setup {method} {path}: {status} {text}");
        serde_json::from_str(&text).unwrap_or(Value::Null)
    }

    async fn credential(&mut self, org: &str, system: bool) -> String {
        let permission = if system { "tokenmint:introspect" } else { "eligibility:read" };
        let name = self.unique("target ");
        let created = self
            .call(
                Method::POST,
                "/credentials",
                Some(json!({"name": name, "org": org, "environment": "sandbox",
                    "permissions": [permission]})),
            )
            .await;
        created["client_id"].as_str().unwrap().to_owned()
    }

    async fn user(&self, org: &str, email: &str, role: &str) -> String {
        let created = self
            .call(
                Method::POST,
                "/users",
                Some(json!({"org": org, "email": email, "role": role, "password": PASSWORD})),
            )
            .await;
        created["id"].as_str().unwrap().to_owned()
    }

    async fn fresh_user(&mut self, org: &str, role: &str) -> String {
        let email = format!("{}@{org}.test", self.unique("u"));
        self.user(org, &email, role).await
    }

    async fn first_secret(&self, client_id: &str) -> String {
        let c = self.app.state.store.get_credential(client_id).await.unwrap().unwrap();
        c.secrets[0].id.clone()
    }

    /// A secret of the credential that a rotation gave an end (rotating it now).
    async fn old_secret(&self, client_id: &str) -> String {
        let path = format!("/credentials/{client_id}/secrets");
        self.call(Method::POST, &path, Some(json!({"overlap_seconds": 3600}))).await;
        let c = self.app.state.store.get_credential(client_id).await.unwrap().unwrap();
        c.secrets.iter().find(|s| s.expires_at.is_some()).unwrap().id.clone()
    }

    async fn keys(&self) -> Vec<Value> {
        self.call(Method::GET, "/keys", None).await.as_array().unwrap().clone()
    }

    /// The kid of a pending signing key, scheduling one when there is none.
    async fn pending_key(&self) -> String {
        let pending = |keys: &[Value]| {
            keys.iter()
                .find(|k| k["state"] == "pending")
                .map(|k| k["kid"].as_str().unwrap().to_owned())
        };
        if let Some(kid) = pending(&self.keys().await) {
            return kid;
        }
        self.call(Method::POST, "/keys/rotate", Some(json!({"propagation_seconds": 600}))).await;
        pending(&self.keys().await).unwrap()
    }

    async fn no_pending_key(&self) {
        if let Some(k) = self.keys().await.iter().find(|k| k["state"] == "pending") {
            let kid = k["kid"].as_str().unwrap().to_owned();
            self.call(Method::POST, &format!("/keys/{kid}/withdraw"), None).await;
        }
    }

    /// Makes the target of an admin-API cell and calls the route as `actor`.
    async fn admin_cell(&mut self, actor: &str, method: &Method, path: &str, col: &str) -> String {
        let (own, other, me) = {
            let c = &self.creds[actor];
            (c.org, c.other, c.id.clone())
        };
        let org = match col {
            "own" | "system" => own.to_owned(),
            "other" => other.to_owned(),
            _ => self.unique("nowhere-"),
        };
        let mut body = None;
        let url = match (method.as_str(), path) {
            ("GET", "/organizations") | ("GET", "/alerts") | ("GET", "/keys") => path.to_owned(),
            ("GET", "/revocations") | ("GET", "/revocations/stream") => path.to_owned(),
            ("POST", "/organizations") => {
                body = Some(json!({"slug": self.unique("neworg-")}));
                path.to_owned()
            }
            ("GET", "/organizations/{slug}") => format!("/organizations/{org}"),
            ("PATCH", "/organizations/{slug}") => {
                body = Some(json!({"name": "renamed in a cell"}));
                format!("/organizations/{org}")
            }
            ("GET", "/credentials") | ("GET", "/users") | ("GET", "/audit") => {
                format!("{path}?org={org}")
            }
            ("POST", "/credentials") => {
                let permission =
                    if col == "system" { "tokenmint:introspect" } else { "eligibility:read" };
                body = Some(json!({"name": "made in a cell", "org": org,
                    "environment": "sandbox", "permissions": [permission]}));
                path.to_owned()
            }
            ("POST", "/users") => {
                let role = if col == "system" { "platform" } else { "viewer" };
                let email = format!("{}@cells.test", self.unique("new"));
                body = Some(json!({"org": org, "email": email, "role": role,
                    "password": PASSWORD}));
                path.to_owned()
            }
            (_, p) if p.starts_with("/users/{id}") => {
                let id = match col {
                    "own" => self.fresh_user(own, "viewer").await,
                    "other" => self.fresh_user(other, "viewer").await,
                    "system" => self.fresh_user(own, "platform").await,
                    _ => "usr_doesnotexist".to_owned(),
                };
                let rest = &p["/users/{id}".len()..];
                if rest == "/reactivate" && col != "none" {
                    self.call(Method::POST, &format!("/users/{id}/deactivate"), None).await;
                }
                if method == Method::PATCH {
                    body = Some(json!({"role": "admin"}));
                }
                format!("/users/{id}{rest}")
            }
            ("POST", "/keys/rotate") => {
                self.no_pending_key().await;
                body = Some(json!({"propagation_seconds": 600}));
                path.to_owned()
            }
            ("POST", "/keys/{kid}/withdraw") => {
                let kid =
                    if col == "none" { "kid-none".to_owned() } else { self.pending_key().await };
                format!("/keys/{kid}/withdraw")
            }
            (_, p) if p.starts_with("/credentials/{client_id}") => {
                let id = match col {
                    "own" => self.credential(own, false).await,
                    "other" => self.credential(other, false).await,
                    "system" => self.credential(own, true).await,
                    "self" => me,
                    _ => NONE_CLIENT.to_owned(),
                };
                let rest = &p["/credentials/{client_id}".len()..];
                match (method.as_str(), rest) {
                    ("PATCH", "") => body = Some(json!({"name": "renamed in a cell"})),
                    ("POST", "/secrets") => body = Some(json!({"overlap_seconds": 3600})),
                    ("POST", "/public-keys") => body = Some(json!({"keys": [PUBLIC_JWK]})),
                    ("DELETE", "/public-keys/{key_id}") if col != "none" && col != "self" => {
                        self.call(
                            Method::POST,
                            &format!("/credentials/{id}/public-keys"),
                            Some(json!({"keys": [PUBLIC_JWK]})),
                        )
                        .await;
                    }
                    _ => {}
                }
                let rest = rest.replace("{key_id}", "cell-key");
                let rest = if rest == "/secrets/{secret_id}" {
                    let secret = if col == "none" {
                        "sec_none".to_owned()
                    } else {
                        self.first_secret(&id).await
                    };
                    format!("/secrets/{secret}")
                } else {
                    rest.to_owned()
                };
                format!("/credentials/{id}{rest}")
            }
            other => panic!("no cell for {other:?}: add it to the matrix"),
        };
        let mut req = self
            .app
            .http
            .request(method.clone(), self.app.url(&format!("/admin/v1{url}")))
            .bearer_auth(&self.creds[actor].token);
        if let Some(b) = body {
            req = req.json(&b);
        }
        let res = req.send().await.unwrap();
        if res.status().is_success() { "ok".to_owned() } else { res.status().as_u16().to_string() }
    }

    /// Makes the target of a portal cell and calls the route as `actor`, with its session.
    async fn portal_cell(&mut self, actor: &str, method: &Method, path: &str, col: &str) -> String {
        let (own, other, me) = {
            let u = &self.users[actor];
            (u.org, u.other, u.id.clone())
        };
        let mut form: Vec<(String, String)> = Vec::new();
        let url = match path {
            "/portal/credentials"
            | "/portal/credentials/new"
            | "/portal/users"
            | "/portal/audit" => {
                if path == "/portal/credentials" && method == Method::POST {
                    for (k, v) in [
                        ("name", "Payroll"),
                        ("environment", "production"),
                        ("expiration", "90d"),
                        ("perm.eligibility", "read"),
                        ("perm.billing", "none"),
                    ] {
                        form.push((k.into(), v.into()));
                    }
                }
                if path == "/portal/users" && method == Method::POST {
                    form.push(("email".into(), format!("{}@{own}.test", self.unique("added"))));
                    form.push(("role".into(), "viewer".into()));
                }
                let org = match col {
                    "other" => Some(other.to_owned()),
                    "none" => Some(self.unique("nowhere-")),
                    _ => None,
                };
                match org {
                    Some(org) if method == Method::GET => format!("{path}?org={org}"),
                    Some(org) => {
                        form.push(("org".into(), org));
                        path.to_owned()
                    }
                    None => path.to_owned(),
                }
            }
            "/portal/account" => {
                if method == Method::POST {
                    for k in ["current_password", "new_password", "confirm_password"] {
                        form.push((k.into(), PASSWORD.into()));
                    }
                }
                path.to_owned()
            }
            p if p.starts_with("/portal/users/{id}") => {
                let id = match col {
                    "own" => self.fresh_user(own, "viewer").await,
                    "other" => self.fresh_user(other, "viewer").await,
                    "system" => self.fresh_user(own, "platform").await,
                    "self" => me,
                    _ => "usr_doesnotexist".to_owned(),
                };
                let rest = &p["/portal/users/{id}".len()..];
                if rest == "/reactivate" && matches!(col, "own" | "other" | "system") {
                    self.call(Method::POST, &format!("/users/{id}/deactivate"), None).await;
                }
                if rest == "/role" {
                    form.push(("role".into(), "admin".into()));
                }
                format!("/portal/users/{id}{rest}")
            }
            p if p.starts_with("/portal/credentials/{client_id}") => {
                let id = match col {
                    "own" => self.credential(own, false).await,
                    "other" => self.credential(other, false).await,
                    "system" => self.credential(own, true).await,
                    _ => NONE_CLIENT.to_owned(),
                };
                let rest = &p["/portal/credentials/{client_id}".len()..];
                match (method.as_str(), rest) {
                    ("POST", "") => {
                        form.push(("name".into(), "renamed in a cell".into()));
                        form.push(("perm.eligibility".into(), "read".into()));
                        form.push(("perm.billing".into(), "none".into()));
                    }
                    ("POST", "/rotate") => {
                        form.push(("overlap".into(), "0".into()));
                        form.push(("confirm".into(), "yes".into()));
                    }
                    ("POST", "/public-keys") => {
                        form.push(("public_key".into(), PUBLIC_JWK.to_string()));
                    }
                    (_, "/public-keys/{key}/remove") if col != "none" => {
                        self.call(
                            Method::POST,
                            &format!("/credentials/{id}/public-keys"),
                            Some(json!({"keys": [PUBLIC_JWK]})),
                        )
                        .await;
                    }
                    _ => {}
                }
                let rest = rest.replace("{key}", "cell-key");
                let rest = if rest.contains("{secret_id}") {
                    // The portal deletes only old secrets: one a rotation gave an end.
                    let secret = if col == "none" {
                        "sec_none".to_owned()
                    } else {
                        self.old_secret(&id).await
                    };
                    rest.replace("{secret_id}", &secret)
                } else {
                    rest
                };
                format!("/portal/credentials/{id}{rest}")
            }
            other => panic!("no cell for {other}: add it to the matrix"),
        };
        let user = self.users.get_mut(actor).unwrap();
        let answer = if method == Method::GET {
            user.browser.get(&url).await
        } else {
            form.push(("csrf".into(), user.csrf.clone()));
            let pairs: Vec<(&str, &str)> =
                form.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
            user.browser.post(&url, &pairs).await
        };
        match answer.status.as_u16() {
            200 | 303 => "ok".to_owned(),
            other => other.to_string(),
        }
    }
}

/// Runs every cell of a table and returns the ones that differ, described.
async fn differing(w: &mut World, rows: &[Row], portal: bool) -> Vec<String> {
    let mut out = Vec::new();
    for row in rows {
        for (actor, expected) in &row.cells {
            for (col, want) in COLUMNS.iter().zip(expected) {
                if want == "-" {
                    continue;
                }
                let got = if portal {
                    w.portal_cell(actor, &row.method, &row.path, col).await
                } else {
                    w.admin_cell(actor, &row.method, &row.path, col).await
                };
                if &got != want {
                    out.push(format!(
                        "{} {} ({}) as {actor} on {col}: expected {want}, got {got}",
                        row.method, row.path, row.action
                    ));
                }
            }
        }
    }
    out
}

#[tokio::test]
async fn every_actor_action_and_target_of_the_admin_api_and_the_portal_answers_as_the_table_says() {
    let mut w = World::new().await;
    let mut wrong = differing(&mut w, &parse(ADMIN_API), false).await;
    wrong.extend(differing(&mut w, &parse(PORTAL), true).await);
    // Signing out ends only the user's own session, whoever they are.
    for name in ["P", "OA", "OV", "XA"] {
        let email = w.users[name].email.clone();
        let mut b = Browser::new(&w.app);
        let csrf = b.sign_in(&email, PASSWORD).await;
        let out = b.post("/portal/sign-out", &[("csrf", &csrf)]).await;
        if out.status != 303 || b.get("/portal/credentials").await.status != 303 {
            wrong.push(format!("POST /portal/sign-out as {name} did not end the session"));
        }
        if w.users.get_mut(name).unwrap().browser.get("/portal/credentials").await.status != 200 {
            wrong.push(format!("signing out a second session of {name} ended the first"));
        }
    }
    assert!(wrong.is_empty(), "{} cells differ from the table:\n{}", wrong.len(), wrong.join("\n"));
}

#[tokio::test]
async fn without_a_token_or_a_session_every_route_is_refused_before_the_policy_is_asked() {
    let app = spawn_app().await;
    let http =
        reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
    let concrete = |path: &str| {
        path.replace("{client_id}", NONE_CLIENT)
            .replace("{secret_id}", "sec_x")
            .replace("{slug}", "acme")
            .replace("{id}", "usr_x")
            .replace("{kid}", "kid_x")
            .replace("{*rest}", "no/such/page")
    };
    let mut wrong = Vec::new();
    for row in parse(ADMIN_API) {
        let res = http
            .request(row.method.clone(), app.url(&format!("/admin/v1{}", concrete(&row.path))))
            .send()
            .await
            .unwrap();
        if res.status() != 401 || !res.headers().contains_key("www-authenticate") {
            wrong.push(format!("{} {}: {}", row.method, row.path, res.status()));
        }
    }
    for row in parse(PORTAL) {
        let url = reqwest::Url::parse(&app.url(&concrete(&row.path))).unwrap();
        // The path as sent (reqwest encodes what a URL path cannot hold, such as `{`).
        let sent = match url.query() {
            Some(query) => format!("{}?{query}", url.path()),
            None => url.path().to_owned(),
        };
        let req = http.request(row.method.clone(), url);
        let res = req.form(&[("csrf", "x")]).send().await.unwrap();
        // A page sends the visitor to sign in, and back to it after; a form without a session
        // is refused as forged.
        let (want, location) = if row.method == Method::GET {
            (303, format!("/portal/sign-in?next={}", percent_encoded(&sent)))
        } else {
            (403, String::new())
        };
        let at = res.headers().get("location").map(|v| v.to_str().unwrap().to_owned());
        if res.status() != want || at.as_deref().unwrap_or("") != location {
            wrong.push(format!("{} {}: {} {at:?}", row.method, row.path, res.status()));
        }
    }
    for (method, path, status) in PUBLIC {
        let mut req = http.request(method.parse().unwrap(), app.url(&concrete(path)));
        if *method == "POST" {
            req = req.form(&[("csrf", "x")]);
        }
        let res = req.send().await.unwrap();
        if res.status() != *status {
            wrong.push(format!("{method} {path}: {} instead of {status}", res.status()));
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

/// The (method, path, access) of every route a table covers.
fn covered(rows: &[Row], prefix: &str) -> BTreeSet<(String, String, String)> {
    rows.iter()
        .map(|r| {
            (r.method.to_string(), format!("{prefix}{}", r.path), format!("Policy({})", r.action))
        })
        .chain(
            PUBLIC.iter().map(|(m, p, _)| ((*m).to_owned(), (*p).to_owned(), "Public".to_owned())),
        )
        .chain(
            OWN_SESSION
                .iter()
                .map(|(m, p)| ((*m).to_owned(), (*p).to_owned(), "OwnSession".to_owned())),
        )
        .collect()
}

fn declared(routes: &[RouteSpec], prefix: &str) -> BTreeSet<(String, String, String)> {
    routes
        .iter()
        .map(|r| {
            let access = match r.access {
                Access::Public => "Public".to_owned(),
                Access::OwnSession => "OwnSession".to_owned(),
                Access::Policy(action) => format!("Policy({action:?})"),
            };
            (r.method.to_string(), format!("{prefix}{}", r.path), access)
        })
        .collect()
}

#[tokio::test]
async fn every_route_of_the_admin_api_and_the_portal_is_in_the_matrix_with_its_action() {
    let admin = declared(&tokenmint_server::routes::admin::routes(), "/admin/v1");
    let portal = declared(&tokenmint_server::portal::routes(), "");
    let mut table = covered(&parse(ADMIN_API), "/admin/v1");
    table.extend(covered(&parse(PORTAL), ""));
    let mut routes = admin.clone();
    routes.extend(portal);
    let missing: Vec<_> = routes.difference(&table).collect();
    assert!(
        missing.is_empty(),
        "routes the authorization matrix does not cover (add a row with what each actor gets): {missing:#?}"
    );
    let stale: Vec<_> = table.difference(&routes).collect();
    assert!(stale.is_empty(), "rows of the matrix that no route has any more: {stale:#?}");

    // The OpenAPI document lists the same admin routes, so the router, the document and the
    // matrix cannot drift apart.
    let app = spawn_app().await;
    let doc: Value =
        app.http.get(app.url("/admin/v1/openapi.json")).send().await.unwrap().json().await.unwrap();
    let documented: BTreeSet<(String, String)> = doc["paths"]
        .as_object()
        .unwrap()
        .iter()
        .flat_map(|(path, item)| {
            item.as_object().unwrap().keys().map(move |m| (m.to_uppercase(), path.clone()))
        })
        .collect();
    let routed: BTreeSet<(String, String)> = admin
        .iter()
        .filter(|(_, p, _)| p != "/admin/v1/openapi.json")
        .map(|(m, p, _)| (m.clone(), p.clone()))
        .collect();
    assert_eq!(documented, routed, "the OpenAPI document and the admin router differ");
}

/// `s` with every byte but ASCII letters, digits, `-`, `.` and `_` percent-encoded.
fn percent_encoded(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' => {
                char::from(b).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

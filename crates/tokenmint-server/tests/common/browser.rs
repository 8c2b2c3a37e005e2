//! A browser for the portal's tests: cookies carried by hand, redirects not followed, so each
//! answer can be looked at.

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use super::TestApp;
use reqwest::{StatusCode, header};

/// A browser without a cookie jar of its own: cookies are carried by hand, redirects are not
/// followed, so each answer can be looked at.
pub struct Browser {
    pub http: reqwest::Client,
    pub base: String,
    pub cookies: Vec<(String, String)>,
}

pub struct Answer {
    pub status: StatusCode,
    pub headers: header::HeaderMap,
    pub body: String,
}

impl Answer {
    pub fn location(&self) -> &str {
        self.headers.get(header::LOCATION).map(|v| v.to_str().unwrap()).unwrap_or("")
    }

    /// The one-time secret the page shows, if it shows one.
    pub fn shown_secret(&self) -> Option<String> {
        let at = self.body.find(r#"id="new-client-secret">"#)?;
        let rest = &self.body[at + r#"id="new-client-secret">"#.len()..];
        Some(rest[..rest.find('<').unwrap()].to_owned())
    }

    /// The first form's CSRF token on the page.
    pub fn csrf(&self) -> String {
        let at = self.body.find(r#"name="csrf" value=""#).expect("a CSRF field");
        let rest = &self.body[at + r#"name="csrf" value=""#.len()..];
        rest[..rest.find('"').unwrap()].to_owned()
    }
}

impl Browser {
    pub fn new(app: &TestApp) -> Self {
        let http =
            reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
        Self { http, base: app.base.clone(), cookies: vec![] }
    }

    pub fn cookie_header(&self) -> String {
        self.cookies.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join("; ")
    }

    pub async fn send(&mut self, req: reqwest::RequestBuilder) -> Answer {
        let res = req.header(header::COOKIE, self.cookie_header()).send().await.unwrap();
        for v in res.headers().get_all(header::SET_COOKIE) {
            let v = v.to_str().unwrap();
            let (pair, _) = v.split_once(';').unwrap_or((v, ""));
            let (k, val) = pair.split_once('=').unwrap();
            self.cookies.retain(|(n, _)| n != k);
            if !val.is_empty() && !v.contains("Max-Age=0") {
                self.cookies.push((k.to_owned(), val.to_owned()));
            }
        }
        Answer {
            status: res.status(),
            headers: res.headers().clone(),
            body: res.text().await.unwrap(),
        }
    }

    pub async fn get(&mut self, path: &str) -> Answer {
        let req = self.http.get(format!("{}{path}", self.base));
        self.send(req).await
    }

    pub async fn post(&mut self, path: &str, form: &[(&str, &str)]) -> Answer {
        let req = self.http.post(format!("{}{path}", self.base)).form(form);
        self.send(req).await
    }

    pub async fn post_with_origin(
        &mut self,
        path: &str,
        origin: &str,
        form: &[(&str, &str)],
    ) -> Answer {
        let req = self
            .http
            .post(format!("{}{path}", self.base))
            .header(header::ORIGIN, origin)
            .form(form);
        self.send(req).await
    }

    /// Rotates a credential's secret from its page, the old one kept for an hour.
    pub async fn rotate(&mut self, client_id: &str) -> Answer {
        let csrf = self.get(&format!("/portal/credentials/{client_id}")).await.csrf();
        let path = format!("/portal/credentials/{client_id}/rotate");
        self.post(&path, &[("csrf", &csrf), ("overlap", "3600")]).await
    }

    pub async fn try_sign_in(&mut self, email: &str, password: &str) -> Answer {
        let page = self.get("/portal/sign-in").await;
        assert_eq!(page.status, 200);
        let csrf = page.csrf();
        self.post("/portal/sign-in", &[("csrf", &csrf), ("email", email), ("password", password)])
            .await
    }

    /// Signs in and returns the session's CSRF token.
    pub async fn sign_in(&mut self, email: &str, password: &str) -> String {
        let res = self.try_sign_in(email, password).await;
        assert_eq!(res.status, StatusCode::SEE_OTHER, "{}", res.body);
        assert_eq!(res.location(), "/portal/credentials");
        let page = self.get("/portal/credentials").await;
        assert_eq!(page.status, 200);
        page.csrf()
    }
}

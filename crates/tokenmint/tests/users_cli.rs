//! `tokenmint users create/list/deactivate/reactivate/update/reset-password` against a real server, and the user signing in to
//! the portal with the password the CLI set.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::Server;
use serde_json::Value;
use std::io::Write;
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_tokenmint");

fn serve(dir: &Path) -> Server {
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let child = Command::new(BIN)
        .args(["serve", "--listen", &format!("127.0.0.1:{port}")])
        .args(["--database", &format!("sqlite://{}", dir.join("t.db").display())])
        .args(["--admin-credential-file", &dir.join("admin.json").display().to_string()])
        .env_remove("TOKENMINT_MASTER_KEY")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    while !dir.join("admin.json").exists()
        || std::net::TcpStream::connect(("127.0.0.1", port)).is_err()
    {
        assert!(Instant::now() < deadline, "the server did not start");
        std::thread::sleep(Duration::from_millis(50));
    }
    Server { child, base: format!("http://127.0.0.1:{port}") }
}

fn users(server: &Server, dir: &Path, args: &[&str], stdin: Option<&str>) -> Output {
    let mut child = Command::new(BIN)
        .arg("users")
        .args(args)
        .args(["--endpoint", &server.base])
        .args(["--admin-credentials", &dir.join("admin.json").display().to_string()])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut input = child.stdin.take().unwrap();
    if let Some(text) = stdin {
        input.write_all(text.as_bytes()).unwrap();
    }
    drop(input);
    child.wait_with_output().unwrap()
}

fn ok_json(out: &Output) -> Value {
    assert!(out.status.success(), "failed: {}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).unwrap()
}

/// Signs in to the portal; returns the HTTP status of the answer.
async fn sign_in(base: &str, email: &str, password: &str) -> u16 {
    let http =
        reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
    let page = http.get(format!("{base}/portal/sign-in")).send().await.unwrap();
    let cookie =
        page.headers()["set-cookie"].to_str().unwrap().split(';').next().unwrap().to_owned();
    let html = page.text().await.unwrap();
    let at = html.find(r#"name="csrf" value=""#).unwrap() + r#"name="csrf" value=""#.len();
    let csrf = &html[at..at + html[at..].find('"').unwrap()];
    let res = http
        .post(format!("{base}/portal/sign-in"))
        .header("cookie", cookie)
        .form(&[("csrf", csrf), ("email", email), ("password", password)])
        .send()
        .await
        .unwrap();
    res.status().as_u16()
}

#[tokio::test]
async fn users_are_created_listed_and_deactivated_and_sign_in_with_their_password() {
    let dir = tempfile::tempdir().unwrap();
    let server = serve(dir.path());

    let ada = ok_json(&users(
        &server,
        dir.path(),
        &[
            "create",
            "--org",
            "acme",
            "--email",
            "ada@acme.test",
            "--password-stdin",
            "--output",
            "json",
        ],
        Some("a passphrase from stdin\n"),
    ));
    assert_eq!(ada["role"], "admin");
    assert!(ada.get("password").is_none(), "a password given on stdin is not printed");

    let bob = ok_json(&users(
        &server,
        dir.path(),
        &[
            "create",
            "--org",
            "acme",
            "--email",
            "bob@acme.test",
            "--role",
            "viewer",
            "--output",
            "json",
        ],
        None,
    ));
    let generated = bob["password"].as_str().expect("a generated password is printed once");
    assert!(generated.len() >= 16);

    assert_eq!(sign_in(&server.base, "ada@acme.test", "a passphrase from stdin").await, 303);
    assert_eq!(sign_in(&server.base, "bob@acme.test", generated).await, 303);

    let table = users(&server, dir.path(), &["list", "--org", "acme"], None);
    let text = String::from_utf8(table.stdout).unwrap();
    assert!(text.contains("ada@acme.test") && text.contains("viewer"), "{text}");
    assert!(!text.contains(generated));

    let out = users(&server, dir.path(), &["deactivate", "bob@acme.test"], None);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(sign_in(&server.base, "bob@acme.test", generated).await, 401);

    let empty = users(
        &server,
        dir.path(),
        &["create", "--org", "acme", "--email", "c@acme.test", "--password-stdin"],
        Some(""),
    );
    assert!(!empty.status.success());
    assert!(String::from_utf8_lossy(&empty.stderr).contains("no password"));
}

#[tokio::test]
async fn a_user_of_the_platform_admins_organization_is_told_which_role_it_got() {
    let dir = tempfile::tempdir().unwrap();
    let server = serve(dir.path());
    // The organization the platform-admin credential belongs to.
    let org = tokenmint_server::bootstrap::PLATFORM_ORG;

    let out = users(&server, dir.path(), &["create", "--org", org, "--email", "ops@x.test"], None);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.contains("role") && text.contains("admin"), "{text}");
    assert!(text.contains("not a platform role"), "the table says what the role is not: {text}");

    let json = ok_json(&users(
        &server,
        dir.path(),
        &["create", "--org", org, "--email", "ops2@x.test", "--role", "viewer", "--output", "json"],
        None,
    ));
    assert_eq!(json["role"], "viewer");
    assert!(json["role_grants"].as_str().unwrap().contains("changes nothing"), "{json}");
    let platform = ok_json(&users(
        &server,
        dir.path(),
        &[
            "create",
            "--org",
            "acme",
            "--email",
            "root@x.test",
            "--role",
            "platform",
            "--output",
            "json",
        ],
        None,
    ));
    assert!(platform["role_grants"].as_str().unwrap().starts_with("platform"), "{platform}");
}

#[tokio::test]
async fn users_are_reactivated_given_another_role_and_reset_with_a_one_time_code() {
    let dir = tempfile::tempdir().unwrap();
    let server = serve(dir.path());
    let args = ["create", "--org", "acme", "--email", "eve@acme.test", "--role", "viewer"];
    let eve =
        ok_json(&users(&server, dir.path(), &[&args[..], &["--output", "json"]].concat(), None));
    let password = eve["password"].as_str().unwrap().to_owned();

    let updated = ok_json(&users(
        &server,
        dir.path(),
        &["update", "eve@acme.test", "--role", "admin", "--output", "json"],
        None,
    ));
    assert_eq!(updated["role"], "admin");
    let out = users(&server, dir.path(), &["deactivate", "eve@acme.test"], None);
    assert!(out.status.success());
    assert_eq!(sign_in(&server.base, "eve@acme.test", &password).await, 401);
    let back = ok_json(&users(
        &server,
        dir.path(),
        &["reactivate", "eve@acme.test", "--output", "json"],
        None,
    ));
    assert_eq!((back["status"].as_str(), back["role"].as_str()), (Some("active"), Some("admin")));
    assert_eq!(sign_in(&server.base, "eve@acme.test", &password).await, 303);

    let out = users(&server, dir.path(), &["reset-password", "eve@acme.test"], None);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.contains("tmr_") && text.contains("/portal/reset-password"), "{text}");
    assert!(String::from_utf8_lossy(&out.stderr).contains("shown this once"));
    let reset = ok_json(&users(
        &server,
        dir.path(),
        &["reset-password", eve["id"].as_str().unwrap(), "--output", "json"],
        None,
    ));
    assert!(reset["code"].as_str().unwrap().starts_with("tmr_"));
    assert!(!text.contains(reset["code"].as_str().unwrap()), "a new code each time");

    // An address held by a deactivated user in one organization and an active one in another:
    // reactivate names the deactivated one (whom the server will not reactivate while another
    // holds the address), never the active one; and it says when there is nothing to do.
    let args = ["create", "--org", "acme", "--email", "dave@x.test", "--role", "viewer"];
    let out = users(&server, dir.path(), &args, None);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(users(&server, dir.path(), &["deactivate", "dave@x.test"], None).status.success());
    let args = ["create", "--org", "globex", "--email", "dave@x.test", "--role", "viewer"];
    let out = users(&server, dir.path(), &args, None);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let out = users(&server, dir.path(), &["reactivate", "dave@x.test"], None);
    assert!(!out.status.success());
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(said.contains("another user has this email address"), "{said}");
    let eve_id = eve["id"].as_str().unwrap();
    let out = users(&server, dir.path(), &["reactivate", eve_id], None);
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).contains("already active"));
}

#[tokio::test]
async fn creating_a_user_in_a_missing_organization_says_the_organization_was_created() {
    let dir = tempfile::tempdir().unwrap();
    let server = serve(dir.path());
    let create = |email: &'static str| {
        let args = ["create", "--org", "newco", "--email", email, "--password-stdin"];
        users(&server, dir.path(), &args, Some("a passphrase from stdin\n"))
    };
    let first = create("ada@newco.test");
    assert!(first.status.success(), "{}", String::from_utf8_lossy(&first.stderr));
    let said = String::from_utf8_lossy(&first.stderr);
    assert!(
        said.contains(
            "Created the organization 'newco', which did not exist; `tokenmint orgs list` shows it."
        ),
        "{said}"
    );
    assert!(!String::from_utf8_lossy(&first.stdout).contains("Created the organization"));
    let second = create("bob@newco.test");
    assert!(second.status.success(), "{}", String::from_utf8_lossy(&second.stderr));
    assert!(!String::from_utf8_lossy(&second.stderr).contains("Created the organization"));
}

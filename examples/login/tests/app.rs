//! The login app, driven through actix-web's test service on a real FileStore.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failure report

use std::sync::Arc;

use actix_web::body::MessageBody;
use actix_web::dev::{Service, ServiceResponse};
use actix_web::http::header::{LOCATION, SET_COOKIE};
use actix_web::http::StatusCode;
use actix_web::test::{self, TestRequest};
use actix_web::App;
use session_actix::SessionMiddleware;
use session_core::Keyring;
use session_fs::FileStore;

struct Reply {
    status: StatusCode,
    body: String,
    location: Option<String>,
    set_cookie: Option<String>,
}

impl Reply {
    fn cookie(&self) -> String {
        self.set_cookie
            .as_deref()
            .unwrap()
            .split(';')
            .next()
            .unwrap()
            .to_owned()
    }
}

async fn send<S, B>(app: &S, request: TestRequest, cookie: Option<&str>) -> Reply
where
    S: Service<actix_http::Request, Response = ServiceResponse<B>, Error = actix_web::Error>,
    B: MessageBody,
{
    let request = match cookie {
        Some(cookie) => request.insert_header(("Cookie", cookie)),
        None => request,
    };
    let response = test::call_service(app, request.to_request()).await;
    let header = |name| {
        response
            .headers()
            .get(name)
            .map(|v: &actix_web::http::header::HeaderValue| v.to_str().unwrap().to_owned())
    };
    let (status, location, set_cookie) = (response.status(), header(LOCATION), header(SET_COOKIE));
    let body = String::from_utf8(test::read_body(response).await.to_vec()).unwrap();
    Reply {
        status,
        body,
        location,
        set_cookie,
    }
}

fn middleware() -> (SessionMiddleware, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(FileStore::open(dir.path().join("sessions")).unwrap());
    let keyring = Keyring::new([b"an example secret of thirty-two bytes".as_slice()]).unwrap();
    let builder = login::sessions_config(SessionMiddleware::builder(store, keyring));
    (builder.build().unwrap(), dir)
}

fn post_login(name: &str) -> TestRequest {
    TestRequest::post()
        .uri("/login")
        .insert_header(("Content-Type", "application/x-www-form-urlencoded"))
        .set_payload(format!("username={name}"))
}

#[actix_web::test]
async fn login_flow_logs_in_shows_the_escaped_name_and_logs_out_for_good() {
    let (middleware, _dir) = middleware();
    let app = test::init_service(App::new().wrap(middleware).configure(login::routes)).await;

    let anonymous = send(&app, TestRequest::get().uri("/"), None).await;
    assert!(anonymous.body.contains("You are not logged in"));
    assert!(anonymous.body.contains("href=\"/login\""));
    assert!(
        anonymous.set_cookie.is_none(),
        "an anonymous visit stored a session"
    );

    let form = send(&app, TestRequest::get().uri("/login"), None).await;
    assert!(form.body.contains("name=\"username\""));
    assert!(form.body.contains("method=\"post\""));

    // A pre-login session (planted or not) must not survive the login under its id.
    let visit = send(&app, TestRequest::post().uri("/logout"), None).await;
    assert_eq!(visit.status, StatusCode::SEE_OTHER);

    let login = send(&app, post_login("%3Cb%3EZo%C3%AB%3C%2Fb%3E"), None).await;
    assert_eq!(login.status, StatusCode::SEE_OTHER);
    assert_eq!(login.location.as_deref(), Some("/"));
    let cookie = login.cookie();

    let home = send(&app, TestRequest::get().uri("/"), Some(&cookie)).await;
    assert!(
        home.body.contains("Logged in as &lt;b&gt;Zoë&lt;/b&gt;"),
        "{}",
        home.body
    );
    assert!(home.body.contains("action=\"/logout\""));
    // The login's message, escaped, shown once.
    assert!(
        home.body.contains(
            "<p class=\"flash success\" role=\"status\">Logged in as &lt;b&gt;Zoë&lt;/b&gt;</p>"
        ),
        "{}",
        home.body
    );
    let reload = send(&app, TestRequest::get().uri("/"), Some(&cookie)).await;
    assert!(!reload.body.contains("class=\"flash"), "{}", reload.body);
    assert!(reload.body.contains("Logged in as &lt;b&gt;Zoë&lt;/b&gt;"));

    let relogin = send(&app, post_login("ada"), Some(&cookie)).await;
    assert_ne!(relogin.cookie(), cookie, "login kept the old id");
    let old = send(&app, TestRequest::get().uri("/"), Some(&cookie)).await;
    assert!(
        old.body.contains("You are not logged in"),
        "old id survived login"
    );
    let cookie = relogin.cookie();

    // Only a POST logs out: a link on another site cannot.
    let get = send(&app, TestRequest::get().uri("/logout"), Some(&cookie)).await;
    assert!(get.status.is_client_error(), "{:?}", get.status);
    let logout = send(&app, TestRequest::post().uri("/logout"), Some(&cookie)).await;
    assert_eq!(logout.status, StatusCode::SEE_OTHER);
    // The logout's message lives in a new session: the old id is gone, and the new
    // cookie shows "Logged out" once, then its session ends.
    let farewell = logout.cookie();
    assert_ne!(farewell, cookie, "logout kept the old id");
    let shown = send(&app, TestRequest::get().uri("/"), Some(&farewell)).await;
    assert!(shown
        .body
        .contains("class=\"flash info\" role=\"status\">Logged out</p>"));
    assert!(shown.body.contains("You are not logged in"));
    assert!(
        shown.set_cookie.unwrap().contains("Max-Age=0"),
        "the message's session outlived it"
    );
    let reload = send(&app, TestRequest::get().uri("/"), Some(&farewell)).await;
    assert!(!reload.body.contains("Logged out"), "shown twice");
    let after = send(&app, TestRequest::get().uri("/"), Some(&cookie)).await;
    assert!(
        after.body.contains("You are not logged in"),
        "the old cookie still logs in"
    );
}

#[actix_web::test]
async fn login_refuses_an_empty_name() {
    let (middleware, _dir) = middleware();
    let app = test::init_service(App::new().wrap(middleware).configure(login::routes)).await;
    let reply = send(&app, post_login("+++"), None).await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST);
    assert!(reply.set_cookie.is_none());
}

fn post(uri: &str) -> TestRequest {
    TestRequest::post().uri(uri)
}

/// Logs `name` in from a browser that says it is `agent`; returns its cookie.
async fn log_in_from<S, B>(app: &S, name: &str, agent: &str) -> String
where
    S: Service<actix_http::Request, Response = ServiceResponse<B>, Error = actix_web::Error>,
    B: MessageBody,
{
    let reply = send(
        app,
        post_login(name).insert_header(("User-Agent", agent)),
        None,
    )
    .await;
    assert_eq!(reply.status, StatusCode::SEE_OTHER);
    reply.cookie()
}

/// The handles in a devices page's Revoke forms.
fn revoke_actions(body: &str) -> Vec<String> {
    body.split("action=\"")
        .skip(1)
        .filter_map(|rest| rest.split('"').next())
        .filter(|action| action.ends_with("/revoke"))
        .map(str::to_owned)
        .collect()
}

#[actix_web::test]
async fn the_devices_page_lists_a_users_sessions_and_ends_the_others() {
    let (middleware, _dir) = middleware();
    let app = test::init_service(App::new().wrap(middleware).configure(login::routes)).await;

    let logged_out = send(&app, TestRequest::get().uri("/sessions"), None).await;
    assert_eq!(logged_out.status, StatusCode::SEE_OTHER);
    assert_eq!(logged_out.location.as_deref(), Some("/login"));
    let logged_out = send(&app, post("/sessions/revoke-others"), None).await;
    assert_eq!(logged_out.location.as_deref(), Some("/login"));

    let laptop = log_in_from(&app, "ada", "Laptop <script>").await;
    let phone = log_in_from(&app, "ada", "Phone").await;
    let bobs = log_in_from(&app, "bob", "Bob's browser").await;

    let home = send(&app, TestRequest::get().uri("/"), Some(&laptop)).await;
    assert!(home.body.contains("href=\"/sessions\""), "{}", home.body);
    let page = send(&app, TestRequest::get().uri("/sessions"), Some(&laptop)).await;
    assert_eq!(page.status, StatusCode::OK);
    assert_eq!(page.body.matches("<tr").count(), 3, "{}", page.body);
    assert_eq!(page.body.matches("This device").count(), 1);
    assert!(page.body.contains("Laptop &lt;script&gt;"), "{}", page.body);
    assert!(!page.body.contains("<script>"));
    assert!(page.body.contains("Phone"));
    assert!(!page.body.contains("Bob"), "another user's session listed");
    assert_eq!(revoke_actions(&page.body).len(), 1);
    assert!(page.body.contains("Log out everywhere else"));
    assert!(page.body.contains("<style>"));

    // Only POSTs change anything.
    let get = send(
        &app,
        TestRequest::get().uri("/sessions/revoke-others"),
        Some(&laptop),
    )
    .await;
    assert!(get.status.is_client_error(), "{:?}", get.status);
    let still = send(&app, TestRequest::get().uri("/"), Some(&phone)).await;
    assert!(still.body.contains("Logged in as ada"));

    let revoked = send(&app, post("/sessions/revoke-others"), Some(&laptop)).await;
    assert_eq!(revoked.status, StatusCode::SEE_OTHER);
    assert_eq!(revoked.location.as_deref(), Some("/sessions"));
    let page = send(&app, TestRequest::get().uri("/sessions"), Some(&laptop)).await;
    assert_eq!(page.body.matches("<tr").count(), 2, "{}", page.body);
    assert!(
        page.body.contains("Logged out of 1 other session"),
        "{}",
        page.body
    );
    assert!(revoke_actions(&page.body).is_empty());
    let gone = send(&app, TestRequest::get().uri("/"), Some(&phone)).await;
    assert!(gone.body.contains("You are not logged in"), "{}", gone.body);
    let kept = send(&app, TestRequest::get().uri("/"), Some(&laptop)).await;
    assert!(kept.body.contains("Logged in as ada"), "{}", kept.body);
    let bob = send(&app, TestRequest::get().uri("/"), Some(&bobs)).await;
    assert!(
        bob.body.contains("Logged in as bob"),
        "another user was logged out"
    );
}

#[actix_web::test]
async fn revoke_ends_one_session_of_the_user_and_nothing_of_another_user() {
    let (middleware, _dir) = middleware();
    let app = test::init_service(App::new().wrap(middleware).configure(login::routes)).await;
    let laptop = log_in_from(&app, "ada", "Laptop").await;
    let phone = log_in_from(&app, "ada", "Phone").await;
    let bob_laptop = log_in_from(&app, "bob", "Laptop").await;
    let bob_phone = log_in_from(&app, "bob", "Phone").await;

    // Ada posts the handle of one of Bob's sessions: nothing happens to it.
    let bobs_page = send(&app, TestRequest::get().uri("/sessions"), Some(&bob_laptop)).await;
    let [bobs_other] = revoke_actions(&bobs_page.body).try_into().unwrap();
    let reply = send(&app, post(&bobs_other), Some(&laptop)).await;
    assert_eq!(reply.location.as_deref(), Some("/sessions"));
    let bob = send(&app, TestRequest::get().uri("/"), Some(&bob_phone)).await;
    assert!(
        bob.body.contains("Logged in as bob"),
        "ada ended bob's session"
    );

    // A handle that is not one is refused without harm.
    let reply = send(&app, post("/sessions/..%2F..%2Fetc/revoke"), Some(&laptop)).await;
    assert!(reply.status.is_redirection() || reply.status.is_client_error());

    let page = send(&app, TestRequest::get().uri("/sessions"), Some(&laptop)).await;
    let [other] = revoke_actions(&page.body).try_into().unwrap();
    let reply = send(&app, post(&other), Some(&laptop)).await;
    assert_eq!(reply.status, StatusCode::SEE_OTHER);
    let phone = send(&app, TestRequest::get().uri("/"), Some(&phone)).await;
    assert!(phone.body.contains("You are not logged in"));
    let laptop = send(&app, TestRequest::get().uri("/"), Some(&laptop)).await;
    assert!(laptop.body.contains("Logged in as ada"));
}

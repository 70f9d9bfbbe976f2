//! Users' sessions through the `Session` extractor: log in, list, end one, end the others,
//! end all, and what the browser is told each time.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failure report

use actix_web::body::MessageBody;
use actix_web::dev::ServiceResponse;
use actix_web::http::header::{COOKIE, SET_COOKIE, USER_AGENT};
use actix_web::test::{self, TestRequest};
use actix_web::{web, App};
use session_actix::{
    DeviceInfo, Keyring, MemoryStore, Session, SessionError, SessionHandle, SessionMiddleware,
};

async fn login(session: Session, user: web::Path<String>) -> Result<String, SessionError> {
    session.log_in(user.into_inner())?;
    Ok("in".to_owned())
}

async fn whoami(session: Session) -> Result<String, SessionError> {
    Ok(session.user()?.unwrap_or_default())
}

/// One line per session: `handle current agent`.
async fn list(session: Session) -> Result<String, SessionError> {
    Ok(session
        .sessions()
        .await?
        .iter()
        .map(|s| {
            let agent = s.device.as_ref().and_then(|d| d.user_agent.clone());
            format!("{} {} {}\n", s.handle, s.current, agent.unwrap_or_default())
        })
        .collect())
}

async fn end(session: Session, handle: web::Path<String>) -> Result<String, SessionError> {
    let handle = SessionHandle::parse(&handle).unwrap();
    Ok(session.end_session(&handle).await?.to_string())
}

async fn others(session: Session) -> Result<String, SessionError> {
    Ok(session.end_other_sessions().await?.to_string())
}

async fn all(session: Session) -> Result<String, SessionError> {
    Ok(session.end_all_sessions().await?.to_string())
}

struct Reply {
    body: String,
    set_cookie: Option<String>,
}

async fn reply<B: MessageBody>(response: ServiceResponse<B>) -> Reply {
    let set_cookie = response
        .headers()
        .get(SET_COOKIE)
        .map(|v| v.to_str().unwrap().to_owned());
    let body = String::from_utf8(test::read_body(response).await.to_vec()).unwrap();
    Reply { body, set_cookie }
}

fn pair(set_cookie: &str) -> String {
    set_cookie.split(';').next().unwrap().to_owned()
}

#[actix_web::test]
async fn a_user_lists_and_ends_their_sessions() {
    let sessions =
        SessionMiddleware::builder(MemoryStore::new(), Keyring::new([[5u8; 32]]).unwrap())
            .device_info(DeviceInfo::Keep)
            .build()
            .unwrap();
    let app = test::init_service(
        App::new()
            .wrap(sessions)
            .route("/login/{user}", web::get().to(login))
            .route("/me", web::get().to(whoami))
            .route("/sessions", web::get().to(list))
            .route("/end/{handle}", web::get().to(end))
            .route("/others", web::get().to(others))
            .route("/all", web::get().to(all)),
    )
    .await;
    let get = |path: &str, cookie: Option<&str>, agent: &str| {
        let mut request = TestRequest::get()
            .uri(path)
            .insert_header((USER_AGENT, agent.to_owned()));
        if let Some(cookie) = cookie {
            request = request.insert_header((COOKIE, cookie.to_owned()));
        }
        request.to_request()
    };
    let mut browsers = Vec::new();
    for agent in ["laptop", "phone", "tablet"] {
        let logged_in = reply(test::call_service(&app, get("/login/ada", None, agent)).await).await;
        browsers.push(pair(&logged_in.set_cookie.unwrap()));
    }
    let bob = reply(test::call_service(&app, get("/login/bob", None, "bob")).await).await;
    let bob = pair(&bob.set_cookie.unwrap());
    let me = |cookie: &str| {
        let request = get("/me", Some(cookie), "any");
        let app = &app;
        async move { reply(test::call_service(app, request).await).await.body }
    };
    assert_eq!(me(&browsers[0]).await, "ada");

    let listed =
        reply(test::call_service(&app, get("/sessions", Some(&browsers[0]), "laptop")).await)
            .await
            .body;
    let lines: Vec<&str> = listed.lines().collect();
    assert_eq!(lines.len(), 3, "{listed}");
    assert_eq!(lines.iter().filter(|l| l.contains(" true ")).count(), 1);
    assert!(listed.contains(" true laptop"), "{listed}");
    assert!(listed.contains(" false phone") && listed.contains(" false tablet"));

    // End the phone's session by its handle.
    let phone = lines.iter().find(|l| l.ends_with("phone")).unwrap();
    let handle = phone.split(' ').next().unwrap();
    let ended = reply(
        test::call_service(
            &app,
            get(&format!("/end/{handle}"), Some(&browsers[0]), "laptop"),
        )
        .await,
    )
    .await;
    assert_eq!(ended.body, "true");
    assert_eq!(
        me(&browsers[1]).await,
        "",
        "the revoked phone is still logged in"
    );
    assert_eq!(me(&browsers[2]).await, "ada");

    // Log out everywhere else, from the tablet.
    let others =
        reply(test::call_service(&app, get("/others", Some(&browsers[2]), "tablet")).await).await;
    assert_eq!(others.body, "1");
    assert!(
        others.set_cookie.is_none(),
        "the current session's cookie changed"
    );
    assert_eq!(me(&browsers[0]).await, "");
    assert_eq!(me(&browsers[2]).await, "ada");
    assert_eq!(me(&bob).await, "bob", "another user was logged out");

    // Log out everywhere: this session too, and its cookie is removed.
    let all =
        reply(test::call_service(&app, get("/all", Some(&browsers[2]), "tablet")).await).await;
    assert_eq!(all.body, "0");
    assert!(all.set_cookie.unwrap().contains("Max-Age=0"));
    assert_eq!(me(&browsers[2]).await, "");
    assert_eq!(me(&bob).await, "bob");
}

#[actix_web::test]
async fn without_device_info_nothing_of_the_browser_is_kept() {
    let store = MemoryStore::new();
    let sessions = SessionMiddleware::new(store.clone(), Keyring::new([[5u8; 32]]).unwrap());
    let app = test::init_service(
        App::new()
            .wrap(sessions)
            .route("/login/{user}", web::get().to(login))
            .route("/sessions", web::get().to(list)),
    )
    .await;
    let request = TestRequest::get()
        .uri("/login/ada")
        .insert_header((USER_AGENT, "secret-agent"))
        .to_request();
    let cookie = pair(
        &reply(test::call_service(&app, request).await)
            .await
            .set_cookie
            .unwrap(),
    );
    let request = TestRequest::get()
        .uri("/sessions")
        .insert_header((COOKIE, cookie))
        .to_request();
    let listed = reply(test::call_service(&app, request).await).await.body;
    assert_eq!(listed.lines().count(), 1);
    assert!(!listed.contains("secret-agent"), "{listed}");
}

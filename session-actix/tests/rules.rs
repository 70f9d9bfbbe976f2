//! Every session rule of docs/design.md, through actix-web, against `MemoryStore` and
//! `FileStore`. Each rule is one function, run once per store by the `rules!` macro.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failure report

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use actix_web::body::MessageBody;
use actix_web::dev::{Service, ServiceResponse};
use actix_web::http::header::{HeaderValue, SET_COOKIE, VARY};
use actix_web::http::StatusCode;
use actix_web::test::{self, TestRequest};
use actix_web::{web, App, HttpResponse};
use session_actix::{Session, SessionError, SessionMiddleware, SessionMiddlewareBuilder};
use session_core::{ConfigError, IdLength, Keyring, MemoryStore, SessionId};
use session_fs::FileStore;
use session_testkit::CountingStore;

type Counted = Arc<CountingStore>;

fn keyring() -> Keyring {
    Keyring::new([[1u8; 32]]).unwrap()
}

fn scratch_dir() -> PathBuf {
    let base = Path::new(env!("CARGO_TARGET_TMPDIR")).join("session-actix-rules");
    std::fs::create_dir_all(&base).unwrap();
    // Private, as `FileStore` requires of a directory it did not create.
    tempfile::Builder::new()
        .permissions(std::os::unix::fs::PermissionsExt::from_mode(0o700))
        .tempdir_in(base)
        .unwrap()
        .keep()
}

fn memory_store() -> Counted {
    Arc::new(CountingStore::new(Arc::new(MemoryStore::new())))
}

fn file_store() -> Counted {
    Arc::new(CountingStore::new(Arc::new(
        FileStore::open(scratch_dir()).unwrap(),
    )))
}

fn builder(store: &Counted) -> SessionMiddlewareBuilder {
    SessionMiddleware::builder(Arc::clone(store), keyring())
}

async fn counter(session: Session) -> Result<String, SessionError> {
    Ok(session.get::<i64>("counter")?.unwrap_or(0).to_string())
}

async fn incr(session: Session) -> Result<String, SessionError> {
    let n = session.get::<i64>("counter")?.unwrap_or(0) + 1;
    session.insert("counter", n)?;
    Ok(n.to_string())
}

async fn app(
    middleware: SessionMiddleware,
) -> impl Service<
    actix_http::Request,
    Response = ServiceResponse<impl MessageBody>,
    Error = actix_web::Error,
> {
    test::init_service(
        App::new()
            .wrap(middleware)
            .route("/untouched", web::get().to(|| async { "ok" }))
            .route("/read", web::get().to(counter))
            .route("/incr", web::get().to(incr))
            .route(
                "/same",
                web::get().to(|s: Session| async move {
                    let n = s.get::<i64>("counter")?.unwrap_or(0);
                    s.insert("counter", n)?;
                    Ok::<_, SessionError>("same")
                }),
            )
            .route(
                "/clear",
                web::get().to(|s: Session| async move { s.clear().map(|()| "cleared") }),
            )
            .route(
                "/login",
                web::get().to(|s: Session| async move {
                    s.regenerate()?;
                    s.insert("user", "ada")?;
                    Ok::<_, SessionError>("welcome")
                }),
            )
            .route(
                "/logout",
                web::get().to(|s: Session| async move { s.destroy().map(|()| "bye") }),
            )
            .route(
                "/temporary",
                web::get().to(|s: Session| async move {
                    s.set_permanent(false)?;
                    s.insert("counter", 1)?;
                    Ok::<_, SessionError>("tmp")
                }),
            )
            .route(
                "/fail",
                web::get().to(|s: Session| async move {
                    s.insert("counter", 99)?;
                    Ok::<_, SessionError>(HttpResponse::InternalServerError().finish())
                }),
            )
            .route(
                "/vary",
                web::get().to(|s: Session| async move {
                    let _ = s.len();
                    HttpResponse::Ok()
                        .insert_header((VARY, "Accept-Encoding"))
                        .finish()
                }),
            ),
    )
    .await
}

/// What a response said that the rules care about.
#[derive(Debug)]
struct Reply {
    status: StatusCode,
    body: String,
    set_cookies: Vec<String>,
    vary: Vec<String>,
}

impl Reply {
    /// The `name=value` pair of the only Set-Cookie, for the next request.
    fn cookie(&self) -> String {
        assert_eq!(self.set_cookies.len(), 1, "{self:?}");
        self.set_cookies[0].split(';').next().unwrap().to_owned()
    }

    fn value(&self) -> String {
        self.cookie().split_once('=').unwrap().1.to_owned()
    }
}

async fn get<S, B>(app: &S, path: &str, cookie: Option<&str>) -> Reply
where
    S: Service<actix_http::Request, Response = ServiceResponse<B>, Error = actix_web::Error>,
    B: MessageBody,
{
    let mut request = TestRequest::get().uri(path);
    if let Some(cookie) = cookie {
        request = request.insert_header(("Cookie", cookie));
    }
    let response = test::call_service(app, request.to_request()).await;
    let status = response.status();
    let headers = response.headers().clone();
    let all = |name| {
        headers
            .get_all(name)
            .map(|v: &HeaderValue| v.to_str().unwrap().to_owned())
            .collect::<Vec<_>>()
    };
    let (set_cookies, vary) = (all(SET_COOKIE), all(VARY));
    let body = test::read_body(response).await;
    Reply {
        status,
        body: String::from_utf8(body.to_vec()).unwrap(),
        set_cookies,
        vary,
    }
}

macro_rules! rules {
    ($($rule:ident),* $(,)?) => {
        mod memory {
            $( #[actix_web::test] async fn $rule() { super::$rule(super::memory_store()).await } )*
        }
        mod file {
            $( #[actix_web::test] async fn $rule() { super::$rule(super::file_store()).await } )*
        }
    };
}

rules!(
    a_route_without_the_extractor_costs_nothing,
    reading_an_empty_session_stores_nothing_and_sets_no_cookie,
    inserting_stores_once_and_sets_a_secure_signed_cookie,
    the_next_request_sees_the_data,
    an_unmodified_session_is_never_rewritten,
    inserting_an_equal_value_is_not_a_write,
    refresh_moves_the_expiry_at_most_once_per_threshold,
    refresh_can_be_turned_off,
    a_non_permanent_session_gets_a_browser_session_cookie,
    regenerate_gives_a_new_id_and_kills_the_old_one,
    destroy_deletes_the_record_and_removes_the_cookie_with_its_attributes,
    clearing_every_key_deletes_the_record,
    nothing_is_written_when_the_handler_answers_5xx,
    vary_cookie_is_added_to_existing_vary,
    a_tampered_cookie_gets_a_fresh_session_without_io,
    an_unknown_id_is_never_adopted,
    a_cookie_that_leads_nowhere_is_left_alone,
    a_cookie_signed_with_an_old_key_is_resigned,
    an_expired_session_is_a_fresh_one,
    an_absolute_timeout_ends_an_active_session,
);

async fn a_route_without_the_extractor_costs_nothing(store: Counted) {
    let app = app(builder(&store).build().unwrap()).await;
    let first = get(&app, "/incr", None).await;
    store.reset();
    let reply = get(&app, "/untouched", Some(&first.cookie())).await;
    assert_eq!(reply.body, "ok");
    assert!(reply.set_cookies.is_empty());
    assert!(reply.vary.is_empty(), "{reply:?}");
    assert_eq!(store.total(), 0, "lazy loading broken");
}

async fn reading_an_empty_session_stores_nothing_and_sets_no_cookie(store: Counted) {
    let app = app(builder(&store).build().unwrap()).await;
    let reply = get(&app, "/read", None).await;
    assert_eq!(reply.body, "0");
    assert!(reply.set_cookies.is_empty(), "{reply:?}");
    assert_eq!(reply.vary, ["Cookie"]);
    assert_eq!(store.total(), 0);
}

async fn inserting_stores_once_and_sets_a_secure_signed_cookie(store: Counted) {
    let app = app(builder(&store).build().unwrap()).await;
    let reply = get(&app, "/incr", None).await;
    assert_eq!(reply.body, "1");
    assert_eq!((store.count("create"), store.total()), (1, 1));
    let header = &reply.set_cookies[0];
    for attribute in [
        "HttpOnly",
        "SameSite=Lax",
        "Path=/",
        "Max-Age=2678400",
        "Expires=",
    ] {
        assert!(header.contains(attribute), "{attribute} missing: {header}");
    }
    let value = reply.value();
    let (id, signature) = value.split_once('.').unwrap();
    assert_eq!((id.len(), signature.len()), (43, 43));
    assert!(keyring()
        .verify("session", &value, IdLength::default())
        .is_some());
}

async fn the_next_request_sees_the_data(store: Counted) {
    let app = app(builder(&store).build().unwrap()).await;
    let cookie = get(&app, "/incr", None).await.cookie();
    store.reset();
    let reply = get(&app, "/incr", Some(&cookie)).await;
    assert_eq!(reply.body, "2");
    assert_eq!(
        (store.count("load"), store.count("update"), store.total()),
        (1, 1, 2)
    );
    assert_eq!(get(&app, "/read", Some(&cookie)).await.body, "2");
}

async fn an_unmodified_session_is_never_rewritten(store: Counted) {
    let app = app(builder(&store).build().unwrap()).await;
    let cookie = get(&app, "/incr", None).await.cookie();
    store.reset();
    for _ in 0..3 {
        let reply = get(&app, "/read", Some(&cookie)).await;
        assert_eq!(reply.body, "1");
        assert!(reply.set_cookies.is_empty(), "{reply:?}");
        assert_eq!(reply.vary, ["Cookie"]);
    }
    // Just created, so the refresh threshold has not passed: loads only.
    assert_eq!((store.count("load"), store.total()), (3, 3));
}

async fn inserting_an_equal_value_is_not_a_write(store: Counted) {
    let app = app(builder(&store).build().unwrap()).await;
    let cookie = get(&app, "/incr", None).await.cookie();
    store.reset();
    assert_eq!(get(&app, "/same", Some(&cookie)).await.body, "same");
    assert_eq!((store.count("update"), store.total()), (0, 1));
}

async fn refresh_moves_the_expiry_at_most_once_per_threshold(store: Counted) {
    let threshold = Duration::from_millis(300);
    for permanent in [true, false] {
        let app = app(builder(&store)
            .refresh_threshold(threshold)
            .permanent(permanent)
            .build()
            .unwrap())
        .await;
        let cookie = get(&app, "/incr", None).await.cookie();
        store.reset();
        get(&app, "/read", Some(&cookie)).await;
        assert_eq!(store.total(), 1, "more than a load before the threshold");
        tokio::time::sleep(threshold + Duration::from_millis(50)).await;
        let reply = get(&app, "/read", Some(&cookie)).await;
        if permanent {
            // A permanent cookie's Max-Age slides with the server-side expiry: it goes out
            // with one conditional write of the unchanged record, which also moves the
            // expiry and notes the cookie.
            assert_eq!((store.count("touch"), store.count("update")), (0, 1));
            assert_eq!(reply.cookie(), cookie);
            assert!(reply.set_cookies[0].contains("Max-Age=2678400"));
        } else {
            assert_eq!((store.count("touch"), store.count("update")), (1, 0));
            assert!(reply.set_cookies.is_empty(), "{reply:?}");
        }
        assert_eq!(reply.body, "1");
        get(&app, "/read", Some(&cookie)).await;
        assert_eq!(
            store.count("touch") + store.count("update"),
            1,
            "refreshed twice within the threshold"
        );
    }
}

async fn refresh_can_be_turned_off(store: Counted) {
    let middleware = builder(&store)
        .refresh_each_request(false)
        .refresh_threshold(Duration::ZERO)
        .build()
        .unwrap();
    let app = app(middleware).await;
    let cookie = get(&app, "/incr", None).await.cookie();
    store.reset();
    tokio::time::sleep(Duration::from_millis(20)).await;
    let reply = get(&app, "/read", Some(&cookie)).await;
    assert!(reply.set_cookies.is_empty());
    assert_eq!((store.count("touch"), store.total()), (0, 1));
}

async fn a_non_permanent_session_gets_a_browser_session_cookie(store: Counted) {
    let app = app(builder(&store).build().unwrap()).await;
    let reply = get(&app, "/temporary", None).await;
    let header = &reply.set_cookies[0];
    assert!(
        !header.contains("Max-Age") && !header.contains("Expires"),
        "{header}"
    );
    // The choice is stored with the session: a later write needs no new cookie.
    let next = get(&app, "/incr", Some(&reply.cookie())).await;
    assert_eq!(next.body, "2");
    assert!(next.set_cookies.is_empty(), "{next:?}");
    let app = app_with_default_permanent_off(&store).await;
    let reply = get(&app, "/incr", None).await;
    assert!(!reply.set_cookies[0].contains("Max-Age"), "{reply:?}");
}

async fn app_with_default_permanent_off(
    store: &Counted,
) -> impl Service<
    actix_http::Request,
    Response = ServiceResponse<impl MessageBody>,
    Error = actix_web::Error,
> {
    app(builder(store).permanent(false).build().unwrap()).await
}

async fn regenerate_gives_a_new_id_and_kills_the_old_one(store: Counted) {
    let app = app(builder(&store).build().unwrap()).await;
    let before = get(&app, "/incr", None).await.cookie();
    store.reset();
    let login = get(&app, "/login", Some(&before)).await;
    let after = login.cookie();
    assert_ne!(before, after);
    // The old record is deleted only if no other request wrote it meanwhile.
    assert_eq!(
        (store.count("delete_if_unchanged"), store.count("create")),
        (1, 1)
    );
    // Same data under the new id; the old cookie leads nowhere.
    assert_eq!(get(&app, "/read", Some(&after)).await.body, "1");
    assert_eq!(get(&app, "/read", Some(&before)).await.body, "0");
}

async fn destroy_deletes_the_record_and_removes_the_cookie_with_its_attributes(store: Counted) {
    let middleware = builder(&store)
        .cookie_name("__Host-sid")
        .cookie_same_site(session_actix::SameSite::Strict)
        .cookie_partitioned(true)
        .build()
        .unwrap();
    let app = app(middleware).await;
    let created = get(&app, "/incr", None).await;
    let cookie = created.cookie();
    store.reset();
    let reply = get(&app, "/logout", Some(&cookie)).await;
    assert_eq!(store.count("delete_if_unchanged"), 1);
    let removal = &reply.set_cookies[0];
    assert!(removal.starts_with("__Host-sid=;"), "{removal}");
    assert!(removal.contains("Max-Age=0"), "{removal}");
    let attributes = |h: &str| {
        let mut a: Vec<String> = h
            .split("; ")
            .skip(1)
            .filter(|a| !a.starts_with("Max-Age") && !a.starts_with("Expires"))
            .map(str::to_owned)
            .collect();
        a.sort();
        a
    };
    assert_eq!(attributes(removal), attributes(&created.set_cookies[0]));
    assert!(attributes(removal).contains(&"Secure".to_owned()));
    assert!(attributes(removal).contains(&"Partitioned".to_owned()));
    assert_eq!(get(&app, "/read", Some(&cookie)).await.body, "0");
}

async fn clearing_every_key_deletes_the_record(store: Counted) {
    let app = app(builder(&store).build().unwrap()).await;
    let cookie = get(&app, "/incr", None).await.cookie();
    store.reset();
    let reply = get(&app, "/clear", Some(&cookie)).await;
    // Conditional, so that the answer knows whether this request ended the session.
    assert_eq!(store.count("delete_if_unchanged"), 1);
    assert!(reply.set_cookies[0].contains("Max-Age=0"), "{reply:?}");
    assert_eq!(get(&app, "/read", Some(&cookie)).await.body, "0");
}

async fn nothing_is_written_when_the_handler_answers_5xx(store: Counted) {
    let app = app(builder(&store).build().unwrap()).await;
    let reply = get(&app, "/fail", None).await;
    assert_eq!(reply.status, StatusCode::INTERNAL_SERVER_ERROR);
    assert!(reply.set_cookies.is_empty());
    assert_eq!(store.total(), 0);
    let cookie = get(&app, "/incr", None).await.cookie();
    store.reset();
    get(&app, "/fail", Some(&cookie)).await;
    assert_eq!((store.count("update"), store.total()), (0, 1));
    assert_eq!(get(&app, "/read", Some(&cookie)).await.body, "1");
}

async fn vary_cookie_is_added_to_existing_vary(store: Counted) {
    let app = app(builder(&store).build().unwrap()).await;
    let reply = get(&app, "/vary", None).await;
    assert_eq!(reply.vary, ["Accept-Encoding", "Cookie"]);
}

async fn a_tampered_cookie_gets_a_fresh_session_without_io(store: Counted) {
    let app = app(builder(&store).build().unwrap()).await;
    let cookie = get(&app, "/incr", None).await.cookie();
    let mut bytes = cookie.clone().into_bytes();
    let at = "session=".len() + 5;
    bytes[at] = if bytes[at] == b'A' { b'B' } else { b'A' };
    let tampered = String::from_utf8(bytes).unwrap();
    store.reset();
    assert_eq!(get(&app, "/read", Some(&tampered)).await.body, "0");
    assert_eq!(store.count("load"), 0, "a forged cookie reached the store");
    let reply = get(&app, "/incr", Some(&tampered)).await;
    assert_eq!(reply.body, "1");
    let tampered_id = &tampered["session=".len()..][..43];
    assert!(!reply.set_cookies[0].contains(tampered_id));
    for garbage in [
        "session=",
        "session=../../etc/passwd",
        "session=a.b",
        "session=%00; session=x.y",
    ] {
        assert_eq!(get(&app, "/read", Some(garbage)).await.body, "0");
    }
}

async fn an_unknown_id_is_never_adopted(store: Counted) {
    let app = app(builder(&store).build().unwrap()).await;
    // Validly signed, but the server never stored it (or it was deleted).
    let planted = SessionId::generate(IdLength::default()).unwrap();
    let value = keyring().sign("session", &planted);
    let reply = get(&app, "/incr", Some(&format!("session={value}"))).await;
    assert_eq!(reply.body, "1");
    assert!(
        !reply.set_cookies[0].contains(planted.as_str()),
        "fixation: {reply:?}"
    );
}

/// A late answer to a request sent before a logout and a login must not delete the
/// cookie the login set: only the request that ended a session removes its cookie.
async fn a_cookie_that_leads_nowhere_is_left_alone(store: Counted) {
    let app = app(builder(&store).build().unwrap()).await;
    let old = get(&app, "/incr", None).await.cookie();
    let logout = get(&app, "/logout", Some(&old)).await;
    assert_eq!(logout.set_cookies.len(), 1, "the logout removes its cookie");
    for route in ["/read", "/clear"] {
        let late = get(&app, route, Some(&old)).await;
        assert!(late.set_cookies.is_empty(), "{route}: {late:?}");
    }
    let forged = get(&app, "/read", Some("session=forged.value")).await;
    assert!(forged.set_cookies.is_empty(), "{forged:?}");
}

async fn a_cookie_signed_with_an_old_key_is_resigned(store: Counted) {
    let old = app(builder(&store).build().unwrap()).await;
    let cookie = get(&old, "/incr", None).await.cookie();
    let new_first = Keyring::new([[2u8; 32], [1u8; 32]]).unwrap();
    let rotated = SessionMiddleware::builder(Arc::clone(&store), new_first)
        .build()
        .unwrap();
    let rotated = app(rotated).await;
    let reply = get(&rotated, "/read", Some(&cookie)).await;
    assert_eq!(reply.body, "1");
    let resigned = reply.value();
    assert_ne!(format!("session={resigned}"), cookie);
    let only_new = Keyring::new([[2u8; 32]]).unwrap();
    let verified = only_new
        .verify("session", &resigned, IdLength::default())
        .unwrap();
    assert!(
        cookie.contains(verified.id().as_str()),
        "re-signing changed the id"
    );
}

async fn an_expired_session_is_a_fresh_one(store: Counted) {
    let app = app(builder(&store)
        .lifetime(Duration::from_millis(400))
        .build()
        .unwrap())
    .await;
    let cookie = get(&app, "/incr", None).await.cookie();
    tokio::time::sleep(Duration::from_millis(600)).await;
    let reply = get(&app, "/incr", Some(&cookie)).await;
    assert_eq!(reply.body, "1");
    assert_ne!(reply.cookie(), cookie);
}

async fn an_absolute_timeout_ends_an_active_session(store: Counted) {
    let middleware = builder(&store)
        .absolute_timeout(Duration::from_millis(500))
        .refresh_threshold(Duration::ZERO)
        .build()
        .unwrap();
    let app = app(middleware).await;
    let cookie = get(&app, "/incr", None).await.cookie();
    for _ in 0..3 {
        tokio::time::sleep(Duration::from_millis(100)).await;
        get(&app, "/incr", Some(&cookie)).await;
    }
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert_eq!(get(&app, "/read", Some(&cookie)).await.body, "0");
}

/// Only a store that can really fail can show the 503: a `FileStore` whose directory was
/// replaced by a plain file gets ENOTDIR from the operating system.
#[actix_web::test]
async fn a_store_failure_answers_503_and_is_configurable() {
    let dir = scratch_dir();
    let store: Counted = Arc::new(CountingStore::new(Arc::new(FileStore::open(&dir).unwrap())));
    let app503 = app(builder(&store).build().unwrap()).await;
    let app500 = app(builder(&store)
        .error_status(StatusCode::INTERNAL_SERVER_ERROR)
        .build()
        .unwrap())
    .await;
    let cookie = get(&app503, "/incr", None).await.cookie();

    std::fs::rename(&dir, dir.with_extension("moved")).unwrap();
    std::fs::write(&dir, b"not a directory").unwrap();

    let load_fails = get(&app503, "/read", Some(&cookie)).await;
    assert_eq!(load_fails.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(load_fails.body, "session store unavailable");
    let create_fails = get(&app503, "/incr", None).await;
    assert_eq!(create_fails.status, StatusCode::SERVICE_UNAVAILABLE);
    assert!(create_fails.set_cookies.is_empty());
    assert_eq!(
        get(&app500, "/read", Some(&cookie)).await.status,
        StatusCode::INTERNAL_SERVER_ERROR
    );

    // When the directory comes back, so do the sessions.
    std::fs::remove_file(&dir).unwrap();
    std::fs::rename(dir.with_extension("moved"), &dir).unwrap();
    assert_eq!(get(&app503, "/read", Some(&cookie)).await.body, "1");
}

#[test]
fn an_error_status_that_is_no_error_is_refused_at_build() {
    let store = memory_store();
    for status in [
        StatusCode::OK,
        StatusCode::SWITCHING_PROTOCOLS,
        StatusCode::NOT_MODIFIED,
    ] {
        let built = builder(&store).error_status(status).build();
        assert!(
            matches!(built, Err(ConfigError::ErrorStatus(code)) if code == status.as_u16()),
            "{status}: {built:?}"
        );
    }
    for status in [
        StatusCode::TOO_MANY_REQUESTS,
        StatusCode::INTERNAL_SERVER_ERROR,
    ] {
        assert!(
            builder(&store).error_status(status).build().is_ok(),
            "{status}"
        );
    }
}

#[actix_web::test]
async fn the_extractor_without_the_middleware_is_a_clear_500() {
    let app = test::init_service(App::new().route("/read", web::get().to(counter))).await;
    let reply = get(&app, "/read", None).await;
    assert_eq!(reply.status, StatusCode::INTERNAL_SERVER_ERROR);
}

thread_local! {
    /// A handler's session kept past its response, as a spawned task might keep it.
    static KEPT: std::cell::RefCell<Option<Session>> = const { std::cell::RefCell::new(None) };
}

/// Every read of a session whose response has gone answers like `get`, with an error,
/// rather than a default that looks like an empty session.
#[actix_web::test]
async fn a_session_used_after_its_response_answers_finished() {
    let app = test::init_service(
        App::new()
            .wrap(SessionMiddleware::new(MemoryStore::new(), keyring()))
            .route(
                "/keep",
                web::get().to(|s: Session| async move {
                    s.insert("user", "ada")?;
                    KEPT.with(|kept| *kept.borrow_mut() = Some(s));
                    Ok::<_, SessionError>("kept")
                }),
            ),
    )
    .await;
    let reply = get(&app, "/keep", None).await;
    assert_eq!(reply.status, StatusCode::OK);
    let session = KEPT.with(|kept| kept.borrow_mut().take()).unwrap();
    let finished = |result: Result<(), SessionError>| {
        assert!(matches!(result, Err(SessionError::Finished)), "{result:?}");
    };
    finished(session.get::<String>("user").map(drop));
    finished(session.contains("user").map(drop));
    finished(session.keys().map(drop));
    finished(session.len().map(drop));
    finished(session.is_empty().map(drop));
    finished(session.is_permanent().map(drop));
    finished(session.insert("user", "bob"));
}

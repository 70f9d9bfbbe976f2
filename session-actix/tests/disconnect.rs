//! A client that hangs up while its session is being saved does not cancel the save:
//! the handler ran, so what it wrote to the session is kept, as a server that answers
//! every request to the end would keep it.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::{Read as _, Write as _};
use std::net::TcpStream;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use actix_web::{web, App, HttpServer};
use async_trait::async_trait;
use session_actix::{Keyring, Session, SessionError, SessionMiddleware};
use session_core::store::{Loaded, Revision, Store, StoreError, StoreKey};
use session_core::MemoryStore;

/// How long each write waits before it reaches the store: long enough for the client to
/// hang up while the save is under way.
const WRITE_DELAY: Duration = Duration::from_millis(300);

/// `MemoryStore`, whose writes take [`WRITE_DELAY`] to start.
#[derive(Clone)]
struct SlowWrites(Arc<MemoryStore>);

#[async_trait]
impl Store for SlowWrites {
    fn backend(&self) -> &'static str {
        "memory"
    }
    async fn load(&self, key: &StoreKey) -> Result<Option<Loaded>, StoreError> {
        self.0.load(key).await
    }
    async fn create(&self, k: &StoreKey, v: &[u8], at: SystemTime) -> Result<Revision, StoreError> {
        tokio::time::sleep(WRITE_DELAY).await;
        self.0.create(k, v, at).await
    }
    async fn update(
        &self,
        k: &StoreKey,
        v: &[u8],
        at: SystemTime,
        r: Revision,
    ) -> Result<Revision, StoreError> {
        tokio::time::sleep(WRITE_DELAY).await;
        self.0.update(k, v, at, r).await
    }
    async fn touch(&self, k: &StoreKey, at: SystemTime) -> Result<(), StoreError> {
        self.0.touch(k, at).await
    }
    async fn delete(&self, k: &StoreKey) -> Result<(), StoreError> {
        tokio::time::sleep(WRITE_DELAY).await;
        self.0.delete(k).await
    }
    async fn delete_if_unchanged(&self, k: &StoreKey, r: Revision) -> Result<(), StoreError> {
        tokio::time::sleep(WRITE_DELAY).await;
        self.0.delete_if_unchanged(k, r).await
    }
}

async fn add(session: Session) -> Result<String, SessionError> {
    let items = session.update("items", |items: Option<u32>| items.unwrap_or(0) + 1)?;
    Ok(items.to_string())
}

async fn items(session: Session) -> Result<String, SessionError> {
    Ok(session.get::<u32>("items")?.unwrap_or(0).to_string())
}

/// Sends `GET path` with `cookie` and returns the raw response.
fn get(port: u16, path: &str, cookie: Option<&str>) -> String {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).unwrap();
    let cookie = cookie.map_or(String::new(), |c| format!("Cookie: {c}\r\n"));
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: test\r\nConnection: close\r\n{cookie}\r\n"
    )
    .unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    response
}

/// Sends `GET path` with `cookie`, and hangs up before the answer can come.
fn get_and_hang_up(port: u16, path: &str, cookie: &str) {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).unwrap();
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: test\r\nCookie: {cookie}\r\n\r\n"
    )
    .unwrap();
    std::thread::sleep(WRITE_DELAY / 3);
    drop(stream);
}

fn session_cookie(response: &str) -> String {
    response
        .lines()
        .find_map(|line| line.strip_prefix("set-cookie: "))
        .and_then(|value| value.split(';').next())
        .expect("a session cookie")
        .to_owned()
}

#[actix_web::test]
async fn a_save_outlives_the_client_that_hung_up() {
    let store = SlowWrites(Arc::new(MemoryStore::new()));
    let sessions = SessionMiddleware::new(store, Keyring::new([[3u8; 32]]).unwrap());
    let server = HttpServer::new(move || {
        App::new()
            .wrap(sessions.clone())
            .route("/add", web::get().to(add))
            .route("/items", web::get().to(items))
    })
    .workers(1)
    .bind(("127.0.0.1", 0))
    .unwrap();
    let port = server.addrs()[0].port();
    let server = server.run();
    let handle = server.handle();
    actix_web::rt::spawn(server);

    let client = tokio::task::spawn_blocking(move || {
        let cookie = session_cookie(&get(port, "/add", None));
        get_and_hang_up(port, "/add", &cookie);
        std::thread::sleep(WRITE_DELAY * 2);
        get(port, "/items", Some(&cookie))
    });
    let response = client.await.unwrap();
    handle.stop(true).await;
    assert!(
        response.ends_with("\r\n\r\n2"),
        "the second item was lost: {response}"
    );
}

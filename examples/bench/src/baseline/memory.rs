//! Memory: sessions in a map behind one mutex, shared by the workers, as `MemoryStore`
//! keeps its records: `/read` copies the live value out, `/incr` rewrites it in place,
//! `/new` inserts one.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::SystemTime;

use actix_web::{web, HttpRequest, HttpResponse};

use super::{counter, expires_at, new_sid, sid, text, with_cookie};

/// The sessions of one server process.
#[derive(Clone, Debug, Default)]
pub struct Memory {
    sessions: Arc<Mutex<HashMap<String, Entry>>>,
}

#[derive(Debug)]
struct Entry {
    value: Vec<u8>,
    expires_at: SystemTime,
}

impl Memory {
    /// The routes, on this map.
    pub(super) fn routes(&self, config: &mut web::ServiceConfig) {
        config
            .app_data(web::Data::new(self.clone()))
            .route("/read", web::get().to(read))
            .route("/incr", web::get().to(incr))
            .route("/new", web::get().to(new));
    }

    /// Runs `f` on the live session `sid`, if there is one.
    fn with_live<T>(&self, sid: &str, f: impl FnOnce(&mut Entry) -> T) -> Option<T> {
        let now = SystemTime::now();
        let mut sessions = self.sessions.lock().unwrap_or_else(PoisonError::into_inner);
        sessions
            .get_mut(sid)
            .filter(|entry| entry.expires_at > now)
            .map(f)
    }
}

async fn read(req: HttpRequest, memory: web::Data<Memory>) -> HttpResponse {
    let value = sid(&req)
        .and_then(|sid| memory.with_live(&sid, |entry| entry.value.clone()))
        .map_or(0, |value| counter(&value));
    text(value.to_string())
}

async fn incr(req: HttpRequest, memory: web::Data<Memory>) -> HttpResponse {
    let value = sid(&req).and_then(|sid| {
        memory.with_live(&sid, |entry| {
            let value = counter(&entry.value) + 1;
            entry.value.clear();
            entry.value.extend_from_slice(value.to_string().as_bytes());
            entry.expires_at = expires_at();
            value
        })
    });
    text(value.unwrap_or(1).to_string())
}

async fn new(memory: web::Data<Memory>) -> HttpResponse {
    let sid = new_sid();
    let entry = Entry {
        value: b"0".to_vec(),
        expires_at: expires_at(),
    };
    memory
        .sessions
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .insert(sid.clone(), entry);
    with_cookie(&sid, "0")
}

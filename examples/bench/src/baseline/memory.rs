//! Memory: sessions in a map behind one mutex, shared by the workers, as `MemoryStore`
//! keeps its records: `/read` copies the live value out; `/incr` copies it out, then
//! writes it back under the lock again if its revision is still the one read; `/new`
//! inserts one where no session is.

use std::collections::hash_map::Entry as Slot;
use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::SystemTime;

use actix_web::{web, HttpRequest, HttpResponse};

use super::{counter, expires_at, failure, key, new_sid, sid, text, with_cookie, ATTEMPTS};

/// The sessions of one server process, by store key.
#[derive(Clone, Debug, Default)]
pub struct Memory {
    sessions: Arc<Mutex<HashMap<String, Entry>>>,
}

#[derive(Debug)]
struct Entry {
    value: Vec<u8>,
    revision: u64,
    expires_at: SystemTime,
}

impl Entry {
    fn is_live(&self) -> bool {
        self.expires_at > SystemTime::now()
    }
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

    fn lock(&self) -> MutexGuard<'_, HashMap<String, Entry>> {
        self.sessions.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// A copy of the live session at `key` and its revision.
    fn load(&self, key: &str) -> Option<(Vec<u8>, u64)> {
        self.lock()
            .get(key)
            .filter(|entry| entry.is_live())
            .map(|entry| (entry.value.clone(), entry.revision))
    }

    /// Writes `value` over the live session at `key` if it is still at `revision`:
    /// `None` if the session is gone, `Some(false)` if another request wrote it first.
    fn update(&self, key: &str, value: &[u8], revision: u64) -> Option<bool> {
        let mut sessions = self.lock();
        let entry = sessions.get_mut(key).filter(|entry| entry.is_live())?;
        if entry.revision != revision {
            return Some(false);
        }
        entry.value.clear();
        entry.value.extend_from_slice(value);
        entry.revision += 1;
        entry.expires_at = expires_at();
        Some(true)
    }
}

async fn read(req: HttpRequest, memory: web::Data<Memory>) -> HttpResponse {
    let value = sid(&req)
        .and_then(|sid| memory.load(&key(&sid)))
        .map_or(0, |(value, _)| counter(&value));
    text(value.to_string())
}

async fn incr(req: HttpRequest, memory: web::Data<Memory>) -> HttpResponse {
    let Some(sid) = sid(&req) else {
        return text("1");
    };
    let key = key(&sid);
    for _ in 0..ATTEMPTS {
        let Some((value, revision)) = memory.load(&key) else {
            return text("1");
        };
        let value = counter(&value) + 1;
        match memory.update(&key, value.to_string().as_bytes(), revision) {
            Some(true) => return text(value.to_string()),
            Some(false) => continue,
            None => return text("1"),
        }
    }
    failure()
}

async fn new(memory: web::Data<Memory>) -> HttpResponse {
    let sid = new_sid();
    match memory.lock().entry(key(&sid)) {
        Slot::Vacant(slot) => {
            slot.insert(Entry {
                value: b"0".to_vec(),
                revision: 1,
                expires_at: expires_at(),
            });
        }
        // Never with 256 random bits; the store refuses one as well.
        Slot::Occupied(_) => return failure(),
    }
    with_cookie(&sid, "0")
}

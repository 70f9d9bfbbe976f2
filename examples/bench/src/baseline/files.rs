//! Files: a file per session, read inline on `/read`; `/incr` reads it and writes a
//! temporary file renamed over it (the least a correct writer does: readers never see half
//! a file); `/new` writes one the same way.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use actix_web::{web, HttpRequest, HttpResponse};

use super::{failure, new_sid, sid, text, with_cookie};

/// The routes, on sessions in `dir`.
pub(super) fn routes(config: &mut web::ServiceConfig, dir: &Path) {
    config
        .app_data(web::Data::new(dir.to_owned()))
        .route("/read", web::get().to(read))
        .route("/incr", web::get().to(incr))
        .route("/new", web::get().to(new));
}

fn read_counter(dir: &Path, sid: &str) -> Option<i64> {
    std::fs::read_to_string(dir.join(sid))
        .ok()?
        .trim()
        .parse()
        .ok()
}

fn write_counter(dir: &Path, sid: &str, value: i64) -> std::io::Result<()> {
    static SERIAL: AtomicU64 = AtomicU64::new(0);
    let temp = dir.join(format!(
        ".tmp-{}-{}",
        std::process::id(),
        SERIAL.fetch_add(1, Ordering::Relaxed)
    ));
    std::fs::write(&temp, value.to_string())?;
    std::fs::rename(&temp, dir.join(sid))
}

async fn read(req: HttpRequest, dir: web::Data<PathBuf>) -> HttpResponse {
    let value = sid(&req)
        .and_then(|sid| read_counter(&dir, &sid))
        .unwrap_or(0);
    text(value.to_string())
}

async fn incr(req: HttpRequest, dir: web::Data<PathBuf>) -> HttpResponse {
    let Some(sid) = sid(&req) else {
        return text("1");
    };
    let value = read_counter(&dir, &sid).unwrap_or(0) + 1;
    match write_counter(&dir, &sid, value) {
        Ok(()) => text(value.to_string()),
        Err(_) => failure(),
    }
}

async fn new(dir: web::Data<PathBuf>) -> HttpResponse {
    let sid = new_sid();
    match write_counter(&dir, &sid, 0) {
        Ok(()) => with_cookie(&sid, "0"),
        Err(_) => failure(),
    }
}

//! The bench app: `/read`, `/incr` and `/new`, the three shapes of session traffic;
//! `/put/{name}` and `/len`, which show that concurrent requests of one session lose
//! nothing; and `/logout`, which ends a session.

use actix_web::web;
use session_actix::{Session, SessionError};

/// The session key of the counter.
pub const COUNTER: &str = "counter";

/// Registers the app's routes.
pub fn routes(config: &mut web::ServiceConfig) {
    config
        .route("/read", web::get().to(read))
        .route("/incr", web::get().to(incr))
        .route("/new", web::get().to(new))
        .route("/put/{name}", web::get().to(put))
        .route("/len", web::get().to(len))
        .route("/logout", web::get().to(logout));
}

/// The counter; never modifies the session.
async fn read(session: Session) -> Result<String, SessionError> {
    Ok(session.get::<i64>(COUNTER)?.unwrap_or(0).to_string())
}

/// Increments the counter and answers the new value; concurrent increments of one session
/// all count.
async fn incr(session: Session) -> Result<String, SessionError> {
    let counter = session.update(COUNTER, |n: Option<i64>| n.unwrap_or(0).saturating_add(1))?;
    Ok(counter.to_string())
}

/// Sets the key `name` to `true` and answers the number of keys.
async fn put(session: Session, name: web::Path<String>) -> Result<String, SessionError> {
    session.insert(name.into_inner(), true)?;
    Ok(session.len()?.to_string())
}

/// The number of keys; never modifies the session.
async fn len(session: Session) -> Result<String, SessionError> {
    Ok(session.len()?.to_string())
}

/// A new session with counter 0 (when called without a cookie).
async fn new(session: Session) -> Result<&'static str, SessionError> {
    session.insert(COUNTER, 0)?;
    Ok("0")
}

/// Ends the session: its record is deleted and its cookie removed.
async fn logout(session: Session) -> Result<&'static str, SessionError> {
    session.destroy()?;
    Ok("bye")
}

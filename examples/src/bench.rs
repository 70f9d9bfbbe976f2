//! The bench app: `/read`, `/incr` and `/new`, the three shapes of session traffic.

use actix_web::web;
use session_actix::{Session, SessionError};

/// The session key of the counter.
pub const COUNTER: &str = "counter";

/// Registers the app's routes.
pub fn routes(config: &mut web::ServiceConfig) {
    config
        .route("/read", web::get().to(read))
        .route("/incr", web::get().to(incr))
        .route("/new", web::get().to(new));
}

/// The counter; never modifies the session.
async fn read(session: Session) -> Result<String, SessionError> {
    Ok(session.get::<i64>(COUNTER)?.unwrap_or(0).to_string())
}

/// Increments the counter and answers the new value.
async fn incr(session: Session) -> Result<String, SessionError> {
    let counter = session.get::<i64>(COUNTER)?.unwrap_or(0).saturating_add(1);
    session.insert(COUNTER, counter)?;
    Ok(counter.to_string())
}

/// A new session with counter 0 (when called without a cookie).
async fn new(session: Session) -> Result<&'static str, SessionError> {
    session.insert(COUNTER, 0)?;
    Ok("0")
}

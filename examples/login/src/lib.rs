//! The classic login app: `/`, `/login` (form and POST), `/logout`, and a devices page at
//! `/sessions` that lists the user's sessions and ends them. Its routes live in this
//! library so that the tests can drive them without a socket.

mod page;

use std::time::SystemTime;

use actix_web::http::header::ContentType;
use actix_web::{web, HttpResponse};
use serde::Deserialize;
use session_actix::{
    DeviceInfo, Level, Session, SessionError, SessionHandle, SessionInfo, SessionMiddlewareBuilder,
};

pub use page::escape;
use page::{ago, html, see_other};

/// The longest user name the form accepts, in characters.
const MAX_NAME: usize = 100;

/// Registers the app's routes.
pub fn routes(config: &mut web::ServiceConfig) {
    config
        .route("/", web::get().to(index))
        .route("/login", web::get().to(login_form))
        .route("/login", web::post().to(login))
        .route("/logout", web::post().to(logout))
        .route("/sessions", web::get().to(sessions))
        .route("/sessions/revoke-others", web::post().to(revoke_others))
        .route("/sessions/{handle}/revoke", web::post().to(revoke));
}

/// The app's session settings: a devices page names each session's browser, so logins
/// keep the `User-Agent` and address.
pub fn sessions_config(builder: SessionMiddlewareBuilder) -> SessionMiddlewareBuilder {
    builder.device_info(DeviceInfo::Keep)
}

/// The flash messages of the POST that redirected here, shown once.
fn flashes(session: &Session) -> Result<String, SessionError> {
    Ok(session
        .take_flashes()?
        .iter()
        .map(|message| {
            format!(
                "<p class=\"flash {}\" role=\"status\">{}</p>",
                message.level().as_str(),
                escape(message.text())
            )
        })
        .collect())
}

async fn index(session: Session) -> Result<HttpResponse, SessionError> {
    let flashes = flashes(&session)?;
    let page = match session.user()? {
        Some(name) => format!(
            "<p>Logged in as {}</p><nav><a href=\"/sessions\">Your devices</a>\
             <form class=\"inline\" method=\"post\" action=\"/logout\">\
             <button type=\"submit\">Log out</button></form></nav>",
            escape(&name)
        ),
        None => "<p>You are not logged in</p><nav><a href=\"/login\">Log in</a></nav>".to_owned(),
    };
    Ok(html("Sessions", &(flashes + &page)))
}

async fn login_form() -> HttpResponse {
    html(
        "Log in",
        &format!(
            "<p class=\"muted\">A demo: any name logs in, without a password.</p>\
             <form method=\"post\" action=\"/login\">\
             <label>Username <input name=\"username\" required maxlength=\"{MAX_NAME}\" autofocus></label> \
             <button type=\"submit\">Log in</button></form>"
        ),
    )
}

#[derive(Deserialize)]
struct LoginForm {
    username: String,
}

async fn login(session: Session, form: web::Form<LoginForm>) -> Result<HttpResponse, SessionError> {
    let username = form.username.trim();
    if username.is_empty() || username.chars().count() > MAX_NAME {
        return Ok(HttpResponse::BadRequest()
            .content_type(ContentType::plaintext())
            .body(format!("username must have 1 to {MAX_NAME} characters")));
    }
    // Binds the session to the user under a new id: an id planted before login is
    // worthless after it, and the devices page lists this session.
    session.log_in(username)?;
    session.flash(Level::Success, format!("Logged in as {username}"))?;
    Ok(see_other("/"))
}

async fn logout(session: Session) -> Result<HttpResponse, SessionError> {
    session.destroy()?;
    // Held by a new session that ends once the message has been shown.
    session.flash(Level::Info, "Logged out")?;
    Ok(see_other("/"))
}

async fn sessions(session: Session) -> Result<HttpResponse, SessionError> {
    if session.user()?.is_none() {
        return Ok(see_other("/login"));
    }
    let now = SystemTime::now();
    let rows: String = session
        .sessions()
        .await?
        .iter()
        .map(|s| row(s, now))
        .collect();
    let flashes = flashes(&session)?;
    let body = format!(
        "{flashes}<nav><a href=\"/\">Home</a></nav>\
         <table><thead><tr><th>Device</th><th>Signed in</th><th>Last active</th><th></th></tr></thead>\
         <tbody>{rows}</tbody></table>\
         <form method=\"post\" action=\"/sessions/revoke-others\">\
         <button class=\"danger\" type=\"submit\">Log out everywhere else</button></form>"
    );
    Ok(html("Your devices", &body))
}

/// One session as a table row: "This device" for the current one, a Revoke button for
/// the others.
fn row(session: &SessionInfo, now: SystemTime) -> String {
    let device = session
        .device
        .as_ref()
        .and_then(|device| device.user_agent.as_deref())
        .map_or_else(|| "Unknown browser".to_owned(), escape);
    let action = if session.current {
        "<span class=\"current\">This device</span>".to_owned()
    } else {
        format!(
            "<form class=\"inline\" method=\"post\" action=\"/sessions/{}/revoke\">\
             <button type=\"submit\">Revoke</button></form>",
            session.handle
        )
    };
    let class = if session.current {
        " class=\"current\""
    } else {
        ""
    };
    format!(
        "<tr{class}><td>{device}</td><td class=\"muted\">{}</td><td class=\"muted\">{}</td><td>{action}</td></tr>",
        ago(session.created_at, now),
        ago(session.last_active, now),
    )
}

async fn revoke(session: Session, handle: web::Path<String>) -> Result<HttpResponse, SessionError> {
    if session.user()?.is_none() {
        return Ok(see_other("/login"));
    }
    // A handle of the wrong shape names no session; ending one that is gone is no error.
    if let Some(handle) = SessionHandle::parse(&handle) {
        session.end_session(&handle).await?;
    }
    Ok(see_other("/sessions"))
}

async fn revoke_others(session: Session) -> Result<HttpResponse, SessionError> {
    if session.user()?.is_none() {
        return Ok(see_other("/login"));
    }
    let ended = session.end_other_sessions().await?;
    let plural = if ended == 1 { "" } else { "s" };
    session.flash(
        Level::Success,
        format!("Logged out of {ended} other session{plural}"),
    )?;
    Ok(see_other("/sessions"))
}

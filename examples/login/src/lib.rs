//! The classic login app: `/`, `/login` (form and POST) and `/logout`; its routes live in
//! this library so that the tests can drive them without a socket.

use actix_web::http::header::{ContentType, LOCATION};
use actix_web::{web, HttpResponse};
use serde::Deserialize;
use session_actix::{Level, Session, SessionError};

/// The session key that holds the logged-in user's name.
pub const USERNAME: &str = "username";

/// Registers the app's routes.
pub fn routes(config: &mut web::ServiceConfig) {
    config
        .route("/", web::get().to(index))
        .route("/login", web::get().to(login_form))
        .route("/login", web::post().to(login))
        .route("/logout", web::get().to(logout));
}

fn html(body: String) -> HttpResponse {
    HttpResponse::Ok()
        .content_type(ContentType::html())
        .body(format!(
            "<!doctype html><html><head><meta charset=\"utf-8\"><title>Sessions</title></head><body>{body}</body></html>"
        ))
}

fn see_other(location: &'static str) -> HttpResponse {
    HttpResponse::SeeOther()
        .insert_header((LOCATION, location))
        .finish()
}

async fn index(session: Session) -> Result<HttpResponse, SessionError> {
    // Shown once: the messages of the login or logout that redirected here.
    let flashes: String = session
        .take_flashes()?
        .iter()
        .map(|message| {
            format!(
                "<p class=\"flash {}\" role=\"status\">{}</p>",
                message.level().as_str(),
                escape(message.text())
            )
        })
        .collect();
    let page = match session.get::<String>(USERNAME)? {
        Some(name) => format!(
            "<p>Logged in as {}</p><p><a href=\"/logout\">Log out</a></p>",
            escape(&name)
        ),
        None => "<p>You are not logged in</p><p><a href=\"/login\">Log in</a></p>".to_owned(),
    };
    Ok(html(flashes + &page))
}

async fn login_form() -> HttpResponse {
    html(
        "<form method=\"post\" action=\"/login\">\
         <label>Username <input name=\"username\" required maxlength=\"100\" autofocus></label> \
         <button type=\"submit\">Log in</button></form>"
            .to_owned(),
    )
}

#[derive(Deserialize)]
struct LoginForm {
    username: String,
}

async fn login(session: Session, form: web::Form<LoginForm>) -> Result<HttpResponse, SessionError> {
    let username = form.username.trim();
    if username.is_empty() || username.chars().count() > 100 {
        return Ok(HttpResponse::BadRequest()
            .content_type(ContentType::plaintext())
            .body("username must have 1 to 100 characters"));
    }
    // A new id on every login: an id planted before login is worthless after it.
    session.regenerate()?;
    session.insert(USERNAME, username)?;
    session.flash(Level::Success, format!("Logged in as {username}"))?;
    Ok(see_other("/"))
}

async fn logout(session: Session) -> Result<HttpResponse, SessionError> {
    session.destroy()?;
    // Held by a new session that ends once the message has been shown.
    session.flash(Level::Info, "Logged out")?;
    Ok(see_other("/"))
}

/// Escapes text for HTML element content and attribute values.
pub fn escape(text: &str) -> String {
    let mut escaped = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => escaped.push_str("&amp;"),
            '<' => escaped.push_str("&lt;"),
            '>' => escaped.push_str("&gt;"),
            '"' => escaped.push_str("&quot;"),
            '\'' => escaped.push_str("&#x27;"),
            c => escaped.push(c),
        }
    }
    escaped
}

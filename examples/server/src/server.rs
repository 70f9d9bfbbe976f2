//! Running an example app: settings, store, middleware, server, and a one-line error.

use std::process::ExitCode;
use std::time::Duration;

use actix_web::{web, App, HttpServer};
use session_actix::{SessionMiddleware, SessionMiddlewareBuilder};

use crate::settings::{init_logging, Settings};
use crate::store_url::open_store;

/// How often expired sessions are removed from the store.
const CLEANUP_INTERVAL: Duration = Duration::from_secs(600);

/// Runs an app until it is stopped; any failure to start is one line on stderr and exit
/// status 1.
pub async fn serve(name: &str, routes: fn(&mut web::ServiceConfig)) -> ExitCode {
    serve_with(name, routes, |builder| builder).await
}

/// [`serve`], with the app's own session settings on top of the defaults.
pub async fn serve_with(
    name: &str,
    routes: fn(&mut web::ServiceConfig),
    sessions: fn(SessionMiddlewareBuilder) -> SessionMiddlewareBuilder,
) -> ExitCode {
    init_logging();
    match run(name, routes, sessions).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error}");
            ExitCode::FAILURE
        }
    }
}

async fn run(
    name: &str,
    routes: fn(&mut web::ServiceConfig),
    sessions: fn(SessionMiddlewareBuilder) -> SessionMiddlewareBuilder,
) -> Result<(), String> {
    let settings = Settings::from_env()?;
    let store = open_store(&settings.store_url).await?;
    // Stores without native expiry (files) would otherwise keep expired sessions forever.
    let _cleanup = session_core::spawn_cleanup(store.clone(), CLEANUP_INTERVAL);
    let middleware = sessions(SessionMiddleware::builder(store, settings.keyring))
        .build()
        .map_err(|e| e.to_string())?;
    let server = HttpServer::new(move || App::new().wrap(middleware.clone()).configure(routes))
        .workers(settings.workers)
        .bind(settings.addr)
        .map_err(|e| format!("cannot listen on {}: {e}", settings.addr))?;
    tracing::info!("{name} listening on http://{}", settings.addr);
    server.run().await.map_err(|e| e.to_string())
}

//! The benchmark baseline: `/read`, `/incr` and `/new` without the session library (see
//! `examples::baseline`). Reads `PORT`, `WORKERS` and `SESSION_STORE_URL` like `bench`.

use std::process::ExitCode;

use actix_web::{App, HttpServer};
use examples::baseline::Baseline;
use examples::settings::{init_logging, Settings};

#[actix_web::main]
async fn main() -> ExitCode {
    init_logging();
    match run().await {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error}");
            ExitCode::FAILURE
        }
    }
}

async fn run() -> Result<(), String> {
    let settings = Settings::from_env()?;
    let baseline = Baseline::from_url(&settings.store_url)?;
    let server = HttpServer::new(move || {
        let app = App::new().configure(|config| baseline.routes(config));
        match &baseline {
            // One connection per worker, opened on the worker's runtime.
            Baseline::Redis(client) => {
                let client = client.clone();
                app.data_factory(move || {
                    let client = client.clone();
                    async move { client.get_multiplexed_async_connection().await }
                })
            }
            _ => app,
        }
    })
    .workers(settings.workers)
    .bind(settings.addr)
    .map_err(|e| format!("cannot listen on {}: {e}", settings.addr))?;
    server.run().await.map_err(|e| e.to_string())
}

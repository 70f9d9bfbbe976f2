//! The benchmark baseline: `/read`, `/incr` and `/new` without the session library (see
//! `bench::baseline`). Reads `PORT`, `WORKERS` and `SESSION_STORE_URL` like `bench`.
//!
//! Redis and Redis Cluster get one connection per worker, opened on the worker's runtime,
//! as `RedisStore` opens one per thread; the other stores' pool or client is made in
//! `main()` and shared by the workers, as the library's store is.
//!
//! `BASELINE_SHARED_CONNECTION=1` makes it open one Redis connection in `main()` and share
//! it among the workers, the setup most session libraries use, to measure what a thread
//! hop per request costs. `BASELINE_MEMCACHED_IDLE=N` keeps N idle memcached connections
//! per server instead of the store's default, to measure what a smaller pool costs.
//! `BASELINE_REDIS_SCRIPTED_SET=1` sends `/incr`'s `SET` from inside a script that does
//! only that, to measure what any conditional write by script costs Redis (see
//! `bench::baseline`'s Redis module).

use std::process::ExitCode;

use actix_web::{App, HttpServer};
use bench::baseline::{self, Baseline};
use example_server::{init_logging, Settings};

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
    let baseline = Baseline::connect(&settings.store_url).await?;
    let shared = match (&baseline, std::env::var_os("BASELINE_SHARED_CONNECTION")) {
        (Baseline::Redis(client), Some(_)) => Some(actix_web::web::Data::new(
            baseline::redis_connection(client)
                .await
                .map_err(|e| format!("cannot connect to Redis: {e}"))?,
        )),
        _ => None,
    };
    let server = HttpServer::new(move || {
        let app = App::new().configure(|config| baseline.routes(config));
        match (&baseline, &shared) {
            // One connection opened in main(), driven by main's runtime, for every worker.
            (Baseline::Redis(_), Some(shared)) => app.app_data(shared.clone()),
            // One connection per worker, opened on the worker's runtime.
            (Baseline::Redis(client), None) => {
                let client = client.clone();
                app.data_factory(move || {
                    let client = client.clone();
                    async move { baseline::redis_connection(&client).await }
                })
            }
            (Baseline::RedisCluster(client), _) => {
                let client = (**client).clone();
                app.data_factory(move || {
                    let client = client.clone();
                    async move { client.get_async_connection().await }
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

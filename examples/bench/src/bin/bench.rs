//! The bench server: `/read`, `/incr` and `/new`, for load generators. With `METRICS=1`
//! it also serves the session metrics in Prometheus format on `/metrics`.

use std::process::ExitCode;

#[actix_web::main]
async fn main() -> ExitCode {
    let metrics = std::env::var("METRICS").ok();
    match metrics.as_deref() {
        None | Some("" | "0") => {}
        Some("1") => {
            if let Err(error) = bench::app::install_metrics() {
                eprintln!("error: {error}");
                return ExitCode::FAILURE;
            }
        }
        Some(other) => {
            eprintln!("error: METRICS must be 1 or 0, not `{other}`");
            return ExitCode::FAILURE;
        }
    }
    example_server::serve("bench server", bench::app::routes).await
}

//! The bench server: `/read`, `/incr` and `/new`, for load generators.

#[actix_web::main]
async fn main() -> std::process::ExitCode {
    examples::server::serve("bench server", examples::bench::routes).await
}

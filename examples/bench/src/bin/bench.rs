//! The bench server: `/read`, `/incr` and `/new`, for load generators.

#[actix_web::main]
async fn main() -> std::process::ExitCode {
    example_server::serve("bench server", bench::app::routes).await
}

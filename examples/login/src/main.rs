//! The login app: `cargo run -p login`, then open http://127.0.0.1:8080.

#[actix_web::main]
async fn main() -> std::process::ExitCode {
    example_server::serve_with("login app", login::routes, login::sessions_config).await
}

//! The login app: `cargo run -p login`, then open http://127.0.0.1:8080.

#[actix_web::main]
async fn main() -> std::process::ExitCode {
    example_server::serve("login app", login::routes).await
}

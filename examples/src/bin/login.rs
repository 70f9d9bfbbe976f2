//! The login app: `cargo run -p examples --bin login`, then open http://127.0.0.1:8080.

#[actix_web::main]
async fn main() -> std::process::ExitCode {
    examples::server::serve("login app", examples::login::routes).await
}

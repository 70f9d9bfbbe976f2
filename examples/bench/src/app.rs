//! The bench app: `/read`, `/incr` and `/new`, the three shapes of session traffic;
//! `/put/{name}` and `/len`, which show that concurrent requests of one session lose
//! nothing; `/logout`, which ends a session; and `/metrics`, the session metrics in
//! Prometheus format once [`install_metrics`] has run.

use std::sync::OnceLock;
use std::time::Duration;

use actix_web::{web, HttpResponse};
use metrics_exporter_prometheus::{BuildError, Matcher, PrometheusBuilder, PrometheusHandle};
use session_actix::{Session, SessionError};

/// The session key of the counter.
pub const COUNTER: &str = "counter";

/// The recorder's handle once [`install_metrics`] has installed it.
static PROMETHEUS: OnceLock<PrometheusHandle> = OnceLock::new();

/// Upper bounds of the store-call latency buckets, in seconds: from a local memory store
/// to a remote database under load.
const LATENCY_BUCKETS: [f64; 14] = [
    0.000_05, 0.000_1, 0.000_25, 0.000_5, 0.001, 0.002_5, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5,
    1.0,
];

/// How often the recorder drains its histograms, so that they stay small between scrapes.
const UPKEEP_INTERVAL: Duration = Duration::from_secs(5);

/// The Prometheus recorder's settings: the store-call latency as a histogram with buckets,
/// which Prometheus can aggregate across instances.
pub fn prometheus_builder() -> Result<PrometheusBuilder, BuildError> {
    PrometheusBuilder::new().set_buckets_for_metric(
        Matcher::Full(session_core::metrics::STORE_CALL_DURATION.to_owned()),
        &LATENCY_BUCKETS,
    )
}

/// Installs a Prometheus recorder for the whole process and has `/metrics` render it.
/// The recorder gets no listener of its own: the app's `/metrics` route serves it.
pub fn install_metrics() -> Result<(), String> {
    let handle = prometheus_builder()
        .and_then(PrometheusBuilder::install_recorder)
        .map_err(|e| format!("cannot install the metrics recorder: {e}"))?;
    session_core::describe_metrics();
    let upkeep = handle.clone();
    std::thread::Builder::new()
        .name("metrics-upkeep".to_owned())
        .spawn(move || loop {
            std::thread::sleep(UPKEEP_INTERVAL);
            upkeep.run_upkeep();
        })
        .map_err(|e| format!("cannot start the metrics upkeep: {e}"))?;
    PROMETHEUS
        .set(handle)
        .map_err(|_| "metrics installed twice".to_owned())
}

/// Registers the app's routes. `/metrics` renders the [`PrometheusHandle`] in the app's
/// data, which [`install_metrics`] provides; without one it answers 404.
pub fn routes(config: &mut web::ServiceConfig) {
    if let Some(handle) = PROMETHEUS.get() {
        config.app_data(web::Data::new(handle.clone()));
    }
    config
        .route("/metrics", web::get().to(metrics))
        .route("/read", web::get().to(read))
        .route("/incr", web::get().to(incr))
        .route("/new", web::get().to(new))
        .route("/put/{name}", web::get().to(put))
        .route("/len", web::get().to(len))
        .route("/logout", web::get().to(logout));
}

/// The counter; never modifies the session.
async fn read(session: Session) -> Result<String, SessionError> {
    Ok(session.get::<i64>(COUNTER)?.unwrap_or(0).to_string())
}

/// Increments the counter and answers the new value; concurrent increments of one session
/// all count.
async fn incr(session: Session) -> Result<String, SessionError> {
    let counter = session.update(COUNTER, |n: Option<i64>| n.unwrap_or(0).saturating_add(1))?;
    Ok(counter.to_string())
}

/// Sets the key `name` to `true` and answers the number of keys.
async fn put(session: Session, name: web::Path<String>) -> Result<String, SessionError> {
    session.insert(name.into_inner(), true)?;
    Ok(session.len()?.to_string())
}

/// The number of keys; never modifies the session.
async fn len(session: Session) -> Result<String, SessionError> {
    Ok(session.len()?.to_string())
}

/// A new session with counter 0 (when called without a cookie).
async fn new(session: Session) -> Result<&'static str, SessionError> {
    session.insert(COUNTER, 0)?;
    Ok("0")
}

/// Ends the session: its record is deleted and its cookie removed.
async fn logout(session: Session) -> Result<&'static str, SessionError> {
    session.destroy()?;
    Ok("bye")
}

/// The metrics in Prometheus' text format; never touches the session.
async fn metrics(handle: Option<web::Data<PrometheusHandle>>) -> HttpResponse {
    match handle {
        Some(handle) => HttpResponse::Ok()
            .content_type("text/plain; version=0.0.4")
            .body(handle.render()),
        None => HttpResponse::NotFound().body("metrics are off; start with METRICS=1"),
    }
}

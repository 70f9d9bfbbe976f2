//! What the sessions count and time, through the [`metrics`](https://docs.rs/metrics)
//! facade crate: the application installs a recorder (a Prometheus exporter, say) and
//! the [`SessionManager`](crate::adapter::SessionManager) reports to it.
//!
//! | name | type | labels | what it counts |
//! | --- | --- | --- | --- |
//! | `session_created_total` | counter | | new sessions stored under a fresh id |
//! | `session_regenerated_total` | counter | | sessions moved to a new id by `regenerate()` |
//! | `session_destroyed_total` | counter | | sessions a request ended and deleted: `destroy()`, a `clear()` or removal that left it empty, or its absolute timeout |
//! | `session_expired_total` | counter | | sessions found past their absolute deadline when loaded |
//! | `session_undecodable_total` | counter | | stored records this build could not decode (treated as no session when loaded) |
//! | `session_conflicts_merged_total` | counter | | write-backs that found another request's write and merged into it, once per merge |
//! | `session_contended_total` | counter | | write-backs given up because other requests kept writing ([`Error::Contended`](crate::adapter::Error::Contended)) |
//! | `session_store_errors_total` | counter | `backend`, `operation` | store calls that failed |
//! | `session_store_call_duration_seconds` | histogram | `backend`, `operation` | how long each store call took, in seconds, whatever its outcome |
//!
//! `backend` is the store's [`Store::backend`](crate::store::Store::backend) (`memory`,
//! `file`, `redis`, ...) and `operation` the store method called: `load`,
//! `load_and_touch`, `create`, `update`, `touch`, `delete` or `delete_if_unchanged`. The
//! answers that are part of the store protocol (a taken id, an unknown id, a conflict) are
//! not errors. No label ever carries a session id or anything else from a request, so the
//! number of series stays fixed. Sessions that a store expired by itself are not seen:
//! they load as absent.
//!
//! Call [`describe_metrics`] once after installing the recorder to give each metric its
//! help text and unit. The names already carry Prometheus suffixes, so an exporter's own
//! suffixing (`with_recommended_naming` in `metrics-exporter-prometheus`) stays off.
//!
//! # Cost
//! Without a recorder every report is a no-op handle from the facade, and the metric keys
//! are built once per manager, so nothing is allocated per request. The facade offers no
//! way to ask whether a recorder is installed, so each store call still reads the clock
//! when it starts; the second reading happens only when a recorder takes the sample. An
//! application that wants none of this builds session-core without its default `metrics`
//! feature: then the crate does not depend on `metrics`, [`describe_metrics`] does
//! nothing, and store calls are timed only for an enabled tracing span.

#[cfg(feature = "metrics")]
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Counter: new sessions stored under a fresh id.
pub const CREATED: &str = "session_created_total";
/// Counter: sessions moved to a new id by `regenerate()`.
pub const REGENERATED: &str = "session_regenerated_total";
/// Counter: sessions a request ended and deleted (`destroy()`, emptied, absolute timeout).
pub const DESTROYED: &str = "session_destroyed_total";
/// Counter: sessions found past their absolute deadline when loaded.
pub const EXPIRED: &str = "session_expired_total";
/// Counter: stored records this build could not decode.
pub const UNDECODABLE: &str = "session_undecodable_total";
/// Counter: merges of a request's changes into what another request wrote meanwhile.
pub const CONFLICTS_MERGED: &str = "session_conflicts_merged_total";
/// Counter: write-backs given up because other requests kept writing the session.
pub const CONTENDED: &str = "session_contended_total";
/// Counter, labelled `backend` and `operation`: store calls that failed.
pub const STORE_ERRORS: &str = "session_store_errors_total";
/// Histogram in seconds, labelled `backend` and `operation`: how long store calls took.
pub const STORE_CALL_DURATION: &str = "session_store_call_duration_seconds";

/// Gives every metric of this crate its description and unit in the installed recorder,
/// and starts the unlabelled counters at zero, so that they show before their first event.
///
/// Call it once, after installing the recorder: descriptions sent before go nowhere.
/// Counting works without it; exporters only lack the help text.
///
/// ```
/// // After, for example, `metrics_exporter_prometheus::PrometheusBuilder::new().install_recorder()`:
/// session_core::describe_metrics();
/// ```
pub fn describe_metrics() {
    #[cfg(feature = "metrics")]
    {
        use ::metrics::{describe_counter, describe_histogram, Unit};
        describe_counter!(CREATED, Unit::Count, "Sessions stored under a fresh id");
        describe_counter!(
            REGENERATED,
            Unit::Count,
            "Sessions moved to a new id by regenerate()"
        );
        describe_counter!(
            DESTROYED,
            Unit::Count,
            "Sessions a request ended and deleted: destroy(), emptied, or absolute timeout"
        );
        describe_counter!(
            EXPIRED,
            Unit::Count,
            "Sessions found past their absolute deadline when loaded"
        );
        describe_counter!(
            UNDECODABLE,
            Unit::Count,
            "Stored session records this build could not decode"
        );
        describe_counter!(
            CONFLICTS_MERGED,
            Unit::Count,
            "Write-backs merged into what another request wrote meanwhile"
        );
        describe_counter!(
            CONTENDED,
            Unit::Count,
            "Write-backs given up because other requests kept writing the session"
        );
        describe_counter!(
            STORE_ERRORS,
            Unit::Count,
            "Session store calls that failed, by backend and operation"
        );
        describe_histogram!(
            STORE_CALL_DURATION,
            Unit::Seconds,
            "Time a session store call took, by backend and operation"
        );
        ::metrics::with_recorder(|recorder| {
            for key in &EVENT_KEYS {
                recorder.register_counter(key, &METADATA).increment(0);
            }
        });
    }
}

/// Something that happened to a session, counted once each time.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Event {
    Created,
    Regenerated,
    Destroyed,
    Expired,
    Undecodable,
    ConflictMerged,
    Contended,
}

impl Event {
    /// Adds one to the event's counter.
    pub(crate) fn count(self) {
        #[cfg(feature = "metrics")]
        if let Some(key) = EVENT_KEYS.get(self as usize) {
            ::metrics::with_recorder(|recorder| {
                recorder.register_counter(key, &METADATA).increment(1);
            });
        }
    }
}

/// The counters of the events, in the order of [`Event`]'s discriminants.
#[cfg(feature = "metrics")]
static EVENT_KEYS: [::metrics::Key; 7] = [
    ::metrics::Key::from_static_name(CREATED),
    ::metrics::Key::from_static_name(REGENERATED),
    ::metrics::Key::from_static_name(DESTROYED),
    ::metrics::Key::from_static_name(EXPIRED),
    ::metrics::Key::from_static_name(UNDECODABLE),
    ::metrics::Key::from_static_name(CONFLICTS_MERGED),
    ::metrics::Key::from_static_name(CONTENDED),
];

/// A method of the store, as the `operation` label and tracing field name it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Operation {
    Load,
    LoadAndTouch,
    Create,
    Update,
    Touch,
    Delete,
    DeleteIfUnchanged,
    CreateBound,
    Unbind,
    ListBound,
    Count,
    Scan,
}

impl Operation {
    /// Every operation, in the order of the discriminants.
    #[cfg(feature = "metrics")]
    const ALL: [Self; 12] = [
        Self::Load,
        Self::LoadAndTouch,
        Self::Create,
        Self::Update,
        Self::Touch,
        Self::Delete,
        Self::DeleteIfUnchanged,
        Self::CreateBound,
        Self::Unbind,
        Self::ListBound,
        Self::Count,
        Self::Scan,
    ];

    /// The store method's name.
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Self::Load => "load",
            Self::LoadAndTouch => "load_and_touch",
            Self::Create => "create",
            Self::Update => "update",
            Self::Touch => "touch",
            Self::Delete => "delete",
            Self::DeleteIfUnchanged => "delete_if_unchanged",
            Self::CreateBound => "create_bound",
            Self::Unbind => "unbind",
            Self::ListBound => "list_bound",
            Self::Count => "count",
            Self::Scan => "scan",
        }
    }
}

/// Whether store calls are timed for the metrics whether or not tracing asks.
pub(crate) const TIMED: bool = cfg!(feature = "metrics");

/// How long a store call took: measured already (for tracing), or counted from when it
/// started, which reads the clock only once a recorder takes the sample.
#[derive(Clone, Copy, Debug)]
#[cfg_attr(not(feature = "metrics"), allow(dead_code))]
pub(crate) enum Took {
    Measured(Duration),
    Since(Instant),
}

#[cfg(feature = "metrics")]
impl ::metrics::IntoF64 for Took {
    fn into_f64(self) -> f64 {
        match self {
            Self::Measured(took) => took.as_secs_f64(),
            Self::Since(started) => started.elapsed().as_secs_f64(),
        }
    }
}

/// The store-call metrics of one manager: their keys, labelled with its backend, are built
/// once so that reporting a call allocates nothing.
#[derive(Clone)]
pub(crate) struct StoreMetrics {
    #[cfg(feature = "metrics")]
    keys: Arc<[OperationKeys]>,
}

/// The keys of one operation's metrics.
#[cfg(feature = "metrics")]
struct OperationKeys {
    duration: ::metrics::Key,
    errors: ::metrics::Key,
}

impl StoreMetrics {
    /// The metrics of calls to a store of `backend`.
    #[cfg_attr(not(feature = "metrics"), allow(unused_variables))]
    pub(crate) fn new(backend: &'static str) -> Self {
        Self {
            #[cfg(feature = "metrics")]
            keys: Operation::ALL
                .iter()
                .map(|operation| {
                    use ::metrics::{Key, Label};
                    let labels = vec![
                        Label::from_static_parts("backend", backend),
                        Label::from_static_parts("operation", operation.as_str()),
                    ];
                    OperationKeys {
                        duration: Key::from_parts(STORE_CALL_DURATION, labels.clone()),
                        errors: Key::from_parts(STORE_ERRORS, labels),
                    }
                })
                .collect(),
        }
    }

    /// Reports one store call: how long it took, and whether it failed.
    #[cfg_attr(not(feature = "metrics"), allow(unused_variables))]
    pub(crate) fn call(&self, operation: Operation, failed: bool, took: Took) {
        #[cfg(feature = "metrics")]
        if let Some(keys) = self.keys.get(operation as usize) {
            ::metrics::with_recorder(|recorder| {
                recorder
                    .register_histogram(&keys.duration, &METADATA)
                    .record(took);
                if failed {
                    recorder
                        .register_counter(&keys.errors, &METADATA)
                        .increment(1);
                }
            });
        }
    }
}

/// Where the metrics come from, for recorders that filter on it.
#[cfg(feature = "metrics")]
static METADATA: ::metrics::Metadata<'static> =
    ::metrics::Metadata::new(module_path!(), ::metrics::Level::INFO, Some(module_path!()));

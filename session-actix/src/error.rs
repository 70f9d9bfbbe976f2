//! Errors a handler can meet through the [`Session`](crate::Session) extractor.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, ResponseError};

/// A session operation failed. Implements [`ResponseError`], so `?` in a handler answers
/// with the right status.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SessionError {
    /// The store could not load the session; answered with the middleware's error status
    /// (503 by default).
    #[error("session store unavailable")]
    Unavailable {
        /// The status the middleware was configured with.
        status: StatusCode,
        /// What failed.
        #[source]
        source: session_core::Error,
    },
    /// A value could not be stored or read as the requested type (a bug in the
    /// application: 500).
    #[error(transparent)]
    Value(#[from] session_core::ValueError),
    /// The `Session` extractor was used on a route without `SessionMiddleware` (500).
    #[error("the Session extractor needs SessionMiddleware to wrap this route")]
    MissingMiddleware,
    /// The session was used after its response was sent, so the change would be lost.
    #[error("the session was used after the response was sent")]
    Finished,
}

impl SessionError {
    /// A store failure, logged once here (backend, cause and status; never the id), as
    /// the error the response is built from.
    pub(crate) fn store_failed(
        backend: &'static str,
        source: session_core::Error,
        status: StatusCode,
        during: &'static str,
    ) -> Self {
        tracing::error!(
            backend,
            error = &source as &(dyn std::error::Error + 'static),
            status = status.as_u16(),
            "session {during} failed"
        );
        Self::Unavailable { status, source }
    }
}

impl ResponseError for SessionError {
    fn status_code(&self) -> StatusCode {
        match self {
            Self::Unavailable { status, .. } => *status,
            _ => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn error_response(&self) -> HttpResponse {
        // The body names the problem, not its details: those go to the log.
        let body = match self {
            Self::Unavailable { .. } => "session store unavailable",
            _ => "session error",
        };
        HttpResponse::build(self.status_code())
            .content_type("text/plain; charset=utf-8")
            .body(body)
    }
}

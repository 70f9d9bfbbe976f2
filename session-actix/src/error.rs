//! Errors a handler can meet through the [`Session`](crate::Session) extractor.

use actix_web::http::header::{HeaderValue, SET_COOKIE};
use actix_web::http::StatusCode;
use actix_web::{HttpResponse, ResponseError};

/// A session operation failed. Implements [`ResponseError`], so `?` in a handler answers
/// with the right status.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SessionError {
    /// The store failed, other requests kept the session too busy to write back, or
    /// another deployment stored it in a format this one cannot merge into; answered with
    /// the middleware's error status (503 by default).
    #[error("session store unavailable")]
    Unavailable {
        /// The status the middleware was configured with.
        status: StatusCode,
        /// What failed.
        #[source]
        source: session_core::adapter::Error,
    },
    /// The session could not be encoded, or no random id could be made: a failure of
    /// this process, not of the store (500).
    #[error("session could not be saved")]
    Internal(#[source] session_core::adapter::Error),
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
    /// A failure of the session manager, logged once here (backend, cause and status;
    /// never the id), as the error the response is built from.
    pub(crate) fn manager_failed(
        backend: &'static str,
        source: session_core::adapter::Error,
        status: StatusCode,
        during: &'static str,
    ) -> Self {
        let error = if source.is_unavailable() {
            Self::Unavailable { status, source }
        } else {
            Self::Internal(source)
        };
        let source = std::error::Error::source(&error);
        tracing::error!(
            backend,
            error = source,
            status = error.status_code().as_u16(),
            "session {during} failed"
        );
        error
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

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use session_core::adapter::Error;
    use session_core::store::StoreError;
    use session_core::Codec;

    fn status(source: Error) -> StatusCode {
        SessionError::manager_failed("memory", source, StatusCode::SERVICE_UNAVAILABLE, "saving")
            .status_code()
    }

    #[test]
    fn the_store_at_fault_is_the_configured_status_and_this_process_at_fault_a_500() {
        let unavailable = StatusCode::SERVICE_UNAVAILABLE;
        assert_eq!(status(Error::Store(StoreError::UnknownId)), unavailable);
        assert_eq!(status(Error::Contended { attempts: 16 }), unavailable);
        let codec = || Codec::decode(b"not a record").unwrap_err();
        assert_eq!(
            status(Error::Codec(codec())),
            StatusCode::INTERNAL_SERVER_ERROR
        );
        // Another deployment's record: undecodable data is never a 500.
        assert_eq!(status(Error::Unmergeable(codec())), unavailable);
    }
}

/// An error a service inside [`SessionMiddleware`](crate::SessionMiddleware) answered with
/// (an authentication or CSRF check written as a middleware), after the session was read:
/// its response carries the session's `Set-Cookie`, if any, and `Vary: Cookie`, as a
/// handler's response does. Everything else about the response is the original error's.
///
/// An outer middleware that looks for its own error type finds it inside:
///
/// ```
/// use session_actix::ErrorWithSession;
///
/// fn is_mine<E: actix_web::ResponseError + 'static>(error: &actix_web::Error) -> bool {
///     let original = error
///         .as_error::<ErrorWithSession>()
///         .map_or(error, ErrorWithSession::inner);
///     original.as_error::<E>().is_some()
/// }
/// ```
#[derive(Debug)]
pub struct ErrorWithSession {
    inner: actix_web::Error,
    set_cookie: Option<HeaderValue>,
}

impl ErrorWithSession {
    pub(crate) fn new(inner: actix_web::Error, set_cookie: Option<HeaderValue>) -> Self {
        Self { inner, set_cookie }
    }

    /// The error the inner service answered with.
    pub fn inner(&self) -> &actix_web::Error {
        &self.inner
    }

    /// The error the inner service answered with, without the session's headers.
    pub fn into_inner(self) -> actix_web::Error {
        self.inner
    }
}

impl std::fmt::Display for ErrorWithSession {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Display::fmt(&self.inner, f)
    }
}

impl ResponseError for ErrorWithSession {
    fn status_code(&self) -> StatusCode {
        self.inner.as_response_error().status_code()
    }

    /// The original error's response, made again on each call, with the session's headers.
    fn error_response(&self) -> HttpResponse {
        let mut response = self.inner.error_response();
        if let Some(cookie) = &self.set_cookie {
            response.headers_mut().append(SET_COOKIE, cookie.clone());
        }
        crate::middleware::add_vary_cookie(response.headers_mut());
        response
    }
}

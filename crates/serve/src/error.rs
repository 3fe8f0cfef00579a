//! Errors: [`ServeError`] for setting a server up, [`ApiError`] for one request (rendered as
//! OpenAI's error JSON with the matching HTTP status), [`BackendError`] for one backend call.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

/// Setting up or running a server failed.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    /// Two models registered under one id.
    #[error("model id `{id}` is registered twice")]
    DuplicateModel {
        /// The id.
        id: String,
    },
    /// A configuration value is unusable.
    #[error("invalid option `{name}`: {reason}")]
    InvalidOption {
        /// The option (a command-line flag or a field of the configuration).
        name: String,
        /// Why.
        reason: String,
    },
    /// A model named by the configuration is not registered.
    #[error("`{option}` names model `{id}`, which is not registered (registered: {known})")]
    UnknownModel {
        /// The option naming it.
        option: String,
        /// The id.
        id: String,
        /// The registered ids, comma-separated.
        known: String,
    },
    /// A model could not be loaded.
    #[error("loading model `{id}`: {source}")]
    Model {
        /// The model id.
        id: String,
        /// The cause.
        source: Box<lm::LmError>,
    },
    /// The query router could not be loaded.
    #[error("loading the router: {0}")]
    Router(Box<mf_router::MfError>),
    /// Binding or serving failed.
    #[error("{context}: {source}")]
    Io {
        /// What was being done (`binding 127.0.0.1:8080`).
        context: String,
        /// The cause.
        source: std::io::Error,
    },
}

/// The kind of an OpenAI-style error (its `type` field).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorType {
    /// The request is malformed or asks for something unsupported (400, 404, 413).
    InvalidRequest,
    /// Missing or wrong bearer key (401).
    Authentication,
    /// The server is at its queue limit (503).
    Overloaded,
    /// A backend failed (502) or the server failed (500).
    Server,
}

impl ErrorType {
    /// The wire name (`invalid_request_error`, `authentication_error`, `overloaded_error`,
    /// `server_error`).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::InvalidRequest => "invalid_request_error",
            Self::Authentication => "authentication_error",
            Self::Overloaded => "overloaded_error",
            Self::Server => "server_error",
        }
    }
}

/// One request's failure, answered as `{"error": {"message", "type", "param", "code"}}` (the
/// shape OpenAI's API and its clients use) with an HTTP status.
#[derive(Debug, Clone, PartialEq)]
pub struct ApiError {
    /// HTTP status.
    pub status: StatusCode,
    /// The error's kind.
    pub kind: ErrorType,
    /// A human sentence. Never holds a secret.
    pub message: String,
    /// The request field at fault, when one is.
    pub param: Option<String>,
    /// A machine-readable code (`model_not_found`, `invalid_api_key`, …).
    pub code: Option<&'static str>,
}

impl ApiError {
    /// A 400 naming the field at fault.
    pub fn invalid(param: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            status: StatusCode::BAD_REQUEST,
            kind: ErrorType::InvalidRequest,
            message: message.into(),
            param: Some(param.into()),
            code: None,
        }
    }

    /// A 404 for an unknown model id.
    pub fn unknown_model(id: &str) -> Self {
        Self {
            status: StatusCode::NOT_FOUND,
            kind: ErrorType::InvalidRequest,
            message: format!(
                "The model `{id}` does not exist (GET /v1/models lists the served ones)."
            ),
            param: Some("model".into()),
            code: Some("model_not_found"),
        }
    }

    /// A 401 (missing or wrong bearer key).
    pub fn unauthorized(missing: bool) -> Self {
        Self {
            status: StatusCode::UNAUTHORIZED,
            kind: ErrorType::Authentication,
            message: if missing {
                "Missing bearer key: send `Authorization: Bearer <key>`.".into()
            } else {
                "Incorrect API key provided.".into()
            },
            param: None,
            code: Some("invalid_api_key"),
        }
    }

    /// A 503: the server's queue is full.
    pub fn overloaded(limit: usize) -> Self {
        Self {
            status: StatusCode::SERVICE_UNAVAILABLE,
            kind: ErrorType::Overloaded,
            message: format!("The server is busy ({limit} requests in flight); retry later."),
            param: None,
            code: Some("server_busy"),
        }
    }

    /// A 500.
    pub fn internal(message: impl Into<String>) -> Self {
        Self {
            status: StatusCode::INTERNAL_SERVER_ERROR,
            kind: ErrorType::Server,
            message: message.into(),
            param: None,
            code: None,
        }
    }

    /// The error JSON.
    pub fn body(&self) -> serde_json::Value {
        serde_json::json!({
            "error": {
                "message": self.message,
                "type": self.kind.as_str(),
                "param": self.param,
                "code": self.code,
            }
        })
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut r = (self.status, axum::Json(self.body())).into_response();
        if self.status == StatusCode::UNAUTHORIZED {
            r.headers_mut().insert(
                axum::http::header::WWW_AUTHENTICATE,
                axum::http::HeaderValue::from_static("Bearer"),
            );
        }
        r
    }
}

/// One backend call failed.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum BackendError {
    /// The request cannot be served by this backend (a prompt longer than its context, an
    /// empty prompt): the client's fault, a 400.
    #[error("{message}")]
    Invalid {
        /// The request field at fault.
        param: &'static str,
        /// Why.
        message: String,
    },
    /// A remote backend is down, timed out or answered with an error: a 502.
    #[error("backend `{backend}` failed: {detail}")]
    Upstream {
        /// The backend's id.
        backend: String,
        /// What happened (never the API key).
        detail: String,
    },
    /// The model or a router failed while running: a 500.
    #[error("backend `{backend}` failed: {detail}")]
    Internal {
        /// The backend's id.
        backend: String,
        /// What happened.
        detail: String,
    },
}

impl From<BackendError> for ApiError {
    fn from(e: BackendError) -> Self {
        match &e {
            BackendError::Invalid { param, .. } => ApiError::invalid(*param, e.to_string()),
            BackendError::Upstream { .. } => Self {
                status: StatusCode::BAD_GATEWAY,
                kind: ErrorType::Server,
                message: e.to_string(),
                param: None,
                code: Some("backend_unavailable"),
            },
            BackendError::Internal { .. } => ApiError::internal(e.to_string()),
        }
    }
}

impl From<mf_router::MfError> for ServeError {
    fn from(e: mf_router::MfError) -> Self {
        Self::Router(Box::new(e))
    }
}

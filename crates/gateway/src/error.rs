//! API errors: every 4xx/5xx answer is `{"error": {"code", "message", "details"}}`, also
//! those made by axum and the tower layers (405, 408, 413, 429), which `normalize` rewrites.

use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use borderwatch_bus::BusError;
use borderwatch_model::{ErrorBody, ErrorDetail};

/// An error the API answers with.
#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub body: ErrorBody,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &str, message: impl Into<String>) -> ApiError {
        ApiError {
            status,
            body: ErrorBody {
                error: ErrorDetail {
                    code: code.to_string(),
                    message: message.into(),
                    details: Vec::new(),
                },
            },
        }
    }

    pub fn bad_request(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::BAD_REQUEST, "bad_request", message)
    }

    pub fn not_found(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::NOT_FOUND, "not_found", message)
    }

    pub fn unauthorized() -> ApiError {
        ApiError::new(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "this request changes state: send `Authorization: Bearer <token>` with the API token",
        )
    }

    /// A read without the read token (when the gateway has one).
    pub fn unauthorized_read() -> ApiError {
        ApiError::new(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "this gateway needs a token for reads: send `Authorization: Bearer <token>` with the read token or the API token",
        )
    }
}

impl From<BusError> for ApiError {
    fn from(e: BusError) -> ApiError {
        let status = match e {
            BusError::NoResponder { .. } | BusError::Timeout { .. } | BusError::Connect { .. } => {
                StatusCode::SERVICE_UNAVAILABLE
            }
            BusError::StreamFull { .. } => StatusCode::INSUFFICIENT_STORAGE,
            _ => StatusCode::INTERNAL_SERVER_ERROR,
        };
        ApiError::new(status, "unavailable", e.to_string())
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let unauthorized = self.status == StatusCode::UNAUTHORIZED;
        let mut resp = (self.status, Json(self.body)).into_response();
        if unauthorized {
            resp.headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        resp
    }
}

/// The error code of a status that a layer or axum answered by itself.
fn code_for(status: StatusCode) -> &'static str {
    match status {
        StatusCode::BAD_REQUEST => "bad_request",
        StatusCode::UNAUTHORIZED => "unauthorized",
        StatusCode::NOT_FOUND => "not_found",
        StatusCode::METHOD_NOT_ALLOWED => "method_not_allowed",
        StatusCode::REQUEST_TIMEOUT => "timeout",
        StatusCode::PAYLOAD_TOO_LARGE => "payload_too_large",
        StatusCode::UNSUPPORTED_MEDIA_TYPE => "unsupported_media_type",
        StatusCode::UNPROCESSABLE_ENTITY => "unprocessable",
        StatusCode::TOO_MANY_REQUESTS => "rate_limited",
        StatusCode::SERVICE_UNAVAILABLE => "unavailable",
        s if s.is_server_error() => "internal",
        _ => "error",
    }
}

/// An error answer that is not JSON (axum's 405 and extractor rejections, the
/// timeout's 408, the body limit's 413, the rate limiter's 429) becomes the API's error body,
/// keeping its other headers (`Allow`, `Retry-After`). The dashboard's own error pages
/// (HTML) are left as they are.
/// Run on every answer by the router's outer middleware (`telemetry::observe`).
pub(crate) async fn normalize(resp: Response) -> Response {
    let status = resp.status();
    let content_type = resp
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let deliberate =
        content_type.starts_with("application/json") || content_type.starts_with("text/html");
    if !(status.is_client_error() || status.is_server_error()) || deliberate {
        return resp;
    }
    let (mut parts, body) = resp.into_parts();
    // These bodies are one line of text; a larger one is not read whole.
    let text = axum::body::to_bytes(body, 64 * 1024)
        .await
        .map(|b| String::from_utf8_lossy(&b).trim().to_string())
        .unwrap_or_default();
    let message = match (text.is_empty(), status) {
        (false, _) => text,
        (true, StatusCode::REQUEST_TIMEOUT) => {
            "the request took too long: the gateway stopped waiting for it".to_string()
        }
        (true, StatusCode::METHOD_NOT_ALLOWED) => {
            "this path does not take that method (see the Allow header)".to_string()
        }
        (true, s) => s.canonical_reason().unwrap_or("error").to_string(),
    };
    parts.headers.remove(header::CONTENT_LENGTH);
    parts.headers.remove(header::CONTENT_TYPE);
    let rebuilt = ApiError::new(status, code_for(status), message).into_response();
    let (new_parts, new_body) = rebuilt.into_parts();
    for (name, value) in new_parts.headers.iter() {
        parts.headers.insert(name.clone(), value.clone());
    }
    Response::from_parts(parts, new_body)
}

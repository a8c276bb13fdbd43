use http::StatusCode;
use serde_json::json;

use crate::http::reply::Reply;

/// `GET /health`: the function is up. Touches no dependency, so it stays cheap and honest.
pub fn health() -> Reply {
    Reply::json(StatusCode::OK, &json!({"status": "ok"}), None)
}

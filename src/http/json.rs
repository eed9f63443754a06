//! JSON request bodies: read within their limit and parsed into one operation or a batch.
//! The multipart reader parses its `operations` part the same way.

use async_graphql::{BatchRequest, Request};
use axum::body::Body;
use futures_util::StreamExt;
use http::StatusCode;

use crate::schema::limits::MAX_BATCH;

/// JSON bodies larger than this are refused before parsing.
pub(crate) const MAX_JSON_BODY: usize = 1024 * 1024;

pub(super) enum BodyError {
    TooLarge,
    Broken,
}

/// Reads a JSON body of at most [`MAX_JSON_BODY`] bytes. A larger body is read to its end
/// (up to the server-wide limit) and dropped, so the client receives the 413 instead of a
/// connection reset in the middle of its upload.
pub(super) async fn read_json_body(body: Body) -> Result<Vec<u8>, BodyError> {
    let mut stream = body.into_data_stream();
    let mut buf = Vec::new();
    let mut too_large = false;
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|_| {
            if too_large {
                BodyError::TooLarge
            } else {
                BodyError::Broken
            }
        })?;
        if buf.len() + chunk.len() > MAX_JSON_BODY {
            too_large = true;
            buf = Vec::new();
        }
        if !too_large {
            buf.extend_from_slice(&chunk);
        }
    }
    if too_large {
        Err(BodyError::TooLarge)
    } else {
        Ok(buf)
    }
}

/// Parses a JSON body: an object is one operation, an array a batch of at most 10.
pub(super) fn parse_json(bytes: &[u8]) -> Result<BatchRequest, (StatusCode, String)> {
    let value: serde_json::Value = serde_json::from_slice(bytes).map_err(|e| {
        (
            StatusCode::BAD_REQUEST,
            format!("the body is not valid JSON: {e}"),
        )
    })?;
    let one = |v: serde_json::Value| -> Result<Request, (StatusCode, String)> {
        if !v.is_object() {
            return Err((
                StatusCode::BAD_REQUEST,
                "each operation must be a JSON object".into(),
            ));
        }
        if !v.get("query").is_some_and(serde_json::Value::is_string) {
            return Err((
                StatusCode::BAD_REQUEST,
                "a GraphQL request needs a `query` string".into(),
            ));
        }
        serde_json::from_value::<Request>(v).map_err(|e| {
            (
                StatusCode::BAD_REQUEST,
                format!("not a GraphQL request: {e}"),
            )
        })
    };
    match value {
        serde_json::Value::Array(items) => {
            if items.is_empty() {
                return Err((
                    StatusCode::BAD_REQUEST,
                    "an empty batch has nothing to run".into(),
                ));
            }
            if items.len() > MAX_BATCH {
                return Err((
                    StatusCode::BAD_REQUEST,
                    format!(
                        "a batch holds at most {MAX_BATCH} operations; this one has {}",
                        items.len()
                    ),
                ));
            }
            Ok(BatchRequest::Batch(
                items.into_iter().map(one).collect::<Result<_, _>>()?,
            ))
        }
        other => Ok(BatchRequest::Single(one(other)?)),
    }
}

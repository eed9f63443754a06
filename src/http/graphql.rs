//! `/graphql` over HTTP: JSON bodies (single or batched), multipart uploads, GET queries,
//! and the websocket upgrade. The response is negotiated: `application/json` by default
//! (GraphQL errors answer 200), `application/graphql-response+json` when the client asks
//! for it (then request errors answer 400, as the GraphQL-over-HTTP spec says).

use std::net::SocketAddr;

use async_graphql::{
    http::{receive_batch_body, MultipartOptions},
    BatchRequest, Request, Response,
};
use axum::{
    body::Body,
    extract::{
        ws::rejection::WebSocketUpgradeRejection, ConnectInfo, RawQuery, State, WebSocketUpgrade,
    },
    response::IntoResponse,
};
use futures_util::{StreamExt, TryStreamExt};
use http::{header, HeaderMap, HeaderValue, StatusCode};
use tracing::Instrument;

use super::{client::client_info, ws, AppState, MAX_BODY};
use crate::{
    error::{request_error_body, Error},
    schema::{
        context::RequestContext,
        errors::{is_request_error, label, BAD_REQUEST, METHOD_NOT_ALLOWED},
        limits::{self, MAX_BATCH},
    },
    services::auth::{authenticate_header, sessions::ClientInfo, Auth},
};
use http_body_util::Limited;
use std::sync::{
    atomic::{AtomicBool, Ordering},
    Arc,
};

/// JSON bodies larger than this are refused before parsing.
pub(crate) const MAX_JSON_BODY: usize = 1024 * 1024;
/// The largest upload the multipart parser accepts. The exact 10 MiB limit is enforced
/// while the file is stored, so the client gets `PAYLOAD_TOO_LARGE` as a GraphQL error.
const MULTIPART_MAX_FILE: usize = 11 * 1024 * 1024;
const MULTIPART_MAX_FILES: usize = crate::services::media::MAX_FILES;

const JSON: &str = "application/json";
const GRAPHQL_RESPONSE_JSON: &str = "application/graphql-response+json";

/// Which response media type the client asked for.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Accept {
    Json,
    GraphqlResponseJson,
}

fn negotiate(headers: &HeaderMap) -> Accept {
    let accept = headers
        .get_all(header::ACCEPT)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .collect::<Vec<_>>()
        .join(",");
    let mut best: Option<(f32, Accept)> = None;
    for part in accept.split(',') {
        let mut fields = part.split(';').map(str::trim);
        let kind = match fields.next() {
            Some(GRAPHQL_RESPONSE_JSON) => Accept::GraphqlResponseJson,
            Some(JSON) => Accept::Json,
            _ => continue,
        };
        let q = fields
            .find_map(|f| f.strip_prefix("q="))
            .and_then(|q| q.parse::<f32>().ok())
            .unwrap_or(1.0);
        if q > 0.0
            && best.is_none_or(|(bq, bk)| {
                q > bq || (q == bq && kind == Accept::GraphqlResponseJson && bk == Accept::Json)
            })
        {
            best = Some((q, kind));
        }
    }
    best.map(|(_, k)| k).unwrap_or(Accept::Json)
}

/// Serialises one response; a request error carries no `data` key at all.
fn response_json(response: &Response) -> serde_json::Value {
    let mut value = serde_json::to_value(response)
        .unwrap_or_else(|_| request_error_body("INTERNAL_SERVER_ERROR", "internal server error"));
    if is_request_error(response) {
        if let Some(obj) = value.as_object_mut() {
            obj.remove("data");
        }
    }
    value
}

fn reply(
    accept: Accept,
    status: StatusCode,
    body: serde_json::Value,
    extra: Option<HeaderMap>,
) -> axum::response::Response {
    let content_type = match accept {
        Accept::Json => "application/json",
        Accept::GraphqlResponseJson => "application/graphql-response+json; charset=utf-8",
    };
    let bytes = serde_json::to_vec(&body).unwrap_or_default();
    let mut response = (
        status,
        [(header::CONTENT_TYPE, HeaderValue::from_static(content_type))],
        bytes,
    )
        .into_response();
    if let Some(extra) = extra {
        response.headers_mut().extend(extra);
    }
    response
}

/// A failure of the HTTP request itself (malformed body, too many operations…).
fn refuse(
    accept: Accept,
    status: StatusCode,
    code: &str,
    message: &str,
) -> axum::response::Response {
    reply(accept, status, request_error_body(code, message), None)
}

/// A request refused with one of the server's errors: its code and its status.
fn refuse_with(accept: Accept, err: Error) -> axum::response::Response {
    refuse(accept, err.status(), err.code(), &err.to_string())
}

fn status_of(accept: Accept, responses: &[Response]) -> StatusCode {
    let method_refused = responses.iter().any(|r| {
        r.errors
            .iter()
            .any(|e| crate::schema::errors::code_of(e) == Some(METHOD_NOT_ALLOWED))
    });
    if method_refused {
        return StatusCode::METHOD_NOT_ALLOWED;
    }
    match accept {
        Accept::GraphqlResponseJson if responses.len() == 1 && is_request_error(&responses[0]) => {
            StatusCode::BAD_REQUEST
        }
        _ => StatusCode::OK,
    }
}

async fn run_one(
    state: &AppState,
    auth: &Auth,
    client: &ClientInfo,
    mut request: Request,
    over_get: bool,
) -> Response {
    let operation = match limits::check(&mut request, over_get) {
        Ok(operation) => operation,
        Err(err) => {
            tracing::debug!(error = %err.message, "request refused before execution");
            return Response::from_errors(vec![err]);
        }
    };
    let user_id = auth.optional_viewer().ok().flatten().map(|v| v.user_id);
    let span = operation.span(user_id);
    let request = request.data(RequestContext::new(auth.clone(), client.clone()));
    let mut response = state.schema.execute(request).instrument(span.clone()).await;
    span.in_scope(|| {
        label(&mut response);
        tracing::debug!(errors = response.errors.len(), "operation finished");
    });
    response
}

async fn run(
    state: &AppState,
    accept: Accept,
    auth: Auth,
    client: ClientInfo,
    batch: BatchRequest,
    over_get: bool,
) -> axum::response::Response {
    match batch {
        BatchRequest::Single(request) => {
            let response = run_one(state, &auth, &client, request, over_get).await;
            let status = status_of(accept, std::slice::from_ref(&response));
            let headers = response.http_headers.clone();
            reply(accept, status, response_json(&response), Some(headers))
        }
        BatchRequest::Batch(requests) => {
            let mut responses = Vec::with_capacity(requests.len());
            for request in requests {
                responses.push(run_one(state, &auth, &client, request, over_get).await);
            }
            let status = status_of(accept, &responses);
            let body = serde_json::Value::Array(responses.iter().map(response_json).collect());
            reply(accept, status, body, None)
        }
    }
}

/// Counts the parts of a multipart body as it streams by and cuts it after the
/// `operations` and `map` parts and [`MULTIPART_MAX_FILES`] files: the parser writes every
/// file part to a temp file before anything can look at the request, and does not limit
/// how many there are.
struct PartCounter {
    /// `--boundary`, as every part (and the closing delimiter) begins.
    delimiter: Vec<u8>,
    /// The end of the previous chunk, for a delimiter split across two chunks.
    tail: Vec<u8>,
    seen: usize,
    too_many: Arc<AtomicBool>,
}

impl PartCounter {
    /// `None` when the content type names no boundary (the parser refuses it too).
    fn new(content_type: &str, too_many: Arc<AtomicBool>) -> Option<PartCounter> {
        // The parser's own reading of the boundary, whatever its case or quoting.
        let boundary = multer::parse_boundary(content_type)
            .ok()
            .filter(|b| !b.is_empty())?;
        Some(PartCounter {
            delimiter: format!("--{boundary}").into_bytes(),
            tail: Vec::new(),
            seen: 0,
            too_many,
        })
    }

    fn pass(&mut self, chunk: bytes::Bytes) -> std::io::Result<bytes::Bytes> {
        {
            let mut window = std::mem::take(&mut self.tail);
            window.extend_from_slice(&chunk);
            let d = &self.delimiter;
            let mut at = 0;
            let mut matched_to = 0;
            while at + d.len() <= window.len() {
                if &window[at..at + d.len()] == d.as_slice() {
                    self.seen += 1;
                    at += d.len();
                    matched_to = at;
                } else {
                    at += 1;
                }
            }
            // What may begin a delimiter that the next chunk completes (never bytes of
            // one already counted).
            let from = matched_to.max(window.len().saturating_sub(d.len() - 1));
            let keep = window.len() - from;
            self.tail = window[window.len() - keep..].to_vec();
        }
        // operations + map + files, and the closing delimiter.
        if self.seen > 2 + MULTIPART_MAX_FILES + 1 {
            self.too_many.store(true, Ordering::Relaxed);
            return Err(std::io::Error::other("too many files"));
        }
        Ok(chunk)
    }
}

enum BodyError {
    TooLarge,
    Broken,
}

/// Reads a JSON body of at most [`MAX_JSON_BODY`] bytes. A larger body is read to its end
/// (up to the server-wide limit) and dropped, so the client receives the 413 instead of a
/// connection reset in the middle of its upload.
async fn read_json_body(body: Body) -> Result<Vec<u8>, BodyError> {
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
fn parse_json(bytes: &[u8]) -> Result<BatchRequest, (StatusCode, String)> {
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

/// The rules every batch obeys, whatever its encoding: at most [`MAX_BATCH`] operations,
/// none empty.
fn check_batch(batch: &BatchRequest) -> Result<(), String> {
    let requests: &[Request] = match batch {
        BatchRequest::Single(r) => std::slice::from_ref(r),
        BatchRequest::Batch(rs) => rs,
    };
    if requests.is_empty() {
        return Err("an empty batch has nothing to run".into());
    }
    if requests.len() > MAX_BATCH {
        return Err(format!(
            "a batch holds at most {MAX_BATCH} operations; this one has {}",
            requests.len()
        ));
    }
    if requests.iter().any(|r| r.query.trim().is_empty()) {
        return Err("a GraphQL request needs a `query` string".into());
    }
    Ok(())
}

async fn authenticate(state: &AppState, headers: &HeaderMap) -> Result<Auth, Error> {
    let header = headers
        .get(header::AUTHORIZATION)
        .map(|v| v.to_str().unwrap_or("\u{0}"));
    authenticate_header(&state.services, header).await
}

pub(crate) async fn post_handler(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    body: Body,
) -> axum::response::Response {
    let accept = negotiate(&headers);
    // The original value goes to the multipart parser: boundaries are case-sensitive.
    let raw_content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let content_type = raw_content_type.to_ascii_lowercase();
    let client = client_info(
        &headers,
        Some(peer),
        state.services.config.trust_proxy_headers,
    );
    // A declared length over the limit is refused before reading (and the connection
    // closed, since the body is left unread); an undeclared one is cut while reading.
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|len| len > MAX_BODY as u64) {
        let mut response = refuse_with(
            accept,
            Error::PayloadTooLarge("the request is larger than 12 MiB".into()),
        );
        response
            .headers_mut()
            .insert(header::CONNECTION, HeaderValue::from_static("close"));
        return response;
    }
    let body = Body::new(Limited::new(body, MAX_BODY));

    let batch = if content_type.starts_with("multipart/form-data") {
        // A form post is a "simple" request browsers send cross-site without a preflight;
        // demanding a header a form cannot set keeps such uploads from being forged.
        let preflighted = [
            "authorization",
            "apollo-require-preflight",
            "x-apollo-operation-name",
            "graphql-require-preflight",
        ]
        .iter()
        .any(|h| headers.contains_key(*h));
        if !preflighted {
            return refuse(
                accept,
                StatusCode::BAD_REQUEST,
                BAD_REQUEST,
                "multipart requests must carry Authorization or a preflight header (apollo-require-preflight, x-apollo-operation-name or graphql-require-preflight)",
            );
        }
        let cut = Arc::new(AtomicBool::new(false));
        let seen_cut = cut.clone();
        let too_many = Arc::new(AtomicBool::new(false));
        let Some(mut parts) = PartCounter::new(raw_content_type, too_many.clone()) else {
            return refuse(
                accept,
                StatusCode::BAD_REQUEST,
                BAD_REQUEST,
                "a multipart request needs a boundary",
            );
        };
        let reader = body
            .into_data_stream()
            .map_err(move |e| {
                if e.to_string().contains("length limit") {
                    seen_cut.store(true, Ordering::Relaxed);
                }
                std::io::Error::other(e)
            })
            .and_then(move |chunk| futures_util::future::ready(parts.pass(chunk)))
            .into_async_read();
        let opts = MultipartOptions::default()
            .max_file_size(MULTIPART_MAX_FILE)
            .max_num_files(MULTIPART_MAX_FILES);
        let started = std::time::Instant::now();
        let received = receive_batch_body(Some(raw_content_type), reader, opts).await;
        tracing::debug!(
            micros = started.elapsed().as_micros() as u64,
            "multipart body received"
        );
        match received {
            Ok(batch) => batch,
            Err(async_graphql::ParseRequestError::PayloadTooLarge) => {
                return refuse_with(
                    accept,
                    Error::PayloadTooLarge("the upload is larger than 10 MiB".into()),
                )
            }
            Err(_) if too_many.load(Ordering::Relaxed) => {
                return refuse_with(
                    accept,
                    Error::bad_input(
                        "file",
                        format!("a request carries at most {MULTIPART_MAX_FILES} files"),
                    ),
                )
            }
            // The body was cut at the request limit (the parser reports it as a broken
            // stream).
            Err(_) if cut.load(Ordering::Relaxed) => {
                return refuse_with(
                    accept,
                    Error::PayloadTooLarge("the request is larger than 12 MiB".into()),
                )
            }
            Err(e) => {
                return refuse(
                    accept,
                    StatusCode::BAD_REQUEST,
                    BAD_REQUEST,
                    &format!("invalid multipart request: {e}"),
                )
            }
        }
    } else if content_type.starts_with(JSON) || content_type.starts_with(GRAPHQL_RESPONSE_JSON) {
        let bytes = match read_json_body(body).await {
            Ok(b) => b,
            Err(BodyError::TooLarge) => {
                return refuse_with(
                    accept,
                    Error::PayloadTooLarge("the request body is larger than 1 MiB".into()),
                )
            }
            Err(BodyError::Broken) => {
                return refuse(
                    accept,
                    StatusCode::BAD_REQUEST,
                    BAD_REQUEST,
                    "the request body could not be read",
                )
            }
        };
        match parse_json(&bytes) {
            Ok(b) => b,
            Err((status, message)) => return refuse(accept, status, BAD_REQUEST, &message),
        }
    } else {
        return refuse_with(
            accept,
            Error::UnsupportedMediaType("send application/json or multipart/form-data".into()),
        );
    };

    if let Err(message) = check_batch(&batch) {
        return refuse(accept, StatusCode::BAD_REQUEST, BAD_REQUEST, &message);
    }
    let auth = match authenticate(&state, &headers).await {
        Ok(a) => a,
        Err(e) => return e.into_response(),
    };
    run(&state, accept, auth, client, batch, false).await
}

pub(crate) async fn get_handler(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
    upgrade: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
) -> axum::response::Response {
    let client = client_info(
        &headers,
        Some(peer),
        state.services.config.trust_proxy_headers,
    );
    let wants_upgrade = headers
        .get(header::UPGRADE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.eq_ignore_ascii_case("websocket"));
    match upgrade {
        Ok(upgrade) => return ws::upgrade(state, upgrade, client),
        Err(rejection) if wants_upgrade => return rejection.into_response(),
        Err(_) => {}
    }
    let accept = negotiate(&headers);
    let request = match async_graphql::http::parse_query_string(query.as_deref().unwrap_or("")) {
        Ok(r) => r,
        Err(e) => {
            return refuse(
                accept,
                StatusCode::BAD_REQUEST,
                BAD_REQUEST,
                &format!("invalid GET request: {e}"),
            )
        }
    };
    let auth = match authenticate(&state, &headers).await {
        Ok(a) => a,
        Err(e) => return e.into_response(),
    };
    run(
        &state,
        accept,
        auth,
        client,
        BatchRequest::Single(request),
        true,
    )
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn accept(v: &str) -> Accept {
        let mut h = HeaderMap::new();
        h.insert(header::ACCEPT, HeaderValue::from_str(v).unwrap());
        negotiate(&h)
    }

    #[test]
    fn negotiation_prefers_what_the_client_weighs_higher() {
        assert!(
            accept("application/graphql-response+json, application/json;q=0.9")
                == Accept::GraphqlResponseJson
        );
        assert!(
            accept("application/json, application/graphql-response+json;q=0.5") == Accept::Json
        );
        assert!(accept("*/*") == Accept::Json);
        assert!(accept("application/graphql-response+json") == Accept::GraphqlResponseJson);
    }
}

//! `/graphql` over HTTP: JSON bodies (single or batched), multipart uploads, GET queries,
//! and the websocket upgrade. The response is negotiated: `application/json` by default
//! (GraphQL errors answer 200), `application/graphql-response+json` when the client asks
//! for it (then request errors answer 400, as the GraphQL-over-HTTP spec says).

use std::net::SocketAddr;

use async_graphql::{BatchRequest, Request, Response};
use axum::{
    body::Body,
    extract::{
        ws::rejection::WebSocketUpgradeRejection, ConnectInfo, RawQuery, State, WebSocketUpgrade,
    },
    response::IntoResponse,
};
use futures_util::TryStreamExt;
use http::{header, HeaderMap, HeaderValue, StatusCode};
use tracing::Instrument;

use super::{
    client::client_info,
    json::{parse_json, read_json_body, BodyError},
    multipart::{self, Refusal},
    ws, AppState, MAX_BODY,
};
use crate::{
    error::{request_error_body, Error},
    schema::{
        context::RequestContext,
        errors::{is_request_error, label, BAD_REQUEST, METHOD_NOT_ALLOWED},
        limits::{self, MAX_BATCH},
        plain,
    },
    services::{
        auth::{authenticate_header, sessions::ClientInfo, Auth},
        media::receive as received,
    },
};
use http_body_util::Limited;
use std::sync::{
    atomic::{AtomicBool, Ordering},
    Arc,
};

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

/// One response as it is written out. An executed operation is written straight from
/// the library's response into the body's bytes, with no `serde_json::Value` tree in
/// between, and with the text of walked values copied in as it is
/// (`schema::plain::write_value`); a request error goes through [`response_json`], which
/// drops its `data` key.
enum Outgoing<'a> {
    Executed(&'a Response),
    Refused(serde_json::Value),
}

impl Outgoing<'_> {
    fn write(&self, out: &mut Vec<u8>) -> serde_json::Result<()> {
        match self {
            Outgoing::Refused(value) => serde_json::to_writer(&mut *out, value),
            Outgoing::Executed(response) => {
                // As `Response` serialises itself: data, then extensions and errors
                // when there are any.
                out.extend_from_slice(b"{\"data\":");
                plain::write_value(out, &response.data);
                if !response.extensions.is_empty() {
                    out.extend_from_slice(b",\"extensions\":");
                    serde_json::to_writer(&mut *out, &response.extensions)?;
                }
                if !response.errors.is_empty() {
                    out.extend_from_slice(b",\"errors\":");
                    serde_json::to_writer(&mut *out, &response.errors)?;
                }
                out.push(b'}');
                Ok(())
            }
        }
    }
}

fn outgoing(response: &Response) -> Outgoing<'_> {
    if is_request_error(response) {
        Outgoing::Refused(response_json(response))
    } else {
        Outgoing::Executed(response)
    }
}

/// The body of one response, or of a batch's (an array of them).
fn body_of(responses: &[Outgoing<'_>], batch: bool) -> serde_json::Result<Vec<u8>> {
    let mut out = Vec::with_capacity(16 * 1024);
    if batch {
        out.push(b'[');
    }
    for (i, response) in responses.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        response.write(&mut out)?;
    }
    if batch {
        out.push(b']');
    }
    Ok(out)
}

fn reply(
    accept: Accept,
    status: StatusCode,
    body: serde_json::Result<Vec<u8>>,
    extra: Option<HeaderMap>,
) -> axum::response::Response {
    let content_type = match accept {
        Accept::Json => "application/json",
        Accept::GraphqlResponseJson => "application/graphql-response+json; charset=utf-8",
    };
    let bytes = body.unwrap_or_else(|_| {
        serde_json::to_vec(&request_error_body(
            "INTERNAL_SERVER_ERROR",
            "internal server error",
        ))
        .unwrap_or_default()
    });
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
    reply(
        accept,
        status,
        serde_json::to_vec(&request_error_body(code, message)),
        None,
    )
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
    let request = request
        .data(RequestContext::new(auth.clone(), client.clone()))
        .data(plain::WritesRawJson);
    // A query with valid or no credentials needs nothing from the gate-and-audit
    // extension; everything else (and any operation whose type cannot be told) gets it.
    let reads = operation.kind == Some("query") && !matches!(auth, Auth::Invalid(_));
    // A read validated before runs without validating again; one seen for the first
    // time is validated in full and remembered when it passed.
    let validation = reads.then(|| state.validated.key(&request)).flatten();
    let (schema, remember) = match &validation {
        _ if !reads => (&state.schema, None),
        Some(key) if state.validated.contains(key) => (&state.checked, None),
        key => (&state.reads, key.clone()),
    };
    let mut response = schema.execute(request).instrument(span.clone()).await;
    if let Some(key) = remember {
        if !is_request_error(&response) {
            state.validated.insert(key);
        }
    }
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
            reply(
                accept,
                status,
                body_of(&[outgoing(&response)], false),
                Some(headers),
            )
        }
        BatchRequest::Batch(requests) => {
            let mut responses = Vec::with_capacity(requests.len());
            for request in requests {
                responses.push(run_one(state, &auth, &client, request, over_get).await);
            }
            let status = status_of(accept, &responses);
            let body: Vec<Outgoing<'_>> = responses.iter().map(outgoing).collect();
            reply(accept, status, body_of(&body, true), None)
        }
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
        let mut response = refuse_with(accept, Error::PayloadTooLarge(super::max_body_words()));
        response
            .headers_mut()
            .insert(header::CONNECTION, HeaderValue::from_static("close"));
        return response;
    }
    let body = Body::new(Limited::new(body, MAX_BODY));

    let (batch, arrivals, auth) = if content_type.starts_with("multipart/form-data") {
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
        let body = Body::from_stream(body.into_data_stream().map_err(move |e| {
            if e.to_string().contains("length limit") {
                seen_cut.store(true, Ordering::Relaxed);
            }
            e
        }));
        // Files are stored only for a caller whose token holds, so the token is read
        // before the body.
        let auth = match authenticate(&state, &headers).await {
            Ok(a) => a,
            Err(e) => return e.into_response(),
        };
        let uploader = match &auth {
            Auth::User(viewer) => Some(viewer.user_id),
            _ => None,
        };
        let started = std::time::Instant::now();
        let received =
            multipart::receive(&state.services, raw_content_type, body, cut, uploader).await;
        tracing::debug!(
            micros = started.elapsed().as_micros() as u64,
            "multipart body received"
        );
        match received {
            // The token read before the body serves the operations too.
            Ok(parsed) => (parsed.batch, parsed.arrivals, Some(auth)),
            Err(Refusal::Error(e)) => return refuse_with(accept, e),
            Err(Refusal::Malformed(message)) => {
                return refuse(accept, StatusCode::BAD_REQUEST, BAD_REQUEST, &message)
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
            Ok(b) => (b, Vec::new(), None),
            Err((status, message)) => return refuse(accept, status, BAD_REQUEST, &message),
        }
    } else {
        return refuse_with(
            accept,
            Error::UnsupportedMediaType("send application/json or multipart/form-data".into()),
        );
    };

    let response = async {
        if let Err(message) = check_batch(&batch) {
            return refuse(accept, StatusCode::BAD_REQUEST, BAD_REQUEST, &message);
        }
        let auth = match auth {
            Some(a) => a,
            None => match authenticate(&state, &headers).await {
                Ok(a) => a,
                Err(e) => return e.into_response(),
            },
        };
        run(&state, accept, auth, client, batch, false).await
    }
    .await;
    // Uploads no operation took are gone before the client reads the answer.
    received::discard(&arrivals).await;
    response
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

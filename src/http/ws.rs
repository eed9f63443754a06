//! Subscriptions over websocket, both `graphql-transport-ws` (graphql-ws) and the legacy
//! `graphql-ws` (subscriptions-transport-ws) sub-protocol.
//!
//! Written here rather than taken from the GraphQL library because the contract needs
//! close codes it does not send (4401, 4403, 4408, 4409) and a connection must close with
//! 4403 once its session is revoked, its user suspended or re-roled, or its token expires:
//! the session is re-checked every few seconds (through the session cache) and at the
//! token's expiry.

use std::{collections::HashMap, time::Duration};

use async_graphql::{Request, Response};
use axum::extract::ws::{CloseFrame, Message, WebSocket, WebSocketUpgrade};
use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use tokio::{sync::mpsc, task::AbortHandle};
use tracing::Instrument;

use super::AppState;
use crate::{
    schema::{
        context::RequestContext,
        errors::{is_lagged, is_request_error, label},
        limits,
    },
    services::auth::{authenticate_token, bearer, sessions::ClientInfo, Auth, Viewer},
};

/// The read buffer of a connection. The library's default (128 KiB, allocated whole for
/// every connection) made 5,000 idle subscribers cost about 0.9 GiB; client messages are
/// small (a `subscribe` of a few hundred bytes), and a larger one is read in several
/// passes.
const READ_BUFFER: usize = 8 * 1024;

/// How long one websocket write may wait for the client to read. A client that reads
/// nothing for this long (its socket buffers full) is dropped: while a write waits, the
/// connection's session checks and token expiry cannot run, so it must not wait for ever.
const WRITE_TIMEOUT: Duration = Duration::from_secs(10);

/// Legacy clients expect a `ka` message now and then.
const LEGACY_KEEPALIVE: Duration = Duration::from_secs(15);
/// Incoming messages (and frames) larger than this close the connection.
const MAX_MESSAGE: usize = 256 * 1024;
/// Operations one connection may run at once; more are refused with `RATE_LIMITED`.
const MAX_OPERATIONS: usize = 100;
/// The close code of a subscriber that fell too far behind its events (RFC 6455 "Try
/// Again Later"): it reconnects and reads what it missed.
const SLOW_SUBSCRIBER: u16 = 1013;
/// A close frame's reason is at most 123 bytes (RFC 6455).
const MAX_CLOSE_REASON: usize = 123;

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Protocol {
    /// `graphql-transport-ws`: connection_init/ack, subscribe, next, error, complete, ping/pong.
    TransportWs,
    /// `graphql-ws` (subscriptions-transport-ws): start, data, error, complete, stop, ka.
    Legacy,
}

pub(crate) fn upgrade(
    state: AppState,
    upgrade: WebSocketUpgrade,
    client: ClientInfo,
) -> axum::response::Response {
    let upgrade = upgrade
        .protocols(["graphql-transport-ws", "graphql-ws"])
        .max_message_size(MAX_MESSAGE)
        .max_frame_size(MAX_MESSAGE)
        .read_buffer_size(READ_BUFFER);
    let protocol = match upgrade.selected_protocol().and_then(|p| p.to_str().ok()) {
        Some("graphql-ws") => Protocol::Legacy,
        _ => Protocol::TransportWs,
    };
    // The connection runs in a task of its own: it keeps the upgrade request's span.
    let span = tracing::Span::current();
    upgrade.on_upgrade(move |socket| {
        Connection::new(state, client, protocol)
            .serve(socket)
            .instrument(span)
    })
}

/// What subscription tasks hand back to the connection loop.
enum Outgoing {
    /// A message of a running operation (`next`/`data`).
    Message(String, u64, Value),
    /// The operation's last message (`complete` or `error`), if any: the loop forgets the
    /// operation (when it is still the same generation under that id) before sending it,
    /// so the id may be reused at once.
    Final(String, u64, Option<Value>),
    /// A subscriber too slow for its events: the connection closes with this code.
    Close(u16, String),
}

struct Connection {
    state: AppState,
    client: ClientInfo,
    protocol: Protocol,
    /// The token and the viewer it authenticated, once `connection_init` succeeded.
    session: Option<(String, Viewer)>,
    /// Running operations by id, each with the generation it was started under.
    operations: HashMap<String, (u64, AbortHandle)>,
    generation: u64,
    tx: mpsc::Sender<Outgoing>,
    rx: mpsc::Receiver<Outgoing>,
}

/// Why the connection ends.
struct Close(u16, String);

impl Connection {
    fn new(state: AppState, client: ClientInfo, protocol: Protocol) -> Connection {
        let (tx, rx) = mpsc::channel(64);
        Connection {
            state,
            client,
            protocol,
            session: None,
            operations: HashMap::new(),
            generation: 0,
            tx,
            rx,
        }
    }

    async fn serve(mut self, socket: WebSocket) {
        let (mut sink, mut stream) = socket.split();
        let init_deadline = tokio::time::sleep(self.state.services.config.ws_init_timeout);
        tokio::pin!(init_deadline);
        let check_every = (self.state.services.config.session_cache_ttl / 2)
            .clamp(Duration::from_secs(1), Duration::from_secs(5));
        let mut check = tokio::time::interval(check_every);
        let mut keepalive = tokio::time::interval(LEGACY_KEEPALIVE);
        let far = tokio::time::Instant::now() + Duration::from_secs(86_400 * 365);
        let expiry = tokio::time::sleep_until(far);
        tokio::pin!(expiry);

        let close = loop {
            let step: Result<Option<Value>, Close> = tokio::select! {
                _ = &mut init_deadline, if self.session.is_none() => {
                    Err(Close(4408, "Connection initialisation timeout".into()))
                }
                _ = &mut expiry, if self.session.is_some() => {
                    Err(Close(4403, "Forbidden: access token expired".into()))
                }
                _ = check.tick(), if self.session.is_some() => self.recheck().await.map(|_| None),
                _ = keepalive.tick(), if self.session.is_some() && self.protocol == Protocol::Legacy => {
                    Ok(Some(json!({"type": "ka"})))
                }
                out = self.rx.recv() => match out {
                    Some(Outgoing::Message(id, generation, v)) => {
                        // Nothing more of an operation the client completed.
                        Ok(self.operations.get(&id).filter(|(g, _)| *g == generation).map(|_| v))
                    }
                    Some(Outgoing::Final(id, generation, v)) => {
                        if self.operations.get(&id).is_some_and(|(g, _)| *g == generation) {
                            self.operations.remove(&id);
                            Ok(v)
                        } else {
                            Ok(None)
                        }
                    }
                    Some(Outgoing::Close(code, reason)) => Err(Close(code, reason)),
                    None => Ok(None),
                },
                incoming = stream.next() => match incoming {
                    None | Some(Err(_)) | Some(Ok(Message::Close(_))) => break None,
                    Some(Ok(Message::Text(text))) => self.handle(text.as_str()).await,
                    Some(Ok(Message::Binary(_))) => Err(Close(4400, "Binary messages are not supported".into())),
                    Some(Ok(_)) => Ok(None),
                },
            };
            match step {
                Ok(Some(message)) => {
                    if let Some((_, viewer)) = &self.session {
                        let at = deadline_of(viewer);
                        if at != expiry.deadline() {
                            expiry.as_mut().reset(at);
                        }
                    }
                    let sent = tokio::time::timeout(
                        WRITE_TIMEOUT,
                        sink.send(Message::Text(message.to_string().into())),
                    )
                    .await;
                    if !matches!(sent, Ok(Ok(()))) {
                        break None;
                    }
                }
                Ok(None) => {
                    if let Some((_, viewer)) = &self.session {
                        let at = deadline_of(viewer);
                        if at != expiry.deadline() {
                            expiry.as_mut().reset(at);
                        }
                    }
                }
                Err(close) => break Some(close),
            }
        };
        for (_, (_, op)) in self.operations.drain() {
            op.abort();
        }
        if let Some(Close(code, mut reason)) = close {
            if reason.len() > MAX_CLOSE_REASON {
                let mut end = MAX_CLOSE_REASON;
                while !reason.is_char_boundary(end) {
                    end -= 1;
                }
                reason.truncate(end);
            }
            let _ = tokio::time::timeout(
                WRITE_TIMEOUT,
                sink.send(Message::Close(Some(CloseFrame {
                    code,
                    reason: reason.into(),
                }))),
            )
            .await;
        }
        let _ = tokio::time::timeout(WRITE_TIMEOUT, sink.close()).await;
    }

    /// Handles one client message; may answer with a message or end the connection.
    async fn handle(&mut self, text: &str) -> Result<Option<Value>, Close> {
        let msg: Value = serde_json::from_str(text)
            .map_err(|_| Close(4400, "Invalid message received".into()))?;
        let kind = msg.get("type").and_then(Value::as_str).unwrap_or("");
        let id = msg.get("id").and_then(Value::as_str).map(str::to_string);
        match (self.protocol, kind) {
            (_, "connection_init") => self.init(msg.get("payload")).await,
            (Protocol::TransportWs, "ping") => Ok(Some(json!({"type": "pong"}))),
            (Protocol::TransportWs, "pong") => Ok(None),
            (Protocol::TransportWs, "subscribe") | (Protocol::Legacy, "start") => {
                let id = id
                    .filter(|i| !i.is_empty())
                    .ok_or_else(|| Close(4400, "Invalid message received: missing id".into()))?;
                self.subscribe(id, msg.get("payload").cloned().unwrap_or(Value::Null))
                    .await
            }
            (Protocol::TransportWs, "complete") | (Protocol::Legacy, "stop") => {
                if let Some((_, op)) = id.and_then(|id| self.operations.remove(&id)) {
                    op.abort();
                }
                Ok(None)
            }
            (Protocol::Legacy, "connection_terminate") => Err(Close(1000, "Normal Closure".into())),
            _ => Err(Close(
                4400,
                format!("Invalid message received: unknown type {kind:?}"),
            )),
        }
    }

    async fn init(&mut self, payload: Option<&Value>) -> Result<Option<Value>, Close> {
        if self.session.is_some() {
            return Err(Close(4429, "Too many initialisation requests".into()));
        }
        let token = payload.and_then(token_of).ok_or_else(|| {
            Close(
                4403,
                "Forbidden: connection_init must carry a bearer token".into(),
            )
        })?;
        match authenticate_token(&self.state.services, &token).await {
            Ok(Auth::User(viewer)) => {
                self.session = Some((token, viewer));
                Ok(Some(json!({"type": "connection_ack"})))
            }
            Ok(Auth::Invalid(reason)) => Err(Close(4403, format!("Forbidden: {reason}"))),
            Ok(Auth::Anonymous) | Err(_) => Err(Close(4403, "Forbidden".into())),
        }
    }

    /// Checks that the session still stands; a change of role also ends the connection,
    /// so that open subscriptions never outlive the rights they were opened with.
    async fn recheck(&mut self) -> Result<(), Close> {
        let Some((token, viewer)) = &self.session else {
            return Ok(());
        };
        match authenticate_token(&self.state.services, token).await {
            Ok(Auth::User(now)) if now.role == viewer.role => Ok(()),
            Ok(Auth::User(_)) => Err(Close(4403, "Forbidden: role changed".into())),
            Ok(Auth::Invalid(reason)) => Err(Close(4403, format!("Forbidden: {reason}"))),
            Ok(Auth::Anonymous) => Err(Close(4403, "Forbidden".into())),
            // A database hiccup is not a revocation: keep the connection, check again later.
            Err(_) => Ok(()),
        }
    }

    async fn subscribe(&mut self, id: String, payload: Value) -> Result<Option<Value>, Close> {
        let Some((_, viewer)) = &self.session else {
            return Err(Close(4401, "Unauthorized".into()));
        };
        if self.operations.contains_key(&id) {
            match self.protocol {
                Protocol::TransportWs => {
                    return Err(Close(4409, format!("Subscriber for {id} already exists")))
                }
                // The legacy protocol restarts an operation started again under its id.
                Protocol::Legacy => {
                    if let Some((_, op)) = self.operations.remove(&id) {
                        op.abort();
                    }
                }
            }
        }
        if self.operations.len() >= MAX_OPERATIONS {
            let err = crate::error::Error::RateLimited { retry_after: 1 };
            let err = crate::schema::errors::placeless(err);
            return Ok(Some(
                self.error_message(&id, &Response::from_errors(vec![err])),
            ));
        }
        let mut request: Request = match serde_json::from_value(payload) {
            Ok(r) => r,
            Err(_) => {
                return Err(Close(
                    4400,
                    "Invalid message received: bad subscribe payload".into(),
                ))
            }
        };
        let operation = match limits::check(&mut request, false) {
            Ok(operation) => operation,
            Err(err) => {
                return Ok(Some(
                    self.error_message(&id, &Response::from_errors(vec![err])),
                ))
            }
        };
        let span = operation.span(Some(viewer.user_id));
        let request = request.data(RequestContext::new(
            Auth::User(viewer.clone()),
            self.client.clone(),
        ));
        let schema = self.state.schema.clone();
        let tx = self.tx.clone();
        let protocol = self.protocol;
        let op_id = id.clone();
        self.generation += 1;
        let generation = self.generation;
        let task = tokio::spawn(
            async move {
                let mut stream = schema.execute_stream(request);
                let mut first = true;
                while let Some(mut response) = stream.next().await {
                    label(&mut response);
                    let message = if first && is_request_error(&response) {
                        error_message(protocol, &op_id, &response)
                    } else {
                        let kind = if protocol == Protocol::TransportWs {
                            "next"
                        } else {
                            "data"
                        };
                        json!({"type": kind, "id": op_id, "payload": response})
                    };
                    first = false;
                    if message["type"] == "error" {
                        let _ = tx
                            .send(Outgoing::Final(op_id, generation, Some(message)))
                            .await;
                        return;
                    }
                    // A subscription that fell too far behind its events (see
                    // `services::appointments::events`) is dropped, and the connection
                    // with it, rather than buffered.
                    let too_slow = response.errors.iter().any(is_lagged);
                    if too_slow {
                        let _ = tx
                            .send(Outgoing::Message(op_id.clone(), generation, message))
                            .await;
                        let _ = tx
                            .send(Outgoing::Close(
                                SLOW_SUBSCRIBER,
                                "Subscriber too slow".into(),
                            ))
                            .await;
                        return;
                    }
                    if tx
                        .send(Outgoing::Message(op_id.clone(), generation, message))
                        .await
                        .is_err()
                    {
                        return;
                    }
                }
                let complete = json!({"type": "complete", "id": op_id});
                let _ = tx
                    .send(Outgoing::Final(op_id, generation, Some(complete)))
                    .await;
            }
            .instrument(span),
        );
        self.operations
            .insert(id, (generation, task.abort_handle()));
        Ok(None)
    }

    fn error_message(&self, id: &str, response: &Response) -> Value {
        error_message(self.protocol, id, response)
    }
}

fn error_message(protocol: Protocol, id: &str, response: &Response) -> Value {
    let errors = serde_json::to_value(&response.errors).unwrap_or(Value::Array(Vec::new()));
    match protocol {
        Protocol::TransportWs => json!({"type": "error", "id": id, "payload": errors}),
        Protocol::Legacy => json!({"type": "error", "id": id, "payload": {"errors": errors}}),
    }
}

fn deadline_of(viewer: &Viewer) -> tokio::time::Instant {
    let left = viewer.token_expires_at - chrono::Utc::now().timestamp();
    tokio::time::Instant::now() + Duration::from_secs(left.max(0) as u64)
}

/// The token of a `connection_init` payload: `Authorization` / `authorization`
/// (`Bearer <token>`) or `token` (bare or `Bearer <token>`).
fn token_of(payload: &Value) -> Option<String> {
    let get = |k: &str| payload.get(k).and_then(Value::as_str);
    if let Some(v) = get("Authorization").or_else(|| get("authorization")) {
        return bearer(v).map(str::to_string);
    }
    let raw = get("token")?.trim();
    Some(bearer(raw).unwrap_or(raw).to_string()).filter(|t| !t.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_from_connection_init() {
        assert_eq!(
            token_of(&json!({"Authorization": "Bearer a"})).as_deref(),
            Some("a")
        );
        assert_eq!(
            token_of(&json!({"authorization": "bearer b"})).as_deref(),
            Some("b")
        );
        assert_eq!(token_of(&json!({"token": "c"})).as_deref(), Some("c"));
        assert_eq!(
            token_of(&json!({"token": "Bearer d"})).as_deref(),
            Some("d")
        );
        assert_eq!(token_of(&json!({"Authorization": "d"})), None);
        assert_eq!(token_of(&json!({})), None);
    }
}

//! A small websocket client for the graphql-ws protocols.

use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use tokio_tungstenite::{
    connect_async,
    tungstenite::{client::IntoClientRequest, http::HeaderValue, protocol::CloseFrame, Message},
    MaybeTlsStream, WebSocketStream,
};

pub struct WsClient {
    inner: WebSocketStream<MaybeTlsStream<tokio::net::TcpStream>>,
    pub protocol: String,
}

/// What the server did next.
#[derive(Debug)]
pub enum Event {
    Message(Value),
    Closed(Option<u16>, String),
}

impl WsClient {
    pub async fn connect(url: &str, protocol: &str) -> WsClient {
        let mut req = url.into_client_request().expect("ws request");
        req.headers_mut().insert(
            "sec-websocket-protocol",
            HeaderValue::from_str(protocol).expect("protocol"),
        );
        let (inner, resp) = connect_async(req).await.expect("ws connect");
        let chosen = resp
            .headers()
            .get("sec-websocket-protocol")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_string();
        WsClient {
            inner,
            protocol: chosen,
        }
    }

    pub async fn send(&mut self, v: Value) {
        self.inner
            .send(Message::Text(v.to_string().into()))
            .await
            .expect("ws send");
    }

    pub async fn init(&mut self, payload: Value) {
        self.send(json!({"type": "connection_init", "payload": payload}))
            .await;
    }

    /// The next protocol message or the close, within `within` (keepalives skipped).
    pub async fn next(&mut self, within: Duration) -> Event {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            match tokio::time::timeout(left, self.inner.next()).await {
                Err(_) => panic!("no websocket event within {within:?}"),
                Ok(None) => return Event::Closed(None, String::new()),
                Ok(Some(Err(e))) => return Event::Closed(None, e.to_string()),
                Ok(Some(Ok(Message::Text(t)))) => {
                    let v: Value = serde_json::from_str(t.as_str()).expect("json message");
                    if v["type"] == "ka" {
                        continue;
                    }
                    return Event::Message(v);
                }
                Ok(Some(Ok(Message::Close(frame)))) => {
                    return match frame {
                        Some(CloseFrame { code, reason }) => {
                            Event::Closed(Some(code.into()), reason.to_string())
                        }
                        None => Event::Closed(None, String::new()),
                    }
                }
                Ok(Some(Ok(_))) => continue,
            }
        }
    }

    /// The next protocol message or the close, or `None` when nothing comes within
    /// `within` (to show that nothing arrives).
    pub async fn try_next(&mut self, within: Duration) -> Option<Event> {
        loop {
            match tokio::time::timeout(within, self.inner.next()).await {
                Err(_) => return None,
                Ok(None) => return Some(Event::Closed(None, String::new())),
                Ok(Some(Err(e))) => return Some(Event::Closed(None, e.to_string())),
                Ok(Some(Ok(Message::Text(t)))) => {
                    let v: Value = serde_json::from_str(t.as_str()).expect("json message");
                    if v["type"] == "ka" {
                        continue;
                    }
                    return Some(Event::Message(v));
                }
                Ok(Some(Ok(Message::Close(frame)))) => {
                    return Some(match frame {
                        Some(CloseFrame { code, reason }) => {
                            Event::Closed(Some(code.into()), reason.to_string())
                        }
                        None => Event::Closed(None, String::new()),
                    })
                }
                Ok(Some(Ok(_))) => continue,
            }
        }
    }

    /// Expects the next event to be a close, and returns its code.
    pub async fn close_code(&mut self, within: Duration) -> Option<u16> {
        match self.next(within).await {
            Event::Closed(code, _) => code,
            Event::Message(m) => panic!("expected a close, got {m}"),
        }
    }

    pub async fn message(&mut self, within: Duration) -> Value {
        match self.next(within).await {
            Event::Message(m) => m,
            Event::Closed(code, reason) => {
                panic!("expected a message, connection closed: {code:?} {reason}")
            }
        }
    }
}

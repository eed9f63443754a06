//! Who is on the other end: the client address (for rate limits, sessions and the audit
//! trail) and its user agent.
//!
//! Behind the nginx gateway every connection comes from nginx, so with
//! `TRUST_PROXY_HEADERS=true` the address nginx puts in `X-Real-IP` (or the last hop of
//! `X-Forwarded-For`, the one nginx appended) is used instead. Off by default: a client
//! talking to the server directly could otherwise claim any address.

use std::net::SocketAddr;

use http::HeaderMap;

use crate::services::auth::sessions::ClientInfo;

const MAX_USER_AGENT: usize = 256;

pub(crate) fn client_info(
    headers: &HeaderMap,
    peer: Option<SocketAddr>,
    trust_proxy: bool,
) -> ClientInfo {
    let forwarded = || {
        let real = headers
            .get("x-real-ip")
            .and_then(|v| v.to_str().ok())
            .map(str::trim);
        let last_hop = headers
            .get("x-forwarded-for")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.rsplit(',').next())
            .map(str::trim);
        real.or(last_hop)
            .filter(|s| s.parse::<std::net::IpAddr>().is_ok())
            .map(str::to_string)
    };
    let ip = trust_proxy
        .then(forwarded)
        .flatten()
        .or_else(|| peer.map(|p| p.ip().to_string()));
    let user_agent = headers
        .get(http::header::USER_AGENT)
        .and_then(|v| v.to_str().ok())
        .map(|ua| ua.chars().take(MAX_USER_AGENT).collect());
    ClientInfo { ip, user_agent }
}

//! Access tokens (JWT, HS256 with `JWT_SECRET`) and opaque refresh tokens.
//!
//! Validation pins the algorithm, issuer, audience and expiry (5 s leeway for clock skew)
//! and requires `typ: "access"`, so `alg: none`, another key or algorithm, a token meant
//! for another service and a refresh token presented as an access token all fail.

use std::{path::Path, time::Duration};

use anyhow::Context;
use base64::Engine;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use rand::RngCore;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use uuid::Uuid;

use super::Role;

pub(crate) const ISSUER: &str = "jolmood-api";
pub(crate) const AUDIENCE: &str = "jolmood";
const LEEWAY_SECONDS: u64 = 5;

#[derive(Debug, Serialize, Deserialize)]
struct Claims {
    sub: String,
    role: String,
    sid: String,
    iat: i64,
    exp: i64,
    iss: String,
    aud: String,
    typ: String,
}

/// What a valid access token says.
#[derive(Debug, Clone)]
pub(crate) struct AccessClaims {
    pub(crate) user_id: Uuid,
    pub(crate) session_id: Uuid,
    pub(crate) expires_at: i64,
}

pub(crate) struct TokenKeys {
    encoding: EncodingKey,
    decoding: DecodingKey,
    validation: Validation,
    access_ttl: Duration,
    /// A key derived from the secret for signing media URLs, distinct from the JWT key so
    /// one signature can never be replayed as the other.
    media_key: Vec<u8>,
}

impl TokenKeys {
    pub(crate) fn new(secret: &[u8], access_ttl: Duration) -> TokenKeys {
        let mut validation = Validation::new(Algorithm::HS256);
        validation.set_issuer(&[ISSUER]);
        validation.set_audience(&[AUDIENCE]);
        validation.set_required_spec_claims(&["exp", "iat", "sub", "iss", "aud"]);
        validation.leeway = LEEWAY_SECONDS;
        validation.validate_exp = true;
        let media_key = Sha256::new()
            .chain_update(b"jolmood media url signing\0")
            .chain_update(secret)
            .finalize()
            .to_vec();
        TokenKeys {
            encoding: EncodingKey::from_secret(secret),
            decoding: DecodingKey::from_secret(secret),
            validation,
            access_ttl,
            media_key,
        }
    }

    pub(crate) fn access_ttl(&self) -> Duration {
        self.access_ttl
    }

    pub(crate) fn media_key(&self) -> &[u8] {
        &self.media_key
    }

    /// Signs an access token for a session.
    pub(crate) fn issue_access(
        &self,
        user_id: Uuid,
        role: Role,
        session_id: Uuid,
    ) -> anyhow::Result<String> {
        let now = chrono::Utc::now().timestamp();
        let claims = Claims {
            sub: user_id.to_string(),
            role: role.as_str().to_string(),
            sid: session_id.to_string(),
            iat: now,
            exp: now + self.access_ttl.as_secs() as i64,
            iss: ISSUER.into(),
            aud: AUDIENCE.into(),
            typ: "access".into(),
        };
        Ok(jsonwebtoken::encode(
            &Header::new(Algorithm::HS256),
            &claims,
            &self.encoding,
        )?)
    }

    /// Checks an access token's signature and claims. The error is a short reason fit to
    /// show the client (it reveals nothing the client did not send).
    pub(crate) fn verify_access(&self, token: &str) -> Result<AccessClaims, &'static str> {
        use jsonwebtoken::errors::ErrorKind;
        let data = jsonwebtoken::decode::<Claims>(token, &self.decoding, &self.validation)
            .map_err(|e| match e.kind() {
                ErrorKind::ExpiredSignature => "access token expired",
                ErrorKind::InvalidAudience | ErrorKind::InvalidIssuer => {
                    "access token not issued for this API"
                }
                _ => "invalid access token",
            })?;
        let claims = data.claims;
        if claims.typ != "access" {
            return Err("not an access token");
        }
        let user_id = Uuid::parse_str(&claims.sub).map_err(|_| "invalid access token")?;
        let session_id = Uuid::parse_str(&claims.sid).map_err(|_| "invalid access token")?;
        Ok(AccessClaims {
            user_id,
            session_id,
            expires_at: claims.exp,
        })
    }
}

/// A new opaque refresh token and the hash that is stored in its place.
pub(crate) fn new_refresh_token() -> (String, String) {
    let mut bytes = [0u8; 32];
    rand::thread_rng().fill_bytes(&mut bytes);
    let token = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes);
    let hash = hash_refresh_token(&token);
    (token, hash)
}

/// SHA-256 is enough here: the token has 256 bits of entropy, so no slow hash is needed
/// to resist guessing, and lookups stay one indexed equality.
pub(crate) fn hash_refresh_token(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

/// The JWT secret: `JWT_SECRET` when set; in embedded mode, one generated at first start
/// and kept in `DATA_DIR/jwt_secret` (mode 0600) so tokens survive restarts.
pub(crate) async fn load_secret(
    configured: Option<&str>,
    data_dir: &Path,
) -> anyhow::Result<Vec<u8>> {
    if let Some(secret) = configured {
        return Ok(secret.as_bytes().to_vec());
    }
    let path = data_dir.join("jwt_secret");
    match tokio::fs::read_to_string(&path).await {
        Ok(s) if s.trim().len() >= 32 => return Ok(s.trim().as_bytes().to_vec()),
        Ok(_) => anyhow::bail!(
            "{} is shorter than 32 bytes; delete it to generate a new one",
            path.display()
        ),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(e).with_context(|| format!("reading {}", path.display())),
    }
    tokio::fs::create_dir_all(data_dir).await?;
    let mut bytes = [0u8; 32];
    rand::thread_rng().fill_bytes(&mut bytes);
    let secret = hex::encode(bytes);
    write_private(&path, &secret).await?;
    Ok(secret.into_bytes())
}

#[cfg(unix)]
async fn write_private(path: &Path, content: &str) -> anyhow::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let path = path.to_path_buf();
    let content = content.to_string();
    tokio::task::spawn_blocking(move || -> anyhow::Result<()> {
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&path)
            .with_context(|| format!("creating {}", path.display()))?;
        f.write_all(content.as_bytes())?;
        Ok(())
    })
    .await?
}

#[cfg(not(unix))]
async fn write_private(path: &Path, content: &str) -> anyhow::Result<()> {
    tokio::fs::write(path, content).await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys() -> TokenKeys {
        TokenKeys::new(&[7u8; 32], Duration::from_secs(900))
    }

    #[test]
    fn round_trip() {
        let k = keys();
        let (u, s) = (Uuid::now_v7(), Uuid::now_v7());
        let t = k.issue_access(u, Role::Coach, s).unwrap();
        let c = k.verify_access(&t).unwrap();
        assert_eq!((c.user_id, c.session_id), (u, s));
    }

    #[test]
    fn other_secret_is_refused() {
        let t = keys()
            .issue_access(Uuid::now_v7(), Role::User, Uuid::now_v7())
            .unwrap();
        let other = TokenKeys::new(&[8u8; 32], Duration::from_secs(900));
        assert!(other.verify_access(&t).is_err());
    }

    #[test]
    fn refresh_hash_is_stable_and_distinct() {
        let (t, h) = new_refresh_token();
        assert_eq!(hash_refresh_token(&t), h);
        assert_ne!(new_refresh_token().1, h);
    }
}

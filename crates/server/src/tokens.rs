//! HS256 JSON Web Tokens: minting and verifying the emulator's own access and refresh tokens,
//! and verifying third-party `custom-token` credentials.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use hmac::{Hmac, KeyInit, Mac};
use serde::{Deserialize, Serialize};
use sha2::Sha256;

type HmacSha256 = Hmac<Sha256>;

/// `{"alg":"HS256","typ":"JWT"}`, base64url: every token we mint has this header.
const HEADER: &str = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9";

/// Which of our two token kinds a JWT is (the private `typ` claim).
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub(crate) enum Kind {
  /// Short-lived, sent to profile, delete-user and link.
  Access,
  /// Long-lived, sent to session refresh/logout and every API key route.
  Refresh,
}

/// The claims the server reads back from its own tokens. Others (`user_data`,
/// `baas_device_id`) are for clients and ignored on the way in.
#[derive(Deserialize, Debug)]
pub(crate) struct Claims {
  /// User id.
  pub sub: String,
  /// Expiry, seconds since the epoch.
  pub exp: u64,
  /// Token kind.
  pub typ: Kind,
  /// Session id: revoking the session kills both tokens.
  pub sid: String,
  /// Access-token generation: `expire_access_tokens` bumps the server's generation.
  #[serde(default)]
  pub generation: u64,
  /// The app, when it is not the server's first (`Config::app_id`).
  #[serde(default)]
  pub app: Option<String>,
}

#[derive(Serialize)]
struct AccessOut<'a> {
  sub: &'a str,
  iat: u64,
  exp: u64,
  typ: Kind,
  sid: &'a str,
  generation: u64,
  baas_device_id: &'a str,
  user_data: &'a serde_json::Value,
  #[serde(skip_serializing_if = "Option::is_none")]
  app: Option<&'a str>,
}

#[derive(Serialize)]
struct RefreshOut<'a> {
  sub: &'a str,
  iat: u64,
  exp: u64,
  typ: Kind,
  sid: &'a str,
  #[serde(skip_serializing_if = "Option::is_none")]
  app: Option<&'a str>,
}

/// Why a token was refused (goes into the error message after "invalid session: ").
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Reject {
  /// Not three base64url parts, or payload is not our claims JSON.
  Malformed,
  /// The signature does not match.
  BadSignature,
}

/// Signs and verifies the emulator's tokens with one HS256 key.
pub(crate) struct Tokens {
  // Keyed once: cloning a keyed HMAC is cheaper than re-deriving the pads per request.
  mac: HmacSha256,
}

impl Tokens {
  /// A signer for `secret` (any length; we use 32 random bytes).
  pub fn new(secret: &[u8]) -> Tokens {
    Tokens {
      mac: HmacSha256::new_from_slice(secret).expect("HMAC accepts any key length"),
    }
  }

  fn sign(&self, payload_json: &[u8]) -> String {
    let mut token = String::with_capacity(HEADER.len() + payload_json.len() * 4 / 3 + 50);
    token.push_str(HEADER);
    token.push('.');
    B64.encode_string(payload_json, &mut token);
    let mut mac = self.mac.clone();
    mac.update(token.as_bytes());
    let sig = mac.finalize().into_bytes();
    token.push('.');
    B64.encode_string(sig, &mut token);
    token
  }

  /// Mints an access token (`app`: see [`Claims::app`]).
  #[allow(clippy::too_many_arguments)]
  pub fn access(
    &self,
    app: Option<&str>,
    user_id: &str,
    session_id: &str,
    device_id: &str,
    user_data: &serde_json::Value,
    generation: u64,
    now: u64,
    ttl: u64,
  ) -> String {
    let claims = AccessOut {
      sub: user_id,
      iat: now,
      exp: now.saturating_add(ttl),
      typ: Kind::Access,
      sid: session_id,
      generation,
      baas_device_id: device_id,
      user_data,
      app,
    };
    self.sign(&serde_json::to_vec(&claims).expect("claims serialize"))
  }

  /// Mints a refresh token (`app`: see [`Claims::app`]).
  pub fn refresh(
    &self,
    app: Option<&str>,
    user_id: &str,
    session_id: &str,
    now: u64,
    ttl: u64,
  ) -> String {
    let claims = RefreshOut {
      sub: user_id,
      iat: now,
      exp: now.saturating_add(ttl),
      typ: Kind::Refresh,
      sid: session_id,
      app,
    };
    self.sign(&serde_json::to_vec(&claims).expect("claims serialize"))
  }

  /// Checks the signature and decodes the claims. Expiry and session checks are the caller's
  /// (they need the clock and the state).
  pub fn verify(&self, token: &str) -> Result<Claims, Reject> {
    let payload = verify_hs256_with(&self.mac, token)?;
    serde_json::from_slice(&payload).map_err(|_| Reject::Malformed)
  }
}

/// Verifies an HS256 JWT with `mac` and returns the decoded payload bytes.
fn verify_hs256_with(mac: &HmacSha256, token: &str) -> Result<Vec<u8>, Reject> {
  let mut parts = token.splitn(3, '.');
  let (Some(header), Some(payload), Some(sig)) = (parts.next(), parts.next(), parts.next()) else {
    return Err(Reject::Malformed);
  };
  if sig.contains('.') || header.is_empty() || payload.is_empty() {
    return Err(Reject::Malformed);
  }
  let sig = B64.decode(sig).map_err(|_| Reject::Malformed)?;
  let mut mac = mac.clone();
  mac.update(&token.as_bytes()[..header.len() + 1 + payload.len()]);
  // verify_slice compares in constant time.
  mac.verify_slice(&sig).map_err(|_| Reject::BadSignature)?;
  B64.decode(payload).map_err(|_| Reject::Malformed)
}

/// A verified custom token: its subject and all its claims (for `metadata_fields`).
#[derive(Debug)]
pub(crate) struct CustomToken {
  /// The `sub` claim: the identity id.
  pub sub: String,
  /// Every claim.
  pub claims: serde_json::Value,
}

/// Verifies a `custom-token` credential: HS256 with `secret`, `alg` must be HS256, `exp` must be
/// in the future, `nbf` (if any) in the past, `sub` a non-empty string.
pub(crate) fn verify_custom_token(
  secret: &[u8],
  token: &str,
  now: u64,
) -> Result<CustomToken, String> {
  let mac = HmacSha256::new_from_slice(secret).expect("HMAC accepts any key length");
  let header = token.split('.').next().unwrap_or_default();
  let header: serde_json::Value = B64
    .decode(header)
    .ok()
    .and_then(|h| serde_json::from_slice(&h).ok())
    .ok_or("malformed token")?;
  if header.get("alg").and_then(|a| a.as_str()) != Some("HS256") {
    return Err("token must be signed with HS256".into());
  }
  let payload = verify_hs256_with(&mac, token).map_err(|e| match e {
    Reject::Malformed => "malformed token".to_string(),
    Reject::BadSignature => "signature is invalid".to_string(),
  })?;
  let claims: serde_json::Value =
    serde_json::from_slice(&payload).map_err(|_| "malformed token payload")?;
  let exp = claims
    .get("exp")
    .and_then(|e| e.as_f64())
    .ok_or("token has no exp claim")?;
  if exp <= now as f64 {
    return Err("token is expired".into());
  }
  if let Some(nbf) = claims.get("nbf").and_then(|n| n.as_f64())
    && nbf > now as f64
  {
    return Err("token is not valid yet".into());
  }
  match claims.get("sub").and_then(|s| s.as_str()) {
    Some(sub) if !sub.is_empty() => Ok(CustomToken {
      sub: sub.to_string(),
      claims,
    }),
    _ => Err("token has no sub claim".into()),
  }
}

/// Mints an HS256 token over arbitrary claims with `secret`, the way a third-party issuer would:
/// public so tests and tools can make `custom-token` credentials (put `sub` and `exp` in it).
pub fn sign_hs256(secret: &[u8], claims: &serde_json::Value) -> String {
  let mac = HmacSha256::new_from_slice(secret).expect("HMAC accepts any key length");
  Tokens { mac }.sign(&serde_json::to_vec(claims).expect("claims serialize"))
}

#[cfg(test)]
mod tests {
  use super::*;

  #[test]
  fn round_trip_and_tamper() {
    let t = Tokens::new(b"secret");
    let tok = t.refresh(None, "u1", "s1", 100, 10);
    let c = t.verify(&tok).unwrap();
    assert_eq!((c.sub.as_str(), c.sid.as_str(), c.exp), ("u1", "s1", 110));
    assert_eq!(c.typ, Kind::Refresh);
    let other = Tokens::new(b"other");
    assert_eq!(other.verify(&tok).unwrap_err(), Reject::BadSignature);
    assert_eq!(t.verify("a.b").unwrap_err(), Reject::Malformed);
    assert_eq!(t.verify("garbage").unwrap_err(), Reject::Malformed);
  }

  #[test]
  fn access_token_carries_client_claims() {
    let t = Tokens::new(b"k");
    let data = serde_json::json!({"a": 1});
    let tok = t.access(None, "u", "s", "d", &data, 3, 10, 5);
    let payload = tok.split('.').nth(1).unwrap();
    let v: serde_json::Value = serde_json::from_slice(&B64.decode(payload).unwrap()).unwrap();
    assert_eq!(v["user_data"]["a"], 1);
    assert_eq!(v["baas_device_id"], "d");
    assert_eq!(v["iat"], 10);
    assert_eq!(v["exp"], 15);
    assert_eq!(t.verify(&tok).unwrap().generation, 3);
  }

  #[test]
  fn custom_tokens() {
    let good = sign_hs256(b"s", &serde_json::json!({"sub": "ext-1", "exp": 2000}));
    assert_eq!(verify_custom_token(b"s", &good, 1000).unwrap().sub, "ext-1");
    assert!(
      verify_custom_token(b"x", &good, 1000)
        .unwrap_err()
        .contains("signature")
    );
    assert!(
      verify_custom_token(b"s", &good, 3000)
        .unwrap_err()
        .contains("expired")
    );
    let no_sub = sign_hs256(b"s", &serde_json::json!({"exp": 2000}));
    assert!(verify_custom_token(b"s", &no_sub, 1000).is_err());
    let no_exp = sign_hs256(b"s", &serde_json::json!({"sub": "a"}));
    assert!(verify_custom_token(b"s", &no_exp, 1000).is_err());
  }
}

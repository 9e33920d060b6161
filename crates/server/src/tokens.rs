//! HS256 JSON Web Tokens: minting and verifying the server's own access and refresh tokens,
//! with one secret (the store's) or a file of keys that rotate (`Config::signing_keys_file`).
//! Third-party `custom-token` credentials are verified in `custom_token`.

use std::collections::HashMap;
use std::fmt;
use std::path::Path;
use std::sync::{Arc, Mutex};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use hmac::{Hmac, KeyInit, Mac};
use serde::{Deserialize, Serialize};
use sha2::Sha256;

use crate::custom_token::CustomKeys;

pub(crate) type HmacSha256 = Hmac<Sha256>;

/// `{"alg":"HS256","typ":"JWT"}`, base64url: the header of every token minted with the store's
/// secret (no keys file), and so the header of every token without a `kid`.
const HEADER: &str = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9";

/// The shortest secret a keys file may hold: HS256's own output size (RFC 7518 §3.2).
pub(crate) const MIN_SECRET_LEN: usize = 32;
/// The longest `kid`: it travels in every token's header.
const MAX_KID_LEN: usize = 64;

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
#[derive(Deserialize, Debug, PartialEq)]
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
  /// Not three base64url parts, a header that does not decode or whose `alg` is not HS256, or
  /// a payload that is not our claims JSON.
  Malformed,
  /// The signature does not match.
  BadSignature,
  /// The `kid` names no key of the keys file, or a token without `kid` came after the keys
  /// file retired the store's secret.
  UnknownKey,
}

impl Reject {
  /// The reason, for "invalid session: ..." (never echoes the token).
  pub fn reason(self) -> &'static str {
    match self {
      Reject::Malformed => "malformed token",
      Reject::BadSignature => "token signature is invalid",
      Reject::UnknownKey => "token signing key is unknown",
    }
  }
}

/// The keys of a signing keys file ([`crate::Config::signing_keys_file`]), validated: the last
/// one signs, all of them verify.
pub(crate) struct SigningKeys {
  /// `(kid, secret)`, in file order.
  keys: Vec<(String, Vec<u8>)>,
  /// Whether tokens without `kid` (signed with the store's secret) are still accepted.
  accept_legacy: bool,
}

impl fmt::Debug for SigningKeys {
  fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
    // Key ids only: the secrets never leave this struct.
    f.debug_struct("SigningKeys")
      .field(
        "kids",
        &self.keys.iter().map(|(k, _)| k).collect::<Vec<_>>(),
      )
      .field("accept_legacy", &self.accept_legacy)
      .finish()
  }
}

impl SigningKeys {
  /// Reads and validates a keys file; the message names the problem, never a secret.
  pub async fn load(path: &Path) -> Result<SigningKeys, String> {
    let text = tokio::fs::read(path)
      .await
      .map_err(|e| format!("signing keys file '{}': {e}", path.display()))?;
    SigningKeys::parse(&text).map_err(|e| format!("signing keys file '{}': {e}", path.display()))
  }

  /// Parses `{"keys": [{"kid", "secret"}, ...], "acceptLegacyTokens": bool}`. The JSON is walked
  /// by hand rather than through serde's derive because serde's type errors quote the offending
  /// value, and that value may be a secret.
  pub fn parse(text: &[u8]) -> Result<SigningKeys, String> {
    let value: serde_json::Value =
      serde_json::from_slice(text).map_err(|e| format!("not valid JSON: {e}"))?;
    let serde_json::Value::Object(map) = value else {
      return Err("must be a JSON object with a \"keys\" array".into());
    };
    let mut keys = None;
    let mut accept_legacy = true;
    for (name, value) in map {
      match name.as_str() {
        "keys" => keys = Some(value),
        "acceptLegacyTokens" => {
          accept_legacy = value
            .as_bool()
            .ok_or("\"acceptLegacyTokens\" must be true or false")?
        }
        _ => {
          return Err(format!(
            "unknown field '{name}' (known: keys, acceptLegacyTokens)"
          ));
        }
      }
    }
    let Some(serde_json::Value::Array(entries)) = keys else {
      return Err("\"keys\" must be an array of {\"kid\", \"secret\"} objects".into());
    };
    if entries.is_empty() {
      return Err("\"keys\" is empty: give at least one key".into());
    }
    let mut keys: Vec<(String, Vec<u8>)> = Vec::with_capacity(entries.len());
    for (i, entry) in entries.into_iter().enumerate() {
      let serde_json::Value::Object(entry) = entry else {
        return Err(format!(
          "keys[{i}] must be a {{\"kid\", \"secret\"}} object"
        ));
      };
      let (mut kid, mut secret) = (None, None);
      for (name, value) in entry {
        match (name.as_str(), value) {
          ("kid", serde_json::Value::String(k)) => kid = Some(k),
          ("secret", serde_json::Value::String(s)) => secret = Some(s),
          ("kid" | "secret", _) => return Err(format!("keys[{i}].{name} must be a string")),
          _ => {
            return Err(format!(
              "keys[{i}]: unknown field '{name}' (known: kid, secret)"
            ));
          }
        }
      }
      let kid = kid.ok_or_else(|| format!("keys[{i}] has no kid"))?;
      if kid.is_empty() || kid.len() > MAX_KID_LEN || !kid.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(format!(
          "keys[{i}].kid must be 1 to {MAX_KID_LEN} visible ASCII characters"
        ));
      }
      if keys.iter().any(|(k, _)| *k == kid) {
        return Err(format!("kid '{kid}' is given twice"));
      }
      let secret = secret.ok_or_else(|| format!("keys[{i}] (kid '{kid}') has no secret"))?;
      if secret.len() < MIN_SECRET_LEN {
        return Err(format!(
          "the secret of kid '{kid}' is shorter than {MIN_SECRET_LEN} bytes \
           (make one with `openssl rand -hex 32`)"
        ));
      }
      keys.push((kid, secret.into_bytes()));
    }
    Ok(SigningKeys {
      keys,
      accept_legacy,
    })
  }
}

/// Signs and verifies the server's tokens, and holds the `custom-token` provider's keys.
pub(crate) struct Tokens {
  /// The base64url header of every token minted: [`HEADER`], or one naming the signing `kid`.
  header: String,
  /// Signs new tokens: the store's secret, or the keys file's last key. (Every key is an HMAC
  /// keyed once: cloning one is cheaper than re-deriving the pads per request.)
  signer: HmacSha256,
  /// The keys file's keys as `(kid, header, key)`; empty without a keys file, and then tokens
  /// are verified with `signer` alone, header unread, exactly as before keys files existed.
  keyed: Vec<(String, String, HmacSha256)>,
  /// The store's secret, for tokens without `kid` while a keys file is in use; `None` once the
  /// file says `"acceptLegacyTokens": false`.
  legacy: Option<HmacSha256>,
  /// The `custom-token` provider's keys.
  pub custom: CustomKeys,
  /// Tokens that passed [`Tokens::verify`], so that a client sending the same token again
  /// costs a lookup instead of an HMAC, two base64 decodes and a JSON parse.
  verified: Mutex<Verified>,
}

/// How many verified tokens each generation of [`Verified`] holds: enough for the clients of a
/// busy server to keep hitting, and with [`MAX_KEPT_TOKEN`] at most ≈ 9 MiB in all (≈ 2 MiB
/// with tokens of usual sizes).
const VERIFIED_PER_GENERATION: usize = 2048;

/// Longer tokens (access tokens carrying large custom user data) are verified every time
/// rather than kept.
const MAX_KEPT_TOKEN: usize = 2048;

/// Recently verified tokens by their signature's text, in two generations: when the young one
/// is full it becomes the old one (the previous old one is dropped) and a hit in the old one
/// moves back to the young. A cheap approximation of least-recently-used, bounded to twice
/// [`VERIFIED_PER_GENERATION`].
///
/// Safe to reuse because a verdict only depends on the token's text and the keys, and a
/// server's keys are fixed for its lifetime (a keys file is read at start). Only tokens that
/// verified are kept, a hit needs the whole token to be equal, and the claims' own checks
/// (expiry, generation, session, user) still run on every request. The memory holds nothing
/// the process could not mint itself with the keys it already holds.
#[derive(Default)]
struct Verified {
  young: HashMap<Box<str>, (Box<str>, Arc<Claims>)>,
  old: HashMap<Box<str>, (Box<str>, Arc<Claims>)>,
}

impl Verified {
  /// The claims of `token` if it verified before (`sig`: its signature's text).
  fn get(&mut self, sig: &str, token: &str) -> Option<Arc<Claims>> {
    if let Some((text, claims)) = self.young.get(sig) {
      return (**text == *token).then(|| claims.clone());
    }
    let (key, entry) = self.old.remove_entry(sig)?;
    let hit = (*entry.0 == *token).then(|| entry.1.clone());
    if hit.is_some() {
      self.insert(key, entry);
    } else {
      self.old.insert(key, entry);
    }
    hit
  }

  fn insert(&mut self, sig: Box<str>, entry: (Box<str>, Arc<Claims>)) {
    if self.young.len() >= VERIFIED_PER_GENERATION {
      self.old = std::mem::take(&mut self.young);
    }
    self.young.insert(sig, entry);
  }
}

/// The header naming `kid` (fields in the order every JWT library writes them).
fn header_for(kid: &str) -> String {
  let json = serde_json::json!({"alg": "HS256", "kid": kid, "typ": "JWT"});
  B64.encode(serde_json::to_vec(&json).expect("header serializes"))
}

fn hmac(secret: &[u8]) -> HmacSha256 {
  HmacSha256::new_from_slice(secret).expect("HMAC accepts any key length")
}

/// The fields of a token header that choose the verifying key.
#[derive(Deserialize)]
struct Header {
  alg: String,
  #[serde(default)]
  kid: Option<String>,
}

impl Tokens {
  /// A signer for `secret` (any length; we use 32 random bytes), no custom-token keys.
  pub fn new(secret: &[u8]) -> Tokens {
    Tokens::with_keys(secret, None, CustomKeys::default())
  }

  /// A signer for the store's `secret`, or for the last of `keys` when a keys file is in use
  /// (`secret` then verifies tokens without `kid` only, if the file allows it).
  pub fn with_keys(secret: &[u8], keys: Option<SigningKeys>, custom: CustomKeys) -> Tokens {
    let Some(keys) = keys else {
      return Tokens {
        header: HEADER.to_string(),
        signer: hmac(secret),
        keyed: Vec::new(),
        legacy: None,
        custom,
        verified: Mutex::default(),
      };
    };
    let keyed: Vec<_> = keys
      .keys
      .iter()
      .map(|(kid, secret)| (kid.clone(), header_for(kid), hmac(secret)))
      .collect();
    let (_, header, signer) = keyed.last().expect("a keys file has at least one key");
    Tokens {
      header: header.clone(),
      signer: signer.clone(),
      legacy: keys.accept_legacy.then(|| hmac(secret)),
      keyed,
      custom,
      verified: Mutex::default(),
    }
  }

  fn sign(&self, payload_json: &[u8]) -> String {
    let mut token = String::with_capacity(self.header.len() + payload_json.len() * 4 / 3 + 50);
    token.push_str(&self.header);
    token.push('.');
    B64.encode_string(payload_json, &mut token);
    let mut mac = self.signer.clone();
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
  pub fn verify(&self, token: &str) -> Result<Arc<Claims>, Reject> {
    let sig = token.rsplit_once('.').map_or("", |(_, sig)| sig);
    let verified = || self.verified.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(claims) = verified().get(sig, token) {
      return Ok(claims);
    }
    let payload = verify_hs256_with(self.verifier(token)?, token)?;
    let claims: Arc<Claims> =
      Arc::new(serde_json::from_slice(&payload).map_err(|_| Reject::Malformed)?);
    if token.len() <= MAX_KEPT_TOKEN {
      verified().insert(sig.into(), (token.into(), claims.clone()));
    }
    Ok(claims)
  }

  /// The key that verifies `token`, chosen by its header's `kid`.
  fn verifier(&self, token: &str) -> Result<&HmacSha256, Reject> {
    if self.keyed.is_empty() {
      return Ok(&self.signer);
    }
    let header = token.split('.').next().unwrap_or_default();
    // Our own headers are compared as text: no JSON parsing for the tokens we mint.
    if let Some((_, _, mac)) = self.keyed.iter().find(|(_, h, _)| h == header) {
      return Ok(mac);
    }
    let kid = if header == HEADER {
      None
    } else {
      let header: Header = B64
        .decode(header)
        .ok()
        .and_then(|h| serde_json::from_slice(&h).ok())
        .ok_or(Reject::Malformed)?;
      if header.alg != "HS256" {
        return Err(Reject::Malformed);
      }
      header.kid
    };
    match kid {
      Some(kid) => self
        .keyed
        .iter()
        .find(|(k, _, _)| *k == kid)
        .map(|(_, _, mac)| mac)
        .ok_or(Reject::UnknownKey),
      None => self.legacy.as_ref().ok_or(Reject::UnknownKey),
    }
  }
}

/// Verifies an HS256 JWT with `mac` and returns the decoded payload bytes.
pub(crate) fn verify_hs256_with(mac: &HmacSha256, token: &str) -> Result<Vec<u8>, Reject> {
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

/// Mints an HS256 token over arbitrary claims with `secret`, the way a third-party issuer would:
/// public so tests and tools can make `custom-token` credentials (put `sub` and `exp` in it).
pub fn sign_hs256(secret: &[u8], claims: &serde_json::Value) -> String {
  Tokens::new(secret).sign(&serde_json::to_vec(claims).expect("claims serialize"))
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
  fn a_verified_token_is_reused_only_when_whole() {
    let t = Tokens::new(b"secret");
    let tok = t.refresh(None, "u1", "s1", 100, 10);
    let first = t.verify(&tok).unwrap();
    assert!(
      Arc::ptr_eq(&first, &t.verify(&tok).unwrap()),
      "second verify is a hit"
    );
    // The cached signature with another payload (another user) is still refused.
    let (_, sig) = tok.rsplit_once('.').unwrap();
    let other = t.refresh(None, "u2", "s1", 100, 10);
    let (signed, _) = other.rsplit_once('.').unwrap();
    let forged = format!("{signed}.{sig}");
    assert_eq!(t.verify(&forged).unwrap_err(), Reject::BadSignature);
    // Refused tokens are not kept.
    assert_eq!(t.verified.lock().unwrap().young.len(), 1);
    assert_eq!(*t.verify(&tok).unwrap(), *first);
    // Nor are long ones (an access token with a lot of custom user data).
    let data = serde_json::json!({ "notes": "n".repeat(MAX_KEPT_TOKEN) });
    let long = t.access(None, "u1", "s1", "d", &data, 0, 100, 10);
    let claims = t.verify(&long).unwrap();
    assert!(!Arc::ptr_eq(&claims, &t.verify(&long).unwrap()));
    assert_eq!(t.verified.lock().unwrap().young.len(), 1);
  }

  #[test]
  fn the_verified_tokens_stay_bounded_and_keep_the_recent_ones() {
    let t = Tokens::new(b"secret");
    let tok = |n: usize| t.refresh(None, &format!("u{n}"), "s", 100, 10);
    let kept = tok(0);
    let kept_claims = t.verify(&kept).unwrap();
    for n in 1..VERIFIED_PER_GENERATION {
      t.verify(&tok(n)).unwrap();
    }
    // The young generation is full; the next token starts a new one and `kept` is old.
    t.verify(&tok(VERIFIED_PER_GENERATION)).unwrap();
    assert_eq!(
      t.verified.lock().unwrap().old.len(),
      VERIFIED_PER_GENERATION
    );
    // A hit in the old generation moves it back to the young one, so it outlives the rest.
    assert!(Arc::ptr_eq(&kept_claims, &t.verify(&kept).unwrap()));
    for n in VERIFIED_PER_GENERATION + 1..2 * VERIFIED_PER_GENERATION {
      t.verify(&tok(n)).unwrap();
    }
    let gone = tok(1);
    let gone = gone.rsplit_once('.').unwrap().1;
    {
      let cache = t.verified.lock().unwrap();
      assert!(cache.young.len() + cache.old.len() <= 2 * VERIFIED_PER_GENERATION);
      assert!(!cache.young.contains_key(gone) && !cache.old.contains_key(gone));
    }
    assert!(Arc::ptr_eq(&kept_claims, &t.verify(&kept).unwrap()));
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

  fn keys(json: serde_json::Value) -> SigningKeys {
    SigningKeys::parse(json.to_string().as_bytes()).unwrap()
  }

  const A: &str = "a-secret-of-at-least-thirty-two-bytes";
  const B: &str = "b-secret-of-at-least-thirty-two-bytes";

  #[test]
  fn keys_file_rotation() {
    let legacy = Tokens::new(b"store");
    let only_a = Tokens::with_keys(
      b"store",
      Some(keys(
        serde_json::json!({"keys": [{"kid": "a", "secret": A}]}),
      )),
      CustomKeys::default(),
    );
    let tok_a = only_a.refresh(None, "u", "s", 0, 10);
    let header: serde_json::Value =
      serde_json::from_slice(&B64.decode(tok_a.split('.').next().unwrap()).unwrap()).unwrap();
    assert_eq!(
      header,
      serde_json::json!({"alg": "HS256", "kid": "a", "typ": "JWT"})
    );
    let a_b = Tokens::with_keys(
      b"store",
      Some(keys(
        serde_json::json!({"keys": [{"kid": "a", "secret": A}, {"kid": "b", "secret": B}]}),
      )),
      CustomKeys::default(),
    );
    // The last key signs; both verify; so does the store's secret, for tokens without kid.
    let tok_b = a_b.refresh(None, "u", "s", 0, 10);
    assert!(tok_b.starts_with(&header_for("b")));
    assert_eq!(a_b.verify(&tok_a).unwrap().sub, "u");
    assert_eq!(a_b.verify(&tok_b).unwrap().sub, "u");
    let tok_legacy = legacy.refresh(None, "old", "s", 0, 10);
    assert_eq!(a_b.verify(&tok_legacy).unwrap().sub, "old");
    assert_eq!(only_a.verify(&tok_b).unwrap_err(), Reject::UnknownKey);
    // Without a keys file the header is not read: a kid-bearing token fails its signature.
    assert_eq!(legacy.verify(&tok_a).unwrap_err(), Reject::BadSignature);
    // A kid header re-signed with the wrong key.
    let forged = format!("{}.{}", header_for("a"), tok_b.split_once('.').unwrap().1);
    assert_eq!(a_b.verify(&forged).unwrap_err(), Reject::BadSignature);
    // Retiring the store's secret refuses tokens without kid.
    let retired = Tokens::with_keys(
      b"store",
      Some(keys(
        serde_json::json!({"keys": [{"kid": "b", "secret": B}], "acceptLegacyTokens": false}),
      )),
      CustomKeys::default(),
    );
    assert_eq!(retired.verify(&tok_legacy).unwrap_err(), Reject::UnknownKey);
    assert_eq!(retired.verify(&tok_a).unwrap_err(), Reject::UnknownKey);
    assert_eq!(retired.verify(&tok_b).unwrap().sub, "u");
    // A header spelt differently (another field order) still finds its key by kid.
    let other_order = B64.encode(br#"{"typ":"JWT","kid":"b","alg":"HS256"}"#);
    let payload = tok_b.split('.').nth(1).unwrap();
    let mut mac = hmac(B.as_bytes());
    mac.update(format!("{other_order}.{payload}").as_bytes());
    let sig = B64.encode(mac.finalize().into_bytes());
    let respelt = format!("{other_order}.{payload}.{sig}");
    assert_eq!(retired.verify(&respelt).unwrap().sub, "u");
    let none_alg = B64.encode(br#"{"alg":"none","kid":"b"}"#);
    assert_eq!(
      retired
        .verify(&format!("{none_alg}.{payload}."))
        .unwrap_err(),
      Reject::Malformed
    );
  }

  #[test]
  fn keys_file_validation_never_quotes_a_secret() {
    let err = |json: &str| SigningKeys::parse(json.as_bytes()).unwrap_err();
    assert!(err("[]").contains("JSON object"));
    assert!(err(r#"{"keys": []}"#).contains("empty"));
    assert!(err(r#"{"keys": [{"kid": "a"}]}"#).contains("no secret"));
    assert!(err(r#"{"keys": [{"secret": "x"}]}"#).contains("no kid"));
    assert!(err(r#"{"keys": [{"kid": "a", "secret": "short-secret-value"}]}"#).contains("32"));
    assert!(!err(r#"{"keys": [{"kid": "a", "secret": "short-secret-value"}]}"#).contains("short-"));
    assert!(!err(r#"{"keys": "secret-in-the-wrong-place"}"#).contains("wrong-place"));
    assert!(!err(r#"{"keys": [{"kid": "a", "secret": 123456789}]}"#).contains("123456789"));
    let dup =
      format!(r#"{{"keys": [{{"kid": "a", "secret": "{A}"}}, {{"kid": "a", "secret": "{B}"}}]}}"#);
    assert!(err(&dup).contains("twice"));
    assert!(err(r#"{"keys": [{"kid": "", "secret": "x"}]}"#).contains("kid"));
    assert!(err(r#"{"key": []}"#).contains("unknown field 'key'"));
    assert!(
      err(&format!(
        r#"{{"keys": [{{"kid": "a", "secret": "{A}", "alg": "HS256"}}]}}"#
      ))
      .contains("alg")
    );
    assert!(err(r#"{"keys": [], "acceptLegacyTokens": "yes"}"#).contains("acceptLegacyTokens"));
    let ok = keys(serde_json::json!({"keys": [{"kid": "a", "secret": A}]}));
    let debug = format!("{ok:?}");
    assert!(debug.contains("\"a\"") && !debug.contains(A), "{debug}");
  }
}

//! The `custom-token` provider's verification: third-party JWTs signed with HS256 (a shared
//! secret, `Config::custom_token_secret`) or RS256 (public keys from a JWKS file,
//! `Config::custom_token_jwks_file`). Only the algorithms configured are accepted, so `none` and
//! HS256-with-the-public-key tricks never are.

use std::fmt;
use std::path::Path;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use hmac::KeyInit;
use rsa::pkcs1v15::{Signature, VerifyingKey};
use rsa::signature::Verifier;
use rsa::traits::PublicKeyParts;
use rsa::{BigUint, RsaPublicKey};
use serde::Deserialize;

use crate::tokens::{HmacSha256, Reject, verify_hs256_with};

/// The SHA-256 of the `rsa` crate's digest generation (older than the one `hmac` uses).
type RsaSha256 = rsa::sha2::Sha256;

/// The smallest RSA modulus accepted, in bits (NIST SP 800-131A).
const MIN_RSA_BITS: usize = 2048;

/// One RS256 public key of the JWKS file.
struct RsaKey {
  /// The JWK's `kid`, if it has one.
  kid: Option<String>,
  key: VerifyingKey<RsaSha256>,
}

/// The keys that verify custom tokens; the provider is enabled when it holds any.
#[derive(Default)]
pub(crate) struct CustomKeys {
  /// HS256: the shared secret, keyed once.
  hs256: Option<HmacSha256>,
  /// RS256: the JWKS file's RSA keys (never empty when a file is configured).
  rs256: Vec<RsaKey>,
  /// The `aud` values accepted (a token must name one of them); empty: `aud` is not checked.
  audience: Vec<String>,
  /// The `iss` a token must carry; `None`: `iss` is not checked.
  issuer: Option<String>,
}

impl fmt::Debug for CustomKeys {
  fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
    // The HMAC key is a secret: say only whether there is one.
    f.debug_struct("CustomKeys")
      .field("hs256", &self.hs256.is_some())
      .field(
        "rs256_kids",
        &self.rs256.iter().map(|k| &k.kid).collect::<Vec<_>>(),
      )
      .field("audience", &self.audience)
      .field("issuer", &self.issuer)
      .finish()
  }
}

/// A verified custom token: its subject and all its claims (for `metadata_fields`).
#[derive(Debug)]
pub(crate) struct CustomToken {
  /// The `sub` claim: the identity id.
  pub sub: String,
  /// Every claim.
  pub claims: serde_json::Value,
}

/// The header fields that choose the algorithm and the key.
#[derive(Deserialize)]
struct Header {
  alg: Option<String>,
  kid: Option<String>,
  /// Extensions the verifier must understand (RFC 7515 §4.1.11): we understand none.
  crit: Option<serde_json::Value>,
}

impl CustomKeys {
  /// The keys of an HS256 `secret` and of a JWKS file's text.
  pub fn new(secret: Option<&[u8]>, jwks: Option<&[u8]>) -> Result<CustomKeys, String> {
    Ok(CustomKeys {
      hs256: secret.map(|s| HmacSha256::new_from_slice(s).expect("HMAC accepts any key length")),
      rs256: jwks.map(parse_jwks).transpose()?.unwrap_or_default(),
      audience: Vec::new(),
      issuer: None,
    })
  }

  /// These keys, accepting only tokens whose `aud` names one of `audience` (when not empty)
  /// and whose `iss` is `issuer` (when given). Empty values are refused: they would match a
  /// token that leaves the claim empty.
  pub fn with_claims(
    mut self,
    audience: &[String],
    issuer: Option<&str>,
  ) -> Result<CustomKeys, String> {
    if audience.iter().any(|a| a.is_empty()) {
      return Err("customTokenAudience must not hold an empty string".into());
    }
    if issuer == Some("") {
      return Err("customTokenIssuer must not be empty".into());
    }
    self.audience = audience.to_vec();
    self.issuer = issuer.map(str::to_string);
    Ok(self)
  }

  /// [`CustomKeys::new`] with the JWKS read from `jwks_file`.
  pub async fn load(secret: Option<&str>, jwks_file: Option<&Path>) -> Result<CustomKeys, String> {
    let jwks = match jwks_file {
      None => None,
      Some(path) => Some(
        tokio::fs::read(path)
          .await
          .map_err(|e| format!("custom token JWKS file '{}': {e}", path.display()))?,
      ),
    };
    CustomKeys::new(secret.map(str::as_bytes), jwks.as_deref()).map_err(|e| {
      format!(
        "custom token JWKS file '{}': {e}",
        jwks_file
          .map(|p| p.display().to_string())
          .unwrap_or_default()
      )
    })
  }

  /// Whether the `custom-token` provider is on (a secret or a JWKS file is configured).
  pub fn enabled(&self) -> bool {
    self.hs256.is_some() || !self.rs256.is_empty()
  }

  /// The algorithms accepted, for error messages.
  fn accepted(&self) -> &'static str {
    match (self.hs256.is_some(), !self.rs256.is_empty()) {
      (true, true) => "HS256 or RS256",
      (true, false) => "HS256",
      _ => "RS256",
    }
  }

  /// Verifies a `custom-token` credential: the signature with the key its `alg` (and `kid`)
  /// name, `exp` in the future, `nbf` (if any) in the past, `sub` a non-empty string, and
  /// `aud`/`iss` when configured. The message says why not, without echoing the token.
  pub fn verify(&self, token: &str, now: u64) -> Result<CustomToken, String> {
    let mut parts = token.split('.');
    let (Some(header), Some(payload), Some(sig), None) =
      (parts.next(), parts.next(), parts.next(), parts.next())
    else {
      return Err("malformed token".into());
    };
    let header: Header = B64
      .decode(header)
      .ok()
      .and_then(|h| serde_json::from_slice(&h).ok())
      .ok_or("malformed token")?;
    if header.crit.is_some() {
      return Err("token header has 'crit' extensions, which this server does not support".into());
    }
    let payload = match (header.alg.as_deref(), &self.hs256) {
      (Some("HS256"), Some(mac)) => verify_hs256_with(mac, token).map_err(|e| match e {
        Reject::BadSignature => "signature is invalid",
        Reject::Malformed | Reject::UnknownKey => "malformed token",
      })?,
      (Some("RS256"), _) if !self.rs256.is_empty() => {
        let key = self.rsa_key(header.kid.as_deref())?;
        let sig = B64
          .decode(sig)
          .ok()
          .and_then(|s| Signature::try_from(s.as_slice()).ok())
          .ok_or("malformed token")?;
        let signed = &token.as_bytes()[..header_len(token) + 1 + payload.len()];
        key
          .verify(signed, &sig)
          .map_err(|_| "signature is invalid")?;
        B64.decode(payload).map_err(|_| "malformed token")?
      }
      _ => {
        return Err(format!("token must be signed with {}", self.accepted()));
      }
    };
    self.check_claims(&payload, now)
  }

  /// The RS256 key for a token's `kid`: the key with that `kid`, or the only key when the
  /// token names none.
  fn rsa_key(&self, kid: Option<&str>) -> Result<&VerifyingKey<RsaSha256>, &'static str> {
    match kid {
      Some(kid) => self
        .rs256
        .iter()
        .find(|k| k.kid.as_deref() == Some(kid))
        .map(|k| &k.key)
        .ok_or("token kid names no key of the JWKS"),
      None => match self.rs256.as_slice() {
        [only] => Ok(&only.key),
        _ => Err("token has no kid, and the JWKS holds several keys"),
      },
    }
  }
}

/// The length of a token's first part.
fn header_len(token: &str) -> usize {
  token.find('.').unwrap_or(token.len())
}

impl CustomKeys {
  /// The checks on a verified payload, whatever signed it.
  fn check_claims(&self, payload: &[u8], now: u64) -> Result<CustomToken, String> {
    let claims: serde_json::Value =
      serde_json::from_slice(payload).map_err(|_| "malformed token payload")?;
    let exp = claims
      .get("exp")
      .and_then(|e| e.as_f64())
      .ok_or("token has no exp claim")?;
    if exp <= now as f64 {
      return Err("token is expired".into());
    }
    // A present `nbf` must be a number: a string one would otherwise be ignored.
    if let Some(nbf) = claims.get("nbf") {
      let nbf = nbf.as_f64().ok_or("malformed token payload")?;
      if nbf > now as f64 {
        return Err("token is not valid yet".into());
      }
    }
    if let Some(issuer) = &self.issuer
      && claims.get("iss").and_then(|i| i.as_str()) != Some(issuer.as_str())
    {
      return Err("token issuer is not accepted".into());
    }
    if !self.audience.is_empty() {
      // RFC 7519 §4.1.3: `aud` is one string or an array of them.
      let accepted = |a: &serde_json::Value| {
        a.as_str()
          .is_some_and(|a| self.audience.iter().any(|x| x == a))
      };
      let ok = match claims.get("aud") {
        Some(serde_json::Value::Array(auds)) => auds.iter().any(accepted),
        Some(aud) => accepted(aud),
        None => false,
      };
      if !ok {
        return Err("token audience is not accepted".into());
      }
    }
    match claims.get("sub").and_then(|s| s.as_str()) {
      Some(sub) if !sub.is_empty() => Ok(CustomToken {
        sub: sub.to_string(),
        claims,
      }),
      _ => Err("token has no sub claim".into()),
    }
  }
}

/// A base64url JWK member as an unsigned big-endian integer (padding tolerated).
fn jwk_uint(
  jwk: &serde_json::Map<String, serde_json::Value>,
  name: &str,
  i: usize,
) -> Result<BigUint, String> {
  let text = jwk
    .get(name)
    .and_then(|v| v.as_str())
    .ok_or_else(|| format!("keys[{i}] (RSA) has no \"{name}\" string"))?;
  let bytes = B64
    .decode(text.trim_end_matches('='))
    .map_err(|_| format!("keys[{i}].{name} is not base64url"))?;
  Ok(BigUint::from_bytes_be(&bytes))
}

/// Parses a JWKS (`{"keys": [JWK, ...]}`) into its RS256 verification keys. Keys that cannot
/// verify RS256 signatures (another `kty`, another `alg`, `"use": "enc"`) are skipped, as an
/// identity provider's published set may hold them; at least one RS256 key must remain, and
/// those must have distinct `kid`s and moduli of 2048 bits or more.
fn parse_jwks(text: &[u8]) -> Result<Vec<RsaKey>, String> {
  let value: serde_json::Value =
    serde_json::from_slice(text).map_err(|e| format!("not valid JSON: {e}"))?;
  let Some(entries) = value.get("keys").and_then(|k| k.as_array()) else {
    return Err("must be a JSON object with a \"keys\" array (a JWKS)".into());
  };
  let mut keys: Vec<RsaKey> = Vec::new();
  for (i, jwk) in entries.iter().enumerate() {
    let jwk = jwk
      .as_object()
      .ok_or_else(|| format!("keys[{i}] must be a JSON object (a JWK)"))?;
    let member = |name: &str| jwk.get(name).and_then(|v| v.as_str());
    let usable = member("kty") == Some("RSA")
      && member("alg").is_none_or(|alg| alg == "RS256")
      && member("use").is_none_or(|u| u == "sig");
    if !usable {
      continue;
    }
    let kid = match jwk.get("kid") {
      None => None,
      Some(serde_json::Value::String(kid)) => Some(kid.clone()),
      Some(_) => return Err(format!("keys[{i}].kid must be a string")),
    };
    if kid.is_some() && keys.iter().any(|k| k.kid == kid) {
      return Err(format!("kid '{}' is given twice", kid.unwrap_or_default()));
    }
    let key = RsaPublicKey::new(jwk_uint(jwk, "n", i)?, jwk_uint(jwk, "e", i)?)
      .map_err(|e| format!("keys[{i}] is not a usable RSA public key: {e}"))?;
    if key.n().bits() < MIN_RSA_BITS {
      return Err(format!(
        "keys[{i}] has a {}-bit modulus; RS256 keys need {MIN_RSA_BITS} bits or more",
        key.n().bits()
      ));
    }
    keys.push(RsaKey {
      kid,
      key: VerifyingKey::new(key),
    });
  }
  if keys.is_empty() {
    return Err("holds no RS256 key (an RSA JWK whose alg, if given, is RS256)".into());
  }
  if keys.len() > 1 && keys.iter().any(|k| k.kid.is_none()) {
    return Err("several keys, and one has no kid: give every key a kid".into());
  }
  Ok(keys)
}

#[cfg(test)]
mod tests {
  use super::*;
  use crate::tokens::sign_hs256;
  use rsa::pkcs1v15::SigningKey;
  use rsa::signature::{SignatureEncoding, Signer};
  use serde_json::json;

  /// The test key: JWK private members, base64url (tests/data/rs256-test-key.json).
  fn test_key() -> (serde_json::Value, SigningKey<RsaSha256>) {
    let jwk: serde_json::Value =
      serde_json::from_str(include_str!("../tests/data/rs256-test-key.json")).unwrap();
    let int =
      |name: &str| BigUint::from_bytes_be(&B64.decode(jwk[name].as_str().unwrap()).unwrap());
    let private =
      rsa::RsaPrivateKey::from_components(int("n"), int("e"), int("d"), vec![int("p"), int("q")])
        .unwrap();
    let public = json!({"kty": "RSA", "alg": "RS256", "use": "sig", "kid": jwk["kid"],
                        "n": jwk["n"], "e": jwk["e"]});
    (public, SigningKey::new(private))
  }

  fn sign_rs256(
    key: &SigningKey<RsaSha256>,
    header: serde_json::Value,
    claims: serde_json::Value,
  ) -> String {
    let input = format!(
      "{}.{}",
      B64.encode(header.to_string()),
      B64.encode(claims.to_string())
    );
    let sig = key.sign(input.as_bytes()).to_vec();
    format!("{input}.{}", B64.encode(sig))
  }

  #[test]
  fn hs256_tokens() {
    let keys = CustomKeys::new(Some(b"s"), None).unwrap();
    let good = sign_hs256(b"s", &json!({"sub": "ext-1", "exp": 2000}));
    assert_eq!(keys.verify(&good, 1000).unwrap().sub, "ext-1");
    let other = CustomKeys::new(Some(b"x"), None).unwrap();
    assert!(other.verify(&good, 1000).unwrap_err().contains("signature"));
    assert!(keys.verify(&good, 3000).unwrap_err().contains("expired"));
    let no_sub = sign_hs256(b"s", &json!({"exp": 2000}));
    assert!(keys.verify(&no_sub, 1000).is_err());
    let no_exp = sign_hs256(b"s", &json!({"sub": "a"}));
    assert!(keys.verify(&no_exp, 1000).is_err());
    let early = sign_hs256(b"s", &json!({"sub": "a", "exp": 2000, "nbf": 1500}));
    assert!(
      keys
        .verify(&early, 1000)
        .unwrap_err()
        .contains("not valid yet")
    );
    assert!(
      keys
        .verify("a.b.c.d", 1000)
        .unwrap_err()
        .contains("malformed")
    );
  }

  #[test]
  fn rs256_tokens() {
    let (public, signer) = test_key();
    let jwks = json!({"keys": [{"kty": "EC", "crv": "P-256", "x": "", "y": ""}, public]});
    let keys = CustomKeys::new(None, Some(jwks.to_string().as_bytes())).unwrap();
    assert!(keys.enabled());
    let claims = json!({"sub": "rsa-1", "exp": 2000});
    let with_kid = sign_rs256(
      &signer,
      json!({"alg": "RS256", "kid": "test-rsa-1"}),
      claims.clone(),
    );
    assert_eq!(keys.verify(&with_kid, 1000).unwrap().sub, "rsa-1");
    // The only key verifies tokens without kid.
    let no_kid = sign_rs256(
      &signer,
      json!({"alg": "RS256", "typ": "JWT"}),
      claims.clone(),
    );
    assert_eq!(keys.verify(&no_kid, 1000).unwrap().sub, "rsa-1");
    let unknown = sign_rs256(
      &signer,
      json!({"alg": "RS256", "kid": "other"}),
      claims.clone(),
    );
    assert!(keys.verify(&unknown, 1000).unwrap_err().contains("kid"));
    // Several keys: a token without kid is refused, not verified with the first key.
    let mut second = public.clone();
    second["kid"] = json!("k2");
    let two = json!({"keys": [public, second]}).to_string();
    let two = CustomKeys::new(None, Some(two.as_bytes())).unwrap();
    assert_eq!(two.verify(&with_kid, 1000).unwrap().sub, "rsa-1");
    assert!(
      two
        .verify(&no_kid, 1000)
        .unwrap_err()
        .contains("several keys")
    );
    // A payload swapped under a valid signature.
    let (head, rest) = with_kid.split_once('.').unwrap();
    let sig = rest.split_once('.').unwrap().1;
    let swapped = format!(
      "{head}.{}.{sig}",
      B64.encode(json!({"sub": "admin", "exp": 2000}).to_string())
    );
    assert!(
      keys
        .verify(&swapped, 1000)
        .unwrap_err()
        .contains("signature")
    );
    assert!(
      keys
        .verify(&with_kid, 3000)
        .unwrap_err()
        .contains("expired")
    );
    // alg none and HS256 (say, keyed with the public modulus) are refused: only RS256 is set.
    let none = format!(
      "{}.{}.",
      B64.encode(json!({"alg": "none"}).to_string()),
      B64.encode(claims.to_string())
    );
    assert!(keys.verify(&none, 1000).unwrap_err().contains("RS256"));
    let hs = sign_hs256(public["n"].as_str().unwrap().as_bytes(), &claims);
    assert!(
      keys
        .verify(&hs, 1000)
        .unwrap_err()
        .contains("must be signed with RS256")
    );
    let crit = sign_rs256(
      &signer,
      json!({"alg": "RS256", "crit": ["x"], "x": 1}),
      claims.clone(),
    );
    assert!(keys.verify(&crit, 1000).unwrap_err().contains("crit"));
    // Both configured: each algorithm with its own key.
    let secret = b"hs-shared-secret";
    let both = CustomKeys::new(Some(secret), Some(jwks.to_string().as_bytes())).unwrap();
    assert_eq!(both.verify(&with_kid, 1000).unwrap().sub, "rsa-1");
    assert_eq!(
      both.verify(&sign_hs256(secret, &claims), 1000).unwrap().sub,
      "rsa-1"
    );
    assert!(
      both
        .verify(&none, 1000)
        .unwrap_err()
        .contains("HS256 or RS256")
    );
    let debug = format!("{both:?}");
    assert!(
      debug.contains("test-rsa-1") && !debug.contains("hs-shared"),
      "{debug}"
    );
  }

  #[test]
  fn audience_and_issuer() {
    let keys = CustomKeys::new(Some(b"s"), None)
      .unwrap()
      .with_claims(&["app-1".into(), "app-2".into()], Some("https://idp"))
      .unwrap();
    let token = |claims: serde_json::Value| {
      let mut base = json!({"sub": "u", "exp": 2000});
      base
        .as_object_mut()
        .unwrap()
        .extend(claims.as_object().unwrap().clone());
      keys.verify(&sign_hs256(b"s", &base), 1000)
    };
    let iss = "https://idp";
    assert_eq!(token(json!({"aud": "app-2", "iss": iss})).unwrap().sub, "u");
    assert!(token(json!({"aud": ["other", "app-1"], "iss": iss})).is_ok());
    for (claims, why) in [
      (json!({"iss": iss}), "audience"),
      (json!({"aud": "other", "iss": iss}), "audience"),
      (json!({"aud": ["other"], "iss": iss}), "audience"),
      (json!({"aud": [], "iss": iss}), "audience"),
      (json!({"aud": 1, "iss": iss}), "audience"),
      (json!({"aud": "app-1"}), "issuer"),
      (json!({"aud": "app-1", "iss": "https://other"}), "issuer"),
      (json!({"aud": "app-1", "iss": ["https://idp"]}), "issuer"),
    ] {
      let e = token(claims.clone()).unwrap_err();
      assert!(e.contains(why), "{claims}: {e}");
    }
    // Unconfigured, neither claim is looked at.
    let open = CustomKeys::new(Some(b"s"), None).unwrap();
    let other = sign_hs256(
      b"s",
      &json!({"sub": "u", "exp": 2000, "aud": "x", "iss": "y"}),
    );
    assert!(open.verify(&other, 1000).is_ok());
    // Empty values would accept a token whose claim is empty.
    let empty = || CustomKeys::new(Some(b"s"), None).unwrap();
    assert!(empty().with_claims(&["".into()], None).is_err());
    assert!(empty().with_claims(&[], Some("")).is_err());
    // A non-numeric nbf is malformed, not ignored.
    let nbf = sign_hs256(b"s", &json!({"sub": "u", "exp": 2000, "nbf": "2099-01-01"}));
    assert!(open.verify(&nbf, 1000).unwrap_err().contains("malformed"));
  }

  #[test]
  fn jwks_validation() {
    let (public, _) = test_key();
    let err = |v: serde_json::Value| match parse_jwks(v.to_string().as_bytes()) {
      Ok(_) => panic!("accepted {v}"),
      Err(e) => e,
    };
    assert!(err(json!([])).contains("keys"));
    assert!(err(json!({"keys": []})).contains("no RS256 key"));
    assert!(
      err(json!({"keys": [{"kty": "RSA", "alg": "RS512", "n": "AQAB", "e": "AQAB"}]}))
        .contains("no RS256")
    );
    assert!(err(json!({"keys": [public, public]})).contains("twice"));
    // An encryption key cannot verify signatures, even with alg RS256.
    let mut enc = public.clone();
    enc["use"] = json!("enc");
    assert!(err(json!({"keys": [enc]})).contains("no RS256 key"));
    let mut no_kid = public.clone();
    no_kid.as_object_mut().unwrap().remove("kid");
    let mut other = public.clone();
    other["kid"] = json!("k2");
    assert!(err(json!({"keys": [no_kid, other]})).contains("kid"));
    assert!(parse_jwks(json!({"keys": [no_kid]}).to_string().as_bytes()).is_ok());
    let mut small = public.clone();
    small["n"] = json!(B64.encode([0xc5u8; 128]));
    assert!(err(json!({"keys": [small]})).contains("2048"));
    let mut bad = public.clone();
    bad["n"] = json!("not base64!");
    assert!(err(json!({"keys": [bad]})).contains("base64url"));
  }
}

//! Reading (not verifying) the claims of the JWTs the server issues.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Map, Value};

use crate::error::{Error, ErrorCode, Result};

/// The claims of an access token that the SDK exposes.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Claims {
  /// Expiry, seconds since the epoch.
  pub exp: i64,
  /// Issue time, seconds since the epoch.
  pub iat: i64,
  /// The `user_data` claim (custom user data), `{}` when absent.
  pub user_data: Map<String, Value>,
  /// The `baas_device_id` claim, when present.
  pub device_id: Option<String>,
}

/// Decodes a JWT's payload as realm-core does: exactly three non-empty parts,
/// a base64url JSON object with numeric `exp` and `iat`.
pub fn decode(token: &str) -> Result<Claims> {
  let malformed = || Error::new(ErrorCode::BadToken, "malformed JWT");
  let mut parts = token.split('.');
  let (Some(_header), Some(payload), Some(signature), None) =
    (parts.next(), parts.next(), parts.next(), parts.next())
  else {
    return Err(malformed());
  };
  if payload.is_empty() || signature.is_empty() {
    return Err(malformed());
  }
  // Some issuers pad; the standard says not to. Accept both.
  let bytes = URL_SAFE_NO_PAD
    .decode(payload.trim_end_matches('='))
    .map_err(|_| {
      Error::new(
        ErrorCode::BadToken,
        "JWT payload could not be base64 decoded",
      )
    })?;
  let Ok(Value::Object(mut map)) = serde_json::from_slice::<Value>(&bytes) else {
    return Err(malformed());
  };
  let number = |v: Option<&Value>| v.and_then(|v| v.as_f64()).map(|f| f as i64);
  let (Some(exp), Some(iat)) = (number(map.get("exp")), number(map.get("iat"))) else {
    return Err(malformed());
  };
  let user_data = match map.remove("user_data") {
    Some(Value::Object(m)) => m,
    _ => Map::new(),
  };
  let device_id = match map.remove("baas_device_id") {
    Some(Value::String(s)) => Some(s),
    _ => None,
  };
  Ok(Claims {
    exp,
    iat,
    user_data,
    device_id,
  })
}

#[cfg(test)]
mod tests {
  use super::*;

  fn token(payload: &str) -> String {
    format!("e30.{}.c2ln", URL_SAFE_NO_PAD.encode(payload))
  }

  #[test]
  fn reads_claims() {
    let c = decode(&token(
      r#"{"exp":20,"iat":10,"user_data":{"a":1},"baas_device_id":"d"}"#,
    ))
    .unwrap();
    assert_eq!((c.exp, c.iat), (20, 10));
    assert_eq!(c.user_data["a"], 1);
    assert_eq!(c.device_id.as_deref(), Some("d"));
  }

  #[test]
  fn refuses_malformed_tokens() {
    for bad in [
      "",
      "a.b",
      "a.b.c.d",
      "e30..sig",
      "e30.e30.",
      &token(r#"{"exp":1}"#),
      &token("[1]"),
    ] {
      let err = decode(bad).unwrap_err();
      assert_eq!(err.code, ErrorCode::BadToken, "{bad}");
    }
  }
}

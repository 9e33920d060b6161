//! Reading (not verifying) the claims of the JWTs the server issues.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::de::{Deserialize, Deserializer, IgnoredAny, MapAccess, Visitor};
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
  let Ok(payload) = serde_json::from_slice::<Payload>(&bytes) else {
    return Err(malformed());
  };
  let number = |v: Option<Value>| v.and_then(|v| v.as_f64()).map(|f| f as i64);
  let (Some(exp), Some(iat)) = (number(payload.exp), number(payload.iat)) else {
    return Err(malformed());
  };
  let user_data = match payload.user_data {
    Some(Value::Object(m)) => m,
    _ => Map::new(),
  };
  let device_id = match payload.device_id {
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

/// The claims [`decode`] reads, as found (any JSON type); the others are
/// skipped without being built. A claim given twice counts as its last value,
/// as in a JSON object read whole.
#[derive(Default)]
struct Payload {
  exp: Option<Value>,
  iat: Option<Value>,
  user_data: Option<Value>,
  device_id: Option<Value>,
}

/// A claim's name, as [`Payload`] sorts it.
#[derive(serde::Deserialize)]
#[serde(field_identifier, rename_all = "snake_case")]
enum Claim {
  Exp,
  Iat,
  UserData,
  BaasDeviceId,
  #[serde(other)]
  Other,
}

impl<'de> Deserialize<'de> for Payload {
  fn deserialize<D: Deserializer<'de>>(deserializer: D) -> std::result::Result<Self, D::Error> {
    struct Claims;
    impl<'de> Visitor<'de> for Claims {
      type Value = Payload;

      fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a JSON object")
      }

      fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> std::result::Result<Payload, A::Error> {
        let mut payload = Payload::default();
        while let Some(claim) = map.next_key::<Claim>()? {
          let slot = match claim {
            Claim::Exp => &mut payload.exp,
            Claim::Iat => &mut payload.iat,
            Claim::UserData => &mut payload.user_data,
            Claim::BaasDeviceId => &mut payload.device_id,
            Claim::Other => {
              map.next_value::<IgnoredAny>()?;
              continue;
            }
          };
          *slot = Some(map.next_value()?);
        }
        Ok(payload)
      }
    }
    deserializer.deserialize_map(Claims)
  }
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

  #[test]
  fn reads_claims_as_a_whole_object_would() {
    // Other claims of any shape are skipped; a claim given twice counts as
    // its last value; escaped names are names.
    let c = decode(&token(
      r#"{"sub":"u","nested":{"exp":1,"a":[1,{"b":null}]},"exp":1,"exp":2.9,"iat":-3,
         "user\u005fdata":{"k":"v"},"baas_device_id":7}"#,
    ))
    .unwrap();
    assert_eq!((c.exp, c.iat), (2, -3));
    assert_eq!(c.user_data["k"], "v");
    assert_eq!(c.device_id, None);
    let c = decode(&token(r#"{"exp":1,"iat":1,"user_data":[1]}"#)).unwrap();
    assert!(c.user_data.is_empty());
    for bad in [
      r#"{"exp":"1","iat":1}"#,
      r#"{"exp":1,"iat":null}"#,
      r#"{"exp":1,"iat":1} x"#,
      r#"{"exp":1,"iat":1,"other":}"#,
      r#""exp""#,
    ] {
      assert_eq!(
        decode(&token(bad)).unwrap_err().code,
        ErrorCode::BadToken,
        "{bad}"
      );
    }
  }
}

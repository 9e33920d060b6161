//! User API keys: the six calls, all authenticated with the refresh token.

use std::fmt;

use http::Method;
use serde_json::{Map, Value, json};

use crate::error::{Error, Result};
use crate::secret::Secret;
use crate::transport::{Incoming, Obj};
use crate::user::User;

/// A validated API key id: 24 hexadecimal digits, held in lower case (the form
/// realm-core puts in URLs).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct KeyId(String);

impl KeyId {
  /// Parses a key id: exactly 24 hex digits, any case.
  pub fn parse(id: &str) -> Result<KeyId> {
    if id.len() == 24 && id.bytes().all(|b| b.is_ascii_hexdigit()) {
      return Ok(KeyId(id.to_ascii_lowercase()));
    }
    Err(Error::invalid_argument(
      "Expected the API key id to be a string of 24 hex characters or an ObjectId",
    ))
  }

  /// The id, lower-case hex.
  pub fn as_str(&self) -> &str {
    &self.0
  }
}

impl fmt::Display for KeyId {
  fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
    f.write_str(&self.0)
  }
}

/// An API key as listed or fetched: never its value.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ApiKey {
  /// The key's id (lower-case hex).
  pub id: String,
  /// The key's name.
  pub name: String,
  /// Whether the key is disabled.
  pub disabled: bool,
}

/// A newly created API key, with its value (the only time the server sends it).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SecretApiKey {
  /// The key's id (lower-case hex).
  pub id: String,
  /// The key's value: log in with it; it cannot be fetched again.
  pub key: Secret,
  /// The key's name.
  pub name: String,
  /// Whether the key is disabled.
  pub disabled: bool,
}

/// A user's API key client (realm v12's `ApiKeyAuth`).
#[derive(Clone, Debug)]
pub struct ApiKeyAuth {
  pub(crate) user: User,
}

/// Reads one key document as realm-core does: `_id` (a valid ObjectId string),
/// `name` and `disabled` are required; `key` is read only when asked for.
fn read_key(resp: &Incoming, map: &Map<String, Value>) -> Result<ApiKey> {
  let id = resp.string(map, "_id")?;
  let id = KeyId::parse(&id)
    .map_err(|_| resp.malformed("an API key whose '_id' is an ObjectId string"))?;
  Ok(ApiKey {
    id: id.0,
    name: resp.string(map, "name")?,
    disabled: resp.boolean(map, "disabled")?,
  })
}

// Each parser has a fast path, straight from the bytes into typed structs, and
// the `Value` path (`read_*`), which names what is wrong. The fast path only
// answers for bodies the `Value` path reads to the same result (the fuzz
// target checks this); anything else goes the `Value` way.

/// A key document as the server sends it (unknown fields are skipped).
#[derive(serde::Deserialize)]
struct WireKey {
  #[serde(rename = "_id")]
  id: String,
  name: String,
  disabled: bool,
}

impl WireKey {
  fn valid(self) -> Option<ApiKey> {
    let id = KeyId::parse(&self.id).ok()?;
    Some(ApiKey {
      id: id.0,
      name: self.name,
      disabled: self.disabled,
    })
  }
}

/// A create response: a key document with its `key` value.
pub(crate) fn parse_created(resp: &Incoming) -> Result<SecretApiKey> {
  fast_created(resp).map_or_else(|| read_created(resp), Ok)
}

pub(crate) fn fast_created(resp: &Incoming) -> Option<SecretApiKey> {
  #[derive(serde::Deserialize)]
  struct Created {
    #[serde(rename = "_id")]
    id: String,
    name: String,
    disabled: bool,
    key: String,
  }
  let Obj(created) = serde_json::from_slice::<Obj<Created>>(&resp.body).ok()?;
  let id = KeyId::parse(&created.id).ok()?;
  Some(SecretApiKey {
    id: id.0,
    key: Secret::new(created.key),
    name: created.name,
    disabled: created.disabled,
  })
}

pub(crate) fn read_created(resp: &Incoming) -> Result<SecretApiKey> {
  let map = resp.object()?;
  let key = read_key(resp, &map)?;
  let value = resp.string(&map, "key")?;
  Ok(SecretApiKey {
    id: key.id,
    key: Secret::new(value),
    name: key.name,
    disabled: key.disabled,
  })
}

/// A fetch response: one key document (a `key` in it is dropped).
pub(crate) fn parse_one(resp: &Incoming) -> Result<ApiKey> {
  fast_one(resp).map_or_else(|| read_one(resp), Ok)
}

pub(crate) fn fast_one(resp: &Incoming) -> Option<ApiKey> {
  let Obj(key) = serde_json::from_slice::<Obj<WireKey>>(&resp.body).ok()?;
  key.valid()
}

pub(crate) fn read_one(resp: &Incoming) -> Result<ApiKey> {
  read_key(resp, &resp.object()?)
}

/// A fetchAll response: an array of key documents.
pub(crate) fn parse_list(resp: &Incoming) -> Result<Vec<ApiKey>> {
  fast_list(resp).map_or_else(|| read_list(resp), Ok)
}

pub(crate) fn fast_list(resp: &Incoming) -> Option<Vec<ApiKey>> {
  let keys = serde_json::from_slice::<Vec<Obj<WireKey>>>(&resp.body).ok()?;
  keys.into_iter().map(|Obj(key)| key.valid()).collect()
}

pub(crate) fn read_list(resp: &Incoming) -> Result<Vec<ApiKey>> {
  let Value::Array(items) = resp.json()? else {
    return Err(resp.malformed("a JSON array of API keys"));
  };
  items
    .iter()
    .map(|item| match item {
      Value::Object(map) => read_key(resp, map),
      _ => Err(resp.malformed("a JSON array of API key objects")),
    })
    .collect()
}

impl ApiKeyAuth {
  /// The user whose keys these are.
  pub fn user(&self) -> &User {
    &self.user
  }

  /// Creates a key named `name` (`POST /auth/api_keys`). The name's rules are the
  /// server's (realm v12 does not check it either).
  pub async fn create(&self, name: &str) -> Result<SecretApiKey> {
    let body = json!({ "name": name });
    let resp = self
      .user
      .refresh_request(Method::POST, "api_keys", Some(body))
      .await
      .map_err(|mut err| {
        // Never retried once sent: a second POST could make a second key.
        if err.outcome_unknown() {
          err.message.push_str(
            " (the request reached the server but its answer was lost: the API key may have been \
           created; check with fetchAll() before creating it again)",
          );
        }
        err
      })?;
    parse_created(&resp)
  }

  /// Fetches one key (`GET /auth/api_keys/<id>`); a `key` field in the response is dropped.
  pub async fn fetch(&self, id: &KeyId) -> Result<ApiKey> {
    let resp = self
      .user
      .refresh_request(Method::GET, &format!("api_keys/{id}"), None)
      .await?;
    parse_one(&resp)
  }

  /// Fetches all of the user's keys (`GET /auth/api_keys`).
  pub async fn fetch_all(&self) -> Result<Vec<ApiKey>> {
    let resp = self
      .user
      .refresh_request(Method::GET, "api_keys", None)
      .await?;
    parse_list(&resp)
  }

  /// Enables a key (`PUT /auth/api_keys/<id>/enable`).
  pub async fn enable(&self, id: &KeyId) -> Result<()> {
    self
      .user
      .refresh_request(Method::PUT, &format!("api_keys/{id}/enable"), None)
      .await
      .map(drop)
  }

  /// Disables a key (`PUT /auth/api_keys/<id>/disable`): it can no longer log in.
  pub async fn disable(&self, id: &KeyId) -> Result<()> {
    self
      .user
      .refresh_request(Method::PUT, &format!("api_keys/{id}/disable"), None)
      .await
      .map(drop)
  }

  /// Deletes a key (`DELETE /auth/api_keys/<id>`).
  pub async fn delete(&self, id: &KeyId) -> Result<()> {
    self
      .user
      .refresh_request(Method::DELETE, &format!("api_keys/{id}"), None)
      .await
      .map(drop)
  }
}

#[cfg(test)]
mod tests {
  use super::*;
  use crate::error::ErrorCode;

  fn resp(body: &str) -> Incoming {
    Incoming::ok_json(body)
  }

  const ID: &str = "0123456789ABCDEF01234567";

  #[test]
  fn fast_and_value_paths_read_the_same_documents() {
    let list = format!(r#"[{{"name":"a","disabled":false,"_id":"{ID}","extra":[1]}}]"#);
    let fast = fast_list(&resp(&list)).expect("the fast path reads a plain list");
    assert_eq!(Ok(fast.clone()), read_list(&resp(&list)));
    assert_eq!(fast[0].id, ID.to_ascii_lowercase());
    let created = format!(r#"{{"_id":"{ID}","name":"a","disabled":false,"key":"k"}}"#);
    assert_eq!(
      fast_created(&resp(&created)).map(Ok),
      Some(read_created(&resp(&created)))
    );
  }

  #[test]
  fn documents_only_the_value_path_reads_are_left_to_it() {
    // Field values as an array (serde's derive would take it), a repeated key
    // (the last one wins), an invalid id: the fast paths step aside.
    for body in [
      format!(r#"[["{ID}","a",false]]"#),
      format!(r#"[{{"_id":"{ID}","name":"a","name":"b","disabled":false}}]"#),
      r#"[{"_id":"nope","name":"a","disabled":false}]"#.to_owned(),
    ] {
      assert_eq!(fast_list(&resp(&body)), None, "{body}");
    }
    let array = format!(r#"[["{ID}","a",false]]"#);
    assert_eq!(
      parse_list(&resp(&array)).unwrap_err().code,
      ErrorCode::MalformedJson
    );
    let repeated = format!(r#"[{{"_id":"{ID}","name":"a","name":"b","disabled":false}}]"#);
    assert_eq!(parse_list(&resp(&repeated)).unwrap()[0].name, "b");
    let one = format!(r#"["{ID}","a",false]"#);
    assert_eq!(fast_one(&resp(&one)), None);
    assert_eq!(
      parse_one(&resp(&one)).unwrap_err().code,
      ErrorCode::MalformedJson
    );
  }

  #[test]
  fn key_ids() {
    assert_eq!(
      KeyId::parse("DEADBEEFdeadbeefDEADBEEF").unwrap().as_str(),
      "deadbeefdeadbeefdeadbeef"
    );
    for bad in [
      "",
      "deadbeef",
      "deadbeefdeadbeefdeadbeeg",
      "deadbeefdeadbeefdeadbeef0",
      "../../../../../etc/passwd1",
    ] {
      assert!(KeyId::parse(bad).is_err(), "{bad}");
    }
  }
}

//! One entry point into every parser of server responses, for the fuzz target
//! (`crates/client/fuzz`) and the property tests. Not part of the API.

use bytes::Bytes;

use crate::api_keys;
use crate::app::{Session, parse_location};
use crate::error::{ErrorCode, Result};
use crate::transport::Incoming;
use crate::user::Profile;

/// Codes a response parser may fail with.
const PARSE_CODES: &[ErrorCode] = &[
  ErrorCode::MalformedJson,
  ErrorCode::MissingJsonKey,
  ErrorCode::BadToken,
];

/// Runs realm-core's error check and every response parser on one response.
/// Panics only if a parser misbehaves: it must never panic itself, an error
/// must carry a message, and a parser may only fail with a parse code.
pub fn parse_response(status: u16, content_type: Option<&str>, body: &[u8]) {
  let response = || Incoming {
    status,
    content_type: content_type.map(str::to_owned),
    retry_after: None,
    location: None,
    body: Bytes::copy_from_slice(body),
    method: "GET",
    url: "http://127.0.0.1/fuzz".to_owned(),
  };
  match response().check() {
    Ok(resp) => assert!(
      (200..300).contains(&resp.status),
      "check passed a {} response",
      resp.status
    ),
    Err(err) => {
      assert!(!err.message.is_empty(), "error without a message");
      assert_eq!(err.status_code, Some(status));
    }
  }
  let resp = response();
  let outcomes: [Result<()>; 6] = [
    parse_location(&resp).map(drop),
    Session::parse(&resp).map(drop),
    Profile::parse(&resp).map(drop),
    api_keys::parse_created(&resp).map(drop),
    api_keys::parse_one(&resp).map(drop),
    api_keys::parse_list(&resp).map(drop),
  ];
  // The fast paths answer only where the `Value` paths agree.
  agree("login", Session::fast(&resp), || Session::read(&resp));
  agree("profile", Profile::fast(&resp), || Profile::read(&resp));
  agree("create", api_keys::fast_created(&resp), || {
    api_keys::read_created(&resp)
  });
  agree("fetch", api_keys::fast_one(&resp), || {
    api_keys::read_one(&resp)
  });
  agree("fetchAll", api_keys::fast_list(&resp), || {
    api_keys::read_list(&resp)
  });
  for outcome in outcomes {
    if let Err(err) = outcome {
      assert!(
        PARSE_CODES.contains(&err.code),
        "unexpected code {:?}: {}",
        err.code,
        err.message
      );
      assert!(!err.message.is_empty());
    }
  }
}

/// Panics unless the `Value` path (`read`) gives what the fast path gave,
/// when it gave anything. Compared without `Debug`: a login holds tokens.
fn agree<T: PartialEq>(what: &str, fast: Option<T>, read: impl FnOnce() -> Result<T>) {
  if let Some(fast) = fast {
    assert!(
      read().is_ok_and(|read| read == fast),
      "{what}: fast and Value paths differ"
    );
  }
}

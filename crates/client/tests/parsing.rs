//! Property tests of response parsing: whatever a server sends, the parsers
//! neither panic nor fail with anything but a parse error.

use proptest::prelude::*;
use realm_auth_client::fuzzing::parse_response;
use serde_json::{Map, Value};

/// Field names the parsers look for, plus a few others.
const KEYS: &[&str] = &[
  "_id",
  "name",
  "key",
  "disabled",
  "access_token",
  "refresh_token",
  "user_id",
  "device_id",
  "hostname",
  "identities",
  "data",
  "id",
  "provider_type",
  "type",
  "error",
  "error_code",
  "link",
  "other",
];

fn token() -> impl Strategy<Value = String> {
  // Sometimes a JWT-shaped string (three base64url parts), sometimes anything.
  prop_oneof![
    "[A-Za-z0-9_-]{0,8}\\.[A-Za-z0-9_-]{0,40}\\.[A-Za-z0-9_-]{0,8}",
    "(e30|eyJleHAiOjEsImlhdCI6MX0)\\.(eyJleHAiOjEsImlhdCI6MX0|e30|W10)\\.c2ln",
    any::<String>(),
  ]
}

fn json() -> impl Strategy<Value = Value> {
  let leaf = prop_oneof![
    Just(Value::Null),
    any::<bool>().prop_map(Value::Bool),
    any::<i64>().prop_map(Value::from),
    any::<f64>().prop_map(Value::from),
    "[0-9a-fA-F]{24}".prop_map(Value::String),
    "https?://[a-z0-9.:]{0,20}/?".prop_map(Value::String),
    token().prop_map(Value::String),
  ];
  leaf.prop_recursive(4, 64, 8, |inner| {
    prop_oneof![
      prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
      prop::collection::vec((prop::sample::select(KEYS), inner), 0..8).prop_map(|fields| {
        Value::Object(
          fields
            .into_iter()
            .map(|(k, v)| (k.to_owned(), v))
            .collect::<Map<_, _>>(),
        )
      }),
    ]
  })
}

/// Mostly what `shape` says, sometimes any JSON.
fn mostly(shape: impl Strategy<Value = Value> + 'static) -> BoxedStrategy<Value> {
  prop_oneof![4 => shape, 1 => json()].boxed()
}

/// An object with the `required` keys (their values mostly of the right
/// shape) and a few others, as JSON text, sometimes with one required key
/// given twice (which only text can say).
fn shaped(required: Vec<(&'static str, BoxedStrategy<Value>)>) -> impl Strategy<Value = Vec<u8>> {
  let (keys, values): (Vec<_>, Vec<_>) = required.into_iter().unzip();
  let extra = prop::collection::vec((prop::sample::select(KEYS), json()), 0..3);
  let twice = prop::option::of((any::<prop::sample::Index>(), json()));
  (values, extra, twice).prop_map(move |(values, extra, twice)| {
    let mut parts: Vec<String> = (keys.iter().zip(values))
      .map(|(k, v)| format!("{}:{v}", Value::from(*k)))
      .chain(
        extra
          .into_iter()
          .map(|(k, v)| format!("{}:{v}", Value::from(k))),
      )
      .collect();
    if let Some((at, again)) = twice {
      parts.push(format!(
        "{}:{again}",
        Value::from(keys[at.index(keys.len())])
      ));
    }
    format!("{{{}}}", parts.join(",")).into_bytes()
  })
}

fn login() -> impl Strategy<Value = Vec<u8>> {
  let token = || mostly(token().prop_map(Value::String));
  shaped(vec![
    ("access_token", token()),
    ("refresh_token", token()),
    ("user_id", token()),
    ("device_id", token()),
  ])
}

fn profile() -> impl Strategy<Value = Vec<u8>> {
  let text = || mostly("[a-z@.]{0,8}".prop_map(Value::String));
  let identity = (text(), text()).prop_map(|(id, provider)| {
    serde_json::json!({ "id": id, "provider_type": provider, "provider_data": {} })
  });
  shaped(vec![
    (
      "data",
      mostly(
        prop::collection::btree_map("[a-z]{1,5}", json(), 0..3)
          .prop_map(|m| Value::Object(m.into_iter().collect())),
      ),
    ),
    (
      "identities",
      mostly(prop::collection::vec(mostly(identity), 0..3).prop_map(Value::Array)),
    ),
    ("type", text()),
  ])
}

fn body() -> impl Strategy<Value = Vec<u8>> {
  prop_oneof![
    json().prop_map(|v| v.to_string().into_bytes()),
    any::<Vec<u8>>(),
    // Valid JSON cut short.
    (json(), any::<prop::sample::Index>()).prop_map(|(v, cut)| {
      let text = v.to_string().into_bytes();
      let end = cut.index(text.len() + 1);
      text[..end].to_vec()
    }),
  ]
}

fn content_type() -> impl Strategy<Value = Option<String>> {
  prop_oneof![
    Just(None),
    Just(Some("application/json".to_owned())),
    Just(Some("application/json;charset=utf-8".to_owned())),
    Just(Some("APPLICATION/JSON".to_owned())),
    Just(Some("text/html".to_owned())),
    any::<String>().prop_map(Some),
  ]
}

proptest! {
  #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

  #[test]
  fn any_response_parses_or_fails_cleanly(status in 100u16..600, ct in content_type(), body in body()) {
    parse_response(status, ct.as_deref(), &body);
  }

  #[test]
  fn login_and_profile_shaped_documents_parse_alike_both_ways(
    doc in prop_oneof![login(), profile()]
  ) {
    parse_response(200, Some("application/json"), &doc);
  }

  #[test]
  fn any_success_document_parses_or_fails_cleanly(doc in json()) {
    parse_response(200, Some("application/json"), doc.to_string().as_bytes());
  }
}

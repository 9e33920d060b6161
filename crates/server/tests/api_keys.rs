//! User API key routes and their rules, over real HTTP.

mod common;

use common::*;
use realm_auth_server::Config;
use serde_json::json;

/// The whole lifecycle, as the SDKs' integration tests drive it.
#[tokio::test]
async fn user_key_lifecycle() {
  let emu = start().await;
  let user = emu.new_user("life@example.com").await;

  let created = emu.create_key(&user.refresh, "api-key-1").await;
  assert!(matches!(created.status, 200 | 201), "{}", created.text());
  assert_eq!(created.header("content-type"), Some("application/json"));
  let key = created.json();
  let id = key["_id"].as_str().unwrap().to_string();
  let secret = key["key"].as_str().unwrap().to_string();
  assert!(is_object_id(&id), "{id}");
  assert!(secret.len() >= 43, "secret too short");
  assert_eq!(key["name"], "api-key-1");
  assert_eq!(key["disabled"], false);

  let list = emu
    .api("GET", "/auth/api_keys", Some(&user.refresh), None)
    .await;
  assert_eq!(list.status, 200);
  assert_eq!(
    list.json(),
    json!([{"_id": id, "name": "api-key-1", "disabled": false}])
  );

  let fetched = emu
    .api(
      "GET",
      &format!("/auth/api_keys/{id}"),
      Some(&user.refresh),
      None,
    )
    .await;
  assert_eq!(fetched.status, 200);
  assert_eq!(
    fetched.json(),
    json!({"_id": id, "name": "api-key-1", "disabled": false})
  );

  emu
    .api(
      "PUT",
      &format!("/auth/api_keys/{id}/disable"),
      Some(&user.refresh),
      None,
    )
    .await
    .assert_empty(204);
  let fetched = emu
    .api(
      "GET",
      &format!("/auth/api_keys/{id}"),
      Some(&user.refresh),
      None,
    )
    .await;
  assert_eq!(
    fetched.json(),
    json!({"_id": id, "name": "api-key-1", "disabled": true})
  );

  emu
    .login_raw("api-key", &json!({"provider": "api-key", "key": secret}))
    .await
    .assert_error(401, "AuthError", "invalid API key");

  emu
    .api(
      "PUT",
      &format!("/auth/api_keys/{id}/enable"),
      Some(&user.refresh),
      None,
    )
    .await
    .assert_empty(204);
  let key_user = emu
    .login("api-key", &json!({"provider": "api-key", "key": secret}))
    .await;
  assert_eq!(key_user.user_id, user.user_id);

  // The key's own session may not delete it.
  emu
    .api(
      "DELETE",
      &format!("/auth/api_keys/{id}"),
      Some(&key_user.refresh),
      None,
    )
    .await
    .assert_empty(403);

  let again = emu.login_email("life@example.com", "password1").await;
  emu
    .api(
      "DELETE",
      &format!("/auth/api_keys/{id}"),
      Some(&again.refresh),
      None,
    )
    .await
    .assert_empty(204);
  emu
    .api(
      "GET",
      &format!("/auth/api_keys/{id}"),
      Some(&again.refresh),
      None,
    )
    .await
    .assert_error(404, "APIKeyNotFound", "API key not found");
  let list = emu
    .api("GET", "/auth/api_keys", Some(&again.refresh), None)
    .await;
  assert_eq!(list.json(), json!([]));
  // A deleted key no longer logs in, and the sessions it opened ended with it.
  emu
    .login_raw("api-key", &json!({"key": secret}))
    .await
    .assert_error(401, "AuthError", "invalid API key");
  emu
    .api("POST", "/auth/session", Some(&key_user.refresh), None)
    .await
    .assert_error(401, "InvalidSession", "invalid session");
}

#[tokio::test]
async fn key_value_only_in_create_response() {
  let emu = start().await;
  let user = emu.new_user("secret@example.com").await;
  let key = emu.create_key(&user.refresh, "k").await.json();
  let secret = key["key"].as_str().unwrap();
  let id = key["_id"].as_str().unwrap();
  let list = emu
    .api("GET", "/auth/api_keys", Some(&user.refresh), None)
    .await;
  let fetched = emu
    .api(
      "GET",
      &format!("/auth/api_keys/{id}"),
      Some(&user.refresh),
      None,
    )
    .await;
  for r in [&list, &fetched] {
    assert!(!r.text().contains(secret));
    assert!(!r.text().contains("\"key\""));
  }
  // Nor in the request log.
  let log = serde_json::to_string(&emu.emulator.control().requests()).unwrap();
  assert!(!log.contains(secret));
}

#[tokio::test]
async fn keys_listed_in_creation_order() {
  let emu = start().await;
  let user = emu.new_user("order@example.com").await;
  let names = ["zeta", "alpha", "mid-1", "B_2"];
  for n in names {
    assert_eq!(emu.create_key(&user.refresh, n).await.status, 201);
  }
  let list = emu
    .api("GET", "/auth/api_keys", Some(&user.refresh), None)
    .await
    .json();
  let got: Vec<&str> = list
    .as_array()
    .unwrap()
    .iter()
    .map(|k| k["name"].as_str().unwrap())
    .collect();
  assert_eq!(got, names);
}

#[tokio::test]
async fn key_limit_per_user() {
  let emu = start().await;
  let user = emu.new_user("limit@example.com").await;
  for i in 0..20 {
    assert_eq!(
      emu.create_key(&user.refresh, &format!("k{i}")).await.status,
      201
    );
  }
  emu.create_key(&user.refresh, "k20").await.assert_error(
    409,
    "LimitExceeded",
    "maximum number of API keys (20)",
  );
  // The limit is per user.
  let other = emu.new_user("limit2@example.com").await;
  assert_eq!(emu.create_key(&other.refresh, "k0").await.status, 201);
  // Deleting one frees a slot.
  let first = emu
    .api("GET", "/auth/api_keys", Some(&user.refresh), None)
    .await
    .json()[0]["_id"]
    .as_str()
    .unwrap()
    .to_string();
  emu
    .api(
      "DELETE",
      &format!("/auth/api_keys/{first}"),
      Some(&user.refresh),
      None,
    )
    .await
    .assert_empty(204);
  assert_eq!(emu.create_key(&user.refresh, "k20").await.status, 201);
}

#[tokio::test]
async fn key_limit_is_configurable() {
  let emu = start_with(Config {
    max_api_keys_per_user: 2,
    ..Config::default()
  })
  .await;
  let user = emu.new_user("cfg@example.com").await;
  assert_eq!(emu.create_key(&user.refresh, "a").await.status, 201);
  assert_eq!(emu.create_key(&user.refresh, "b").await.status, 201);
  emu
    .create_key(&user.refresh, "c")
    .await
    .assert_error(409, "LimitExceeded", "(2)");
}

#[tokio::test]
async fn key_names() {
  let emu = start().await;
  let user = emu.new_user("names@example.com").await;
  const RULE: &str = "can only contain ASCII letters, numbers, underscores, and hyphens";
  for bad in [
    "has space",
    "dot.name",
    "ünïcode",
    "slash/x",
    "",
    &"a".repeat(65),
  ] {
    emu
      .create_key(&user.refresh, bad)
      .await
      .assert_error(400, "InvalidParameter", RULE);
  }
  for good in ["A-z_0-9", &"a".repeat(64)] {
    assert_eq!(
      emu.create_key(&user.refresh, good).await.status,
      201,
      "{good}"
    );
  }
  // Rejected names created nothing.
  let list = emu
    .api("GET", "/auth/api_keys", Some(&user.refresh), None)
    .await
    .json();
  assert_eq!(list.as_array().unwrap().len(), 2);
}

#[tokio::test]
async fn duplicate_key_name() {
  let emu = start().await;
  let user = emu.new_user("dup@example.com").await;
  assert_eq!(emu.create_key(&user.refresh, "same").await.status, 201);
  emu.create_key(&user.refresh, "same").await.assert_error(
    409,
    "APIKeyAlreadyExists",
    "already exists",
  );
  // Another user may use the name.
  let other = emu.new_user("dup2@example.com").await;
  assert_eq!(emu.create_key(&other.refresh, "same").await.status, 201);
}

#[tokio::test]
async fn anonymous_users_cannot_manage_keys() {
  let emu = start().await;
  let anon = emu
    .login("anon-user", &json!({"provider": "anon-user"}))
    .await;
  emu.create_key(&anon.refresh, "k").await.assert_empty(403);
  emu
    .api("GET", "/auth/api_keys", Some(&anon.refresh), None)
    .await
    .assert_empty(403);
  let id = "0123456789abcdef01234567";
  emu
    .api(
      "GET",
      &format!("/auth/api_keys/{id}"),
      Some(&anon.refresh),
      None,
    )
    .await
    .assert_empty(403);
  emu
    .api(
      "DELETE",
      &format!("/auth/api_keys/{id}"),
      Some(&anon.refresh),
      None,
    )
    .await
    .assert_empty(403);
  emu
    .api(
      "PUT",
      &format!("/auth/api_keys/{id}/enable"),
      Some(&anon.refresh),
      None,
    )
    .await
    .assert_empty(403);
  emu
    .api(
      "PUT",
      &format!("/auth/api_keys/{id}/disable"),
      Some(&anon.refresh),
      None,
    )
    .await
    .assert_empty(403);
}

#[tokio::test]
async fn anonymous_user_linked_to_email_may_manage_keys() {
  let emu = start().await;
  let anon = emu.login("anon-user", &json!({})).await;
  assert_eq!(
    emu.register("linked@example.com", "password1").await.status,
    201
  );
  let r = emu
    .app_api(
      "POST",
      "/auth/providers/local-userpass/login?link=true",
      Some(&anon.access),
      Some(&json!({"username": "linked@example.com", "password": "password1"}).to_string()),
    )
    .await;
  assert_eq!(r.status, 200, "{}", r.text());
  assert_eq!(emu.create_key(&anon.refresh, "k").await.status, 201);
}

#[tokio::test]
async fn server_key_users_cannot_manage_keys() {
  let emu = start().await;
  let server = emu
    .emulator
    .control()
    .create_server_api_key("backend")
    .unwrap();
  let s = emu
    .login(
      "api-key",
      &json!({"provider": "api-key", "key": server.key}),
    )
    .await;
  emu.create_key(&s.refresh, "k").await.assert_empty(403);
  emu
    .api("GET", "/auth/api_keys", Some(&s.refresh), None)
    .await
    .assert_empty(403);
  let profile = emu
    .api("GET", "/auth/profile", Some(&s.access), None)
    .await
    .json();
  assert_eq!(profile["type"], "server");
  assert_eq!(profile["identities"][0]["provider_type"], "api-key");
  assert_eq!(profile["identities"][0]["id"], server.id);
  // The same key logs in as the same server user.
  let again = emu.login("api-key", &json!({"key": server.key})).await;
  assert_eq!(again.user_id, s.user_id);
}

#[tokio::test]
async fn other_users_keys_are_not_found() {
  let emu = start().await;
  let owner = emu.new_user("owner@example.com").await;
  let other = emu.new_user("other@example.com").await;
  let id = emu.create_key(&owner.refresh, "mine").await.json()["_id"]
    .as_str()
    .unwrap()
    .to_string();
  let paths = [
    ("GET", format!("/auth/api_keys/{id}")),
    ("PUT", format!("/auth/api_keys/{id}/enable")),
    ("PUT", format!("/auth/api_keys/{id}/disable")),
    ("DELETE", format!("/auth/api_keys/{id}")),
  ];
  for (method, path) in &paths {
    emu
      .api(method, path, Some(&other.refresh), None)
      .await
      .assert_error(404, "APIKeyNotFound", "API key not found");
  }
  // fetchAll of the other user is empty, without error.
  let list = emu
    .api("GET", "/auth/api_keys", Some(&other.refresh), None)
    .await;
  assert_eq!((list.status, list.json()), (200, json!([])));
  // The owner's key is untouched.
  let fetched = emu
    .api(
      "GET",
      &format!("/auth/api_keys/{id}"),
      Some(&owner.refresh),
      None,
    )
    .await;
  assert_eq!(fetched.json()["disabled"], false);
}

#[tokio::test]
async fn unknown_and_malformed_key_ids_are_not_found() {
  let emu = start().await;
  let user = emu.new_user("ids@example.com").await;
  for id in [
    "0123456789abcdef01234567",
    "not-an-id",
    "deadbeef",
    "zzzzzzzzzzzzzzzzzzzzzzzz",
  ] {
    emu
      .api(
        "GET",
        &format!("/auth/api_keys/{id}"),
        Some(&user.refresh),
        None,
      )
      .await
      .assert_error(404, "APIKeyNotFound", "API key not found");
    emu
      .api(
        "PUT",
        &format!("/auth/api_keys/{id}/disable"),
        Some(&user.refresh),
        None,
      )
      .await
      .assert_error(404, "APIKeyNotFound", "API key not found");
  }
}

#[tokio::test]
async fn upper_case_key_ids_are_accepted() {
  let emu = start().await;
  let user = emu.new_user("upper@example.com").await;
  let id = emu.create_key(&user.refresh, "k").await.json()["_id"]
    .as_str()
    .unwrap()
    .to_ascii_uppercase();
  let r = emu
    .api(
      "GET",
      &format!("/auth/api_keys/{id}"),
      Some(&user.refresh),
      None,
    )
    .await;
  assert_eq!(r.status, 200);
  assert_eq!(r.json()["_id"], id.to_ascii_lowercase());
}

#[tokio::test]
async fn key_routes_need_authentication() {
  let emu = start().await;
  let id = "0123456789abcdef01234567";
  let routes = [
    (
      "POST",
      "/auth/api_keys".to_string(),
      Some(r#"{"name":"k"}"#),
    ),
    ("GET", "/auth/api_keys".to_string(), None),
    ("GET", format!("/auth/api_keys/{id}"), None),
    ("DELETE", format!("/auth/api_keys/{id}"), None),
    ("PUT", format!("/auth/api_keys/{id}/enable"), None),
    ("PUT", format!("/auth/api_keys/{id}/disable"), None),
  ];
  for (method, path, body) in &routes {
    emu.api(method, path, None, *body).await.assert_error(
      401,
      "MissingAuthReq",
      "must authenticate first",
    );
  }
}

#[tokio::test]
async fn key_routes_need_a_refresh_token() {
  let emu = start().await;
  let user = emu.new_user("type@example.com").await;
  // An access token where a refresh token is required.
  emu
    .create_key(&user.access, "k")
    .await
    .assert_error(401, "InvalidSession", "invalid session");
  emu
    .api("GET", "/auth/api_keys", Some(&user.access), None)
    .await
    .assert_error(401, "InvalidSession", "refresh token");
  // Garbage, a tampered signature, a "Bearer null" and a non-bearer scheme.
  let mut tampered = user.refresh.clone();
  tampered.pop();
  tampered.push(if user.refresh.ends_with('A') {
    'B'
  } else {
    'A'
  });
  for token in ["garbage", "a.b.c", "null", tampered.as_str()] {
    emu
      .api("GET", "/auth/api_keys", Some(token), None)
      .await
      .assert_error(401, "InvalidSession", "invalid session");
  }
  let req = build_request(
    "GET",
    &format!("{BASE}/auth/api_keys"),
    &[("Authorization", "Basic dXNlcjpwYXNz")],
    None,
  );
  parse_response(&raw_exchange(emu.port, &req).await.unwrap()).assert_error(
    401,
    "InvalidSession",
    "invalid session",
  );
  // A token signed by another emulator.
  let other = start().await;
  let foreign = other.new_user("type@example.com").await;
  emu
    .api("GET", "/auth/api_keys", Some(&foreign.refresh), None)
    .await
    .assert_error(401, "InvalidSession", "invalid session");
}

#[tokio::test]
async fn create_key_bad_bodies() {
  let emu = start().await;
  let user = emu.new_user("body@example.com").await;
  for body in [
    "{not json",
    "[]",
    "\"name\"",
    "{}",
    r#"{"name": 5}"#,
    r#"{"name": null}"#,
    "",
  ] {
    emu
      .api("POST", "/auth/api_keys", Some(&user.refresh), Some(body))
      .await
      .assert_error(400, "BadRequest", "");
  }
  // Authentication is checked before the body.
  emu
    .api("POST", "/auth/api_keys", None, Some("{not json"))
    .await
    .assert_error(401, "MissingAuthReq", "must authenticate first");
}

#[tokio::test]
async fn user_key_login_adds_api_key_identity() {
  let emu = start().await;
  let user = emu.new_user("ident@example.com").await;
  let key = emu.create_key(&user.refresh, "k").await.json();
  let s = emu.login("api-key", &json!({"key": key["key"]})).await;
  assert_ne!(s.refresh, user.refresh, "a new session");
  let profile = emu
    .api("GET", "/auth/profile", Some(&s.access), None)
    .await
    .json();
  assert_eq!(profile["type"], "normal");
  let providers: Vec<&str> = profile["identities"]
    .as_array()
    .unwrap()
    .iter()
    .map(|i| i["provider_type"].as_str().unwrap())
    .collect();
  assert_eq!(providers, ["local-userpass", "api-key"]);
  // A user-key session may manage the user's other keys.
  assert_eq!(emu.create_key(&s.refresh, "k2").await.status, 201);
}

/// realm-core sends `Content-Type: application/json;charset=utf-8` on every request, even
/// body-less GET/PUT/DELETE; realm-web sends only `Accept`.
#[tokio::test]
async fn core_style_headers_on_bodyless_requests() {
  let emu = start().await;
  let user = emu.new_user("core@example.com").await;
  let id = emu.create_key(&user.refresh, "k").await.json()["_id"]
    .as_str()
    .unwrap()
    .to_string();
  let auth = format!("Bearer {}", user.refresh);
  let core = [
    ("Content-Type", "application/json;charset=utf-8"),
    ("Accept", "application/json"),
    ("Authorization", auth.as_str()),
  ];
  let send = |method: &'static str, path: String| {
    let req = build_request(method, &format!("{BASE}{path}"), &core, None);
    async move { parse_response(&raw_exchange(emu.port, &req).await.unwrap()) }
  };
  assert_eq!(send("GET", "/auth/api_keys".into()).await.status, 200);
  assert_eq!(
    send("GET", format!("/auth/api_keys/{id}")).await.status,
    200
  );
  send("PUT", format!("/auth/api_keys/{id}/disable"))
    .await
    .assert_empty(204);
  send("PUT", format!("/auth/api_keys/{id}/enable"))
    .await
    .assert_empty(204);
  assert_eq!(send("POST", "/auth/session".into()).await.status, 201);
  send("DELETE", format!("/auth/api_keys/{id}"))
    .await
    .assert_empty(204);
  send("DELETE", "/auth/session".into())
    .await
    .assert_empty(204);
}

//! The HTTP control API under /_emulator/ and the request log.

mod common;

use common::*;
use realm_auth_emulator::{Config, LoggedRequest, TokenType};
use serde_json::{Value, json};

async fn ctl(emu: &Emu, method: &str, path: &str, body: Option<Value>) -> Resp {
  let body = body.map(|b| b.to_string());
  emu
    .send(method, &format!("/_emulator{path}"), None, body.as_deref())
    .await
}

#[tokio::test]
async fn users_and_server_keys_over_http() {
  let emu = start().await;
  let r = ctl(
    &emu,
    "POST",
    "/users",
    Some(json!({"email": "http@example.com", "password": "password1"})),
  )
  .await;
  assert_eq!(r.status, 201);
  assert_eq!(r.header("content-type"), Some("application/json"));
  let user = r.json();
  assert_eq!(user["email"], "http@example.com");
  let s = emu.login_email("http@example.com", "password1").await;
  assert_eq!(user["id"], s.user_id.as_str());
  let r = ctl(
    &emu,
    "POST",
    "/users",
    Some(json!({"email": "http@example.com", "password": "password1"})),
  )
  .await;
  assert_eq!(
    (r.status, r.json()["error_code"].as_str()),
    (409, Some("Conflict"))
  );
  let r = ctl(
    &emu,
    "POST",
    "/users",
    Some(json!({"email": "x@example.com", "password": "1"})),
  )
  .await;
  assert_eq!(
    (r.status, r.json()["error_code"].as_str()),
    (400, Some("InvalidArgument"))
  );
  let r = ctl(
    &emu,
    "POST",
    "/users",
    Some(json!({"email": "x@example.com"})),
  )
  .await;
  assert_eq!(r.status, 400);

  let r = ctl(
    &emu,
    "POST",
    "/server-api-keys",
    Some(json!({"name": "backend"})),
  )
  .await;
  assert_eq!(r.status, 201);
  let key = r.json();
  assert!(is_object_id(key["id"].as_str().unwrap()));
  assert_eq!(key["name"], "backend");
  let server = emu.login("api-key", &json!({"key": key["key"]})).await;
  let profile = emu
    .api("GET", "/auth/profile", Some(&server.access), None)
    .await
    .json();
  assert_eq!(profile["type"], "server");
  let r = ctl(
    &emu,
    "POST",
    "/server-api-keys",
    Some(json!({"name": "backend"})),
  )
  .await;
  assert_eq!(r.status, 409);
  let r = ctl(
    &emu,
    "POST",
    "/server-api-keys",
    Some(json!({"name": "bad name"})),
  )
  .await;
  assert_eq!(r.status, 400);
}

#[tokio::test]
async fn faults_over_http() {
  let emu = start().await;
  let spec = json!({
    "method": "GET",
    "path": "auth/api_keys",
    "times": 2,
    "delayMs": 0,
    "action": {"type": "respond", "status": 503, "headers": {"Retry-After": "1"}, "body": "{}"}
  });
  let r = ctl(&emu, "POST", "/faults", Some(spec)).await;
  assert_eq!(r.status, 201);
  let id = r.json()["id"].as_str().unwrap().to_string();
  let listed = ctl(&emu, "GET", "/faults", None).await.json();
  assert_eq!(listed[0]["id"], id.as_str());
  assert_eq!(listed[0]["remaining"], 2);
  assert_eq!(listed[0]["spec"]["action"]["type"], "respond");
  let r = emu.api("GET", "/auth/api_keys", None, None).await;
  assert_eq!((r.status, r.header("retry-after")), (503, Some("1")));
  ctl(&emu, "DELETE", "/faults", None).await.assert_empty(204);
  assert_eq!(
    emu.api("GET", "/auth/api_keys", None, None).await.status,
    401
  );
  // One by id; unknown ids and bad specs.
  let r = ctl(
    &emu,
    "POST",
    "/faults",
    Some(json!({"path": "/x", "action": {"type": "drop"}})),
  )
  .await;
  let id = r.json()["id"].as_str().unwrap().to_string();
  ctl(&emu, "DELETE", &format!("/faults/{id}"), None)
    .await
    .assert_empty(204);
  assert_eq!(
    ctl(&emu, "DELETE", &format!("/faults/{id}"), None)
      .await
      .status,
    404
  );
  let r = ctl(
    &emu,
    "POST",
    "/faults",
    Some(json!({"path": "/x", "action": {"type": "explode"}})),
  )
  .await;
  assert_eq!(r.status, 400);
  let r = ctl(&emu, "POST", "/faults", Some(json!({"path": "/x", "action": {"type": "slowBody", "status": 200, "chunkBytes": 0, "chunkDelayMs": 1}}))).await;
  assert_eq!(r.status, 400);
}

#[tokio::test]
async fn tokens_revoke_and_custom_data_over_http() {
  let emu = start().await;
  let s = emu.new_user("ops@example.com").await;
  ctl(&emu, "POST", "/tokens/expire", None)
    .await
    .assert_empty(204);
  emu
    .api("GET", "/auth/profile", Some(&s.access), None)
    .await
    .assert_error(401, "InvalidSession", "");
  ctl(
    &emu,
    "PUT",
    &format!("/users/{}/custom-data", s.user_id),
    Some(json!({"tier": 2})),
  )
  .await
  .assert_empty(204);
  let access = emu
    .api("POST", "/auth/session", Some(&s.refresh), None)
    .await
    .json()["access_token"]
    .as_str()
    .unwrap()
    .to_string();
  assert_eq!(jwt_payload(&access)["user_data"], json!({"tier": 2}));
  assert_eq!(
    ctl(
      &emu,
      "PUT",
      "/users/0123456789abcdef01234567/custom-data",
      Some(json!({}))
    )
    .await
    .status,
    404
  );
  assert_eq!(
    ctl(
      &emu,
      "PUT",
      &format!("/users/{}/custom-data", s.user_id),
      Some(json!("x"))
    )
    .await
    .status,
    400
  );
  ctl(&emu, "POST", &format!("/users/{}/revoke", s.user_id), None)
    .await
    .assert_empty(204);
  emu
    .api("POST", "/auth/session", Some(&s.refresh), None)
    .await
    .assert_error(401, "InvalidSession", "");
  assert_eq!(
    ctl(&emu, "POST", "/users/0123456789abcdef01234567/revoke", None)
      .await
      .status,
    404
  );
}

#[tokio::test]
async fn pending_tokens_over_http() {
  let emu = start_with(Config {
    require_email_confirmation: true,
    ..Config::default()
  })
  .await;
  emu
    .register("a+b@example.com", "password1")
    .await
    .assert_empty(201);
  let r = ctl(
    &emu,
    "GET",
    "/confirmations?email=a%2Bb%40example.com",
    None,
  )
  .await;
  assert_eq!(r.status, 200);
  let pair = r.json();
  assert!(pair["token"].is_string() && pair["tokenId"].is_string());
  let r = emu
    .app_api(
      "POST",
      "/auth/providers/local-userpass/confirm",
      None,
      Some(&json!({"token": pair["token"], "tokenId": pair["tokenId"]}).to_string()),
    )
    .await;
  r.assert_empty(204);
  assert_eq!(
    ctl(
      &emu,
      "GET",
      "/confirmations?email=a%2Bb%40example.com",
      None
    )
    .await
    .status,
    404
  );
  assert_eq!(
    ctl(&emu, "GET", "/resets?email=a%2Bb%40example.com", None)
      .await
      .status,
    404
  );
  emu
    .app_api(
      "POST",
      "/auth/providers/local-userpass/reset/send",
      None,
      Some(r#"{"email":"a+b@example.com"}"#),
    )
    .await
    .assert_empty(204);
  let r = ctl(&emu, "GET", "/resets?email=a+b@example.com", None).await;
  assert_eq!(r.status, 200);
  assert!(r.json()["tokenId"].is_string());
}

#[tokio::test]
async fn request_log_contents_and_redaction() {
  let emu = start().await;
  let control = emu.emulator.control();
  assert_eq!(
    emu
      .register("log@example.com", "hunter2-SENTINEL")
      .await
      .status,
    201
  );
  let s = emu.login_email("log@example.com", "hunter2-SENTINEL").await;
  let key = emu.create_key(&s.refresh, "logged").await.json();
  let secret = key["key"].as_str().unwrap().to_string();
  emu.login("api-key", &json!({"key": secret})).await;
  emu
    .api("GET", "/auth/api_keys", Some(&s.refresh), None)
    .await;
  emu.api("GET", "/auth/profile", Some(&s.access), None).await;
  emu
    .api("GET", "/auth/api_keys", Some("garbage"), None)
    .await;
  emu.api("GET", "/auth/api_keys", None, None).await;
  emu.app_api("GET", "/location?x=1", None, None).await;

  let log: Vec<LoggedRequest> = control.requests();
  assert_eq!(log.len(), 9);
  let register = &log[0];
  assert_eq!(register.method, "POST");
  assert!(register.path.ends_with("/local-userpass/register"));
  assert_eq!(register.status, 201);
  assert_eq!(register.token_type, TokenType::None);
  assert_eq!(register.body.as_ref().unwrap()["password"], "<redacted>");
  assert_eq!(register.body.as_ref().unwrap()["email"], "log@example.com");
  assert_eq!(register.content_type.as_deref(), Some("application/json"));
  assert_eq!(register.accept.as_deref(), Some("application/json"));
  assert!(!register.has_authorization);

  let create = &log[2];
  assert_eq!(
    (create.status, create.token_type),
    (201, TokenType::Refresh)
  );
  assert_eq!(create.user_id.as_deref(), Some(s.user_id.as_str()));
  assert_eq!(create.body, Some(json!({"name": "logged"})));
  assert!(create.has_authorization);
  assert_eq!(log[3].body.as_ref().unwrap()["key"], "<redacted>");
  assert_eq!(log[4].token_type, TokenType::Refresh);
  assert_eq!(log[4].body, None);
  assert_eq!(log[5].token_type, TokenType::Access);
  assert_eq!(
    (log[6].token_type, log[6].status, log[6].user_id.as_deref()),
    (TokenType::Invalid, 401, None)
  );
  assert_eq!(
    (log[7].token_type, log[7].has_authorization),
    (TokenType::None, false)
  );
  assert_eq!(log[8].query.as_deref(), Some("x=1"));
  assert!(
    log
      .windows(2)
      .all(|w| w[0].timestamp_ms <= w[1].timestamp_ms)
  );

  // No secret anywhere in the log.
  let dump = serde_json::to_string(&log).unwrap();
  for needle in [
    "hunter2-SENTINEL",
    secret.as_str(),
    s.refresh.as_str(),
    s.access.as_str(),
  ] {
    assert!(!dump.contains(needle), "log leaks a secret");
  }

  // Over HTTP, camelCase, same content.
  let http = ctl(&emu, "GET", "/requests", None).await.json();
  assert_eq!(http.as_array().unwrap().len(), 9);
  assert_eq!(http[2]["tokenType"], "refresh");
  assert_eq!(http[2]["hasAuthorization"], true);
  ctl(&emu, "DELETE", "/requests", None)
    .await
    .assert_empty(204);
  assert!(control.requests().is_empty());
}

#[tokio::test]
async fn error_links_resolve_to_the_logged_request() {
  let emu = start().await;
  let r = emu.api("GET", "/auth/api_keys", None, None).await;
  let link = r.json()["link"].as_str().unwrap().to_string();
  let path = link
    .strip_prefix(&emu.emulator.base_url())
    .expect("link on our base URL");
  let entries = emu.send("GET", path, None, None).await.json();
  assert_eq!(entries.as_array().unwrap().len(), 1);
  assert_eq!(entries[0]["status"], 401);
  assert!(link.ends_with(entries[0]["id"].as_str().unwrap()));
}

#[tokio::test]
async fn log_is_bounded() {
  let emu = start_with(Config {
    log_capacity: 3,
    ..Config::default()
  })
  .await;
  for i in 0..5 {
    emu
      .app_api("GET", &format!("/location?i={i}"), None, None)
      .await;
  }
  let queries: Vec<String> = emu
    .emulator
    .control()
    .requests()
    .into_iter()
    .filter_map(|r| r.query)
    .collect();
  assert_eq!(queries, ["i=2", "i=3", "i=4"]);
}

#[tokio::test]
async fn reset_forgets_everything() {
  let emu = start().await;
  let s = emu.new_user("reset-all@example.com").await;
  emu.create_key(&s.refresh, "k").await;
  emu
    .emulator
    .control()
    .inject_fault(realm_auth_emulator::FaultSpec::new(
      "/x",
      realm_auth_emulator::FaultAction::Drop,
    ))
    .unwrap();
  ctl(&emu, "POST", "/reset", None).await.assert_empty(204);
  let control = emu.emulator.control();
  assert!(control.requests().is_empty());
  assert!(control.faults().is_empty());
  emu
    .api("GET", "/auth/api_keys", Some(&s.refresh), None)
    .await
    .assert_error(401, "InvalidSession", "");
  emu
    .login_raw(
      "local-userpass",
      &json!({"username": "reset-all@example.com", "password": "password1"}),
    )
    .await
    .assert_error(401, "InvalidPassword", "");
  // Usable afterwards.
  emu.new_user("reset-all@example.com").await;
}

#[tokio::test]
async fn info_and_unknown_control_routes() {
  let emu = start().await;
  let info = ctl(&emu, "GET", "/info", None).await.json();
  assert_eq!(
    info,
    json!({"appId": emu.app, "baseUrl": emu.emulator.base_url()})
  );
  let r = ctl(&emu, "GET", "/nope", None).await;
  assert_eq!(
    (r.status, r.json()["error_code"].as_str()),
    (404, Some("NotFound"))
  );
  assert_eq!(ctl(&emu, "POST", "/users", None).await.status, 400);
  // Flushing without a data file is a no-op.
  ctl(&emu, "POST", "/flush", None).await.assert_empty(204);
}

#[tokio::test]
async fn control_handle_and_types() {
  let emu = start().await;
  let control = emu.emulator.control();
  assert_eq!(control.base_url(), emu.emulator.base_url());
  assert_eq!(control.app_id(), "emulator-app");
  let key = control.create_server_api_key("svc").unwrap();
  let debug = format!("{key:?}");
  assert!(!debug.contains(&key.key), "Debug leaks the key: {debug}");
  let json = serde_json::to_value(&key).unwrap();
  assert_eq!(json["key"], key.key.as_str());
  let config = Config {
    custom_token_secret: Some("SENTINEL-SECRET".into()),
    ..Config::default()
  };
  assert!(!format!("{config:?}").contains("SENTINEL"));
  let err = control.create_user("", "password1").unwrap_err();
  assert_eq!(err.status(), 400);
  assert!(!err.message().is_empty());
}

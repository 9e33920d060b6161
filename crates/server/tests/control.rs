//! The HTTP control API under /_emulator/ and the request log.

mod common;

use common::*;
use realm_auth_server::{CONTROL_ROUTES, Config, EmulatorErrorCode, LoggedRequest, TokenType};
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
    .inject_fault(realm_auth_server::FaultSpec::new(
      "/x",
      realm_auth_server::FaultAction::Drop,
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

#[tokio::test]
async fn the_index_lists_every_control_route() {
  let emu = start().await;
  let index = ctl(&emu, "GET", "/", None).await;
  assert_eq!(index.status, 200);
  assert_eq!(index.header("content-type"), Some("application/json"));
  let index = index.json();
  // Without the trailing slash too.
  let r = emu.send("GET", "/_emulator", None, None).await;
  assert_eq!((r.status, r.json()), (200, index.clone()));

  assert_eq!(index["guide"], "docs/EMULATOR.md");
  let routes = index["routes"].as_array().unwrap();
  assert_eq!(
    routes,
    &CONTROL_ROUTES
      .iter()
      .map(|r| json!({"method": r.method, "path": r.path, "description": r.description}))
      .collect::<Vec<_>>()
  );
  for (method, path) in [
    ("GET", "/_emulator/"),
    ("POST", "/_emulator/users"),
    ("POST", "/_emulator/users/:id/revoke"),
    ("GET", "/_emulator/requests"),
    ("POST", "/_emulator/faults"),
  ] {
    assert!(
      routes
        .iter()
        .any(|r| r["method"] == method && r["path"] == path),
      "{method} {path} not listed"
    );
  }
  let codes = index["errorCodes"].as_array().unwrap();
  assert_eq!(codes.len(), EmulatorErrorCode::ALL.len());
  assert_eq!(
    codes[1],
    json!({"code": 4911, "name": "EmulatorUserExists", "description": EmulatorErrorCode::UserExists.description()})
  );

  // Every listed route is served: none answers "no control route" (placeholders filled in,
  // bodies left out, so some answer 400 or 404 of their own).
  for r in CONTROL_ROUTES {
    let path = r
      .path
      .trim_start_matches("/_emulator")
      .replace(":requestId", "0")
      .replace(":email", "nobody%40example.com")
      .replace(":id", "0123456789abcdef01234567");
    let resp = ctl(&emu, r.method, &path, None).await;
    let text = resp.text();
    assert!(
      !text.contains("no control route"),
      "{} {} is listed but not served: {text}",
      r.method,
      r.path
    );
  }
  emu.emulator.stop().await;
}

#[tokio::test]
async fn http_control_errors_carry_numeric_codes() {
  let emu = start().await;
  #[track_caller]
  fn check(r: &Resp, status: u16, error_code: &str, code: EmulatorErrorCode, message: &str) {
    assert_eq!(r.status, status, "{}", r.text());
    assert_eq!(r.header("content-type"), Some("application/json"));
    let v = r.json();
    assert_eq!(v["error_code"], error_code, "{v}");
    assert_eq!(v["code"], code.value(), "{v}");
    assert!(
      v["error"].as_str().unwrap().contains(message),
      "{v} lacks {message:?}"
    );
  }
  let user = json!({"email": "codes@example.com", "password": "password1"});
  assert_eq!(
    ctl(&emu, "POST", "/users", Some(user.clone())).await.status,
    201
  );
  check(
    &ctl(&emu, "POST", "/users", Some(user)).await,
    409,
    "Conflict",
    EmulatorErrorCode::UserExists,
    "a user with email 'codes@example.com' already exists",
  );
  let unknown = "0123456789abcdef01234567";
  check(
    &ctl(&emu, "POST", &format!("/users/{unknown}/revoke"), None).await,
    404,
    "NotFound",
    EmulatorErrorCode::UserNotFound,
    &format!("no user with id '{unknown}'"),
  );
  check(
    &ctl(
      &emu,
      "PUT",
      &format!("/users/{unknown}/custom-data"),
      Some(json!({})),
    )
    .await,
    404,
    "NotFound",
    EmulatorErrorCode::UserNotFound,
    "no user with id",
  );
  check(
    &ctl(
      &emu,
      "POST",
      "/users",
      Some(json!({"email": "short@example.com", "password": "1"})),
    )
    .await,
    400,
    "InvalidArgument",
    EmulatorErrorCode::BadRequest,
    "password must be between 6 and 128 characters",
  );
  check(
    &ctl(&emu, "POST", "/faults", Some(json!({"path": "x"}))).await,
    400,
    "InvalidArgument",
    EmulatorErrorCode::BadRequest,
    "invalid JSON body",
  );
  check(
    &ctl(&emu, "DELETE", "/faults/fault-99", None).await,
    404,
    "NotFound",
    EmulatorErrorCode::NotFound,
    "no fault with id fault-99",
  );
  check(
    &ctl(&emu, "GET", "/confirmations?email=nobody", None).await,
    404,
    "NotFound",
    EmulatorErrorCode::NotFound,
    "no pending confirmation",
  );
  let key = json!({"name": "backend"});
  assert_eq!(
    ctl(&emu, "POST", "/server-api-keys", Some(key.clone()))
      .await
      .status,
    201
  );
  check(
    &ctl(&emu, "POST", "/server-api-keys", Some(key)).await,
    409,
    "Conflict",
    EmulatorErrorCode::Conflict,
    "API key already exists",
  );
  check(
    &ctl(&emu, "GET", "/nope", None).await,
    404,
    "NotFound",
    EmulatorErrorCode::NotFound,
    "no control route GET /_emulator/nope; GET /_emulator/ lists them",
  );
  // The same codes from Rust.
  let control = emu.emulator.control();
  let err = control
    .create_user("codes@example.com", "password1")
    .unwrap_err();
  assert_eq!(
    (err.code(), err.status()),
    (EmulatorErrorCode::UserExists, 409)
  );
  let err = control.revoke_sessions(unknown).unwrap_err();
  assert_eq!(
    (err.code(), err.status()),
    (EmulatorErrorCode::UserNotFound, 404)
  );
  emu.emulator.stop().await;
}

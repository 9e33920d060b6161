//! Location, login providers, linking, profile, sessions and user deletion over real HTTP.

mod common;

use common::*;
use realm_auth_server::{Config, sign_hs256};
use serde_json::{Value, json};

#[tokio::test]
async fn location() {
  let emu = start().await;
  let r = emu.app_api("GET", "/location", None, None).await;
  assert_eq!(r.status, 200);
  assert_eq!(r.header("content-type"), Some("application/json"));
  let port = emu.port;
  assert_eq!(
    r.json(),
    json!({
      "deployment_model": "GLOBAL",
      "location": "US-VA",
      "hostname": emu.emulator.base_url(),
      "ws_hostname": format!("ws://127.0.0.1:{port}"),
    })
  );
  // The hostname follows the Host header clients used (e.g. a container name).
  let req = build_request(
    "GET",
    &format!("{BASE}/app/{}/location", emu.app),
    &[("Host", &format!("emulator:{port}"))],
    None,
  );
  let v = parse_response(&raw_exchange(port, &req).await.unwrap()).json();
  assert_eq!(v["hostname"], format!("http://emulator:{port}"));
  assert_eq!(v["ws_hostname"], format!("ws://emulator:{port}"));
}

#[tokio::test]
async fn location_behind_a_tls_proxy_answers_the_public_url() {
  let emu = start_with(Config {
    public_url: Some("https://auth.example.com".into()),
    ..Config::default()
  })
  .await;
  let v = emu.app_api("GET", "/location", None, None).await.json();
  assert_eq!(v["hostname"], "https://auth.example.com");
  assert_eq!(v["ws_hostname"], "wss://auth.example.com");
  for bad in [
    "auth.example.com",
    "ftp://x",
    "https://",
    "https://x/",
    "https://a b",
  ] {
    let config = Config {
      public_url: Some(bad.into()),
      ..Config::default()
    };
    let err = realm_auth_server::Emulator::start(config)
      .await
      .unwrap_err();
    assert!(err.to_string().contains("public URL"), "{bad}: {err}");
  }
}

#[tokio::test]
async fn unknown_app_is_404() {
  let emu = start().await;
  let base = format!("{BASE}/app/no-such-app");
  emu
    .send("GET", &format!("{base}/location"), None, None)
    .await
    .assert_error(404, "AppNotFound", "no-such-app");
  emu
    .send(
      "POST",
      &format!("{base}/auth/providers/anon-user/login"),
      None,
      Some("{}"),
    )
    .await
    .assert_error(404, "AppNotFound", "");
  emu
    .send(
      "POST",
      &format!("{base}/auth/providers/local-userpass/register"),
      None,
      Some(r#"{"email":"a@b","password":"password1"}"#),
    )
    .await
    .assert_error(404, "AppNotFound", "");
  assert!(
    emu
      .emulator
      .control()
      .requests()
      .iter()
      .all(|r| r.status == 404)
  );
}

#[tokio::test]
async fn unknown_route_wrong_method_and_large_body() {
  let emu = start().await;
  emu
    .api("GET", "/nothing/here", None, None)
    .await
    .assert_error(404, "NotFound", "");
  emu
    .send("GET", "/", None, None)
    .await
    .assert_error(404, "NotFound", "");
  emu
    .api("GET", "/auth/api_keys/a/b", None, None)
    .await
    .assert_error(404, "NotFound", "");
  let r = emu.api("PATCH", "/auth/api_keys", None, None).await;
  r.assert_error(405, "MethodNotAllowed", "PATCH");
  assert_eq!(r.header("allow"), Some("GET, POST"));
  emu
    .app_api("GET", "/auth/providers/anon-user/login", None, None)
    .await
    .assert_error(405, "MethodNotAllowed", "");
  emu
    .api("POST", "/auth/profile", None, None)
    .await
    .assert_error(405, "MethodNotAllowed", "");
  let big = format!(r#"{{"name":"{}"}}"#, "x".repeat(1024 * 1024 + 10));
  emu
    .api("POST", "/auth/api_keys", None, Some(&big))
    .await
    .assert_error(413, "BadRequest", "larger");
}

#[tokio::test]
async fn anonymous_login_creates_a_user_each_time() {
  let emu = start().await;
  let a = emu
    .login(
      "anon-user",
      &json!({"provider": "anon-user", "options": {"device": {"sdk": "JS"}}}),
    )
    .await;
  let b = emu.login("anon-user", &json!({})).await;
  assert_ne!(a.user_id, b.user_id);
  for s in [&a, &b] {
    assert!(is_object_id(&s.user_id));
    assert!(is_object_id(&s.device_id));
  }
  // An empty body is fine too.
  let r = emu
    .app_api("POST", "/auth/providers/anon-user/login", None, None)
    .await;
  assert_eq!(r.status, 200);
  let profile = emu
    .api("GET", "/auth/profile", Some(&a.access), None)
    .await
    .json();
  assert_eq!(profile["identities"][0]["provider_type"], "anon-user");
  assert_eq!(profile["type"], "normal");
}

#[tokio::test]
async fn login_response_and_tokens() {
  let emu = start().await;
  let r = emu.login_raw("anon-user", &json!({})).await;
  assert_eq!(r.header("content-type"), Some("application/json"));
  let s = session_of(&r);
  let access = jwt_payload(&s.access);
  let refresh = jwt_payload(&s.refresh);
  assert_eq!(access["sub"], s.user_id.as_str());
  assert_eq!(access["baas_device_id"], s.device_id.as_str());
  assert_eq!(access["user_data"], json!({}));
  let (iat, exp) = (
    access["iat"].as_u64().unwrap(),
    access["exp"].as_u64().unwrap(),
  );
  assert_eq!(exp - iat, 1800);
  assert_eq!(refresh["sub"], s.user_id.as_str());
  assert_eq!(
    refresh["exp"].as_u64().unwrap() - refresh["iat"].as_u64().unwrap(),
    60 * 24 * 3600
  );
  // The header names HS256.
  let header = jwt_payload(&format!("x.{}.y", s.access.split('.').next().unwrap()));
  assert_eq!(header["alg"], "HS256");
}

#[tokio::test]
async fn token_lifetimes_are_configurable() {
  let emu = start_with(Config {
    access_token_ttl_secs: 60,
    refresh_token_ttl_secs: 120,
    ..Config::default()
  })
  .await;
  let s = emu.login("anon-user", &json!({})).await;
  let a = jwt_payload(&s.access);
  assert_eq!(a["exp"].as_u64().unwrap() - a["iat"].as_u64().unwrap(), 60);
  let r = jwt_payload(&s.refresh);
  assert_eq!(r["exp"].as_u64().unwrap() - r["iat"].as_u64().unwrap(), 120);
}

#[tokio::test]
async fn expired_access_token_by_ttl() {
  let emu = start_with(Config {
    access_token_ttl_secs: 0,
    ..Config::default()
  })
  .await;
  let s = emu.login("anon-user", &json!({})).await;
  emu
    .api("GET", "/auth/profile", Some(&s.access), None)
    .await
    .assert_error(401, "InvalidSession", "expired");
}

#[tokio::test]
async fn device_id_is_reused_when_given() {
  let emu = start().await;
  let oid = "5f0123456789abcdef012345";
  let s = emu
    .login(
      "anon-user",
      &json!({"options": {"device": {"deviceId": {"$oid": oid}}}}),
    )
    .await;
  assert_eq!(s.device_id, oid);
  assert_eq!(jwt_payload(&s.access)["baas_device_id"], oid);
}

#[tokio::test]
async fn email_password_login() {
  let emu = start().await;
  assert_eq!(
    emu.register("ada@example.com", "password1").await.status,
    201
  );
  let s = emu.login_email("ada@example.com", "password1").await;
  let again = emu.login_email("ada@example.com", "password1").await;
  assert_eq!(s.user_id, again.user_id);
  assert_ne!(s.refresh, again.refresh);
  emu
    .login_raw(
      "local-userpass",
      &json!({"username": "ada@example.com", "password": "wrong-password"}),
    )
    .await
    .assert_error(401, "InvalidPassword", "unauthorized");
  emu
    .login_raw(
      "local-userpass",
      &json!({"username": "nobody@example.com", "password": "password1"}),
    )
    .await
    .assert_error(401, "InvalidPassword", "unauthorized");
  let profile = emu
    .api("GET", "/auth/profile", Some(&s.access), None)
    .await
    .json();
  assert_eq!(profile["user_id"], s.user_id.as_str());
  assert!(is_object_id(profile["domain_id"].as_str().unwrap()));
  assert_eq!(profile["data"]["email"], "ada@example.com");
  assert_eq!(profile["type"], "normal");
  let identity = &profile["identities"][0];
  assert_eq!(identity["provider_type"], "local-userpass");
  assert!(identity["id"].is_string() && identity["provider_id"].is_string());
}

#[tokio::test]
async fn login_bad_bodies() {
  let emu = start().await;
  for (provider, body) in [
    ("local-userpass", "{broken"),
    ("local-userpass", r#"{"username": "a@b"}"#),
    (
      "local-userpass",
      r#"{"username": 1, "password": "password1"}"#,
    ),
    ("api-key", r#"{"key": 42}"#),
    ("api-key", "{}"),
    ("anon-user", "[1,2]"),
    ("anon-user", "nonsense"),
  ] {
    emu
      .app_api(
        "POST",
        &format!("/auth/providers/{provider}/login"),
        None,
        Some(body),
      )
      .await
      .assert_error(400, "BadRequest", "");
  }
}

#[tokio::test]
async fn unsupported_provider() {
  let emu = start().await;
  emu
    .login_raw("oauth2-google", &json!({"authCode": "x"}))
    .await
    .assert_error(401, "AuthProviderNotFound", "oauth2-google");
  // custom-token is off without a secret.
  emu
    .login_raw("custom-token", &json!({"token": "x"}))
    .await
    .assert_error(401, "AuthProviderNotFound", "custom-token");
}

fn custom_config() -> Config {
  Config {
    custom_token_secret: Some("jwt-secret".into()),
    ..Config::default()
  }
}

fn now() -> u64 {
  std::time::SystemTime::now()
    .duration_since(std::time::UNIX_EPOCH)
    .unwrap()
    .as_secs()
}

#[tokio::test]
async fn custom_token_login() {
  let emu = start_with(custom_config()).await;
  let token = sign_hs256(
    b"jwt-secret",
    &json!({"sub": "ext-42", "exp": now() + 60, "name": "Ext"}),
  );
  let s = emu
    .login(
      "custom-token",
      &json!({"provider": "custom-token", "token": token}),
    )
    .await;
  let again = emu.login("custom-token", &json!({"token": token})).await;
  assert_eq!(s.user_id, again.user_id);
  let profile = emu
    .api("GET", "/auth/profile", Some(&s.access), None)
    .await
    .json();
  assert_eq!(profile["identities"][0]["provider_type"], "custom-token");
  assert_eq!(profile["identities"][0]["id"], "ext-42");
  // Another subject is another user.
  let other = sign_hs256(b"jwt-secret", &json!({"sub": "ext-43", "exp": now() + 60}));
  assert_ne!(
    emu
      .login("custom-token", &json!({"token": other}))
      .await
      .user_id,
    s.user_id
  );
}

#[tokio::test]
async fn custom_token_metadata_fields_fill_the_profile() {
  let emu = start_with(Config {
    custom_token_metadata_fields: serde_json::from_value(json!([
      {"name": "id", "required": true},
      {"name": "license", "field_name": "license"},
      {"name": "org.team", "field_name": "team"},
      {"name": "absent"},
    ]))
    .unwrap(),
    ..custom_config()
  })
  .await;
  let token = |license: &str| {
    sign_hs256(
      b"jwt-secret",
      &json!({"sub": "meta-1", "exp": now() + 60, "id": "u-1", "license": license,
              "org": {"team": "blue"}, "unmapped": "x"}),
    )
  };
  let s = emu
    .login("custom-token", &json!({"token": token("gpl")}))
    .await;
  let emu = &emu;
  let data = |access: String| async move {
    emu
      .api("GET", "/auth/profile", Some(&access), None)
      .await
      .json()["data"]
      .clone()
  };
  assert_eq!(
    data(s.access.clone()).await,
    json!({"id": "u-1", "license": "gpl", "team": "blue"})
  );
  // Every login copies the claims again: the profile follows the token.
  let again = emu
    .login("custom-token", &json!({"token": token("mit")}))
    .await;
  assert_eq!(again.user_id, s.user_id);
  assert_eq!(data(again.access).await["license"], "mit");
  // A required claim that is missing refuses the login.
  let missing = sign_hs256(b"jwt-secret", &json!({"sub": "meta-2", "exp": now() + 60}));
  emu
    .login_raw("custom-token", &json!({"token": missing}))
    .await
    .assert_error(401, "AuthError", "required metadata field 'id'");
  // Linking a custom token adds its claims to the user's existing profile data.
  let email_user = emu.new_user("meta@example.com").await;
  let linked = sign_hs256(
    b"jwt-secret",
    &json!({"sub": "meta-3", "exp": now() + 60, "id": "u-3", "license": "bsd"}),
  );
  let r = link(
    emu,
    Some(&email_user.access),
    "custom-token",
    json!({ "token": linked }),
  )
  .await;
  assert_eq!(r.status, 200, "{}", r.text());
  assert_eq!(
    data(email_user.access.clone()).await,
    json!({"email": "meta@example.com", "id": "u-3", "license": "bsd"})
  );
}

#[tokio::test]
async fn custom_token_rejections() {
  let emu = start_with(custom_config()).await;
  let bad_sig = sign_hs256(b"not-the-secret", &json!({"sub": "x", "exp": now() + 60}));
  emu
    .login_raw("custom-token", &json!({"token": bad_sig}))
    .await
    .assert_error(401, "AuthError", "signature");
  let expired = sign_hs256(b"jwt-secret", &json!({"sub": "x", "exp": now() - 10}));
  emu
    .login_raw("custom-token", &json!({"token": expired}))
    .await
    .assert_error(401, "AuthError", "expired");
  let no_sub = sign_hs256(b"jwt-secret", &json!({"exp": now() + 60}));
  emu
    .login_raw("custom-token", &json!({"token": no_sub}))
    .await
    .assert_error(401, "AuthError", "sub");
  emu
    .login_raw("custom-token", &json!({"token": "not.a.jwt"}))
    .await
    .assert_error(401, "AuthError", "");
  emu
    .login_raw("custom-token", &json!({}))
    .await
    .assert_error(400, "BadRequest", "token");
}

#[tokio::test]
async fn custom_function_login() {
  let emu = start().await;
  let s = emu
    .login("custom-function", &json!({"id": "fn-user", "other": 1}))
    .await;
  let again = emu
    .login("custom-function", &json!({"id": "fn-user"}))
    .await;
  assert_eq!(s.user_id, again.user_id);
  let profile = emu
    .api("GET", "/auth/profile", Some(&s.access), None)
    .await
    .json();
  assert_eq!(profile["identities"][0]["provider_type"], "custom-function");
  assert_eq!(profile["identities"][0]["id"], "fn-user");
  for body in [json!({}), json!({"id": ""}), json!({"id": 7})] {
    emu
      .login_raw("custom-function", &body)
      .await
      .assert_error(401, "AuthError", "'id'");
  }
}

#[tokio::test]
async fn custom_function_identity_field_is_configurable() {
  let emu = start_with(Config {
    function_identity_field: "userId".into(),
    ..Config::default()
  })
  .await;
  let s = emu
    .login("custom-function", &json!({"userId": "u-1"}))
    .await;
  assert!(is_object_id(&s.user_id));
  emu
    .login_raw("custom-function", &json!({"id": "u-1"}))
    .await
    .assert_error(401, "AuthError", "userId");
}

async fn link(emu: &Emu, access: Option<&str>, provider: &str, body: Value) -> Resp {
  emu
    .app_api(
      "POST",
      &format!("/auth/providers/{provider}/login?link=true"),
      access,
      Some(&body.to_string()),
    )
    .await
}

#[tokio::test]
async fn link_email_to_anonymous_user() {
  let emu = start().await;
  let anon = emu.login("anon-user", &json!({})).await;
  assert_eq!(
    emu.register("link@example.com", "password1").await.status,
    201
  );
  let r = link(
    &emu,
    Some(&anon.access),
    "local-userpass",
    json!({"username": "link@example.com", "password": "password1"}),
  )
  .await;
  assert_eq!(r.status, 200, "{}", r.text());
  let v = r.json();
  assert_eq!(v["user_id"], anon.user_id.as_str());
  assert!(v["access_token"].is_string());
  let profile = emu
    .api(
      "GET",
      "/auth/profile",
      Some(v["access_token"].as_str().unwrap()),
      None,
    )
    .await
    .json();
  let providers: Vec<&str> = profile["identities"]
    .as_array()
    .unwrap()
    .iter()
    .map(|i| i["provider_type"].as_str().unwrap())
    .collect();
  assert_eq!(providers, ["anon-user", "local-userpass"]);
  assert_eq!(profile["data"]["email"], "link@example.com");
  // Logging in with the email now yields the linked user.
  assert_eq!(
    emu
      .login_email("link@example.com", "password1")
      .await
      .user_id,
    anon.user_id
  );
  // The original refresh token still works.
  assert_eq!(
    emu
      .api("POST", "/auth/session", Some(&anon.refresh), None)
      .await
      .status,
    201
  );
}

#[tokio::test]
async fn link_custom_function_identity() {
  let emu = start().await;
  let user = emu.new_user("fnlink@example.com").await;
  let r = link(
    &emu,
    Some(&user.access),
    "custom-function",
    json!({"id": "ext"}),
  )
  .await;
  assert_eq!(r.json()["user_id"], user.user_id.as_str());
  assert_eq!(
    emu
      .login("custom-function", &json!({"id": "ext"}))
      .await
      .user_id,
    user.user_id
  );
  // Linking the same identity again to the same user is fine.
  assert_eq!(
    link(
      &emu,
      Some(&user.access),
      "custom-function",
      json!({"id": "ext"})
    )
    .await
    .status,
    200
  );
}

#[tokio::test]
async fn link_rejections() {
  let emu = start().await;
  let a = emu.new_user("a@example.com").await;
  let b = emu.new_user("b@example.com").await;
  // The identity belongs to another user.
  link(
    &emu,
    Some(&b.access),
    "local-userpass",
    json!({"username": "a@example.com", "password": "password1"}),
  )
  .await
  .assert_error(409, "AccountNameInUse", "already exists");
  // Without a token, with a refresh token, with bad credentials.
  link(
    &emu,
    None,
    "local-userpass",
    json!({"username": "a@example.com", "password": "password1"}),
  )
  .await
  .assert_error(401, "MissingAuthReq", "must authenticate first");
  link(
    &emu,
    Some(&a.refresh),
    "custom-function",
    json!({"id": "z"}),
  )
  .await
  .assert_error(401, "InvalidSession", "access token");
  link(
    &emu,
    Some(&a.access),
    "local-userpass",
    json!({"username": "a@example.com", "password": "nope-nope"}),
  )
  .await
  .assert_error(401, "InvalidPassword", "unauthorized");
  // Anonymous identities cannot be linked.
  link(&emu, Some(&a.access), "anon-user", json!({}))
    .await
    .assert_error(400, "LinkingNotSupported", "anonymous");
  // Another user's API key.
  let key = emu.create_key(&a.refresh, "k").await.json();
  link(&emu, Some(&b.access), "api-key", json!({"key": key["key"]}))
    .await
    .assert_error(409, "AccountNameInUse", "");
}

#[tokio::test]
async fn refresh_session() {
  let emu = start().await;
  let s = emu.new_user("refresh@example.com").await;
  let r = emu
    .api("POST", "/auth/session", Some(&s.refresh), None)
    .await;
  assert!(matches!(r.status, 200 | 201));
  assert_eq!(r.header("content-type"), Some("application/json"));
  let access = r.json()["access_token"].as_str().unwrap().to_string();
  assert_eq!(jwt_payload(&access)["sub"], s.user_id.as_str());
  assert_eq!(jwt_payload(&access)["baas_device_id"], s.device_id.as_str());
  assert_eq!(
    emu
      .api("GET", "/auth/profile", Some(&access), None)
      .await
      .status,
    200
  );
  // Access tokens cannot refresh; profile needs an access token.
  emu
    .api("POST", "/auth/session", Some(&s.access), None)
    .await
    .assert_error(401, "InvalidSession", "refresh token");
  emu
    .api("GET", "/auth/profile", Some(&s.refresh), None)
    .await
    .assert_error(401, "InvalidSession", "access token");
  emu
    .api("POST", "/auth/session", None, None)
    .await
    .assert_error(401, "MissingAuthReq", "must authenticate first");
}

#[tokio::test]
async fn logout_ends_the_session() {
  let emu = start().await;
  let s = emu.new_user("logout@example.com").await;
  let other = emu.login_email("logout@example.com", "password1").await;
  let r = emu
    .api("DELETE", "/auth/session", Some(&s.refresh), None)
    .await;
  assert!(
    r.status == 204 || (r.status == 200 && r.body.is_empty()),
    "{}",
    r.status
  );
  emu
    .api("POST", "/auth/session", Some(&s.refresh), None)
    .await
    .assert_error(401, "InvalidSession", "failed to find refresh token");
  emu
    .api("GET", "/auth/profile", Some(&s.access), None)
    .await
    .assert_error(401, "InvalidSession", "invalid session");
  emu
    .api("DELETE", "/auth/session", Some(&s.refresh), None)
    .await
    .assert_error(401, "InvalidSession", "");
  // Other sessions of the user live on.
  assert_eq!(
    emu
      .api("GET", "/auth/profile", Some(&other.access), None)
      .await
      .status,
    200
  );
}

#[tokio::test]
async fn delete_user() {
  let emu = start().await;
  let s = emu.new_user("gone@example.com").await;
  let second = emu.login_email("gone@example.com", "password1").await;
  let key = emu.create_key(&s.refresh, "k").await.json();
  emu
    .api("DELETE", "/auth/delete", Some(&s.refresh), None)
    .await
    .assert_error(401, "InvalidSession", "access token");
  emu
    .api("DELETE", "/auth/delete", Some(&s.access), None)
    .await
    .assert_empty(204);
  for token in [&s.access, &second.access] {
    emu
      .api("GET", "/auth/profile", Some(token), None)
      .await
      .assert_error(401, "InvalidSession", "");
  }
  emu
    .api("GET", "/auth/api_keys", Some(&second.refresh), None)
    .await
    .assert_error(401, "InvalidSession", "");
  emu
    .login_raw("api-key", &json!({"key": key["key"]}))
    .await
    .assert_error(401, "AuthError", "invalid API key");
  emu
    .login_raw(
      "local-userpass",
      &json!({"username": "gone@example.com", "password": "password1"}),
    )
    .await
    .assert_error(401, "InvalidPassword", "unauthorized");
  // The email is free again: a new registration makes a new user.
  let fresh = emu.new_user("gone@example.com").await;
  assert_ne!(fresh.user_id, s.user_id);
}

#[tokio::test]
async fn expire_access_tokens() {
  let emu = start().await;
  let s = emu.new_user("expire@example.com").await;
  assert_eq!(
    emu
      .api("GET", "/auth/profile", Some(&s.access), None)
      .await
      .status,
    200
  );
  emu.emulator.control().expire_access_tokens();
  emu
    .api("GET", "/auth/profile", Some(&s.access), None)
    .await
    .assert_error(401, "InvalidSession", "expired");
  // The refresh token still works and yields a working access token.
  let r = emu
    .api("POST", "/auth/session", Some(&s.refresh), None)
    .await;
  let access = r.json()["access_token"].as_str().unwrap().to_string();
  assert_eq!(
    emu
      .api("GET", "/auth/profile", Some(&access), None)
      .await
      .status,
    200
  );
  assert_eq!(
    emu
      .api("GET", "/auth/api_keys", Some(&s.refresh), None)
      .await
      .status,
    200
  );
}

#[tokio::test]
async fn revoke_sessions() {
  let emu = start().await;
  let s = emu.new_user("revoke@example.com").await;
  let s2 = emu.login_email("revoke@example.com", "password1").await;
  let bystander = emu.new_user("bystander@example.com").await;
  emu.emulator.control().revoke_sessions(&s.user_id).unwrap();
  for sess in [&s, &s2] {
    emu
      .api("GET", "/auth/profile", Some(&sess.access), None)
      .await
      .assert_error(401, "InvalidSession", "");
    emu
      .api("POST", "/auth/session", Some(&sess.refresh), None)
      .await
      .assert_error(401, "InvalidSession", "");
    emu
      .api("GET", "/auth/api_keys", Some(&sess.refresh), None)
      .await
      .assert_error(401, "InvalidSession", "");
  }
  assert_eq!(
    emu
      .api("GET", "/auth/profile", Some(&bystander.access), None)
      .await
      .status,
    200
  );
  // The user can log in again.
  assert_eq!(
    emu
      .login_email("revoke@example.com", "password1")
      .await
      .user_id,
    s.user_id
  );
  assert!(
    emu
      .emulator
      .control()
      .revoke_sessions("0123456789abcdef01234567")
      .is_err()
  );
}

#[tokio::test]
async fn custom_data_in_new_access_tokens() {
  let emu = start().await;
  let s = emu.new_user("data@example.com").await;
  emu
    .emulator
    .control()
    .set_custom_data(&s.user_id, json!({"plan": "pro", "n": 3}))
    .unwrap();
  let r = emu
    .api("POST", "/auth/session", Some(&s.refresh), None)
    .await;
  let access = r.json()["access_token"].as_str().unwrap().to_string();
  assert_eq!(
    jwt_payload(&access)["user_data"],
    json!({"plan": "pro", "n": 3})
  );
  let again = emu.login_email("data@example.com", "password1").await;
  assert_eq!(jwt_payload(&again.access)["user_data"]["plan"], "pro");
  assert!(
    emu
      .emulator
      .control()
      .set_custom_data(&s.user_id, json!([1]))
      .is_err()
  );
}

#[tokio::test]
async fn error_content_type_is_exactly_application_json() {
  let emu = start().await;
  let r = emu.api("GET", "/auth/api_keys", None, None).await;
  assert_eq!(r.header("content-type"), Some("application/json"));
  let v = r.json();
  let keys: Vec<&String> = v.as_object().unwrap().keys().collect();
  assert_eq!(keys, ["error", "error_code", "link"]);
}

/// `serve`'s production defaults: the providers a config lists, and no reset function.
#[tokio::test]
async fn only_the_listed_providers_log_in_and_production_has_no_reset_function() {
  let emu = start_with(Config {
    providers: Some(vec!["local-userpass".into(), "api-key".into()]),
    control_api: false,
    ..Config::default()
  })
  .await;
  for (provider, body) in [
    ("anon-user", json!({})),
    ("custom-function", json!({"id": "anyone"})),
  ] {
    let r = emu.login_raw(provider, &body).await;
    assert_eq!(r.status, 401, "{provider}: {}", r.text());
    assert_eq!(r.json()["error_code"], "AuthProviderNotFound");
  }
  emu
    .register("listed@example.com", "password1")
    .await
    .assert_empty(201);
  emu.login_email("listed@example.com", "password1").await;
  // The emulator's reset function approves every request: in production, nobody's password
  // may be set that way.
  let r = emu
    .app_api(
      "POST",
      "/auth/providers/local-userpass/reset/call",
      None,
      Some(
        &json!({"email": "listed@example.com", "password": "hijacked1", "arguments": []})
          .to_string(),
      ),
    )
    .await;
  assert_eq!(r.status, 400, "{}", r.text());
  assert!(r.text().contains("not available on this server"));
  emu.login_email("listed@example.com", "password1").await;
  let config = Config {
    providers: Some(vec!["local-userpass".into(), "google".into()]),
    ..Config::default()
  };
  let err = realm_auth_server::Emulator::start(config)
    .await
    .unwrap_err();
  assert!(
    err.to_string().contains("unknown login provider 'google'"),
    "{err}"
  );
}

//! Several app ids on one server: each app has its own users, keys and sessions; a token works
//! only in its own app. Runs on the store `REALM_AUTH_TEST_STORE` names.

mod common;

use common::*;
use realm_auth_server::{Config, Emulator};
use serde_json::json;

const SECOND: &str = "second-app";

async fn two_apps() -> Emu {
  start_with(Config {
    app_ids: vec![SECOND.into()],
    ..Config::default()
  })
  .await
}

async fn in_app(emu: &Emu, app: &str, route: &str, body: serde_json::Value) -> Resp {
  emu
    .api(
      "POST",
      &format!("/app/{app}{route}"),
      None,
      Some(&body.to_string()),
    )
    .await
}

#[tokio::test]
async fn apps_keep_their_own_users_keys_and_sessions() {
  let emu = two_apps().await;
  let first = emu.new_user("same@example.com").await;
  // The same email is a different account in the second app.
  in_app(
    &emu,
    SECOND,
    "/auth/providers/local-userpass/register",
    json!({"email": "same@example.com", "password": "password2"}),
  )
  .await
  .assert_empty(201);
  let login =
    |password: &'static str| json!({"username": "same@example.com", "password": password});
  in_app(
    &emu,
    SECOND,
    "/auth/providers/local-userpass/login",
    login("password1"),
  )
  .await
  .assert_error(401, "InvalidPassword", "unauthorized");
  let r = in_app(
    &emu,
    SECOND,
    "/auth/providers/local-userpass/login",
    login("password2"),
  )
  .await;
  assert_eq!(r.status, 200, "{}", r.text());
  let second = session_of(&r);
  assert_ne!(second.user_id, first.user_id);
  assert_eq!(jwt_payload(&second.refresh)["app"], SECOND);
  assert!(jwt_payload(&first.refresh).get("app").is_none());

  // Tokens work on the app-less routes, each in its own app.
  let profile = emu
    .api("GET", "/auth/profile", Some(&second.access), None)
    .await
    .json();
  assert_eq!(profile["user_id"], second.user_id.as_str());
  let key = emu.create_key(&second.refresh, "k").await.json();
  let secret = key["key"].as_str().unwrap();
  assert_eq!(
    emu
      .api("GET", "/auth/api_keys", Some(&first.refresh), None)
      .await
      .json(),
    json!([])
  );
  let refreshed = emu
    .api("POST", "/auth/session", Some(&second.refresh), None)
    .await
    .json();
  assert_eq!(
    jwt_payload(refreshed["access_token"].as_str().unwrap())["app"],
    SECOND
  );

  // A key logs in only to its own app.
  emu
    .login_raw("api-key", &json!({"key": secret}))
    .await
    .assert_error(401, "AuthError", "invalid API key");
  let r = in_app(
    &emu,
    SECOND,
    "/auth/providers/api-key/login",
    json!({"key": secret}),
  )
  .await;
  assert_eq!(r.status, 200, "{}", r.text());
  assert_eq!(session_of(&r).user_id, second.user_id);

  // Linking with a token of another app is refused.
  let link = emu
    .send(
      "POST",
      &format!(
        "{BASE}/app/{}/auth/providers/anon-user/login?link=true",
        emu.app
      ),
      Some(&second.access),
      Some("{}"),
    )
    .await;
  link.assert_error(401, "InvalidSession", "another app");

  // The control API works on the first app only.
  let users = emu.emulator.control().users();
  assert_eq!(users.len(), 1);
  assert_eq!(users[0].id, first.user_id);
  emu.emulator.control().expire_access_tokens();
  assert_eq!(
    emu
      .api("GET", "/auth/profile", Some(&second.access), None)
      .await
      .status,
    200
  );
  emu
    .api("GET", "/auth/profile", Some(&first.access), None)
    .await
    .assert_error(401, "InvalidSession", "token expired");

  in_app(
    &emu,
    "third-app",
    "/auth/providers/anon-user/login",
    json!({}),
  )
  .await
  .assert_error(404, "AppNotFound", "third-app");
}

#[tokio::test]
async fn app_ids_are_checked() {
  for (app_ids, data_file, why) in [
    (vec!["a/b".to_string()], None, "no '/'"),
    (vec![String::new()], None, "non-empty"),
    (
      vec![SECOND.to_string()],
      Some(std::env::temp_dir().join("never-written-apps.json")),
      "one app",
    ),
  ] {
    let err = Emulator::start(Config {
      app_ids,
      data_file,
      ..Config::default()
    })
    .await
    .unwrap_err();
    assert!(err.to_string().contains(why), "{err}");
  }
}

//! The email/password provider: registration, confirmation and password reset flows.

mod common;

use common::*;
use realm_auth_server::Config;
use serde_json::json;

async fn post(emu: &Emu, route: &str, body: serde_json::Value) -> Resp {
  emu
    .app_api(
      "POST",
      &format!("/auth/providers/local-userpass/{route}"),
      None,
      Some(&body.to_string()),
    )
    .await
}

#[tokio::test]
async fn register_rules() {
  let emu = start().await;
  emu
    .register("reg@example.com", "password1")
    .await
    .assert_empty(201);
  emu
    .register("reg@example.com", "password2")
    .await
    .assert_error(409, "AccountNameInUse", "name already in use");
  emu
    .register("short@example.com", "12345")
    .await
    .assert_error(400, "BadRequest", "password");
  emu
    .register("long@example.com", &"x".repeat(129))
    .await
    .assert_error(400, "BadRequest", "password");
  emu
    .register("six@example.com", "123456")
    .await
    .assert_empty(201);
  emu
    .register("max@example.com", &"x".repeat(128))
    .await
    .assert_empty(201);
  emu
    .register("", "password1")
    .await
    .assert_error(400, "BadRequest", "email");
  // A NUL character: refused by every store alike (PostgreSQL could not store it), and a login
  // with one finds no account rather than failing.
  emu
    .register("nul\u{0}@example.com", "password1")
    .await
    .assert_error(400, "BadRequest", "NUL");
  emu
    .login_raw(
      "local-userpass",
      &json!({"username": "nul\u{0}@example.com", "password": "password1"}),
    )
    .await
    .assert_error(401, "InvalidPassword", "");
  post(&emu, "register", json!({"email": "a@b.c"}))
    .await
    .assert_error(400, "BadRequest", "password");
  post(
    &emu,
    "register",
    json!({"email": 5, "password": "password1"}),
  )
  .await
  .assert_error(400, "BadRequest", "email");
  emu
    .app_api(
      "POST",
      "/auth/providers/local-userpass/register",
      None,
      Some("{oops"),
    )
    .await
    .assert_error(400, "BadRequest", "JSON");
}

#[tokio::test]
async fn auto_confirmed_by_default() {
  let emu = start().await;
  emu
    .register("auto@example.com", "password1")
    .await
    .assert_empty(201);
  assert!(
    emu
      .emulator
      .control()
      .pending_confirmation("auto@example.com")
      .is_none()
  );
  emu.login_email("auto@example.com", "password1").await;
  post(&emu, "confirm/send", json!({"email": "auto@example.com"}))
    .await
    .assert_error(409, "UserAlreadyConfirmed", "already confirmed");
  // The real server refuses to run the confirmation function of an app that confirms
  // automatically (realm-swift's email/password test pins the message).
  post(&emu, "confirm/call", json!({"email": "auto@example.com"}))
    .await
    .assert_error(
      400,
      "AutomaticConfirmationEnabled",
      "cannot run confirmation for auto@example.com: automatic confirmation is enabled",
    );
  post(&emu, "confirm/call", json!({"email": "nobody@example.com"}))
    .await
    .assert_error(404, "UserNotFound", "user not found");
}

#[tokio::test]
async fn confirmation_flow() {
  let emu = start_with(Config {
    require_email_confirmation: true,
    ..Config::default()
  })
  .await;
  let control = emu.emulator.control();
  emu
    .register("pending@example.com", "password1")
    .await
    .assert_empty(201);
  emu
    .login_raw(
      "local-userpass",
      &json!({"username": "pending@example.com", "password": "password1"}),
    )
    .await
    .assert_error(401, "AuthError", "confirmation required");
  // Wrong password still says unauthorized, not "confirmation required".
  emu
    .login_raw(
      "local-userpass",
      &json!({"username": "pending@example.com", "password": "password2"}),
    )
    .await
    .assert_error(401, "InvalidPassword", "unauthorized");
  let first = control.pending_confirmation("pending@example.com").unwrap();
  // Resend replaces the tokens.
  post(
    &emu,
    "confirm/send",
    json!({"email": "pending@example.com"}),
  )
  .await
  .assert_empty(204);
  let second = control.pending_confirmation("pending@example.com").unwrap();
  assert_ne!(first, second);
  post(
    &emu,
    "confirm",
    json!({"token": first.token, "tokenId": first.token_id}),
  )
  .await
  .assert_error(400, "UserpassTokenInvalid", "invalid token data");
  post(
    &emu,
    "confirm",
    json!({"token": "nope", "tokenId": second.token_id}),
  )
  .await
  .assert_error(400, "UserpassTokenInvalid", "invalid token data");
  post(&emu, "confirm", json!({"token": second.token}))
    .await
    .assert_error(400, "BadRequest", "tokenId");
  post(
    &emu,
    "confirm",
    json!({"token": second.token, "tokenId": second.token_id}),
  )
  .await
  .assert_empty(204);
  assert!(
    control
      .pending_confirmation("pending@example.com")
      .is_none()
  );
  emu.login_email("pending@example.com", "password1").await;
  post(&emu, "confirm/send", json!({"email": "nobody@example.com"}))
    .await
    .assert_error(404, "UserNotFound", "user not found");
  // Users made through the control API are confirmed.
  control
    .create_user("made@example.com", "password1")
    .unwrap();
  emu.login_email("made@example.com", "password1").await;
}

#[tokio::test]
async fn confirmation_function_call() {
  let emu = start_with(Config {
    require_email_confirmation: true,
    ..Config::default()
  })
  .await;
  emu
    .register("call@example.com", "password1")
    .await
    .assert_empty(201);
  post(
    &emu,
    "confirm/call",
    // realm v12's shape: only the email.
    json!({"email": "call@example.com"}),
  )
  .await
  .assert_empty(204);
  let pair = emu
    .emulator
    .control()
    .pending_confirmation("call@example.com")
    .unwrap();
  post(
    &emu,
    "confirm/call",
    json!({"email": "call@example.com", "password": "password1", "arguments": 3}),
  )
  .await
  .assert_error(400, "BadRequest", "arguments");
  post(
    &emu,
    "confirm",
    json!({"token": pair.token, "tokenId": pair.token_id}),
  )
  .await
  .assert_empty(204);
  emu.login_email("call@example.com", "password1").await;
}

#[tokio::test]
async fn reset_flow() {
  let emu = start().await;
  let control = emu.emulator.control();
  let user = emu.new_user("reset@example.com").await;
  assert!(control.pending_reset("reset@example.com").is_none());
  post(&emu, "reset/send", json!({"email": "reset@example.com"}))
    .await
    .assert_empty(204);
  post(&emu, "reset/send", json!({"email": "nobody@example.com"}))
    .await
    .assert_error(404, "UserNotFound", "user not found");
  let pair = control.pending_reset("reset@example.com").unwrap();
  post(
    &emu,
    "reset",
    json!({"token": "bad", "tokenId": pair.token_id, "password": "newpassword"}),
  )
  .await
  .assert_error(400, "UserpassTokenInvalid", "invalid token data");
  post(
    &emu,
    "reset",
    json!({"token": pair.token, "tokenId": pair.token_id, "password": "short"}),
  )
  .await
  .assert_error(400, "BadRequest", "password");
  post(
    &emu,
    "reset",
    json!({"token": pair.token, "tokenId": pair.token_id, "password": "newpassword"}),
  )
  .await
  .assert_empty(204);
  assert!(control.pending_reset("reset@example.com").is_none());
  emu
    .login_raw(
      "local-userpass",
      &json!({"username": "reset@example.com", "password": "password1"}),
    )
    .await
    .assert_error(401, "InvalidPassword", "unauthorized");
  assert_eq!(
    emu
      .login_email("reset@example.com", "newpassword")
      .await
      .user_id,
    user.user_id
  );
  // Tokens are single-use.
  post(
    &emu,
    "reset",
    json!({"token": pair.token, "tokenId": pair.token_id, "password": "another1"}),
  )
  .await
  .assert_error(400, "UserpassTokenInvalid", "");
}

#[tokio::test]
async fn reset_function_call() {
  let emu = start().await;
  let user = emu.new_user("resetcall@example.com").await;
  post(
    &emu,
    "reset/call",
    json!({"email": "resetcall@example.com", "password": "changed1", "arguments": ["x"]}),
  )
  .await
  .assert_empty(204);
  assert_eq!(
    emu
      .login_email("resetcall@example.com", "changed1")
      .await
      .user_id,
    user.user_id
  );
  post(
    &emu,
    "reset/call",
    json!({"email": "nobody@example.com", "password": "changed1", "arguments": []}),
  )
  .await
  .assert_error(404, "UserNotFound", "");
  post(
    &emu,
    "reset/call",
    json!({"email": "resetcall@example.com", "password": "x", "arguments": []}),
  )
  .await
  .assert_error(400, "BadRequest", "password");
  post(
    &emu,
    "reset/call",
    json!({"email": "resetcall@example.com", "arguments": []}),
  )
  .await
  .assert_error(400, "BadRequest", "password");
}

#[tokio::test]
async fn password_iterations_are_configurable() {
  let emu = start_with(Config {
    password_iterations: 25_000,
    ..Config::default()
  })
  .await;
  // Above the inline threshold: hashed on the blocking pool, same result.
  emu.new_user("slow@example.com").await;
  emu
    .login_raw(
      "local-userpass",
      &json!({"username": "slow@example.com", "password": "password2"}),
    )
    .await
    .assert_error(401, "InvalidPassword", "unauthorized");
}

//! The email/password provider's account routes (register, confirm, reset).

use http::Method;
use serde_json::{Value, json};

use crate::app::{App, Route};
use crate::error::{Error, Result};

/// realm v12's `EmailPasswordAuth`: account management for `local-userpass`.
/// None of these calls is authenticated.
#[derive(Clone)]
pub struct EmailPasswordAuth {
  pub(crate) app: App,
}

fn non_empty(what: &str, value: &str) -> Result<()> {
  if value.is_empty() {
    return Err(Error::invalid_argument(format!(
      "Expected '{what}' to be a non-empty string"
    )));
  }
  Ok(())
}

impl EmailPasswordAuth {
  /// The App these calls go to.
  pub fn app(&self) -> &App {
    &self.app
  }

  async fn post(&self, path: &str, body: Value) -> Result<()> {
    let path = format!("auth/providers/local-userpass/{path}");
    self
      .app
      .inner
      .request(Method::POST, Route::App(&path), None, Some(body))
      .await
      .map(drop)
  }

  /// Registers a new user (`register`).
  pub async fn register_user(&self, email: &str, password: &str) -> Result<()> {
    non_empty("email", email)?;
    non_empty("password", password)?;
    self
      .post("register", json!({ "email": email, "password": password }))
      .await
  }

  /// Confirms a user with the token pair from the confirmation email (`confirm`).
  pub async fn confirm_user(&self, token: &str, token_id: &str) -> Result<()> {
    non_empty("token", token)?;
    non_empty("tokenId", token_id)?;
    self
      .post("confirm", json!({ "token": token, "tokenId": token_id }))
      .await
  }

  /// Sends the confirmation email again (`confirm/send`).
  pub async fn resend_confirmation_email(&self, email: &str) -> Result<()> {
    non_empty("email", email)?;
    self.post("confirm/send", json!({ "email": email })).await
  }

  /// Runs the custom confirmation function again (`confirm/call`).
  pub async fn retry_custom_confirmation(&self, email: &str) -> Result<()> {
    non_empty("email", email)?;
    self.post("confirm/call", json!({ "email": email })).await
  }

  /// Sends a password reset email (`reset/send`).
  pub async fn send_reset_password_email(&self, email: &str) -> Result<()> {
    non_empty("email", email)?;
    self.post("reset/send", json!({ "email": email })).await
  }

  /// Sets a new password with the token pair from the reset email (`reset`).
  pub async fn reset_password(&self, token: &str, token_id: &str, password: &str) -> Result<()> {
    non_empty("token", token)?;
    non_empty("tokenId", token_id)?;
    non_empty("password", password)?;
    self
      .post(
        "reset",
        json!({ "token": token, "tokenId": token_id, "password": password }),
      )
      .await
  }

  /// Runs the custom reset function with `args` (`reset/call`).
  pub async fn call_reset_password_function(
    &self,
    email: &str,
    password: &str,
    args: Vec<Value>,
  ) -> Result<()> {
    non_empty("email", email)?;
    non_empty("password", password)?;
    self
      .post(
        "reset/call",
        json!({ "email": email, "password": password, "arguments": args }),
      )
      .await
  }
}

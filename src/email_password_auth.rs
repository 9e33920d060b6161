//! `EmailPasswordAuth` (`app.emailPasswordAuth`): account routes of the
//! email/password provider.

use napi::bindgen_prelude::*;
use napi_derive::napi;
use realm_auth_client as client;
use serde_json::Value;

use crate::js_error::void_promise;

/// `{ email, password }` for `registerUser` and `callResetPasswordFunction`.
#[napi(object)]
pub struct RegisterUserDetails {
  /// The user's email.
  pub email: String,
  /// The user's password.
  pub password: String,
}

/// `{ token, tokenId }` from a confirmation email.
#[napi(object)]
pub struct ConfirmUserDetails {
  /// The confirmation token.
  pub token: String,
  /// The confirmation token id.
  pub token_id: String,
}

/// `{ email }`.
#[napi(object)]
pub struct EmailDetails {
  /// The user's email.
  pub email: String,
}

/// `{ password, token, tokenId }` from a password reset email.
#[napi(object)]
pub struct ResetPasswordDetails {
  /// The new password.
  pub password: String,
  /// The reset token.
  pub token: String,
  /// The reset token id.
  pub token_id: String,
}

/// Account management for the email/password provider. None of these calls
/// needs a logged-in user. Exported as `Auth.EmailPasswordAuth` too.
#[napi]
pub struct EmailPasswordAuth {
  inner: client::EmailPasswordAuth,
}

impl EmailPasswordAuth {
  pub(crate) fn new(inner: client::EmailPasswordAuth) -> EmailPasswordAuth {
    EmailPasswordAuth { inner }
  }
}

#[napi]
impl EmailPasswordAuth {
  /// Registers a new user.
  #[napi(ts_return_type = "Promise<void>")]
  pub fn register_user<'env>(
    &self,
    env: &'env Env,
    details: RegisterUserDetails,
  ) -> Result<PromiseRaw<'env, ()>> {
    let auth = self.inner.clone();
    void_promise(env, async move {
      auth.register_user(&details.email, &details.password).await
    })
  }

  /// Confirms a user with the token pair from the confirmation email.
  #[napi(ts_return_type = "Promise<void>")]
  pub fn confirm_user<'env>(
    &self,
    env: &'env Env,
    details: ConfirmUserDetails,
  ) -> Result<PromiseRaw<'env, ()>> {
    let auth = self.inner.clone();
    void_promise(env, async move {
      auth.confirm_user(&details.token, &details.token_id).await
    })
  }

  /// Sends the confirmation email again.
  #[napi(ts_return_type = "Promise<void>")]
  pub fn resend_confirmation_email<'env>(
    &self,
    env: &'env Env,
    details: EmailDetails,
  ) -> Result<PromiseRaw<'env, ()>> {
    let auth = self.inner.clone();
    void_promise(env, async move {
      auth.resend_confirmation_email(&details.email).await
    })
  }

  /// Runs the custom confirmation function again.
  #[napi(ts_return_type = "Promise<void>")]
  pub fn retry_custom_confirmation<'env>(
    &self,
    env: &'env Env,
    details: EmailDetails,
  ) -> Result<PromiseRaw<'env, ()>> {
    let auth = self.inner.clone();
    void_promise(env, async move {
      auth.retry_custom_confirmation(&details.email).await
    })
  }

  /// Sends a password reset email.
  #[napi(ts_return_type = "Promise<void>")]
  pub fn send_reset_password_email<'env>(
    &self,
    env: &'env Env,
    details: EmailDetails,
  ) -> Result<PromiseRaw<'env, ()>> {
    let auth = self.inner.clone();
    void_promise(env, async move {
      auth.send_reset_password_email(&details.email).await
    })
  }

  /// Sets a new password with the token pair from the reset email.
  #[napi(ts_return_type = "Promise<void>")]
  pub fn reset_password<'env>(
    &self,
    env: &'env Env,
    details: ResetPasswordDetails,
  ) -> Result<PromiseRaw<'env, ()>> {
    let auth = self.inner.clone();
    void_promise(env, async move {
      auth
        .reset_password(&details.token, &details.token_id, &details.password)
        .await
    })
  }

  /// Runs the server's custom reset function with the extra arguments given
  /// (up to eight; each must be JSON-serialisable).
  #[napi(
    ts_args_type = "details: { email: string; password: string }, ...args: unknown[]",
    ts_return_type = "Promise<void>"
  )]
  #[allow(clippy::too_many_arguments)]
  pub fn call_reset_password_function<'env>(
    &self,
    env: &'env Env,
    details: RegisterUserDetails,
    a0: Option<Value>,
    a1: Option<Value>,
    a2: Option<Value>,
    a3: Option<Value>,
    a4: Option<Value>,
    a5: Option<Value>,
    a6: Option<Value>,
    a7: Option<Value>,
  ) -> Result<PromiseRaw<'env, ()>> {
    // napi cannot tell a missing argument from `undefined`: keep up to the
    // last given one, with `undefined` holes as `null` (what JSON makes of them).
    let mut args: Vec<Value> = [a0, a1, a2, a3, a4, a5, a6, a7]
      .into_iter()
      .map(Option::unwrap_or_default)
      .collect();
    while args.last() == Some(&Value::Null) {
      args.pop();
    }
    let auth = self.inner.clone();
    void_promise(env, async move {
      auth
        .call_reset_password_function(&details.email, &details.password, args)
        .await
    })
  }
}

//! `EmailPasswordAuth` (`app.emailPasswordAuth`): account routes of the
//! email/password provider.

use napi::bindgen_prelude::*;
use napi_derive::napi;
use realm_auth_client as client;
use serde_json::Value;

use crate::call::{self, Call, run_void};

/// Reads the named string fields of a details object.
fn details<const N: usize>(value: Unknown, keys: [&str; N]) -> client::Result<[String; N]> {
  let object = call::object(value, "details")?;
  let mut out = [const { String::new() }; N];
  for (slot, key) in out.iter_mut().zip(keys) {
    *slot = call::field(&object, key)?;
  }
  Ok(out)
}

/// Account management for the email/password provider. None of these calls
/// needs a logged-in user. Exported as `Auth.EmailPasswordAuth` too.
#[napi(custom_finalize)]
pub struct EmailPasswordAuth {
  inner: client::EmailPasswordAuth,
}

crate::guarded_finalize!(EmailPasswordAuth);

impl EmailPasswordAuth {
  pub(crate) fn new(inner: client::EmailPasswordAuth) -> EmailPasswordAuth {
    EmailPasswordAuth { inner }
  }

  fn call(&self, env: &Env, options: Option<Unknown>) -> Call {
    Call::new(env, self.inner.app().config().timeout, options)
  }
}

#[napi]
impl EmailPasswordAuth {
  /// The `[name, value]` pairs `util.inspect` shows: the App.
  #[napi(catch_unwind, js_name = "inspectFields", skip_typescript)]
  pub fn inspect_fields(&self) -> Value {
    serde_json::json!([["appId", self.inner.app().config().id]])
  }

  /// Registers a new user.
  #[napi(
    catch_unwind,
    ts_args_type = "details: RegisterUserDetails, options?: CallOptions",
    ts_return_type = "Promise<void>"
  )]
  pub fn register_user<'env>(
    &self,
    env: &'env Env,
    details: Unknown,
    options: Option<Unknown>,
  ) -> Result<PromiseRaw<'env, ()>> {
    let auth = self.inner.clone();
    run_void(
      env,
      self.call(env, options),
      self::details(details, ["email", "password"]),
      move |[email, password]| async move { auth.register_user(&email, &password).await },
    )
  }

  /// Confirms a user with the token pair from the confirmation email.
  #[napi(
    catch_unwind,
    ts_args_type = "details: ConfirmUserDetails, options?: CallOptions",
    ts_return_type = "Promise<void>"
  )]
  pub fn confirm_user<'env>(
    &self,
    env: &'env Env,
    details: Unknown,
    options: Option<Unknown>,
  ) -> Result<PromiseRaw<'env, ()>> {
    let auth = self.inner.clone();
    run_void(
      env,
      self.call(env, options),
      self::details(details, ["token", "tokenId"]),
      move |[token, token_id]| async move { auth.confirm_user(&token, &token_id).await },
    )
  }

  /// Sends the confirmation email again.
  #[napi(
    catch_unwind,
    ts_args_type = "details: EmailDetails, options?: CallOptions",
    ts_return_type = "Promise<void>"
  )]
  pub fn resend_confirmation_email<'env>(
    &self,
    env: &'env Env,
    details: Unknown,
    options: Option<Unknown>,
  ) -> Result<PromiseRaw<'env, ()>> {
    let auth = self.inner.clone();
    run_void(
      env,
      self.call(env, options),
      self::details(details, ["email"]),
      move |[email]| async move { auth.resend_confirmation_email(&email).await },
    )
  }

  /// Runs the custom confirmation function again.
  #[napi(
    catch_unwind,
    ts_args_type = "details: EmailDetails, options?: CallOptions",
    ts_return_type = "Promise<void>"
  )]
  pub fn retry_custom_confirmation<'env>(
    &self,
    env: &'env Env,
    details: Unknown,
    options: Option<Unknown>,
  ) -> Result<PromiseRaw<'env, ()>> {
    let auth = self.inner.clone();
    run_void(
      env,
      self.call(env, options),
      self::details(details, ["email"]),
      move |[email]| async move { auth.retry_custom_confirmation(&email).await },
    )
  }

  /// Sends a password reset email.
  #[napi(
    catch_unwind,
    ts_args_type = "details: EmailDetails, options?: CallOptions",
    ts_return_type = "Promise<void>"
  )]
  pub fn send_reset_password_email<'env>(
    &self,
    env: &'env Env,
    details: Unknown,
    options: Option<Unknown>,
  ) -> Result<PromiseRaw<'env, ()>> {
    let auth = self.inner.clone();
    run_void(
      env,
      self.call(env, options),
      self::details(details, ["email"]),
      move |[email]| async move { auth.send_reset_password_email(&email).await },
    )
  }

  /// Sets a new password with the token pair from the reset email.
  #[napi(
    catch_unwind,
    ts_args_type = "details: ResetPasswordDetails, options?: CallOptions",
    ts_return_type = "Promise<void>"
  )]
  pub fn reset_password<'env>(
    &self,
    env: &'env Env,
    details: Unknown,
    options: Option<Unknown>,
  ) -> Result<PromiseRaw<'env, ()>> {
    let auth = self.inner.clone();
    let parsed = self::details(details, ["token", "tokenId", "password"]);
    run_void(
      env,
      self.call(env, options),
      parsed,
      move |[token, token_id, password]| async move {
        auth.reset_password(&token, &token_id, &password).await
      },
    )
  }

  /// Runs the server's custom reset function with every extra argument given
  /// (each JSON-serialisable; `undefined` becomes `null`). Being variadic, it
  /// takes no call options: the App's timeout applies.
  #[napi(
    catch_unwind,
    ts_args_type = "details: RegisterUserDetails, ...args: unknown[]",
    ts_return_type = "Promise<void>"
  )]
  pub fn call_reset_password_function<'env>(
    &self,
    env: &'env Env,
    details: Unknown,
    // The JS wrapper installed at load (`lib.rs`) gathers the rest parameters.
    args: Option<Vec<Value>>,
  ) -> Result<PromiseRaw<'env, ()>> {
    let args = args.unwrap_or_default();
    let auth = self.inner.clone();
    let parsed = self::details(details, ["email", "password"]);
    run_void(
      env,
      self.call(env, None),
      parsed,
      move |[email, password]| async move {
        auth
          .call_reset_password_function(&email, &password, args)
          .await
      },
    )
  }
}

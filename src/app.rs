//! `App`: the entry point, holding configuration and users.

use std::time::Duration;

use napi::bindgen_prelude::*;
use napi_derive::napi;
use realm_auth_client as client;

use crate::credentials::Credentials;
use crate::email_password_auth::EmailPasswordAuth;
use crate::js_error::{promise, throw, void_promise};
use crate::user::User;

/// Options for `new App(...)`; other realm v12 options are accepted and ignored.
#[napi(object)]
pub struct AppConfiguration {
  /// The App id.
  pub id: String,
  /// The server's base URL. Default `https://services.cloud.mongodb.com`; a
  /// trailing slash is trimmed.
  pub base_url: Option<String>,
  /// Deadline of each request in milliseconds. Default 60000.
  pub timeout: Option<f64>,
}

fn device_info(env: &Env) -> client::DeviceInfo {
  let node = env
    .get_node_version()
    .map(|v| format!("v{}.{}.{}", v.major, v.minor, v.patch))
    .unwrap_or_default();
  let platform = match std::env::consts::OS {
    "linux" => "Linux",
    "macos" => "Darwin",
    "windows" => "Windows_NT",
    other => other,
  };
  let release = std::fs::read_to_string("/proc/sys/kernel/osrelease")
    .map(|s| s.trim().to_owned())
    .unwrap_or_default();
  let arch = match std::env::consts::ARCH {
    "x86_64" => "x64",
    "aarch64" => "arm64",
    other => other,
  };
  client::DeviceInfo {
    platform: platform.to_owned(),
    platform_version: release,
    cpu_arch: arch.to_owned(),
    framework_name: "Node.js".to_owned(),
    framework_version: node,
    sdk_version: env!("CARGO_PKG_VERSION").to_owned(),
  }
}

/// An App Services application. Requests go to the host its location request
/// names, requested once, before the first call that needs it.
#[napi]
pub struct App {
  inner: client::App,
}

#[napi]
impl App {
  /// `new App(id)` or `new App({ id, baseUrl?, timeout? })`.
  #[napi(constructor)]
  pub fn new(env: Env, id_or_config: Either<String, AppConfiguration>) -> Result<App> {
    let (id, base_url, timeout) = match id_or_config {
      Either::A(id) => (id, None, None),
      Either::B(c) => (c.id, c.base_url, c.timeout),
    };
    let timeout = match timeout {
      None => None,
      Some(ms) if ms.is_finite() && ms >= 1.0 && ms <= u32::MAX as f64 => {
        Some(Duration::from_millis(ms as u64))
      }
      Some(_) => {
        let err = client::Error::invalid_argument(
          "Expected 'timeout' to be a number of milliseconds from 1 to 4294967295",
        );
        return throw(&env, Err(err));
      }
    };
    let mut config = throw(
      &env,
      client::AppConfig::new(&id, base_url.as_deref(), timeout),
    )?;
    config.device = device_info(&env);
    Ok(App {
      inner: throw(&env, client::App::new(config))?,
    })
  }

  /// The App id.
  #[napi(getter)]
  pub fn id(&self) -> String {
    self.inner.config().id.clone()
  }

  /// The base URL requests start from (the location request goes there).
  #[napi(getter)]
  pub fn base_url(&self) -> String {
    self.inner.config().base_url.clone()
  }

  /// The current user if logged in, else the most recently used logged-in user, else `null`.
  /// Each read returns a new `User` object for the same user, as in realm v12.
  #[napi(getter)]
  pub fn current_user(&self) -> Option<User> {
    self.inner.current_user().map(User::new)
  }

  /// Every user that is not removed, logged in or out, by id (most recently used first).
  #[napi(getter, ts_return_type = "Record<string, User>")]
  pub fn all_users<'env>(&self, env: &'env Env) -> Result<Object<'env>> {
    let mut out = Object::new(env)?;
    for user in self.inner.all_users() {
      let id = user.id().to_owned();
      out.set_named_property(&id, User::new(user))?;
    }
    Ok(out)
  }

  /// The email/password provider's account functions.
  #[napi(getter)]
  pub fn email_password_auth(&self) -> EmailPasswordAuth {
    EmailPasswordAuth::new(self.inner.email_password())
  }

  /// Logs in and makes the user current.
  #[napi(ts_return_type = "Promise<User>")]
  pub fn log_in<'env>(
    &self,
    env: &'env Env,
    credentials: &Credentials,
  ) -> Result<PromiseRaw<'env, User>> {
    let (app, credentials) = (self.inner.clone(), credentials.inner.clone());
    promise(
      env,
      async move { app.log_in(&credentials).await },
      |_, user| Ok(User::new(user)),
    )
  }

  /// Makes a logged-in user of this App the current user. Throws if the user is
  /// logged out, removed or from another App.
  #[napi]
  pub fn switch_user(&self, env: Env, user: &User) -> Result<()> {
    throw(&env, self.inner.switch_user(&user.inner))
  }

  /// Logs the user out (if logged in) and removes it from the App.
  #[napi(ts_return_type = "Promise<void>")]
  pub fn remove_user<'env>(&self, env: &'env Env, user: &User) -> Result<PromiseRaw<'env, ()>> {
    let (app, user) = (self.inner.clone(), user.inner.clone());
    void_promise(env, async move { app.remove_user(&user).await })
  }

  /// Deletes the user on the server, then removes it from the App.
  #[napi(ts_return_type = "Promise<void>")]
  pub fn delete_user<'env>(&self, env: &'env Env, user: &User) -> Result<PromiseRaw<'env, ()>> {
    let (app, user) = (self.inner.clone(), user.inner.clone());
    void_promise(env, async move { app.delete_user(&user).await })
  }
}

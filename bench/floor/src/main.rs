//! The raw-Rust floor of the benchmark: the same HTTP requests as the SDK
//! (on reqwest, with the client settings crates/client used when the
//! benchmark's targets were set; `hyper` sends them on hyper-util's client,
//! crates/client's transport since), issued directly from Rust with no Node
//! and no SDK logic around them, on a current-thread tokio runtime (the
//! client process is pinned to one core).
//! Responses are parsed into typed structs and checked, as an SDK would.
//!
//! Usage: `realm-auth-bench-floor '<json config>'` (see `Config`); prints one
//! JSON object (see `Report`) on stdout. Driven by bench/run.mjs.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use reqwest::header::{ACCEPT, AUTHORIZATION, CONTENT_TYPE, HeaderValue};
use reqwest::{Client, Method};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

type Fail = Box<dyn std::error::Error + Send + Sync>;
type Res<T> = Result<T, Fail>;

const BASE_PATH: &str = "/api/client/v2.0";
const JSON_UTF8: &str = "application/json;charset=utf-8";

/// What to run; the same object every client of the benchmark gets.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Config {
  base_url: String,
  app_id: String,
  email: String,
  password: String,
  /// `fetchAll`, `fetch`, `createDelete`, `enableDisable` or `login`.
  op: String,
  concurrency: usize,
  warmup: usize,
  ops: usize,
  reps: usize,
  /// The key `fetch` reads.
  fetch_key_id: String,
  /// The key `enableDisable` toggles.
  toggle_key_id: String,
  /// How many keys `fetchAll` must see.
  expect_keys: usize,
  /// Diagnostic: drive the calls from a thread outside the runtime (a
  /// multi-thread runtime, results sent back over a channel), the shape of a
  /// Node addon minus JS. Default: everything on one current-thread runtime.
  #[serde(default)]
  hop: bool,
  /// Diagnostic: make the calls through realm-auth-client (this SDK's Rust
  /// core: location, sessions, retries, deadlines, parsing) on the same
  /// current-thread runtime: the SDK without Node.
  #[serde(default)]
  sdk: bool,
  /// Diagnostic: the raw floor's requests through hyper-util's client directly
  /// (the client reqwest drives, and realm-auth-client's transport), without
  /// reqwest's layers around it. With `hop`: `floor-hop` on that transport.
  #[serde(default)]
  hyper: bool,
}

/// One repetition's figures.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Rep {
  ops: usize,
  wall_ms: f64,
  ops_per_sec: f64,
  p50_ms: f64,
  p99_ms: f64,
  cpu_user_ms: f64,
  cpu_sys_ms: f64,
  cpu_us_per_op: f64,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Report {
  client: &'static str,
  op: String,
  concurrency: usize,
  reps: Vec<Rep>,
  max_rss_kb: i64,
  setup_ms: f64,
}

#[derive(Deserialize)]
struct Location {
  hostname: String,
}

#[derive(Deserialize)]
struct Session {
  access_token: String,
  refresh_token: String,
  user_id: String,
  device_id: String,
}

#[derive(Deserialize)]
struct Identity {
  id: String,
  provider_type: String,
}

#[derive(Deserialize)]
struct Profile {
  identities: Vec<Identity>,
  data: Map<String, Value>,
}

#[derive(Deserialize)]
struct ApiKey {
  _id: String,
  name: String,
  disabled: bool,
}

#[derive(Deserialize)]
struct SecretApiKey {
  _id: String,
  key: String,
  name: String,
  disabled: bool,
}

fn is_key_id(id: &str) -> bool {
  id.len() == 24 && id.bytes().all(|b| b.is_ascii_hexdigit())
}

fn check_key(k: &ApiKey) -> Res<()> {
  // Read every field, as an SDK converting the key would.
  if !is_key_id(&k._id)
    || k.name.is_empty()
    || std::hint::black_box(k.disabled) && k.name.len() > 1024
  {
    return Err("malformed API key".into());
  }
  Ok(())
}

/// hyper-util's client, as reqwest builds it for plain HTTP (the `hyper` diagnostic has no TLS:
/// the benchmark's emulator listens on `http://127.0.0.1`).
type HyperClient = hyper_util::client::legacy::Client<
  hyper_util::client::legacy::connect::HttpConnector,
  http_body_util::Full<Bytes>,
>;

/// The logged-in state the key calls need.
struct Ctx {
  http: Client,
  /// The `hyper` diagnostic: requests go here instead of through `http`.
  hyper: Option<HyperClient>,
  host: String,
  app_id: String,
  email: String,
  password: String,
  refresh: HeaderValue,
  cfg_fetch: String,
  cfg_toggle: String,
  expect_keys: usize,
  tag: String,
}

impl Ctx {
  fn url(&self, path: &str) -> String {
    format!("{}{BASE_PATH}/{path}", self.host)
  }

  /// Sends a request with the SDK's headers and returns the 2xx body.
  async fn send(
    &self,
    method: Method,
    url: String,
    bearer: Option<&HeaderValue>,
    body: Option<Vec<u8>>,
  ) -> Res<Bytes> {
    if let Some(client) = &self.hyper {
      return send_hyper(client, method, url, bearer, body).await;
    }
    let mut req = self
      .http
      .request(method, url)
      .header(CONTENT_TYPE, HeaderValue::from_static(JSON_UTF8))
      .header(ACCEPT, HeaderValue::from_static("application/json"));
    if let Some(b) = bearer {
      req = req.header(AUTHORIZATION, b.clone());
    }
    if let Some(body) = body {
      req = req.body(body);
    }
    let resp = req.send().await?;
    let status = resp.status();
    let body = resp.bytes().await?;
    if !status.is_success() {
      return Err(format!("HTTP {status}: {}", String::from_utf8_lossy(&body)).into());
    }
    Ok(body)
  }

  async fn key_call(&self, method: Method, path: &str, body: Option<Vec<u8>>) -> Res<Bytes> {
    let url = self.url(path);
    self.send(method, url, Some(&self.refresh), body).await
  }

  /// Login + profile, as both SDKs do.
  async fn login(&self) -> Res<Session> {
    let body = json!({
      "provider": "local-userpass",
      "username": self.email,
      "password": self.password,
      "options": { "device": {
        "appId": self.app_id, "platform": "Linux", "platformVersion": "", "sdk": "JS",
        "sdkVersion": "0.1.0", "cpuArch": "x64", "deviceName": "unknown", "deviceVersion": "unknown",
        "frameworkName": "Rust", "frameworkVersion": "",
      }},
    });
    let url = self.url(&format!(
      "app/{}/auth/providers/local-userpass/login",
      self.app_id
    ));
    let resp = self
      .send(Method::POST, url, None, Some(serde_json::to_vec(&body)?))
      .await?;
    let session: Session = serde_json::from_slice(&resp)?;
    if session.user_id.is_empty()
      || session.access_token.split('.').count() != 3
      || session.refresh_token.split('.').count() != 3
      || session.device_id.is_empty()
    {
      return Err("malformed login response".into());
    }
    let bearer = HeaderValue::from_str(&format!("Bearer {}", session.access_token))?;
    let resp = self
      .send(Method::GET, self.url("auth/profile"), Some(&bearer), None)
      .await?;
    let profile: Profile = serde_json::from_slice(&resp)?;
    if profile
      .identities
      .iter()
      .any(|i| i.id.is_empty() || i.provider_type.is_empty())
    {
      return Err("malformed profile".into());
    }
    let _ = profile.data.len();
    Ok(session)
  }

  async fn run(&self, op: &str, i: usize) -> Res<()> {
    match op {
      "fetchAll" => {
        let body = self.key_call(Method::GET, "auth/api_keys", None).await?;
        let keys: Vec<ApiKey> = serde_json::from_slice(&body)?;
        for k in &keys {
          check_key(k)?;
        }
        if keys.len() != self.expect_keys {
          return Err(format!("expected {} keys, got {}", self.expect_keys, keys.len()).into());
        }
      }
      "fetch" => {
        let path = format!("auth/api_keys/{}", self.cfg_fetch);
        let body = self.key_call(Method::GET, &path, None).await?;
        let key: ApiKey = serde_json::from_slice(&body)?;
        check_key(&key)?;
        if key._id != self.cfg_fetch {
          return Err("fetched the wrong key".into());
        }
      }
      "createDelete" => {
        let name = format!("{}-{i}", self.tag);
        let body = serde_json::to_vec(&json!({ "name": name }))?;
        let body = self
          .key_call(Method::POST, "auth/api_keys", Some(body))
          .await?;
        let key: SecretApiKey = serde_json::from_slice(&body)?;
        if !is_key_id(&key._id) || key.key.is_empty() || key.name != name || key.disabled {
          return Err("malformed created key".into());
        }
        let path = format!("auth/api_keys/{}", key._id);
        self.key_call(Method::DELETE, &path, None).await?;
      }
      "enableDisable" => {
        let verb = if i.is_multiple_of(2) {
          "disable"
        } else {
          "enable"
        };
        let path = format!("auth/api_keys/{}/{verb}", self.cfg_toggle);
        self.key_call(Method::PUT, &path, None).await?;
      }
      "login" => {
        self.login().await?;
      }
      other => return Err(format!("unknown op {other}").into()),
    }
    Ok(())
  }
}

/// The SDK's Rust core, logged in as the benchmark's user.
struct SdkCtx {
  app: realm_auth_client::App,
  keys: realm_auth_client::ApiKeyAuth,
  credentials: realm_auth_client::Credentials,
  user_id: String,
  fetch_id: realm_auth_client::KeyId,
  toggle_id: realm_auth_client::KeyId,
  expect_keys: usize,
  tag: String,
}

impl SdkCtx {
  async fn setup(cfg: &Config) -> Res<SdkCtx> {
    let config = realm_auth_client::AppConfig::new(&cfg.app_id, Some(&cfg.base_url), None)?;
    let app = realm_auth_client::App::new(config)?;
    let credentials = realm_auth_client::Credentials::email_password(&cfg.email, &cfg.password)?;
    let user = app.log_in(&credentials).await?;
    Ok(SdkCtx {
      keys: user.api_keys(),
      user_id: user.id().to_owned(),
      app,
      credentials,
      fetch_id: realm_auth_client::KeyId::parse(&cfg.fetch_key_id)?,
      toggle_id: realm_auth_client::KeyId::parse(&cfg.toggle_key_id)?,
      expect_keys: cfg.expect_keys,
      tag: format!("sdk-{}", std::process::id()),
    })
  }

  /// One op, under a call deadline as the addon runs every call.
  async fn run(&self, op: &str, i: usize) -> Res<()> {
    let deadline = realm_auth_client::DEFAULT_TIMEOUT;
    match op {
      "fetchAll" => {
        let keys = realm_auth_client::within(deadline, self.keys.fetch_all()).await?;
        if keys.len() != self.expect_keys || keys.iter().any(|k| !is_key_id(&k.id)) {
          return Err("unexpected key list".into());
        }
      }
      "fetch" => {
        let key = realm_auth_client::within(deadline, self.keys.fetch(&self.fetch_id)).await?;
        if key.id != self.fetch_id.as_str() {
          return Err("fetched the wrong key".into());
        }
      }
      "createDelete" => {
        let name = format!("{}-{i}", self.tag);
        let key = realm_auth_client::within(deadline, self.keys.create(&name)).await?;
        if key.name != name || key.disabled {
          return Err("malformed created key".into());
        }
        let id = realm_auth_client::KeyId::parse(&key.id)?;
        realm_auth_client::within(deadline, self.keys.delete(&id)).await?;
      }
      "enableDisable" => {
        let call = if i.is_multiple_of(2) {
          realm_auth_client::within(deadline, self.keys.disable(&self.toggle_id)).await
        } else {
          realm_auth_client::within(deadline, self.keys.enable(&self.toggle_id)).await
        };
        call?;
      }
      "login" => {
        let user = realm_auth_client::within(deadline, self.app.log_in(&self.credentials)).await?;
        if user.id() != self.user_id {
          return Err("logged in as someone else".into());
        }
      }
      other => return Err(format!("unknown op {other}").into()),
    }
    Ok(())
  }
}

/// What the ops go through: raw reqwest, or the SDK's Rust core.
enum Runner {
  Raw(Ctx),
  Sdk(SdkCtx),
}

impl Runner {
  async fn run(&self, op: &str, i: usize) -> Res<()> {
    match self {
      Runner::Raw(ctx) => ctx.run(op, i).await,
      Runner::Sdk(ctx) => ctx.run(op, i).await,
    }
  }
}

fn cpu_ms() -> (f64, f64) {
  let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
  // SAFETY: getrusage writes into the struct we own.
  unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut usage) };
  let ms = |t: libc::timeval| t.tv_sec as f64 * 1000.0 + t.tv_usec as f64 / 1000.0;
  (ms(usage.ru_utime), ms(usage.ru_stime))
}

fn max_rss_kb() -> i64 {
  let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
  // SAFETY: as above.
  unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut usage) };
  usage.ru_maxrss
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
  if sorted.is_empty() {
    return 0.0;
  }
  let idx = ((p / 100.0) * (sorted.len() - 1) as f64).round() as usize;
  sorted[idx.min(sorted.len() - 1)]
}

/// Runs `n` ops with `concurrency` workers pulling from one counter; returns
/// each op's latency in ms.
async fn batch(
  ctx: &Arc<Runner>,
  op: &Arc<str>,
  n: usize,
  concurrency: usize,
  base: usize,
) -> Res<Vec<f64>> {
  let next = Arc::new(AtomicUsize::new(0));
  let mut workers = tokio::task::JoinSet::new();
  for _ in 0..concurrency.min(n).max(1) {
    let (ctx, op, next) = (ctx.clone(), op.clone(), next.clone());
    workers.spawn(async move {
      let mut lat = Vec::new();
      loop {
        let i = next.fetch_add(1, Ordering::Relaxed);
        if i >= n {
          break;
        }
        let t0 = Instant::now();
        ctx.run(&op, base + i).await?;
        lat.push(t0.elapsed().as_secs_f64() * 1000.0);
      }
      Ok::<_, Fail>(lat)
    });
  }
  let mut all = Vec::with_capacity(n);
  while let Some(done) = workers.join_next().await {
    all.extend(done??);
  }
  Ok(all)
}

/// Runs `n` ops from a thread outside the runtime: each op is spawned onto the
/// runtime and its result comes back over a channel (as an addon's calls come
/// from the JS thread and settle there).
fn batch_hop(
  rt: &tokio::runtime::Runtime,
  ctx: &Arc<Runner>,
  op: &Arc<str>,
  n: usize,
  concurrency: usize,
  base: usize,
) -> Res<Vec<f64>> {
  let (tx, rx) = std::sync::mpsc::channel::<(Instant, Res<()>)>();
  let launch = |i: usize| {
    let (ctx, op, tx) = (ctx.clone(), op.clone(), tx.clone());
    let t0 = Instant::now();
    rt.spawn(async move {
      let result = ctx.run(&op, base + i).await;
      let _ = tx.send((t0, result));
    });
  };
  let mut lat = Vec::with_capacity(n);
  let (mut next, mut in_flight) = (0, 0);
  while next < n && in_flight < concurrency.max(1) {
    launch(next);
    next += 1;
    in_flight += 1;
  }
  while in_flight > 0 {
    let (t0, result) = rx.recv()?;
    result?;
    lat.push(t0.elapsed().as_secs_f64() * 1000.0);
    in_flight -= 1;
    if next < n {
      launch(next);
      next += 1;
      in_flight += 1;
    }
  }
  Ok(lat)
}

/// [`Ctx::send`] through hyper-util's client: the same headers, timeouts and checks.
async fn send_hyper(
  client: &HyperClient,
  method: Method,
  url: String,
  bearer: Option<&HeaderValue>,
  body: Option<Vec<u8>>,
) -> Res<Bytes> {
  use http_body_util::BodyExt;
  let mut req = hyper::Request::builder()
    .method(method)
    .uri(url)
    .header(CONTENT_TYPE, HeaderValue::from_static(JSON_UTF8))
    .header(ACCEPT, HeaderValue::from_static("application/json"));
  if let Some(b) = bearer {
    req = req.header(AUTHORIZATION, b.clone());
  }
  let req = req.body(http_body_util::Full::new(Bytes::from(
    body.unwrap_or_default(),
  )))?;
  // reqwest's `timeout` covers the request and the body; so does this.
  let exchange = async {
    let resp = client.request(req).await?;
    let status = resp.status();
    let body = resp.into_body().collect().await?.to_bytes();
    Ok::<_, Fail>((status, body))
  };
  let (status, body) = tokio::time::timeout(Duration::from_secs(60), exchange).await??;
  if !status.is_success() {
    return Err(format!("HTTP {status}: {}", String::from_utf8_lossy(&body)).into());
  }
  Ok(body)
}

async fn setup(cfg: &Config) -> Res<Ctx> {
  let _ = rustls::crypto::ring::default_provider().install_default();
  let http = Client::builder()
    .timeout(Duration::from_secs(60))
    .connect_timeout(Duration::from_secs(10))
    .pool_idle_timeout(Duration::from_secs(30))
    .redirect(reqwest::redirect::Policy::limited(5))
    .build()?;
  let loc_url = format!("{}{BASE_PATH}/app/{}/location", cfg.base_url, cfg.app_id);
  let loc: Location = serde_json::from_slice(&http.get(loc_url).send().await?.bytes().await?)?;
  let hyper = cfg.hyper.then(|| {
    let mut connector = hyper_util::client::legacy::connect::HttpConnector::new();
    connector.set_connect_timeout(Some(Duration::from_secs(10)));
    connector.set_nodelay(true);
    hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
      .pool_idle_timeout(Duration::from_secs(30))
      .pool_timer(hyper_util::rt::TokioTimer::new())
      .build(connector)
  });
  let mut ctx = Ctx {
    http,
    hyper,
    host: loc.hostname.trim_end_matches('/').to_owned(),
    app_id: cfg.app_id.clone(),
    email: cfg.email.clone(),
    password: cfg.password.clone(),
    refresh: HeaderValue::from_static("Bearer none"),
    cfg_fetch: cfg.fetch_key_id.clone(),
    cfg_toggle: cfg.toggle_key_id.clone(),
    expect_keys: cfg.expect_keys,
    tag: format!("floor-{}", std::process::id()),
  };
  let session = ctx.login().await?;
  let mut refresh = HeaderValue::from_str(&format!("Bearer {}", session.refresh_token))?;
  refresh.set_sensitive(true);
  ctx.refresh = refresh;
  Ok(ctx)
}

fn run(cfg: Config) -> Res<Report> {
  let rt = if cfg.hop {
    tokio::runtime::Builder::new_multi_thread()
      .enable_all()
      .build()?
  } else {
    tokio::runtime::Builder::new_current_thread()
      .enable_all()
      .build()?
  };
  let t_setup = Instant::now();
  let ctx = Arc::new(rt.block_on(async {
    Ok::<_, Fail>(if cfg.sdk {
      Runner::Sdk(SdkCtx::setup(&cfg).await?)
    } else {
      Runner::Raw(setup(&cfg).await?)
    })
  })?);
  let setup_ms = t_setup.elapsed().as_secs_f64() * 1000.0;
  let op: Arc<str> = Arc::from(cfg.op.as_str());
  let run_batch = |n: usize, base: usize| {
    if cfg.hop {
      batch_hop(&rt, &ctx, &op, n, cfg.concurrency, base)
    } else {
      rt.block_on(batch(&ctx, &op, n, cfg.concurrency, base))
    }
  };
  let mut base = 0;
  run_batch(cfg.warmup, base)?;
  base += cfg.warmup;
  let mut reps = Vec::new();
  for _ in 0..cfg.reps {
    let (u0, s0) = cpu_ms();
    let t0 = Instant::now();
    let mut lat = run_batch(cfg.ops, base)?;
    let wall_ms = t0.elapsed().as_secs_f64() * 1000.0;
    let (u1, s1) = cpu_ms();
    base += cfg.ops;
    lat.sort_by(f64::total_cmp);
    reps.push(Rep {
      ops: cfg.ops,
      wall_ms,
      ops_per_sec: cfg.ops as f64 / (wall_ms / 1000.0),
      p50_ms: percentile(&lat, 50.0),
      p99_ms: percentile(&lat, 99.0),
      cpu_user_ms: u1 - u0,
      cpu_sys_ms: s1 - s0,
      cpu_us_per_op: (u1 - u0 + s1 - s0) * 1000.0 / cfg.ops as f64,
    });
  }
  Ok(Report {
    client: if cfg.hop && cfg.hyper {
      "rust-floor-hyper-hop"
    } else if cfg.hop {
      "rust-floor-hop"
    } else if cfg.hyper {
      "rust-floor-hyper"
    } else if cfg.sdk {
      "rust-sdk"
    } else {
      "rust-floor"
    },
    op: cfg.op,
    concurrency: cfg.concurrency,
    reps,
    max_rss_kb: max_rss_kb(),
    setup_ms,
  })
}

fn main() {
  let Some(arg) = std::env::args().nth(1) else {
    eprintln!("usage: realm-auth-bench-floor '<json config>'");
    std::process::exit(2);
  };
  let cfg: Config = match serde_json::from_str(&arg) {
    Ok(c) => c,
    Err(e) => {
      eprintln!("bad config: {e}");
      std::process::exit(2);
    }
  };
  match run(cfg) {
    Ok(report) => println!(
      "{}",
      serde_json::to_string(&report).expect("a report serialises")
    ),
    Err(e) => {
      eprintln!("floor failed: {e}");
      std::process::exit(1);
    }
  }
}

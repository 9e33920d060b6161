//! Command-line parsing, shared by the `realm-auth-server` binary and the
//! Node package's `realm-auth-server emulator` command.

use crate::Config;

/// The options every server command takes, as help lines. A macro rather than a
/// `const` because `concat!` only joins literals, and the help texts must
/// not drift apart.
macro_rules! server_options {
  () => {
    "  --port <p>                    port to listen on (default 0: pick a free one)
  --host <h>                    interface to bind (default 127.0.0.1)
  --app-id <id>                 the app id to serve (default emulator-app)
  --public-url <url>            the URL clients reach this server at, which the location route
                                answers with (https://auth.example.com behind a TLS proxy;
                                default http:// and the request's Host)
  --trusted-proxy <ip|cidr>     a reverse proxy whose X-Forwarded-For names the client, for
                                the per-address login throttle (repeatable)
  --sqlite <file>               keep users, keys and sessions in the SQLite database <file>
                                (created if missing; several servers may share it)
  --postgres <url>              keep them in PostgreSQL (postgres://user@host:port/db; or set
                                REALM_AUTH_SERVER_POSTGRES_URL, which `ps` does not show)
  --access-token-ttl <secs>     access token lifetime (default 1800)
  --refresh-token-ttl <secs>    refresh token lifetime (default 5184000)
  --require-email-confirmation  new email/password accounts start unconfirmed
  --custom-token-secret-file <f> enable the custom-token provider with the HS256 secret in <f>
                                (or set REALM_AUTH_EMULATOR_CUSTOM_TOKEN_SECRET)
  --custom-token-secret <s>     the same from the command line, where `ps` shows it to every user
  --custom-token-jwks-file <f>  enable the custom-token provider for RS256 tokens, verified with
                                the RSA keys of the JWKS file <f>
  --function-identity-field <f> custom-function payload field holding the id (default id)
  --max-api-keys <n>            user API keys per user (default 20)
  --password-iterations <n>     hash passwords with PBKDF2, n iterations (default 1000;
                                serve otherwise uses argon2id, see passwordHash)
  --header-read-timeout-ms <ms> time a client has to send a request's headers, and then its
                                body (default 10000)
  --idle-timeout-ms <ms>        time a keep-alive connection may idle (default 90000)
  --max-connections <n>         open connections at most; more get 503 (default 4096)
  --max-requests-per-connection <n>  requests per connection before it closes (default 1000)
                                (0 turns any of these four limits off; serve refuses 0
                                for all but --max-requests-per-connection)
  --signing-keys-file <f>       sign tokens with the last HS256 key of <f>, verify with any of
                                them: {\"keys\": [{\"kid\": ..., \"secret\": ...}]} (rotation)
  --access-log                  print one JSON line per request on stdout (time, method, route
                                template, status, ms, request id; never paths, tokens or bodies)
  --shutdown-grace-ms <ms>      time requests in flight get to finish on SIGTERM (default 10000
                                for serve, 500 for the emulator)
  --no-metrics                  do not serve /metrics (/healthz and /readyz always are)
  --tls-cert <pem> --tls-key <pem>  serve HTTPS with this certificate chain and key (the
                                binary rereads both on SIGHUP)
  --json                        print the listening line and any failure as one JSON object
"
  };
}

/// The emulator's own options: its data file and its control API.
macro_rules! emulator_options {
  () => {
    "  --data <file>                 load state from <file> and save every change to it
  --control-token-file <f>      the control API's token, read from <f> (or set
                                REALM_AUTH_EMULATOR_CONTROL_TOKEN; default: a random one, printed)
  --control-token <t>           the same from the command line, where `ps` shows it to every user
  --allow-host <name[:port]>    another Host name the control API answers to (repeatable; for a
                                container's name or a mapped port)
"
  };
}

macro_rules! exit_codes {
  () => {
    "  -h, --help                    print this help

Exit codes: 0 stopped by Ctrl-C or SIGTERM, 1 could not start (port taken, data file or database
unusable), 2 bad usage.
"
  };
}

macro_rules! control_api_note {
  () => {
    "
Control API: http://<host>:<port>/_emulator/ (GET it for the list of routes); every other
route needs the control token, printed after the listening line, as Authorization: Bearer
<token>. Guide (control API, faults, the data file, security): docs/EMULATOR.md, shipped in the
realm-auth-server package.
"
  };
}

/// The help text of `realm-auth-server emulator` run by the Node package.
pub const USAGE: &str = concat!(
  "\
Usage: realm-auth-server emulator [options]
       realm-auth-server emulator users <add|list> ...   (realm-auth-server emulator users --help)

A local App Services-compatible auth server for tests (users, sessions, user and server API
keys), run in this Node process, with a control API.

Options:
",
  server_options!(),
  emulator_options!(),
  exit_codes!(),
  control_api_note!(),
  "
The realm-auth-server binary also takes --threads; this command refuses it (the emulator
runs on the addon's threads).
"
);

/// The help text of the `realm-auth-server` binary's emulator (with or without the `emulator`
/// command word): the same options plus `--threads`.
pub const BINARY_USAGE: &str = concat!(
  "\
Usage: realm-auth-server [emulator] [options]
       realm-auth-server serve [--config <file.json>] [options]   (realm-auth-server serve --help)
       realm-auth-server <apps|users|server-keys|sessions> ...    (admin; realm-auth-server users --help)

A local App Services-compatible auth server for tests (users, sessions, user and server API
keys), with a control API.

Options:
",
  server_options!(),
  emulator_options!(),
  "  --threads <n>                 tokio worker threads (default 1)
",
  exit_codes!(),
  control_api_note!()
);

/// The help text of `realm-auth-server serve`.
pub const SERVE_USAGE: &str = concat!(
  "\
Usage: realm-auth-server serve [--config <file.json>] [options]

Serves the App Services client API (users, sessions, user and server API keys) from SQLite or
PostgreSQL, for production: there is no control API and no request log. Manage apps, users,
server API keys and sessions with the admin commands (realm-auth-server users --help).

Options:
  --config <file.json>          settings as JSON, camelCase (see docs/SERVER.md): e.g.
                                {\"port\": 8080, \"appId\": \"my-app\", \"appIds\": [\"other\"],
                                 \"store\": {\"kind\": \"sqlite\", \"path\": \"auth.db\"}}
                                options given on the command line win over the file
",
  server_options!(),
  "  --threads <n>                 tokio worker threads (default 1)
",
  exit_codes!()
);

/// The login providers `serve` accepts unless its config lists them (`providers`): not
/// `custom-function`, which logs in whoever names an id. (`custom-token` still needs a secret.)
const SERVE_PROVIDERS: &[&str] = &["anon-user", "local-userpass", "api-key", "custom-token"];

/// Which command's arguments are parsed.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Mode {
  /// `realm-auth-server emulator` in Node: no `--threads` (it runs on the addon's threads).
  NodeEmulator,
  /// The binary's emulator.
  BinaryEmulator,
  /// The binary's `serve`: a SQL store, no control API, a config file.
  Serve,
}

/// Parsed arguments.
pub struct Cli {
  /// The emulator settings.
  pub config: Config,
  /// Tokio worker threads (the binary only; in-process emulators share the host runtime).
  pub threads: usize,
  /// `--json`: the listening line and failures as JSON.
  pub json: bool,
}

/// The environment variable that holds the control token (the emulator's, and the one the
/// `realm-auth-server emulator users` commands send).
pub const CONTROL_TOKEN_ENV: &str = "REALM_AUTH_EMULATOR_CONTROL_TOKEN";
/// The environment variable that holds the `custom-token` provider's secret.
pub const CUSTOM_TOKEN_SECRET_ENV: &str = "REALM_AUTH_EMULATOR_CUSTOM_TOKEN_SECRET";
/// The environment variable that holds the PostgreSQL URL (a URL may carry a password).
pub const POSTGRES_URL_ENV: &str = "REALM_AUTH_SERVER_POSTGRES_URL";

/// Parses the arguments of `realm-auth-server emulator` in Node (after the command name);
/// `Ok(None)` means help was asked for. `--threads` is refused: an in-process emulator cannot
/// honour it. Secrets not given as flags are read from [`CONTROL_TOKEN_ENV`] and
/// [`CUSTOM_TOKEN_SECRET_ENV`].
pub fn parse_args(args: impl IntoIterator<Item = String>) -> Result<Option<Cli>, String> {
  parse(args, Mode::NodeEmulator, &env_var)
}

/// Parses the arguments of the `realm-auth-server` binary's emulator: [`parse_args`] plus
/// `--threads`.
pub fn parse_binary_args(args: impl IntoIterator<Item = String>) -> Result<Option<Cli>, String> {
  parse(args, Mode::BinaryEmulator, &env_var)
}

/// Parses the arguments of `realm-auth-server serve` (after the command name): a config file,
/// the server options and `--threads`; the emulator's options are refused. The result has the
/// control API off and a SQL store (a memory store would lose every answered write at exit).
pub fn parse_serve_args(args: impl IntoIterator<Item = String>) -> Result<Option<Cli>, String> {
  parse(args, Mode::Serve, &env_var)
}

/// Reads a `serve` config file: [`Config`] as JSON, camelCase, every field optional. A key
/// that is not a setting, at the top or inside a setting's object, is refused (a misspelt one
/// would otherwise be ignored in silence), and so are the emulator's settings.
pub fn read_config_file(path: &str) -> Result<Config, String> {
  let text =
    std::fs::read_to_string(path).map_err(|e| format!("--config: cannot read '{path}': {e}"))?;
  parse_config(&text).map_err(|e| format!("--config '{path}': {e}"))
}

/// The settings a config file may not hold: the emulator's, meaningless without a control API.
const EMULATOR_ONLY: &[&str] = &[
  "controlApi",
  "controlToken",
  "allowedHosts",
  "dataFile",
  "logCapacity",
];

fn parse_config(text: &str) -> Result<Config, String> {
  let value: serde_json::Value =
    serde_json::from_str(text).map_err(|e| format!("not valid JSON: {e}"))?;
  let serde_json::Value::Object(map) = &value else {
    return Err("must be a JSON object".into());
  };
  let known = serde_json::to_value(Config::default()).expect("Config serializes");
  for key in map.keys() {
    if EMULATOR_ONLY.contains(&key.as_str()) {
      return Err(format!(
        "'{key}' is an emulator setting; serve has no control API"
      ));
    }
    if known.get(key).is_none() {
      return Err(format!("unknown setting '{key}'"));
    }
  }
  let pbkdf2_count = map.contains_key("passwordIterations") && !map.contains_key("passwordHash");
  let mut config: Config = serde_json::from_value(value.clone()).map_err(|e| {
    // serde's message names the bad key but not the setting it sits in: find that setting by
    // reading each alone (every setting is optional).
    let culprit = map.iter().find(|(key, v)| {
      let alone = serde_json::Value::Object([((*key).clone(), (*v).clone())].into_iter().collect());
      serde_json::from_value::<Config>(alone).is_err()
    });
    match culprit {
      Some((key, _)) => format!("'{key}': {e}"),
      None => e.to_string(),
    }
  })?;
  // A file written before argon2id existed keeps the PBKDF2 it asked for.
  if pbkdf2_count {
    config.password_hash = Some(crate::PasswordHashConfig::Pbkdf2 { iterations: None });
  }
  Ok(config)
}

/// A set, non-empty environment variable.
fn env_var(name: &str) -> Option<String> {
  std::env::var(name).ok().filter(|v| !v.is_empty())
}

/// A secret from a file: its text, without the line break editors and `echo` leave at its end.
pub(crate) fn read_secret_file(flag: &str, path: &str) -> Result<String, String> {
  let text =
    std::fs::read_to_string(path).map_err(|e| format!("{flag}: cannot read '{path}': {e}"))?;
  let secret = text.trim_end_matches(['\r', '\n']);
  if secret.is_empty() {
    return Err(format!("{flag}: '{path}' is empty"));
  }
  Ok(secret.to_string())
}

/// A secret given at most one way on the command line (the flag or its `-file` twin), else by
/// the environment variable.
struct Secret {
  flag: &'static str,
  env: &'static str,
  given: Option<String>,
}

impl Secret {
  fn new(flag: &'static str, env: &'static str) -> Secret {
    Secret {
      flag,
      env,
      given: None,
    }
  }

  fn set(&mut self, value: String) -> Result<(), String> {
    if self.given.is_some() {
      return Err(format!("{} given twice (with {0} or {0}-file)", self.flag));
    }
    self.given = Some(value);
    Ok(())
  }

  fn resolve(self, env: &dyn Fn(&str) -> Option<String>) -> Option<String> {
    self.given.or_else(|| env(self.env))
  }
}

fn parse(
  args: impl IntoIterator<Item = String>,
  mode: Mode,
  env: &dyn Fn(&str) -> Option<String>,
) -> Result<Option<Cli>, String> {
  let args: Vec<String> = args.into_iter().collect();
  let serve = mode == Mode::Serve;
  // The file first, whatever its place among the flags: flags win over it.
  let mut config = match config_path(&args)? {
    Some(path) if serve => read_config_file(&path)?,
    Some(_) => return Err("--config is taken only by `serve`".into()),
    None => Config::default(),
  };
  let mut threads = 1usize;
  let mut json = false;
  let mut control_token = Secret::new("--control-token", CONTROL_TOKEN_ENV);
  let mut custom_secret = Secret::new("--custom-token-secret", CUSTOM_TOKEN_SECRET_ENV);
  let mut postgres_url = Secret::new("--postgres", POSTGRES_URL_ENV);
  let mut sqlite = None;
  let mut args = args.into_iter();
  while let Some(arg) = args.next() {
    if serve
      && let Some(flag) = ["--data", "--control-token", "--allow-host"]
        .iter()
        .find(|f| {
          arg == **f || arg.starts_with(&format!("{f}=")) || arg.starts_with(&format!("{f}-file"))
        })
    {
      return Err(format!(
        "{flag} is an emulator option; serve has no control API"
      ));
    }
    // Accept both `--flag value` and `--flag=value`.
    let (flag, inline) = match arg.split_once('=') {
      Some((f, v)) if f.starts_with("--") => (f.to_string(), Some(v.to_string())),
      _ => (arg.clone(), None),
    };
    let mut value = |name: &str| -> Result<String, String> {
      inline
        .clone()
        .or_else(|| args.next())
        .ok_or_else(|| format!("{name} needs a value"))
    };
    fn number<T: std::str::FromStr>(name: &str, v: String) -> Result<T, String> {
      v.parse()
        .map_err(|_| format!("{name}: '{v}' is not a valid number"))
    }
    match flag.as_str() {
      "-h" | "--help" => return Ok(None),
      // Read before the loop.
      "--config" => drop(value("--config")?),
      "--port" => config.port = number("--port", value("--port")?)?,
      "--host" => config.host = value("--host")?,
      "--app-id" => config.app_id = value("--app-id")?,
      "--data" => config.data_file = Some(value("--data")?.into()),
      "--public-url" => config.public_url = Some(value("--public-url")?),
      "--trusted-proxy" => config.trusted_proxies.push(value("--trusted-proxy")?),
      "--sqlite" => sqlite = Some(value("--sqlite")?),
      "--postgres" => postgres_url.set(value("--postgres")?)?,
      "--access-token-ttl" => {
        config.access_token_ttl_secs = number("--access-token-ttl", value("--access-token-ttl")?)?
      }
      "--refresh-token-ttl" => {
        config.refresh_token_ttl_secs =
          number("--refresh-token-ttl", value("--refresh-token-ttl")?)?
      }
      "--require-email-confirmation" if inline.is_none() => {
        config.require_email_confirmation = true
      }
      "--custom-token-secret" => custom_secret.set(value("--custom-token-secret")?)?,
      "--custom-token-secret-file" => {
        let path = value("--custom-token-secret-file")?;
        custom_secret.set(read_secret_file("--custom-token-secret-file", &path)?)?
      }
      "--control-token" => control_token.set(value("--control-token")?)?,
      "--control-token-file" => {
        let path = value("--control-token-file")?;
        control_token.set(read_secret_file("--control-token-file", &path)?)?
      }
      "--allow-host" => config.allowed_hosts.push(value("--allow-host")?),
      "--header-read-timeout-ms" => {
        config.header_read_timeout_ms = number(
          "--header-read-timeout-ms",
          value("--header-read-timeout-ms")?,
        )?
      }
      "--idle-timeout-ms" => {
        config.idle_timeout_ms = number("--idle-timeout-ms", value("--idle-timeout-ms")?)?
      }
      "--max-connections" => {
        config.max_connections = number("--max-connections", value("--max-connections")?)?
      }
      "--max-requests-per-connection" => {
        config.max_requests_per_connection = number(
          "--max-requests-per-connection",
          value("--max-requests-per-connection")?,
        )?
      }
      "--function-identity-field" => {
        config.function_identity_field = value("--function-identity-field")?
      }
      "--max-api-keys" => {
        config.max_api_keys_per_user = number("--max-api-keys", value("--max-api-keys")?)?
      }
      "--password-iterations" => {
        config.password_iterations =
          number("--password-iterations", value("--password-iterations")?)?;
        // As before argon2id existed: a PBKDF2 count given means PBKDF2.
        config.password_hash = Some(crate::PasswordHashConfig::Pbkdf2 { iterations: None });
      }
      "--json" if inline.is_none() => json = true,
      "--threads" if mode != Mode::NodeEmulator => {
        threads = number("--threads", value("--threads")?)?;
        if threads == 0 {
          return Err("--threads must be at least 1".into());
        }
      }
      // Said plainly rather than "unknown": the binary's help lists it.
      "--threads" => {
        return Err(
          "--threads is taken only by the realm-auth-server binary (this emulator runs on the addon's threads)"
            .into(),
        );
      }
      "--signing-keys-file" => {
        config.signing_keys_file = Some(value("--signing-keys-file")?.into())
      }
      "--custom-token-jwks-file" => {
        config.custom_token_jwks_file = Some(value("--custom-token-jwks-file")?.into())
      }
      "--access-log" if inline.is_none() => config.access_log = true,
      "--shutdown-grace-ms" => {
        config.shutdown_grace_ms = Some(number(
          "--shutdown-grace-ms",
          value("--shutdown-grace-ms")?,
        )?)
      }
      "--no-metrics" if inline.is_none() => config.metrics = false,
      "--tls-cert" => config.tls_cert_file = Some(value("--tls-cert")?.into()),
      "--tls-key" => config.tls_key_file = Some(value("--tls-key")?.into()),
      other => return Err(format!("unknown argument '{other}'")),
    }
  }
  config.control_token = control_token.resolve(env).or(config.control_token);
  config.custom_token_secret = custom_secret.resolve(env).or(config.custom_token_secret);
  match (sqlite, postgres_url.resolve(env)) {
    (Some(_), Some(_)) => return Err("--sqlite and --postgres exclude each other".into()),
    (Some(path), None) => config.store = crate::StoreConfig::Sqlite { path: path.into() },
    // The schema may come from the file; the URL (it may hold a password) from anywhere.
    (None, Some(url)) => {
      let schema = match config.store {
        crate::StoreConfig::Postgres { schema, .. } => schema,
        _ => None,
      };
      config.store = crate::StoreConfig::Postgres { url, schema }
    }
    (None, None) => {}
  }
  if serve {
    if config.store == crate::StoreConfig::Memory {
      return Err(
        "serve keeps its data in SQLite or PostgreSQL: give --sqlite <file>, --postgres <url> \
         (or REALM_AUTH_SERVER_POSTGRES_URL) or a config file with a \"store\""
          .into(),
      );
    }
    config.control_api = false;
    // Production keeps its limits: 0 (off) is for tests that need a connection held open.
    for (name, value) in [
      ("headerReadTimeoutMs", config.header_read_timeout_ms),
      ("idleTimeoutMs", config.idle_timeout_ms),
      ("maxConnections", config.max_connections as u64),
    ] {
      if value == 0 {
        return Err(format!("{name} must not be 0 in serve: its limits stay on"));
      }
    }
    if config.providers.is_none() {
      config.providers = Some(SERVE_PROVIDERS.iter().map(|p| p.to_string()).collect());
    }
  }
  Ok(Some(Cli {
    config,
    threads,
    json,
  }))
}

/// The value of `--config`, if given (as `--config <f>` or `--config=<f>`).
fn config_path(args: &[String]) -> Result<Option<String>, String> {
  let mut found = None;
  let mut iter = args.iter();
  while let Some(arg) = iter.next() {
    let path = if arg == "--config" {
      iter.next().cloned().ok_or("--config needs a value")?
    } else if let Some(path) = arg.strip_prefix("--config=") {
      path.to_string()
    } else {
      continue;
    };
    if found.replace(path).is_some() {
      return Err("--config given twice".into());
    }
  }
  Ok(found)
}

/// The line `serve` prints once it listens.
pub fn serving_line(base_url: &str, app_ids: &[&str]) -> String {
  format!(
    "realm-auth-server listening on {base_url} (app ids {})",
    app_ids.join(", ")
  )
}

/// [`serving_line`] with `--json`.
pub fn serving_json(base_url: &str, app_ids: &[&str]) -> String {
  format!(
    "{{\"baseUrl\":{},\"appIds\":{}}}",
    json_string(base_url),
    serde_json::Value::from(app_ids.to_vec())
  )
}

/// The line printed once the emulator listens.
pub fn listening_line(base_url: &str, app_id: &str) -> String {
  format!("App Services emulator listening on {base_url} (app id {app_id})")
}

/// The line printed after the listening line: the control token, and how to send it.
pub fn control_token_line(token: &str) -> String {
  format!("Control token: {token} (send it to /_emulator/ as Authorization: Bearer <token>)")
}

/// The listening line with `--json` (no second line: the token is in it). The Node command
/// prints the same object, keys in the same order (spelled out here: `json!` orders keys by name
/// or by insertion, depending on features).
pub fn listening_json(base_url: &str, app_id: &str, control_token: &str) -> String {
  format!(
    "{{\"baseUrl\":{},\"appId\":{},\"controlToken\":{}}}",
    json_string(base_url),
    json_string(app_id),
    json_string(control_token)
  )
}

/// A failure with `--json`: the object every `realm-auth-server` command prints on standard
/// error. `code` is the numeric error code (an [`crate::EmulatorErrorCode`] here; `null` for bad
/// usage); `errorCode`, a server's `error_code` string, the emulator's own failures never have.
pub fn error_json(code: Option<u32>, message: &str) -> String {
  let code = code.map_or_else(|| "null".to_string(), |c| c.to_string());
  format!(
    "{{\"code\":{code},\"errorCode\":null,\"message\":{}}}",
    json_string(message)
  )
}

fn json_string(s: &str) -> String {
  serde_json::Value::from(s).to_string()
}

#[cfg(test)]
mod tests {
  use super::*;

  fn args(s: &str) -> Vec<String> {
    s.split_whitespace().map(String::from).collect()
  }

  #[test]
  fn parses_flags() {
    let cli = parse_binary_args(args(
      "--port 9090 --app-id my-app --host 0.0.0.0 --data /tmp/x.json --access-token-ttl 5 --require-email-confirmation --custom-token-secret s --threads 2 --json",
    ))
    .unwrap()
    .unwrap();
    assert_eq!(cli.config.port, 9090);
    assert_eq!(cli.config.app_id, "my-app");
    assert_eq!(cli.config.host, "0.0.0.0");
    assert_eq!(cli.config.access_token_ttl_secs, 5);
    assert!(cli.config.require_email_confirmation);
    assert_eq!(cli.config.custom_token_secret.as_deref(), Some("s"));
    assert_eq!(cli.threads, 2);
    assert!(cli.json);
    assert!(!parse_args(args("--port=1")).unwrap().unwrap().json);
    assert!(parse_args(args("--help")).unwrap().is_none());
  }

  #[test]
  fn store_flags() {
    let no_env = |_: &str| None;
    let store =
      |a: &str| parse(args(a), Mode::BinaryEmulator, &no_env).map(|c| c.unwrap().config.store);
    assert_eq!(store("").unwrap(), crate::StoreConfig::Memory);
    assert_eq!(
      store("--sqlite /tmp/s.db").unwrap(),
      crate::StoreConfig::Sqlite {
        path: "/tmp/s.db".into()
      }
    );
    assert_eq!(
      store("--postgres postgres://u@h/db").unwrap(),
      crate::StoreConfig::Postgres {
        url: "postgres://u@h/db".into(),
        schema: None
      }
    );
    assert!(store("--sqlite a --postgres b").is_err());
    let env = |k: &str| (k == POSTGRES_URL_ENV).then(|| "postgres://e@h/db".to_string());
    let from_env = parse(args(""), Mode::BinaryEmulator, &env)
      .unwrap()
      .unwrap()
      .config
      .store;
    assert!(
      matches!(from_env, crate::StoreConfig::Postgres { url, .. } if url == "postgres://e@h/db")
    );
  }

  #[test]
  fn rejects_bad_args() {
    for bad in ["--port", "--port x", "--bogus", "--json=1"] {
      assert!(parse_args(args(bad)).is_err(), "{bad}");
      assert!(parse_binary_args(args(bad)).is_err(), "{bad}");
    }
    assert!(parse_binary_args(args("--threads 0")).is_err());
    let refused = parse_args(args("--threads 2")).err().unwrap();
    assert!(
      refused.contains("only by the realm-auth-server binary"),
      "{refused}"
    );
  }

  /// Every flag a help text lists is one its command accepts, and `--threads` is listed
  /// exactly where it is accepted.
  #[test]
  fn help_lists_what_each_command_accepts() {
    fn flags(usage: &str) -> Vec<&str> {
      usage
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        .flat_map(|w| w.split(','))
        .filter(|w| w.starts_with("--"))
        .collect()
    }
    for (usage, parse) in [
      (
        USAGE,
        parse_args as fn(Vec<String>) -> Result<Option<Cli>, String>,
      ),
      (
        BINARY_USAGE,
        parse_binary_args as fn(Vec<String>) -> Result<Option<Cli>, String>,
      ),
    ] {
      let listed = flags(usage);
      assert!(listed.len() >= 12, "{listed:?}");
      for flag in listed {
        if let Err(e) = parse(vec![flag.to_string(), "1".into()]) {
          assert!(
            !e.contains(&format!("'{flag}'")) && !e.contains("only by"),
            "{flag}: {e}"
          );
        }
      }
      assert!(usage.contains("docs/EMULATOR.md"));
    }
    assert!(BINARY_USAGE.contains("--threads <n>"));
    assert!(!flags(USAGE).contains(&"--threads"));
  }

  #[test]
  fn json_lines() {
    assert_eq!(
      listening_json("http://127.0.0.1:1", "a", "t"),
      r#"{"baseUrl":"http://127.0.0.1:1","appId":"a","controlToken":"t"}"#
    );
    assert!(control_token_line("abc").starts_with("Control token: abc ("));
    let v: serde_json::Value = serde_json::from_str(&error_json(None, "bad \"x\"")).unwrap();
    assert_eq!(
      v,
      serde_json::json!({ "code": null, "errorCode": null, "message": "bad \"x\"" })
    );
    assert_eq!(
      error_json(Some(4917), "taken"),
      r#"{"code":4917,"errorCode":null,"message":"taken"}"#
    );
    let v: serde_json::Value =
      serde_json::from_str(&listening_json("http://127.0.0.1:1", "a", "t\"")).unwrap();
    assert_eq!(
      v,
      serde_json::json!({ "baseUrl": "http://127.0.0.1:1", "appId": "a", "controlToken": "t\"" })
    );
  }

  /// A file per test, removed at the end.
  struct TempFile(std::path::PathBuf);

  impl TempFile {
    fn new(name: &str, text: &str) -> TempFile {
      let path = std::env::temp_dir().join(format!("emu-cli-{}-{name}", std::process::id()));
      std::fs::write(&path, text).unwrap();
      TempFile(path)
    }
    fn arg(&self) -> String {
      self.0.display().to_string()
    }
  }

  impl Drop for TempFile {
    fn drop(&mut self) {
      let _ = std::fs::remove_file(&self.0);
    }
  }

  #[test]
  fn secrets_from_files_and_the_environment() {
    let no_env = |_: &str| None;
    let env = |name: &str| match name {
      CONTROL_TOKEN_ENV => Some("token-from-the-environment".to_string()),
      CUSTOM_TOKEN_SECRET_ENV => Some("secret-from-the-environment".to_string()),
      _ => None,
    };
    let parsed = |a: Vec<String>, env: &dyn Fn(&str) -> Option<String>| {
      parse(a, Mode::NodeEmulator, env).map(|c| c.unwrap().config)
    };
    let config = parsed(args(""), &no_env).unwrap();
    assert_eq!(
      (config.control_token, config.custom_token_secret),
      (None, None)
    );
    let config = parsed(args(""), &env).unwrap();
    assert_eq!(
      config.control_token.as_deref(),
      Some("token-from-the-environment")
    );
    assert_eq!(
      config.custom_token_secret.as_deref(),
      Some("secret-from-the-environment")
    );

    // A file beats the environment; its last line break is not part of the secret.
    let token = TempFile::new("token", "token-from-a-file-0123\n");
    let secret = TempFile::new("secret", "secret-from-a-file\r\n");
    let config = parsed(
      vec![
        "--control-token-file".into(),
        token.arg(),
        format!("--custom-token-secret-file={}", secret.arg()),
      ],
      &env,
    )
    .unwrap();
    assert_eq!(
      config.control_token.as_deref(),
      Some("token-from-a-file-0123")
    );
    assert_eq!(
      config.custom_token_secret.as_deref(),
      Some("secret-from-a-file")
    );
    // So does the flag.
    let config = parsed(args("--control-token flag-token-0123456"), &env).unwrap();
    assert_eq!(config.control_token.as_deref(), Some("flag-token-0123456"));

    // Two ways at once, an empty or a missing file: refused.
    let both = vec![
      "--control-token".into(),
      "x".into(),
      "--control-token-file".into(),
      token.arg(),
    ];
    assert!(parsed(both, &no_env).unwrap_err().contains("given twice"));
    let empty = TempFile::new("empty", "\n");
    let err = parsed(
      vec!["--custom-token-secret-file".into(), empty.arg()],
      &no_env,
    );
    assert!(err.unwrap_err().contains("is empty"));
    let err = parsed(args("--control-token-file /nonexistent/token"), &no_env);
    assert!(
      err
        .unwrap_err()
        .contains("cannot read '/nonexistent/token'")
    );
  }

  #[test]
  fn key_file_flags_and_settings() {
    let no_env = |_: &str| None;
    let cli = |a: &str, mode| parse(args(a), mode, &no_env).unwrap().unwrap().config;
    let config = cli(
      "--signing-keys-file keys.json --custom-token-jwks-file=jwks.json",
      Mode::BinaryEmulator,
    );
    assert_eq!(
      (config.signing_keys_file, config.custom_token_jwks_file),
      (Some("keys.json".into()), Some("jwks.json".into()))
    );
    let file = TempFile::new(
      "keys-serve.json",
      r#"{"store": {"kind": "sqlite", "path": "a.db"}, "signingKeysFile": "/etc/k.json",
          "customTokenJwksFile": "/etc/jwks.json"}"#,
    );
    let config = parse(vec!["--config".into(), file.arg()], Mode::Serve, &no_env)
      .unwrap()
      .unwrap()
      .config;
    assert_eq!(
      (config.signing_keys_file, config.custom_token_jwks_file),
      (Some("/etc/k.json".into()), Some("/etc/jwks.json".into()))
    );
    assert!(
      SERVE_USAGE.contains("--signing-keys-file") && USAGE.contains("--custom-token-jwks-file")
    );
  }

  #[test]
  fn serve_reads_a_config_file_and_refuses_the_emulators_options() {
    let no_env = |_: &str| None;
    let serve = |a: Vec<String>| parse(a, Mode::Serve, &no_env).map(|c| c.unwrap().config);
    let file = TempFile::new(
      "serve.json",
      r#"{"port": 8080, "appId": "a", "appIds": ["b"], "passwordIterations": 7,
          "store": {"kind": "postgres", "url": "postgres://f@h/db", "schema": "s"}}"#,
    );
    let config = serve(vec!["--config".into(), file.arg()]).unwrap();
    assert!(!config.control_api);
    assert_eq!((config.port, config.app_id.as_str()), (8080, "a"));
    assert_eq!(
      (config.app_ids.clone(), config.password_iterations),
      (vec!["b".to_string()], 7)
    );
    // Flags win over the file; a URL from the command line keeps the file's schema.
    let config = serve(vec![
      format!("--config={}", file.arg()),
      "--port".into(),
      "9".into(),
      "--postgres".into(),
      "postgres://flag@h/db".into(),
    ])
    .unwrap();
    assert_eq!(config.port, 9);
    assert_eq!(
      config.store,
      crate::StoreConfig::Postgres {
        url: "postgres://flag@h/db".into(),
        schema: Some("s".into())
      }
    );
    let err = |a: &str| serve(args(a)).unwrap_err();
    assert!(err("").contains("SQLite or PostgreSQL"));
    assert!(err("--sqlite a.db --data x.json").contains("--data is an emulator option"));
    assert!(err("--sqlite a.db --control-token-file t").contains("--control-token"));
    assert!(err("--sqlite a.db --allow-host=h").contains("--allow-host"));
    assert!(err("--sqlite a.db --idle-timeout-ms 0").contains("idleTimeoutMs must not be 0"));
    assert!(err("--sqlite a.db --max-connections 0").contains("maxConnections"));
    assert!(err("--config /nonexistent.json").contains("cannot read"));
    let twice = vec!["--config".into(), file.arg(), "--config".into(), file.arg()];
    assert!(serve(twice).unwrap_err().contains("twice"));
    assert!(
      parse(args("--config x.json"), Mode::BinaryEmulator, &no_env)
        .err()
        .unwrap()
        .contains("only by `serve`")
    );
    for (text, why) in [
      ("[]", "JSON object"),
      ("{oops", "not valid JSON"),
      (r#"{"prot": 1}"#, "unknown setting 'prot'"),
      (
        r#"{"controlToken": "0123456789abcdef"}"#,
        "emulator setting",
      ),
      (r#"{"port": "x"}"#, "invalid type"),
      // Nested objects refuse unknown keys too: a misspelt one would be ignored in silence.
      (
        r#"{"store": {"kind": "postgres", "url": "postgres://h/db", "shema": "a"}}"#,
        "'store': unknown field `shema`",
      ),
      (
        r#"{"store": {"kind": "sqlite", "path": "a.db", "url": "x"}}"#,
        "'store': unknown field `url`",
      ),
      (
        r#"{"passwordHash": {"algorithm": "argon2id", "memoryKiB": 65536}}"#,
        "'passwordHash': unknown field `memoryKiB`",
      ),
      (
        r#"{"passwordHash": {"algorithm": "pbkdf2", "iterations": 9, "salt": 1}}"#,
        "'passwordHash': unknown field `salt`",
      ),
      (
        r#"{"loginThrottle": {"maxFailure": 3}}"#,
        "'loginThrottle': unknown field `maxFailure`",
      ),
      (
        r#"{"customTokenMetadataFields": [{"name": "x", "fieldname": "y"}]}"#,
        "'customTokenMetadataFields': unknown field `fieldname`",
      ),
      (
        r#"{"tokenDelivery": {"kind": "webhook", "url": "http://127.0.0.1:1/", "secret": 1}}"#,
        "'tokenDelivery': unknown field `secret`",
      ),
    ] {
      let e = parse_config(text).unwrap_err();
      assert!(e.contains(why), "{text}: {e}");
    }
    // The same objects spelt right are taken (the tag keys and `fieldName` included).
    parse_config(
      r#"{"store": {"kind": "postgres", "url": "postgres://h/db", "schema": "a"},
          "passwordHash": {"algorithm": "argon2id", "memoryKib": 65536, "iterations": 3, "parallelism": 1},
          "loginThrottle": {"maxFailures": 3, "windowSecs": 60, "maxLockSecs": 60, "addressMaxFailures": 9},
          "customTokenMetadataFields": [{"name": "x", "fieldName": "y", "required": true}]}"#,
    )
    .unwrap();
    // The emulator keeps its control API and every provider; serve turns custom-function off
    // unless its config lists it.
    let emulator = parse_args(args("")).unwrap().unwrap().config;
    assert!(emulator.control_api && emulator.providers.is_none());
    let providers = serve(args("--sqlite a.db")).unwrap().providers.unwrap();
    assert!(providers.contains(&"api-key".to_string()));
    assert!(!providers.contains(&"custom-function".to_string()));
    let listed = TempFile::new(
      "providers.json",
      r#"{"providers": ["custom-function"], "store": {"kind": "sqlite", "path": "a.db"}}"#,
    );
    let config = serve(vec!["--config".into(), listed.arg()]).unwrap();
    assert_eq!(config.providers.unwrap(), ["custom-function"]);
  }

  #[test]
  fn limits_and_hosts() {
    let config = parse_args(args(
      "--allow-host emu --allow-host=localhost:8000 --header-read-timeout-ms 5 --idle-timeout-ms 0 --max-connections 3 --max-requests-per-connection 7",
    ))
    .unwrap()
    .unwrap()
    .config;
    assert_eq!(config.allowed_hosts, ["emu", "localhost:8000"]);
    assert_eq!(
      (
        config.header_read_timeout_ms,
        config.idle_timeout_ms,
        config.max_connections,
        config.max_requests_per_connection
      ),
      (5, 0, 3, 7)
    );
    assert!(parse_args(args("--max-connections -1")).is_err());
  }

  #[test]
  fn serve_takes_the_operations_options_by_flag_and_by_file() {
    let no_env = |_: &str| None;
    let serve = |a: &str| parse(args(a), Mode::Serve, &no_env).map(|c| c.unwrap().config);
    let config = serve("--sqlite a.db").unwrap();
    assert!(config.metrics && !config.access_log);
    assert_eq!(config.shutdown_grace_ms, None);
    assert_eq!((config.tls_cert_file, config.tls_key_file), (None, None));
    let config = serve(
      "--sqlite a.db --access-log --no-metrics --shutdown-grace-ms=2500 --tls-cert c.pem \
       --tls-key k.pem",
    )
    .unwrap();
    assert!(config.access_log && !config.metrics);
    assert_eq!(config.shutdown_grace_ms, Some(2500));
    assert_eq!(config.tls_cert_file, Some("c.pem".into()));
    assert_eq!(config.tls_key_file, Some("k.pem".into()));
    assert!(serve("--sqlite a.db --access-log=yes").is_err());
    assert!(serve("--sqlite a.db --shutdown-grace-ms soon").is_err());
    let config = parse_config(
      r#"{"accessLog": true, "metrics": false, "shutdownGraceMs": 30000,
          "tlsCertFile": "/c.pem", "tlsKeyFile": "/k.pem"}"#,
    )
    .unwrap();
    assert!(config.access_log && !config.metrics);
    assert_eq!(config.shutdown_grace_ms, Some(30_000));
    assert_eq!(config.tls_key_file, Some("/k.pem".into()));
  }
}

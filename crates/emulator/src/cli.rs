//! Command-line parsing, shared by the `realm-auth-emulator` binary and the
//! Node package's `realm-auth-native emulator` command.

use crate::Config;

/// The help text.
pub const USAGE: &str = "\
Usage: realm-auth-emulator [options]   (or: realm-auth-native emulator [options])

A local App Services-compatible auth server (users, sessions, user and server API keys).

Options:
  --port <p>                    port to listen on (default 0: pick a free one)
  --host <h>                    interface to bind (default 127.0.0.1)
  --app-id <id>                 the app id to serve (default emulator-app)
  --data <file>                 load state from <file> and save every change to it
  --access-token-ttl <secs>     access token lifetime (default 1800)
  --refresh-token-ttl <secs>    refresh token lifetime (default 5184000)
  --require-email-confirmation  new email/password accounts start unconfirmed
  --custom-token-secret <s>     enable the custom-token provider with this HS256 secret
  --function-identity-field <f> custom-function payload field holding the id (default id)
  --max-api-keys <n>            user API keys per user (default 20)
  --password-iterations <n>     PBKDF2 iterations for passwords (default 1000)
  --threads <n>                 tokio worker threads (default 1)
  -h, --help                    print this help

Control API: http://<host>:<port>/_emulator/ (see the crate README).
";

/// Parsed arguments.
pub struct Cli {
  /// The emulator settings.
  pub config: Config,
  /// Tokio worker threads (the binary only; in-process emulators share the host runtime).
  pub threads: usize,
}

/// Parses the arguments after the program name; `Ok(None)` means help was asked for.
pub fn parse_args(args: impl IntoIterator<Item = String>) -> Result<Option<Cli>, String> {
  let mut config = Config::default();
  let mut threads = 1usize;
  let mut args = args.into_iter();
  while let Some(arg) = args.next() {
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
      "--port" => config.port = number("--port", value("--port")?)?,
      "--host" => config.host = value("--host")?,
      "--app-id" => config.app_id = value("--app-id")?,
      "--data" => config.data_file = Some(value("--data")?.into()),
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
      "--custom-token-secret" => config.custom_token_secret = Some(value("--custom-token-secret")?),
      "--function-identity-field" => {
        config.function_identity_field = value("--function-identity-field")?
      }
      "--max-api-keys" => {
        config.max_api_keys_per_user = number("--max-api-keys", value("--max-api-keys")?)?
      }
      "--password-iterations" => {
        config.password_iterations =
          number("--password-iterations", value("--password-iterations")?)?
      }
      "--threads" => {
        threads = number("--threads", value("--threads")?)?;
        if threads == 0 {
          return Err("--threads must be at least 1".into());
        }
      }
      other => return Err(format!("unknown argument '{other}'")),
    }
  }
  Ok(Some(Cli { config, threads }))
}

/// The line printed once the emulator listens.
pub fn listening_line(base_url: &str, app_id: &str) -> String {
  format!("App Services emulator listening on {base_url} (app id {app_id})")
}

#[cfg(test)]
mod tests {
  use super::*;

  fn args(s: &str) -> Vec<String> {
    s.split_whitespace().map(String::from).collect()
  }

  #[test]
  fn parses_flags() {
    let cli = parse_args(args(
      "--port 9090 --app-id my-app --host 0.0.0.0 --data /tmp/x.json --access-token-ttl 5 --require-email-confirmation --custom-token-secret s --threads 2",
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
    assert!(parse_args(args("--port=1")).unwrap().is_some());
    assert!(parse_args(args("--help")).unwrap().is_none());
  }

  #[test]
  fn rejects_bad_args() {
    assert!(parse_args(args("--port")).is_err());
    assert!(parse_args(args("--port x")).is_err());
    assert!(parse_args(args("--bogus")).is_err());
    assert!(parse_args(args("--threads 0")).is_err());
  }
}

//! `realm-auth-emulator`: run the emulator from the command line.

use std::io::Write;
use std::process::ExitCode;

use realm_auth_emulator::{Config, Emulator};

const USAGE: &str = "\
Usage: realm-auth-emulator [options]

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

struct Cli {
  config: Config,
  threads: usize,
}

fn parse_args(args: impl IntoIterator<Item = String>) -> Result<Option<Cli>, String> {
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

/// Resolves on Ctrl-C, or SIGTERM on Unix.
async fn shutdown_signal() {
  #[cfg(unix)]
  {
    use tokio::signal::unix::{SignalKind, signal};
    match signal(SignalKind::terminate()) {
      Ok(mut term) => {
        tokio::select! {
          _ = tokio::signal::ctrl_c() => {}
          _ = term.recv() => {}
        }
      }
      Err(_) => {
        let _ = tokio::signal::ctrl_c().await;
      }
    }
  }
  #[cfg(not(unix))]
  {
    let _ = tokio::signal::ctrl_c().await;
  }
}

fn main() -> ExitCode {
  let cli = match parse_args(std::env::args().skip(1)) {
    Ok(Some(cli)) => cli,
    Ok(None) => {
      print!("{USAGE}");
      return ExitCode::SUCCESS;
    }
    Err(message) => {
      eprintln!("realm-auth-emulator: {message}\n\n{USAGE}");
      return ExitCode::from(2);
    }
  };
  // One thread by default: a current-thread runtime is the cheapest way to serve on one core.
  let runtime = if cli.threads == 1 {
    tokio::runtime::Builder::new_current_thread()
      .enable_all()
      .build()
  } else {
    tokio::runtime::Builder::new_multi_thread()
      .worker_threads(cli.threads)
      .enable_all()
      .build()
  };
  let runtime = match runtime {
    Ok(rt) => rt,
    Err(e) => {
      eprintln!("realm-auth-emulator: cannot start the runtime: {e}");
      return ExitCode::FAILURE;
    }
  };
  runtime.block_on(async move {
    let emulator = match Emulator::start(cli.config).await {
      Ok(emulator) => emulator,
      Err(e) => {
        eprintln!("realm-auth-emulator: {e}");
        return ExitCode::FAILURE;
      }
    };
    let mut stdout = std::io::stdout().lock();
    let _ = writeln!(
      stdout,
      "App Services emulator listening on {} (app id {})",
      emulator.base_url(),
      emulator.app_id()
    );
    let _ = stdout.flush();
    drop(stdout);
    shutdown_signal().await;
    emulator.stop().await;
    ExitCode::SUCCESS
  })
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

//! `realm-auth-emulator`: run the emulator from the command line.

use std::io::Write;
use std::process::ExitCode;

use realm_auth_emulator::Emulator;
use realm_auth_emulator::cli::{USAGE, listening_line, parse_args};

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
      "{}",
      listening_line(&emulator.base_url(), emulator.app_id())
    );
    let _ = stdout.flush();
    drop(stdout);
    shutdown_signal().await;
    emulator.stop().await;
    ExitCode::SUCCESS
  })
}

//! The `--data` file: state survives a restart, the file holds no secret in clear, and writes are
//! atomic (temp file + rename).

mod common;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use common::*;
use realm_auth_server::{Config, Emulator, EmulatorError};
use serde_json::json;

fn temp_dir(tag: &str) -> PathBuf {
  let nanos = std::time::SystemTime::now()
    .duration_since(std::time::UNIX_EPOCH)
    .unwrap()
    .as_nanos();
  let dir = std::env::temp_dir().join(format!("emu-{tag}-{}-{nanos}", std::process::id()));
  std::fs::create_dir_all(&dir).unwrap();
  dir
}

fn config(path: &Path) -> Config {
  Config {
    data_file: Some(path.to_path_buf()),
    ..Config::default()
  }
}

#[tokio::test]
async fn state_survives_restart_without_secrets_in_the_file() {
  let dir = temp_dir("restart");
  let path = dir.join("state.json");
  let emu = start_with(config(&path)).await;
  let password = "PASSWORD-SENTINEL-1";
  assert_eq!(emu.register("keep@example.com", password).await.status, 201);
  let s = emu.login_email("keep@example.com", password).await;
  let key = emu.create_key(&s.refresh, "kept").await.json();
  let user_secret = key["key"].as_str().unwrap().to_string();
  emu
    .api(
      "PUT",
      &format!("/auth/api_keys/{}/disable", key["_id"].as_str().unwrap()),
      Some(&s.refresh),
      None,
    )
    .await;
  let control = emu.emulator.control();
  let server = control.create_server_api_key("svc").unwrap();
  let made = control
    .create_user("made@example.com", "PASSWORD-SENTINEL-2")
    .unwrap();
  control
    .set_custom_data(&s.user_id, json!({"kept": true}))
    .unwrap();
  emu.emulator.stop().await;

  let text = std::fs::read_to_string(&path).unwrap();
  for secret in [
    password,
    "PASSWORD-SENTINEL-2",
    user_secret.as_str(),
    server.key.as_str(),
    s.refresh.as_str(),
  ] {
    assert!(
      !text.contains(secret),
      "the data file holds a secret in clear"
    );
  }
  serde_json::from_str::<serde_json::Value>(&text).expect("valid JSON");

  let emu = start_with(config(&path)).await;
  // Old tokens still verify (the signing secret was persisted) and the session lives on.
  let keys = emu
    .api("GET", "/auth/api_keys", Some(&s.refresh), None)
    .await;
  assert_eq!(keys.status, 200, "{}", keys.text());
  assert_eq!(
    keys.json(),
    json!([{"_id": key["_id"], "name": "kept", "disabled": true}])
  );
  let again = emu.login_email("keep@example.com", password).await;
  assert_eq!(again.user_id, s.user_id);
  assert_eq!(
    jwt_payload(&again.access)["user_data"],
    json!({"kept": true})
  );
  assert_eq!(
    emu
      .login_email("made@example.com", "PASSWORD-SENTINEL-2")
      .await
      .user_id,
    made.id
  );
  let svc = emu.login("api-key", &json!({"key": server.key})).await;
  assert_eq!(
    emu
      .api("GET", "/auth/profile", Some(&svc.access), None)
      .await
      .json()["type"],
    "server"
  );
  // The disabled key is still disabled; enabling it makes it usable again.
  emu
    .login_raw("api-key", &json!({"key": user_secret}))
    .await
    .assert_error(401, "AuthError", "invalid API key");
  emu
    .api(
      "PUT",
      &format!("/auth/api_keys/{}/enable", key["_id"].as_str().unwrap()),
      Some(&s.refresh),
      None,
    )
    .await;
  assert_eq!(
    emu
      .login("api-key", &json!({"key": user_secret}))
      .await
      .user_id,
    s.user_id
  );
  emu.emulator.stop().await;
  std::fs::remove_dir_all(&dir).unwrap();
}

#[tokio::test]
async fn every_mutation_is_on_disk_before_the_response() {
  let dir = temp_dir("durable");
  let path = dir.join("state.json");
  let emu = start_with(config(&path)).await;
  let s = emu.new_user("durable@example.com").await;
  let key = emu.create_key(&s.refresh, "now").await.json();
  // No stop, no flush: the file already has the key.
  let text = std::fs::read_to_string(&path).unwrap();
  assert!(text.contains(key["_id"].as_str().unwrap()));
  assert!(text.contains("durable@example.com"));
  emu.emulator.stop().await;
  std::fs::remove_dir_all(&dir).unwrap();
}

#[tokio::test]
async fn writes_are_atomic_renames() {
  let dir = temp_dir("atomic");
  let path = dir.join("state.json");
  let emu = Arc::new(start_with(config(&path)).await);
  assert!(path.exists(), "the file is written at start");
  // Held open, the first file keeps its inode: a rename leaves it unlinked
  // (and its number cannot be reused meanwhile), an in-place rewrite would not.
  #[cfg(unix)]
  let first = std::fs::File::open(&path).unwrap();

  // A reader that must only ever see complete JSON while writers hammer the file.
  let done = Arc::new(AtomicBool::new(false));
  let reader = {
    let (path, done) = (path.clone(), done.clone());
    std::thread::spawn(move || {
      let mut reads = 0;
      while !done.load(Ordering::Relaxed) {
        let bytes = std::fs::read(&path).expect("the file never disappears");
        serde_json::from_slice::<serde_json::Value>(&bytes).expect("never half-written");
        reads += 1;
      }
      reads
    })
  };
  let mut writers = Vec::new();
  for i in 0..8 {
    let emu = emu.clone();
    writers.push(tokio::spawn(async move {
      for j in 0..5 {
        emu
          .register(&format!("w{i}-{j}@example.com"), "password1")
          .await;
      }
    }));
  }
  for w in writers {
    w.await.unwrap();
  }
  done.store(true, Ordering::Relaxed);
  assert!(reader.join().unwrap() > 0);

  #[cfg(unix)]
  {
    use std::os::unix::fs::MetadataExt;
    let meta = std::fs::metadata(&path).unwrap();
    let first = first.metadata().unwrap();
    assert_eq!(
      first.nlink(),
      0,
      "replaced by rename, not rewritten in place"
    );
    assert_ne!(meta.ino(), first.ino());
    assert_eq!(meta.mode() & 0o777, 0o600, "owner-only permissions");
  }
  emu.emulator.stop().await;
  let text = std::fs::read_to_string(&path).unwrap();
  assert!(
    text.matches("@example.com\"").count() >= 40,
    "every registration is on disk"
  );
  let names: Vec<String> = std::fs::read_dir(&dir)
    .unwrap()
    .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
    .collect();
  assert_eq!(names, ["state.json"], "temp files left behind");
  std::fs::remove_dir_all(&dir).unwrap();
}

#[tokio::test]
async fn corrupt_file_refuses_to_start_and_is_left_alone() {
  let dir = temp_dir("corrupt");
  let path = dir.join("state.json");
  std::fs::write(&path, "{ this is not the emulator's file").unwrap();
  let err = Emulator::start(config(&path)).await.unwrap_err();
  assert!(matches!(err, EmulatorError::Data(_)), "{err:?}");
  assert_eq!(
    std::fs::read_to_string(&path).unwrap(),
    "{ this is not the emulator's file"
  );
  std::fs::remove_dir_all(&dir).unwrap();
}

#[tokio::test]
async fn without_a_data_file_state_is_in_memory() {
  let first = start().await;
  let s = first.new_user("mem@example.com").await;
  first.emulator.stop().await;
  let second = start().await;
  second
    .api("GET", "/auth/api_keys", Some(&s.refresh), None)
    .await
    .assert_error(401, "InvalidSession", "");
  second
    .login_raw(
      "local-userpass",
      &json!({"username": "mem@example.com", "password": "password1"}),
    )
    .await
    .assert_error(401, "InvalidPassword", "");
}

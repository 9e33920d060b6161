//! Signing keys from a file, with rotation (`Config::signing_keys_file`), and RS256 custom tokens
//! verified with a JWKS file (`Config::custom_token_jwks_file`), over HTTP. Restarts keep the
//! users and sessions in one SQLite file, as a production server's restart does.

mod common;

use std::path::{Path, PathBuf};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use common::{Emu, Session, start_with};
use realm_auth_server::{Config, Emulator, EmulatorError, StoreConfig, sign_hs256};
use rsa::pkcs1v15::SigningKey;
use rsa::sha2::Sha256;
use rsa::signature::{SignatureEncoding, Signer};
use serde_json::{Value, json};

const SECRET_A: &str = "first-test-signing-secret-32-bytes-or-more";
const SECRET_B: &str = "second-test-signing-secret-32-bytes-or-more";

/// A temporary folder for a test's files (keys, JWKS, the SQLite store), removed at the end.
struct Dir(PathBuf);

impl Dir {
  fn new(name: &str) -> Dir {
    let nanos = std::time::SystemTime::now()
      .duration_since(std::time::UNIX_EPOCH)
      .unwrap()
      .as_nanos();
    let dir = std::env::temp_dir().join(format!(
      "realm-auth-keys-{name}-{}-{nanos}",
      std::process::id()
    ));
    std::fs::create_dir_all(&dir).unwrap();
    Dir(dir)
  }

  fn write(&self, name: &str, value: &Value) -> PathBuf {
    let path = self.0.join(name);
    std::fs::write(&path, value.to_string()).unwrap();
    path
  }

  fn store(&self) -> StoreConfig {
    StoreConfig::Sqlite {
      path: self.0.join("store.db"),
    }
  }
}

impl Drop for Dir {
  fn drop(&mut self) {
    let _ = std::fs::remove_dir_all(&self.0);
  }
}

/// A server on the folder's SQLite store, with the keys file `keys` (if any).
async fn start(dir: &Dir, keys: Option<&Path>) -> Emu {
  start_with(Config {
    store: dir.store(),
    signing_keys_file: keys.map(Path::to_path_buf),
    ..Config::default()
  })
  .await
}

fn keys_file(entries: &[(&str, &str)]) -> Value {
  json!({"keys": entries.iter().map(|(kid, secret)| json!({"kid": kid, "secret": secret}))
    .collect::<Vec<_>>()})
}

/// The JOSE header of a token.
fn header(token: &str) -> Value {
  let part = token.split('.').next().unwrap();
  serde_json::from_slice(&B64.decode(part).unwrap()).unwrap()
}

/// Whether a session still works: its access token reads the profile and its refresh token
/// mints a new access token (which is returned).
async fn check_session(emu: &Emu, s: &Session) -> Result<String, String> {
  let profile = emu.api("GET", "/auth/profile", Some(&s.access), None).await;
  let refreshed = emu
    .api("POST", "/auth/session", Some(&s.refresh), None)
    .await;
  match (profile.status, refreshed.status) {
    (200, 201) => Ok(
      refreshed.json()["access_token"]
        .as_str()
        .unwrap()
        .to_string(),
    ),
    _ => Err(format!(
      "{}: {} / {}",
      profile.status,
      profile.text(),
      refreshed.text()
    )),
  }
}

#[tokio::test]
async fn keys_rotate_across_restarts() {
  let dir = Dir::new("rotate");
  let keys = dir.write("keys.json", &keys_file(&[("a", SECRET_A)]));
  let emu = start(&dir, Some(&keys)).await;
  let s_a = emu.new_user("rotate@example.com").await;
  assert_eq!(
    header(&s_a.refresh),
    json!({"alg": "HS256", "kid": "a", "typ": "JWT"})
  );
  assert_eq!(header(&s_a.access)["kid"], "a");
  emu.emulator.stop().await;

  // A restart with the same file keeps every session.
  let emu = start(&dir, Some(&keys)).await;
  check_session(&emu, &s_a).await.unwrap();
  emu.emulator.stop().await;

  // Rotated to [a, b]: tokens under a still work, new ones carry b.
  dir.write("keys.json", &keys_file(&[("a", SECRET_A), ("b", SECRET_B)]));
  let emu = start(&dir, Some(&keys)).await;
  let fresh_access = check_session(&emu, &s_a).await.unwrap();
  assert_eq!(header(&fresh_access)["kid"], "b");
  let s_b = emu.login_email("rotate@example.com", "password1").await;
  assert_eq!(header(&s_b.refresh)["kid"], "b");
  assert_eq!(header(&s_b.access)["kid"], "b");
  emu.emulator.stop().await;

  // a removed: its tokens are refused, b's keep working.
  dir.write("keys.json", &keys_file(&[("b", SECRET_B)]));
  let emu = start(&dir, Some(&keys)).await;
  emu
    .api("POST", "/auth/session", Some(&s_a.refresh), None)
    .await
    .assert_error(401, "InvalidSession", "token signing key is unknown");
  emu
    .api("GET", "/auth/profile", Some(&s_a.access), None)
    .await
    .assert_error(401, "InvalidSession", "token signing key is unknown");
  check_session(&emu, &s_b).await.unwrap();

  // A kid the file does not list, whatever the signature.
  let payload = s_b.refresh.split('.').nth(1).unwrap();
  let unknown_header = B64.encode(json!({"alg": "HS256", "kid": "zz", "typ": "JWT"}).to_string());
  let unknown = format!("{unknown_header}.{payload}.{}", B64.encode([0u8; 32]));
  emu
    .api("POST", "/auth/session", Some(&unknown), None)
    .await
    .assert_error(401, "InvalidSession", "token signing key is unknown");
  // b's header over a payload b did not sign.
  let b_header = s_b.refresh.split('.').next().unwrap();
  let forged = format!("{b_header}.{payload}.{}", B64.encode([0u8; 32]));
  emu
    .api("POST", "/auth/session", Some(&forged), None)
    .await
    .assert_error(401, "InvalidSession", "signature is invalid");
  emu.emulator.stop().await;
}

#[tokio::test]
async fn sessions_from_before_the_keys_file_survive_until_retired() {
  let dir = Dir::new("legacy");
  // No keys file: today's tokens, without kid, signed with the store's secret.
  let emu = start(&dir, None).await;
  let old = emu.new_user("legacy@example.com").await;
  assert_eq!(header(&old.refresh), json!({"alg": "HS256", "typ": "JWT"}));
  emu.emulator.stop().await;

  let keys = dir.write("keys.json", &keys_file(&[("k1", SECRET_A)]));
  let emu = start(&dir, Some(&keys)).await;
  let fresh_access = check_session(&emu, &old).await.unwrap();
  assert_eq!(header(&fresh_access)["kid"], "k1");
  let new = emu.login_email("legacy@example.com", "password1").await;
  emu.emulator.stop().await;

  // Retire the store's secret: tokens without kid are refused, keyed ones are not.
  dir.write(
    "keys.json",
    &json!({"keys": [{"kid": "k1", "secret": SECRET_A}], "acceptLegacyTokens": false}),
  );
  let emu = start(&dir, Some(&keys)).await;
  emu
    .api("POST", "/auth/session", Some(&old.refresh), None)
    .await
    .assert_error(401, "InvalidSession", "token signing key is unknown");
  check_session(&emu, &new).await.unwrap();
  emu.emulator.stop().await;

  // Back to no keys file: keyed tokens fail their signature (the store's secret did not sign
  // them), while the store's own tokens work again.
  let emu = start(&dir, None).await;
  emu
    .api("POST", "/auth/session", Some(&new.refresh), None)
    .await
    .assert_error(401, "InvalidSession", "signature is invalid");
  check_session(&emu, &old).await.unwrap();
  emu.emulator.stop().await;
}

/// The message of a start that failed on its configuration.
async fn config_error(config: Config) -> String {
  match Emulator::start(config).await {
    Err(EmulatorError::Config(message)) => message,
    Err(other) => panic!("not a configuration error: {other}"),
    Ok(_) => panic!("started"),
  }
}

#[tokio::test]
async fn bad_key_files_fail_the_start_without_quoting_secrets() {
  let dir = Dir::new("bad");
  let with_keys = |value: &Value| Config {
    signing_keys_file: Some(dir.write("keys.json", value)),
    ..Config::default()
  };
  let short = config_error(with_keys(&keys_file(&[("a", "too-short-secret")]))).await;
  assert!(
    short.contains("32 bytes") && !short.contains("too-short"),
    "{short}"
  );
  let twice = config_error(with_keys(&keys_file(&[("a", SECRET_A), ("a", SECRET_B)]))).await;
  assert!(
    twice.contains("twice") && !twice.contains(SECRET_A),
    "{twice}"
  );
  let empty = config_error(with_keys(&json!({"keys": []}))).await;
  assert!(empty.contains("empty"), "{empty}");
  let missing = config_error(Config {
    signing_keys_file: Some(dir.0.join("absent.json")),
    ..Config::default()
  })
  .await;
  assert!(missing.contains("absent.json"), "{missing}");
  let jwks = config_error(Config {
    custom_token_jwks_file: Some(dir.write("jwks.json", &json!({"keys": [{"kty": "oct"}]}))),
    ..Config::default()
  })
  .await;
  assert!(jwks.contains("no RS256 key"), "{jwks}");
  // The one secret a Config holds itself is redacted.
  let debug = format!(
    "{:?}",
    Config {
      custom_token_secret: Some(SECRET_A.into()),
      ..Config::default()
    }
  );
  assert!(debug.contains("<redacted>") && !debug.contains(SECRET_A));
  let audience = config_error(Config {
    custom_token_secret: Some("s".into()),
    custom_token_audience: vec!["".into()],
    ..Config::default()
  })
  .await;
  assert!(audience.contains("customTokenAudience"), "{audience}");
}

/// The test RSA key (tests/data/rs256-test-key.json): its public JWK and a signer.
fn test_key() -> (Value, SigningKey<Sha256>) {
  let jwk: Value = serde_json::from_str(include_str!("data/rs256-test-key.json")).unwrap();
  let int =
    |name: &str| rsa::BigUint::from_bytes_be(&B64.decode(jwk[name].as_str().unwrap()).unwrap());
  let private =
    rsa::RsaPrivateKey::from_components(int("n"), int("e"), int("d"), vec![int("p"), int("q")])
      .unwrap();
  let public = json!({"kty": "RSA", "use": "sig", "alg": "RS256", "kid": jwk["kid"],
                      "n": jwk["n"], "e": jwk["e"]});
  (public, SigningKey::new(private))
}

/// A JWT with this header and these claims, signed RS256 by `key`.
fn sign_rs256(key: &SigningKey<Sha256>, header: Value, claims: &Value) -> String {
  let input = format!(
    "{}.{}",
    B64.encode(header.to_string()),
    B64.encode(claims.to_string())
  );
  let sig = key.sign(input.as_bytes()).to_vec();
  format!("{input}.{}", B64.encode(sig))
}

fn now() -> u64 {
  std::time::SystemTime::now()
    .duration_since(std::time::UNIX_EPOCH)
    .unwrap()
    .as_secs()
}

#[tokio::test]
async fn rs256_custom_tokens_from_a_jwks_file() {
  let dir = Dir::new("jwks");
  let (public, signer) = test_key();
  let jwks = dir.write("jwks.json", &json!({"keys": [public]}));
  let emu = start_with(Config {
    custom_token_jwks_file: Some(jwks.clone()),
    ..Config::default()
  })
  .await;
  let claims = json!({"sub": "rsa-user", "exp": now() + 60, "name": "R"});
  let token = sign_rs256(
    &signer,
    json!({"alg": "RS256", "typ": "JWT", "kid": "test-rsa-1"}),
    &claims,
  );
  let s = emu.login("custom-token", &json!({"token": token})).await;
  let profile = emu
    .api("GET", "/auth/profile", Some(&s.access), None)
    .await
    .json();
  assert_eq!(profile["identities"][0]["provider_type"], "custom-token");
  assert_eq!(profile["identities"][0]["id"], "rsa-user");
  // The only key also verifies tokens without kid: the same identity.
  let no_kid = sign_rs256(&signer, json!({"alg": "RS256"}), &claims);
  assert_eq!(
    emu
      .login("custom-token", &json!({"token": no_kid}))
      .await
      .user_id,
    s.user_id
  );

  let refused = |token: String, why: &'static str| {
    let emu = &emu;
    async move {
      emu
        .login_raw("custom-token", &json!({"token": token}))
        .await
        .assert_error(401, "AuthError", why);
    }
  };
  // A wrong signature: another subject under the first token's signature.
  let (head, rest) = token.split_once('.').unwrap();
  let sig = rest.split_once('.').unwrap().1;
  let other = B64.encode(json!({"sub": "admin", "exp": now() + 60}).to_string());
  refused(format!("{head}.{other}.{sig}"), "signature is invalid").await;
  let unknown_kid = sign_rs256(
    &signer,
    json!({"alg": "RS256", "kid": "rotated-away"}),
    &claims,
  );
  refused(unknown_kid, "kid names no key").await;
  let none = format!(
    "{}.{}.",
    B64.encode(json!({"alg": "none"}).to_string()),
    B64.encode(claims.to_string())
  );
  refused(none, "must be signed with RS256").await;
  // HS256 with only a JWKS configured, even keyed with the public modulus.
  let hs = sign_hs256(public["n"].as_str().unwrap().as_bytes(), &claims);
  refused(hs, "must be signed with RS256").await;
  let expired = sign_rs256(
    &signer,
    json!({"alg": "RS256"}),
    &json!({"sub": "rsa-user", "exp": now() - 10}),
  );
  refused(expired, "expired").await;
  emu.emulator.stop().await;

  // Both configured: each algorithm verified with its own key.
  let emu = start_with(Config {
    custom_token_jwks_file: Some(jwks.clone()),
    custom_token_secret: Some("hs-secret".into()),
    ..Config::default()
  })
  .await;
  let rs = emu.login("custom-token", &json!({"token": token})).await;
  let hs = sign_hs256(b"hs-secret", &claims);
  assert_eq!(
    emu
      .login("custom-token", &json!({"token": hs}))
      .await
      .user_id,
    rs.user_id
  );
  emu
    .login_raw(
      "custom-token",
      &json!({"token": sign_hs256(b"not-it", &claims)}),
    )
    .await
    .assert_error(401, "AuthError", "signature is invalid");
  emu.emulator.stop().await;

  // An audience and an issuer, from a config file as serve reads it.
  let file = dir.write(
    "config.json",
    &json!({"customTokenJwksFile": jwks, "customTokenAudience": ["my-app"],
            "customTokenIssuer": "https://idp.test/"}),
  );
  let emu =
    start_with(realm_auth_server::cli::read_config_file(file.to_str().unwrap()).unwrap()).await;
  let signed = |claims: Value| sign_rs256(&signer, json!({"alg": "RS256"}), &claims);
  let (exp, iss) = (now() + 60, "https://idp.test/");
  let ok = signed(json!({"sub": "aud-user", "exp": exp, "aud": ["x", "my-app"], "iss": iss}));
  emu.login("custom-token", &json!({"token": ok})).await;
  for (claims, why) in [
    (
      json!({"aud": "other-app", "iss": iss}),
      "audience is not accepted",
    ),
    (json!({"iss": iss}), "audience is not accepted"),
    (json!({"aud": "my-app"}), "issuer is not accepted"),
  ] {
    let mut claims = claims;
    claims["sub"] = json!("aud-user");
    claims["exp"] = json!(exp);
    emu
      .login_raw("custom-token", &json!({"token": signed(claims)}))
      .await
      .assert_error(401, "AuthError", why);
  }
  emu.emulator.stop().await;
}

/// `realm-auth-server serve` with these arguments, in `dir`.
fn serve_command(dir: &Dir, args: &[&str]) -> std::process::Command {
  let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_realm-auth-server"));
  command
    .current_dir(&dir.0)
    .arg("serve")
    .args(["--sqlite", "store.db", "--port", "0", "--json"])
    .args(args)
    .stdin(std::process::Stdio::null());
  command
}

#[tokio::test]
async fn serve_takes_the_key_files_from_its_config_file() {
  let dir = Dir::new("serve");
  let (public, signer) = test_key();
  dir.write("keys.json", &keys_file(&[("k-serve", SECRET_A)]));
  dir.write("jwks.json", &json!({"keys": [public]}));
  dir.write(
    "server.json",
    &json!({"signingKeysFile": "keys.json", "customTokenJwksFile": "jwks.json"}),
  );
  let mut child = serve_command(&dir, &["--config", "server.json"])
    .stdout(std::process::Stdio::piped())
    .stderr(std::process::Stdio::piped())
    .spawn()
    .expect("serve starts");
  let stdout = child.stdout.take().unwrap();
  let line = tokio::task::spawn_blocking(move || {
    use std::io::BufRead;
    let mut line = String::new();
    std::io::BufReader::new(stdout)
      .read_line(&mut line)
      .unwrap();
    line
  })
  .await
  .unwrap();
  let listening: Value = serde_json::from_str(line.trim()).expect("listening line");
  let port: u16 = listening["baseUrl"]
    .as_str()
    .and_then(|u| u.rsplit(':').next())
    .and_then(|p| p.parse().ok())
    .expect("port");
  let token = sign_rs256(
    &signer,
    json!({"alg": "RS256", "kid": "test-rsa-1"}),
    &json!({"sub": "serve-user", "exp": now() + 60}),
  );
  let body = json!({"token": token}).to_string();
  let path = format!(
    "{}/app/emulator-app/auth/providers/custom-token/login",
    common::BASE
  );
  let host = format!("127.0.0.1:{port}");
  let request = common::build_request(
    "POST",
    &path,
    &[("Host", &host), ("Content-Type", "application/json")],
    Some(body.as_bytes()),
  );
  let response = common::parse_response(&common::raw_exchange(port, &request).await.unwrap());
  let _ = child.kill();
  let _ = child.wait();
  let mut stderr = String::new();
  std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut stderr).unwrap();
  assert_eq!(response.status, 200, "{}", response.text());
  // A JWKS without an audience accepts tokens issued to other apps: serve says so.
  assert!(
    stderr.contains("customTokenJwksFile without customTokenAudience"),
    "{stderr}"
  );
  assert_eq!(
    header(response.json()["refresh_token"].as_str().unwrap())["kid"],
    "k-serve"
  );

  // A bad keys file stops the start: exit code 2 (a configuration error), the file named, its
  // secret not.
  dir.write("keys.json", &keys_file(&[("k", "a-secret-far-too-short")]));
  let out = serve_command(&dir, &["--signing-keys-file", "keys.json"])
    .output()
    .unwrap();
  let stderr = String::from_utf8_lossy(&out.stderr);
  assert_eq!(out.status.code(), Some(2), "{stderr}");
  assert!(
    stderr.contains("keys.json") && stderr.contains("32 bytes"),
    "{stderr}"
  );
  assert!(!stderr.contains("far-too-short"), "{stderr}");
}

//! TLS: HTTPS with a certificate from a test CA (made by rcgen), the client a tokio-rustls one
//! trusting only that CA; reloading swaps the certificate for new connections (the API call,
//! and SIGHUP to the binary), a botched reload keeps the one in use.

mod common;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::*;
use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair};
use realm_auth_server::{Config, Emulator, EmulatorError};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;

/// A CA and a certificate it issued for `localhost` and `127.0.0.1`, as PEM.
struct Pki {
  ca: String,
  cert: String,
  key: String,
}

fn pki(name: &str) -> Pki {
  let ca_key = KeyPair::generate().unwrap();
  let mut ca = CertificateParams::new(Vec::<String>::new()).unwrap();
  ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
  ca.distinguished_name
    .push(DnType::CommonName, format!("{name} test CA"));
  let ca_cert = ca.self_signed(&ca_key).unwrap();
  let issuer = Issuer::new(ca, ca_key);
  let leaf_key = KeyPair::generate().unwrap();
  let leaf = CertificateParams::new(vec!["localhost".to_string(), "127.0.0.1".to_string()])
    .unwrap()
    .signed_by(&leaf_key, &issuer)
    .unwrap();
  Pki {
    ca: ca_cert.pem(),
    cert: leaf.pem(),
    key: leaf_key.serialize_pem(),
  }
}

/// A fresh folder with `cert.pem` and `key.pem` of `pki`.
fn files(tag: &str, pki: &Pki) -> (PathBuf, PathBuf, PathBuf) {
  let dir = std::env::temp_dir().join(format!("realm-auth-tls-{tag}-{}", std::process::id()));
  std::fs::create_dir_all(&dir).unwrap();
  let (cert, key) = (dir.join("cert.pem"), dir.join("key.pem"));
  write(&cert, &key, pki);
  (dir, cert, key)
}

fn write(cert: &Path, key: &Path, pki: &Pki) {
  std::fs::write(cert, &pki.cert).unwrap();
  std::fs::write(key, &pki.key).unwrap();
}

/// GET `path` over HTTPS, trusting only `ca`; the raw response.
async fn https_get(port: u16, ca: &str, path: &str) -> std::io::Result<Vec<u8>> {
  let mut roots = rustls::RootCertStore::empty();
  for cert in CertificateDer::pem_slice_iter(ca.as_bytes()) {
    roots.add(cert.unwrap()).unwrap();
  }
  let config =
    rustls::ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
      .with_safe_default_protocol_versions()
      .unwrap()
      .with_root_certificates(roots)
      .with_no_client_auth();
  let tcp = TcpStream::connect(("127.0.0.1", port)).await?;
  let mut tls = TlsConnector::from(Arc::new(config))
    .connect(ServerName::try_from("localhost").unwrap(), tcp)
    .await?;
  let host = format!("localhost:{port}");
  tls
    .write_all(&build_request("GET", path, &[("Host", &host)], None))
    .await?;
  let mut out = Vec::new();
  tokio::time::timeout(Duration::from_secs(10), tls.read_to_end(&mut out))
    .await
    .map_err(|_| std::io::Error::other("timed out"))??;
  Ok(out)
}

#[tokio::test]
async fn https_serves_and_reloads_its_certificate() {
  let (a, b) = (pki("first"), pki("second"));
  let (dir, cert, key) = files("reload", &a);
  let emu = start_with(Config {
    tls_cert_file: Some(cert.clone()),
    tls_key_file: Some(key.clone()),
    ..Config::default()
  })
  .await;
  assert!(emu.emulator.base_url().starts_with("https://127.0.0.1:"));
  let port = emu.port;
  let r = parse_response(&https_get(port, &a.ca, "/healthz").await.unwrap());
  assert_eq!(r.status, 200, "{}", r.text());
  let location = format!("{BASE}/app/{}/location", emu.app);
  let r = parse_response(&https_get(port, &a.ca, &location).await.unwrap());
  assert_eq!(r.status, 200);
  assert_eq!(
    r.json()["hostname"],
    format!("https://localhost:{port}"),
    "{}",
    r.text()
  );
  // Plain HTTP gets no HTTP answer.
  let plain = raw_exchange(port, &build_request("GET", "/healthz", &[], None))
    .await
    .unwrap_or_default();
  assert!(!plain.starts_with(b"HTTP/"), "{plain:?}");

  write(&cert, &key, &b);
  assert!(emu.emulator.reload_tls().unwrap());
  assert!(
    https_get(port, &a.ca, "/healthz").await.is_err(),
    "the old certificate is gone"
  );
  let r = parse_response(&https_get(port, &b.ca, "/healthz").await.unwrap());
  assert_eq!(r.status, 200);

  // A botched renewal: the error names the file, not its content, and the certificate in use
  // stays.
  std::fs::write(&key, "-----BEGIN PRIVATE KEY-----\nnot-a-key-secret\n").unwrap();
  let e = emu.emulator.reload_tls().unwrap_err().to_string();
  assert!(
    e.contains("key.pem") && !e.contains("not-a-key-secret"),
    "{e}"
  );
  // The real key on one line, as copied from an env var or JSON: joined, or with literal `\n`s.
  // rustls' PEM errors would quote it (inside the BEGIN line, or as the section's label).
  let base64: String = b.key.lines().filter(|l| !l.starts_with("-----")).collect();
  for one_line in [b.key.replace('\n', ""), b.key.replace('\n', "\\n")] {
    std::fs::write(&key, &one_line).unwrap();
    let e = emu.emulator.reload_tls().unwrap_err().to_string();
    assert!(e.contains("key.pem"), "{e}");
    // Neither as text nor as a list of byte values (rustls' Debug of the line).
    for run in base64.as_bytes().windows(20) {
      let bytes = run.iter().map(u8::to_string).collect::<Vec<_>>();
      assert!(!e.contains(std::str::from_utf8(run).unwrap()), "{e}");
      assert!(!e.contains(&bytes.join(", ")), "{e}");
    }
  }
  let r = parse_response(&https_get(port, &b.ca, "/healthz").await.unwrap());
  assert_eq!(r.status, 200);
  emu.emulator.stop().await;
  let _ = std::fs::remove_dir_all(dir);
}

#[tokio::test]
async fn tls_needs_both_files_and_usable_ones() {
  let a = pki("start");
  let (dir, cert, key) = files("start", &a);
  let start = |cert: Option<PathBuf>, key: Option<PathBuf>| {
    Emulator::start(Config {
      tls_cert_file: cert,
      tls_key_file: key,
      ..Config::default()
    })
  };
  let e = start(Some(cert.clone()), None).await.unwrap_err();
  assert!(matches!(e, EmulatorError::Config(_)), "{e}");
  let e = start(Some(dir.join("missing.pem")), Some(key.clone()))
    .await
    .unwrap_err();
  assert!(e.to_string().contains("missing.pem"), "{e}");
  // A key that is not the certificate's.
  std::fs::write(&key, pki("other").key).unwrap();
  let e = start(Some(cert.clone()), Some(key.clone()))
    .await
    .unwrap_err();
  assert!(matches!(e, EmulatorError::Config(_)), "{e}");
  let plain = Emulator::start(Config::default()).await.unwrap();
  assert!(!plain.tls());
  assert!(
    !plain.reload_tls().unwrap(),
    "nothing to reload without TLS"
  );

  let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn serve_rereads_its_certificate_on_sighup() {
  let (a, b) = (pki("hup-a"), pki("hup-b"));
  let (dir, cert, key) = files("hup", &a);
  let mut child = Command::new(env!("CARGO_BIN_EXE_realm-auth-server"))
    .args(["serve", "--port", "0"])
    .arg("--sqlite")
    .arg(dir.join("auth.db"))
    .arg("--tls-cert")
    .arg(&cert)
    .arg("--tls-key")
    .arg(&key)
    .stdout(Stdio::piped())
    .stderr(Stdio::null())
    .spawn()
    .unwrap();
  let mut line = String::new();
  BufReader::new(child.stdout.take().unwrap())
    .read_line(&mut line)
    .unwrap();
  let prefix = "realm-auth-server listening on https://127.0.0.1:";
  assert!(line.starts_with(prefix), "{line:?}");
  let port: u16 = line[prefix.len()..]
    .split(' ')
    .next()
    .unwrap()
    .parse()
    .unwrap();
  let rt = tokio::runtime::Builder::new_current_thread()
    .enable_all()
    .build()
    .unwrap();
  let status = |ca: &str| {
    rt.block_on(https_get(port, ca, "/healthz"))
      .map(|raw| parse_response(&raw).status)
  };
  assert_eq!(status(&a.ca).unwrap(), 200);
  write(&cert, &key, &b);
  let signal = |sig: &str| {
    let ok = Command::new("kill")
      .args([sig, &child.id().to_string()])
      .status()
      .unwrap()
      .success();
    assert!(ok, "kill {sig}");
  };
  signal("-HUP");
  let deadline = Instant::now() + Duration::from_secs(10);
  while status(&b.ca).ok() != Some(200) {
    assert!(Instant::now() < deadline, "not reloaded on SIGHUP");
    std::thread::sleep(Duration::from_millis(50));
  }
  assert!(status(&a.ca).is_err());
  signal("-TERM");
  let deadline = Instant::now() + Duration::from_secs(20);
  let exit = loop {
    if let Some(exit) = child.try_wait().unwrap() {
      break exit;
    }
    assert!(Instant::now() < deadline, "serve did not stop on SIGTERM");
    std::thread::sleep(Duration::from_millis(20));
  };
  assert_eq!(exit.code(), Some(0));
  let _ = std::fs::remove_dir_all(dir);
}

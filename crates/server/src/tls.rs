//! TLS termination: rustls with the `ring` provider, the certificate chain and key read from PEM
//! files. [`Tls::reload`] rereads them (the binary does on SIGHUP) and swaps the configuration;
//! each connection uses the one current when its handshake begins, so a renewed certificate
//! takes effect without a restart and without touching open connections.

use std::io;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::{Arc, RwLock};
use std::task::{Context, Poll};

use rustls::ServerConfig;
use rustls::pki_types::pem::{Error as PemError, PemObject};
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio_rustls::TlsAcceptor;
use tokio_rustls::server::TlsStream;

/// The certificate files and the configuration built from them.
pub(crate) struct Tls {
  cert_file: PathBuf,
  key_file: PathBuf,
  current: RwLock<Arc<ServerConfig>>,
}

/// Builds a server configuration from PEM files: the chain (leaf first) and its private key
/// (PKCS#8, PKCS#1 or SEC1). Errors name the files; they may quote the certificate file (it is
/// public), never the key file.
fn server_config(cert_file: &Path, key_file: &Path) -> Result<Arc<ServerConfig>, String> {
  let certs = CertificateDer::pem_file_iter(cert_file)
    .and_then(|iter| iter.collect::<Result<Vec<_>, _>>())
    .map_err(|e| format!("TLS certificate {}: {e}", cert_file.display()))?;
  if certs.is_empty() {
    return Err(format!(
      "TLS certificate {}: no certificate in the file",
      cert_file.display()
    ));
  }
  let key = PrivateKeyDer::from_pem_file(key_file).map_err(|e| {
    // A PEM error's Display may quote the file's lines (a key on one line is inside its BEGIN
    // line): only the I/O error, which quotes nothing, is shown.
    let why = match e {
      PemError::Io(e) => e.to_string(),
      PemError::NoItemsFound => "no private key in the file".into(),
      _ => "not a PEM private key (check the BEGIN and END lines and the line breaks)".into(),
    };
    format!("TLS key {}: {why}", key_file.display())
  })?;
  let provider = Arc::new(rustls::crypto::ring::default_provider());
  let mut config = ServerConfig::builder_with_provider(provider)
    .with_safe_default_protocol_versions()
    .map_err(|e| format!("TLS: {e}"))?
    .with_no_client_auth()
    .with_single_cert(certs, key)
    .map_err(|e| format!("TLS certificate and key: {e}"))?;
  // The server speaks HTTP/1.1 only.
  config.alpn_protocols = vec![b"http/1.1".to_vec()];
  Ok(Arc::new(config))
}

impl Tls {
  /// Reads the files (an unusable pair is a startup error).
  pub fn load(cert_file: &Path, key_file: &Path) -> Result<Tls, String> {
    let config = server_config(cert_file, key_file)?;
    Ok(Tls {
      cert_file: cert_file.to_path_buf(),
      key_file: key_file.to_path_buf(),
      current: RwLock::new(config),
    })
  }

  /// Rereads the files; on error the configuration in use stays (a botched renewal must not
  /// take the server down).
  pub fn reload(&self) -> Result<(), String> {
    let config = server_config(&self.cert_file, &self.key_file)?;
    *self.current.write().unwrap_or_else(|e| e.into_inner()) = config;
    Ok(())
  }

  /// An acceptor with the current configuration.
  pub fn acceptor(&self) -> TlsAcceptor {
    TlsAcceptor::from(
      self
        .current
        .read()
        .unwrap_or_else(|e| e.into_inner())
        .clone(),
    )
  }
}

/// A client connection, plain or TLS.
pub(crate) enum Io {
  Plain(TcpStream),
  Tls(Box<TlsStream<TcpStream>>),
}

impl Io {
  fn tcp(&self) -> &TcpStream {
    match self {
      Io::Plain(s) => s,
      Io::Tls(s) => s.get_ref().0,
    }
  }

  /// Makes closing the socket send RST (the `reset` fault).
  pub fn set_zero_linger(&self) -> io::Result<()> {
    self.tcp().set_zero_linger()
  }
}

impl AsyncRead for Io {
  fn poll_read(
    self: Pin<&mut Self>,
    cx: &mut Context<'_>,
    buf: &mut ReadBuf<'_>,
  ) -> Poll<io::Result<()>> {
    match self.get_mut() {
      Io::Plain(s) => Pin::new(s).poll_read(cx, buf),
      Io::Tls(s) => Pin::new(s).poll_read(cx, buf),
    }
  }
}

impl AsyncWrite for Io {
  fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
    match self.get_mut() {
      Io::Plain(s) => Pin::new(s).poll_write(cx, buf),
      Io::Tls(s) => Pin::new(s).poll_write(cx, buf),
    }
  }

  fn poll_write_vectored(
    self: Pin<&mut Self>,
    cx: &mut Context<'_>,
    bufs: &[io::IoSlice<'_>],
  ) -> Poll<io::Result<usize>> {
    match self.get_mut() {
      Io::Plain(s) => Pin::new(s).poll_write_vectored(cx, bufs),
      Io::Tls(s) => Pin::new(s).poll_write_vectored(cx, bufs),
    }
  }

  fn is_write_vectored(&self) -> bool {
    match self {
      Io::Plain(s) => s.is_write_vectored(),
      Io::Tls(s) => s.is_write_vectored(),
    }
  }

  fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
    match self.get_mut() {
      Io::Plain(s) => Pin::new(s).poll_flush(cx),
      Io::Tls(s) => Pin::new(s).poll_flush(cx),
    }
  }

  fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
    match self.get_mut() {
      Io::Plain(s) => Pin::new(s).poll_shutdown(cx),
      Io::Tls(s) => Pin::new(s).poll_shutdown(cx),
    }
  }
}

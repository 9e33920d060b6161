//! The HTTP floor of `npm run bench:server`: what one core of this machine serves when a
//! request costs nothing but HTTP/1.1 over loopback. It answers every request with the same
//! prepared `200` JSON body (the bytes a key list returns), with no routing, no token check and
//! no store, on a current-thread runtime (pin the process to the server's core).
//!
//! Two modes: `hyper` (the server's HTTP stack, with the server's connection settings) and
//! `raw` (tokio sockets, the request head found by a scan for its blank line and nothing else
//! parsed). A key list can be no cheaper than `hyper`, and no HTTP server cheaper than `raw`.
//!
//! Usage: `realm-auth-bench-http-floor '{"mode":"hyper","body":"[...]"}'`; prints
//! `{"baseUrl":"http://127.0.0.1:<port>"}` and serves until killed.

use std::convert::Infallible;
use std::sync::Arc;

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::header::{CONTENT_TYPE, HeaderValue};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use serde::Deserialize;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

#[derive(Deserialize)]
struct Config {
  /// `hyper` or `raw`.
  mode: String,
  /// The response body.
  body: String,
}

fn main() {
  let arg = std::env::args()
    .nth(1)
    .expect("usage: realm-auth-bench-http-floor '<json config>'");
  let config: Config = serde_json::from_str(&arg).expect("config");
  let runtime = tokio::runtime::Builder::new_current_thread()
    .enable_all()
    .build()
    .expect("runtime");
  runtime.block_on(serve(config));
}

async fn serve(config: Config) {
  let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
  let addr = listener.local_addr().expect("address");
  println!(
    "{}",
    serde_json::json!({ "baseUrl": format!("http://{addr}") })
  );
  let body = Bytes::from(config.body);
  // The raw mode's whole response, headers as the server sends them.
  let raw = Bytes::from(
    [
      format!(
        "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n",
        body.len()
      )
      .into_bytes(),
      body.to_vec(),
    ]
    .concat(),
  );
  let hyper_mode = match config.mode.as_str() {
    "hyper" => true,
    "raw" => false,
    other => panic!("unknown mode {other}"),
  };
  let body = Arc::new(body);
  loop {
    let Ok((stream, _)) = listener.accept().await else {
      continue;
    };
    let _ = stream.set_nodelay(true);
    if hyper_mode {
      tokio::spawn(serve_hyper(stream, body.clone()));
    } else {
      tokio::spawn(serve_raw(stream, raw.clone()));
    }
  }
}

async fn serve_hyper(stream: TcpStream, body: Arc<Bytes>) {
  let service = service_fn(move |_req: Request<Incoming>| {
    let mut resp = Response::new(Full::new(Bytes::clone(&body)));
    resp
      .headers_mut()
      .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    async move { Ok::<_, Infallible>(resp) }
  });
  // The server's builder settings (crates/server/src/server.rs), timers aside.
  let _ = http1::Builder::new()
    .keep_alive(true)
    .header_read_timeout(None)
    .serve_connection(TokioIo::new(stream), service)
    .await;
}

async fn serve_raw(mut stream: TcpStream, response: Bytes) {
  let mut buf = vec![0u8; 16384];
  let mut filled = 0;
  loop {
    // Answers each complete head (these requests have no body).
    while let Some(end) = buf[..filled].windows(4).position(|w| w == b"\r\n\r\n") {
      if stream.write_all(&response).await.is_err() {
        return;
      }
      buf.copy_within(end + 4..filled, 0);
      filled -= end + 4;
    }
    if filled == buf.len() {
      return;
    }
    match stream.read(&mut buf[filled..]).await {
      Ok(0) | Err(_) => return,
      Ok(n) => filled += n,
    }
  }
}

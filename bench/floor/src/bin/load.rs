//! A closed-loop HTTP/1.1 load generator for `npm run bench:server`: many keep-alive
//! connections on one current-thread runtime (pin the process to a core of its own), each
//! sending prepared requests one at a time, for a warm-up and then a fixed measured window.
//! Every response must be `200` with a JSON body; the report counts those completed inside
//! the window and their latencies.
//!
//! Written on raw sockets rather than reqwest so that one client core can outrun one server
//! core: the client's cost per request is a write, a read and a header scan.
//!
//! Usage: `realm-auth-bench-load '<json config>'` (see `Config`); prints one JSON `Report`.

use std::cell::RefCell;
use std::rc::Rc;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Config {
  /// `127.0.0.1:port`.
  addr: String,
  /// Complete requests (request line, headers with `Content-Length`, body). Connection `i`
  /// sends `requests[i]`, `requests[i + connections]`, … round robin.
  requests: Vec<String>,
  connections: usize,
  warmup_secs: f64,
  secs: f64,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Report {
  connections: usize,
  secs: f64,
  /// 200 responses with a JSON body completed inside the measured window.
  ok: u64,
  /// Anything else (status, body, connection errors), over warm-up and window.
  errors: u64,
  first_error: Option<String>,
  req_per_sec: f64,
  p50_us: f64,
  p99_us: f64,
  mean_us: f64,
}

#[derive(Default)]
struct Tally {
  ok: u64,
  errors: u64,
  first_error: Option<String>,
  lat_us: Vec<u32>,
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
  hay.windows(needle.len()).position(|w| w == needle)
}

/// One response read into the buffer.
struct Response {
  status: u16,
  body: std::ops::Range<usize>,
  /// `Connection: close`: the server ends the connection after this response (it caps the
  /// requests per connection); the client opens a new one, as any HTTP client would.
  close: bool,
}

/// Reads one response into `buf`.
async fn read_response(stream: &mut TcpStream, buf: &mut Vec<u8>) -> Result<Response, String> {
  buf.clear();
  let head_end = loop {
    if let Some(i) = find(buf, b"\r\n\r\n") {
      break i + 4;
    }
    let len = buf.len();
    buf.resize(len + 8192, 0);
    let n = stream
      .read(&mut buf[len..])
      .await
      .map_err(|e| e.to_string())?;
    buf.truncate(len + n);
    if n == 0 {
      return Err("connection closed".into());
    }
  };
  let head = std::str::from_utf8(&buf[..head_end]).map_err(|e| e.to_string())?;
  let status: u16 = head
    .get(9..12)
    .and_then(|s| s.parse().ok())
    .ok_or("bad status line")?;
  let length = head
    .lines()
    .find_map(|l| {
      let (k, v) = l.split_once(':')?;
      k.eq_ignore_ascii_case("content-length")
        .then(|| v.trim().parse::<usize>().ok())
        .flatten()
    })
    .ok_or("no content-length")?;
  let close = head.lines().any(|l| {
    l.split_once(':').is_some_and(|(k, v)| {
      k.eq_ignore_ascii_case("connection") && v.trim().eq_ignore_ascii_case("close")
    })
  });
  let total = head_end + length;
  while buf.len() < total {
    let len = buf.len();
    buf.resize(total.max(len + 8192), 0);
    let n = stream
      .read(&mut buf[len..])
      .await
      .map_err(|e| e.to_string())?;
    buf.truncate(len + n);
    if n == 0 {
      return Err("connection closed mid-body".into());
    }
  }
  Ok(Response {
    status,
    body: head_end..total,
    close,
  })
}

async fn connection(
  addr: String,
  requests: Vec<Vec<u8>>,
  start: Instant,
  end: Instant,
  tally: Rc<RefCell<Tally>>,
) {
  let mut buf = Vec::with_capacity(16384);
  let mut i = 0usize;
  'reconnect: while Instant::now() < end {
    let mut stream = match TcpStream::connect(&addr).await {
      Ok(s) => s,
      Err(e) => {
        {
          let mut t = tally.borrow_mut();
          t.errors += 1;
          t.first_error.get_or_insert(format!("connect: {e}"));
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
        continue;
      }
    };
    let _ = stream.set_nodelay(true);
    loop {
      let req = &requests[i % requests.len()];
      i += 1;
      let sent = Instant::now();
      if sent >= end {
        break 'reconnect;
      }
      let outcome = match stream.write_all(req).await {
        Err(e) => Err(e.to_string()),
        Ok(()) => read_response(&mut stream, &mut buf).await,
      };
      let done = Instant::now();
      let mut t = tally.borrow_mut();
      match outcome {
        Ok(r) => {
          let json = serde_json::from_slice::<serde::de::IgnoredAny>(&buf[r.body.clone()]);
          if r.status == 200 && json.is_ok() {
            if done >= start && done < end {
              t.ok += 1;
              t.lat_us
                .push((done - sent).as_micros().min(u32::MAX as u128) as u32);
            }
          } else {
            t.errors += 1;
            t.first_error.get_or_insert_with(|| {
              format!("{}: {}", r.status, String::from_utf8_lossy(&buf[r.body]))
            });
          }
          if r.close {
            continue 'reconnect;
          }
        }
        Err(e) => {
          t.errors += 1;
          t.first_error.get_or_insert(e);
          continue 'reconnect;
        }
      }
    }
  }
}

fn main() {
  let arg = std::env::args()
    .nth(1)
    .expect("usage: realm-auth-bench-load '<json config>'");
  let config: Config = serde_json::from_str(&arg).expect("config");
  assert!(!config.requests.is_empty() && config.connections > 0);
  let rt = tokio::runtime::Builder::new_current_thread()
    .enable_all()
    .build()
    .expect("runtime");
  let report = rt.block_on(async {
    let now = Instant::now();
    let start = now + Duration::from_secs_f64(config.warmup_secs);
    let end = start + Duration::from_secs_f64(config.secs);
    let tally = Rc::new(RefCell::new(Tally::default()));
    let local = tokio::task::LocalSet::new();
    for c in 0..config.connections {
      let mine: Vec<Vec<u8>> = config
        .requests
        .iter()
        .skip(c % config.requests.len())
        .step_by(config.connections)
        .map(|r| r.as_bytes().to_vec())
        .collect();
      let mine = if mine.is_empty() {
        vec![
          config.requests[c % config.requests.len()]
            .as_bytes()
            .to_vec(),
        ]
      } else {
        mine
      };
      local.spawn_local(connection(
        config.addr.clone(),
        mine,
        start,
        end,
        tally.clone(),
      ));
    }
    local.await;
    let mut t = tally.take();
    t.lat_us.sort_unstable();
    let pct = |p: f64| -> f64 {
      if t.lat_us.is_empty() {
        return 0.0;
      }
      let i = ((t.lat_us.len() as f64 * p) as usize).min(t.lat_us.len() - 1);
      t.lat_us[i] as f64
    };
    let mean = if t.lat_us.is_empty() {
      0.0
    } else {
      t.lat_us.iter().map(|&v| v as f64).sum::<f64>() / t.lat_us.len() as f64
    };
    Report {
      connections: config.connections,
      secs: config.secs,
      ok: t.ok,
      errors: t.errors,
      first_error: t.first_error.clone(),
      req_per_sec: t.ok as f64 / config.secs,
      p50_us: pct(0.5),
      p99_us: pct(0.99),
      mean_us: mean,
    }
  });
  println!("{}", serde_json::to_string(&report).expect("report"));
}

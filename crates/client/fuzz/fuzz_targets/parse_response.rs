//! Fuzzes every parser of server responses (see `realm_auth_client::fuzzing`).
//! Input layout: two bytes of status, one byte choosing the content type, then
//! the body.
#![no_main]

use libfuzzer_sys::fuzz_target;

const CONTENT_TYPES: &[Option<&str>] = &[
  None,
  Some("application/json"),
  Some("application/json;charset=utf-8"),
  Some("text/html"),
  Some("text/plain"),
];

fuzz_target!(|data: &[u8]| {
  if data.len() < 3 {
    return;
  }
  let status = 100 + u16::from_le_bytes([data[0], data[1]]) % 500;
  let content_type = CONTENT_TYPES[data[2] as usize % CONTENT_TYPES.len()];
  realm_auth_client::fuzzing::parse_response(status, content_type, &data[3..]);
});

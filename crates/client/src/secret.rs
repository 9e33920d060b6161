//! A string that never prints itself.

use std::fmt;

/// A secret string (token, password, key value). `Debug` and `Display` print
/// `<redacted>`; read it with [`Secret::expose`] only where it must go on the wire
/// or to a documented getter.
#[derive(Clone, PartialEq, Eq, Default)]
pub struct Secret(String);

impl Secret {
  /// Wraps a secret value.
  pub fn new(value: impl Into<String>) -> Secret {
    Secret(value.into())
  }

  /// The secret itself.
  pub fn expose(&self) -> &str {
    &self.0
  }
}

impl fmt::Debug for Secret {
  fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
    f.write_str("<redacted>")
  }
}

impl fmt::Display for Secret {
  fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
    f.write_str("<redacted>")
  }
}

#[cfg(test)]
mod tests {
  use super::Secret;

  #[test]
  fn never_prints_the_value() {
    let s = Secret::new("hunter2");
    assert_eq!(format!("{s:?} {s}"), "<redacted> <redacted>");
    assert_eq!(s.expose(), "hunter2");
  }
}

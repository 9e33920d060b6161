//! The optional data file: loaded at start, rewritten atomically after mutations.

use std::io::{self, Write};
use std::path::{Path, PathBuf};

use crate::ids::{hex, random_bytes};
use crate::memory::State;
use crate::server::Shared;

/// Writes `bytes` to `path` so that readers (and a crash) only ever see the old or the new
/// content: temp file in the same directory, fsync, rename over, fsync the directory.
pub(crate) fn write_atomic(path: &Path, bytes: &[u8]) -> io::Result<()> {
  let dir = match path.parent() {
    Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
    _ => PathBuf::from("."),
  };
  let name = path.file_name().ok_or_else(|| {
    io::Error::new(
      io::ErrorKind::InvalidInput,
      "data file path has no file name",
    )
  })?;
  let tmp = dir.join(format!(
    ".{}.tmp-{}",
    name.to_string_lossy(),
    hex(&random_bytes::<6>())
  ));
  let result = (|| {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
      // The file holds password hashes and the token signing key: owner-only.
      use std::os::unix::fs::OpenOptionsExt;
      options.mode(0o600);
    }
    let mut file = options.open(&tmp)?;
    file.write_all(bytes)?;
    file.sync_all()?;
    drop(file);
    std::fs::rename(&tmp, path)?;
    // Make the rename itself durable (best effort: not every platform can open a directory).
    if let Ok(d) = std::fs::File::open(&dir) {
      let _ = d.sync_all();
    }
    Ok(())
  })();
  if result.is_err() {
    let _ = std::fs::remove_file(&tmp);
  }
  result
}

/// Loads a data file; `Ok(None)` when it does not exist yet.
pub(crate) fn load(path: &Path) -> Result<Option<State>, String> {
  let bytes = match std::fs::read(path) {
    Ok(b) => b,
    Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
    Err(e) => return Err(format!("cannot read {}: {e}", path.display())),
  };
  let mut state: State = serde_json::from_slice(&bytes)
    .map_err(|e| format!("{} is not an emulator data file: {e}", path.display()))?;
  state.after_load();
  Ok(Some(state))
}

/// Serialises the state to the file format.
pub(crate) fn encode(state: &State) -> Vec<u8> {
  serde_json::to_vec_pretty(state).expect("state serializes")
}

/// Writes the data file after mutations, in order, coalescing bursts.
pub(crate) struct Persister {
  path: PathBuf,
  /// The state version last written; held across the write so writes never reorder.
  written: tokio::sync::Mutex<u64>,
}

impl Persister {
  /// A persister for `path` whose content already matches state version `written`.
  pub fn new(path: PathBuf, written: u64) -> Persister {
    Persister {
      path,
      written: tokio::sync::Mutex::new(written),
    }
  }

  /// Writes the current state unless a write at least as new already happened.
  pub async fn flush(&self, shared: &Shared) -> io::Result<()> {
    let mut written = self.written.lock().await;
    let Some(memory) = shared.store.memory(&shared.config.app_id) else {
      return Ok(());
    };
    let (version, bytes) = {
      let st = memory.lock();
      if st.version <= *written {
        return Ok(());
      }
      (st.version, encode(&st))
    };
    let path = self.path.clone();
    tokio::task::spawn_blocking(move || write_atomic(&path, &bytes))
      .await
      .map_err(io::Error::other)??;
    *written = version;
    Ok(())
  }
}

#[cfg(test)]
mod tests {
  use super::*;

  #[test]
  fn atomic_write_replaces_via_rename() {
    let dir = std::env::temp_dir().join(format!("emu-persist-{}", hex(&random_bytes::<6>())));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("data.json");
    write_atomic(&path, b"one").unwrap();
    #[cfg(unix)]
    let first = {
      use std::os::unix::fs::MetadataExt;
      std::fs::metadata(&path).unwrap().ino()
    };
    write_atomic(&path, b"two").unwrap();
    assert_eq!(std::fs::read(&path).unwrap(), b"two");
    #[cfg(unix)]
    {
      use std::os::unix::fs::MetadataExt;
      // A new inode proves the file was replaced by rename, not rewritten in place.
      assert_ne!(std::fs::metadata(&path).unwrap().ino(), first);
      assert_eq!(std::fs::metadata(&path).unwrap().mode() & 0o777, 0o600);
    }
    let leftovers: Vec<_> = std::fs::read_dir(&dir)
      .unwrap()
      .map(|e| e.unwrap().file_name())
      .collect();
    assert_eq!(leftovers.len(), 1, "temp files left behind: {leftovers:?}");
    std::fs::remove_dir_all(&dir).unwrap();
  }
}

//! The user store: what realm v12 keeps in its "metadata" realm (the users an
//! App remembers across restarts and the current user), in a file of our own
//! format, `<base>/mongodb-realm/<app id>/users.store`.
//!
//! The file is JSON, or that JSON sealed with AES-256-GCM. Every change is a
//! read-merge-write under a lock file, written to a temporary file that is
//! renamed over the store: several processes can share one store, and a reader
//! never sees half a file, so reads need no lock.

use std::collections::HashSet;
use std::fmt;
use std::fs::{self, DirBuilder, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use ring::aead;
use ring::hkdf;
use ring::rand::{SecureRandom, SystemRandom};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::error::{Error, ErrorCode, Result};
use crate::log::{Category, Level, log};
use crate::secret::Secret;
use crate::user::{Identity, Profile};

/// The `format` field that marks a JSON file as ours.
const FORMAT: &str = "realm-auth-native/users";
/// The format version this release writes and reads.
const VERSION: u64 = 1;
/// The first bytes of an encrypted store: "RANUSR", 0, then the format version.
const MAGIC: &[u8; 8] = b"RANUSR\x00\x01";
/// The magic without its version byte, to tell a newer encrypted store from garbage.
const MAGIC_STEM: &[u8; 7] = b"RANUSR\x00";
/// Length of the random HKDF salt after the magic.
const SALT_LEN: usize = 16;
/// Magic, salt and nonce: everything before the ciphertext.
const HEADER_LEN: usize = MAGIC.len() + SALT_LEN + aead::NONCE_LEN;
/// HKDF `info`, binding derived keys to this use and format version.
const HKDF_INFO: &[u8] = b"realm-auth-native users v1";
/// The store file's name; both modes use it, the content tells them apart.
const STORE_FILE: &str = "users.store";
/// Where a write goes before it is renamed over the store. A fixed name is
/// safe because writers are serialised by the lock.
const TMP_FILE: &str = "users.store.tmp";
/// The file whose exclusive lock serialises writers across processes.
const LOCK_FILE: &str = "users.lock";

/// How an App keeps its users (realm v12's `MetadataMode`).
#[derive(Clone, PartialEq, Eq)]
pub enum Persistence {
  /// Nothing is written (`MetadataMode.InMemory`).
  InMemory,
  /// A plain file under `base` (`MetadataMode.NoEncryption`).
  Plain {
    /// The folder holding `mongodb-realm/` (realm's `baseFilePath`, or the cwd).
    base: PathBuf,
  },
  /// An encrypted file under `base` (`MetadataMode.Encryption`), keyed by
  /// realm v12's 64-byte key.
  Encrypted {
    /// The folder holding `mongodb-realm/` (realm's `baseFilePath`, or the cwd).
    base: PathBuf,
    /// realm v12's `metadata.encryptionKey`.
    key: Box<[u8; 64]>,
  },
}

impl fmt::Debug for Persistence {
  fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
    match self {
      Persistence::InMemory => f.write_str("InMemory"),
      Persistence::Plain { base } => f.debug_struct("Plain").field("base", base).finish(),
      Persistence::Encrypted { base, .. } => f
        .debug_struct("Encrypted")
        .field("base", base)
        .field("key", &format_args!("<redacted>"))
        .finish(),
    }
  }
}

/// One stored user.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct UserRecord {
  /// The user's id.
  pub id: String,
  /// (access, refresh) while logged in; None when logged out.
  pub tokens: Option<(Secret, Secret)>,
  /// The device id the server assigned at login.
  pub device_id: String,
  /// Provider of the login that made the session (e.g. "anon-user"), "" if unknown.
  pub login_provider: String,
  /// The profile from the last login or profile refresh.
  pub profile: Option<Profile>,
}

/// What the store holds: users in the order they were first stored
/// (realm-core's table order), and the current user's id.
#[derive(Clone, Debug, Default, PartialEq)]
pub(crate) struct Snapshot {
  /// The users, in the order they were first stored.
  pub users: Vec<UserRecord>,
  /// The current user's id; always one of `users` when set.
  pub current: Option<String>,
}

/// One change, applied by merging into what the file holds now (another
/// process may have written since we read).
#[derive(Clone, Debug)]
pub(crate) enum Change {
  /// A login: replaces the stored record of that id in place, or appends it
  /// (and makes it current). A record without a profile keeps the stored one.
  LogIn(UserRecord),
  /// Applied only if the user is stored.
  Profile {
    /// The user.
    id: String,
    /// The new profile.
    profile: Profile,
  },
  /// A refreshed access token: applied only while the stored user is logged in
  /// with this refresh token (so that another process's logout is never undone
  /// by our refresh).
  Access {
    /// The user.
    id: String,
    /// The refresh token the access token was obtained with.
    refresh: Secret,
    /// The new access token.
    access: Secret,
  },
  /// Clears the tokens of the session `refresh` names; the user stays, logged
  /// out, with profile, identities, device id, provider. A newer session that
  /// another process stored meanwhile is left alone.
  LogOut {
    /// The user.
    id: String,
    /// The refresh token of the session that ended.
    refresh: Secret,
  },
  /// Drops the user (removed, deleted, or an anonymous user that logged out).
  Remove {
    /// The user.
    id: String,
  },
  /// Makes `id` the current user; ignored if `id` is not stored.
  SetCurrent {
    /// The user.
    id: String,
  },
}

/// An open user store: the paths of one App's store and, in encrypted mode, the key.
pub(crate) struct Store {
  /// `<base>/mongodb-realm/<app id>`.
  dir: PathBuf,
  /// `<dir>/users.store`.
  file: PathBuf,
  /// The 64-byte key when the store is encrypted.
  key: Option<Box<[u8; 64]>>,
}

impl fmt::Debug for Store {
  fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
    f.debug_struct("Store")
      .field("file", &self.file)
      .field("encrypted", &self.key.is_some())
      .finish()
  }
}

/// What the store file turned out to hold.
enum Contents {
  /// A store (possibly an empty one, when there is no file).
  Users(Snapshot),
  /// Something unreadable, with a reason that quotes none of its content.
  Corrupt(String),
}

/// Holds the exclusive lock on `users.lock`; unlocks when dropped.
struct LockGuard(File);

impl Drop for LockGuard {
  fn drop(&mut self) {
    // Closing the file releases the lock too, but Windows may do that late.
    let _ = self.0.unlock();
  }
}

impl Store {
  /// Opens the store of `app_id` (`<base>/mongodb-realm/<app id as a safe path
  /// component>/`, made 0700 by the first write) and reads it. `InMemory` →
  /// Ok((None, empty)). A missing file or folder → empty snapshot.
  pub fn open(persistence: &Persistence, app_id: &str) -> Result<(Option<Store>, Snapshot)> {
    let (base, key) = match persistence {
      Persistence::InMemory => return Ok((None, Snapshot::default())),
      Persistence::Plain { base } => (base, None),
      Persistence::Encrypted { base, key } => (base, Some(key.clone())),
    };
    // The folder is made by the first write: an App that never logs anyone
    // in leaves nothing behind.
    let dir = base.join("mongodb-realm").join(folder_name(app_id)?);
    let store = Store {
      file: dir.join(STORE_FILE),
      dir,
      key,
    };
    let snapshot = match store.read()? {
      Contents::Users(snapshot) => snapshot,
      // Moving the file needs the lock; reading under it again also avoids
      // moving a good file another process wrote in the meantime.
      Contents::Corrupt(_) => {
        let _lock = store.lock()?;
        store.read_or_set_aside()?
      }
    };
    Ok((Some(store), snapshot))
  }

  /// Applies `changes` in order under the cross-process lock: read the file,
  /// merge, write atomically; returns the merged snapshot (what the file now
  /// holds). Blocks while another writer holds the lock.
  pub fn apply(&self, changes: &[Change]) -> Result<Snapshot> {
    let _lock = self.lock()?;
    let before = self.read_or_set_aside()?;
    let mut after = before.clone();
    for change in changes {
      after.merge(change);
    }
    // Changes that merge to nothing (a refresh after another process's logout)
    // need no write.
    if after != before {
      self.write(&after)?;
    }
    Ok(after)
  }

  /// The store file's path (for error messages and docs).
  pub fn path(&self) -> &Path {
    &self.file
  }

  /// Takes the exclusive writer lock, waiting for other holders.
  fn lock(&self) -> Result<LockGuard> {
    // Made here on the first write (or again, if deleted since).
    create_dir(&self.dir)?;
    let path = self.dir.join(LOCK_FILE);
    let file = private_file()
      .read(true)
      .write(true)
      .create(true)
      .truncate(false)
      .open(&path)
      .map_err(|e| io_error(e, "open the lock file", &path))?;
    file
      .lock()
      .map_err(|e| io_error(e, "lock the lock file", &path))?;
    Ok(LockGuard(file))
  }

  /// Reads the file without the lock (a rename is atomic: a reader sees a whole file).
  fn read(&self) -> Result<Contents> {
    match fs::read(&self.file) {
      Ok(bytes) => self.decode(&bytes),
      Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(Contents::Users(Snapshot::default())),
      Err(e) => Err(io_error(e, "read the user store", &self.file)),
    }
  }

  /// Reads the file, moving a corrupt one aside (so the store starts empty).
  /// The caller holds the lock.
  fn read_or_set_aside(&self) -> Result<Snapshot> {
    match self.read()? {
      Contents::Users(snapshot) => Ok(snapshot),
      Contents::Corrupt(reason) => {
        self.set_aside(&reason)?;
        Ok(Snapshot::default())
      }
    }
  }

  /// Renames a corrupt store to `users.store.corrupt-<unix millis>`: kept for
  /// inspection, never deleted. The caller holds the lock.
  fn set_aside(&self, reason: &str) -> Result<()> {
    let millis = SystemTime::now()
      .duration_since(UNIX_EPOCH)
      .map_or(0, |d| d.as_millis());
    let mut target = self.dir.join(format!("{STORE_FILE}.corrupt-{millis}"));
    // Never rename over an earlier corrupt file (two in one millisecond).
    let mut n = 1;
    while fs::symlink_metadata(&target).is_ok() {
      target = self.dir.join(format!("{STORE_FILE}.corrupt-{millis}-{n}"));
      n += 1;
    }
    match fs::rename(&self.file, &target) {
      Ok(()) => {}
      // Someone deleted it by hand: nothing left to keep.
      Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
      Err(e) => return Err(io_error(e, "move aside the corrupt user store", &self.file)),
    }
    log(Category::Sdk, Level::Warn, || {
      format!(
        "The user store {} is corrupt ({reason}); moved it to {} and started with no users",
        self.file.display(),
        target.display()
      )
    });
    Ok(())
  }

  /// Tells the file's format from its content and decodes it. Mode mismatches,
  /// a wrong key and newer versions are errors (the file is left alone);
  /// anything else unreadable is `Corrupt`.
  fn decode(&self, bytes: &[u8]) -> Result<Contents> {
    let encrypted = bytes.len() >= MAGIC.len() && bytes.starts_with(MAGIC_STEM) && bytes[7] != 0;
    match (&self.key, encrypted) {
      (None, true) => Err(self.error(
        ErrorCode::DecryptionFailed,
        "is encrypted: pass metadata.encryptionKey to open it",
      )),
      (None, false) => self.parse(bytes),
      (Some(_), false) => match self.parse(bytes) {
        // A plain store is refused, not moved aside: the key is the mistake.
        Ok(Contents::Users(_)) | Err(_) => Err(self.error(
          ErrorCode::DecryptionFailed,
          "is not encrypted, but metadata.encryptionKey was given: open it without a key",
        )),
        corrupt @ Ok(Contents::Corrupt(_)) => corrupt,
      },
      (Some(key), true) => {
        if bytes[7] > MAGIC[7] {
          return Err(self.newer(u64::from(bytes[7])));
        }
        if bytes.len() < HEADER_LEN + aead::AES_256_GCM.tag_len() {
          return Ok(Contents::Corrupt("truncated encrypted header".into()));
        }
        // A wrong key and a changed byte look alike; both leave the file alone.
        let plain = unseal(key, bytes).ok_or_else(|| {
          self.error(
            ErrorCode::DecryptionFailed,
            "could not be decrypted: metadata.encryptionKey is not the key it was written with, \
             or the file was changed by something else",
          )
        })?;
        self.parse(&plain)
      }
    }
  }

  /// Parses the JSON form. Error and corruption texts quote no content, which
  /// may hold tokens.
  fn parse(&self, bytes: &[u8]) -> Result<Contents> {
    let corrupt = |reason: &str| Ok(Contents::Corrupt(reason.to_owned()));
    let value: Value = match serde_json::from_slice(bytes) {
      Ok(value) => value,
      Err(e) => {
        return corrupt(&format!(
          "not JSON: line {} column {}",
          e.line(),
          e.column()
        ));
      }
    };
    let Value::Object(map) = &value else {
      return corrupt("not a JSON object");
    };
    if map.get("format").and_then(Value::as_str) != Some(FORMAT) {
      return corrupt("not a realm-auth-native user store");
    }
    // The version is checked before the shape: a newer file may have another shape.
    match map.get("version").and_then(Value::as_u64) {
      Some(VERSION) => {}
      Some(v) if v > VERSION => return Err(self.newer(v)),
      _ => return corrupt("no valid format version"),
    }
    let Ok(file) = serde_json::from_value::<FileIn>(value) else {
      return corrupt("a user store of the wrong shape");
    };
    Ok(Contents::Users(file.into_snapshot()))
  }

  /// Writes `snapshot` to the temporary file and renames it over the store.
  fn write(&self, snapshot: &Snapshot) -> Result<()> {
    let mut bytes = encode(snapshot);
    if let Some(key) = &self.key {
      bytes = seal(key, bytes)?;
    }
    let tmp = self.dir.join(TMP_FILE);
    let fail = |e| io_error(e, "write the user store", &tmp);
    let mut file = private_file()
      .write(true)
      .create(true)
      .truncate(true)
      .open(&tmp)
      .map_err(fail)?;
    // `mode` applies only on creation; a leftover tmp keeps its old mode otherwise.
    #[cfg(unix)]
    {
      use std::os::unix::fs::PermissionsExt;
      file
        .set_permissions(fs::Permissions::from_mode(0o600))
        .map_err(fail)?;
    }
    file.write_all(&bytes).map_err(fail)?;
    file.sync_all().map_err(fail)?;
    drop(file);
    fs::rename(&tmp, &self.file).map_err(|e| io_error(e, "replace the user store", &self.file))?;
    // Makes the rename itself durable.
    #[cfg(unix)]
    File::open(&self.dir)
      .and_then(|d| d.sync_all())
      .map_err(|e| io_error(e, "sync the user store's folder", &self.dir))?;
    Ok(())
  }

  /// An error of `code` whose message names the store file.
  fn error(&self, code: ErrorCode, what: &str) -> Error {
    Error::new(
      code,
      format!("The user store {} {what}", self.file.display()),
    )
  }

  /// The error for a file written by a newer release.
  fn newer(&self, version: u64) -> Error {
    self.error(
      ErrorCode::UnsupportedFileFormatVersion,
      &format!(
        "has format version {version}, written by a newer release of realm-auth-native; \
         this release reads version {VERSION}"
      ),
    )
  }
}

impl Snapshot {
  /// The stored user of `id`.
  fn find_mut(&mut self, id: &str) -> Option<&mut UserRecord> {
    self.users.iter_mut().find(|u| u.id == id)
  }

  /// Merges one change, with realm-core's current-user rules.
  fn merge(&mut self, change: &Change) {
    match change {
      Change::LogIn(record) => match self.find_mut(&record.id) {
        Some(stored) => {
          // A login without a profile yet must not drop the stored one (the
          // in-memory user keeps it too).
          let profile = record.profile.clone().or_else(|| stored.profile.take());
          *stored = UserRecord {
            profile,
            ..record.clone()
          };
        }
        None => {
          // realm-core's create_user makes a new user current.
          self.users.push(record.clone());
          self.current = Some(record.id.clone());
        }
      },
      Change::Profile { id, profile } => {
        if let Some(stored) = self.find_mut(id) {
          stored.profile = Some(profile.clone());
        }
      }
      Change::Access {
        id,
        refresh,
        access,
      } => {
        if let Some(stored) = self.find_mut(id)
          && let Some((stored_access, stored_refresh)) = &mut stored.tokens
          && stored_refresh == refresh
        {
          *stored_access = access.clone();
        }
      }
      Change::LogOut { id, refresh } => {
        if let Some(stored) = self.find_mut(id)
          && stored.tokens.as_ref().is_some_and(|(_, r)| r == refresh)
        {
          stored.tokens = None;
          self.replace_current(id);
        }
      }
      Change::Remove { id } => {
        self.users.retain(|u| &u.id != id);
        self.replace_current(id);
      }
      Change::SetCurrent { id } => {
        if self.users.iter().any(|u| &u.id == id) {
          self.current = Some(id.clone());
        }
      }
    }
  }

  /// realm-core's `update_current_user`: if `gone` was current, the first
  /// logged-in user in store order becomes current, else none.
  fn replace_current(&mut self, gone: &str) {
    if self.current.as_deref() == Some(gone) {
      self.current = self
        .users
        .iter()
        .find(|u| u.tokens.is_some())
        .map(|u| u.id.clone());
    }
  }
}

/// The App id as one folder name: `[A-Za-z0-9._-]` kept, every other byte
/// percent-encoded (so `/` cannot climb out and distinct ids stay distinct).
fn folder_name(app_id: &str) -> Result<String> {
  if matches!(app_id, "" | "." | "..") {
    return Err(Error::new(
      ErrorCode::FileOperationFailed,
      format!("The App id {app_id:?} can't name a folder for the user store"),
    ));
  }
  let mut name = String::with_capacity(app_id.len());
  for b in app_id.bytes() {
    if b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-') {
      name.push(char::from(b));
    } else {
      name.push_str(&format!("%{b:02X}"));
    }
  }
  Ok(name)
}

/// Creates `dir` and missing parents (0700 on unix; existing folders keep their mode).
fn create_dir(dir: &Path) -> Result<()> {
  let mut builder = DirBuilder::new();
  builder.recursive(true);
  #[cfg(unix)]
  {
    use std::os::unix::fs::DirBuilderExt;
    builder.mode(0o700);
  }
  builder
    .create(dir)
    .map_err(|e| io_error(e, "create the user store's folder", dir))
}

/// Open options that create files as 0600 on unix.
fn private_file() -> OpenOptions {
  #[allow(unused_mut)] // only unix sets a mode
  let mut options = OpenOptions::new();
  #[cfg(unix)]
  {
    use std::os::unix::fs::OpenOptionsExt;
    options.mode(0o600);
  }
  options
}

/// An I/O failure on `path`: `FilePermissionDenied` or `FileOperationFailed`.
fn io_error(e: io::Error, doing: &str, path: &Path) -> Error {
  let code = match e.kind() {
    io::ErrorKind::PermissionDenied => ErrorCode::FilePermissionDenied,
    _ => ErrorCode::FileOperationFailed,
  };
  Error::new(code, format!("Could not {doing} {}: {e}", path.display()))
}

/// The AES-256-GCM key for one file: HKDF-SHA256 of the 64-byte key with the
/// file's salt.
fn file_key(key: &[u8; 64], salt: &[u8]) -> aead::LessSafeKey {
  let prk = hkdf::Salt::new(hkdf::HKDF_SHA256, salt).extract(key);
  let okm = prk
    .expand(&[HKDF_INFO], &aead::AES_256_GCM)
    .expect("32 bytes is a valid HKDF-SHA256 output length");
  aead::LessSafeKey::new(aead::UnboundKey::from(okm))
}

/// Encrypts `plain` into the encrypted file form: magic, salt, nonce,
/// ciphertext and tag, with magic and salt as associated data.
fn seal(key: &[u8; 64], mut plain: Vec<u8>) -> Result<Vec<u8>> {
  let rng = SystemRandom::new();
  let mut salt = [0u8; SALT_LEN];
  let mut nonce = [0u8; aead::NONCE_LEN];
  let random = rng.fill(&mut salt).and_then(|()| rng.fill(&mut nonce));
  random.map_err(|_| {
    Error::new(
      ErrorCode::FileOperationFailed,
      "Could not get random bytes to encrypt the user store",
    )
  })?;
  let mut out = Vec::with_capacity(HEADER_LEN + plain.len() + aead::AES_256_GCM.tag_len());
  out.extend_from_slice(MAGIC);
  out.extend_from_slice(&salt);
  file_key(key, &salt)
    .seal_in_place_append_tag(
      aead::Nonce::assume_unique_for_key(nonce),
      aead::Aad::from(&out[..]),
      &mut plain,
    )
    .map_err(|_| {
      Error::new(
        ErrorCode::FileOperationFailed,
        "The user store is too large to encrypt",
      )
    })?;
  out.extend_from_slice(&nonce);
  out.extend_from_slice(&plain);
  Ok(out)
}

/// Decrypts an encrypted file (at least a header and a tag long); None for a
/// wrong key or changed bytes.
fn unseal(key: &[u8; 64], bytes: &[u8]) -> Option<Vec<u8>> {
  let (aad, rest) = bytes.split_at(MAGIC.len() + SALT_LEN);
  let (nonce, sealed) = rest.split_at(aead::NONCE_LEN);
  let nonce = aead::Nonce::try_assume_unique_for_key(nonce).ok()?;
  let mut buf = sealed.to_vec();
  let len = file_key(key, &aad[MAGIC.len()..])
    .open_in_place(nonce, aead::Aad::from(aad), &mut buf)
    .ok()?
    .len();
  buf.truncate(len);
  Some(buf)
}

/// The JSON form of `snapshot`.
fn encode(snapshot: &Snapshot) -> Vec<u8> {
  let file = FileOut {
    format: FORMAT,
    version: VERSION,
    current: snapshot.current.as_deref(),
    users: snapshot
      .users
      .iter()
      .map(|u| UserOut {
        id: &u.id,
        access_token: u.tokens.as_ref().map(|(a, _)| a.expose()),
        refresh_token: u.tokens.as_ref().map(|(_, r)| r.expose()),
        device_id: &u.device_id,
        provider: &u.login_provider,
        profile: u.profile.as_ref().map(|p| ProfileOut {
          data: &p.data,
          identities: p
            .identities
            .iter()
            .map(|i| IdentityOut {
              id: &i.id,
              provider_type: &i.provider_type,
            })
            .collect(),
          user_type: &p.user_type,
        }),
      })
      .collect(),
  };
  serde_json::to_vec(&file).expect("strings and JSON maps always serialise")
}

/// The file as written.
#[derive(Serialize)]
struct FileOut<'a> {
  /// Always [`FORMAT`].
  format: &'static str,
  /// Always [`VERSION`].
  version: u64,
  /// The current user's id.
  current: Option<&'a str>,
  /// The users in store order.
  users: Vec<UserOut<'a>>,
}

/// One user as written.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct UserOut<'a> {
  /// The user's id.
  id: &'a str,
  /// Absent when logged out.
  #[serde(skip_serializing_if = "Option::is_none")]
  access_token: Option<&'a str>,
  /// Absent when logged out.
  #[serde(skip_serializing_if = "Option::is_none")]
  refresh_token: Option<&'a str>,
  /// The device id.
  device_id: &'a str,
  /// The login provider.
  provider: &'a str,
  /// The profile, or null.
  profile: Option<ProfileOut<'a>>,
}

/// A profile as written.
#[derive(Serialize)]
struct ProfileOut<'a> {
  /// The profile data document.
  data: &'a Map<String, Value>,
  /// The identities.
  identities: Vec<IdentityOut<'a>>,
  /// `normal` or `server`.
  #[serde(rename = "type")]
  user_type: &'a str,
}

/// An identity as written.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct IdentityOut<'a> {
  /// The identity's id.
  id: &'a str,
  /// Its provider.
  provider_type: &'a str,
}

/// The file as read; unknown fields are ignored so a later release can add some.
#[derive(Deserialize)]
struct FileIn {
  /// The current user's id.
  #[serde(default)]
  current: Option<String>,
  /// The users in store order.
  users: Vec<UserIn>,
}

/// One user as read.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct UserIn {
  /// The user's id.
  id: String,
  /// Present while logged in.
  #[serde(default)]
  access_token: Option<String>,
  /// Present while logged in.
  #[serde(default)]
  refresh_token: Option<String>,
  /// The device id.
  #[serde(default)]
  device_id: String,
  /// The login provider.
  #[serde(default)]
  provider: String,
  /// The profile, or null.
  #[serde(default)]
  profile: Option<ProfileIn>,
}

/// A profile as read.
#[derive(Deserialize)]
struct ProfileIn {
  /// The profile data document.
  data: Map<String, Value>,
  /// The identities.
  identities: Vec<IdentityIn>,
  /// `normal` or `server`.
  #[serde(rename = "type")]
  user_type: String,
}

/// An identity as read.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct IdentityIn {
  /// The identity's id.
  id: String,
  /// Its provider.
  provider_type: String,
}

impl FileIn {
  /// The snapshot this file holds. Tolerates what our writer never produces:
  /// a user with only one token is logged out, a repeated id keeps its first
  /// record, a current id that is not stored means no current user.
  fn into_snapshot(self) -> Snapshot {
    let mut seen = HashSet::with_capacity(self.users.len());
    let mut users = Vec::with_capacity(self.users.len());
    for u in self.users {
      if !seen.insert(u.id.clone()) {
        continue;
      }
      users.push(UserRecord {
        tokens: match (u.access_token, u.refresh_token) {
          (Some(access), Some(refresh)) => Some((Secret::new(access), Secret::new(refresh))),
          _ => None,
        },
        id: u.id,
        device_id: u.device_id,
        login_provider: u.provider,
        profile: u.profile.map(|p| Profile {
          data: p.data,
          identities: p
            .identities
            .into_iter()
            .map(|i| Identity {
              id: i.id,
              provider_type: i.provider_type,
            })
            .collect(),
          user_type: p.user_type,
        }),
      });
    }
    let current = self.current.filter(|id| seen.contains(id));
    Snapshot { users, current }
  }
}

#[cfg(test)]
mod tests {
  use super::*;
  use std::sync::atomic::{AtomicUsize, Ordering};
  use std::sync::mpsc;
  use std::thread;
  use std::time::Duration;

  /// The App id most tests use.
  const APP: &str = "my-app";

  /// A fresh, not yet created folder under the temp dir; removed when dropped
  /// (also when the test panics).
  struct TempDir(PathBuf);

  impl TempDir {
    fn new(name: &str) -> TempDir {
      static NEXT: AtomicUsize = AtomicUsize::new(0);
      let path = std::env::temp_dir().join(format!(
        "realm-auth-store-{}-{}-{name}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
      ));
      let _ = fs::remove_dir_all(&path);
      TempDir(path)
    }

    fn plain(&self) -> Persistence {
      Persistence::Plain {
        base: self.0.clone(),
      }
    }

    fn encrypted(&self, seed: u8) -> Persistence {
      Persistence::Encrypted {
        base: self.0.clone(),
        key: key(seed),
      }
    }

    fn app_dir(&self, folder: &str) -> PathBuf {
      self.0.join("mongodb-realm").join(folder)
    }
  }

  impl Drop for TempDir {
    fn drop(&mut self) {
      let _ = fs::remove_dir_all(&self.0);
    }
  }

  fn key(seed: u8) -> Box<[u8; 64]> {
    let mut key = [0u8; 64];
    for (i, b) in key.iter_mut().enumerate() {
      *b = seed.wrapping_mul(31).wrapping_add(i as u8);
    }
    Box::new(key)
  }

  fn profile(email: &str) -> Profile {
    let data = serde_json::json!({ "email": email, "nested": { "n": 1.5, "list": [true, null] } });
    Profile {
      data: data.as_object().unwrap().clone(),
      identities: vec![
        Identity {
          id: format!("{email}-id"),
          provider_type: "local-userpass".into(),
        },
        Identity {
          id: "second".into(),
          provider_type: "api-key".into(),
        },
      ],
      user_type: "normal".into(),
    }
  }

  fn tokens(access: &str, refresh: &str) -> Option<(Secret, Secret)> {
    Some((Secret::new(access), Secret::new(refresh)))
  }

  /// A logged-in user with every field set.
  fn user(id: &str) -> UserRecord {
    UserRecord {
      id: id.into(),
      tokens: tokens(&format!("access-{id}"), &format!("refresh-{id}")),
      device_id: format!("device-{id}"),
      login_provider: "local-userpass".into(),
      profile: Some(profile(&format!("{id}@example.com"))),
    }
  }

  /// Opens a store and makes its folder, as its first write would, so that a
  /// test can put files in it.
  fn open(persistence: &Persistence) -> (Store, Snapshot) {
    let (store, snapshot) = Store::open(persistence, APP).unwrap();
    let store = store.unwrap();
    create_dir(&store.dir).unwrap();
    (store, snapshot)
  }

  #[test]
  fn opening_writes_nothing_until_a_change() {
    let td = TempDir::new("lazy");
    let (store, snapshot) = Store::open(&td.plain(), APP).unwrap();
    let store = store.unwrap();
    assert_eq!(snapshot, Snapshot::default());
    assert!(!td.0.join("mongodb-realm").exists());
    store.apply(&[log_in("u1")]).unwrap();
    assert!(store.path().exists());
  }

  fn log_in(id: &str) -> Change {
    Change::LogIn(user(id))
  }

  /// The logout of `user(id)`'s session.
  fn log_out(id: &str) -> Change {
    Change::LogOut {
      id: id.into(),
      refresh: Secret::new(format!("refresh-{id}")),
    }
  }

  #[test]
  fn a_logout_leaves_a_newer_session_alone() {
    let td = TempDir::new("newer");
    let (store, _) = open(&td.plain());
    store.apply(&[log_in("a")]).unwrap();
    // Another process logged "a" in again: a logout of the old session changes nothing.
    let mut again = user("a");
    again.tokens = tokens("access-new", "refresh-new");
    store.apply(&[Change::LogIn(again)]).unwrap();
    let snapshot = store.apply(&[log_out("a")]).unwrap();
    assert_eq!(
      snapshot.users[0].tokens,
      tokens("access-new", "refresh-new")
    );
    assert_eq!(snapshot.current.as_deref(), Some("a"));
  }

  fn ids(snapshot: &Snapshot) -> Vec<&str> {
    snapshot.users.iter().map(|u| u.id.as_str()).collect()
  }

  fn find<'a>(snapshot: &'a Snapshot, id: &str) -> &'a UserRecord {
    snapshot.users.iter().find(|u| u.id == id).unwrap()
  }

  /// The names in `dir` that start with `prefix`, sorted.
  fn names(dir: &Path, prefix: &str) -> Vec<String> {
    let mut names: Vec<String> = fs::read_dir(dir)
      .unwrap()
      .map(|e| e.unwrap().file_name().into_string().unwrap())
      .filter(|n| n.starts_with(prefix))
      .collect();
    names.sort();
    names
  }

  /// Stores users b, a (logged in) and c (logged out, no profile) with a
  /// current, reads them back through a new handle, and returns the snapshot.
  fn round_trip(persistence: &Persistence) -> Snapshot {
    let (store, empty) = open(persistence);
    assert_eq!(empty, Snapshot::default());
    let mut anonymous = user("c");
    anonymous.login_provider = "anon-user".into();
    anonymous.profile = None;
    let written = store
      .apply(&[
        log_in("b"),
        log_in("a"),
        Change::LogIn(anonymous.clone()),
        log_out("c"),
        Change::SetCurrent { id: "a".into() },
      ])
      .unwrap();
    anonymous.tokens = None;
    let expected = Snapshot {
      users: vec![user("b"), user("a"), anonymous],
      current: Some("a".into()),
    };
    assert_eq!(written, expected);
    let (_, read) = open(persistence);
    assert_eq!(read, expected);
    read
  }

  #[test]
  fn round_trip_plain() {
    let td = TempDir::new("plain");
    round_trip(&td.plain());
    let raw: Value =
      serde_json::from_slice(&fs::read(td.app_dir(APP).join(STORE_FILE)).unwrap()).unwrap();
    assert_eq!(raw["format"], "realm-auth-native/users");
    assert_eq!(raw["version"], 1);
    assert_eq!(raw["current"], "a");
    let b = &raw["users"][0];
    assert_eq!(b["id"], "b");
    assert_eq!(b["accessToken"], "access-b");
    assert_eq!(b["refreshToken"], "refresh-b");
    assert_eq!(b["deviceId"], "device-b");
    assert_eq!(b["provider"], "local-userpass");
    assert_eq!(b["profile"]["type"], "normal");
    assert_eq!(b["profile"]["data"]["email"], "b@example.com");
    assert_eq!(b["profile"]["identities"][1]["providerType"], "api-key");
    let c = raw["users"][2].as_object().unwrap();
    assert!(!c.contains_key("accessToken") && !c.contains_key("refreshToken"));
    assert_eq!(c["profile"], Value::Null);
  }

  #[test]
  fn round_trip_encrypted() {
    let td = TempDir::new("encrypted");
    let persistence = td.encrypted(1);
    round_trip(&persistence);
    let path = td.app_dir(APP).join(STORE_FILE);
    let first = fs::read(&path).unwrap();
    assert!(first.starts_with(MAGIC));
    for plain in [
      &b"access-"[..],
      b"refresh-",
      b"example.com",
      b"realm-auth-native/users",
    ] {
      assert!(!first.windows(plain.len()).any(|w| w == plain));
    }
    // Every write draws a new salt and nonce.
    let (store, _) = open(&persistence);
    store.apply(&[log_in("d")]).unwrap();
    let second = fs::read(&path).unwrap();
    assert_ne!(
      first[MAGIC.len()..HEADER_LEN],
      second[MAGIC.len()..HEADER_LEN]
    );
    assert_eq!(ids(&open(&persistence).1), ["b", "a", "c", "d"]);
  }

  #[test]
  fn unknown_fields_are_ignored() {
    let td = TempDir::new("unknown");
    let (store, _) = open(&td.plain());
    let json = serde_json::json!({
      "format": "realm-auth-native/users", "version": 1, "current": "a", "later": [1],
      "users": [{
        "id": "a", "accessToken": "t1", "refreshToken": "t2", "deviceId": "d", "provider": "p",
        "extra": {"x": 1},
        "profile": {"data": {}, "identities": [{"id": "i", "providerType": "p", "more": 2}],
                    "type": "server", "also": null},
      }],
    });
    fs::write(store.path(), serde_json::to_vec(&json).unwrap()).unwrap();
    let (_, read) = open(&td.plain());
    assert_eq!(
      read,
      Snapshot {
        users: vec![UserRecord {
          id: "a".into(),
          tokens: tokens("t1", "t2"),
          device_id: "d".into(),
          login_provider: "p".into(),
          profile: Some(Profile {
            data: Map::new(),
            identities: vec![Identity {
              id: "i".into(),
              provider_type: "p".into()
            }],
            user_type: "server".into(),
          }),
        }],
        current: Some("a".into()),
      }
    );
  }

  #[test]
  fn odd_records_are_read_leniently() {
    let td = TempDir::new("lenient");
    let (store, _) = open(&td.plain());
    let json = serde_json::json!({
      "format": "realm-auth-native/users", "version": 1, "current": "gone",
      "users": [
        {"id": "a", "refreshToken": "only-one", "deviceId": "d1"},
        {"id": "a", "accessToken": "t1", "refreshToken": "t2", "deviceId": "d2"},
      ],
    });
    fs::write(store.path(), serde_json::to_vec(&json).unwrap()).unwrap();
    let (_, read) = open(&td.plain());
    assert_eq!(ids(&read), ["a"]);
    assert_eq!(read.users[0].tokens, None);
    assert_eq!(read.users[0].device_id, "d1");
    assert_eq!(read.current, None);
  }

  #[cfg(unix)]
  #[test]
  fn file_and_folder_modes() {
    use std::os::unix::fs::PermissionsExt;
    let mode = |p: &Path| fs::metadata(p).unwrap().permissions().mode() & 0o777;
    let td = TempDir::new("modes");
    let (store, _) = open(&td.plain());
    for dir in [td.0.clone(), td.0.join("mongodb-realm"), td.app_dir(APP)] {
      assert_eq!(mode(&dir), 0o700, "{}", dir.display());
    }
    store.apply(&[log_in("a")]).unwrap();
    assert_eq!(mode(store.path()), 0o600);
    // A leftover temporary file of another mode does not pass its mode on.
    let tmp = td.app_dir(APP).join(TMP_FILE);
    fs::write(&tmp, b"old").unwrap();
    fs::set_permissions(&tmp, fs::Permissions::from_mode(0o644)).unwrap();
    store.apply(&[log_in("b")]).unwrap();
    assert_eq!(mode(store.path()), 0o600);
  }

  #[test]
  fn in_memory_writes_nothing() {
    let app = format!("in-memory-{}", std::process::id());
    let (store, snapshot) = Store::open(&Persistence::InMemory, &app).unwrap();
    assert!(store.is_none());
    assert_eq!(snapshot, Snapshot::default());
    assert!(!Path::new("mongodb-realm").join(&app).exists());
  }

  #[test]
  fn wrong_key_fails_and_leaves_the_file() {
    let td = TempDir::new("wrong-key");
    // A handle with the wrong key, opened while the store is still empty.
    let (wrong, _) = open(&td.encrypted(2));
    let (store, _) = open(&td.encrypted(1));
    store.apply(&[log_in("a")]).unwrap();
    let bytes = fs::read(store.path()).unwrap();
    let file = store.path().display().to_string();

    let err = Store::open(&td.encrypted(2), APP).unwrap_err();
    assert_eq!(err.code, ErrorCode::DecryptionFailed);
    assert!(err.message.contains(&file), "{}", err.message);
    let err = wrong.apply(&[log_in("b")]).unwrap_err();
    assert_eq!(err.code, ErrorCode::DecryptionFailed);
    assert!(err.message.contains(&file), "{}", err.message);

    assert_eq!(fs::read(store.path()).unwrap(), bytes);
    assert_eq!(names(&td.app_dir(APP), "users.store"), ["users.store"]);
    assert_eq!(ids(&open(&td.encrypted(1)).1), ["a"]);
  }

  #[test]
  fn a_flipped_byte_fails_decryption() {
    let td = TempDir::new("flipped");
    let (store, _) = open(&td.encrypted(1));
    store.apply(&[log_in("a")]).unwrap();
    let good = fs::read(store.path()).unwrap();
    // In the salt, the nonce, the ciphertext and the tag.
    for at in [
      MAGIC.len(),
      MAGIC.len() + SALT_LEN,
      HEADER_LEN,
      good.len() - 1,
    ] {
      let mut bad = good.clone();
      bad[at] ^= 0x01;
      fs::write(store.path(), &bad).unwrap();
      let err = Store::open(&td.encrypted(1), APP).unwrap_err();
      assert_eq!(err.code, ErrorCode::DecryptionFailed, "byte {at}");
      assert!(err.message.contains(&store.path().display().to_string()));
      assert_eq!(fs::read(store.path()).unwrap(), bad);
    }
  }

  #[test]
  fn plain_and_encrypted_stores_do_not_mix() {
    // An encrypted store opened without a key.
    let td = TempDir::new("mismatch-enc");
    let (plain, _) = open(&td.plain());
    let (encrypted, _) = open(&td.encrypted(1));
    encrypted.apply(&[log_in("a")]).unwrap();
    let bytes = fs::read(encrypted.path()).unwrap();
    let err = Store::open(&td.plain(), APP).unwrap_err();
    assert_eq!(err.code, ErrorCode::DecryptionFailed);
    assert!(err.message.contains("is encrypted") && err.message.contains("encryptionKey"));
    assert!(
      err
        .message
        .contains(&encrypted.path().display().to_string())
    );
    let err = plain.apply(&[log_in("b")]).unwrap_err();
    assert!(err.message.contains("is encrypted"), "{}", err.message);
    assert_eq!(fs::read(encrypted.path()).unwrap(), bytes);

    // A plain store opened with a key.
    let td = TempDir::new("mismatch-plain");
    let (plain, _) = open(&td.plain());
    let (encrypted, _) = open(&td.encrypted(1));
    plain.apply(&[log_in("a")]).unwrap();
    let bytes = fs::read(plain.path()).unwrap();
    let err = Store::open(&td.encrypted(1), APP).unwrap_err();
    assert_eq!(err.code, ErrorCode::DecryptionFailed);
    assert!(err.message.contains("is not encrypted"), "{}", err.message);
    assert!(err.message.contains(&plain.path().display().to_string()));
    let err = encrypted.apply(&[log_in("b")]).unwrap_err();
    assert!(err.message.contains("is not encrypted"), "{}", err.message);
    assert_eq!(fs::read(plain.path()).unwrap(), bytes);
    assert_eq!(names(&td.app_dir(APP), "users.store"), ["users.store"]);
  }

  #[test]
  fn corrupt_files_are_moved_aside() {
    let shaped = br#"{"format":"realm-auth-native/users","version":1,"users":{"a":"access-a"}}"#;
    // (name, encrypted, content)
    let cases: Vec<(&str, bool, Vec<u8>)> = vec![
      (
        "cut-json",
        false,
        br#"{"format":"realm-auth-native/users","#.to_vec(),
      ),
      ("empty", false, Vec::new()),
      ("wrong-shape", false, shaped.to_vec()),
      ("foreign-json", false, br#"{"users":[]}"#.to_vec()),
      (
        "bad-magic",
        true,
        b"RANUSQ\x00\x01 not a store at all".to_vec(),
      ),
      ("truncated", true, [&MAGIC[..], &[7; 20]].concat()),
      (
        "sealed-wrong-shape",
        true,
        seal(&key(1), shaped.to_vec()).unwrap(),
      ),
    ];
    for (name, encrypted, bytes) in cases {
      let td = TempDir::new(name);
      let persistence = if encrypted {
        td.encrypted(1)
      } else {
        td.plain()
      };
      let (store, _) = open(&persistence);
      fs::write(store.path(), &bytes).unwrap();

      let (store, snapshot) = open(&persistence);
      assert_eq!(snapshot, Snapshot::default(), "{name}");
      assert!(!store.path().exists(), "{name}");
      let aside = names(&td.app_dir(APP), "users.store.corrupt-");
      assert_eq!(aside.len(), 1, "{name}");
      assert_eq!(
        fs::read(td.app_dir(APP).join(&aside[0])).unwrap(),
        bytes,
        "{name}"
      );

      assert_eq!(ids(&store.apply(&[log_in("a")]).unwrap()), ["a"], "{name}");
      assert_eq!(ids(&open(&persistence).1), ["a"], "{name}");
    }
  }

  #[test]
  fn a_write_moves_a_corrupt_file_aside_and_keeps_every_one() {
    let td = TempDir::new("corrupt-apply");
    let (store, _) = open(&td.plain());
    let dir = td.app_dir(APP);
    for (round, garbage) in [&b"garbage one"[..], b"garbage two"]
      .into_iter()
      .enumerate()
    {
      fs::write(store.path(), garbage).unwrap();
      let snapshot = store.apply(&[log_in("a")]).unwrap();
      assert_eq!(ids(&snapshot), ["a"]);
      let aside = names(&dir, "users.store.corrupt-");
      assert_eq!(aside.len(), round + 1);
      let kept: Vec<Vec<u8>> = aside
        .iter()
        .map(|n| fs::read(dir.join(n)).unwrap())
        .collect();
      assert!(kept.iter().any(|k| k == garbage));
    }
    assert_eq!(ids(&open(&td.plain()).1), ["a"]);
  }

  #[test]
  fn a_newer_version_is_refused_and_left_in_place() {
    let v2 = br#"{"format":"realm-auth-native/users","version":2,"users":"another shape"}"#;
    let mut newer_magic = MAGIC.to_vec();
    newer_magic[7] = 2;
    newer_magic.extend_from_slice(&[9; 60]);
    let cases: Vec<(&str, bool, Vec<u8>)> = vec![
      ("plain-v2", false, v2.to_vec()),
      ("magic-v2", true, newer_magic),
      ("sealed-v2", true, seal(&key(1), v2.to_vec()).unwrap()),
    ];
    for (name, encrypted, bytes) in cases {
      let td = TempDir::new(name);
      let persistence = if encrypted {
        td.encrypted(1)
      } else {
        td.plain()
      };
      let (store, _) = open(&persistence);
      fs::write(store.path(), &bytes).unwrap();
      let err = Store::open(&persistence, APP).unwrap_err();
      assert_eq!(err.code, ErrorCode::UnsupportedFileFormatVersion, "{name}");
      assert!(
        err.message.contains(&store.path().display().to_string()),
        "{name}"
      );
      assert!(err.message.contains("version 2"), "{name}: {}", err.message);
      let err = store.apply(&[log_in("a")]).unwrap_err();
      assert_eq!(err.code, ErrorCode::UnsupportedFileFormatVersion, "{name}");
      assert_eq!(fs::read(store.path()).unwrap(), bytes, "{name}");
      assert_eq!(
        names(&td.app_dir(APP), "users.store"),
        ["users.store"],
        "{name}"
      );
    }
  }

  #[test]
  fn a_refresh_never_undoes_another_handles_logout() {
    let td = TempDir::new("access");
    let (ours, _) = open(&td.plain());
    let (theirs, _) = open(&td.plain());
    ours.apply(&[log_in("a")]).unwrap();
    let access = |token: &str| Change::Access {
      id: "a".into(),
      refresh: Secret::new("refresh-a"),
      access: Secret::new(token),
    };
    // While logged in with that refresh token, the new access token is stored.
    let snapshot = ours.apply(&[access("access-2")]).unwrap();
    assert_eq!(snapshot.users[0].tokens, tokens("access-2", "refresh-a"));

    theirs.apply(&[log_out("a")]).unwrap();
    let snapshot = ours.apply(&[access("access-3")]).unwrap();
    assert_eq!(snapshot.users[0].tokens, None);
    assert_eq!(open(&td.plain()).1.users[0].tokens, None);

    // Logged in again elsewhere: a token refreshed with the old session is not stored.
    let mut again = user("a");
    again.tokens = tokens("access-new", "refresh-new");
    theirs.apply(&[Change::LogIn(again)]).unwrap();
    let snapshot = ours.apply(&[access("access-4")]).unwrap();
    assert_eq!(
      snapshot.users[0].tokens,
      tokens("access-new", "refresh-new")
    );
  }

  #[test]
  fn a_profile_of_an_unknown_user_is_ignored() {
    let td = TempDir::new("profile");
    let (store, _) = open(&td.plain());
    let before = store.apply(&[log_in("a")]).unwrap();
    let after = store
      .apply(&[Change::Profile {
        id: "nobody".into(),
        profile: profile("nobody@example.com"),
      }])
      .unwrap();
    assert_eq!(after, before);
    assert_eq!(open(&td.plain()).1, before);
    // The same change for a stored user is applied.
    let after = store
      .apply(&[Change::Profile {
        id: "a".into(),
        profile: profile("new@example.com"),
      }])
      .unwrap();
    assert_eq!(after.users[0].profile, Some(profile("new@example.com")));
  }

  #[test]
  fn a_login_without_a_profile_keeps_the_stored_one() {
    let td = TempDir::new("keep-profile");
    let (store, _) = open(&td.plain());
    store.apply(&[log_in("a")]).unwrap();
    let mut again = user("a");
    again.profile = None;
    again.tokens = tokens("access-2", "refresh-2");
    let snapshot = store.apply(&[Change::LogIn(again)]).unwrap();
    assert_eq!(snapshot.users[0].tokens, tokens("access-2", "refresh-2"));
    assert_eq!(snapshot.users[0].profile, user("a").profile);
  }

  #[test]
  fn current_user_rules() {
    let td = TempDir::new("current");
    let (store, _) = open(&td.plain());
    let apply = |change: Change| store.apply(&[change]).unwrap();
    let current = |s: Snapshot| s.current;
    let some = |id: &str| Some(id.to_owned());

    // A new user becomes current.
    for id in ["a", "b", "c", "d"] {
      assert_eq!(current(apply(log_in(id))), some(id));
    }
    // A login of a stored user does not, nor does an unknown id.
    let snapshot = apply(Change::LogIn(UserRecord {
      tokens: tokens("access-a2", "refresh-a2"),
      ..user("a")
    }));
    assert_eq!(ids(&snapshot), ["a", "b", "c", "d"]);
    assert_eq!(
      find(&snapshot, "a").tokens,
      tokens("access-a2", "refresh-a2")
    );
    assert_eq!(snapshot.current, some("d"));
    assert_eq!(
      current(apply(Change::SetCurrent { id: "b".into() })),
      some("b")
    );
    assert_eq!(
      current(apply(Change::SetCurrent { id: "zz".into() })),
      some("b")
    );
    // Logging out or removing someone else leaves the current user.
    assert_eq!(current(apply(log_out("c"))), some("b"));
    assert_eq!(current(apply(log_in("c"))), some("b"));
    // The current user logs out: the first logged-in user in store order.
    let snapshot = apply(log_out("b"));
    assert_eq!(snapshot.current, some("a"));
    assert_eq!(find(&snapshot, "b").tokens, None);
    assert_eq!(find(&snapshot, "b").profile, user("b").profile);
    // The current user is removed: the next logged-in one (b is logged out).
    let snapshot = apply(Change::Remove { id: "a".into() });
    assert_eq!(ids(&snapshot), ["b", "c", "d"]);
    assert_eq!(snapshot.current, some("c"));
    assert_eq!(current(apply(Change::Remove { id: "d".into() })), some("c"));
    // No logged-in user left: none.
    assert_eq!(current(apply(log_out("c"))), None);
    assert_eq!(open(&td.plain()).1.current, None);
  }

  #[test]
  fn two_writers_lose_no_user() {
    let td = TempDir::new("concurrent");
    let writers: Vec<_> = ["x", "y"]
      .into_iter()
      .map(|prefix| {
        let persistence = td.plain();
        thread::spawn(move || {
          let (store, _) = open(&persistence);
          for i in 0..250 {
            store.apply(&[log_in(&format!("{prefix}{i}"))]).unwrap();
          }
        })
      })
      .collect();
    for writer in writers {
      writer.join().unwrap();
    }
    let (_, snapshot) = open(&td.plain());
    assert_eq!(snapshot.users.len(), 500);
    for prefix in ["x", "y"] {
      let mine: Vec<&str> = ids(&snapshot)
        .into_iter()
        .filter(|id| id.starts_with(prefix))
        .collect();
      let expected: Vec<String> = (0..250).map(|i| format!("{prefix}{i}")).collect();
      assert_eq!(mine, expected);
    }
  }

  #[test]
  fn open_does_not_wait_for_a_writer() {
    let td = TempDir::new("no-wait");
    let (store, _) = open(&td.plain());
    store.apply(&[log_in("a")]).unwrap();
    let _held = store.lock().unwrap();
    let (done, finished) = mpsc::channel();
    let persistence = td.plain();
    thread::spawn(move || {
      let _ = done.send(Store::open(&persistence, APP).map(|(_, s)| s));
    });
    let snapshot = finished
      .recv_timeout(Duration::from_secs(10))
      .expect("open waited for the writer lock")
      .unwrap();
    assert_eq!(ids(&snapshot), ["a"]);
  }

  #[test]
  fn a_leftover_temporary_file_is_harmless() {
    let td = TempDir::new("tmp");
    let (store, _) = open(&td.plain());
    store.apply(&[log_in("a")]).unwrap();
    let tmp = td.app_dir(APP).join(TMP_FILE);
    fs::write(&tmp, vec![b'}'; 100_000]).unwrap();
    assert_eq!(ids(&open(&td.plain()).1), ["a"]);
    store.apply(&[log_in("b")]).unwrap();
    assert_eq!(ids(&open(&td.plain()).1), ["a", "b"]);
    assert!(!tmp.exists());
  }

  #[test]
  fn app_ids_name_one_folder_inside_the_store() {
    let td = TempDir::new("app-ids");
    let cases = [
      ("group/app", "group%2Fapp"),
      ("../escape", "..%2Fescape"),
      ("a%2Fb", "a%252Fb"),
      ("ü \\", "%C3%BC%20%5C"),
      ("...", "..."),
      ("my-app_1.x", "my-app_1.x"),
    ];
    for (app_id, folder) in cases {
      let (store, _) = Store::open(&td.plain(), app_id).unwrap();
      let store = store.unwrap();
      store.apply(&[log_in("a")]).unwrap();
      assert_eq!(store.path(), td.app_dir(folder).join(STORE_FILE));
      assert!(store.path().exists());
    }
    for app_id in ["", ".", ".."] {
      let err = Store::open(&td.plain(), app_id).unwrap_err();
      assert_eq!(err.code, ErrorCode::FileOperationFailed);
      assert!(
        err.message.contains("can't name a folder"),
        "{}",
        err.message
      );
    }
    let mut folders = names(&td.0.join("mongodb-realm"), "");
    let mut expected: Vec<&str> = cases.iter().map(|(_, f)| *f).collect();
    folders.sort();
    expected.sort();
    assert_eq!(folders, expected);
    assert_eq!(names(&td.0, ""), ["mongodb-realm"]);
  }

  #[test]
  fn debug_prints_no_key_and_no_token() {
    let persistence = Persistence::Encrypted {
      base: PathBuf::from("/base"),
      key: Box::new([0xAB; 64]),
    };
    let printed = format!("{persistence:?}");
    assert!(printed.contains("/base") && printed.contains("<redacted>"));
    assert!(!printed.contains("171"), "{printed}");
    let printed = format!("{:?}", Change::LogIn(user("a")));
    assert!(!printed.contains("access-a") && !printed.contains("refresh-a"));
  }
}

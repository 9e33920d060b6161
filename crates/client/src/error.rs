//! The one error type of the client, with realm's numeric error codes.

use std::fmt;

/// Calls `$m!` with the full error-code table: `Name = number, "doc"` rows.
///
/// The table lives here once; the Node binding expands it into its exported
/// `ErrorCode` enum, so the numbers JS sees cannot drift from the ones Rust uses.
/// Numbers below 4900 are realm-core's `ErrorCodes` values (realm v12 puts them in
/// `err.code`); 4900 and up are this client's own, for failures realm folds into
/// one generic code.
#[macro_export]
macro_rules! for_each_error_code {
  ($m:ident) => {
    $m! {
      UnsupportedFileFormatVersion = 1011, "The user store was written by a newer release of this SDK.";
      FileOperationFailed = 1017, "The user store could not be read or written.";
      FilePermissionDenied = 1018, "The user store's file or folder may not be read or written.";
      InvalidDatabase = 1021, "The user store is not a user store of this SDK.";
      DecryptionFailed = 1022, "The user store could not be decrypted: a wrong key, or a file changed by something else.";
      NetworkError = 4000, "The request could not be sent or its response not received (realm-core's CustomError, with realm v12's message `request to <url> failed, reason: <reason>`).";
      ClientUserNotFound = 4100, "The user does not exist in this App, or was removed.";
      ClientUserNotLoggedIn = 4101, "The user is logged out.";
      ClientRedirectError = 4103, "The server redirected in a way that cannot be followed.";
      ClientTooManyRedirects = 4104, "The server redirected too many times.";
      ClientUserAlreadyNamed = 4105, "Anonymous credentials cannot be linked to an existing user.";
      BadToken = 4200, "The server sent a token that is not a valid JWT.";
      MalformedJson = 4201, "The server's response is not the JSON that was expected.";
      MissingJsonKey = 4202, "The server's response lacks a required field.";
      BadBsonParse = 4203, "The server's response is not the Extended JSON that was expected.";
      MissingAuthReq = 4300, "The server requires authentication for this request.";
      InvalidSession = 4301, "The session is invalid, expired or revoked.";
      UserAppDomainMismatch = 4302, "The user belongs to another App.";
      DomainNotAllowed = 4303, "The domain is not allowed.";
      ReadSizeLimitExceeded = 4304, "The request exceeded a size limit.";
      InvalidParameter = 4305, "A request parameter is invalid (for example an API key name).";
      MissingParameter = 4306, "A required request parameter is missing.";
      TwilioError = 4307, "The server's Twilio service failed.";
      GCMError = 4308, "The server's GCM service failed.";
      HTTPError = 4309, "The server answered with an HTTP error status and no JSON error body.";
      AWSError = 4310, "The server's AWS service failed.";
      MongoDBError = 4311, "The server's database failed.";
      ArgumentsNotAllowed = 4312, "The arguments are not allowed.";
      FunctionExecutionError = 4313, "A server function failed.";
      NoMatchingRuleFound = 4314, "No rule of the server matched.";
      InternalServerError = 4315, "The server failed internally.";
      AuthProviderNotFound = 4316, "The authentication provider is not enabled on the server.";
      AuthProviderAlreadyExists = 4317, "The authentication provider already exists.";
      ServiceNotFound = 4318, "The service was not found.";
      ServiceTypeNotFound = 4319, "The service type was not found.";
      ServiceAlreadyExists = 4320, "The service already exists.";
      ServiceCommandNotFound = 4321, "The service command was not found.";
      ValueNotFound = 4322, "The value was not found.";
      ValueAlreadyExists = 4323, "The value already exists.";
      ValueDuplicateName = 4324, "A value with that name already exists.";
      FunctionNotFound = 4325, "The function was not found.";
      FunctionAlreadyExists = 4326, "The function already exists.";
      FunctionDuplicateName = 4327, "A function with that name already exists.";
      FunctionSyntaxError = 4328, "The function has a syntax error.";
      FunctionInvalid = 4329, "The function is invalid.";
      IncomingWebhookNotFound = 4330, "The incoming webhook was not found.";
      IncomingWebhookAlreadyExists = 4331, "The incoming webhook already exists.";
      IncomingWebhookDuplicateName = 4332, "An incoming webhook with that name already exists.";
      RuleNotFound = 4333, "The rule was not found.";
      APIKeyNotFound = 4334, "The API key does not exist or belongs to another user.";
      RuleAlreadyExists = 4335, "The rule already exists.";
      RuleDuplicateName = 4336, "A rule with that name already exists.";
      AuthProviderDuplicateName = 4337, "An authentication provider with that name already exists.";
      RestrictedHost = 4338, "The host is restricted.";
      APIKeyAlreadyExists = 4339, "The user already has an API key with that name.";
      IncomingWebhookAuthFailed = 4340, "The incoming webhook's authentication failed.";
      ExecutionTimeLimitExceeded = 4341, "A server function ran out of time.";
      NotCallable = 4342, "The function is not callable.";
      UserAlreadyConfirmed = 4343, "The user is already confirmed.";
      UserNotFound = 4344, "The user was not found on the server.";
      UserDisabled = 4345, "The user is disabled.";
      AuthError = 4346, "Authentication failed (for example a disabled or deleted API key).";
      BadRequest = 4347, "The server refused the request as malformed.";
      AccountNameInUse = 4348, "An account with that email already exists.";
      InvalidPassword = 4349, "The email or password is wrong.";
      SchemaValidationFailedWrite = 4350, "A write failed the server's schema validation.";
      AppUnknownError = 4351, "The server sent an error without an error code.";
      MaintenanceInProgress = 4352, "The server is under maintenance.";
      UserpassTokenInvalid = 4353, "The confirmation or reset token is invalid.";
      InvalidServerResponse = 4354, "The server's response is invalid.";
      AppServerError = 4355, "The server sent an error code this client does not know (see errorCode).";
      Timeout = 4901, "The request did not complete within its deadline.";
      ResponseTooLarge = 4902, "The server's response exceeded the size limit.";
      InvalidArgument = 4903, "An argument is invalid; nothing was sent.";
      Aborted = 4904, "The call was aborted through its AbortSignal.";
      Internal = 4905, "A bug in realm-auth-native: the call panicked (please report it).";
      LimitExceeded = 4906, "The server's limit was reached (for example 20 API keys per user); realm v12 reported it as AppServerError.";
      AppNotFound = 4907, "The server has no App with this id; realm v12 reported it as AppServerError.";
      LinkingNotSupported = 4908, "The server cannot link these credentials; realm v12 reported it as AppServerError.";
      MethodNotAllowed = 4909, "The server does not allow this method on this route; realm v12 reported it as AppServerError.";
    }
  };
}

macro_rules! define_error_code {
  ($($name:ident = $value:literal, $doc:literal;)*) => {
    /// Numeric error codes, as realm v12 puts them in `err.code`.
    #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
    #[allow(clippy::upper_case_acronyms)]
    pub enum ErrorCode {
      $(#[doc = $doc] $name = $value,)*
    }

    impl ErrorCode {
      /// Every code, in table order.
      pub const ALL: &'static [ErrorCode] = &[$(ErrorCode::$name,)*];

      /// The code's name, as written in the table.
      pub fn name(self) -> &'static str {
        match self { $(ErrorCode::$name => stringify!($name),)* }
      }
    }
  };
}
for_each_error_code!(define_error_code);

impl ErrorCode {
  /// The numeric value (realm's where realm has one).
  pub fn value(self) -> i32 {
    self as i32
  }

  /// Maps a server `error_code` string to a code, as realm-core's
  /// `ErrorCodes::from_string` does; unknown names become `AppServerError`.
  pub fn from_server(name: &str) -> ErrorCode {
    // Only the server's range (4300-4899), and the server codes realm-core
    // does not name (4906-4909), can come from a server.
    ErrorCode::ALL
      .iter()
      .copied()
      .find(|c| {
        ((4300..4900).contains(&c.value()) || (4906..=4909).contains(&c.value()))
          && c.name() == name
      })
      .unwrap_or(ErrorCode::AppServerError)
  }
}

/// Every failure of the client: a server error, a transport failure, a bad
/// response or a refused argument. Never carries a secret: messages are built
/// from server error texts, URLs (which hold no secrets) and our own words.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Error {
  /// What went wrong, as a code.
  pub code: ErrorCode,
  /// Human-readable text; for server errors, the server's `error` text.
  pub message: String,
  /// The HTTP status, when a response was received.
  pub status_code: Option<u16>,
  /// The server's `error_code` string, when it sent one.
  pub server_error_code: Option<String>,
  /// The server's `link` (to its logs), when it sent one.
  pub link: Option<String>,
  /// The HTTP method of the failed request, when one was made.
  pub method: Option<HttpMethod>,
  /// The URL of the failed request, when one was made.
  pub url: Option<String>,
  /// The request may have reached the server (it failed after connecting):
  /// its effect is unknown.
  pub(crate) sent: bool,
  /// The id of the failure's cause, as the embedding's `Fetch` gave it.
  pub cause: Option<std::num::NonZeroU32>,
}

/// The method of a failed request (one byte, so that [`Error`] stays small).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HttpMethod {
  /// `GET`
  Get,
  /// `POST`
  Post,
  /// `PUT`
  Put,
  /// `DELETE`
  Delete,
  /// Any other.
  Other,
}

impl HttpMethod {
  /// The method's name.
  pub fn as_str(self) -> &'static str {
    match self {
      HttpMethod::Get => "GET",
      HttpMethod::Post => "POST",
      HttpMethod::Put => "PUT",
      HttpMethod::Delete => "DELETE",
      HttpMethod::Other => "OTHER",
    }
  }

  fn from_name(name: &str) -> HttpMethod {
    match name {
      "GET" => HttpMethod::Get,
      "POST" => HttpMethod::Post,
      "PUT" => HttpMethod::Put,
      "DELETE" => HttpMethod::Delete,
      _ => HttpMethod::Other,
    }
  }
}

impl Error {
  /// An error of `code` with `message` and nothing else.
  pub fn new(code: ErrorCode, message: impl Into<String>) -> Error {
    Error {
      code,
      message: message.into(),
      status_code: None,
      server_error_code: None,
      link: None,
      method: None,
      url: None,
      sent: false,
      cause: None,
    }
  }

  /// An argument error: nothing was sent.
  pub fn invalid_argument(message: impl Into<String>) -> Error {
    Error::new(ErrorCode::InvalidArgument, message)
  }

  /// Attaches the request this error belongs to.
  pub(crate) fn with_request(mut self, method: &'static str, url: &str) -> Error {
    self.method = Some(HttpMethod::from_name(method));
    self.url = Some(url.to_owned());
    self
  }

  /// True when the request failed in transit after connecting: the server may
  /// have acted on it without the answer arriving.
  pub fn outcome_unknown(&self) -> bool {
    self.sent && matches!(self.code, ErrorCode::NetworkError | ErrorCode::Timeout)
  }

  /// True when the server answered 401: the token used was refused.
  pub fn is_unauthorized(&self) -> bool {
    self.status_code == Some(401)
  }
}

impl fmt::Display for Error {
  fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
    f.write_str(&self.message)
  }
}

impl std::error::Error for Error {}

/// Shorthand for results of this crate.
pub type Result<T> = std::result::Result<T, Error>;

#[cfg(test)]
mod tests {
  use super::*;

  #[test]
  fn codes_match_realm_core_numbers() {
    assert_eq!(ErrorCode::APIKeyNotFound.value(), 4334);
    assert_eq!(ErrorCode::InvalidPassword.value(), 4349);
    assert_eq!(ErrorCode::AppServerError.value(), 4355);
    assert_eq!(
      ErrorCode::from_server("APIKeyAlreadyExists"),
      ErrorCode::APIKeyAlreadyExists
    );
    assert_eq!(
      ErrorCode::from_server("NoSuchThing"),
      ErrorCode::AppServerError
    );
    // Every name realm-core maps gets realm-core's number, not 4355.
    for (name, number) in [
      ("TwilioError", 4307),
      ("AWSError", 4310),
      ("FunctionExecutionError", 4313),
      ("ServiceCommandNotFound", 4321),
      ("IncomingWebhookAuthFailed", 4340),
      ("NotCallable", 4342),
      ("SchemaValidationFailedWrite", 4350),
    ] {
      assert_eq!(ErrorCode::from_server(name).value(), number, "{name}");
    }
    // Server codes realm-core does not name have codes of ours.
    assert_eq!(ErrorCode::from_server("LimitExceeded").value(), 4906);
    assert_eq!(ErrorCode::from_server("AppNotFound").value(), 4907);
    // Client-side codes never come from a server.
    assert_eq!(
      ErrorCode::from_server("ClientUserNotFound"),
      ErrorCode::AppServerError
    );
  }

  #[test]
  fn names_and_values_are_unique() {
    let mut values: Vec<i32> = ErrorCode::ALL.iter().map(|c| c.value()).collect();
    values.sort_unstable();
    values.dedup();
    assert_eq!(values.len(), ErrorCode::ALL.len());
  }
}

//! One error type for the library. Every variant is a *bad input* (the CLI maps it to exit code 2)
//! except `Io`, which is a failure of the machine (exit code 1).

use std::path::PathBuf;

/// Errors of the attnsvm library. The `Display` form is one line that says what is wrong and where.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A `.npy` file that cannot be read as the array we expect (corrupt, truncated, wrong dtype,
    /// wrong rank or shape).
    #[error("{}: {msg}", path.display())]
    Npy { path: PathBuf, msg: String },
    /// A value or a combination of inputs that is not allowed (NaN, labels outside ±1, an index out
    /// of range, inconsistent sizes, an invalid setting).
    #[error("{0}")]
    Invalid(String),
    /// Reading or writing a file failed for a reason outside the input's content.
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    /// A long computation was stopped by its caller (a progress callback said so).
    #[error("interrupted")]
    Interrupted,
}

impl Error {
    /// `true` when the error is the caller's input (exit code 2), `false` for I/O failures.
    pub fn is_bad_input(&self) -> bool {
        !matches!(self, Error::Io { .. } | Error::Interrupted)
    }
}

/// Shorthand for an [`Error::Invalid`] with a formatted message.
macro_rules! invalid {
    ($($arg:tt)*) => { $crate::error::Error::Invalid(format!($($arg)*)) };
}
pub(crate) use invalid;

/// `Result` with the library's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

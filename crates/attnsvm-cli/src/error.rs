//! Errors of the CLI and their exit codes: the library's bad-input errors and the CLI's own
//! [`BadInput`] exit with 2, everything else (I/O) with 1. Messages are printed on one line.

use std::fmt;

/// An input the user gave that the CLI itself rejects (a missing flag, a bad config file, an
/// output directory that must not be replaced).
#[derive(Debug)]
pub struct BadInput(pub String);

impl fmt::Display for BadInput {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for BadInput {}

/// An `anyhow::Error` carrying a [`BadInput`] with a formatted message.
macro_rules! bad_input {
    ($($arg:tt)*) => { anyhow::Error::new($crate::error::BadInput(format!($($arg)*))) };
}
pub(crate) use bad_input;

/// 2 for bad input, 1 for anything else (a failure of the machine, not of the input).
pub fn exit_code(e: &anyhow::Error) -> u8 {
    for cause in e.chain() {
        if let Some(lib) = cause.downcast_ref::<attnsvm::Error>() {
            return if lib.is_bad_input() { 2 } else { 1 };
        }
        if cause.is::<BadInput>() {
            return 2;
        }
    }
    1
}

/// The error and its causes on one line (multi-line messages, e.g. from parsers, are joined).
pub fn one_line(e: &anyhow::Error) -> String {
    format!("{e:#}")
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exit_codes_follow_the_cause_through_context() {
        let lib = attnsvm::Error::Invalid("y: label 0.5".into());
        assert_eq!(exit_code(&anyhow::Error::new(lib).context("loading")), 2);
        let io = std::io::Error::other("disk full");
        assert_eq!(exit_code(&anyhow::Error::new(io).context("writing")), 1);
        assert_eq!(exit_code(&bad_input!("missing --data")), 2);
    }

    #[test]
    fn messages_are_one_line() {
        let e = bad_input!("first\n  second\n").context("outer");
        assert_eq!(one_line(&e), "outer: first second");
    }
}

//! The bearer token the router presents to the control plane.

use std::path::{Path, PathBuf};

/// The environment variable the control plane and both routers read the
/// bearer token from when no flag gives one (Go: `protocol.TokenEnv`). It, or
/// a token file, is the preferred way: a flag value shows in `ps`.
pub const TOKEN_ENV: &str = "CELLBENCH_CP_TOKEN";

/// Why no bearer token could be chosen.
#[derive(Debug)]
pub enum TokenError {
    FlagAndFile,
    UnreadableFile(PathBuf, std::io::Error),
    EmptyFile(PathBuf),
}

impl std::fmt::Display for TokenError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            TokenError::FlagAndFile => write!(f, "give the token by flag or by file, not both"),
            TokenError::UnreadableFile(path, e) => write!(f, "token file {}: {e}", path.display()),
            TokenError::EmptyFile(path) => write!(f, "token file {} is empty", path.display()),
        }
    }
}

impl std::error::Error for TokenError {}

/// The bearer token, as Go's `protocol.ResolveToken`: the flag value, else
/// the file's contents without trailing CR/LF (as editors and `echo` leave
/// them), else `env` (the value of [`TOKEN_ENV`]); empty means none. A flag
/// with a file is refused, and so is an empty file: it would silently turn
/// authentication off.
pub fn resolve_token(
    flag: Option<String>,
    file: Option<&Path>,
    env: Option<String>,
) -> Result<Option<String>, TokenError> {
    let flag = flag.filter(|t| !t.is_empty());
    match (flag, file) {
        (Some(_), Some(_)) => Err(TokenError::FlagAndFile),
        (Some(token), None) => Ok(Some(token)),
        (None, Some(path)) => {
            let raw = std::fs::read_to_string(path)
                .map_err(|e| TokenError::UnreadableFile(path.to_owned(), e))?;
            match raw.trim_end_matches(['\r', '\n']) {
                "" => Err(TokenError::EmptyFile(path.to_owned())),
                token => Ok(Some(token.to_owned())),
            }
        }
        (None, None) => Ok(env.filter(|t| !t.is_empty())),
    }
}

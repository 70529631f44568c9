//! The strict pre-pass (Go: `config/strict.go`): rejects, as `parse_error`,
//! what a JSON decoder would otherwise accept silently or read differently
//! from Go — duplicate object keys, null values, trailing data — and
//! normalises what Go's decoder repairs, so that both routers see the same
//! document:
//! - invalid UTF-8 inside strings and lone UTF-16 surrogate escapes become
//!   U+FFFD (serde_json would reject them, Go replaces them);
//! - nesting deeper than 10 000 levels is an error (Go's decoder limit; below
//!   it, a deep value under an unknown field is still `unknown_field`).
//!
//! Well-formedness is checked by serde_json (`IgnoredAny`, which walks nested
//! values without recursion); the key/null walk is hand-written because
//! serde_json has no token stream and a recursive serde visitor cannot walk
//! the nesting depths Go accepts.

use std::borrow::Cow;
use std::collections::HashSet;

use serde::de::IgnoredAny;

use super::{code, ConfigError};

/// Go's encoding/json scanner limit.
const MAX_NESTING_DEPTH: usize = 10_000;

/// Checks a whole document; returns it, normalised where Go would repair it.
pub(super) fn check(doc: &[u8]) -> Result<Cow<'_, [u8]>, ConfigError> {
    let doc = match String::from_utf8_lossy(doc) {
        Cow::Borrowed(text) => Cow::Borrowed(text.as_bytes()),
        Cow::Owned(text) => Cow::Owned(text.into_bytes()),
    };
    serde_json::from_slice::<IgnoredAny>(&doc).map_err(|err| {
        let message = if err.is_eof() {
            "unexpected end of document".to_owned()
        } else if err.to_string().starts_with("trailing characters") {
            "unexpected data after the document".to_owned()
        } else {
            err.to_string()
        };
        ConfigError::new(code::PARSE_ERROR, message)
    })?;
    Walk {
        doc,
        frames: Vec::new(),
    }
    .run()
}

enum Frame {
    Object {
        keys: HashSet<Vec<u8>>,
        expect_key: bool,
        last_key: String,
    },
    Array,
}

/// A walk over a document already known to be well-formed JSON.
struct Walk<'a> {
    doc: Cow<'a, [u8]>,
    frames: Vec<Frame>,
}

impl<'a> Walk<'a> {
    fn run(mut self) -> Result<Cow<'a, [u8]>, ConfigError> {
        let mut i = 0;
        while i < self.doc.len() {
            match self.doc[i] {
                b'"' => {
                    let end = self.string_end(i);
                    if let Some(Frame::Object {
                        expect_key: true, ..
                    }) = self.frames.last()
                    {
                        self.add_key(&decode_key(&self.doc[i..=end]))?;
                    }
                    i = end;
                }
                b'{' | b'[' => {
                    if self.frames.len() == MAX_NESTING_DEPTH {
                        return Err(self.error("exceeded max depth"));
                    }
                    self.frames.push(match self.doc[i] {
                        b'{' => Frame::Object {
                            keys: HashSet::new(),
                            expect_key: true,
                            last_key: String::new(),
                        },
                        _ => Frame::Array,
                    });
                }
                b'}' | b']' => {
                    self.frames.pop();
                }
                b',' => {
                    if let Some(Frame::Object { expect_key, .. }) = self.frames.last_mut() {
                        *expect_key = true;
                    }
                }
                // Outside strings, an `n` can only start `null`.
                b'n' => return Err(self.error("null is not allowed (leave the field out instead)")),
                _ => {}
            }
            i += 1;
        }
        Ok(self.doc)
    }

    fn add_key(&mut self, key: &[u8]) -> Result<(), ConfigError> {
        let Some(Frame::Object {
            keys,
            expect_key,
            last_key,
        }) = self.frames.last_mut()
        else {
            unreachable!("add_key is only called inside an object");
        };
        *expect_key = false;
        *last_key = String::from_utf8_lossy(key).into_owned();
        if !keys.insert(key.to_vec()) {
            let message = format!("duplicate key {:?}", last_key);
            return Err(self.error_at_parent(&message));
        }
        Ok(())
    }

    /// Index of the closing quote of the string opening at `start`. Lone
    /// surrogate escapes on the way are rewritten to `\ufffd` in place (the
    /// same length), as Go's decoder replaces them with U+FFFD.
    fn string_end(&mut self, start: usize) -> usize {
        let mut j = start + 1;
        loop {
            match self.doc[j] {
                b'"' => return j,
                b'\\' if self.doc[j + 1] == b'u' => {
                    let unit = hex4(&self.doc[j + 2..j + 6]);
                    if (0xD800..=0xDFFF).contains(&unit) {
                        let paired = (0xD800..=0xDBFF).contains(&unit)
                            && self.doc.get(j + 6..j + 8) == Some(b"\\u")
                            && (0xDC00..=0xDFFF).contains(&hex4(&self.doc[j + 8..j + 12]));
                        if paired {
                            j += 6;
                        } else {
                            self.doc.to_mut()[j + 2..j + 6].copy_from_slice(b"fffd");
                        }
                    }
                    j += 6;
                }
                b'\\' => j += 2,
                _ => j += 1,
            }
        }
    }

    fn path(&self, frames: &[Frame]) -> String {
        let mut path = String::from("$");
        for frame in frames {
            match frame {
                Frame::Object { last_key, .. } => {
                    path.push('.');
                    path.push_str(last_key);
                }
                Frame::Array => path.push_str("[]"),
            }
        }
        path
    }

    fn error(&self, what: &str) -> ConfigError {
        ConfigError::new(
            code::PARSE_ERROR,
            format!("{}: {what}", self.path(&self.frames)),
        )
    }

    /// An error about a key names the object holding it, as Go's does.
    fn error_at_parent(&self, what: &str) -> ConfigError {
        let parents = &self.frames[..self.frames.len() - 1];
        ConfigError::new(code::PARSE_ERROR, format!("{}: {what}", self.path(parents)))
    }
}

/// The decoded bytes of a JSON string literal (quotes included in `raw`).
fn decode_key(raw: &[u8]) -> Vec<u8> {
    let inner = &raw[1..raw.len() - 1];
    if !inner.contains(&b'\\') {
        return inner.to_vec();
    }
    // Well-formed, valid UTF-8 and without lone surrogates by now.
    serde_json::from_slice::<String>(raw).map_or_else(|_| inner.to_vec(), String::into_bytes)
}

fn hex4(digits: &[u8]) -> u32 {
    std::str::from_utf8(digits)
        .ok()
        .and_then(|s| u32::from_str_radix(s, 16).ok())
        .unwrap_or(0)
}

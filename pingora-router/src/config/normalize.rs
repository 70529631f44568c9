//! What Go's JSON decoder repairs instead of rejecting, repaired the same way
//! before serde sees the document, so that both routers read the same text:
//! invalid UTF-8 becomes U+FFFD, and so does a `\u` escape of a lone UTF-16
//! surrogate (serde_json would reject both as a parse error).

use std::borrow::Cow;

/// The document with Go's repairs applied; borrowed when there is nothing to
/// repair (the usual case).
pub(super) fn normalize(doc: &[u8]) -> Cow<'_, [u8]> {
    let mut doc = match String::from_utf8_lossy(doc) {
        Cow::Borrowed(text) => Cow::Borrowed(text.as_bytes()),
        Cow::Owned(text) => Cow::Owned(text.into_bytes()),
    };
    replace_lone_surrogates(&mut doc);
    doc
}

/// Rewrites `\uD800`-style escapes that do not form a surrogate pair to
/// `\ufffd` (the same length, so nothing moves). Escapes are read pairwise
/// from the start of the document: valid JSON has backslashes only inside
/// strings, and in invalid JSON the first stray backslash is a syntax error
/// that ends parsing before anything after it matters.
fn replace_lone_surrogates(doc: &mut Cow<'_, [u8]>) {
    let mut i = 0;
    while i < doc.len() {
        if doc[i] != b'\\' {
            i += 1;
            continue;
        }
        let Some(unit) = escaped_unit(doc, i) else {
            i += 2; // a two-character escape (or a malformed one)
            continue;
        };
        if (0xD800..=0xDFFF).contains(&unit) {
            let paired = (0xD800..=0xDBFF).contains(&unit)
                && escaped_unit(doc, i + 6).is_some_and(|low| (0xDC00..=0xDFFF).contains(&low));
            if paired {
                i += 6; // the low half is skipped below
            } else {
                doc.to_mut()[i + 2..i + 6].copy_from_slice(b"fffd");
            }
        }
        i += 6;
    }
}

/// The UTF-16 unit of a `\uXXXX` escape starting at `at`, if there is one.
fn escaped_unit(doc: &[u8], at: usize) -> Option<u32> {
    let escape = doc.get(at..at + 6)?;
    if &escape[..2] != b"\\u" {
        return None;
    }
    let digits = std::str::from_utf8(&escape[2..]).ok()?;
    u32::from_str_radix(digits, 16)
        .ok()
        .filter(|_| digits.bytes().all(|b| b.is_ascii_hexdigit()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repairs_like_go() {
        for (input, want) in [
            (&br#""\ud800""#[..], &br#""\ufffd""#[..]),
            (br#""\udc00\ud800x""#, br#""\ufffd\ufffdx""#),
            (br#""\ud83d\ude00""#, br#""\ud83d\ude00""#), // a real pair stays
            (br#""\ud800\u0041""#, br#""\ufffd\u0041""#),
            (br#""\\ud800""#, br#""\\ud800""#), // an escaped backslash, not an escape
            (b"\"a\xffb\"", "\"a\u{fffd}b\"".as_bytes()),
            (br#"{"plain":"text"}"#, br#"{"plain":"text"}"#),
        ] {
            assert_eq!(
                &*normalize(input),
                want,
                "{}",
                String::from_utf8_lossy(input)
            );
        }
        assert!(matches!(normalize(br#"{"a":"\u0041"}"#), Cow::Borrowed(_)));
    }
}

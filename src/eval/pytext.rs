//! The bits of Python `str` semantics the reference scripts rely on, so that Rust splits text
//! where Python does.

/// Python's `str.isspace()`, which `str.split()` and `str.rstrip()` use. It is Unicode
/// `White_Space` (Rust's `char::is_whitespace`) plus the four ASCII separators U+001C..U+001F
/// (bidi class B/S, which Python counts as space). Checked against CPython 3.11 over every
/// code point.
pub(crate) fn is_space(c: char) -> bool {
    c.is_whitespace() || ('\u{1c}'..='\u{1f}').contains(&c)
}

/// Python's `s.split()`: runs of [`is_space`] separate tokens; no empty tokens.
pub(crate) fn split(s: &str) -> impl Iterator<Item = &str> {
    s.split(is_space).filter(|t| !t.is_empty())
}

/// Python's `' '.join(s.split())`.
pub(crate) fn squeeze_spaces(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for tok in split(s) {
        if !out.is_empty() {
            out.push(' ');
        }
        out.push_str(tok);
    }
    out
}

//! Making app output safe for a terminal: control characters (but newline
//! and tab), DEL, C1 and bidirectional-text controls, and bytes that are
//! not UTF-8 become visible text (`\xNN`, `\u{NNNN}`).

/// `bytes` as text that is safe to show on a terminal: control characters
/// (but newline and tab), DEL, C1 and bidirectional-text controls, and
/// bytes that are not UTF-8, written out as `\xNN` or `\u{NNNN}`; what
/// the host does to app output bound for a terminal.
pub fn terminal_safe(bytes: &[u8]) -> String {
    let mut pending = Vec::new();
    let mut out = Vec::with_capacity(bytes.len());
    escape(&mut pending, bytes, &mut out);
    for b in pending {
        push_byte_escape(&mut out, b);
    }
    String::from_utf8(out).unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned())
}

/// Appends `bytes` to `out`, made safe for a terminal (see the module's
/// documentation). `pending` carries an incomplete UTF-8 sequence from the
/// end of one call to the start of the next.
pub(super) fn escape(pending: &mut Vec<u8>, bytes: &[u8], out: &mut Vec<u8>) {
    let joined;
    let mut rest: &[u8] = if pending.is_empty() {
        bytes
    } else {
        joined = [std::mem::take(pending).as_slice(), bytes].concat();
        &joined
    };
    loop {
        match std::str::from_utf8(rest) {
            Ok(text) => {
                escape_text(text, out);
                return;
            }
            Err(e) => {
                let (valid, after) = rest.split_at(e.valid_up_to());
                escape_text(std::str::from_utf8(valid).unwrap_or_default(), out);
                match e.error_len() {
                    // Possibly the start of a character the next write completes.
                    None => {
                        pending.extend_from_slice(after);
                        return;
                    }
                    Some(len) => {
                        let (bad, tail) = after.split_at(len.min(after.len()));
                        for &b in bad {
                            push_byte_escape(out, b);
                        }
                        rest = tail;
                    }
                }
            }
        }
    }
}

fn escape_text(text: &str, out: &mut Vec<u8>) {
    let mut start = 0;
    for (at, c) in text.char_indices() {
        if !needs_escape(c) {
            continue;
        }
        out.extend_from_slice(text.get(start..at).unwrap_or_default().as_bytes());
        if (c as u32) < 0x80 {
            push_byte_escape(out, c as u8);
        } else {
            out.extend_from_slice(format!("\\u{{{:x}}}", c as u32).as_bytes());
        }
        start = at + c.len_utf8();
    }
    out.extend_from_slice(text.get(start..).unwrap_or_default().as_bytes());
}

pub(super) fn push_byte_escape(out: &mut Vec<u8>, b: u8) {
    out.extend_from_slice(format!("\\x{b:02x}").as_bytes());
}

/// Characters a terminal acts on rather than shows.
fn needs_escape(c: char) -> bool {
    match c {
        '\n' | '\t' => false,
        '\0'..='\x1f' | '\x7f'..='\u{9f}' => true,
        // Bidirectional-text controls (they reorder what is shown).
        '\u{61c}' | '\u{200e}' | '\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}' => {
            true
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing)]

    use super::*;

    fn escaped(pieces: &[&[u8]]) -> String {
        let mut pending = Vec::new();
        let mut out = Vec::new();
        for p in pieces {
            escape(&mut pending, p, &mut out);
        }
        for b in pending {
            push_byte_escape(&mut out, b);
        }
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn control_sequences_become_visible_text() {
        assert_eq!(
            escaped(&[b"\x1b]0;pwned\x07title \x1b]52;c;ZXZpbA==\x07clip"]),
            r"\x1b]0;pwned\x07title \x1b]52;c;ZXZpbA==\x07clip"
        );
        assert_eq!(
            escaped(&[b"\x1b[2J\x1b[H\r\x08\x7f\0"]),
            r"\x1b[2J\x1b[H\x0d\x08\x7f\x00"
        );
        // C1 controls, as characters and as raw bytes; bidi overrides.
        assert_eq!(escaped(&["\u{9b}31m".as_bytes()]), r"\u{9b}31m");
        assert_eq!(escaped(&[b"\x9b31m"]), r"\x9b31m");
        assert_eq!(
            escaped(&["a\u{202e}b\u{2066}c".as_bytes()]),
            r"a\u{202e}b\u{2066}c"
        );
        // Text, newlines and tabs pass; so does a character split across writes.
        assert_eq!(escaped(&["é\tü\n✓".as_bytes()]), "é\tü\n✓");
        let check = "✓".as_bytes();
        assert_eq!(escaped(&[&check[..1], &check[1..2], &check[2..]]), "✓");
        // An incomplete character at the very end is shown as bytes.
        assert_eq!(escaped(&[&check[..2]]), r"\xe2\x9c");
        assert_eq!(escaped(&[b"\xff\xfe ok"]), r"\xff\xfe ok");
    }
}

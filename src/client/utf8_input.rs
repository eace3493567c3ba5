//! Local input bytes (keystrokes of a console or `exec -t`, piped stdin of `exec`) → the text
//! of `input` messages. A JSON string cannot carry arbitrary bytes, and a read may end in the
//! middle of a multibyte character: such a tail waits for the next read instead of turning
//! into U+FFFD, so pasted, typed or piped non-ASCII text arrives intact.

/// Turns reads into text for `input` messages without breaking characters: an
/// incomplete UTF-8 sequence at the end of a read waits for the rest; only bytes that can never
/// be UTF-8 become U+FFFD (a JSON string cannot carry them).
#[derive(Debug, Default)]
pub struct Utf8Input {
    pending: Vec<u8>,
}

impl Utf8Input {
    /// The text of `bytes` after what came before; an incomplete trailing sequence is held.
    pub fn push(&mut self, bytes: &[u8]) -> String {
        self.pending.extend_from_slice(bytes);
        let mut text = String::new();
        loop {
            match std::str::from_utf8(&self.pending) {
                Ok(valid) => {
                    text.push_str(valid);
                    self.pending.clear();
                    return text;
                }
                Err(e) => {
                    let valid = e.valid_up_to();
                    text.push_str(std::str::from_utf8(&self.pending[..valid]).expect("checked"));
                    match e.error_len() {
                        None => {
                            self.pending.drain(..valid); // an incomplete tail: keep it
                            return text;
                        }
                        Some(bad) => {
                            text.push(char::REPLACEMENT_CHARACTER);
                            self.pending.drain(..valid + bad);
                        }
                    }
                }
            }
        }
    }

    /// The input ended: a held incomplete sequence can never complete and becomes U+FFFD.
    pub fn finish(&mut self) -> String {
        let dangling = !self.pending.is_empty();
        self.pending.clear();
        match dangling {
            true => char::REPLACEMENT_CHARACTER.to_string(),
            false => String::new(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::Utf8Input;

    #[test]
    fn multibyte_characters_split_across_reads_stay_whole() {
        let mut input = Utf8Input::default();
        let bytes = "aé€😀".as_bytes();
        let mut text = String::new();
        for byte in bytes {
            text.push_str(&input.push(std::slice::from_ref(byte)));
        }
        assert_eq!(text, "aé€😀");
        assert_eq!(input.push(&[0xF0, 0x9F]), "");
        assert_eq!(input.push(&[0x98, 0x80, b'x']), "😀x");
    }

    #[test]
    fn bytes_that_are_never_utf8_become_replacement_characters() {
        let mut input = Utf8Input::default();
        assert_eq!(input.push(&[b'a', 0xFF, b'b']), "a\u{FFFD}b");
        assert_eq!(input.push(&[0xE2, 0x82]), "");
        assert_eq!(input.push(b"c"), "\u{FFFD}c");
    }

    #[test]
    fn an_incomplete_sequence_at_the_end_becomes_one_replacement_character() {
        let mut input = Utf8Input::default();
        assert_eq!(input.push(b"b\xc3"), "b");
        assert_eq!(input.finish(), "\u{FFFD}");
        assert_eq!(input.finish(), "", "nothing is held any more");
    }
}

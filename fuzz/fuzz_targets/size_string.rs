#![no_main]

// The CLI's size flags (`--memory 512mb`): `parse_size` is the whole parser.
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = langsmith::text::parse_size(text);
    }
});

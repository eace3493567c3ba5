#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| langsmith::server::fuzz::image_metadata(data));

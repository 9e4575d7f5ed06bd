//! The example gateway's config parser never panics, and its errors never repeat a value from
//! the text (a config may hold an inline key): a marker string placed as a value never appears
//! in an error message.
#![no_main]

use infergate_examples::config::Config;
use libfuzzer_sys::fuzz_target;

const MARKER: &str = "SECRETVALUE";

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Err(e) = Config::parse(text) {
        let _ = e.to_string();
    }
    // The same text with a secret-looking value spliced in as a string value.
    let spliced = format!("{text}\nkey = \"{MARKER}\"\n");
    if let Err(e) = Config::parse(&spliced) {
        assert!(!e.to_string().contains(MARKER), "error echoes a value: {e}");
    }
});

//! The config loader on arbitrary files: a config is either loaded or
//! refused with an error naming the problem; it never panics, and a loaded
//! config's validation and derived durations never panic either.
#![no_main]

use auditlens_fuzz::config::Config;
use libfuzzer_sys::fuzz_target;
use std::path::PathBuf;
use std::sync::OnceLock;

fn scratch_file() -> &'static PathBuf {
    static FILE: OnceLock<PathBuf> = OnceLock::new();
    FILE.get_or_init(|| {
        let base = if std::path::Path::new("/dev/shm").is_dir() { PathBuf::from("/dev/shm") } else { std::env::temp_dir() };
        base.join(format!("auditlens-fuzz-config-{}.toml", std::process::id()))
    })
}

fuzz_target!(|text: &[u8]| {
    let path = scratch_file();
    std::fs::write(path, text).expect("write config");
    match Config::load(Some(path)) {
        Ok(config) => {
            let _ = config.validate();
            let _ = (config.ingest.scan_interval(), config.ingest.partial_line_grace(), config.ingest.decode_thread_count());
            let _ = config.store.flush_interval();
            // What loads must serialize back and load to the same value.
            let again = toml::to_string(&config).expect("a loaded config serializes");
            let reparsed: Config = toml::from_str(&again).expect("a serialized config parses");
            assert_eq!(reparsed, config);
        }
        Err(error) => {
            let _ = error.to_string();
        }
    }
});

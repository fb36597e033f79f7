//! Every example file in `config/` loads and validates, so the documentation cannot rot.

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::path::Path;

#[test]
fn every_example_config_is_valid() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../config");
    let mut checked = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|ext| ext == "toml") {
            if let Err(err) = processor::config::load_file(&path) {
                panic!("{}: {err}", path.display());
            }
            checked += 1;
        }
    }
    assert!(
        checked >= 4,
        "expected the example configs, found {checked}"
    );
}

#[test]
fn the_embedded_default_is_config_local_toml() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../config/local.toml");
    assert_eq!(
        std::fs::read_to_string(dir).unwrap(),
        processor::config::EMBEDDED_DEFAULT
    );
}

//! The shared config vectors (config/testdata/manifest.json), which Go's
//! config package is held to as well: every vector must produce its expected
//! outcome. All mismatches are reported together.

use std::path::{Path, PathBuf};

use pingora_router::config;
use serde::Deserialize;

#[derive(Deserialize)]
struct Manifest {
    vectors: Vec<Vector>,
}

#[derive(Deserialize)]
struct Vector {
    name: String,
    #[serde(default)]
    file: Option<String>,
    #[serde(default)]
    generate: Option<Generate>,
    expect: String,
    why: String,
}

/// A document too big to commit: the base file followed by ASCII spaces.
#[derive(Deserialize)]
struct Generate {
    base: String,
    pad_to_bytes: usize,
}

fn testdata() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../config/testdata")
}

fn document(vector: &Vector) -> Vec<u8> {
    let read = |file: &str| {
        std::fs::read(testdata().join(file))
            .unwrap_or_else(|e| panic!("vector {}: {file}: {e}", vector.name))
    };
    match (&vector.file, &vector.generate) {
        (Some(file), None) => read(file),
        (None, Some(generate)) => {
            let mut doc = read(&generate.base);
            assert!(
                doc.len() <= generate.pad_to_bytes,
                "vector {}: base is already too big",
                vector.name
            );
            doc.resize(generate.pad_to_bytes, b' ');
            doc
        }
        _ => panic!(
            "vector {}: needs exactly one of file and generate",
            vector.name
        ),
    }
}

#[test]
fn every_shared_vector_gets_its_expected_outcome() {
    let manifest: Manifest = serde_json::from_slice(
        &std::fs::read(testdata().join("manifest.json")).expect("read manifest"),
    )
    .expect("decode manifest");
    assert!(
        !manifest.vectors.is_empty(),
        "the manifest lists no vectors"
    );

    let mut mismatches = Vec::new();
    for vector in &manifest.vectors {
        let outcome = match config::parse(&document(vector)) {
            Ok(_) => "ok".to_owned(),
            Err(err) => {
                assert!(
                    err.to_string().starts_with(err.code),
                    "{}: message must start with the code",
                    vector.name
                );
                err.code.to_owned()
            }
        };
        if outcome != vector.expect {
            let detail = config::parse(&document(vector))
                .err()
                .map(|e| e.to_string())
                .unwrap_or_default();
            mismatches.push(format!(
                "{}: expected {}, got {} ({detail}) — {}",
                vector.name, vector.expect, outcome, vector.why
            ));
        }
    }
    assert!(
        mismatches.is_empty(),
        "{} of {} vectors mismatch:\n{}",
        mismatches.len(),
        manifest.vectors.len(),
        mismatches.join("\n")
    );
}

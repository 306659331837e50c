//! The shared real-world fixtures (`shared/fixtures/real/<kind>` beside the checkout, as
//! CI lays it out, else /work/shared), for the tests of decoders and the printer tap.
//! Absent fixtures make a test skip with a note, never fail. Also the simulator's
//! events as a round-trip corpus.

use std::path::{Path, PathBuf};

/// The directory of one kind (`poslog`, `escpos`), when present.
pub fn dir(kind: &str) -> Option<PathBuf> {
    let rel = Path::new("shared/fixtures/real").join(kind);
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .ancestors()
        .map(|a| a.join(&rel))
        .chain([Path::new("/work").join(&rel)])
        .find(|p| p.is_dir())
}

/// Every file of a kind as (file name, bytes), sorted by name; empty when absent.
pub fn all(kind: &str) -> Vec<(String, Vec<u8>)> {
    let Some(entries) = dir(kind).and_then(|d| std::fs::read_dir(d).ok()) else {
        println!("skipped: fixture directory shared/fixtures/real/{kind} not found");
        return Vec::new();
    };
    let mut files: Vec<(String, Vec<u8>)> = entries
        .flatten()
        .filter(|e| e.path().is_file())
        .filter_map(|e| {
            let bytes = std::fs::read(e.path()).ok()?;
            Some((e.file_name().to_string_lossy().into_owned(), bytes))
        })
        .collect();
    files.sort();
    files
}

/// One fixture file, when present.
pub fn one(kind: &str, name: &str) -> Option<Vec<u8>> {
    let bytes = dir(kind).and_then(|d| std::fs::read(d.join(name)).ok());
    if bytes.is_none() {
        println!("skipped: fixture {kind}/{name} not found");
    }
    bytes
}

/// The simulator's events a decoder's encoder and decoder must round-trip: 200 of a
/// retail register and 100 of a restaurant one, every edge case of DESIGN §3 included.
pub fn simulated() -> Vec<serde_json::Value> {
    use crate::sim::generate::{Generator, Profile};
    let mut retail = Generator::new(7, Profile::Retail, "reg-1", "2026-11-27");
    let mut restaurant = Generator::new(7, Profile::Restaurant, "reg-2", "2026-11-27");
    (0..200)
        .map(|_| retail.next_event())
        .chain((0..100).map(|_| restaurant.next_event()))
        .collect()
}

//! Writes the generated JSON Schemas of the broker payloads into `schema/`
//! (`posedge::contract::generated`: the stored event, inventory, summary, audit and
//! resync-request schemas), derived from the Rust types. `tests/schema.rs` fails when a
//! committed file differs; regenerate with
//!
//! ```text
//! cargo run --example gen-schema --features schema
//! ```

use std::path::Path;

fn main() -> std::process::ExitCode {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("schema");
    for (file, schema) in posedge::contract::generated() {
        let path = dir.join(file);
        let written = serde_json::to_string_pretty(&schema)
            .map_err(|e| e.to_string())
            .and_then(|text| std::fs::write(&path, text + "\n").map_err(|e| e.to_string()));
        match written {
            Ok(()) => println!("{}", path.display()),
            Err(e) => {
                eprintln!("gen-schema: {}: {e}", path.display());
                return std::process::ExitCode::FAILURE;
            }
        }
    }
    std::process::ExitCode::SUCCESS
}

//! Prints the JSON Schema of a stored `posedge.event/1` event, derived from the model
//! types. `tests/schema.rs` fails when the committed file differs; regenerate with
//!
//! ```text
//! cargo run --example gen-schema > schema/event-v1.json
//! ```

fn main() -> std::process::ExitCode {
    match serde_json::to_string_pretty(&posedge::model::schema::event_schema()) {
        Ok(text) => {
            println!("{text}");
            std::process::ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("gen-schema: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}

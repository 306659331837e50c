//! `posedge decode`: a dry run of decoder and redactor over files, for a retail IT team
//! to see how their register's data maps before going live. Nothing is queued.

use crate::config::Format;
use crate::decode;
use crate::event::{Origin, RegisterId, SourceName};
use crate::ingest::{KeyRule, Prepared, SourceContext, prepare};
use std::io::{self, Write};
use std::path::Path;

/// Counts of a dry run.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Summary {
    /// Events printed.
    pub events: u64,
    /// Records or parts refused.
    pub rejected: u64,
    /// Card data occurrences masked or removed.
    pub redacted: u64,
}

/// The mapping rules of a config, applied as they would be to one of its sources.
#[derive(Debug, Default)]
pub struct MappingFor {
    /// The source name the rules are matched against.
    pub source: String,
    /// The config's rules.
    pub rules: crate::mapping::Rules,
}

/// Decodes every file as `format`, writing events as NDJSON to `out` and one line per
/// rejection to `err` ("file: record n: reason"). With `mapping`, the config's rules for
/// that source apply, as in the running agent.
pub fn run(
    format: Format,
    register: Option<&str>,
    options: decode::Options,
    mapping: Option<MappingFor>,
    files: &[impl AsRef<Path>],
    out: &mut impl Write,
    err: &mut impl Write,
) -> io::Result<Summary> {
    let ctx = SourceContext {
        store_id: "dry-run".into(),
        origin: Origin {
            name: SourceName::new(mapping.as_ref().map_or("decode", |m| m.source.as_str())),
            kind: "file",
            format: format.as_str(),
        },
        format,
        default_register: Some(RegisterId::new(register.unwrap_or("dry-run"))),
        options,
        keys: KeyRule::Content,
        mapping: std::sync::Arc::new(mapping.map(|m| m.rules).unwrap_or_default()),
    };
    let mut summary = Summary::default();
    let received_at = crate::clock::now_rfc3339();
    for file in files {
        let path = file.as_ref();
        let bytes = std::fs::read(path)
            .map_err(|e| io::Error::new(e.kind(), format!("{}: {e}", path.display())))?;
        for (place, record) in records(format, &bytes) {
            let prepared = prepare(&ctx, record, &received_at);
            summary.redacted += u64::from(prepared.redactions.total());
            for item in prepared.items {
                match item {
                    Prepared::Event(e) => {
                        serde_json::to_writer(&mut *out, &e.body)?;
                        out.write_all(b"\n")?;
                        summary.events += 1;
                    }
                    Prepared::Rejected(d) => {
                        writeln!(err, "{}: {place}: {}", path.display(), d.reason)?;
                        summary.rejected += 1;
                    }
                }
            }
        }
    }
    Ok(summary)
}

/// The records of a file with where they are: one per line for line formats, the whole
/// file otherwise (a POSLog document, an ESC/POS stream the decoder splits at cuts).
fn records(format: Format, bytes: &[u8]) -> Vec<(String, &[u8])> {
    match format {
        Format::Ndjson | Format::Kv => bytes
            .split(|b| *b == b'\n')
            .enumerate()
            .filter(|(_, l)| !l.iter().all(u8::is_ascii_whitespace))
            .map(|(i, l)| (format!("line {}", i + 1), l))
            .collect(),
        Format::Poslog | Format::Naxml | Format::Escpos => vec![("document".into(), bytes)],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prints_events_and_names_rejections() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("in.ndjson");
        std::fs::write(
            &f,
            "{\"event_type\":\"no_sale\",\"pos_sequence\":1,\"ext\":{\"n\":\"4111 1111 1111 1111\"}}\n\n{oops\n",
        )
        .unwrap();
        #[derive(serde::Deserialize)]
        struct File {
            mapping: Vec<crate::mapping::RuleSpec>,
        }
        let specs: File = toml::from_str(
            "[[mapping]]\nsource = \"lane1\"\naction = \"rename\"\nfrom = \"ext.n\"\nto = \"body.note\"\n",
        )
        .unwrap();
        let mapping = MappingFor {
            source: "lane1".into(),
            rules: crate::mapping::Rules::compile(&specs.mapping).unwrap(),
        };
        let (mut out, mut err) = (Vec::new(), Vec::new());
        let s = run(
            Format::Ndjson,
            Some("reg-7"),
            decode::Options::default(),
            Some(mapping),
            &[&f],
            &mut out,
            &mut err,
        )
        .unwrap();
        assert_eq!((s.events, s.rejected, s.redacted), (1, 1, 1));
        let ev: serde_json::Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(ev["register_id"], "reg-7");
        // Mapped first, then redacted: the moved value is masked where it landed.
        assert_eq!(ev["body"]["note"], "411111******1111");
        assert!(ev["ext"].get("n").is_none(), "{ev}");
        let err = String::from_utf8(err).unwrap();
        assert!(err.contains("in.ndjson: line 3: invalid JSON"), "{err}");
    }
}

//! The command line as operators use it: check-config, status, exit codes.

mod common;

use common::*;
use std::process::Command;

fn posedge(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_posedge"))
        .args(args)
        .output()
        .unwrap()
}

#[test]
fn example_config_covers_every_key_and_validates() {
    let dir = tempfile::tempdir().unwrap();
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/examples/posedge.toml"
    ))
    .unwrap();
    // Point the example's absolute paths into the temp dir, where the files exist.
    let text = text
        .replace("/etc/posedge/", &format!("{}/", dir.path().display()))
        .replace("/var/lib/posedge/", &format!("{}/", dir.path().display()));
    for f in ["ca.pem", "agent.pem", "agent.key"] {
        std::fs::write(dir.path().join(f), "x").unwrap();
    }
    let cfg = dir.path().join("posedge.toml");
    std::fs::write(&cfg, &text).unwrap();
    let out = posedge(&["check-config", cfg.to_str().unwrap()]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // Every documented key of the config model appears in the example (commented or not).
    for key in [
        "tenant",
        "store_id",
        "topic_prefix",
        "path",
        "max_bytes",
        "min_free_disk",
        "group_commit_ms",
        "max_group",
        "retain_delivered_days",
        "archive_max_bytes",
        "time_zone",
        "cutoff",
        "url",
        "ca",
        "cert",
        "key",
        "mqtt_version",
        "client_id",
        "keep_alive_s",
        "backoff_floor_ms",
        "backoff_cap_ms",
        "max_inflight",
        "insecure_plaintext",
        "name",
        "kind",
        "listen",
        "format",
        "register_id",
        "max_line_bytes",
        "idle_timeout_s",
        "max_pending_acks",
        "device",
        "usb",
        "baud",
        "data_bits",
        "parity",
        "stop_bits",
        "flow_control",
        "framing",
        "printer",
        "currency",
        "code_page",
        "level",
        "action",
        "from",
        "to",
        "field",
        "trim",
        "leading_zeros",
        "width",
        "upper",
        "gtin",
        "first",
        "last",
        "keep",
        "fields",
        "separator",
        "map",
        "unmapped",
    ] {
        assert!(
            text.lines().any(|l| l
                .trim_start_matches(['#', ' '])
                .starts_with(&format!("{key} ="))),
            "example lacks {key}"
        );
    }
}

#[test]
fn check_config_names_key_and_line_and_exits_2() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("bad.toml");
    std::fs::write(
        &cfg,
        "tenant = \"t\"\nstore_id = \"s\"\n[uplink]\nurl = \"mqtts://b:8883\"\nca = \"/nonexistent/ca.pem\"\nkeep_alive_s = 1\n",
    )
    .unwrap();
    let out = posedge(&["check-config", cfg.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("line 5: uplink.ca: file /nonexistent/ca.pem does not exist"),
        "{err}"
    );
    assert!(err.contains("line 6: uplink.keep_alive_s"), "{err}");
    std::fs::write(
        &cfg,
        "tenant = \"t\"\nstore_id = \"s\"\nstore_name = 3\n[uplink]\nurl = \"x\"\n",
    )
    .unwrap();
    let out = posedge(&["check-config", cfg.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("line 3: store_name: unknown field"), "{err}");
    let out = posedge(&["check-config", "/nonexistent.toml"]);
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn status_reads_a_running_agent_as_table_and_json() {
    let w = World::new();
    let lan_port = free_port();
    let cfg = w.agent_config(lan_port, "", "");
    let _agent = Agent::start(&cfg, lan_port, w.path("agent.log"));
    eventually(std::time::Duration::from_secs(5), "heartbeat", || {
        status(&cfg)["agent"]["running"] == true
    });
    let st = status(&cfg);
    for field in ["pending", "bytes", "oldest_age_s"] {
        assert!(st["outbox"].get(field).is_some(), "outbox.{field} in {st}");
    }
    for field in ["connected", "last_puback_at"] {
        assert!(st["uplink"].get(field).is_some(), "uplink.{field} in {st}");
    }
    assert!(st["alarms"].is_array());
    let out = posedge(&["status", "--config", cfg.to_str().unwrap()]);
    let table = String::from_utf8_lossy(&out.stdout);
    assert!(table.contains("agent      running"), "{table}");
    assert!(table.contains("uplink     DISCONNECTED"), "{table}");
}

#[test]
fn decode_is_a_dry_run_with_rejections_on_stderr_and_exit_1() {
    let dir = tempfile::tempdir().unwrap();
    let good = dir.path().join("journal.kv");
    std::fs::write(
        &good,
        "type=no_sale seq=1 reg=reg-4 day=2026-11-27 reason=\"4111 1111 1111 1111\"\n\
         type=transaction seq=2 reg=reg-4 item.1.sku=42 item.1.qty=1 item.1.ext=1.50 tender.1.type=cash tender.1.amount=1.50\n",
    )
    .unwrap();
    let decode_kv = |file: &std::path::Path, currency: &str| {
        posedge(&[
            "decode",
            "--format",
            "kv",
            "--currency",
            currency,
            file.to_str().unwrap(),
        ])
    };
    let out = decode_kv(&good, "EUR");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(stdout.lines().count(), 2, "{stdout}");
    assert!(stdout.contains("411111******1111") && !stdout.contains("4111 1111 1111 1111"));
    assert!(stdout.contains("\"extended\":150"), "{stdout}");

    let bad = dir.path().join("bad.kv");
    std::fs::write(
        &bad,
        "type=transaction seq=3 item.1.qty=1 item.1.ext=1.505\n",
    )
    .unwrap();
    let out = decode_kv(&bad, "EUR");
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("bad.kv: line 1:") && stderr.contains("1.505"),
        "{stderr}"
    );
    assert!(out.stdout.is_empty());

    let out = decode_kv(&good, "euro");
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn decode_reads_every_poslog_and_escpos_fixture_without_rejection() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let Some(shared) = root
        .ancestors()
        .map(|a| a.join("shared/fixtures/real"))
        .chain([std::path::PathBuf::from("/work/shared/fixtures/real")])
        .find(|p| p.is_dir())
    else {
        println!("skipped: shared/fixtures/real not found");
        return;
    };
    for (format, kind, at_least) in [("poslog", "poslog", 59), ("escpos", "escpos", 40)] {
        let mut files: Vec<String> = std::fs::read_dir(shared.join(kind))
            .unwrap()
            .flatten()
            .map(|e| e.path().display().to_string())
            .collect();
        files.sort();
        let mut args = vec!["decode", "--format", format, "--register", "reg-1"];
        args.extend(files.iter().map(String::as_str));
        let out = posedge(&args);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "{format}: {stderr}");
        let events = String::from_utf8_lossy(&out.stdout).lines().count();
        assert!(events >= at_least, "{format}: {events} events; {stderr}");
    }
}

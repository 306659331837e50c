//! The audit trail through the whole agent: what the agent records at start (config
//! loaded or changed, TLS material), kept in SQLite, listed by `posedge queue audit`,
//! published on `…/_agent/audit`, and free of card data.

mod common;

use common::*;
use posedge::config::MqttVersion;
use serde_json::Value;
use std::time::Duration;

const PAN: &str = "4111111111111111";

fn actions(rows: &[Value]) -> Vec<&str> {
    rows.iter().map(|r| r["action"].as_str().unwrap()).collect()
}

#[test]
fn start_up_is_audited_published_and_a_changed_config_is_named() {
    let mut w = World::new();
    w.start_broker();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let _g = rt.enter();
    let sub = w.subscriber_on(MqttVersion::V5, "posedge/v1/t1/s1/_agent/audit");

    // The client certificate lives in a directory whose name looks like a card number:
    // the audit detail names the file, and must mask it.
    let (cert, key) = w.pki.client("agent").unwrap();
    let odd = w.path(&format!("certs-{PAN}"));
    std::fs::create_dir_all(&odd).unwrap();
    std::fs::copy(cert, odd.join("agent.pem")).unwrap();
    std::fs::copy(key, odd.join("agent.key")).unwrap();
    let lan_port = free_port();
    let cfg = w.agent_config(lan_port, "", "");
    let text = std::fs::read_to_string(&cfg)
        .unwrap()
        .replace(
            &cert.display().to_string(),
            &odd.join("agent.pem").display().to_string(),
        )
        .replace(
            &key.display().to_string(),
            &odd.join("agent.key").display().to_string(),
        );
    std::fs::write(&cfg, &text).unwrap();

    let agent = Agent::start(&cfg, lan_port, w.path("agent.log"));
    eventually(
        Duration::from_secs(20),
        "start-up audited and published",
        || {
            let rows = audit_rows(&cfg);
            rows.len() >= 2 && rows.iter().all(|r| r["published"] == true)
        },
    );
    let rows = audit_rows(&cfg);
    assert_eq!(
        actions(&rows),
        ["config_loaded", "certificates_loaded"],
        "{rows:?}"
    );
    assert!(
        rows.iter()
            .all(|r| r["actor"] == "agent" && r["outcome"] == "success")
    );
    let certs = rows[1]["detail"].as_str().unwrap();
    assert!(
        certs.contains("agent.pem") && !certs.contains(PAN),
        "{certs}"
    );
    assert!(certs.contains("CN=test-ca-agent, expires"), "{certs}");
    // The test PKI does not expire for centuries: no alarm.
    let st = status(&cfg);
    assert!(
        !st["alarms"].to_string().contains("certificate_expiry"),
        "{st}"
    );
    drop(agent);

    // Same config again: loaded, not changed. Then an edit: changed, naming both digests.
    let agent = Agent::start(&cfg, lan_port, w.path("agent.log"));
    eventually(Duration::from_secs(20), "second start audited", || {
        audit_rows(&cfg).len() >= 4
    });
    drop(agent);
    std::fs::write(&cfg, format!("{text}\n# reviewed by IT\n")).unwrap();
    let _agent = Agent::start(&cfg, lan_port, w.path("agent.log"));
    eventually(Duration::from_secs(20), "changed config audited", || {
        audit_rows(&cfg).len() >= 6
    });
    let rows = audit_rows(&cfg);
    assert_eq!(
        actions(&rows),
        [
            "config_loaded",
            "certificates_loaded",
            "config_loaded",
            "certificates_loaded",
            "config_changed",
            "certificates_loaded"
        ]
    );
    let changed = rows[4]["detail"].as_str().unwrap();
    let first = rows[0]["detail"].as_str().unwrap();
    let old_digest = first
        .split(';')
        .next()
        .unwrap()
        .trim_start_matches("sha256=");
    assert!(
        changed.contains(&format!("(was {old_digest})")),
        "{changed}"
    );

    eventually(Duration::from_secs(20), "all six published", || {
        sub.seen().payloads.len() >= 6
    });
    let published: Vec<Value> = sub
        .seen()
        .payloads
        .iter()
        .map(|p| serde_json::from_slice(p).unwrap())
        .collect();
    let ids: Vec<i64> = published
        .iter()
        .map(|p| p["id"].as_i64().unwrap())
        .collect();
    let mut sorted = ids.clone();
    sorted.sort_unstable();
    sorted.dedup();
    assert_eq!(
        sorted,
        (1..=6).collect::<Vec<_>>(),
        "every entry, by id: {ids:?}"
    );
    for p in &published {
        assert!(!p.to_string().contains(PAN), "{p}");
        assert!(p["at"].as_str().is_some_and(|t| t.ends_with('Z')), "{p}");
    }
}

#[test]
fn a_certificate_near_its_end_raises_an_alarm_and_its_date_is_audited() {
    let w = World::new();
    let key = rcgen::KeyPair::generate().unwrap();
    let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "short-lived-ca");
    params.not_after = time::OffsetDateTime::now_utc() + time::Duration::days(5);
    let ca = w.path("short-lived-ca.pem");
    std::fs::write(&ca, params.self_signed(&key).unwrap().pem()).unwrap();
    let lan_port = free_port();
    let cfg = w.agent_config(lan_port, "", "");
    let text = std::fs::read_to_string(&cfg)
        .unwrap()
        .replace(&w.pki.ca.display().to_string(), &ca.display().to_string());
    std::fs::write(&cfg, text).unwrap();
    let _agent = Agent::start(&cfg, lan_port, w.path("agent.log"));

    eventually(Duration::from_secs(15), "expiry alarm raised", || {
        status(&cfg)["alarms"]
            .as_array()
            .is_some_and(|a| a.iter().any(|a| a["name"] == "certificate_expiry"))
    });
    let st = status(&cfg);
    let alarm = st["alarms"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["name"] == "certificate_expiry")
        .unwrap();
    let message = alarm["message"].as_str().unwrap();
    assert!(
        message.contains("CN=short-lived-ca") && message.contains("renew"),
        "{message}"
    );
    eventually(Duration::from_secs(10), "certificates audited", || {
        audit_rows(&cfg)
            .iter()
            .any(|r| r["action"] == "certificates_loaded")
    });
    let rows = audit_rows(&cfg);
    let loaded = rows
        .iter()
        .find(|r| r["action"] == "certificates_loaded")
        .unwrap();
    let detail = loaded["detail"].as_str().unwrap();
    let year = (time::OffsetDateTime::now_utc() + time::Duration::days(5)).year();
    assert!(
        detail.contains("CN=short-lived-ca, expires") && detail.contains(&year.to_string()),
        "{detail}"
    );
}

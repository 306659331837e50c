//! The embedded MQTT broker (rumqttd) with TLS, for the demo.

use std::net::SocketAddr;
use std::path::Path;

/// Why the broker could not start.
#[derive(Debug, thiserror::Error)]
#[error("embedded broker: {0}")]
pub struct BrokerError(String);

/// Starts rumqttd on `addr` (MQTT 5 and 3.1.1 on two ports) with the given server cert.
/// Returns the MQTT 5 and 3.1.1 addresses. The broker runs on its own threads until exit.
pub fn start(
    v5: SocketAddr,
    v4: SocketAddr,
    ca: &Path,
    cert: &Path,
    key: &Path,
) -> Result<(), BrokerError> {
    let tls = format!(
        "capath = {ca:?}\ncertpath = {cert:?}\nkeypath = {key:?}\n",
        ca = ca.display().to_string(),
        cert = cert.display().to_string(),
        key = key.display().to_string()
    );
    let conns = "connection_timeout_ms = 60000\nmax_payload_size = 1048576\nmax_inflight_count = 1024\ndynamic_filters = true\n";
    let text = format!(
        "id = 0\n\n[router]\nid = 0\nmax_connections = 64\nmax_outgoing_packet_count = 1024\nmax_segment_size = 104857600\nmax_segment_count = 10\n\n\
         [v5.1]\nname = \"v5\"\nlisten = \"{v5}\"\nnext_connection_delay_ms = 1\n[v5.1.tls]\n{tls}[v5.1.connections]\n{conns}\n\
         [v4.1]\nname = \"v4\"\nlisten = \"{v4}\"\nnext_connection_delay_ms = 1\n[v4.1.tls]\n{tls}[v4.1.connections]\n{conns}"
    );
    let config: rumqttd::Config = toml::from_str(&text).map_err(|e| BrokerError(e.to_string()))?;
    let mut broker = rumqttd::Broker::new(config);
    std::thread::Builder::new()
        .name("demo-broker".into())
        .spawn(move || {
            if let Err(e) = broker.start() {
                tracing::error!(error = %e, "embedded broker stopped");
            }
        })
        .map_err(|e| BrokerError(e.to_string()))?;
    Ok(())
}

//! Helpers shared by the integration tests.
#![allow(dead_code)] // each test file uses a part

use std::path::PathBuf;

pub mod azurite;
pub mod emulator;
pub mod moto;
pub mod world;

/// The team's reference data, beside the repository (`../shared/reference`).
pub fn reference(path: &str) -> PathBuf {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared/reference");
    assert!(root.is_dir(), "reference data not found at {} (clone the repo beside shared/)", root.display());
    root.join(path)
}

/// Reads a JSON reference file.
pub fn reference_json(path: &str) -> serde_json::Value {
    let file = reference(path);
    let text = std::fs::read_to_string(&file).unwrap_or_else(|e| panic!("reading {}: {e}", file.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("parsing {}: {e}", file.display()))
}

/// A cluster and an hourly policy protecting it.
pub const HOURLY_POLICY: &str = r#"
apiVersion: lifeboat.io/v1alpha1
kind: Cluster
metadata: { name: prod }
spec: { region: westeurope, kubeconfig: { context: prod } }
---
apiVersion: lifeboat.io/v1alpha1
kind: BackupPolicy
metadata: { name: hourly }
spec:
  clusters: [prod]
  schedule: "0 0 * * * *"
  rpo: 2h
  retention: { keepLast: 24 }
"#;

/// A plain HTTP/1.1 GET on 127.0.0.1: (status, body). Enough for a test; no client library.
pub fn http_get(port: u16, path: &str) -> std::io::Result<(u16, String)> {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", port))?;
    stream.set_read_timeout(Some(std::time::Duration::from_secs(10)))?;
    write!(stream, "GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")?;
    let mut response = String::new();
    stream.read_to_string(&mut response)?;
    let status = response.split_whitespace().nth(1).and_then(|s| s.parse().ok()).unwrap_or(0);
    let body = response.split_once("\r\n\r\n").map(|(_, b)| b.to_owned()).unwrap_or_default();
    // Bodies of small JSON answers may come chunked: strip the chunk framing.
    let body = if response.to_ascii_lowercase().contains("transfer-encoding: chunked") { unchunk(&body) } else { body };
    Ok((status, body))
}

fn unchunk(body: &str) -> String {
    let mut out = String::new();
    let mut rest = body;
    while let Some((size, tail)) = rest.split_once("\r\n") {
        let Ok(n) = usize::from_str_radix(size.trim(), 16) else { break };
        if n == 0 || tail.len() < n {
            break;
        }
        out.push_str(&tail[..n]);
        rest = tail[n..].trim_start_matches("\r\n");
    }
    out
}

//! Helpers shared by the integration tests.
#![allow(dead_code)] // each test file uses a part

use std::path::PathBuf;

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

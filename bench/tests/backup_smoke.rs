//! The backup benchmark still runs end to end: a tiny object count, one run, no timing checks.

use std::process::Command;

use serde_json::Value;

#[test]
fn backup_bench_runs_on_a_tiny_cluster() {
    let output = Command::new(env!("CARGO_BIN_EXE_backup-bench"))
        .args(["--objects", "200", "--runs", "1", "--json"])
        .output()
        .expect("start backup-bench");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "backup-bench failed: {stderr}");
    let report: Value = serde_json::from_slice(&output.stdout).expect("a JSON report");
    let row = &report["rows"][0];
    assert_eq!(row["seeded"], 200, "{report:#}");
    for mode in ["baseline", "export"] {
        assert!(row[mode]["objects"].as_u64().is_some_and(|n| n >= 200), "{report:#}");
        assert!(row[mode]["peak_rss_mib"].as_f64().is_some_and(|mib| mib > 0.0), "{report:#}");
    }
    assert!(report["targets"].as_array().is_some_and(|t| t.len() == 2), "{report:#}");
}

//! The operator CLI as a user runs it: exit codes and what it prints.

use std::process::Command;

fn lifeboat(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_lifeboat")).args(args).output().expect("run lifeboat")
}

const GOOD: &str = "apiVersion: lifeboat.io/v1alpha1
kind: Cluster
metadata: { name: prod }
spec: { region: westeurope, kubeconfig: {} }
---
apiVersion: lifeboat.io/v1alpha1
kind: BackupPolicy
metadata: { name: nightly }
spec: { clusters: [prod], schedule: '0 0 2 * * *', rpo: 26h, retention: { daily: 7 } }
";

#[test]
fn policy_validate_lists_targets_as_a_table_and_as_json() {
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("p.yaml");
    std::fs::write(&file, GOOD).expect("write");
    let out = lifeboat(&["policy", "validate", file.to_str().expect("path")]);
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("TARGET") && text.contains("nightly.prod") && text.contains("26h"), "{text}");
    let out = lifeboat(&["policy", "validate", file.to_str().expect("path"), "--json"]);
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON");
    assert_eq!(json["targets"][0]["target"], "nightly.prod");
}

#[test]
fn a_bad_policy_names_file_field_and_problem_and_nothing_starts() {
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("p.yaml");
    std::fs::write(&file, GOOD.replace("rpo: 26h", "rpo: 26 hours-ish")).expect("write");
    let out = lifeboat(&["policy", "validate", file.to_str().expect("path")]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains(&format!("{} (document 2): spec.rpo:", file.display())), "{err}");

    let data = dir.path().join("data");
    let out = lifeboat(&[
        "up",
        "--port",
        "0",
        "--config",
        file.to_str().expect("path"),
        "--data",
        data.to_str().expect("path"),
    ]);
    assert_eq!(out.status.code(), Some(1), "up must refuse a bad policy");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("spec.rpo") && err.contains("nothing was started"), "{err}");
    assert!(!data.exists(), "nothing started, nothing written");
}

#[test]
fn handler_mode_needs_the_port_the_functions_host_gives() {
    let out = Command::new(env!("CARGO_BIN_EXE_lifeboat"))
        .arg("handler")
        .env_remove("FUNCTIONS_CUSTOMHANDLER_PORT")
        .output()
        .expect("run");
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("FUNCTIONS_CUSTOMHANDLER_PORT"));
}

#[test]
fn backup_now_takes_the_policy_as_an_argument_or_a_flag() {
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("p.yaml");
    std::fs::write(&file, GOOD).expect("write");
    let (config, data) = (file.to_str().expect("path"), dir.path().join("data"));
    let data = data.to_str().expect("path");
    let run = |extra: &[&str]| {
        let mut args = vec!["backup", "now", "--config", config, "--data", data, "--json"];
        args.extend_from_slice(extra);
        lifeboat(&args)
    };
    let json = |out: &std::process::Output| -> serde_json::Value {
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        serde_json::from_slice(&out.stdout).expect("JSON")
    };
    let positional = json(&run(&["nightly", "--request-id", "run-1"]));
    assert_eq!(positional["cluster"], "prod", "the policy's only cluster");
    assert_eq!(positional["backupId"].as_str().map(|id| id.starts_with("nightly-")), Some(true), "{positional}");
    let flagged = json(&run(&["--policy", "nightly", "--cluster", "prod", "--request-id", "run-2"]));
    assert_eq!(flagged["cluster"], "prod");
    assert_ne!(flagged["backupId"], positional["backupId"]);

    let both = run(&["nightly", "--policy", "nightly"]);
    assert_eq!(both.status.code(), Some(2), "clap refuses the policy twice");
    let neither = run(&[]);
    assert_eq!(neither.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&neither.stderr).contains("<POLICY>"),
        "{}",
        String::from_utf8_lossy(&neither.stderr)
    );
    let unknown = run(&["weekly"]);
    assert_eq!(unknown.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&unknown.stderr).contains("no policy weekly"),
        "{}",
        String::from_utf8_lossy(&unknown.stderr)
    );
}

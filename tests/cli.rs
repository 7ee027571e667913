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

/// restic's documented example: one backup every Sunday for 12 weeks.
const SUNDAYS: &str = r#"["2019-09-01T11:00:00Z", "2019-09-08T11:00:00Z", "2019-09-15T11:00:00Z",
 "2019-09-22T11:00:00Z", "2019-09-29T11:00:00Z", "2019-10-06T11:00:00Z", "2019-10-13T11:00:00Z",
 "2019-10-20T11:00:00Z", "2019-10-27T11:00:00Z", "2019-11-03T11:00:00Z", "2019-11-10T11:00:00Z",
 {"time": "2019-11-17T11:00:00Z", "id": "newest"}, {"time": "2019-09-01T12:00:00Z", "id": "held", "pinned": true}]"#;

#[test]
fn retention_simulate_prints_what_a_policy_keeps_and_why() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (policy, backups) = (dir.path().join("r.yaml"), dir.path().join("b.json"));
    std::fs::write(&policy, "retention: { daily: 4 }\n").expect("write");
    std::fs::write(&backups, SUNDAYS).expect("write");
    let args = |extra: &[&str]| {
        let mut args = vec!["retention", "simulate", "--policy", policy.to_str().expect("path")];
        args.extend(["--backups", backups.to_str().expect("path"), "--now", "2019-11-18T00:00:00Z"]);
        args.extend(extra);
        lifeboat(&args)
    };

    let out = args(&[]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let text = String::from_utf8_lossy(&out.stdout);
    let line = |needle: &str| text.lines().find(|l| l.contains(needle)).unwrap_or_default().to_owned();
    assert!(line("newest").contains("daily #1, newest committed"), "{text}");
    assert!(line("2019-10-27").contains("daily #4"), "{text}");
    assert!(line("2019-10-20").contains("remove"), "{text}");
    assert!(line("held").contains("pinned") && line("held").contains("keep"), "{text}");
    assert!(text.contains("keep 5, remove 8"), "{text}");

    let out = args(&["--json"]);
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON");
    let kept: Vec<&str> = json["backups"]
        .as_array()
        .expect("backups")
        .iter()
        .filter(|b| b["keep"] == true)
        .map(|b| b["id"].as_str().expect("id"))
        .collect();
    assert_eq!(kept, ["newest", "2019-11-10T11:00:00Z", "2019-11-03T11:00:00Z", "2019-10-27T11:00:00Z", "held"]);
    assert_eq!(json["removed"], 8);
}

#[test]
fn retention_simulate_reads_policy_documents_and_the_replica_retention() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (policy, backups) = (dir.path().join("p.yaml"), dir.path().join("b.json"));
    let replicated = GOOD.replace(
        "retention: { daily: 7 } }",
        "retention: { daily: 7 }, replication: { region: northeurope, rpo: 30h, retention: { keepLast: 1 } } }",
    );
    std::fs::write(&policy, replicated).expect("write");
    std::fs::write(&backups, SUNDAYS).expect("write");
    let kept = |extra: &[&str]| {
        let mut args = vec!["retention", "simulate", "--json", "--policy", policy.to_str().expect("path")];
        args.extend(["--backups", backups.to_str().expect("path"), "--now", "2019-11-18T00:00:00Z"]);
        args.extend(extra);
        let out = lifeboat(&args);
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        let json: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON");
        json["kept"].as_u64().expect("kept")
    };
    assert_eq!(kept(&[]), 8, "daily 7 and the pinned one");
    assert_eq!(kept(&["--replica"]), 2, "keepLast 1 and the pinned one");
}

#[test]
fn retention_simulate_names_the_bad_entry_and_field() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (policy, backups) = (dir.path().join("r.yaml"), dir.path().join("b.json"));
    std::fs::write(&policy, "retention: { keepLst: 4 }\n").expect("write");
    std::fs::write(&backups, r#"["2019-09-01T11:00:00Z", {"time": "2019-09-02T11:00:00Z", "pined": true}]"#)
        .expect("write");
    let run = || {
        lifeboat(&[
            "retention",
            "simulate",
            "--policy",
            policy.to_str().expect("p"),
            "--backups",
            backups.to_str().expect("b"),
        ])
    };
    let out = run();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("retention.keepLst: unknown field `keepLst`"), "{err}");

    std::fs::write(&policy, "retention: { keepLast: 4 }\n").expect("write");
    let err = String::from_utf8_lossy(&run().stderr).into_owned();
    assert!(err.contains("b.json: entry 2: unknown field `pined`"), "{err}");
    std::fs::write(&backups, r#"["2019-09-31T11:00:00Z"]"#).expect("write");
    let err = String::from_utf8_lossy(&run().stderr).into_owned();
    assert!(err.contains("entry 1: \"2019-09-31T11:00:00Z\" is not an RFC 3339 time"), "{err}");
}

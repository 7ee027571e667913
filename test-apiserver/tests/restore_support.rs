//! What a restore needs from the cluster: pre-provisioned snapshots that bind and become ready,
//! claims provisioned from them (or empty), volumes reclaimed with their claims, and workloads
//! that report readiness.

mod common;

use std::time::Duration;

use k8s_openapi::api::apps::v1::Deployment;
use kube::api::{Api, Patch, PatchParams};
use kube::runtime::wait::await_condition;
use lifeboat_test_apiserver::{
    DEFAULT_RESTORE_SIZE_BYTES, NEVER_READY_ANNOTATION, RESTORED_FROM_ANNOTATION, Running, Store,
};
use serde_json::{Value, json};

use common::start;

const SNAP: &str = "snapshot.storage.k8s.io/v1";

/// Polls `get` until `done` holds for its result (five seconds at most).
async fn eventually(what: &str, get: impl Fn() -> Option<Value>, done: impl Fn(&Value) -> bool) -> Value {
    for _ in 0..500 {
        if let Some(v) = get().filter(|v| done(v)) {
            return v;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("{what} did not happen within 5s; last: {:?}", get());
}

fn getter<'a>(
    store: &'a Store,
    api_version: &'a str,
    kind: &'a str,
    ns: &'a str,
    name: &'a str,
) -> impl Fn() -> Option<Value> + 'a {
    move || store.get(api_version, kind, ns, name).ok()
}

/// Cuts a snapshot of the sample app's claim and returns its content's handle.
async fn snapshot_of_db(server: &Running, ns: &str) -> anyhow::Result<String> {
    let s = server.store();
    s.create(json!({"apiVersion": SNAP, "kind": "VolumeSnapshot", "metadata": {"name": "backup", "namespace": ns},
        "spec": {"source": {"persistentVolumeClaimName": "data-db-0"}}}))?;
    let vs = eventually("snapshot ready", getter(s, SNAP, "VolumeSnapshot", ns, "backup"), |v| {
        v["status"]["readyToUse"] == true
    })
    .await;
    let content_name = vs["status"]["boundVolumeSnapshotContentName"].as_str().unwrap_or_default();
    let content = s.get(SNAP, "VolumeSnapshotContent", "", content_name)?;
    Ok(content["status"]["snapshotHandle"].as_str().unwrap_or_default().to_string())
}

/// A restore's pre-provisioned pair: content `name`-content for `ns/name` with `handle`.
fn import(store: &Store, ns: &str, name: &str, handle: &str, ref_name: &str) -> anyhow::Result<()> {
    store.create(
        json!({"apiVersion": SNAP, "kind": "VolumeSnapshotContent", "metadata": {"name": format!("{ns}-{name}")},
        "spec": {"deletionPolicy": "Retain", "driver": "disk.csi.azure.com", "source": {"snapshotHandle": handle},
            "volumeSnapshotClassName": "csi-azuredisk-vsc",
            "volumeSnapshotRef": {"apiVersion": SNAP, "kind": "VolumeSnapshot", "name": ref_name, "namespace": ns}}}),
    )?;
    store.create(json!({"apiVersion": SNAP, "kind": "VolumeSnapshot", "metadata": {"name": name, "namespace": ns},
        "spec": {"source": {"volumeSnapshotContentName": format!("{ns}-{name}")}}}))?;
    Ok(())
}

fn claim(store: &Store, ns: &str, name: &str, size: &str, snapshot: Option<&str>) -> anyhow::Result<Value> {
    let mut pvc = json!({"apiVersion": "v1", "kind": "PersistentVolumeClaim", "metadata": {"name": name, "namespace": ns},
        "spec": {"accessModes": ["ReadWriteOnce"], "storageClassName": "managed-csi", "resources": {"requests": {"storage": size}}}});
    if let Some(s) = snapshot {
        pvc["spec"]["dataSource"] = json!({"apiGroup": "snapshot.storage.k8s.io", "kind": "VolumeSnapshot", "name": s});
    }
    Ok(store.create(pvc)?)
}

fn namespace(store: &Store, name: &str) -> anyhow::Result<()> {
    store.create(json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}}))?;
    Ok(())
}

#[tokio::test]
async fn pre_provisioned_snapshots_bind_to_their_content_or_report_why_not() -> anyhow::Result<()> {
    let (server, _client, _dir) = start().await?;
    server.seed_sample_app("shop").await?;
    let handle = snapshot_of_db(&server, "shop").await?;
    let s = server.store();
    namespace(s, "restored")?;

    import(s, "restored", "db", &handle, "db")?;
    let early = s.get(SNAP, "VolumeSnapshot", "restored", "db")?;
    assert_ne!(early["status"]["readyToUse"], true, "not ready before the driver checked the snapshot");
    let vs = eventually("import ready", getter(s, SNAP, "VolumeSnapshot", "restored", "db"), |v| {
        v["status"]["readyToUse"] == true
    })
    .await;
    assert_eq!(vs["status"]["boundVolumeSnapshotContentName"], "restored-db");
    assert_eq!(vs["status"]["restoreSize"], "10Gi", "the size the snapshot was cut with");
    let content = s.get(SNAP, "VolumeSnapshotContent", "", "restored-db")?;
    assert_eq!(content["status"]["snapshotHandle"], handle.as_str());
    assert_eq!(content["status"]["readyToUse"], true);
    assert_eq!(content["spec"]["volumeSnapshotRef"]["uid"], vs["metadata"]["uid"], "the controller completes the ref");

    // A handle cut elsewhere gets the default size.
    import(
        s,
        "restored",
        "foreign",
        "/subscriptions/x/resourceGroups/y/providers/Microsoft.Compute/snapshots/z",
        "foreign",
    )?;
    let foreign = eventually("foreign ready", getter(s, SNAP, "VolumeSnapshot", "restored", "foreign"), |v| {
        v["status"]["readyToUse"] == true
    })
    .await;
    assert_eq!(foreign["status"]["restoreSize"], "1Gi");
    assert_eq!(DEFAULT_RESTORE_SIZE_BYTES, 1 << 30);

    // The content names another snapshot: never ready, with the controller's message.
    import(s, "restored", "wrong", &handle, "someone-else")?;
    let wrong = eventually("misbound error", getter(s, SNAP, "VolumeSnapshot", "restored", "wrong"), |v| {
        v["status"]["error"]["message"].is_string()
    })
    .await;
    assert_eq!(
        wrong["status"]["error"]["message"],
        "VolumeSnapshotContent [restored-wrong] is bound to a different snapshot"
    );
    tokio::time::sleep(Duration::from_millis(200)).await;
    let later = s.get(SNAP, "VolumeSnapshot", "restored", "wrong")?;
    assert_eq!(
        (later["status"]["readyToUse"].clone(), later["status"]["boundVolumeSnapshotContentName"].clone()),
        (json!(false), Value::Null)
    );

    // The snapshot comes before its content: missing, then bound once the content exists.
    s.create(
        json!({"apiVersion": SNAP, "kind": "VolumeSnapshot", "metadata": {"name": "late", "namespace": "restored"},
        "spec": {"source": {"volumeSnapshotContentName": "restored-late"}}}),
    )?;
    let missing = eventually("missing error", getter(s, SNAP, "VolumeSnapshot", "restored", "late"), |v| {
        v["status"]["error"]["message"].is_string()
    })
    .await;
    assert_eq!(missing["status"]["error"]["message"], "VolumeSnapshotContent is missing");
    s.create(json!({"apiVersion": SNAP, "kind": "VolumeSnapshotContent", "metadata": {"name": "restored-late"},
        "spec": {"deletionPolicy": "Retain", "driver": "disk.csi.azure.com", "source": {"snapshotHandle": handle},
            "volumeSnapshotRef": {"apiVersion": SNAP, "kind": "VolumeSnapshot", "name": "late", "namespace": "restored"}}}))?;
    eventually("late ready", getter(s, SNAP, "VolumeSnapshot", "restored", "late"), |v| {
        v["status"]["readyToUse"] == true
    })
    .await;
    Ok(())
}

#[tokio::test]
async fn claims_are_provisioned_from_ready_snapshots_and_record_the_handle() -> anyhow::Result<()> {
    let (server, _client, _dir) = start().await?;
    server.seed_sample_app("shop").await?;
    let handle = snapshot_of_db(&server, "shop").await?;
    let s = server.store();
    namespace(s, "restored")?;

    // The claim comes first and waits for its snapshot.
    let pvc = claim(s, "restored", "data-db-0", "10Gi", Some("db"))?;
    assert_eq!(pvc["spec"]["dataSourceRef"]["name"], "db", "dataSourceRef mirrors dataSource");
    let waiting = eventually(
        "provisioning failure event",
        || {
            s.list("v1", "Event", Some("restored"))
                .ok()
                .and_then(|es| es.into_iter().find(|e| e["involvedObject"]["name"] == "data-db-0"))
        },
        |e| e["reason"] == "ProvisioningFailed",
    )
    .await;
    assert_eq!(
        waiting["message"],
        "failed to provision volume with StorageClass \"managed-csi\": error getting handle for DataSource Type VolumeSnapshot by Name db: error getting snapshot db from api server: volumesnapshots.snapshot.storage.k8s.io \"db\" not found"
    );
    assert_eq!(s.get("v1", "PersistentVolumeClaim", "restored", "data-db-0")?["status"]["phase"], "Pending");

    import(s, "restored", "db", &handle, "db")?;
    let bound = eventually("claim bound", getter(s, "v1", "PersistentVolumeClaim", "restored", "data-db-0"), |v| {
        v["status"]["phase"] == "Bound"
    })
    .await;
    let uid = pvc["metadata"]["uid"].as_str().unwrap_or_default();
    let pv_name = format!("pvc-{uid}");
    assert_eq!(bound["spec"]["volumeName"], pv_name.as_str());
    assert_eq!(bound["status"]["capacity"]["storage"], "10Gi");
    assert_eq!(bound["metadata"]["annotations"]["pv.kubernetes.io/bind-completed"], "yes");
    let pv = s.get("v1", "PersistentVolume", "", &pv_name)?;
    assert_eq!(pv["metadata"]["annotations"][RESTORED_FROM_ANNOTATION], handle.as_str());
    assert_eq!(pv["spec"]["csi"]["driver"], "disk.csi.azure.com");
    assert!(pv["spec"]["csi"]["volumeHandle"].as_str().unwrap_or_default().ends_with(&format!("/disks/{pv_name}")));
    assert_eq!(
        (pv["spec"]["claimRef"]["name"].clone(), pv["spec"]["claimRef"]["uid"].clone()),
        (json!("data-db-0"), json!(uid))
    );
    assert_eq!(pv["status"]["phase"], "Bound");

    // Smaller than the snapshot: stays pending with the provisioner's reason.
    claim(s, "restored", "too-small", "1Gi", Some("db"))?;
    let small = eventually(
        "size event",
        || {
            s.list("v1", "Event", Some("restored"))
                .ok()
                .and_then(|es| es.into_iter().find(|e| e["involvedObject"]["name"] == "too-small"))
        },
        |e| e["message"].as_str().is_some_and(|m| m.contains("is less than the size")),
    )
    .await;
    assert!(
        small["message"]
            .as_str()
            .unwrap_or_default()
            .ends_with("requested volume size 1073741824 is less than the size 10737418240 for the source snapshot db")
    );

    // No data source: an empty volume of the class.
    let empty = claim(s, "restored", "scratch", "5Gi", None)?;
    let scratch =
        eventually("empty claim bound", getter(s, "v1", "PersistentVolumeClaim", "restored", "scratch"), |v| {
            v["status"]["phase"] == "Bound"
        })
        .await;
    let empty_pv = s.get("v1", "PersistentVolume", "", scratch["spec"]["volumeName"].as_str().unwrap_or_default())?;
    assert_eq!(empty_pv["metadata"]["name"], format!("pvc-{}", empty["metadata"]["uid"].as_str().unwrap_or_default()));
    assert!(empty_pv["metadata"]["annotations"][RESTORED_FROM_ANNOTATION].is_null());

    // Deleting the claim deletes its volume (reclaim policy Delete).
    s.delete("v1", "PersistentVolumeClaim", "restored", "scratch")?;
    eventually(
        "volume reclaimed",
        || {
            Some(json!(
                s.get("v1", "PersistentVolume", "", empty_pv["metadata"]["name"].as_str().unwrap_or_default()).is_err()
            ))
        },
        |gone| gone == &json!(true),
    )
    .await;
    Ok(())
}

#[tokio::test]
async fn deleting_the_namespace_of_a_delete_policy_snapshot_deletes_the_snapshot() -> anyhow::Result<()> {
    let (server, _client, _dir) = start().await?;
    server.seed_sample_app("shop").await?;
    let handle = snapshot_of_db(&server, "shop").await?;
    let s = server.store();
    s.delete("v1", "Namespace", "", "shop")?;
    eventually("namespace gone", || Some(json!(s.get("v1", "Namespace", "", "shop").is_err())), |g| g == &json!(true))
        .await;
    namespace(s, "restored")?;
    import(s, "restored", "db", &handle, "db")?;
    let content = eventually("content error", getter(s, SNAP, "VolumeSnapshotContent", "", "restored-db"), |v| {
        v["status"]["error"]["message"].is_string()
    })
    .await;
    let message = content["status"]["error"]["message"].as_str().unwrap_or_default();
    assert!(message.contains(&format!("snapshot {handle} not found")), "{message}");
    assert_ne!(s.get(SNAP, "VolumeSnapshot", "restored", "db")?["status"]["readyToUse"], true);
    Ok(())
}

#[tokio::test]
async fn a_retain_class_snapshot_outlives_its_namespace_and_restores() -> anyhow::Result<()> {
    let (server, _client, _dir) = start().await?;
    let app = server.seed_sample_app("shop").await?;
    let s = server.store();
    s.create(json!({"apiVersion": SNAP, "kind": "VolumeSnapshot", "metadata": {"name": "kept", "namespace": "shop"},
        "spec": {"volumeSnapshotClassName": app.retain_snapshot_class, "source": {"persistentVolumeClaimName": "data-db-0"}}}))?;
    let vs = eventually("snapshot ready", getter(s, SNAP, "VolumeSnapshot", "shop", "kept"), |v| {
        v["status"]["readyToUse"] == true
    })
    .await;
    let content = s.get(
        SNAP,
        "VolumeSnapshotContent",
        "",
        vs["status"]["boundVolumeSnapshotContentName"].as_str().unwrap_or_default(),
    )?;
    let handle = content["status"]["snapshotHandle"].as_str().unwrap_or_default().to_string();
    s.delete("v1", "Namespace", "", "shop")?;
    eventually("namespace gone", || Some(json!(s.get("v1", "Namespace", "", "shop").is_err())), |g| g == &json!(true))
        .await;
    namespace(s, "shop")?;
    import(s, "shop", "db", &handle, "db")?;
    claim(s, "shop", "data-db-0", "10Gi", Some("db"))?;
    let bound =
        eventually("restored claim bound", getter(s, "v1", "PersistentVolumeClaim", "shop", "data-db-0"), |v| {
            v["status"]["phase"] == "Bound"
        })
        .await;
    let pv = s.get("v1", "PersistentVolume", "", bound["spec"]["volumeName"].as_str().unwrap_or_default())?;
    assert_eq!(pv["metadata"]["annotations"][RESTORED_FROM_ANNOTATION], handle.as_str());
    Ok(())
}

#[tokio::test]
async fn workloads_report_ready_replicas_after_the_delay() -> anyhow::Result<()> {
    let (server, client, _dir) = start().await?;
    server.seed_sample_app("shop").await?;
    let deployments: Api<Deployment> = Api::namespaced(client.clone(), "shop");
    let available = |d: Option<&Deployment>| {
        d.and_then(|d| d.status.as_ref())
            .and_then(|s| s.conditions.as_ref())
            .is_some_and(|cs| cs.iter().any(|c| c.type_ == "Available" && c.status == "True"))
    };
    let web =
        tokio::time::timeout(Duration::from_secs(5), await_condition(deployments.clone(), "web", available)).await??;
    let status = web.and_then(|d| d.status).unwrap_or_default();
    assert_eq!(
        (status.ready_replicas, status.available_replicas, status.observed_generation),
        (Some(2), Some(2), Some(1))
    );

    let s = server.store();
    let db = eventually("statefulset ready", getter(s, "apps/v1", "StatefulSet", "shop", "db"), |v| {
        v["status"]["readyReplicas"] == 1
    })
    .await;
    assert_eq!(db["status"]["observedGeneration"], 1);
    eventually("replicaset ready", getter(s, "apps/v1", "ReplicaSet", "shop", "web-5d8f7c9b6"), |v| {
        v["status"]["readyReplicas"] == 2
    })
    .await;

    // A new generation is observed at once and not ready until the delay passed.
    let scaled =
        deployments.patch("web", &PatchParams::default(), &Patch::Merge(json!({"spec": {"replicas": 3}}))).await?;
    assert_eq!(scaled.metadata.generation, Some(2));
    let observed = eventually("generation observed", getter(s, "apps/v1", "Deployment", "shop", "web"), |v| {
        v["status"]["observedGeneration"] == 2
    })
    .await;
    if observed["status"]["readyReplicas"] != 3 {
        assert_eq!(observed["status"]["conditions"][0]["status"], "False");
    }
    eventually("scaled ready", getter(s, "apps/v1", "Deployment", "shop", "web"), |v| {
        v["status"]["readyReplicas"] == 3
    })
    .await;

    // A daemon set wants one pod per node; one that never gets ready stays unavailable.
    s.create(json!({"apiVersion": "apps/v1", "kind": "DaemonSet", "metadata": {"name": "agent", "namespace": "shop"},
        "spec": {"selector": {"matchLabels": {"a": "b"}}, "template": {"metadata": {"labels": {"a": "b"}},
            "spec": {"containers": [{"name": "c", "image": "i"}]}}}}))?;
    eventually("daemonset ready", getter(s, "apps/v1", "DaemonSet", "shop", "agent"), |v| {
        v["status"]["numberReady"] == 1 && v["status"]["desiredNumberScheduled"] == 1
    })
    .await;
    s.create(json!({"apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "broken", "namespace": "shop", "annotations": {NEVER_READY_ANNOTATION: "true"}},
        "spec": {"replicas": 2, "selector": {"matchLabels": {"a": "c"}}, "template": {"metadata": {"labels": {"a": "c"}},
            "spec": {"containers": [{"name": "c", "image": "i"}]}}}}))?;
    let broken = eventually("broken observed", getter(s, "apps/v1", "Deployment", "shop", "broken"), |v| {
        v["status"]["observedGeneration"] == 1
    })
    .await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    let broken_later = s.get("apps/v1", "Deployment", "shop", "broken")?;
    assert_eq!(broken_later["status"], broken["status"]);
    assert_eq!(broken_later["status"]["unavailableReplicas"], 2);
    assert!(broken_later["status"]["readyReplicas"].is_null(), "zero counts are omitted as the real server does");
    Ok(())
}

#[tokio::test]
async fn services_jobs_and_claims_refuse_what_the_real_server_refuses() -> anyhow::Result<()> {
    let (server, _client, _dir) = start().await?;
    server.seed_sample_app("shop").await?;
    let s = server.store();
    let svc = |name: &str, spec: Value| json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": name, "namespace": "shop"}, "spec": spec});
    let ports = json!([{"port": 80, "protocol": "TCP"}]);

    // The sample's web Service holds 10.0.12.34: a restore that keeps clusterIP collides.
    let taken = s.create(svc("copy", json!({"clusterIP": "10.0.12.34", "ports": ports}))).expect_err("IP in use");
    assert_eq!(
        (taken.code, taken.message.as_str()),
        (
            422,
            "Service \"copy\" is invalid: spec.clusterIPs: Invalid value: []string{\"10.0.12.34\"}: failed to allocate IP 10.0.12.34: provided IP is already allocated"
        )
    );
    let foreign =
        s.create(svc("other", json!({"clusterIP": "172.16.0.10", "ports": ports}))).expect_err("out of range");
    assert!(foreign.message.ends_with("The range of valid IPs is 10.0.0.0/16"), "{}", foreign.message);
    let fresh = s.create(svc("fresh", json!({"type": "NodePort", "ports": ports})))?;
    let ip = fresh["spec"]["clusterIP"].as_str().unwrap_or_default().to_string();
    assert!(ip.starts_with("10.0.") && ip != "10.0.12.34", "{ip}");
    let node_port = fresh["spec"]["ports"][0]["nodePort"].as_i64().unwrap_or_default();
    assert!((30000..=32767).contains(&node_port));
    let clash = s.create(svc("clash", json!({"type": "NodePort", "ports": [{"port": 81, "nodePort": node_port}]})));
    assert!(clash.expect_err("port in use").message.ends_with("provided port is already allocated"));

    // An update without the allocated values keeps them; one changing the IP is refused.
    let mut update = svc("fresh", json!({"type": "NodePort", "ports": ports}));
    update["metadata"]["labels"] = json!({"restored": "yes"});
    let kept = s.update(update)?;
    assert_eq!(
        (kept["spec"]["clusterIP"].as_str(), kept["spec"]["ports"][0]["nodePort"].as_i64()),
        (Some(ip.as_str()), Some(node_port))
    );
    let moved = s.update(svc("fresh", json!({"type": "NodePort", "clusterIP": "10.0.200.1", "ports": ports})));
    assert!(moved.expect_err("immutable").message.contains("may not change once set"));

    // A Job gets a selector of its own uid; one carried over from a backup is refused.
    let job = |name: &str, selector: Option<&str>| {
        let mut j = json!({"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": name, "namespace": "shop"},
            "spec": {"template": {"metadata": {"labels": {"app": "migrate"}},
                "spec": {"restartPolicy": "Never", "containers": [{"name": "m", "image": "i"}]}}}});
        if let Some(uid) = selector {
            j["spec"]["selector"] = json!({"matchLabels": {"batch.kubernetes.io/controller-uid": uid}});
            j["spec"]["template"]["metadata"]["labels"]["batch.kubernetes.io/controller-uid"] = json!(uid);
            j["spec"]["template"]["metadata"]["labels"]["controller-uid"] = json!(uid);
        }
        j
    };
    let created = s.create(job("migrate", None))?;
    let uid = created["metadata"]["uid"].as_str().unwrap_or_default().to_string();
    assert_eq!(created["spec"]["selector"]["matchLabels"]["batch.kubernetes.io/controller-uid"], uid.as_str());
    assert_eq!(created["spec"]["template"]["metadata"]["labels"]["job-name"], "migrate");
    let stale = s.create(job("migrate-again", Some(&uid))).expect_err("another job's selector");
    assert_eq!(stale.code, 422);
    assert!(
        stale.message.contains(&format!(
            "spec.selector.matchLabels[batch.kubernetes.io/controller-uid]: Invalid value: \"{uid}\": must be '"
        )),
        "{}",
        stale.message
    );

    // A bound claim's spec is immutable but for its requests; workload selectors are immutable.
    let mut pvc = s.get("v1", "PersistentVolumeClaim", "shop", "data-db-0")?;
    pvc["spec"]["resources"]["requests"]["storage"] = json!("20Gi");
    let grown = s.update(pvc.clone())?;
    pvc["metadata"]["resourceVersion"] = grown["metadata"]["resourceVersion"].clone();
    pvc["spec"]["storageClassName"] = json!("other");
    let refused = s.update(pvc).expect_err("immutable claim spec");
    assert!(refused.message.ends_with("spec: Forbidden: spec is immutable after creation except resources.requests and volumeAttributesClassName for bound claims"), "{}", refused.message);
    let mut web = s.get("apps/v1", "Deployment", "shop", "web")?;
    web["spec"]["selector"] = json!({"matchLabels": {"app": "web2"}});
    web["spec"]["template"]["metadata"]["labels"] = json!({"app": "web2"});
    assert!(s.update(web).expect_err("selector").message.contains("spec.selector: Invalid value"));
    let mut db = s.get("apps/v1", "StatefulSet", "shop", "db")?;
    db["spec"]["serviceName"] = json!("elsewhere");
    assert!(s.update(db).expect_err("sts").message.contains("updates to statefulset spec for fields other than"));
    Ok(())
}

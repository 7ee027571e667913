//! Plans of a realistic archive (the shapes `test-apiserver`'s sample app produces), rule by
//! rule, with the exact bodies that would be sent.

use std::collections::BTreeMap;

use serde_json::{Value, json};

use super::*;
use crate::domain::manifest::SnapshotRecord;

const PV: &str = "pvc-7d3c2a10-5b1e-4f0e-9a51-2c8e0f6b1d44";
const HANDLE: &str =
    "/subscriptions/0000/resourceGroups/mc_rg/providers/Microsoft.Compute/snapshots/lifeboat-nightly-data-db-0";

/// Builds the archive entry of `object` from its own apiVersion, kind, namespace and name.
fn entry(resource: &str, object: Value) -> SourceObject {
    let api_version = object["apiVersion"].as_str().unwrap();
    let group = api_version.split_once('/').map_or("", |(g, _)| g);
    let name = object["metadata"]["name"].as_str().unwrap();
    let path = match object["metadata"]["namespace"].as_str() {
        Some(ns) => EntryPath::namespaced(resource, group, ns, name),
        None => EntryPath::cluster_scoped(resource, group, name),
    };
    SourceObject { path: path.unwrap(), object }
}

fn meta(name: &str, ns: &str, uid: &str) -> Value {
    json!({"name": name, "namespace": ns, "uid": uid, "resourceVersion": "4711",
        "creationTimestamp": "2026-11-01T10:00:00Z", "managedFields": [{"manager": "kubectl", "operation": "Apply"}]})
}

fn labelled(mut m: Value, labels: &Value) -> Value {
    m["labels"] = labels.clone();
    m
}

fn owned(mut m: Value, kind: &str, api_version: &str, name: &str, uid: &str) -> Value {
    m["ownerReferences"] = json!([{"apiVersion": api_version, "kind": kind, "name": name, "uid": uid,
        "controller": true, "blockOwnerDeletion": true}]);
    m
}

/// The sample app of `test-apiserver/src/seed.rs` as backed up from namespace `shop`, plus
/// what a real cluster adds (default ServiceAccount, kube-root-ca.crt, a token Secret, a
/// finished Job).
fn archive() -> Vec<SourceObject> {
    let web = json!({"app": "web", "app.kubernetes.io/part-of": "sample"});
    let rs_labels = json!({"app": "web", "pod-template-hash": "5d8f7c9b6"});
    let pod_spec = json!({"serviceAccountName": "web", "containers": [{"name": "web", "image": "nginx:1.27"}]});
    let mut v = vec![
        entry(
            "namespaces",
            json!({"apiVersion": "v1", "kind": "Namespace",
            "metadata": {"name": "shop", "uid": "ns-1", "labels": {"kubernetes.io/metadata.name": "shop", "team": "payments"}},
            "spec": {"finalizers": ["kubernetes"]}, "status": {"phase": "Active"}}),
        ),
        entry(
            "storageclasses",
            json!({"apiVersion": "storage.k8s.io/v1", "kind": "StorageClass",
            "metadata": {"name": "managed-csi", "uid": "sc-1"}, "provisioner": "disk.csi.azure.com",
            "reclaimPolicy": "Delete", "volumeBindingMode": "WaitForFirstConsumer"}),
        ),
        entry(
            "volumesnapshotclasses",
            json!({"apiVersion": "snapshot.storage.k8s.io/v1", "kind": "VolumeSnapshotClass",
            "metadata": {"name": "csi-azuredisk-vsc", "uid": "vsc-1"}, "driver": "disk.csi.azure.com", "deletionPolicy": "Delete"}),
        ),
        entry(
            "customresourcedefinitions",
            json!({"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
            "metadata": {"name": "widgets.example.lifeboat.io", "uid": "crd-1"},
            "spec": {"group": "example.lifeboat.io", "scope": "Namespaced",
                "names": {"plural": "widgets", "kind": "Widget"}, "versions": [{"name": "v1", "served": true, "storage": true}]},
            "status": {"conditions": [{"type": "Established", "status": "True"}]}}),
        ),
        entry(
            "widgets",
            json!({"apiVersion": "example.lifeboat.io/v1", "kind": "Widget",
            "metadata": meta("small", "shop", "w-1"), "spec": {"size": 1}, "status": {"seen": true}}),
        ),
        entry(
            "configmaps",
            json!({"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": "web-config", "namespace": "shop", "uid": "cm-1", "resourceVersion": "12", "labels": web},
            "data": {"LOG_LEVEL": "info"}}),
        ),
        entry(
            "configmaps",
            json!({"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": meta("kube-root-ca.crt", "shop", "cm-2"), "data": {"ca.crt": "-----BEGIN CERTIFICATE-----"}}),
        ),
        entry(
            "configmaps",
            json!({"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": owned(meta("widget-small", "shop", "cm-3"), "Widget", "example.lifeboat.io/v1", "small", "w-1"),
            "data": {"size": "1"}}),
        ),
        entry(
            "secrets",
            json!({"apiVersion": "v1", "kind": "Secret", "metadata": meta("web-secret", "shop", "s-1"),
            "type": "Opaque", "data": {"password": "c2VjcmV0"}}),
        ),
        entry(
            "secrets",
            json!({"apiVersion": "v1", "kind": "Secret", "metadata": meta("web-token-x1", "shop", "s-2"),
            "type": "kubernetes.io/service-account-token", "data": {"token": "ZXlK"}}),
        ),
        entry(
            "serviceaccounts",
            json!({"apiVersion": "v1", "kind": "ServiceAccount", "metadata": meta("default", "shop", "sa-0")}),
        ),
        entry(
            "serviceaccounts",
            json!({"apiVersion": "v1", "kind": "ServiceAccount", "metadata": meta("web", "shop", "sa-1"),
            "secrets": [{"name": "web-token-x1"}]}),
        ),
        entry(
            "rolebindings",
            json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
            "metadata": meta("web-reader", "shop", "rb-1"),
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "web-reader"},
            "subjects": [{"kind": "ServiceAccount", "name": "web", "namespace": "shop"},
                         {"kind": "ServiceAccount", "name": "prometheus", "namespace": "monitoring"}]}),
        ),
        entry(
            "services",
            json!({"apiVersion": "v1", "kind": "Service", "metadata": meta("web", "shop", "svc-1"),
            "spec": {"type": "NodePort", "selector": {"app": "web"}, "clusterIP": "10.0.12.34", "clusterIPs": ["10.0.12.34"],
                "ports": [{"name": "http", "port": 80, "targetPort": 8080, "protocol": "TCP", "nodePort": 30080}]},
            "status": {"loadBalancer": {}}}),
        ),
        entry(
            "services",
            json!({"apiVersion": "v1", "kind": "Service", "metadata": meta("db", "shop", "svc-2"),
            "spec": {"selector": {"app": "db"}, "clusterIP": "None", "clusterIPs": ["None"], "ports": [{"name": "pg", "port": 5432}]}}),
        ),
        entry(
            "deployments",
            json!({"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "web", "namespace": "shop", "uid": "d-1", "generation": 3, "labels": {"app": "web"}},
            "spec": {"replicas": 2, "selector": {"matchLabels": {"app": "web"}},
                "template": {"metadata": {"labels": {"app": "web"}}, "spec": pod_spec}},
            "status": {"readyReplicas": 2}}),
        ),
        entry(
            "replicasets",
            json!({"apiVersion": "apps/v1", "kind": "ReplicaSet",
            "metadata": owned(labelled(meta("web-5d8f7c9b6", "shop", "rs-1"), &rs_labels), "Deployment", "apps/v1", "web", "d-1"),
            "spec": {"replicas": 2, "selector": {"matchLabels": rs_labels}}}),
        ),
        entry(
            "pods",
            json!({"apiVersion": "v1", "kind": "Pod",
            "metadata": owned(labelled(meta("web-5d8f7c9b6-x7k2p", "shop", "p-1"), &rs_labels), "ReplicaSet", "apps/v1", "web-5d8f7c9b6", "rs-1"),
            "spec": pod_spec, "status": {"phase": "Running"}}),
        ),
        entry(
            "statefulsets",
            json!({"apiVersion": "apps/v1", "kind": "StatefulSet",
            "metadata": {"name": "db", "namespace": "shop", "uid": "sts-1", "labels": {"app": "db"}},
            "spec": {"replicas": 1, "serviceName": "db", "selector": {"matchLabels": {"app": "db"}}}}),
        ),
        entry(
            "pods",
            json!({"apiVersion": "v1", "kind": "Pod",
            "metadata": owned(labelled(meta("db-0", "shop", "p-2"), &json!({"app": "db"})), "StatefulSet", "apps/v1", "db", "sts-1"),
            "spec": {"containers": [{"name": "postgres", "image": "postgres:16"}]}}),
        ),
        entry(
            "persistentvolumeclaims",
            json!({"apiVersion": "v1", "kind": "PersistentVolumeClaim",
            "metadata": {"name": "data-db-0", "namespace": "shop", "uid": "pvc-1", "labels": {"app": "db"},
                "annotations": {"pv.kubernetes.io/bind-completed": "yes", "pv.kubernetes.io/bound-by-controller": "yes",
                    "volume.kubernetes.io/selected-node": "aks-nodepool1-0",
                    "volume.kubernetes.io/storage-provisioner": "disk.csi.azure.com", "team": "db"}},
            "spec": {"accessModes": ["ReadWriteOnce"], "storageClassName": "managed-csi", "volumeName": PV,
                "resources": {"requests": {"storage": "10Gi"}}, "volumeMode": "Filesystem"},
            "status": {"phase": "Bound"}}),
        ),
        entry(
            "persistentvolumes",
            json!({"apiVersion": "v1", "kind": "PersistentVolume", "metadata": {"name": PV, "uid": "pv-1"},
            "spec": {"capacity": {"storage": "10Gi"}, "storageClassName": "managed-csi",
                "claimRef": {"kind": "PersistentVolumeClaim", "namespace": "shop", "name": "data-db-0", "uid": "pvc-1"},
                "csi": {"driver": "disk.csi.azure.com", "volumeHandle": "/subscriptions/0000/disks/pvc-7d3c"}}}),
        ),
        entry(
            "jobs",
            json!({"apiVersion": "batch/v1", "kind": "Job", "metadata": meta("migrate", "shop", "j-1"),
            "spec": {"template": {"spec": {"restartPolicy": "Never"}}},
            "status": {"completionTime": "2026-11-01T10:05:00Z", "succeeded": 1}}),
        ),
    ];
    v.push(entry(
        "namespaces",
        json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "other", "uid": "ns-2"}}),
    ));
    v.push(entry(
        "configmaps",
        json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": meta("settings", "other", "cm-9")}),
    ));
    v
}

fn snapshot() -> SnapshotRecord {
    SnapshotRecord {
        namespace: "shop".into(),
        pvc: "data-db-0".into(),
        volume_snapshot: "lifeboat-nightly-data-db-0".into(),
        driver: "disk.csi.azure.com".into(),
        class: Some("csi-azuredisk-vsc".into()),
        handle: Some(HANDLE.into()),
        restore_size: Some("10Gi".into()),
        region: "westeurope".into(),
        error: None,
    }
}

fn options() -> PlanOptions {
    PlanOptions {
        include_namespaces: vec!["shop".into()],
        cluster_scoped: true,
        snapshots: vec![snapshot()],
        ..PlanOptions::new("r-20261122-1", "nightly-20261122t020000z")
    }
}

fn restore_labels() -> Value {
    json!({"lifeboat.io/restore-id": "r-20261122-1", "lifeboat.io/restored-from-backup": "nightly-20261122t020000z"})
}

fn with_labels(extra: Value) -> Value {
    let mut labels = restore_labels();
    for (k, v) in extra.as_object().unwrap() {
        labels[k] = v.clone();
    }
    labels
}

fn step<'p>(plan: &'p RestorePlan, kind: &str, name: &str) -> &'p PlannedObject {
    plan.steps.iter().find(|s| s.kind == kind && s.name == name).unwrap_or_else(|| panic!("{kind} {name} not planned"))
}

fn skip<'p>(plan: &'p RestorePlan, kind: &str, name: &str) -> &'p SkipReason {
    &plan
        .skipped
        .iter()
        .find(|s| s.kind == kind && s.name == name)
        .unwrap_or_else(|| panic!("{kind} {name} not skipped"))
        .reason
}

fn order(plan: &RestorePlan) -> Vec<(Tier, String)> {
    plan.steps.iter().map(|s| (s.tier, format!("{} {}", s.kind, s.name))).collect()
}

#[test]
fn the_sample_app_is_planned_in_tier_order() {
    let plan = plan(archive(), &options()).unwrap();
    let vs = generated_name("r-20261122-1", "shop", "data-db-0");
    let expected: Vec<(Tier, String)> = [
        (Tier::CustomResourceDefinitions, "CustomResourceDefinition widgets.example.lifeboat.io".to_owned()),
        (Tier::Namespaces, "Namespace shop".into()),
        (Tier::StorageClasses, "StorageClass managed-csi".into()),
        (Tier::VolumeSnapshotClasses, "VolumeSnapshotClass csi-azuredisk-vsc".into()),
        (Tier::VolumeSnapshotContents, format!("VolumeSnapshotContent {vs}")),
        (Tier::VolumeSnapshots, format!("VolumeSnapshot {vs}")),
        (Tier::PersistentVolumeClaims, "PersistentVolumeClaim data-db-0".into()),
        (Tier::ServiceAccounts, "ServiceAccount default".into()),
        (Tier::ServiceAccounts, "ServiceAccount web".into()),
        (Tier::Secrets, "Secret web-secret".into()),
        (Tier::ConfigMaps, "ConfigMap web-config".into()),
        (Tier::ConfigMaps, "ConfigMap widget-small".into()),
        (Tier::BuiltIn, "Service db".into()),
        (Tier::BuiltIn, "Service web".into()),
        (Tier::BuiltIn, "Deployment web".into()),
        (Tier::BuiltIn, "StatefulSet db".into()),
        (Tier::BuiltIn, "RoleBinding web-reader".into()),
        (Tier::CustomResources, "Widget small".into()),
    ]
    .into();
    assert_eq!(order(&plan), expected);
    assert_eq!(
        step(&plan, "CustomResourceDefinition", "widgets.example.lifeboat.io").wait,
        Some(WaitFor::CrdEstablished)
    );
    assert_eq!(step(&plan, "VolumeSnapshot", &vs).wait, Some(WaitFor::SnapshotReady));
    assert!(step(&plan, "ServiceAccount", "default").created_by_control_plane);
    assert!(!step(&plan, "ServiceAccount", "web").created_by_control_plane);

    let skipped: Vec<(String, &str)> =
        plan.skipped.iter().map(|s| (format!("{} {}", s.kind, s.name), s.reason.code())).collect();
    assert_eq!(
        skipped,
        [
            ("ConfigMap settings".to_owned(), "namespaceNotSelected"),
            ("ConfigMap kube-root-ca.crt".into(), "rootCaConfigMap"),
            ("Job migrate".into(), "completed"),
            ("Namespace other".into(), "namespaceNotSelected"),
            (format!("PersistentVolume {PV}"), "replacedBySnapshot"),
            ("Pod db-0".into(), "ownedByRestoredController"),
            ("Pod web-5d8f7c9b6-x7k2p".into(), "ownedByRestoredController"),
            ("ReplicaSet web-5d8f7c9b6".into(), "ownedByRestoredController"),
            ("Secret web-token-x1".into(), "serviceAccountToken"),
        ],
        "sorted by archive path"
    );
    assert_eq!(
        skip(&plan, "Pod", "web-5d8f7c9b6-x7k2p").to_string(),
        "owned by ReplicaSet shop/web-5d8f7c9b6, which is restored and recreates it"
    );
    assert_eq!(
        skip(&plan, "ReplicaSet", "web-5d8f7c9b6").to_string(),
        "owned by Deployment shop/web, which is restored and recreates it"
    );
    assert_eq!(
        skip(&plan, "PersistentVolume", PV).to_string(),
        format!("replaced by a volume restored from snapshot {HANDLE} for claim shop/data-db-0")
    );
}

#[test]
fn bodies_are_sent_without_server_fields_and_with_restore_labels() {
    let plan = plan(archive(), &options()).unwrap();
    let cm = step(&plan, "ConfigMap", "web-config");
    assert_eq!(cm.source.as_deref(), Some("resources/configmaps/namespaces/shop/web-config.json"));
    assert_eq!((cm.group.as_str(), cm.version.as_str(), cm.resource.as_str()), ("", "v1", "configmaps"));
    assert_eq!(
        cm.object,
        json!({"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": "web-config", "namespace": "shop",
                "labels": with_labels(json!({"app": "web", "app.kubernetes.io/part-of": "sample"}))},
            "data": {"LOG_LEVEL": "info"}})
    );
    assert_eq!(
        step(&plan, "Service", "web").object,
        json!({"apiVersion": "v1", "kind": "Service",
            "metadata": {"name": "web", "namespace": "shop", "labels": restore_labels()},
            "spec": {"type": "NodePort", "selector": {"app": "web"},
                "ports": [{"name": "http", "port": 80, "targetPort": 8080, "protocol": "TCP"}]}})
    );
    assert_eq!(step(&plan, "Service", "db").object["spec"]["clusterIP"], "None");
    assert_eq!(
        step(&plan, "Deployment", "web").object,
        json!({"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "web", "namespace": "shop", "labels": with_labels(json!({"app": "web"}))},
            "spec": {"replicas": 2, "selector": {"matchLabels": {"app": "web"}},
                "template": {"metadata": {"labels": {"app": "web"}},
                    "spec": {"serviceAccountName": "web", "containers": [{"name": "web", "image": "nginx:1.27"}]}}}})
    );
    assert_eq!(
        step(&plan, "ServiceAccount", "web").object,
        json!({"apiVersion": "v1", "kind": "ServiceAccount",
            "metadata": {"name": "web", "namespace": "shop", "labels": restore_labels()}}),
        "the reference to the token Secret, which is not restored, goes"
    );
    assert_eq!(
        step(&plan, "ConfigMap", "widget-small").object["metadata"].get("ownerReferences"),
        None,
        "the owner is in the backup: its uid changes on restore"
    );
    assert_eq!(
        step(&plan, "Namespace", "shop").object,
        json!({"apiVersion": "v1", "kind": "Namespace",
            "metadata": {"name": "shop", "labels": with_labels(json!({"kubernetes.io/metadata.name": "shop", "team": "payments"}))},
            "spec": {"finalizers": ["kubernetes"]}})
    );
    assert!(step(&plan, "Widget", "small").object.get("status").is_none());
}

#[test]
fn claims_come_back_from_the_recorded_snapshot() {
    let plan = plan(archive(), &options()).unwrap();
    let name = generated_name("r-20261122-1", "shop", "data-db-0");
    let plumbing = with_labels(json!({"lifeboat.io/backup-id": "nightly-20261122t020000z"}));
    let content = step(&plan, "VolumeSnapshotContent", &name);
    assert_eq!((content.namespace.as_deref(), content.source.as_deref()), (None, None));
    assert_eq!(
        content.object,
        json!({"apiVersion": "snapshot.storage.k8s.io/v1", "kind": "VolumeSnapshotContent",
            "metadata": {"name": name, "labels": plumbing},
            "spec": {"deletionPolicy": "Retain", "driver": "disk.csi.azure.com", "source": {"snapshotHandle": HANDLE},
                "volumeSnapshotClassName": "csi-azuredisk-vsc",
                "volumeSnapshotRef": {"apiVersion": "snapshot.storage.k8s.io/v1", "kind": "VolumeSnapshot",
                    "namespace": "shop", "name": name}}})
    );
    assert_eq!(
        step(&plan, "VolumeSnapshot", &name).object,
        json!({"apiVersion": "snapshot.storage.k8s.io/v1", "kind": "VolumeSnapshot",
            "metadata": {"name": name, "namespace": "shop", "labels": plumbing},
            "spec": {"source": {"volumeSnapshotContentName": name}, "volumeSnapshotClassName": "csi-azuredisk-vsc"}})
    );
    let source = json!({"apiGroup": "snapshot.storage.k8s.io", "kind": "VolumeSnapshot", "name": name});
    assert_eq!(
        step(&plan, "PersistentVolumeClaim", "data-db-0").object,
        json!({"apiVersion": "v1", "kind": "PersistentVolumeClaim",
            "metadata": {"name": "data-db-0", "namespace": "shop", "labels": with_labels(json!({"app": "db"})),
                "annotations": {"team": "db"}},
            "spec": {"accessModes": ["ReadWriteOnce"], "storageClassName": "managed-csi",
                "resources": {"requests": {"storage": "10Gi"}}, "volumeMode": "Filesystem",
                "dataSource": source, "dataSourceRef": source}})
    );
}

#[test]
fn without_volumes_or_a_ready_snapshot_claims_get_empty_volumes_and_say_so() {
    let no_volumes = PlanOptions { volumes: false, ..options() };
    let failed = SnapshotRecord { handle: None, error: Some("quota exceeded".into()), ..snapshot() };
    let not_ready = PlanOptions { snapshots: vec![failed], ..options() };
    for (opts, requested) in [(no_volumes, false), (not_ready, true)] {
        let plan = plan(archive(), &opts).unwrap();
        assert!(plan.steps.iter().all(|s| s.group != "snapshot.storage.k8s.io" || s.kind == "VolumeSnapshotClass"));
        let pvc = &step(&plan, "PersistentVolumeClaim", "data-db-0").object;
        assert_eq!(pvc["spec"].get("volumeName"), None);
        assert_eq!(pvc["spec"].get("dataSource"), None);
        assert_eq!(pvc["metadata"]["annotations"], json!({"team": "db"}));
        let reason = skip(&plan, "PersistentVolume", PV);
        assert_eq!(
            reason,
            &SkipReason::VolumeDataNotRestored { claim: "shop/data-db-0".into(), volumes_requested: requested }
        );
        assert!(reason.to_string().contains("data is not restored"), "{reason}");
    }
}

#[test]
fn namespace_mapping_follows_objects_bindings_and_snapshots() {
    let opts = PlanOptions { namespace_mapping: BTreeMap::from([("shop".into(), "shop-restore".into())]), ..options() };
    let mut objects = archive();
    objects.push(entry("clusterrolebindings", json!({"apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "ClusterRoleBinding", "metadata": {"name": "web-view", "uid": "crb-1"},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "view"},
        "subjects": [{"kind": "ServiceAccount", "name": "web", "namespace": "shop"}, {"kind": "Group", "name": "devs"}]})));
    let plan = plan(objects, &opts).unwrap();
    assert_eq!(
        step(&plan, "ClusterRoleBinding", "web-view").object["subjects"],
        json!([{"kind": "ServiceAccount", "name": "web", "namespace": "shop-restore"}, {"kind": "Group", "name": "devs"}])
    );
    assert_eq!(step(&plan, "ClusterRoleBinding", "web-view").object["metadata"].get("namespace"), None);
    let ns = step(&plan, "Namespace", "shop-restore");
    assert_eq!(ns.source.as_deref(), Some("resources/namespaces/cluster/shop.json"));
    assert_eq!(ns.object["metadata"]["name"], "shop-restore");
    assert_eq!(ns.object["metadata"]["labels"]["kubernetes.io/metadata.name"], "shop-restore");
    for s in plan.steps.iter().filter(|s| s.namespace.is_some()) {
        assert_eq!(s.namespace.as_deref(), Some("shop-restore"), "{} {}", s.kind, s.name);
        assert_eq!(s.object["metadata"]["namespace"], "shop-restore", "{} {}", s.kind, s.name);
    }
    assert_eq!(
        step(&plan, "RoleBinding", "web-reader").object["subjects"],
        json!([{"kind": "ServiceAccount", "name": "web", "namespace": "shop-restore"},
               {"kind": "ServiceAccount", "name": "prometheus", "namespace": "monitoring"}])
    );
    let name = generated_name("r-20261122-1", "shop", "data-db-0");
    assert_eq!(
        step(&plan, "VolumeSnapshotContent", &name).object["spec"]["volumeSnapshotRef"]["namespace"],
        "shop-restore"
    );
    assert_eq!(step(&plan, "VolumeSnapshot", &name).namespace.as_deref(), Some("shop-restore"));
    let skipped = plan.skipped.iter().find(|s| s.name == "db-0").unwrap();
    assert_eq!(skipped.namespace.as_deref(), Some("shop"), "skips name the source namespace");
}

#[test]
fn a_namespace_missing_from_the_archive_is_generated() {
    let objects: Vec<SourceObject> = archive().into_iter().filter(|o| o.path.resource() != "namespaces").collect();
    let opts = PlanOptions { namespace_mapping: BTreeMap::from([("shop".into(), "drill".into())]), ..options() };
    let plan = plan(objects, &opts).unwrap();
    let ns = step(&plan, "Namespace", "drill");
    assert_eq!((ns.tier, ns.source.as_deref()), (Tier::Namespaces, None));
    assert_eq!(
        ns.object,
        json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "drill", "labels": restore_labels()}})
    );
    assert_eq!(plan.tier(Tier::Namespaces).count(), 1);
}

#[test]
fn cluster_scoped_objects_need_permission_but_snapshot_plumbing_does_not() {
    let plan = plan(archive(), &PlanOptions { cluster_scoped: false, ..options() }).unwrap();
    for (kind, name) in [
        ("CustomResourceDefinition", "widgets.example.lifeboat.io"),
        ("StorageClass", "managed-csi"),
        ("VolumeSnapshotClass", "csi-azuredisk-vsc"),
    ] {
        assert_eq!(skip(&plan, kind, name).to_string(), "cluster-scoped objects not allowed by the request/policy");
    }
    assert_eq!(skip(&plan, "PersistentVolume", PV).code(), "replacedBySnapshot", "the volume reason wins");
    assert_eq!(plan.tier(Tier::VolumeSnapshotContents).count(), 1);
    assert_eq!(plan.tier(Tier::Namespaces).count(), 1);
}

#[test]
fn the_label_selector_filters_everything_but_namespaces() {
    let opts = PlanOptions { label_selector: Some("app in (web, db)".into()), cluster_scoped: false, ..options() };
    let plan = plan(archive(), &opts).unwrap();
    let planned: Vec<String> = order(&plan).into_iter().map(|(_, s)| s).collect();
    let vs = generated_name("r-20261122-1", "shop", "data-db-0");
    assert_eq!(
        planned,
        [
            "Namespace shop".to_owned(),
            format!("VolumeSnapshotContent {vs}"),
            format!("VolumeSnapshot {vs}"),
            "PersistentVolumeClaim data-db-0".into(),
            "ConfigMap web-config".into(),
            "Deployment web".into(),
            "StatefulSet db".into(),
        ]
    );
    assert_eq!(
        skip(&plan, "Secret", "web-secret").to_string(),
        "its labels do not match the selector \"app in (web, db)\""
    );
    assert_eq!(
        skip(&plan, "Pod", "web-5d8f7c9b6-x7k2p").code(),
        "ownedByRestoredController",
        "its ReplicaSet matches too, and the Deployment recreates both"
    );
}

#[test]
fn resource_and_namespace_filters() {
    let opts = PlanOptions {
        include_namespaces: vec!["*".into()],
        exclude_namespaces: vec!["oth*".into()],
        include_resources: vec!["ConfigMap".into(), "deployments.apps".into(), "secrets".into()],
        exclude_resources: vec!["Secret".into()],
        ..options()
    };
    let plan = plan(archive(), &opts).unwrap();
    let planned: Vec<String> = order(&plan).into_iter().map(|(_, s)| s).collect();
    assert_eq!(planned, ["Namespace shop", "ConfigMap web-config", "ConfigMap widget-small", "Deployment web"]);
    assert_eq!(
        skip(&plan, "Secret", "web-secret").to_string(),
        "secrets is not selected by the request's resource filters"
    );
    assert_eq!(skip(&plan, "Service", "web").code(), "resourceNotSelected");
    assert_eq!(
        skip(&plan, "Namespace", "other").to_string(),
        "namespace other is not selected by the request's namespace filters"
    );
}

#[test]
fn namespaces_with_nothing_restored_are_kept_only_when_named() {
    let only_deployments = |include: &[&str]| PlanOptions {
        include_namespaces: include.iter().map(|s| (*s).to_owned()).collect(),
        include_resources: vec!["deployments".into()],
        ..options()
    };
    let plan = plan(archive(), &only_deployments(&["shop", "other"])).unwrap();
    assert!(plan.steps.iter().any(|s| s.kind == "Namespace" && s.name == "other"), "named by the request");
    let plan = super::plan(archive(), &only_deployments(&[])).unwrap();
    assert_eq!(skip(&plan, "Namespace", "other"), &SkipReason::NamespaceEmpty);
    assert!(plan.steps.iter().any(|s| s.kind == "Namespace" && s.name == "shop"));
}

#[test]
fn owner_references_to_objects_outside_the_backup_are_kept() {
    let mut objects = archive();
    let foreign = json!([{"apiVersion": "example.lifeboat.io/v1", "kind": "Widget", "name": "gone", "uid": "w-404"}]);
    objects.push(entry(
        "configmaps",
        json!({"apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": "orphan", "namespace": "shop", "ownerReferences": foreign}}),
    ));
    let plan = plan(objects, &options()).unwrap();
    assert_eq!(step(&plan, "ConfigMap", "orphan").object["metadata"]["ownerReferences"], foreign);
}

#[test]
fn node_ports_are_kept_on_request() {
    let plan = plan(archive(), &PlanOptions { keep_node_ports: true, ..options() }).unwrap();
    assert_eq!(step(&plan, "Service", "web").object["spec"]["ports"][0]["nodePort"], 30080);
    assert!(step(&plan, "Service", "web").object["spec"].get("clusterIP").is_none());
}

#[test]
fn the_plan_does_not_depend_on_input_order() {
    let reference = plan(archive(), &options()).unwrap();
    let mut reversed = archive();
    reversed.reverse();
    let mut rotated = archive();
    rotated.rotate_left(7);
    for shuffled in [reversed, rotated] {
        let again = plan(shuffled, &options()).unwrap();
        assert_eq!(again, reference);
        assert_eq!(serde_json::to_string(&again).unwrap(), serde_json::to_string(&reference).unwrap());
    }
}

#[test]
fn the_plan_serializes_for_the_dry_run() {
    let plan = plan(archive(), &options()).unwrap();
    let json = serde_json::to_value(&plan).unwrap();
    let first = &json["steps"][0];
    assert_eq!(first["tier"], "customResourceDefinitions");
    assert_eq!(first["wait"], "crdEstablished");
    assert_eq!(
        first["source"],
        "resources/customresourcedefinitions.apiextensions.k8s.io/cluster/widgets.example.lifeboat.io.json"
    );
    assert_eq!(first["createdByControlPlane"], false);
    let skipped = json["skipped"].as_array().unwrap();
    let token = skipped.iter().find(|s| s["name"] == "web-token-x1").unwrap();
    assert_eq!(
        token["reason"],
        json!({"code": "serviceAccountToken",
            "message": "service account token secrets are minted by the target cluster's control plane"})
    );
    assert_eq!(token["source"], "resources/secrets/namespaces/shop/web-token-x1.json");
}

#[test]
fn refusals() {
    let dup = PlanOptions {
        namespace_mapping: BTreeMap::from([("shop".into(), "x".into()), ("other".into(), "x".into())]),
        include_namespaces: vec![],
        ..options()
    };
    assert!(matches!(plan(archive(), &dup), Err(PlanError::DuplicateTargetNamespace { target, .. }) if target == "x"));
    let onto_restored = PlanOptions {
        namespace_mapping: BTreeMap::from([("shop".into(), "other".into())]),
        include_namespaces: vec![],
        ..options()
    };
    assert_eq!(
        plan(archive(), &onto_restored).unwrap_err().to_string(),
        "namespaces \"other\" and \"shop\" would both be restored into \"other\""
    );
    let excluded = PlanOptions {
        namespace_mapping: BTreeMap::from([("shop".into(), "kube-system".into())]),
        exclude_namespaces: vec!["kube-*".into()],
        ..options()
    };
    assert!(matches!(plan(archive(), &excluded), Err(PlanError::TargetNamespaceExcluded { .. })));
    let invalid = PlanOptions { namespace_mapping: BTreeMap::from([("shop".into(), "Shop_2".into())]), ..options() };
    assert!(matches!(plan(archive(), &invalid), Err(PlanError::InvalidTargetNamespace { .. })));
    let unselected = PlanOptions { namespace_mapping: BTreeMap::from([("other".into(), "o2".into())]), ..options() };
    assert!(matches!(plan(archive(), &unselected), Err(PlanError::MappingSourceNotSelected { .. })));
    let selector = PlanOptions { label_selector: Some("app in web".into()), ..options() };
    assert!(matches!(plan(archive(), &selector), Err(PlanError::LabelSelector { .. })));
    let bad_id = PlanOptions { restore_id: "a/b".into(), ..options() };
    assert!(matches!(plan(archive(), &bad_id), Err(PlanError::LabelValue { field: "restoreId", .. })));
    for refused in [dup, excluded, invalid, unselected, selector, bad_id] {
        assert!(refused.validate().is_err(), "validate refuses what plan refuses before reading: {refused:?}");
    }
    assert_eq!(options().validate(), Ok(()));
}

#[test]
fn malformed_entries_are_refused_naming_the_entry() {
    let path = || EntryPath::namespaced("configmaps", "", "shop", "web").unwrap();
    let cases = [
        (json!({"kind": "ConfigMap", "metadata": {"name": "web"}}), "it has no apiVersion"),
        (json!({"apiVersion": "v1", "metadata": {"name": "web"}}), "it has no kind"),
        (json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {}}), "it has no metadata.name"),
        (
            json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "api"}}),
            "its name \"api\" is not the path's name \"web\"",
        ),
        (
            json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "web", "namespace": "prod"}}),
            "its namespace \"prod\" is not the path's namespace \"shop\"",
        ),
        (
            json!({"apiVersion": "apps/v1", "kind": "ConfigMap", "metadata": {"name": "web"}}),
            "its apiVersion apps/v1 is not in the path's group \"\"",
        ),
    ];
    for (object, reason) in cases {
        let err = plan([SourceObject { path: path(), object }], &options()).unwrap_err();
        assert_eq!(err.to_string(), format!("archive entry resources/configmaps/namespaces/shop/web.json: {reason}"));
    }
    let twice = || SourceObject {
        path: path(),
        object: json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "web"}}),
    };
    assert!(matches!(plan([twice(), twice()], &options()), Err(PlanError::DuplicateEntry { .. })));
}

#[test]
fn pods_whose_controller_is_not_restored_come_back_alone() {
    let mut objects = archive();
    for o in &mut objects {
        if o.path.name() == "web-5d8f7c9b6-x7k2p" {
            o.object["spec"]["nodeName"] = json!("aks-nodepool1-0");
        }
    }
    let opts = PlanOptions { include_resources: vec!["pods".into()], ..options() };
    let plan = plan(objects, &opts).unwrap();
    assert_eq!(
        step(&plan, "Pod", "web-5d8f7c9b6-x7k2p").object,
        json!({"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": "web-5d8f7c9b6-x7k2p", "namespace": "shop",
                "labels": with_labels(json!({"app": "web", "pod-template-hash": "5d8f7c9b6"}))},
            "spec": {"serviceAccountName": "web", "containers": [{"name": "web", "image": "nginx:1.27"}]}}),
        "no node, no status, and no reference to the archived ReplicaSet, whose uid is gone"
    );
}

/// The dry-run output of the sample archive restored into `shop-restore`, as a reviewer reads
/// it, kept in `shared/testdata/restore/`. After a deliberate change, regenerate it with
/// `LIFEBOAT_UPDATE_GOLDEN=1 cargo test -p lifeboat-shared --lib restore` and review the diff.
#[test]
fn golden_dry_run_of_the_sample_app_into_another_namespace() {
    let opts = PlanOptions { namespace_mapping: BTreeMap::from([("shop".into(), "shop-restore".into())]), ..options() };
    let actual = serde_json::to_string_pretty(&plan(archive(), &opts).unwrap()).unwrap() + "\n";
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/testdata/restore/sample-app-into-shop-restore.plan.json");
    if std::env::var_os("LIFEBOAT_UPDATE_GOLDEN").is_some() {
        std::fs::create_dir_all(std::path::Path::new(path).parent().unwrap()).unwrap();
        std::fs::write(path, &actual).unwrap();
    }
    let expected = std::fs::read_to_string(path).unwrap();
    assert_eq!(actual, expected, "the plan differs from {path}");
}

#[test]
fn unclaimed_volumes_are_restored_only_when_retained() {
    let pv = |name: &str, policy: &str| {
        entry(
            "persistentvolumes",
            json!({"apiVersion": "v1", "kind": "PersistentVolume",
            "metadata": {"name": name, "uid": name}, "spec": {"persistentVolumeReclaimPolicy": policy,
                "capacity": {"storage": "1Gi"}, "csi": {"driver": "file.csi.azure.com", "volumeHandle": name}},
            "status": {"phase": "Available"}}),
        )
    };
    let plan = plan([pv("static-share", "Retain"), pv("leftover", "Delete")], &options()).unwrap();
    assert_eq!(
        step(&plan, "PersistentVolume", "static-share").object,
        json!({"apiVersion": "v1", "kind": "PersistentVolume",
            "metadata": {"name": "static-share", "labels": restore_labels()},
            "spec": {"persistentVolumeReclaimPolicy": "Retain", "capacity": {"storage": "1Gi"},
                "csi": {"driver": "file.csi.azure.com", "volumeHandle": "static-share"}}})
    );
    assert_eq!(skip(&plan, "PersistentVolume", "leftover"), &SkipReason::UnclaimedDeleteVolume);
}

#[test]
fn owner_references_without_uid_match_by_kind_and_name() {
    let mut objects = archive();
    let by_name = json!([{"apiVersion": "apps/v1", "kind": "Deployment", "name": "web"}]);
    objects.push(entry(
        "configmaps",
        json!({"apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": "web-generated", "namespace": "shop", "ownerReferences": by_name}}),
    ));
    let plan = plan(objects, &options()).unwrap();
    assert_eq!(step(&plan, "ConfigMap", "web-generated").object["metadata"].get("ownerReferences"), None);
}

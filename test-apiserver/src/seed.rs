//! Seeding helpers: the VolumeSnapshot CRDs (embedded from external-snapshotter) and a
//! realistic sample application on Azure Disk CSI volumes.

use std::time::Duration;

use serde_json::{Value, json};

use crate::server::Running;
use crate::status::ApiError;

const SNAPSHOT_CRDS: [&str; 3] = [
    include_str!("../data/crds/snapshot.storage.k8s.io_volumesnapshotclasses.yaml"),
    include_str!("../data/crds/snapshot.storage.k8s.io_volumesnapshotcontents.yaml"),
    include_str!("../data/crds/snapshot.storage.k8s.io_volumesnapshots.yaml"),
];

/// The CSI driver of the sample volumes (Azure Disk).
pub const AZURE_DISK_DRIVER: &str = "disk.csi.azure.com";

const RETAIN_SNAPSHOT_CLASS: &str = "csi-azuredisk-vsc-retain";

/// What [`Running::seed_sample_app`] created.
#[derive(Debug, Clone, PartialEq)]
pub struct SampleApp {
    /// The namespace.
    pub namespace: String,
    /// Names of the bound PVCs (one per StatefulSet replica).
    pub pvcs: Vec<String>,
    /// The default VolumeSnapshotClass for the Azure Disk driver (`deletionPolicy: Delete`, as
    /// AKS installs it).
    pub snapshot_class: String,
    /// A VolumeSnapshotClass for the same driver with `deletionPolicy: Retain`, as an operator
    /// adds for backups (its snapshots outlive their VolumeSnapshot and namespace).
    pub retain_snapshot_class: String,
    /// How many objects were created, cluster-scoped ones included.
    pub objects: usize,
}

fn create_if_missing(r: &Running, obj: Value) -> Result<usize, ApiError> {
    match r.store().create(obj) {
        Ok(_) => Ok(1),
        Err(e) if e.reason == "AlreadyExists" => Ok(0),
        Err(e) => Err(e),
    }
}

impl Running {
    /// Waits until `apiVersion`/`kind` is served (a CRD became `Established`).
    ///
    /// # Errors
    /// 504-like `Timeout` error after five seconds.
    pub async fn wait_for_kind(&self, api_version: &str, kind: &str) -> Result<(), ApiError> {
        for _ in 0..500 {
            if self.store().catalog().find_kind(api_version, kind).is_some() {
                return Ok(());
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        Err(ApiError::internal(format!("{kind} in {api_version} was not served within 5s")))
    }

    /// Installs the VolumeSnapshot, VolumeSnapshotContent and VolumeSnapshotClass CRDs and waits
    /// until they are established. Idempotent.
    ///
    /// # Errors
    /// Any API error from creating them.
    pub async fn seed_snapshot_crds(&self) -> Result<(), ApiError> {
        for text in SNAPSHOT_CRDS {
            let crd: Value =
                serde_yaml_ng::from_str(text).map_err(|e| ApiError::internal(format!("embedded CRD: {e}")))?;
            create_if_missing(self, crd)?;
        }
        for kind in ["VolumeSnapshot", "VolumeSnapshotContent", "VolumeSnapshotClass"] {
            self.wait_for_kind("snapshot.storage.k8s.io/v1", kind).await?;
        }
        Ok(())
    }

    /// Seeds a realistic application in `namespace`: a Deployment with its ReplicaSet and Pods, a
    /// StatefulSet whose PVCs are bound to Azure Disk CSI PVs, Services, a ConfigMap, a Secret, a
    /// ServiceAccount with a Role and RoleBinding, a `Widget` CRD with two custom resources, and
    /// the cluster's StorageClass, its default VolumeSnapshotClass (`Delete`) and a `Retain` one.
    /// Idempotent for shared objects.
    ///
    /// # Errors
    /// Any API error (the namespace's objects must not exist yet).
    pub async fn seed_sample_app(&self, namespace: &str) -> Result<SampleApp, ApiError> {
        self.seed_snapshot_crds().await?;
        let ns = namespace;
        let mut n =
            create_if_missing(self, json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}}))?;
        n += create_if_missing(
            self,
            json!({"apiVersion": "storage.k8s.io/v1", "kind": "StorageClass",
            "metadata": {"name": "managed-csi"}, "provisioner": AZURE_DISK_DRIVER, "reclaimPolicy": "Delete",
            "volumeBindingMode": "WaitForFirstConsumer", "allowVolumeExpansion": true, "parameters": {"skuname": "StandardSSD_LRS"}}),
        )?;
        n += create_if_missing(
            self,
            json!({"apiVersion": "snapshot.storage.k8s.io/v1", "kind": "VolumeSnapshotClass",
            "metadata": {"name": "csi-azuredisk-vsc", "annotations": {"snapshot.storage.kubernetes.io/is-default-class": "true"}},
            "driver": AZURE_DISK_DRIVER, "deletionPolicy": "Delete", "parameters": {"incremental": "true"}}),
        )?;
        n += create_if_missing(
            self,
            json!({"apiVersion": "snapshot.storage.k8s.io/v1", "kind": "VolumeSnapshotClass",
            "metadata": {"name": RETAIN_SNAPSHOT_CLASS}, "driver": AZURE_DISK_DRIVER, "deletionPolicy": "Retain",
            "parameters": {"incremental": "true"}}),
        )?;
        let s = self.store();
        let labels = json!({"app": "web", "app.kubernetes.io/part-of": "sample"});
        s.create(json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "web-config", "namespace": ns, "labels": labels},
            "data": {"LOG_LEVEL": "info", "app.properties": "greeting=hello\n"}}))?;
        s.create(json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "web-secret", "namespace": ns, "labels": labels},
            "type": "Opaque", "data": {"password": "c2VjcmV0"}}))?;
        s.create(json!({"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "web", "namespace": ns}}))?;
        s.create(json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role", "metadata": {"name": "web-reader", "namespace": ns},
            "rules": [{"apiGroups": [""], "resources": ["configmaps"], "verbs": ["get", "list", "watch"]}]}))?;
        s.create(json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding", "metadata": {"name": "web-reader", "namespace": ns},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "web-reader"},
            "subjects": [{"kind": "ServiceAccount", "name": "web", "namespace": ns}]}))?;
        s.create(json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "web", "namespace": ns, "labels": labels},
            "spec": {"selector": {"app": "web"}, "ports": [{"name": "http", "port": 80, "targetPort": 8080, "protocol": "TCP"}],
                     "clusterIP": "10.0.12.34", "clusterIPs": ["10.0.12.34"]}}))?;
        s.create(json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "db", "namespace": ns, "labels": {"app": "db"}},
            "spec": {"selector": {"app": "db"}, "clusterIP": "None", "ports": [{"name": "pg", "port": 5432}]}}))?;
        n += 8 + self.seed_web(ns)? + self.seed_db(ns)?;
        n += self.seed_widgets(ns).await?;
        Ok(SampleApp {
            namespace: ns.into(),
            pvcs: vec!["data-db-0".into()],
            snapshot_class: "csi-azuredisk-vsc".into(),
            retain_snapshot_class: RETAIN_SNAPSHOT_CLASS.into(),
            objects: n,
        })
    }

    fn owner(obj: &Value) -> Value {
        json!([{"apiVersion": obj["apiVersion"], "kind": obj["kind"], "name": obj["metadata"]["name"],
                "uid": obj["metadata"]["uid"], "controller": true, "blockOwnerDeletion": true}])
    }

    fn pod(&self, ns: &str, name: &str, labels: &Value, owner: &Value, spec: Value) -> Result<(), ApiError> {
        let pod = self.store().create(json!({"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": name, "namespace": ns, "labels": labels, "ownerReferences": Self::owner(owner)}, "spec": spec}))?;
        let mut running = pod;
        running["status"] = json!({"phase": "Running", "podIP": "10.244.0.10", "qosClass": "BestEffort",
            "conditions": [{"type": "Ready", "status": "True"}]});
        self.store().update_status(running).map(|_| ())
    }

    fn seed_web(&self, ns: &str) -> Result<usize, ApiError> {
        let s = self.store();
        let pod_spec = json!({"serviceAccountName": "web", "containers": [{"name": "web", "image": "nginx:1.27",
            "ports": [{"containerPort": 8080}], "envFrom": [{"configMapRef": {"name": "web-config"}}]}]});
        let deploy = s.create(json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web", "namespace": ns, "labels": {"app": "web"}},
            "spec": {"replicas": 2, "selector": {"matchLabels": {"app": "web"}},
                     "template": {"metadata": {"labels": {"app": "web"}}, "spec": pod_spec}}}))?;
        let rs_labels = json!({"app": "web", "pod-template-hash": "5d8f7c9b6"});
        let rs = s.create(json!({"apiVersion": "apps/v1", "kind": "ReplicaSet",
            "metadata": {"name": "web-5d8f7c9b6", "namespace": ns, "labels": rs_labels, "ownerReferences": Self::owner(&deploy)},
            "spec": {"replicas": 2, "selector": {"matchLabels": rs_labels}, "template": {"metadata": {"labels": rs_labels}, "spec": pod_spec}}}))?;
        for suffix in ["x7k2p", "q9z4m"] {
            self.pod(ns, &format!("web-5d8f7c9b6-{suffix}"), &rs_labels, &rs, pod_spec.clone())?;
        }
        Ok(4)
    }

    fn seed_db(&self, ns: &str) -> Result<usize, ApiError> {
        let s = self.store();
        let pod_spec = json!({"containers": [{"name": "postgres", "image": "postgres:16",
            "volumeMounts": [{"name": "data", "mountPath": "/var/lib/postgresql/data"}]}]});
        let sts = s.create(json!({"apiVersion": "apps/v1", "kind": "StatefulSet", "metadata": {"name": "db", "namespace": ns, "labels": {"app": "db"}},
            "spec": {"replicas": 1, "serviceName": "db", "selector": {"matchLabels": {"app": "db"}},
                "template": {"metadata": {"labels": {"app": "db"}}, "spec": pod_spec},
                "volumeClaimTemplates": [{"metadata": {"name": "data"}, "spec": {"accessModes": ["ReadWriteOnce"],
                    "storageClassName": "managed-csi", "resources": {"requests": {"storage": "10Gi"}}}}]}}))?;
        let pv_name = format!("pvc-{}", uuid::Uuid::new_v4());
        let pvc = s.create(json!({"apiVersion": "v1", "kind": "PersistentVolumeClaim",
            "metadata": {"name": "data-db-0", "namespace": ns, "labels": {"app": "db"}},
            "spec": {"accessModes": ["ReadWriteOnce"], "storageClassName": "managed-csi", "volumeName": pv_name,
                     "resources": {"requests": {"storage": "10Gi"}}, "volumeMode": "Filesystem"}}))?;
        let handle = format!(
            "/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/mc_rg/providers/Microsoft.Compute/disks/{pv_name}"
        );
        let pv = s.create(json!({"apiVersion": "v1", "kind": "PersistentVolume", "metadata": {"name": pv_name},
            "spec": {"accessModes": ["ReadWriteOnce"], "capacity": {"storage": "10Gi"}, "persistentVolumeReclaimPolicy": "Delete",
                     "storageClassName": "managed-csi", "volumeMode": "Filesystem",
                     "claimRef": {"apiVersion": "v1", "kind": "PersistentVolumeClaim", "name": "data-db-0", "namespace": ns, "uid": pvc["metadata"]["uid"]},
                     "csi": {"driver": AZURE_DISK_DRIVER, "volumeHandle": handle, "fsType": "ext4"}}}))?;
        // The volume controller binds them too (it may already have): the status writes carry no
        // resourceVersion, so they cannot conflict with it.
        let mut bound_pv = pv;
        bound_pv["status"] = json!({"phase": "Bound"});
        bound_pv["metadata"]["resourceVersion"].take();
        s.update_status(bound_pv)?;
        let mut bound = pvc;
        bound["status"] = json!({"phase": "Bound", "accessModes": ["ReadWriteOnce"], "capacity": {"storage": "10Gi"}});
        bound["metadata"]["resourceVersion"].take();
        s.update_status(bound)?;
        let mut pod_spec = pod_spec;
        pod_spec["volumes"] = json!([{"name": "data", "persistentVolumeClaim": {"claimName": "data-db-0"}}]);
        self.pod(ns, "db-0", &json!({"app": "db", "statefulset.kubernetes.io/pod-name": "db-0"}), &sts, pod_spec)?;
        Ok(4)
    }

    async fn seed_widgets(&self, ns: &str) -> Result<usize, ApiError> {
        let crd = json!({"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
            "metadata": {"name": "widgets.example.lifeboat.io"},
            "spec": {"group": "example.lifeboat.io", "scope": "Namespaced",
                "names": {"plural": "widgets", "singular": "widget", "kind": "Widget", "listKind": "WidgetList", "shortNames": ["wdg"]},
                "versions": [{"name": "v1", "served": true, "storage": true, "subresources": {"status": {}},
                    "schema": {"openAPIV3Schema": {"type": "object", "properties": {
                        "spec": {"type": "object", "properties": {"size": {"type": "integer"}, "color": {"type": "string"}}},
                        "status": {"type": "object", "x-kubernetes-preserve-unknown-fields": true}}}}}]}});
        let mut n = create_if_missing(self, crd)?;
        self.wait_for_kind("example.lifeboat.io/v1", "Widget").await?;
        for (name, size) in [("small", 1), ("large", 9)] {
            self.store().create(json!({"apiVersion": "example.lifeboat.io/v1", "kind": "Widget",
                "metadata": {"name": name, "namespace": ns, "labels": {"app": "web"}}, "spec": {"size": size, "color": "blue"}}))?;
            n += 1;
        }
        Ok(n)
    }
}

//! The server against the `kube` client: CRUD, pagination, selectors, conflicts, Status bodies,
//! namespaces, CRD discovery, watch-based waits on snapshots, authentication and faults.

mod common;

use std::time::Duration;

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{ConfigMap, Namespace};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{Api, DeleteParams, DynamicObject, ListParams, PostParams};
use kube::discovery::{ApiResource, Discovery};
use kube::runtime::wait::{await_condition, conditions};
use lifeboat_test_apiserver::{Denial, Fault, FaultRule};
use serde_json::json;

use common::{api_error, start};

fn cm(name: &str, app: &str) -> ConfigMap {
    serde_json::from_value(json!({"metadata": {"name": name, "labels": {"app": app}}, "data": {"k": name}}))
        .expect("valid ConfigMap")
}

async fn namespace(client: &kube::Client, name: &str) -> anyhow::Result<()> {
    let ns: Namespace = serde_json::from_value(json!({"metadata": {"name": name}}))?;
    Api::<Namespace>::all(client.clone()).create(&PostParams::default(), &ns).await?;
    Ok(())
}

#[tokio::test]
async fn lists_paginate_and_select_by_labels() -> anyhow::Result<()> {
    let (server, client, _dir) = start().await?;
    namespace(&client, "pager").await?;
    let api: Api<ConfigMap> = Api::namespaced(client.clone(), "pager");
    for (name, app) in [("a", "x"), ("b", "y"), ("c", "x"), ("d", "y"), ("e", "x")] {
        api.create(&PostParams::default(), &cm(name, app)).await?;
    }
    let (mut names, mut pages, mut token) = (Vec::new(), 0, None::<String>);
    loop {
        let mut lp = ListParams::default().limit(2);
        if let Some(t) = &token {
            lp = lp.continue_token(t);
        }
        let page = api.list(&lp).await?;
        pages += 1;
        names.extend(page.items.iter().filter_map(|c| c.metadata.name.clone()));
        token = page.metadata.continue_.filter(|t| !t.is_empty());
        if token.is_none() {
            break;
        }
        assert!(page.items.len() == 2);
    }
    assert_eq!((pages, names), (3, vec!["a".to_string(), "b".into(), "c".into(), "d".into(), "e".into()]));

    let x = api.list(&ListParams::default().labels("app=x")).await?;
    assert_eq!(x.items.len(), 3);
    let not_x = api.list(&ListParams::default().labels("app!=x")).await?;
    assert_eq!(not_x.items.len(), 2);
    let set = api.list(&ListParams::default().labels("app in (x,y),!missing")).await?;
    assert_eq!(set.items.len(), 5);
    let by_name = api.list(&ListParams::default().fields("metadata.name=c")).await?;
    assert_eq!(by_name.items.len(), 1);
    let everywhere: Api<ConfigMap> = Api::all(client.clone());
    assert_eq!(everywhere.list(&ListParams::default().labels("app=y")).await?.items.len(), 2);

    let first = api.list(&ListParams::default().limit(1)).await?;
    api.create(&PostParams::default(), &cm("f", "x")).await?;
    server.store().compact();
    let expired = api_error(
        api.list(&ListParams::default().limit(1).continue_token(&first.metadata.continue_.unwrap_or_default())).await,
    );
    assert_eq!((expired.code, expired.reason.as_str()), (410, "Expired"));
    let garbled = api_error(api.list(&ListParams::default().continue_token("not-a-token")).await);
    assert_eq!((garbled.code, garbled.reason.as_str()), (400, "BadRequest"));
    Ok(())
}

#[tokio::test]
async fn stale_updates_conflict_and_errors_are_real_status_bodies() -> anyhow::Result<()> {
    let (_server, client, _dir) = start().await?;
    namespace(&client, "errs").await?;
    let api: Api<ConfigMap> = Api::namespaced(client.clone(), "errs");
    let created = api.create(&PostParams::default(), &cm("one", "x")).await?;
    assert!(created.metadata.uid.is_some() && created.metadata.creation_timestamp.is_some());
    let mut fresh = created.clone();
    fresh.data = Some([("k".to_string(), "v2".to_string())].into());
    let updated = api.replace("one", &PostParams::default(), &fresh).await?;
    assert_ne!(updated.metadata.resource_version, created.metadata.resource_version);
    let mut stale = created.clone();
    stale.data = Some([("k".to_string(), "v3".to_string())].into());
    let conflict = api_error(api.replace("one", &PostParams::default(), &stale).await);
    assert_eq!((conflict.code, conflict.reason.as_str()), (409, "Conflict"));
    assert_eq!(
        conflict.message,
        "Operation cannot be fulfilled on configmaps \"one\": the object has been modified; please apply your changes to the latest version and try again"
    );

    let missing = api_error(api.get("nope").await);
    assert_eq!(
        (missing.code, missing.reason.as_str(), missing.message.as_str()),
        (404, "NotFound", "configmaps \"nope\" not found")
    );
    assert_eq!(missing.details.as_ref().map(|d| d.kind.as_str()), Some("configmaps"));
    let dup = api_error(api.create(&PostParams::default(), &cm("one", "x")).await);
    assert_eq!(
        (dup.code, dup.reason.as_str(), dup.message.as_str()),
        (409, "AlreadyExists", "configmaps \"one\" already exists")
    );
    let invalid = api_error(api.create(&PostParams::default(), &cm("Bad_Name", "x")).await);
    assert_eq!((invalid.code, invalid.reason.as_str()), (422, "Invalid"));
    assert!(invalid.message.starts_with(
        "ConfigMap \"Bad_Name\" is invalid: metadata.name: Invalid value: \"Bad_Name\": a lowercase RFC 1123 subdomain"
    ));
    let bad_ns: Namespace = serde_json::from_value(json!({"metadata": {"name": "Not.A.Label"}}))?;
    let invalid_ns = api_error(Api::<Namespace>::all(client.clone()).create(&PostParams::default(), &bad_ns).await);
    assert_eq!(invalid_ns.code, 422);
    let ghost: Api<ConfigMap> = Api::namespaced(client.clone(), "ghost");
    let no_ns = api_error(ghost.create(&PostParams::default(), &cm("x", "x")).await);
    assert_eq!((no_ns.code, no_ns.message.as_str()), (404, "namespaces \"ghost\" not found"));
    Ok(())
}

#[tokio::test]
async fn deleting_a_namespace_terminates_it_and_removes_its_objects() -> anyhow::Result<()> {
    let (_server, client, _dir) = start().await?;
    namespace(&client, "doomed").await?;
    let api: Api<ConfigMap> = Api::namespaced(client.clone(), "doomed");
    api.create(&PostParams::default(), &cm("a", "x")).await?;
    let nss: Api<Namespace> = Api::all(client.clone());
    let deleting = nss.delete("doomed", &DeleteParams::background()).await?;
    let terminating = deleting.left().and_then(|ns| ns.status).and_then(|s| s.phase);
    assert_eq!(terminating.as_deref(), Some("Terminating"));
    let forbidden = api_error(api.create(&PostParams::default(), &cm("b", "x")).await);
    assert_eq!((forbidden.code, forbidden.reason.as_str()), (403, "Forbidden"));
    let uid = nss.get("doomed").await?.metadata.uid.unwrap_or_default();
    tokio::time::timeout(Duration::from_secs(5), await_condition(nss.clone(), "doomed", conditions::is_deleted(&uid)))
        .await??;
    assert!(
        Api::<ConfigMap>::all(client.clone()).list(&ListParams::default()).await?.items.iter().all(|c| c
            .metadata
            .namespace
            .as_deref()
            != Some("doomed"))
    );
    Ok(())
}

#[tokio::test]
async fn crds_become_discoverable_and_go_away_with_their_objects() -> anyhow::Result<()> {
    let (_server, client, _dir) = start().await?;
    let crd: CustomResourceDefinition = serde_json::from_value(json!({
        "metadata": {"name": "gadgets.example.com"},
        "spec": {"group": "example.com", "scope": "Namespaced",
            "names": {"plural": "gadgets", "singular": "gadget", "kind": "Gadget"},
            "versions": [{"name": "v1", "served": true, "storage": true,
                "schema": {"openAPIV3Schema": {"type": "object", "x-kubernetes-preserve-unknown-fields": true}}}]}}))?;
    let crds: Api<CustomResourceDefinition> = Api::all(client.clone());
    crds.create(&PostParams::default(), &crd).await?;
    tokio::time::timeout(
        Duration::from_secs(5),
        await_condition(crds.clone(), "gadgets.example.com", conditions::is_crd_established()),
    )
    .await??;

    let discovery = Discovery::new(client.clone()).run().await?;
    let (ar, caps) = discovery
        .resolve_gvk(&kube::core::GroupVersionKind::gvk("example.com", "v1", "Gadget"))
        .expect("Gadget discovered");
    assert_eq!(caps.scope, kube::discovery::Scope::Namespaced);
    let aggregated = Discovery::new(client.clone()).run_aggregated().await?;
    assert!(aggregated.has_group("example.com") && aggregated.has_group("apps"));

    let gadgets: Api<DynamicObject> = Api::namespaced_with(client.clone(), "default", &ar);
    let obj: DynamicObject = serde_json::from_value(
        json!({"apiVersion": "example.com/v1", "kind": "Gadget", "metadata": {"name": "g1"}, "spec": {"x": 1}}),
    )?;
    gadgets.create(&PostParams::default(), &obj).await?;
    assert_eq!(gadgets.list(&ListParams::default()).await?.items.len(), 1);

    let uid = crds.get("gadgets.example.com").await?.metadata.uid.unwrap_or_default();
    crds.delete("gadgets.example.com", &DeleteParams::default()).await?;
    tokio::time::timeout(
        Duration::from_secs(5),
        await_condition(crds.clone(), "gadgets.example.com", conditions::is_deleted(&uid)),
    )
    .await??;
    let after = Discovery::new(client.clone()).run().await?;
    assert!(!after.has_group("example.com"));
    let gone = api_error(gadgets.list(&ListParams::default()).await);
    assert_eq!(gone.code, 404);
    Ok(())
}

fn snapshot(name: &str, pvc: &str, class: Option<&str>) -> anyhow::Result<DynamicObject> {
    let mut spec = json!({"source": {"persistentVolumeClaimName": pvc}});
    if let Some(c) = class {
        spec["volumeSnapshotClassName"] = json!(c);
    }
    Ok(serde_json::from_value(json!({"apiVersion": "snapshot.storage.k8s.io/v1", "kind": "VolumeSnapshot",
        "metadata": {"name": name}, "spec": spec}))?)
}

#[tokio::test]
async fn a_watch_based_wait_sees_a_volume_snapshot_become_ready() -> anyhow::Result<()> {
    let (server, client, _dir) = start().await?;
    let app = server.seed_sample_app("shop").await?;
    let ar =
        ApiResource::from_gvk(&kube::core::GroupVersionKind::gvk("snapshot.storage.k8s.io", "v1", "VolumeSnapshot"));
    let snaps: Api<DynamicObject> = Api::namespaced_with(client.clone(), "shop", &ar);
    snaps.create(&PostParams::default(), &snapshot("db-snap", &app.pvcs[0], None)?).await?;
    let ready = |o: Option<&DynamicObject>| o.is_some_and(|o| o.data["status"]["readyToUse"] == true);
    let done =
        tokio::time::timeout(Duration::from_secs(10), await_condition(snaps.clone(), "db-snap", ready)).await??;
    let status = done.map(|o| o.data["status"].clone()).unwrap_or_default();
    assert_eq!(status["restoreSize"], "10Gi");
    let content_name = status["boundVolumeSnapshotContentName"].as_str().unwrap_or_default().to_string();
    let content = server.store().get("snapshot.storage.k8s.io/v1", "VolumeSnapshotContent", "", &content_name)?;
    let handle = content["status"]["snapshotHandle"].as_str().unwrap_or_default();
    assert!(handle.starts_with("/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/mc_rg/providers/Microsoft.Compute/snapshots/snapshot-"));
    assert_eq!(content["status"]["restoreSize"], 10_737_418_240_i64);
    assert_eq!(content["spec"]["driver"], "disk.csi.azure.com");

    snaps.create(&PostParams::default(), &snapshot("bad-class", &app.pvcs[0], Some("missing"))?).await?;
    let failed = |o: Option<&DynamicObject>| o.is_some_and(|o| o.data["status"]["error"]["message"].is_string());
    let err =
        tokio::time::timeout(Duration::from_secs(10), await_condition(snaps.clone(), "bad-class", failed)).await??;
    let status = err.map(|o| o.data["status"].clone()).unwrap_or_default();
    assert_eq!(status["readyToUse"], false);
    assert!(
        status["error"]["message"].as_str().unwrap_or_default().starts_with("Failed to get snapshot class with error")
    );

    snaps.delete("db-snap", &DeleteParams::default()).await?;
    let uid = done_uid(&snaps, "db-snap").await;
    tokio::time::timeout(
        Duration::from_secs(5),
        await_condition(snaps.clone(), "db-snap", conditions::is_deleted(&uid)),
    )
    .await??;
    assert!(server.store().get("snapshot.storage.k8s.io/v1", "VolumeSnapshotContent", "", &content_name).is_err());
    Ok(())
}

async fn done_uid(api: &Api<DynamicObject>, name: &str) -> String {
    api.get(name).await.ok().and_then(|o| o.metadata.uid).unwrap_or_default()
}

#[tokio::test]
async fn bad_tokens_get_401_and_injected_faults_pass() -> anyhow::Result<()> {
    let (server, client, dir) = start().await?;
    let path = dir.path().join("bad");
    let text = server.kubeconfig_yaml().replace(server.token(), "wrong-token");
    std::fs::write(&path, text)?;
    let bad = common::client_from(&path, false).await?;
    let denied = api_error(Api::<ConfigMap>::namespaced(bad, "default").list(&ListParams::default()).await);
    assert_eq!((denied.code, denied.reason.as_str(), denied.message.as_str()), (401, "Unauthorized", "Unauthorized"));

    // kube retries 429 by default: two throttled answers, then success, in one call.
    let retrying: Api<ConfigMap> = Api::namespaced(client.clone(), "default");
    let throttle = Fault::TooManyRequests { retry_after_seconds: 1 };
    server.faults().inject(FaultRule::new(throttle.clone()).times(2).path_contains("/configmaps").method("GET"));
    retrying.list(&ListParams::default()).await?;
    assert_eq!((server.faults().served(), server.faults().pending()), (2, 0));

    let path = dir.path().join("kubeconfig");
    let api: Api<ConfigMap> = Api::namespaced(common::client_from(&path, false).await?, "default");
    server.faults().inject(FaultRule::new(throttle).path_contains("/configmaps").method("GET"));
    let throttled = api_error(api.list(&ListParams::default()).await);
    assert_eq!((throttled.code, throttled.reason.as_str()), (429, "TooManyRequests"));
    assert_eq!(throttled.details.as_ref().map(|d| d.retry_after_seconds), Some(1));
    api.list(&ListParams::default()).await?;
    server.faults().inject(FaultRule::new(Fault::InternalError));
    assert_eq!(api_error(api.list(&ListParams::default()).await).code, 500);
    server.faults().inject(FaultRule::new(Fault::DropConnection));
    assert!(api.list(&ListParams::default()).await.is_err());
    server.faults().inject(FaultRule::new(Fault::Delay(Duration::from_millis(100))));
    let started = std::time::Instant::now();
    api.list(&ListParams::default()).await?;
    assert!(started.elapsed() >= Duration::from_millis(100));
    assert_eq!(server.faults().served(), 6);
    Ok(())
}

#[tokio::test]
async fn rbac_denials_answer_403_as_the_authorizer_words_them() -> anyhow::Result<()> {
    let (server, client, _dir) = start().await?;
    server.seed_sample_app("shop").await?;
    let user = "system:serviceaccount:lifeboat:lifeboat";
    server.faults().deny(Denial::new("apps", "deployments").verb("list").user(user));
    let all: Api<Deployment> = Api::all(client.clone());
    let denied = api_error(all.list(&ListParams::default()).await);
    assert_eq!((denied.code, denied.reason.as_str()), (403, "Forbidden"));
    assert_eq!(
        denied.message,
        format!(
            "deployments.apps is forbidden: User \"{user}\" cannot list resource \"deployments\" in API group \"apps\" at the cluster scope"
        )
    );
    let in_shop: Api<Deployment> = Api::namespaced(client.clone(), "shop");
    let denied = api_error(in_shop.list(&ListParams::default()).await);
    assert!(denied.message.ends_with("in API group \"apps\" in the namespace \"shop\""), "{}", denied.message);
    assert!(in_shop.get("web").await.is_ok(), "only the denied verb is refused");

    server.faults().deny(Denial::new("", "secrets"));
    let secrets: Api<k8s_openapi::api::core::v1::Secret> = Api::namespaced(client.clone(), "shop");
    let denied = api_error(secrets.get("web-secret").await);
    assert_eq!(
        denied.message,
        "secrets \"web-secret\" is forbidden: User \"lifeboat-test\" cannot get resource \"secrets\" in API group \"\" in the namespace \"shop\""
    );
    server.faults().clear();
    assert_eq!(all.list(&ListParams::default()).await?.items.len(), 1);
    Ok(())
}

#[tokio::test]
async fn streaming_list_watchers_get_initial_events_then_changes() -> anyhow::Result<()> {
    use futures_util::TryStreamExt;
    use kube::runtime::watcher::{self, Event};
    let (_server, client, _dir) = start().await?;
    namespace(&client, "stream").await?;
    let api: Api<ConfigMap> = Api::namespaced(client.clone(), "stream");
    for n in ["a", "b"] {
        api.create(&PostParams::default(), &cm(n, "x")).await?;
    }
    let mut events = Box::pin(watcher::watcher(api.clone(), watcher::Config::default().streaming_lists()));
    let mut initial = Vec::new();
    loop {
        match tokio::time::timeout(Duration::from_secs(5), events.try_next()).await?? {
            Some(Event::Init) => {}
            Some(Event::InitApply(o)) => initial.push(o.metadata.name.unwrap_or_default()),
            Some(Event::InitDone) => break,
            other => anyhow::bail!("unexpected {other:?}"),
        }
    }
    assert_eq!(initial, ["a", "b"]);
    api.create(&PostParams::default(), &cm("c", "x")).await?;
    match tokio::time::timeout(Duration::from_secs(5), events.try_next()).await?? {
        Some(Event::Apply(o)) => assert_eq!(o.metadata.name.as_deref(), Some("c")),
        other => anyhow::bail!("expected the new object, got {other:?}"),
    }
    Ok(())
}

#[tokio::test]
async fn pods_exec_answers_over_websocket_with_output_exit_codes_and_real_errors() -> anyhow::Result<()> {
    use k8s_openapi::api::core::v1::Pod;
    use kube::api::AttachParams;
    use lifeboat_test_apiserver::ExecResult;
    use tokio::io::AsyncReadExt;

    let (server, client, _dir) = start().await?;
    let pod: Pod = serde_json::from_value(json!({
        "metadata": {"name": "db-0"},
        "spec": {"containers": [{"name": "db", "image": "postgres"}, {"name": "metrics", "image": "exporter"}]}
    }))?;
    let pods: Api<Pod> = Api::namespaced(client.clone(), "default");
    pods.create(&PostParams::default(), &pod).await?;
    server.execs().respond_with(|exec| match exec.command.first().map(String::as_str) {
        Some("fail") => ExecResult { exit_code: 7, stdout: String::new(), stderr: "boom".into() },
        _ => ExecResult { exit_code: 0, stdout: format!("ran in {}", exec.container), stderr: String::new() },
    });

    let mut ok = pods.exec("db-0", ["echo", "hi"], &AttachParams::default().container("metrics")).await?;
    let (mut stdout, status) = (ok.stdout().expect("stdout"), ok.take_status().expect("status"));
    let mut out = String::new();
    stdout.read_to_string(&mut out).await?;
    assert_eq!(out, "ran in metrics");
    assert_eq!(status.await.expect("a status").status.as_deref(), Some("Success"));

    let mut failed = pods.exec("db-0", ["fail"], &AttachParams::default().container("db")).await?;
    let status = failed.take_status().expect("status").await.expect("a status");
    let cause = status.details.and_then(|d| d.causes).and_then(|c| c.into_iter().next()).expect("a cause");
    assert_eq!(status.reason.as_deref(), Some("NonZeroExitCode"));
    assert_eq!((cause.reason.as_deref(), cause.message.as_deref()), (Some("ExitCode"), Some("7")));

    let recorded = server.execs().recorded();
    assert_eq!(recorded.len(), 2);
    assert_eq!(
        (recorded[0].pod.as_str(), recorded[0].command.clone()),
        ("db-0", vec!["echo".to_string(), "hi".into()])
    );

    let missing = api_error(pods.exec("nope", ["true"], &AttachParams::default()).await.map(|_| ()));
    assert_eq!((missing.code, missing.message.as_str()), (404, "pods \"nope\" not found"));
    let bad = api_error(pods.exec("db-0", ["true"], &AttachParams::default().container("web")).await.map(|_| ()));
    assert_eq!((bad.code, bad.message.as_str()), (400, "container web is not valid for pod db-0"));
    let ambiguous = api_error(pods.exec("db-0", ["true"], &AttachParams::default()).await.map(|_| ()));
    assert!(ambiguous.message.contains("choose one of: [db metrics]"), "{}", ambiguous.message);
    assert_eq!(server.execs().recorded().len(), 2, "refused execs are not recorded");
    Ok(())
}

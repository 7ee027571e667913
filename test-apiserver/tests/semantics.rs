//! API semantics through `kube` and raw HTTP: apply and patches, the status subresource,
//! generateName, type checks, watches (selector transitions, bookmarks, 410), garbage
//! collection, finalizers, deletecollection, dry-run, resourceVersion semantics and discovery.

mod common;

use std::time::Duration;

use futures_util::{StreamExt, TryStreamExt};
use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet};
use k8s_openapi::api::core::v1::{ConfigMap, Pod};
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams, PostParams, WatchEvent, WatchParams};
use kube::client::Body;
use serde_json::{Value, json};

use common::{api_error, fast_options, start, start_with};
use lifeboat_test_apiserver::Options;

async fn raw(
    client: &kube::Client,
    method: &str,
    uri: &str,
    ct: &str,
    body: Value,
) -> anyhow::Result<(u16, String, Value)> {
    let accept = if ct.starts_with("accept:") { ct.trim_start_matches("accept:") } else { "application/json" };
    let req = http::Request::builder()
        .method(method)
        .uri(uri)
        .header("content-type", if ct.starts_with("accept:") { "application/json" } else { ct })
        .header("accept", accept)
        .body(Body::from(if body.is_null() { Vec::new() } else { serde_json::to_vec(&body)? }))?;
    let resp = client.send(req).await?;
    let code = resp.status().as_u16();
    let content_type = resp.headers().get("content-type").and_then(|v| v.to_str().ok()).unwrap_or_default().to_string();
    let bytes = http_body_util::BodyExt::collect(resp.into_body()).await?.to_bytes();
    Ok((code, content_type, serde_json::from_slice(&bytes).unwrap_or(Value::Null)))
}

fn cm(name: &str, labels: Value) -> ConfigMap {
    serde_json::from_value(json!({"metadata": {"name": name, "labels": labels}, "data": {"k": "v"}}))
        .expect("ConfigMap")
}

#[tokio::test]
async fn apply_and_patches_follow_their_content_types() -> anyhow::Result<()> {
    let (server, client, _dir) = start().await?;
    let api: Api<ConfigMap> = Api::namespaced(client.clone(), "default");
    let applied = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "ssa"}, "data": {"a": "1"}});
    let created = api.patch("ssa", &PatchParams::apply("lifeboat"), &Patch::Apply(&applied)).await?;
    let mf = created.metadata.managed_fields.unwrap_or_default();
    assert_eq!((mf[0].manager.as_deref(), mf[0].operation.as_deref()), (Some("lifeboat"), Some("Apply")));
    let more = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "ssa"}, "data": {"b": "2"}});
    let merged = api.patch("ssa", &PatchParams::apply("lifeboat").force(), &Patch::Apply(&more)).await?;
    assert_eq!(merged.data.map(|d| d.len()), Some(2));

    let labelled =
        api.patch("ssa", &PatchParams::default(), &Patch::Merge(json!({"metadata": {"labels": {"x": "y"}}}))).await?;
    assert_eq!(labelled.metadata.labels.unwrap_or_default().get("x").map(String::as_str), Some("y"));
    let stale = json!({"metadata": {"resourceVersion": created.metadata.resource_version}, "data": {"c": "3"}});
    assert_eq!(api_error(api.patch("ssa", &PatchParams::default(), &Patch::Merge(stale)).await).code, 409);

    let uri = "/api/v1/namespaces/default/configmaps/ssa";
    let ops = json!([{"op": "test", "path": "/data/a", "value": "1"}, {"op": "remove", "path": "/data/a"}]);
    let (code, _, body) = raw(&client, "PATCH", uri, "application/json-patch+json", ops).await?;
    assert_eq!((code, body["data"].clone()), (200, json!({"b": "2"})));
    let (code, _, body) =
        raw(&client, "PATCH", &format!("{uri}?fieldManager="), "application/apply-patch+yaml", applied.clone()).await?;
    assert_eq!((code, body["reason"].as_str()), (422, Some("Invalid")), "{body}");
    let (code, _, _) = raw(&client, "PATCH", uri, "text/plain", json!({})).await?;
    assert_eq!(code, 415);

    server.seed_sample_app("shop").await?;
    let widget = "/apis/example.lifeboat.io/v1/namespaces/shop/widgets/small";
    let (code, _, _) =
        raw(&client, "PATCH", widget, "application/strategic-merge-patch+json", json!({"spec": {"size": 2}})).await?;
    assert_eq!(code, 415, "strategic merge patch is not supported for custom resources");
    let (code, _, body) =
        raw(&client, "PATCH", widget, "application/merge-patch+json", json!({"spec": {"size": 2}})).await?;
    assert_eq!((code, body["spec"]["size"].as_i64(), body["metadata"]["generation"].as_i64()), (200, Some(2), Some(2)));
    let strict = format!("{widget}?fieldValidation=Strict");
    let (code, _, body) =
        raw(&client, "PATCH", &strict, "application/merge-patch+json", json!({"spec": {"typo": 1}})).await?;
    assert_eq!((code, body["message"].as_str()), (400, Some("strict decoding error: unknown field \"spec.typo\"")));
    Ok(())
}

#[tokio::test]
async fn status_is_written_only_through_its_subresource() -> anyhow::Result<()> {
    // The test plays the deployment controller itself.
    let (_server, client, _dir) = start_with(Options { simulate_workloads: false, ..fast_options() }).await?;
    let api: Api<Deployment> = Api::namespaced(client.clone(), "default");
    let d: Deployment =
        serde_json::from_value(json!({"metadata": {"name": "d"}, "spec": {"selector": {"matchLabels": {"a": "b"}},
        "template": {"metadata": {"labels": {"a": "b"}}, "spec": {"containers": [{"name": "c", "image": "i"}]}}},
        "status": {"replicas": 5}}))?;
    let created = api.create(&PostParams::default(), &d).await?;
    assert!(created.status.is_none(), "status is dropped on create");
    assert_eq!(created.metadata.generation, Some(1));
    let mut with_status = created.clone();
    with_status.status = Some(serde_json::from_value(json!({"replicas": 3}))?);
    let after = api.replace_status("d", &PostParams::default(), &with_status).await?;
    assert_eq!((after.status.and_then(|s| s.replicas), after.metadata.generation), (Some(3), Some(1)));
    let latest = api.get("d").await?;
    let mut scaled = latest.clone();
    scaled.status = Some(serde_json::from_value(json!({"replicas": 9}))?);
    if let Some(spec) = scaled.spec.as_mut() {
        spec.replicas = Some(4);
    }
    let replaced = api.replace("d", &PostParams::default(), &scaled).await?;
    assert_eq!(
        replaced.status.and_then(|s| s.replicas),
        Some(3),
        "status changes through the main resource are ignored"
    );
    assert_eq!(replaced.metadata.generation, Some(2));
    let scale = api.get_scale("d").await?;
    assert_eq!((scale.spec.and_then(|s| s.replicas), scale.status.map(|s| s.replicas)), (Some(4), Some(3)));
    let patched =
        api.patch_scale("d", &PatchParams::default(), &Patch::Merge(json!({"spec": {"replicas": 0}}))).await?;
    assert_eq!(patched.spec.and_then(|s| s.replicas), Some(0));
    assert_eq!(api.get("d").await?.spec.and_then(|s| s.replicas), Some(0));
    let current = api.get("d").await?;
    let unchanged = api.replace("d", &PostParams::default(), &current).await?;
    assert_eq!(unchanged.metadata.resource_version, current.metadata.resource_version, "no-op updates are not written");
    Ok(())
}

#[tokio::test]
async fn names_types_and_dry_runs_are_checked() -> anyhow::Result<()> {
    let (_server, client, _dir) = start().await?;
    let api: Api<ConfigMap> = Api::namespaced(client.clone(), "default");
    let mut generated = cm("", json!({}));
    generated.metadata.name = None;
    generated.metadata.generate_name = Some("job-".into());
    let made = api.create(&PostParams::default(), &generated).await?;
    let name = made.metadata.name.unwrap_or_default();
    assert!(name.starts_with("job-") && name.len() == 9, "{name}");
    let unnamed = api_error(api.create(&PostParams::default(), &cm("", json!({}))).await);
    assert_eq!(
        unnamed.message,
        "ConfigMap \"\" is invalid: metadata.name: Required value: name or generateName is required"
    );
    let bad_label = api_error(api.create(&PostParams::default(), &cm("l", json!({"bad key": "v"}))).await);
    assert_eq!(bad_label.code, 422);

    let uri = "/api/v1/namespaces/default/configmaps";
    let (code, _, body) = raw(
        &client,
        "POST",
        uri,
        "application/json",
        json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "s"}}),
    )
    .await?;
    assert_eq!(code, 400);
    assert!(
        body["message"]
            .as_str()
            .unwrap_or_default()
            .starts_with("Secret in version \"v1\" cannot be handled as a ConfigMap")
    );
    let (code, _, body) = raw(
        &client,
        "POST",
        uri,
        "application/json",
        json!({"apiVersion": "apps/v1", "kind": "ConfigMap", "metadata": {"name": "s"}}),
    )
    .await?;
    assert_eq!(
        (code, body["message"].as_str()),
        (400, Some("the API version in the data (apps/v1) does not match the expected API version (v1)"))
    );
    let (code, _, body) =
        raw(&client, "PUT", &format!("{uri}/other"), "application/json", json!({"metadata": {"name": "s"}})).await?;
    assert_eq!(
        (code, body["message"].as_str()),
        (400, Some("the name of the object (s) does not match the name on the URL (other)"))
    );

    let dry = api.create(&PostParams { dry_run: true, ..Default::default() }, &cm("dry", json!({}))).await?;
    assert!(dry.metadata.uid.is_some());
    assert_eq!(api_error(api.get("dry").await).code, 404);

    let (code, _, body) = raw(&client, "DELETE", "/api/v1/namespaces", "application/json", Value::Null).await?;
    assert_eq!((code, body["reason"].as_str()), (405, Some("MethodNotAllowed")));
    let (code, _, body) =
        raw(&client, "GET", "/api/v1/namespaces/default/nothings", "application/json", Value::Null).await?;
    assert_eq!((code, body["message"].as_str()), (404, Some("the server could not find the requested resource")));
    let (code, _, _) =
        raw(&client, "GET", "/api/v1/namespaces/default/storageclasses", "application/json", Value::Null).await?;
    assert_eq!(code, 404);
    Ok(())
}

#[tokio::test]
async fn watches_follow_selectors_send_bookmarks_and_expire() -> anyhow::Result<()> {
    let (server, client, dir) = start().await?;
    let api: Api<ConfigMap> = Api::namespaced(client.clone(), "default");
    let rv = api.list(&ListParams::default()).await?.metadata.resource_version.unwrap_or_default();
    let wp = WatchParams { bookmarks: true, ..WatchParams::default().labels("app=x").timeout(5) };
    let mut stream = api.watch(&wp, &rv).await?.boxed();
    api.create(&PostParams::default(), &cm("w", json!({"app": "x"}))).await?;
    api.patch("w", &PatchParams::default(), &Patch::Merge(json!({"metadata": {"labels": {"app": "y"}}}))).await?;
    api.patch("w", &PatchParams::default(), &Patch::Merge(json!({"metadata": {"labels": {"app": "x"}}}))).await?;
    api.delete("w", &DeleteParams::default()).await?;
    let mut seen = Vec::new();
    while seen.len() < 5 {
        let ev = tokio::time::timeout(Duration::from_secs(5), stream.try_next()).await??;
        match ev {
            Some(WatchEvent::Added(_)) => seen.push("ADDED"),
            Some(WatchEvent::Modified(_)) => seen.push("MODIFIED"),
            Some(WatchEvent::Deleted(_)) => seen.push("DELETED"),
            Some(WatchEvent::Bookmark(_)) if seen.len() == 4 => seen.push("BOOKMARK"),
            Some(WatchEvent::Bookmark(_)) => {}
            other => anyhow::bail!("unexpected {other:?}"),
        }
    }
    assert_eq!(seen, ["ADDED", "DELETED", "ADDED", "DELETED", "BOOKMARK"]);

    api.create(&PostParams::default(), &cm("later", json!({}))).await?;
    server.store().compact();
    let mut old = api.watch(&WatchParams::default(), &rv).await?.boxed();
    match tokio::time::timeout(Duration::from_secs(5), old.try_next()).await?? {
        Some(WatchEvent::Error(e)) => assert_eq!((e.code, e.reason.as_str()), (410, "Expired")),
        other => anyhow::bail!("expected a 410 ERROR event, got {other:?}"),
    }
    // kube retries 504 with backoff by default; ask once.
    let once: Api<ConfigMap> =
        Api::namespaced(common::client_from(&dir.path().join("kubeconfig"), false).await?, "default");
    let future = once.list(&ListParams::default().at("999999").matching(kube::api::VersionMatch::NotOlderThan)).await;
    assert_eq!(api_error(future).code, 504);
    Ok(())
}

#[tokio::test]
async fn owners_finalizers_and_collections_control_deletion() -> anyhow::Result<()> {
    let (server, client, _dir) = start().await?;
    server.seed_sample_app("gc").await?;
    let pods: Api<Pod> = Api::namespaced(client.clone(), "gc");
    let rs: Api<ReplicaSet> = Api::namespaced(client.clone(), "gc");
    Api::<Deployment>::namespaced(client.clone(), "gc").delete("web", &DeleteParams::background()).await?;
    let gone = async {
        loop {
            let left = pods.list(&ListParams::default().labels("app=web")).await?.items.len()
                + rs.list(&ListParams::default()).await?.items.len();
            if left == 0 {
                return anyhow::Ok(());
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    };
    tokio::time::timeout(Duration::from_secs(5), gone).await??;
    assert_eq!(pods.list(&ListParams::default()).await?.items.len(), 1, "the StatefulSet's pod stays");

    pods.patch("db-0", &PatchParams::default(), &Patch::Merge(json!({"metadata": {"labels": {"keep": "me"}}}))).await?;
    Api::<k8s_openapi::api::apps::v1::StatefulSet>::namespaced(client.clone(), "gc")
        .delete("db", &DeleteParams::orphan())
        .await?;
    tokio::time::sleep(Duration::from_millis(100)).await;
    let orphan = pods.get("db-0").await?;
    assert!(orphan.metadata.owner_references.unwrap_or_default().is_empty());

    let cms: Api<ConfigMap> = Api::namespaced(client.clone(), "gc");
    let mut held = cm("held", json!({"app": "h"}));
    held.metadata.finalizers = Some(vec!["example.com/hold".into()]);
    cms.create(&PostParams::default(), &held).await?;
    let marked =
        cms.delete("held", &DeleteParams::default()).await?.left().expect("object returned while finalizers remain");
    assert!(marked.metadata.deletion_timestamp.is_some());
    cms.patch("held", &PatchParams::default(), &Patch::Merge(json!({"metadata": {"finalizers": null}}))).await?;
    assert_eq!(api_error(cms.get("held").await).code, 404, "removing the last finalizer deletes the object");

    for n in ["c1", "c2", "c3"] {
        cms.create(&PostParams::default(), &cm(n, json!({"batch": if n == "c3" { "no" } else { "yes" }}))).await?;
    }
    cms.delete_collection(&DeleteParams::default(), &ListParams::default().labels("batch=yes")).await?;
    let left: Vec<String> = cms
        .list(&ListParams::default().labels("batch"))
        .await?
        .items
        .into_iter()
        .filter_map(|c| c.metadata.name)
        .collect();
    assert_eq!(left, ["c3"]);
    Ok(())
}

#[tokio::test]
async fn discovery_negotiates_aggregated_documents() -> anyhow::Result<()> {
    let (_server, client, _dir) = start().await?;
    let agg = "accept:application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList,application/json";
    let (code, ct, body) = raw(&client, "GET", "/apis", agg, Value::Null).await?;
    assert_eq!((code, ct.as_str()), (200, "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList"));
    assert_eq!(body["kind"], "APIGroupDiscoveryList");
    let (_, _, core) = raw(&client, "GET", "/api", agg, Value::Null).await?;
    assert_eq!(core["items"][0]["versions"][0]["version"], "v1");
    let (_, ct, legacy) = raw(&client, "GET", "/api", "accept:application/json", Value::Null).await?;
    assert_eq!((ct.as_str(), legacy["kind"].as_str()), ("application/json", Some("APIVersions")));
    let (code, _, _) = raw(&client, "GET", "/api", "accept:application/vnd.kubernetes.protobuf", Value::Null).await?;
    assert_eq!(code, 406);
    let (_, _, version) = raw(&client, "GET", "/version", "accept:application/json", Value::Null).await?;
    assert_eq!((version["major"].as_str(), version["minor"].as_str()), (Some("1"), Some("33")));
    let (_, _, index) = raw(&client, "GET", "/openapi/v3", "accept:application/json", Value::Null).await?;
    let apps = index["paths"]["apis/apps/v1"]["serverRelativeURL"].as_str().unwrap_or_default().to_string();
    let (_, _, doc) = raw(&client, "GET", &apps, "accept:application/json", Value::Null).await?;
    let patch = &doc["paths"]["/apis/apps/v1/namespaces/{namespace}/deployments/{name}"]["patch"];
    assert_eq!(patch["x-kubernetes-group-version-kind"]["kind"], "Deployment");
    assert!(patch["parameters"].as_array().is_some_and(|ps| ps.iter().any(|p| p["name"] == "fieldValidation")));
    Ok(())
}

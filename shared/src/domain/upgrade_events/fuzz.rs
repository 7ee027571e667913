//! Fuzz test: no delivery, however malformed, makes the parser or the classifier panic.
//!
//! cargo-fuzz needs a nightly toolchain (and libFuzzer), which this workspace does not use;
//! proptest (already a dev-dependency) drives the same entry points with arbitrary bytes and
//! arbitrary JSON values instead, biased towards the fields the parser reads so that the
//! deeper paths (classification, cluster ids, times) are reached, not only the first check.

use proptest::prelude::*;
use serde_json::{Map, Value, json};

use super::{classify, parse_delivery, parse_delivery_value};

/// Any JSON value, up to a small depth.
fn any_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<f64>().prop_map(|f| json!(f)),
        interesting_string().prop_map(Value::String),
    ];
    leaf.prop_recursive(4, 48, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::vec((field_name(), inner), 0..8)
                .prop_map(|fields| Value::Object(fields.into_iter().collect::<Map<_, _>>())),
        ]
    })
}

/// Strings the parser gives meaning to, and arbitrary ones.
fn interesting_string() -> impl Strategy<Value = String> {
    prop_oneof![
        any::<String>(),
        Just("1.0".to_owned()),
        Just("Scheduled".to_owned()),
        Just("Started".to_owned()),
        Just("2024-04-16T22:17:12.103268606Z".to_owned()),
        Just("0001-01-01T00:00:00.0000000".to_owned()),
        Just("Microsoft.ContainerService/managedClusters/write".to_owned()),
        Just("/subscriptions/s/resourceGroups/r/providers/Microsoft.ContainerService/managedClusters/c/x".to_owned()),
        Just("/subscriptions//resourceGroups/ /providers/Microsoft.ContainerService/managedClusters/".to_owned()),
        prop::sample::select(super::event_types::ALL.to_vec()).prop_map(str::to_owned),
    ]
}

/// Field names the parser reads, and arbitrary ones.
fn field_name() -> impl Strategy<Value = String> {
    prop_oneof![
        prop::sample::select(vec![
            "id",
            "eventType",
            "type",
            "specversion",
            "specVersion",
            "topic",
            "source",
            "subject",
            "eventTime",
            "time",
            "data",
            "resourceInfo",
            "properties",
            "eventStatus",
            "scheduledTime",
            "resources",
            "resourceUri",
            "operationName",
            "nodePoolName",
            "currentVersion",
            "targetVersion",
            "kubernetesVersion",
            "eventId",
        ])
        .prop_map(str::to_owned),
        any::<String>(),
    ]
}

fn exercise(value: &Value) {
    if let Ok(events) = parse_delivery_value(value) {
        for event in events.into_iter().flatten() {
            if let Ok(classified) = classify(&event) {
                let _ = (classified.signal.trigger(), classified.signal.versions());
            }
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn fuzz_arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..512)) {
        let _ = parse_delivery(&bytes);
    }

    #[test]
    fn fuzz_arbitrary_json_never_panics(value in any_json()) {
        exercise(&value);
        exercise(&Value::Array(vec![value.clone(), value]));
    }
}

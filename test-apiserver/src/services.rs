//! Service IP and node port allocation, as the real registry does it: a `ClusterIP`, `NodePort`
//! or `LoadBalancer` Service gets a cluster IP from the service range (AKS's default
//! `10.0.0.0/16`) and, for the latter two, node ports from `30000-32767`. A requested IP or port
//! must be in range and free; an update that leaves them out keeps the allocated ones, and one
//! that changes the cluster IP is refused.

use std::collections::BTreeSet;

use serde_json::{Value, json};

use crate::meta::meta_str;
use crate::status::{ApiError, Cause};
use crate::storage::{GroupResource, Inner};

const RANGE: &str = "10.0.0.0/16";
const NODE_PORTS: std::ops::RangeInclusive<i64> = 30000..=32767;

fn invalid(field: &str, value: String, detail: &str) -> Cause {
    Cause { reason: "FieldValueInvalid", field: field.into(), message: format!("Invalid value: {value}: {detail}") }
}

fn ip_list(ip: &str) -> String {
    format!("[]string{{\"{ip}\"}}")
}

fn needs_ip(spec: &Value) -> bool {
    spec["type"].as_str().unwrap_or("ClusterIP") != "ExternalName" && spec["clusterIP"] != "None"
}

fn protocol(port: &Value) -> &str {
    port["protocol"].as_str().unwrap_or("TCP")
}

fn needs_node_ports(spec: &Value) -> bool {
    matches!(spec["type"].as_str(), Some("NodePort" | "LoadBalancer"))
}

fn in_range(ip: &str) -> bool {
    let octets: Vec<u8> = ip.split('.').filter_map(|o| o.parse().ok()).collect();
    octets.len() == 4 && ip.split('.').count() == 4 && octets[0] == 10 && octets[1] == 0
}

/// IPs and node ports held by the Services in `state`.
fn allocated(state: &Inner) -> (BTreeSet<String>, BTreeSet<i64>) {
    let (mut ips, mut ports) = (BTreeSet::new(), BTreeSet::new());
    for svc in state.objects_at(&GroupResource::new("", "services"), None).unwrap_or_default().values() {
        if let Some(ip) = svc["spec"]["clusterIP"].as_str().filter(|ip| *ip != "None" && !ip.is_empty()) {
            ips.insert(ip.to_string());
        }
        for p in svc["spec"]["ports"].as_array().into_iter().flatten() {
            if let Some(n) = p["nodePort"].as_i64() {
                ports.insert(n);
            }
        }
    }
    (ips, ports)
}

/// Allocates (or checks the requested) cluster IP and node ports of a new Service.
pub(crate) fn allocate(state: &Inner, obj: &mut Value, name: &str) -> Result<(), ApiError> {
    let (ips, ports) = allocated(state);
    let spec = &mut obj["spec"];
    let mut causes = Vec::new();
    if needs_ip(spec) {
        match spec["clusterIP"].as_str().filter(|ip| !ip.is_empty()).map(String::from) {
            Some(ip) if !in_range(&ip) => causes.push(invalid(
                "spec.clusterIPs",
                ip_list(&ip),
                &format!(
                    "failed to allocate IP {ip}: the provided IP ({ip}) is not in the valid range. The range of valid IPs is {RANGE}"
                ),
            )),
            Some(ip) if ips.contains(&ip) => causes.push(invalid(
                "spec.clusterIPs",
                ip_list(&ip),
                &format!("failed to allocate IP {ip}: provided IP is already allocated"),
            )),
            Some(ip) => spec["clusterIPs"] = json!([ip]),
            None => {
                let free = (1..=65534u32).map(|n| format!("10.0.{}.{}", n / 256, n % 256)).find(|ip| !ips.contains(ip));
                if let Some(ip) = free {
                    spec["clusterIP"] = json!(ip);
                    spec["clusterIPs"] = json!([ip]);
                }
            }
        }
        spec["ipFamilies"] = json!(["IPv4"]);
        spec["ipFamilyPolicy"] = json!("SingleStack");
    }
    if needs_node_ports(spec) {
        let mut taken = ports;
        for (i, p) in spec["ports"].as_array_mut().into_iter().flatten().enumerate() {
            let field = format!("spec.ports[{i}].nodePort");
            match p["nodePort"].as_i64() {
                Some(n) if !NODE_PORTS.contains(&n) => causes.push(invalid(
                    &field,
                    n.to_string(),
                    "provided port is not in the valid range. The range of valid ports is 30000-32767",
                )),
                Some(n) if taken.contains(&n) => {
                    causes.push(invalid(&field, n.to_string(), "provided port is already allocated"));
                }
                Some(n) => {
                    taken.insert(n);
                }
                None => {
                    if let Some(n) = NODE_PORTS.clone().find(|n| !taken.contains(n)) {
                        taken.insert(n);
                        p["nodePort"] = json!(n);
                    }
                }
            }
        }
    }
    if causes.is_empty() { Ok(()) } else { Err(ApiError::invalid("", "Service", name, &causes)) }
}

/// On update: allocated values the new object leaves out are kept; a changed cluster IP is refused.
pub(crate) fn carry_over(old: &Value, new: &mut Value) -> Result<(), ApiError> {
    let (o, n) = (&old["spec"], &mut new["spec"]);
    if !needs_ip(o) || !needs_ip(n) {
        return Ok(());
    }
    let old_ip = o["clusterIP"].as_str().unwrap_or_default().to_string();
    match n["clusterIP"].as_str().filter(|ip| !ip.is_empty()) {
        None => {
            n["clusterIP"] = json!(old_ip);
            n["clusterIPs"] = o["clusterIPs"].clone();
        }
        Some(ip) if ip != old_ip => {
            let cause = invalid("spec.clusterIPs[0]", ip_list(ip), "may not change once set");
            return Err(ApiError::invalid("", "Service", meta_str(old, "name"), &[cause]));
        }
        Some(_) => {}
    }
    for key in ["ipFamilies", "ipFamilyPolicy"] {
        if n[key].is_null() {
            n[key] = o[key].clone();
        }
    }
    if needs_node_ports(o) && needs_node_ports(n) {
        let old_ports = o["ports"].as_array().cloned().unwrap_or_default();
        for p in n["ports"].as_array_mut().into_iter().flatten() {
            if p["nodePort"].is_null()
                && let Some(prev) = old_ports.iter().find(|q| q["port"] == p["port"] && protocol(q) == protocol(p))
            {
                p["nodePort"] = prev["nodePort"].clone();
            }
        }
    }
    Ok(())
}

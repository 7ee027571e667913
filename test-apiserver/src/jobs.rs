//! A Job's generated selector, as the real registry makes it: unless `spec.manualSelector`, the
//! pod template gets the `job-name` and `controller-uid` labels (legacy and
//! `batch.kubernetes.io/` forms) and the selector matches the new uid. Labels or a selector
//! carried over from another Job (a restore that did not drop them) name another uid and are
//! refused with the real messages.

use serde_json::{Value, json};

use crate::status::Cause;

const NAME_LABELS: [&str; 2] = ["job-name", "batch.kubernetes.io/job-name"];
const UID_LABELS: [&str; 2] = ["controller-uid", "batch.kubernetes.io/controller-uid"];
const SELECTOR_LABEL: &str = "batch.kubernetes.io/controller-uid";

/// Fills in the generated labels and selector of a new Job with `name` and `uid`; returns the
/// causes when what was given names another Job.
pub(crate) fn generate_selector(obj: &mut Value, name: &str, uid: &str) -> Vec<Cause> {
    let spec = &mut obj["spec"];
    if spec["manualSelector"] == true {
        return Vec::new();
    }
    let labels = &mut spec["template"]["metadata"]["labels"];
    for (keys, value) in [(NAME_LABELS, name), (UID_LABELS, uid)] {
        for k in keys {
            if labels[k].is_null() {
                labels[k] = json!(value);
            }
        }
    }
    if spec["selector"]["matchLabels"][SELECTOR_LABEL].is_null() {
        spec["selector"]["matchLabels"][SELECTOR_LABEL] = json!(uid);
    }
    let must = format!("must be '{uid}'");
    let mut causes = Vec::new();
    let selected = spec["selector"]["matchLabels"][SELECTOR_LABEL].as_str().unwrap_or_default();
    if selected != uid {
        causes.push(Cause::invalid(&format!("spec.selector.matchLabels[{SELECTOR_LABEL}]"), selected, &must));
    }
    for k in UID_LABELS {
        let given = spec["template"]["metadata"]["labels"][k].as_str().unwrap_or_default();
        if given != uid {
            causes.push(Cause::invalid(&format!("spec.template.metadata.labels[{k}]"), given, &must));
        }
    }
    causes
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_fresh_job_gets_its_selector_and_a_restored_one_must_drop_the_old() {
        let mut fresh = json!({"spec": {"template": {"metadata": {"labels": {"app": "x"}}}}});
        assert!(generate_selector(&mut fresh, "j", "u1").is_empty());
        assert_eq!(fresh["spec"]["selector"]["matchLabels"][SELECTOR_LABEL], "u1");
        assert_eq!(fresh["spec"]["template"]["metadata"]["labels"]["job-name"], "j");
        let mut restored = fresh.clone();
        let causes = generate_selector(&mut restored, "j", "u2");
        assert_eq!(causes.len(), 3);
        assert_eq!(causes[0].field, "spec.selector.matchLabels[batch.kubernetes.io/controller-uid]");
        assert_eq!(causes[0].message, "Invalid value: \"u1\": must be 'u2'");
        let mut manual = json!({"spec": {"manualSelector": true, "selector": {"matchLabels": {"a": "b"}}}});
        assert!(generate_selector(&mut manual, "j", "u3").is_empty());
        assert!(manual["spec"]["template"].is_null());
    }
}

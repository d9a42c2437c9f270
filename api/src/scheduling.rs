//! `scheduling.k8s.io/v1`: PriorityClass, a name for a pod priority. The coordinator's
//! admission resolves a pod's `priorityClassName` (or the cluster's global default) into
//! `spec.priority`, which orders the scheduling queue. skiff does not preempt: a pod of
//! high priority waits for room like any other, it does not evict pods of lower priority.

use crate::k8s_struct;
use crate::meta::ObjectMeta;
use crate::print::{age, Page, Print};
use crate::resource::{NameRule, Resource};
use crate::validate::Problems;

/// The highest priority a user's PriorityClass may have (Kubernetes'
/// `HighestUserDefinablePriority`); higher values belong to the system classes.
pub const HIGHEST_USER_PRIORITY: i32 = 1_000_000_000;

/// The classes every cluster has (Kubernetes creates them at start): name, value,
/// description.
pub const SYSTEM_CLASSES: [(&str, i32, &str); 2] = [
    (
        "system-node-critical",
        2_000_001_000,
        "Used for system critical pods that must not be moved from their current node.",
    ),
    (
        "system-cluster-critical",
        2_000_000_000,
        "Used for system critical pods that must run in the cluster, but can be moved to another node if necessary.",
    ),
];

/// The values of `preemptionPolicy`.
pub const PREEMPTION_POLICIES: [&str; 2] = ["PreemptLowerPriority", "Never"];

k8s_struct! {
    /// `schedulingv1.PriorityClass`.
    pub struct PriorityClass {
        /// `scheduling.k8s.io/v1`.
        pub api_version: String,
        /// `PriorityClass`.
        pub kind: String,
        /// Standard metadata.
        pub metadata: ObjectMeta,
        /// The priority pods of this class get.
        pub value: i32,
        /// Pods that name no class get this one's priority (at most one class).
        pub global_default: Option<bool>,
        /// What the class is for.
        pub description: Option<String>,
        /// `PreemptLowerPriority` (the default) or `Never`, copied into its pods.
        pub preemption_policy: Option<String>,
    }
}

impl PriorityClass {
    /// A system class from [`SYSTEM_CLASSES`].
    pub fn system(name: &str, value: i32, description: &str) -> PriorityClass {
        let mut pc = PriorityClass {
            api_version: "scheduling.k8s.io/v1".into(),
            kind: "PriorityClass".into(),
            value,
            description: Some(description.into()),
            ..Default::default()
        };
        pc.metadata.name = Some(name.into());
        pc.default_fields();
        pc
    }

    /// Whether it is the cluster's default.
    pub fn is_default(&self) -> bool {
        self.global_default == Some(true)
    }
}

impl Resource for PriorityClass {
    const NAME: NameRule = NameRule::Subdomain;

    fn default_fields(&mut self) {
        if self.preemption_policy.is_none() {
            self.preemption_policy = Some("PreemptLowerPriority".into());
        }
    }

    fn validate(&self, v: &mut Problems) {
        let name = self.metadata.name();
        if name.starts_with("system-") {
            let why = match SYSTEM_CLASSES.iter().find(|(n, ..)| *n == name) {
                None => Some(format!("{name} is not a known system priority class")),
                Some((_, value, _)) if self.value != *value => {
                    Some(format!("value of {name} PriorityClass must be {value}"))
                }
                Some(_) if self.is_default() => Some(format!(
                    "globalDefault of {name} PriorityClass must be false"
                )),
                Some(_) => None,
            };
            if let Some(why) = why {
                v.forbidden(
                    "metadata.name",
                    &format!("priority class names with 'system-' prefix are reserved for system use only. error: {why}"),
                );
            }
        } else if self.value > HIGHEST_USER_PRIORITY {
            v.forbidden(
                "value",
                &format!(
                    "maximum allowed value of a user defined priority is {HIGHEST_USER_PRIORITY}"
                ),
            );
        }
        v.one_of(
            "preemptionPolicy",
            &self.preemption_policy,
            &PREEMPTION_POLICIES,
        );
    }

    fn validate_update(&self, old: &Self, v: &mut Problems) {
        if self.value != old.value {
            v.forbidden("value", "may not be changed in an update.");
        }
        if self.preemption_policy != old.preemption_policy {
            v.invalid(
                "preemptionPolicy",
                format!("{:?}", self.preemption_policy.as_deref().unwrap_or("")),
                "field is immutable",
            );
        }
    }
}

impl Print for PriorityClass {
    fn columns(_wide: bool) -> Vec<&'static str> {
        vec!["NAME", "VALUE", "GLOBAL-DEFAULT", "AGE", "PREEMPTIONPOLICY"]
    }

    fn row(&self, _wide: bool, now: u64) -> Vec<String> {
        vec![
            self.metadata.name().to_string(),
            self.value.to_string(),
            self.is_default().to_string(),
            age(self.metadata.creation_timestamp.as_deref(), now),
            self.preemption_policy.clone().unwrap_or_default(),
        ]
    }

    fn describe(&self, page: &mut Page) {
        page.field(0, "Value", &self.value.to_string());
        page.field(0, "GlobalDefault", &self.is_default().to_string());
        page.field(
            0,
            "PreemptionPolicy",
            self.preemption_policy.as_deref().unwrap_or(""),
        );
        page.field(0, "Description", self.description.as_deref().unwrap_or(""));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::manifest::parse_manifests;

    fn class(name: &str, value: i64, extra: &str) -> String {
        format!("apiVersion: scheduling.k8s.io/v1\nkind: PriorityClass\nmetadata:\n  name: {name}\nvalue: {value}\n{extra}")
    }

    #[test]
    fn the_docs_class_is_read_defaulted_and_printed() {
        let m = parse_manifests(&class(
            "high-priority",
            1000000,
            "globalDefault: false\ndescription: \"This priority class should be used for XYZ service pods only.\"\n",
        ))
        .unwrap();
        let crate::object::Object::PriorityClass(pc) = &m[0].object else {
            panic!("{:?}", m[0].object.kind())
        };
        let mut pc = pc.clone();
        pc.default_fields();
        assert_eq!(pc.value, 1_000_000);
        assert_eq!(
            pc.preemption_policy.as_deref(),
            Some("PreemptLowerPriority")
        );
        assert_eq!(pc.row(false, 0)[..3], ["high-priority", "1000000", "false"]);
    }

    #[test]
    fn reserved_names_and_values_are_refused() {
        for (doc, want) in [
            (
                class("too-high", 1_000_000_001, ""),
                "value: Forbidden: maximum allowed value of a user defined priority is 1000000000",
            ),
            (
                class("system-mine", 10, ""),
                "metadata.name: Forbidden: priority class names with 'system-' prefix are reserved for system use only. error: system-mine is not a known system priority class",
            ),
            (
                class("system-node-critical", 10, ""),
                "error: value of system-node-critical PriorityClass must be 2000001000",
            ),
            (
                class("p", 10, "preemptionPolicy: Sometimes\n"),
                "preemptionPolicy: Unsupported value: \"Sometimes\"",
            ),
        ] {
            let e = parse_manifests(&doc).unwrap_err();
            assert!(e.errors.iter().any(|x| x.contains(want)), "{want}: {e}");
        }
        parse_manifests(&class("system-node-critical", 2_000_001_000, "")).unwrap();
    }
}

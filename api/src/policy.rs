//! `policy/v1`: PodDisruptionBudget, how many of a set of pods voluntary disruptions
//! (a drain, an eviction) must leave running. The coordinator's disruption controller
//! keeps its status; evictions spend it.

use crate::k8s_struct;
use crate::meta::{Condition, ObjectMeta};
use crate::print::{age, selector_str, Page, Print};
use crate::resource::{NameRule, Resource};
use crate::selector::LabelSelector;
use crate::validate::Problems;
use crate::IntOrString;
use std::collections::BTreeMap;

k8s_struct! {
    /// `policyv1.PodDisruptionBudget`.
    pub struct PodDisruptionBudget {
        /// `policy/v1`.
        pub api_version: String,
        /// `PodDisruptionBudget`.
        pub kind: String,
        /// Standard metadata.
        pub metadata: ObjectMeta,
        /// The desired budget.
        pub spec: PodDisruptionBudgetSpec,
        /// The observed budget.
        pub status: Option<PodDisruptionBudgetStatus>,
    }
}

k8s_struct! {
    /// `policyv1.PodDisruptionBudgetSpec`.
    pub struct PodDisruptionBudgetSpec {
        /// Pods that must stay available (a count or a percentage); exclusive with
        /// `maxUnavailable`.
        pub min_available: Option<IntOrString>,
        /// Pods that may be unavailable (a count or a percentage).
        pub max_unavailable: Option<IntOrString>,
        /// The pods the budget covers.
        pub selector: Option<LabelSelector>,
        /// `IfHealthyBudget` or `AlwaysAllow`.
        pub unhealthy_pod_eviction_policy: Option<String>,
    }
}

k8s_struct! {
    /// `policyv1.PodDisruptionBudgetStatus`.
    pub struct PodDisruptionBudgetStatus {
        /// The generation observed.
        pub observed_generation: Option<i64>,
        /// Pods whose deletion was allowed and that are not gone yet.
        pub disrupted_pods: BTreeMap<String, String>,
        /// How many disruptions are allowed now.
        pub disruptions_allowed: Option<i32>,
        /// Healthy pods now.
        pub current_healthy: Option<i32>,
        /// Healthy pods the budget wants.
        pub desired_healthy: Option<i32>,
        /// Pods the budget counts.
        pub expected_pods: Option<i32>,
        /// `DisruptionAllowed`.
        pub conditions: Vec<Condition>,
    }
}

const EVICTION_POLICIES: [&str; 2] = ["IfHealthyBudget", "AlwaysAllow"];

impl Resource for PodDisruptionBudget {
    const NAME: NameRule = NameRule::Subdomain;

    fn default_fields(&mut self) {}

    fn validate(&self, v: &mut Problems) {
        let s = &self.spec;
        if s.min_available.is_some() && s.max_unavailable.is_some() {
            v.invalid(
                "spec",
                "{...}",
                "minAvailable and maxUnavailable cannot be both set",
            );
        }
        v.int_or_percent("spec.minAvailable", &s.min_available);
        v.int_or_percent("spec.maxUnavailable", &s.max_unavailable);
        if let Some(sel) = &s.selector {
            v.selector("spec.selector", sel);
        }
        v.one_of(
            "spec.unhealthyPodEvictionPolicy",
            &s.unhealthy_pod_eviction_policy,
            &EVICTION_POLICIES,
        );
    }

    fn validate_update(&self, _old: &Self, _v: &mut Problems) {}
}

fn cell(x: &Option<IntOrString>) -> String {
    x.as_ref()
        .map_or_else(|| "N/A".to_string(), |x| x.to_string())
}

impl Print for PodDisruptionBudget {
    fn columns(_wide: bool) -> Vec<&'static str> {
        vec![
            "NAME",
            "MIN AVAILABLE",
            "MAX UNAVAILABLE",
            "ALLOWED DISRUPTIONS",
            "AGE",
        ]
    }

    fn row(&self, _wide: bool, now: u64) -> Vec<String> {
        let allowed = self.status.as_ref().and_then(|s| s.disruptions_allowed);
        vec![
            self.metadata.name().to_string(),
            cell(&self.spec.min_available),
            cell(&self.spec.max_unavailable),
            allowed.unwrap_or(0).to_string(),
            age(self.metadata.creation_timestamp.as_deref(), now),
        ]
    }

    fn describe(&self, page: &mut Page) {
        if let Some(m) = &self.spec.min_available {
            page.field(0, "Min available", &m.to_string());
        }
        if let Some(m) = &self.spec.max_unavailable {
            page.field(0, "Max unavailable", &m.to_string());
        }
        page.field(0, "Selector", &selector_str(self.spec.selector.as_ref()));
        let st = self.status.clone().unwrap_or_default();
        page.line("Status:");
        page.line(&format!(
            "    Allowed disruptions:  {}",
            st.disruptions_allowed.unwrap_or(0)
        ));
        page.line(&format!(
            "    Current:              {}",
            st.current_healthy.unwrap_or(0)
        ));
        page.line(&format!(
            "    Desired:              {}",
            st.desired_healthy.unwrap_or(0)
        ));
        page.line(&format!(
            "    Total:                {}",
            st.expected_pods.unwrap_or(0)
        ));
    }
}

#[cfg(test)]
mod tests {
    use crate::manifest::parse_manifests;
    use crate::object::{Kind, Object};

    const ZK: &str = "apiVersion: policy/v1\nkind: PodDisruptionBudget\nmetadata:\n  name: zk-pdb\nspec:\n  minAvailable: 2\n  selector:\n    matchLabels:\n      app: zookeeper\n";

    #[test]
    fn the_documentation_budget_applies_and_prints() {
        let docs = parse_manifests(ZK).unwrap();
        let o = &docs[0].object;
        assert_eq!(o.kind(), Kind::PodDisruptionBudget);
        assert_eq!(Kind::from_name("pdb"), Some(Kind::PodDisruptionBudget));
        assert_eq!(o.kind().qualified(), "poddisruptionbudget.policy");
        assert_eq!(o.row(false, 0)[..4], ["zk-pdb", "2", "N/A", "0"]);
        let page = o.describe().into_string();
        assert!(page.contains("Min available:      2\n"), "{page}");
        assert!(
            page.contains("Selector:           app=zookeeper\n"),
            "{page}"
        );
        // A spec and a status: generation counts spec changes; status is written apart.
        let info = o.kind().info();
        assert!(info.has_spec && info.has_status && info.namespaced);
        let mut other = o.clone();
        if let Object::PodDisruptionBudget(p) = &mut other {
            p.spec.min_available = Some(crate::IntOrString::String("50%".into()));
        }
        assert_eq!(o.same_spec(&other), Some(false));
    }

    #[test]
    fn bad_budgets_name_the_field() {
        for (doc, want) in [
            (
                ZK.replace(
                    "  minAvailable: 2\n",
                    "  minAvailable: 2\n  maxUnavailable: 1\n",
                ),
                "spec: Invalid value: {...}: minAvailable and maxUnavailable cannot be both set",
            ),
            (
                ZK.replace("minAvailable: 2", "minAvailable: 150%"),
                "spec.minAvailable: Invalid value: \"150%\": must not be greater than 100%",
            ),
            (
                ZK.replace("minAvailable: 2", "maxUnavailable: -1"),
                "spec.maxUnavailable: Invalid value: -1: must be greater than or equal to 0",
            ),
            (
                format!("{ZK}  unhealthyPodEvictionPolicy: Sometimes\n"),
                "spec.unhealthyPodEvictionPolicy: Unsupported value: \"Sometimes\"",
            ),
        ] {
            let e = parse_manifests(&doc).unwrap_err().to_string();
            assert!(e.contains(want), "want {want:?} in {e}");
        }
    }
}

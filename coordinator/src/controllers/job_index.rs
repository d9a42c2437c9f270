//! What a Job's failed pods mean and where an Indexed Job stands, as Kubernetes' Job
//! controller reads them. Pure: the pods and the Job in, verdicts and index sets out.
//!
//! - A failed pod is judged by the Job's `podFailurePolicy`, first matching rule first:
//!   `FailJob` ends the Job, `Ignore` does not count it, `FailIndex` gives up its index,
//!   `Count` (and no match) counts it against the back-off limits.
//! - An Indexed Job's pod carries its index (annotation and label
//!   `batch.kubernetes.io/job-completion-index`); an index is completed once a pod of it
//!   succeeded, and failed once its counted failures exceed `backoffLimitPerIndex` (or a
//!   `FailIndex` rule matched).

use skiff_api::pod::Pod;
use skiff_api::workloads::{parse_indexes, Job, PodFailurePolicyRule, JOB_COMPLETION_INDEX};
use std::collections::{BTreeMap, BTreeSet};

/// What a failed pod means for its Job.
#[derive(Clone, Debug, PartialEq)]
pub enum Verdict {
    /// The Job fails, with this message.
    FailJob(String),
    /// Its index is given up (and the failure counted).
    FailIndex,
    /// It does not count.
    Ignore,
    /// It counts against the back-off limits.
    Count,
}

/// The index an Indexed Job's pod runs.
pub fn index_of(p: &Pod) -> Option<i32> {
    p.metadata
        .annotations
        .get(JOB_COMPLETION_INDEX)
        .or_else(|| p.metadata.labels.get(JOB_COMPLETION_INDEX))
        .and_then(|v| v.parse().ok())
}

/// Whether one rule matches a failed pod; the message a `FailJob` would carry.
fn matches(rule: &PodFailurePolicyRule, i: usize, p: &Pod) -> Option<String> {
    let st = p.status.as_ref()?;
    let who = format!("{}/{}", p.metadata.namespace(), p.metadata.name());
    if let Some(e) = &rule.on_exit_codes {
        let containers = st
            .container_statuses
            .iter()
            .chain(&st.init_container_statuses);
        for c in containers {
            if e.container_name.as_deref().is_some_and(|n| n != c.name) {
                continue;
            }
            let Some(code) = c
                .state
                .as_ref()
                .and_then(|s| s.terminated.as_ref())
                .and_then(|t| t.exit_code)
                .filter(|code| *code != 0)
            else {
                continue;
            };
            let listed = e.values.contains(&code);
            if listed == (e.operator == "In") {
                return Some(format!(
                    "Container {} for pod {who} failed with exit code {code} matching {} rule at index {i}",
                    c.name, rule.action
                ));
            }
        }
        return None;
    }
    rule.on_pod_conditions.iter().find_map(|want| {
        let status = want.status.as_deref().unwrap_or("True");
        st.conditions
            .iter()
            .any(|c| c.type_ == want.type_ && c.status == status)
            .then(|| {
                format!(
                    "Pod {who} has condition {} matching {} rule at index {i}",
                    want.type_, rule.action
                )
            })
    })
}

/// A failed pod judged by the Job's pod failure policy.
pub fn verdict(j: &Job, p: &Pod) -> Verdict {
    let Some(policy) = &j.spec.pod_failure_policy else {
        return Verdict::Count;
    };
    for (i, rule) in policy.rules.iter().enumerate() {
        if let Some(msg) = matches(rule, i, p) {
            return match rule.action.as_str() {
                "FailJob" => Verdict::FailJob(msg),
                "FailIndex" => Verdict::FailIndex,
                "Ignore" => Verdict::Ignore,
                _ => Verdict::Count,
            };
        }
    }
    Verdict::Count
}

/// Where an Indexed Job's indexes stand.
#[derive(Debug, Default, PartialEq)]
pub struct Indexes {
    /// Indexes a pod of which succeeded.
    pub completed: BTreeSet<i32>,
    /// Indexes given up.
    pub failed: BTreeSet<i32>,
    /// Counted failures per index.
    pub failures: BTreeMap<i32, i32>,
}

/// The indexes of an Indexed Job from its pods (`judged`: each failed pod's verdict).
pub fn indexes(j: &Job, succeeded: &[&Pod], judged: &[(&Pod, Verdict)]) -> Indexes {
    let completions = j.spec.completions.unwrap_or(0);
    let in_range = |i: &i32| (0..completions).contains(i);
    let mut ix = Indexes {
        completed: succeeded
            .iter()
            .filter_map(|p| index_of(p))
            .filter(in_range)
            .collect(),
        ..Default::default()
    };
    for (p, v) in judged {
        let Some(i) = index_of(p).filter(in_range) else {
            continue;
        };
        if ix.completed.contains(&i) {
            continue;
        }
        match v {
            Verdict::Ignore | Verdict::FailJob(_) => {}
            Verdict::Count => *ix.failures.entry(i).or_default() += 1,
            Verdict::FailIndex => {
                *ix.failures.entry(i).or_default() += 1;
                ix.failed.insert(i);
            }
        }
    }
    if let Some(limit) = j.spec.backoff_limit_per_index {
        for (i, n) in &ix.failures {
            if *n > limit {
                ix.failed.insert(*i);
            }
        }
    }
    ix
}

/// The first success policy rule the completed indexes meet, by its position.
pub fn success_rule(j: &Job, completed: &BTreeSet<i32>) -> Option<usize> {
    let completions = j.spec.completions.unwrap_or(0);
    let rules = &j.spec.success_policy.as_ref()?.rules;
    rules.iter().position(|r| {
        let within = match &r.succeeded_indexes {
            Some(s) => match parse_indexes(s, completions) {
                Ok(set) => set,
                Err(_) => return false,
            },
            None => (0..completions).collect(),
        };
        let done = within.intersection(completed).count() as i32;
        match r.succeeded_count {
            Some(c) => done >= c,
            None => done == within.len() as i32,
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn job(spec: serde_json::Value) -> Job {
        let mut j: Job =
            serde_json::from_value(json!({"metadata": {"name": "j"}, "spec": spec})).unwrap();
        skiff_api::resource::Resource::default_fields(&mut j);
        j
    }

    fn failed(index: i32, code: i32, conditions: &[&str]) -> Pod {
        let conds: Vec<serde_json::Value> = conditions
            .iter()
            .map(|t| json!({"type": t, "status": "True"}))
            .collect();
        serde_json::from_value(json!({
            "metadata": {"name": format!("j-{index}-x"), "namespace": "ns",
                         "annotations": {JOB_COMPLETION_INDEX: index.to_string()}},
            "status": {"phase": "Failed", "conditions": conds,
                "containerStatuses": [{"name": "main", "state": {"terminated": {"exitCode": code}}}]}
        }))
        .unwrap()
    }

    #[test]
    fn the_docs_pod_failure_policy_judges_failures() {
        // job-pod-failure-policy-example.yaml: exit 42 fails the Job, disruptions are
        // ignored, anything else counts.
        let j = job(
            json!({"template": {"spec": {"restartPolicy": "Never", "containers": [{"name": "main", "image": "x"}]}},
            "podFailurePolicy": {"rules": [
                {"action": "FailJob", "onExitCodes": {"containerName": "main", "operator": "In", "values": [42]}},
                {"action": "Ignore", "onPodConditions": [{"type": "DisruptionTarget"}]}]}}),
        );
        assert_eq!(
            verdict(&j, &failed(0, 42, &[])),
            Verdict::FailJob("Container main for pod ns/j-0-x failed with exit code 42 matching FailJob rule at index 0".into())
        );
        assert_eq!(
            verdict(&j, &failed(0, 137, &["DisruptionTarget"])),
            Verdict::Ignore
        );
        assert_eq!(verdict(&j, &failed(0, 1, &[])), Verdict::Count);
        let not_in = job(json!({"podFailurePolicy": {"rules": [
            {"action": "Ignore", "onExitCodes": {"operator": "NotIn", "values": [1, 2]}}]}}));
        assert_eq!(verdict(&not_in, &failed(0, 3, &[])), Verdict::Ignore);
        assert_eq!(verdict(&not_in, &failed(0, 2, &[])), Verdict::Count);
    }

    #[test]
    fn indexes_complete_fail_per_index_and_meet_success_policies() {
        // job-backoff-limit-per-index-example.yaml's shape: 10 indexes, one retry each.
        let j = job(json!({"completions": 10, "completionMode": "Indexed",
            "backoffLimitPerIndex": 1, "maxFailedIndexes": 5,
            "successPolicy": {"rules": [{"succeededIndexes": "0-2", "succeededCount": 2}]}}));
        assert_eq!(
            j.spec.backoff_limit,
            Some(i32::MAX),
            "no Job-wide limit then"
        );
        let ok = |i: i32| -> Pod {
            serde_json::from_value(
                json!({"metadata": {"labels": {JOB_COMPLETION_INDEX: i.to_string()}},
                "status": {"phase": "Succeeded"}}),
            )
            .unwrap()
        };
        let (s1, s3, s12) = (ok(1), ok(3), ok(12));
        let f2a = failed(2, 1, &[]);
        let f2b = failed(2, 1, &[]);
        let f4 = failed(4, 1, &[]);
        let judged = [
            (&f2a, Verdict::Count),
            (&f2b, Verdict::Count),
            (&f4, Verdict::Count),
        ];
        let ix = indexes(&j, &[&s1, &s3, &s12], &judged);
        assert_eq!(ix.completed, BTreeSet::from([1, 3]), "12 is out of range");
        assert_eq!(
            ix.failed,
            BTreeSet::from([2]),
            "two failures > 1 for index 2"
        );
        assert_eq!(ix.failures[&4], 1);
        assert_eq!(skiff_api::workloads::format_indexes(&ix.completed), "1,3");
        // Two of 0-2 must succeed: only 1 did; with 0 as well the rule is met.
        assert_eq!(success_rule(&j, &ix.completed), None);
        assert_eq!(success_rule(&j, &BTreeSet::from([0, 1])), Some(0));
        let f5 = failed(5, 1, &[]);
        let ix = indexes(&j, &[], &[(&f5, Verdict::FailIndex)]);
        assert_eq!(ix.failed, BTreeSet::from([5]));
    }
}

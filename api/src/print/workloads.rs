//! ReplicaSets, Deployments, DaemonSets, StatefulSets, Jobs and CronJobs.

use super::pod::containers;
use super::{age, human_duration, map_str, n, selector_str, Page, Print};
use crate::selector::LabelSelector;
use crate::util::parse_rfc3339;
use crate::workloads::{
    CronJob, DaemonSet, Deployment, Job, PodTemplateSpec, ReplicaSet, StatefulSet,
};

/// `-o wide`'s columns for every workload.
const WIDE: [&str; 3] = ["CONTAINERS", "IMAGES", "SELECTOR"];

fn columns(base: &[&'static str], wide: bool) -> Vec<&'static str> {
    let mut h = base.to_vec();
    if wide {
        h.extend(WIDE);
    }
    h
}

/// CONTAINERS, IMAGES and SELECTOR of a workload.
fn wide_cells(t: &PodTemplateSpec, sel: Option<&LabelSelector>) -> [String; 3] {
    let cs = &t.spec.containers;
    let names: Vec<&str> = cs.iter().map(|c| c.name.as_str()).collect();
    let images: Vec<&str> = cs
        .iter()
        .map(|c| c.image.as_deref().unwrap_or(""))
        .collect();
    [names.join(","), images.join(","), selector_str(sel)]
}

fn finish(
    mut r: Vec<String>,
    wide: bool,
    t: &PodTemplateSpec,
    sel: Option<&LabelSelector>,
) -> Vec<String> {
    if wide {
        r.extend(wide_cells(t, sel));
    }
    r
}

/// The selector and the pod template, around what the kind adds between them.
fn describe_workload(
    page: &mut Page,
    sel: Option<&LabelSelector>,
    t: &PodTemplateSpec,
    middle: impl FnOnce(&mut Page),
) {
    page.field(0, "Selector", &selector_str(sel));
    middle(page);
    page.line("Pod Template:");
    page.map(2, "Labels", &t.metadata.labels);
    containers(page, &t.spec, None, 2);
}

impl Print for Deployment {
    fn columns(wide: bool) -> Vec<&'static str> {
        columns(&["NAME", "READY", "UP-TO-DATE", "AVAILABLE", "AGE"], wide)
    }

    fn row(&self, wide: bool, now: u64) -> Vec<String> {
        let st = self.status.clone().unwrap_or_default();
        let r = vec![
            self.metadata.name().to_string(),
            format!("{}/{}", n(st.ready_replicas), n(self.spec.replicas)),
            n(st.updated_replicas),
            n(st.available_replicas),
            age(self.metadata.creation_timestamp.as_deref(), now),
        ];
        finish(r, wide, &self.spec.template, self.spec.selector.as_ref())
    }

    fn describe(&self, page: &mut Page) {
        let st = self.status.clone().unwrap_or_default();
        describe_workload(
            page,
            self.spec.selector.as_ref(),
            &self.spec.template,
            |page| {
                page.field(
                    0,
                    "Replicas",
                    &format!(
                        "{} desired | {} updated | {} total | {} available | {} unavailable",
                        n(self.spec.replicas),
                        n(st.updated_replicas),
                        n(st.replicas),
                        n(st.available_replicas),
                        n(st.unavailable_replicas)
                    ),
                );
                let strategy = self.spec.strategy.clone().unwrap_or_default();
                page.field(0, "StrategyType", strategy.type_.as_deref().unwrap_or(""));
                if let Some(ru) = &strategy.rolling_update {
                    let s = |x: &Option<crate::IntOrString>| {
                        x.as_ref()
                            .map_or_else(|| "<none>".to_string(), |x| x.to_string())
                    };
                    page.field(
                        0,
                        "RollingUpdateStrategy",
                        &format!(
                            "{} max unavailable, {} max surge",
                            s(&ru.max_unavailable),
                            s(&ru.max_surge)
                        ),
                    );
                }
            },
        );
    }
}

impl Print for ReplicaSet {
    fn columns(wide: bool) -> Vec<&'static str> {
        columns(&["NAME", "DESIRED", "CURRENT", "READY", "AGE"], wide)
    }

    fn row(&self, wide: bool, now: u64) -> Vec<String> {
        let st = self.status.clone().unwrap_or_default();
        let r = vec![
            self.metadata.name().to_string(),
            n(self.spec.replicas),
            n(st.replicas),
            n(st.ready_replicas),
            age(self.metadata.creation_timestamp.as_deref(), now),
        ];
        finish(r, wide, &self.spec.template, self.spec.selector.as_ref())
    }

    fn describe(&self, page: &mut Page) {
        let st = self.status.clone().unwrap_or_default();
        describe_workload(
            page,
            self.spec.selector.as_ref(),
            &self.spec.template,
            |page| {
                page.field(
                    0,
                    "Replicas",
                    &format!(
                        "{} current / {} desired",
                        n(st.replicas),
                        n(self.spec.replicas)
                    ),
                );
            },
        );
    }
}

impl Print for StatefulSet {
    fn columns(wide: bool) -> Vec<&'static str> {
        columns(&["NAME", "READY", "AGE"], wide)
    }

    fn row(&self, wide: bool, now: u64) -> Vec<String> {
        let st = self.status.clone().unwrap_or_default();
        let r = vec![
            self.metadata.name().to_string(),
            format!("{}/{}", n(st.ready_replicas), n(self.spec.replicas)),
            age(self.metadata.creation_timestamp.as_deref(), now),
        ];
        finish(r, wide, &self.spec.template, self.spec.selector.as_ref())
    }

    fn describe(&self, page: &mut Page) {
        let st = self.status.clone().unwrap_or_default();
        describe_workload(
            page,
            self.spec.selector.as_ref(),
            &self.spec.template,
            |page| {
                page.field(
                    0,
                    "Replicas",
                    &format!(
                        "{} current / {} desired",
                        n(st.replicas),
                        n(self.spec.replicas)
                    ),
                );
            },
        );
    }
}

impl Print for DaemonSet {
    fn columns(wide: bool) -> Vec<&'static str> {
        columns(
            &[
                "NAME",
                "DESIRED",
                "CURRENT",
                "READY",
                "UP-TO-DATE",
                "AVAILABLE",
                "NODE SELECTOR",
                "AGE",
            ],
            wide,
        )
    }

    fn row(&self, wide: bool, now: u64) -> Vec<String> {
        let st = self.status.clone().unwrap_or_default();
        let r = vec![
            self.metadata.name().to_string(),
            n(st.desired_number_scheduled),
            n(st.current_number_scheduled),
            n(st.number_ready),
            n(st.updated_number_scheduled),
            n(st.number_available),
            map_str(&self.spec.template.spec.node_selector),
            age(self.metadata.creation_timestamp.as_deref(), now),
        ];
        finish(r, wide, &self.spec.template, self.spec.selector.as_ref())
    }

    fn describe(&self, page: &mut Page) {
        let st = self.status.clone().unwrap_or_default();
        describe_workload(
            page,
            self.spec.selector.as_ref(),
            &self.spec.template,
            |page| {
                page.field(
                    0,
                    "Desired Number of Nodes Scheduled",
                    &n(st.desired_number_scheduled),
                );
                page.field(
                    0,
                    "Current Number of Nodes Scheduled",
                    &n(st.current_number_scheduled),
                );
            },
        );
    }
}

/// A Job's STATUS column.
fn job_status(j: &Job) -> &'static str {
    let conds = j
        .status
        .as_ref()
        .map(|s| s.conditions.as_slice())
        .unwrap_or(&[]);
    let has = |t: &str| conds.iter().any(|c| c.type_ == t && c.status == "True");
    if has("Complete") {
        "Complete"
    } else if has("Failed") {
        "Failed"
    } else if j.spec.suspend == Some(true) {
        "Suspended"
    } else {
        "Running"
    }
}

impl Print for Job {
    fn columns(wide: bool) -> Vec<&'static str> {
        columns(&["NAME", "STATUS", "COMPLETIONS", "DURATION", "AGE"], wide)
    }

    fn row(&self, wide: bool, now: u64) -> Vec<String> {
        let st = self.status.clone().unwrap_or_default();
        let start = st.start_time.as_deref().and_then(parse_rfc3339);
        let end = st
            .completion_time
            .as_deref()
            .and_then(parse_rfc3339)
            .unwrap_or(now);
        let duration = start
            .map(|s| human_duration(end.saturating_sub(s)))
            .unwrap_or_default();
        let r = vec![
            self.metadata.name().to_string(),
            job_status(self).into(),
            format!("{}/{}", n(st.succeeded), self.spec.completions.unwrap_or(1)),
            duration,
            age(self.metadata.creation_timestamp.as_deref(), now),
        ];
        finish(r, wide, &self.spec.template, self.spec.selector.as_ref())
    }

    fn describe(&self, page: &mut Page) {
        let st = self.status.clone().unwrap_or_default();
        describe_workload(
            page,
            self.spec.selector.as_ref(),
            &self.spec.template,
            |page| {
                page.field(0, "Parallelism", &n(self.spec.parallelism));
                page.field(0, "Completions", &n(self.spec.completions));
                page.field(
                    0,
                    "Pods Statuses",
                    &format!(
                        "{} Active / {} Succeeded / {} Failed",
                        n(st.active),
                        n(st.succeeded),
                        n(st.failed)
                    ),
                );
            },
        );
    }
}

impl Print for CronJob {
    fn columns(wide: bool) -> Vec<&'static str> {
        columns(
            &[
                "NAME",
                "SCHEDULE",
                "TIMEZONE",
                "SUSPEND",
                "ACTIVE",
                "LAST SCHEDULE",
                "AGE",
            ],
            wide,
        )
    }

    fn row(&self, wide: bool, now: u64) -> Vec<String> {
        let st = self.status.clone().unwrap_or_default();
        let s = &self.spec;
        let r = vec![
            self.metadata.name().to_string(),
            s.schedule.clone(),
            s.time_zone.clone().unwrap_or_else(|| "<none>".into()),
            pascal_bool(s.suspend.unwrap_or(false)).into(),
            st.active.len().to_string(),
            st.last_schedule_time
                .as_deref()
                .map_or_else(|| "<none>".into(), |t| age(Some(t), now)),
            age(self.metadata.creation_timestamp.as_deref(), now),
        ];
        finish(
            r,
            wide,
            &s.job_template.spec.template,
            s.job_template.spec.selector.as_ref(),
        )
    }

    fn describe(&self, page: &mut Page) {
        let s = &self.spec;
        let st = self.status.clone().unwrap_or_default();
        let unset = |x: Option<String>| x.unwrap_or_else(|| "<unset>".into());
        page.field(0, "Schedule", &s.schedule);
        page.field(0, "Time Zone", &unset(s.time_zone.clone()));
        page.field(
            0,
            "Concurrency Policy",
            s.concurrency_policy.as_deref().unwrap_or("Allow"),
        );
        page.field(0, "Suspend", pascal_bool(s.suspend.unwrap_or(false)));
        page.field(
            0,
            "Successful Job History Limit",
            &n(s.successful_jobs_history_limit),
        );
        page.field(
            0,
            "Failed Job History Limit",
            &n(s.failed_jobs_history_limit),
        );
        page.field(
            0,
            "Starting Deadline Seconds",
            &unset(s.starting_deadline_seconds.map(|d| format!("{d}s"))),
        );
        let j = &s.job_template.spec;
        describe_workload(page, j.selector.as_ref(), &j.template, |page| {
            page.field(
                0,
                "Parallelism",
                &unset(j.parallelism.map(|x| x.to_string())),
            );
            page.field(
                0,
                "Completions",
                &unset(j.completions.map(|x| x.to_string())),
            );
        });
        page.field(
            0,
            "Last Schedule Time",
            st.last_schedule_time.as_deref().unwrap_or("<unset>"),
        );
        let active: Vec<&str> = st.active.iter().filter_map(|r| r.name.as_deref()).collect();
        page.field(
            0,
            "Active Jobs",
            if active.is_empty() {
                "<none>".to_string()
            } else {
                active.join(", ")
            }
            .as_str(),
        );
    }
}

/// `True` / `False`, as kubectl prints booleans.
fn pascal_bool(b: bool) -> &'static str {
    if b {
        "True"
    } else {
        "False"
    }
}

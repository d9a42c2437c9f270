//! The HorizontalPodAutoscaler's arithmetic, as Kubernetes does it (the controller's
//! replica calculator and its normalization): a replica count proposed from the pods'
//! resource figures, then stabilized over recent recommendations and limited by the
//! scaling policies. Pure: the pods, the figures, the history and the time are arguments.

/// Kubernetes' default tolerance: no scaling while the ratio is within 10 % of 1.
pub const TOLERANCE: f64 = 0.1;
/// A pod younger than this may still be warming up: its CPU counts only once it is Ready
/// and a whole metric window has passed since (`--horizontal-pod-autoscaler-cpu-initialization-period`).
pub const CPU_INITIALIZATION_SECS: u64 = 300;
/// A pod that became unready within this long of starting is taken as never ready yet.
pub const INITIAL_READINESS_DELAY_SECS: u64 = 30;

/// What the calculator needs to know of one pod.
#[derive(Debug, Clone, PartialEq)]
pub struct PodSample {
    /// The pod's name.
    pub name: String,
    /// Being deleted, Failed or Succeeded: not counted at all.
    pub ignored: bool,
    /// Pending.
    pub pending: bool,
    /// Its Ready condition: status and last transition (unix seconds); none if absent.
    pub ready: Option<(bool, u64)>,
    /// `status.startTime` (unix seconds).
    pub started: Option<u64>,
    /// The sum of its containers' requests of the resource (millicores or bytes), or the
    /// first container without one.
    pub request: Result<u64, String>,
    /// Its figure (millicores or bytes), when and over which window (seconds) it was
    /// measured.
    pub usage: Option<(u64, u64, u64)>,
}

/// A resource metric's target.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Target {
    /// Percent of the pods' requests.
    Utilization(i64),
    /// Per-pod average (millicores or bytes).
    AverageValue(u64),
}

/// A metric's proposal: replicas, and the figures the status reports.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Proposal {
    /// Replicas this metric asks for.
    pub replicas: i32,
    /// Average utilization (percent of requests), for a Utilization target.
    pub utilization: Option<i64>,
    /// Average per pod (millicores or bytes).
    pub average: u64,
}

/// The replicas one resource metric asks for (Kubernetes' `GetResourceReplicas` and
/// `GetRawResourceReplicas`). `cpu` turns on the warm-up rules for unready pods.
pub fn replicas_for(
    current: i32,
    target: Target,
    pods: &[PodSample],
    cpu: bool,
    now: u64,
) -> Result<Proposal, String> {
    if pods.is_empty() {
        return Err("no pods match the target's selector".into());
    }
    // (name, figure, request) of the pods whose figures count.
    let mut metrics: Vec<(&str, u64)> = Vec::new();
    let (mut unready, mut missing, mut ready_count) = (Vec::new(), Vec::new(), 0);
    for p in pods {
        if p.ignored {
            continue;
        }
        if p.pending {
            unready.push(p);
            continue;
        }
        let Some((value, at, window)) = p.usage else {
            missing.push(p);
            continue;
        };
        if cpu && !counts_as_ready(p, at, window, now) {
            unready.push(p);
            continue;
        }
        ready_count += 1;
        metrics.push((&p.name, value));
    }
    if metrics.is_empty() {
        return Err("did not receive metrics for targeted pods (pods might be unready)".into());
    }
    let requests = |name: &str| -> Result<u64, String> {
        let p = pods
            .iter()
            .find(|p| p.name == name)
            .expect("a pod of the list");
        p.request.clone()
    };
    let ratio = |metrics: &[(&str, u64)]| -> Result<(f64, Option<i64>, u64), String> {
        let total: u64 = metrics.iter().map(|(_, v)| v).sum();
        let average = total / metrics.len() as u64;
        match target {
            Target::Utilization(t) => {
                let mut req = 0;
                for (n, _) in metrics {
                    req += requests(n)?;
                }
                if req == 0 {
                    return Err("no metrics returned matched known pods".into());
                }
                let u = (total * 100 / req) as i64;
                Ok((u as f64 / t as f64, Some(u), average))
            }
            Target::AverageValue(t) => Ok((average as f64 / t.max(1) as f64, None, average)),
        }
    };
    let (usage_ratio, utilization, average) = ratio(&metrics)?;
    let proposal = |replicas| Proposal {
        replicas,
        utilization,
        average,
    };
    let scale_up_with_unready = !unready.is_empty() && usage_ratio > 1.0;
    if !scale_up_with_unready && missing.is_empty() {
        if (1.0 - usage_ratio).abs() <= TOLERANCE {
            return Ok(proposal(current));
        }
        return Ok(proposal((usage_ratio * ready_count as f64).ceil() as i32));
    }
    // Missing figures count as the target (full request) when scaling down, as nothing
    // when scaling up; unready pods as nothing when scaling up: both damp the change.
    for p in &missing {
        if usage_ratio < 1.0 {
            let fill = match target {
                Target::Utilization(t) => p.request.clone()? * t.max(100) as u64 / 100,
                Target::AverageValue(t) => t,
            };
            metrics.push((&p.name, fill));
        } else if usage_ratio > 1.0 {
            metrics.push((&p.name, 0));
        }
    }
    if scale_up_with_unready {
        metrics.extend(unready.iter().map(|p| (p.name.as_str(), 0)));
    }
    let (new_ratio, _, _) = ratio(&metrics)?;
    if (1.0 - new_ratio).abs() <= TOLERANCE
        || (usage_ratio < 1.0 && new_ratio > 1.0)
        || (usage_ratio > 1.0 && new_ratio < 1.0)
    {
        return Ok(proposal(current));
    }
    let replicas = (new_ratio * metrics.len() as f64).ceil() as i32;
    if (new_ratio < 1.0 && replicas > current) || (new_ratio > 1.0 && replicas < current) {
        return Ok(proposal(current));
    }
    Ok(proposal(replicas))
}

/// Does a pod's CPU figure count (Kubernetes' `groupPods`)? Within its warm-up period
/// only when Ready and measured a whole window after becoming so; after it, unless it is
/// unready and has never been ready.
fn counts_as_ready(p: &PodSample, at: u64, window: u64, now: u64) -> bool {
    let (Some((ready, transition)), Some(started)) = (p.ready, p.started) else {
        return false;
    };
    if started + CPU_INITIALIZATION_SECS > now {
        ready && at >= transition + window
    } else {
        ready || started + INITIAL_READINESS_DELAY_SECS <= transition
    }
}

/// How a policy limits a change.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PolicyKind {
    /// By a number of pods.
    Pods,
    /// By a percentage of the replicas at the start of the period.
    Percent,
}

/// One scaling policy: at most `value` pods or percent per `period` seconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Policy {
    /// Pods or Percent.
    pub kind: PolicyKind,
    /// How many.
    pub value: i32,
    /// Over how long (seconds).
    pub period: u64,
}

/// Which policy wins when several apply.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Select {
    /// The one allowing the biggest change.
    Max,
    /// The one allowing the smallest change.
    Min,
    /// No change in this direction.
    Disabled,
}

/// One direction's rules (`behavior.scaleUp` or `scaleDown`), defaults filled.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rules {
    /// `stabilizationWindowSeconds`.
    pub window: u64,
    /// `selectPolicy`.
    pub select: Select,
    /// `policies`.
    pub policies: Vec<Policy>,
}

impl Rules {
    /// Kubernetes' default scale-up: no window, 4 pods or 100 % per 15 s, whichever is more.
    pub fn default_up() -> Rules {
        Rules {
            window: 0,
            select: Select::Max,
            policies: vec![
                Policy {
                    kind: PolicyKind::Pods,
                    value: 4,
                    period: 15,
                },
                Policy {
                    kind: PolicyKind::Percent,
                    value: 100,
                    period: 15,
                },
            ],
        }
    }

    /// Kubernetes' default scale-down: a 300 s window, 100 % per 15 s.
    pub fn default_down() -> Rules {
        Rules {
            window: 300,
            select: Select::Max,
            policies: vec![Policy {
                kind: PolicyKind::Percent,
                value: 100,
                period: 15,
            }],
        }
    }
}

/// What the controller remembers of one autoscaler between passes (Kubernetes keeps it in
/// the controller's memory too): recent recommendations, and recent scale changes.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct History {
    /// (when, replicas recommended).
    pub recommendations: Vec<(u64, i32)>,
    /// (when, pods added).
    pub ups: Vec<(u64, i32)>,
    /// (when, pods removed).
    pub downs: Vec<(u64, i32)>,
}

/// The outcome of normalization: replicas, and the reasons for the `AbleToScale` and
/// `ScalingLimited` conditions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Normalized {
    /// The replicas to set.
    pub replicas: i32,
    /// `AbleToScale`'s reason and message.
    pub able: (&'static str, &'static str),
    /// `ScalingLimited`: limited?, reason, message.
    pub limited: Limited,
}

/// Stabilizes a proposal over the windows and limits it by the policies and bounds
/// (Kubernetes' `normalizeDesiredReplicasWithBehaviors`); records the recommendation.
pub fn normalize(
    current: i32,
    proposed: i32,
    bounds: (i32, i32),
    rules: (&Rules, &Rules),
    h: &mut History,
    now: u64,
) -> Normalized {
    let stabilized = stabilize(current, proposed, rules, h, now);
    let able = if stabilized == proposed {
        ("ReadyForNewScale", "recommended size matches current size")
    } else if stabilized > proposed {
        (
            "ScaleDownStabilized",
            "recent recommendations were higher than current one, applying the highest recent recommendation",
        )
    } else {
        (
            "ScaleUpStabilized",
            "recent recommendations were lower than current one, applying the lowest recent recommendation",
        )
    };
    let (replicas, limited) = limit(current, stabilized, bounds, rules, h, now);
    Normalized {
        replicas,
        able,
        limited,
    }
}

/// The recommendation the windows allow: no higher than the lowest recommendation within
/// the scale-up window, no lower than the highest within the scale-down window.
fn stabilize(
    current: i32,
    proposed: i32,
    (up, down): (&Rules, &Rules),
    h: &mut History,
    now: u64,
) -> i32 {
    let (mut up_rec, mut down_rec) = (proposed, proposed);
    for &(at, r) in &h.recommendations {
        if at + up.window > now {
            up_rec = up_rec.min(r);
        }
        if at + down.window > now {
            down_rec = down_rec.max(r);
        }
    }
    let keep = up.window.max(down.window);
    h.recommendations.retain(|(at, _)| at + keep > now);
    h.recommendations.push((now, proposed));
    current.max(up_rec).min(down_rec)
}

type Limited = (bool, &'static str, &'static str);

/// The replicas the policies (against the changes within their periods) and the bounds
/// allow, and whether they limited the recommendation.
fn limit(
    current: i32,
    wanted: i32,
    (min, max): (i32, i32),
    (up, down): (&Rules, &Rules),
    h: &History,
    now: u64,
) -> (i32, Limited) {
    let within = (
        false,
        "DesiredWithinRange",
        "the desired count is within the acceptable range",
    );
    let changed = |events: &[(u64, i32)], period: u64| -> i32 {
        events
            .iter()
            .filter(|(at, _)| at + period > now)
            .map(|(_, n)| n)
            .sum()
    };
    let start = |p: &Policy| current - changed(&h.ups, p.period) + changed(&h.downs, p.period);
    if wanted > current {
        let limit = match up.select {
            Select::Disabled => current,
            sel => {
                let each = up.policies.iter().map(|p| match p.kind {
                    PolicyKind::Pods => start(p) + p.value,
                    PolicyKind::Percent => {
                        (start(p) as f64 * (1.0 + p.value as f64 / 100.0)).ceil() as i32
                    }
                });
                pick(sel, each, true)
            }
        }
        .max(current);
        let (allowed, why) = if max > limit {
            (
                limit,
                (
                    "ScaleUpLimit",
                    "the desired replica count is increasing faster than the maximum scale rate",
                ),
            )
        } else {
            (
                max,
                (
                    "TooManyReplicas",
                    "the desired replica count is more than the maximum replica count",
                ),
            )
        };
        if wanted > allowed {
            return (allowed, (true, why.0, why.1));
        }
    } else if wanted < current {
        let limit = match down.select {
            Select::Disabled => current,
            sel => {
                let each = down.policies.iter().map(|p| match p.kind {
                    PolicyKind::Pods => start(p) - p.value,
                    PolicyKind::Percent => {
                        (start(p) as f64 * (1.0 - p.value as f64 / 100.0)) as i32
                    }
                });
                pick(sel, each, false)
            }
        }
        .min(current);
        let (allowed, why) = if min < limit {
            (
                limit,
                (
                    "ScaleDownLimit",
                    "the desired replica count is decreasing faster than the maximum scale rate",
                ),
            )
        } else {
            (
                min,
                (
                    "TooFewReplicas",
                    "the desired replica count is less than the minimum replica count",
                ),
            )
        };
        if wanted < allowed {
            return (allowed, (true, why.0, why.1));
        }
    }
    (wanted, within)
}

/// The policy a selection picks: `Max` the biggest change (up: the highest limit; down:
/// the lowest), `Min` the smallest.
fn pick(sel: Select, each: impl Iterator<Item = i32>, up: bool) -> i32 {
    let biggest = (sel == Select::Max) == up;
    if biggest {
        each.max().unwrap_or(i32::MIN)
    } else {
        each.min().unwrap_or(i32::MAX)
    }
}

/// Records a scale change in the history, dropping events older than any policy's period.
pub fn record_scale(h: &mut History, from: i32, to: i32, longest_period: u64, now: u64) {
    h.ups.retain(|(at, _)| at + longest_period > now);
    h.downs.retain(|(at, _)| at + longest_period > now);
    if to > from {
        h.ups.push((now, to - from));
    } else if to < from {
        h.downs.push((now, from - to));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: u64 = 10_000;

    fn pod(name: &str, usage: Option<u64>, request: u64) -> PodSample {
        PodSample {
            name: name.into(),
            ignored: false,
            pending: false,
            ready: Some((true, NOW - 1000)),
            started: Some(NOW - 1000),
            request: Ok(request),
            usage: usage.map(|u| (u, NOW, 15)),
        }
    }

    #[test]
    fn utilization_scales_by_the_ratio_of_ready_pods() {
        // 2 pods at 900m of 500m requested: 180 % against 50 % → ceil(3.6 × 2) = 8.
        let pods = [pod("a", Some(900), 500), pod("b", Some(900), 500)];
        let p = replicas_for(2, Target::Utilization(50), &pods, true, NOW).unwrap();
        assert_eq!(p.replicas, 8);
        assert_eq!(p.utilization, Some(180));
        assert_eq!(p.average, 900);
        // Within the 10 % tolerance: no change.
        let pods = [pod("a", Some(270), 500), pod("b", Some(270), 500)];
        let p = replicas_for(2, Target::Utilization(50), &pods, true, NOW).unwrap();
        assert_eq!((p.replicas, p.utilization), (2, Some(54)));
        // Well below: scale in.
        let pods = [pod("a", Some(50), 500), pod("b", Some(50), 500)];
        assert_eq!(
            replicas_for(2, Target::Utilization(50), &pods, true, NOW)
                .unwrap()
                .replicas,
            1
        );
    }

    #[test]
    fn average_value_targets_the_mean_per_pod() {
        let mib = 1 << 20;
        let pods = [pod("a", Some(300 * mib), 0), pod("b", Some(100 * mib), 0)];
        let p = replicas_for(2, Target::AverageValue(100 * mib), &pods, false, NOW).unwrap();
        assert_eq!((p.replicas, p.utilization, p.average), (4, None, 200 * mib));
    }

    #[test]
    fn missing_figures_damp_the_change_as_kubernetes_does() {
        // Scale up: the pod without figures counts as 0 → (900+0)/1000 = 90 % of 50 → 1.8 × 2 = 4.
        let pods = [pod("a", Some(900), 500), pod("b", None, 500)];
        assert_eq!(
            replicas_for(2, Target::Utilization(50), &pods, true, NOW)
                .unwrap()
                .replicas,
            4
        );
        // Scale down: the missing pod counts as its full request, which brings the
        // ratio back within the tolerance (51 % of 50) → no change.
        let pods = [pod("a", Some(10), 500), pod("b", None, 500)];
        assert_eq!(
            replicas_for(2, Target::Utilization(50), &pods, true, NOW)
                .unwrap()
                .replicas,
            2
        );
        // No figures at all: an error, not a guess.
        let pods = [pod("a", None, 500)];
        assert!(replicas_for(1, Target::Utilization(50), &pods, true, NOW).is_err());
    }

    #[test]
    fn unready_and_warming_pods_count_as_idle_only_when_scaling_up() {
        let mut warming = pod("b", Some(1000), 500);
        warming.started = Some(NOW - 60);
        warming.ready = Some((true, NOW - 5)); // ready 5 s ago, window 15 s: not yet
        let pods = [pod("a", Some(1000), 500), warming.clone()];
        // a: 200 % of 50 → ratio 4; b counts as 0 → (1000+0)/1000 = 100 % → ratio 2 → 4.
        assert_eq!(
            replicas_for(2, Target::Utilization(50), &pods, true, NOW)
                .unwrap()
                .replicas,
            4
        );
        // Memory has no warm-up rule: b counts fully → 200 % → ratio 4 → 8.
        assert_eq!(
            replicas_for(2, Target::Utilization(50), &pods, false, NOW)
                .unwrap()
                .replicas,
            8
        );
        let mut pending = pod("c", None, 500);
        pending.pending = true;
        let mut gone = pod("d", Some(5000), 500);
        gone.ignored = true;
        let pods = [pod("a", Some(250), 500), pending, gone];
        assert_eq!(
            replicas_for(3, Target::Utilization(50), &pods, true, NOW)
                .unwrap()
                .replicas,
            3
        );
    }

    #[test]
    fn a_container_without_a_request_is_an_error_for_utilization() {
        let mut p = pod("a", Some(100), 0);
        p.request = Err("missing request for cpu in container web of Pod a".into());
        let e = replicas_for(1, Target::Utilization(50), &[p], true, NOW).unwrap_err();
        assert!(e.contains("missing request for cpu"), "{e}");
    }

    #[test]
    fn scale_down_waits_out_the_stabilization_window() {
        let (up, down) = (Rules::default_up(), Rules::default_down());
        let mut h = History::default();
        let n = normalize(5, 5, (1, 10), (&up, &down), &mut h, NOW);
        assert_eq!(n.replicas, 5);
        // Load drops: the recommendation of 5 a minute ago holds it at 5.
        let n = normalize(5, 2, (1, 10), (&up, &down), &mut h, NOW + 60);
        assert_eq!(n.replicas, 5);
        assert_eq!(n.able.0, "ScaleDownStabilized");
        // After 300 s without a higher recommendation: down to the highest since (2).
        let n = normalize(5, 2, (1, 10), (&up, &down), &mut h, NOW + 361);
        assert_eq!(n.replicas, 2);
        assert_eq!(n.limited.1, "DesiredWithinRange");
    }

    #[test]
    fn scale_up_is_limited_by_the_policies_and_the_bounds() {
        let (up, down) = (Rules::default_up(), Rules::default_down());
        let mut h = History::default();
        // From 1: max(1 + 4, 1 × 2) = 5 per 15 s.
        let n = normalize(1, 20, (1, 30), (&up, &down), &mut h, NOW);
        assert_eq!(n.replicas, 5);
        assert_eq!(
            n.limited,
            (
                true,
                "ScaleUpLimit",
                "the desired replica count is increasing faster than the maximum scale rate"
            )
        );
        record_scale(&mut h, 1, 5, 15, NOW);
        // 5 s later, within the same period: the period started at 1, so still 5.
        let n = normalize(5, 20, (1, 30), (&up, &down), &mut h, NOW + 5);
        assert_eq!(n.replicas, 5);
        // A period later: max(5 + 4, 10) = 10.
        let n = normalize(5, 20, (1, 30), (&up, &down), &mut h, NOW + 16);
        assert_eq!(n.replicas, 10);
        // The maximum bounds it.
        let n = normalize(10, 20, (1, 12), (&up, &down), &mut h, NOW + 40);
        assert_eq!(n.replicas, 12);
        assert_eq!(n.limited.1, "TooManyReplicas");
    }

    #[test]
    fn policies_select_and_disable() {
        let down = Rules {
            window: 0,
            select: Select::Min,
            policies: vec![
                Policy {
                    kind: PolicyKind::Pods,
                    value: 1,
                    period: 60,
                },
                Policy {
                    kind: PolicyKind::Percent,
                    value: 50,
                    period: 60,
                },
            ],
        };
        let up = Rules {
            select: Select::Disabled,
            ..Rules::default_up()
        };
        let mut h = History::default();
        // Min picks the smaller change: 1 pod (10 → 9), not 50 % (10 → 5).
        let n = normalize(10, 2, (1, 20), (&up, &down), &mut h, NOW);
        assert_eq!((n.replicas, n.limited.1), (9, "ScaleDownLimit"));
        // Scaling up disabled.
        let n = normalize(9, 15, (1, 20), (&up, &down), &mut h, NOW + 1);
        assert_eq!(n.replicas, 9);
        // The minimum bounds a scale-down.
        let down = Rules {
            window: 0,
            ..Rules::default_down()
        };
        let n = normalize(4, 1, (3, 20), (&up, &down), &mut History::default(), NOW);
        assert_eq!((n.replicas, n.limited.1), (3, "TooFewReplicas"));
    }
}

//! End-to-end: the scheduler and controllers with two real agents on this machine (in a
//! network namespace of their own): a Deployment spreads, rolls, rolls back, and survives
//! the loss of a node. Needs root; CI runs as root.

use serde_json::Value;
use skiff_tests::cluster::{image, node_of, ready, summary, two_nodes, web, FAST_FAILOVER, IMAGE2};
use skiff_tests::node::{eventually, IMAGE};
use skiff_tests::{err, ok, out, Coordinator};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;

/// Waits for the Deployment's 4 replicas to be Ready, 2 on each node.
fn wait_spread(t: &skiff_tests::cluster::TwoNodes) {
    eventually(60, "4 replicas Ready, 2 on each node", || {
        let pods = t.pods();
        let ready_n = pods.iter().filter(|p| ready(p)).count();
        let on_first = pods
            .iter()
            .filter(|p| ready(p) && node_of(p) == t.nodes[0].name)
            .count();
        if ready_n == 4 && on_first == 2 {
            Ok(())
        } else {
            Err(summary(&pods))
        }
    });
}

/// Watches the ready count from another thread while `f` runs; returns the lowest seen.
fn lowest_ready_during(c: &Coordinator, f: impl FnOnce()) -> usize {
    let stop = Arc::new(AtomicBool::new(false));
    let low = Arc::new(AtomicUsize::new(usize::MAX));
    let (cfg, netns) = (c.config(), c.netns.clone());
    let (s2, l2) = (stop.clone(), low.clone());
    let watcher = std::thread::spawn(move || {
        while !s2.load(Ordering::Relaxed) {
            let o = skiff_tests::command_in(netns.as_deref(), skiff_tests::binary("skiff"))
                .arg("--config")
                .arg(&cfg)
                .args(["get", "pods", "-l", "app=web", "-o", "json"])
                .output()
                .unwrap();
            if let Ok(v) = serde_json::from_slice::<Value>(&o.stdout) {
                let n = v["items"]
                    .as_array()
                    .map_or(0, |a| a.iter().filter(|p| ready(p)).count());
                l2.fetch_min(n, Ordering::Relaxed);
            }
            // Each look is a new connection: stay well under the coordinator's 20
            // handshakes per second per source address, which the test's own commands share.
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
    });
    f();
    stop.store(true, Ordering::Relaxed);
    watcher.join().unwrap();
    low.load(Ordering::Relaxed)
}

#[test]
fn deployment_spreads_rolls_back_and_survives_a_lost_node() {
    let mut t = two_nodes("ctl", &FAST_FAILOVER);
    t.apply(&web(IMAGE));
    wait_spread(&t);

    // set image: a rolling update that keeps at least 3 of 4 Ready.
    let low = lowest_ready_during(&t.c, || {
        let o =
            t.c.skiff(&["set", "image", "deployment/web", &format!("c={IMAGE2}")]);
        assert!(
            out(&o).contains("deployment.apps/web image updated"),
            "{}{}",
            out(&o),
            err(&o)
        );
        let o =
            t.c.skiff(&["rollout", "status", "deployment/web", "--timeout", "120s"]);
        assert!(
            out(&o).contains("successfully rolled out"),
            "{}{}\n{}",
            out(&o),
            err(&o),
            summary(&t.pods())
        );
    });
    assert!(
        low >= 3,
        "only {low} replicas were Ready at one point of the rollout"
    );
    let pods = t.pods();
    assert_eq!(
        pods.iter()
            .filter(|p| ready(p) && image(p) == IMAGE2)
            .count(),
        4,
        "{}",
        summary(&pods)
    );

    // rollout undo: the old image comes back.
    let o = t.c.skiff(&["rollout", "undo", "deployment/web"]);
    assert!(out(&o).contains("rolled back"), "{}{}", out(&o), err(&o));
    ok(t.c.skiff(&["rollout", "status", "deployment/web", "--timeout", "120s"]));
    eventually(30, "all replicas back on the old image", || {
        let pods = t.pods();
        if pods
            .iter()
            .filter(|p| ready(p) && image(p) == IMAGE)
            .count()
            == 4
            && pods
                .iter()
                .all(|p| image(p) == IMAGE || !p["metadata"]["deletionTimestamp"].is_null())
        {
            Ok(())
        } else {
            Err(summary(&pods))
        }
    });
    let h = out(&t.c.skiff(&["rollout", "history", "deployment/web"]));
    assert!(
        h.contains("REVISION") && h.contains("2") && h.contains("3"),
        "{h}"
    );

    drain_against_a_budget(&t);

    // Lose the second node for good: its replicas come back on the first.
    let lost = t.nodes[1].name.clone();
    let kept = t.nodes[0].name.clone();
    t.agents[1].kill();
    eventually(60, "4 replicas Running on the remaining node", || {
        let pods = t.pods();
        let n = pods
            .iter()
            .filter(|p| ready(p) && node_of(p) == kept)
            .count();
        if n == 4 {
            Ok(())
        } else {
            Err(summary(&pods))
        }
    });
    let o = t.c.skiff(&["get", "node", &lost]);
    assert!(
        out(&o).contains("Unknown") || out(&o).contains("NotReady"),
        "{}",
        out(&o)
    );
}

/// `skiff drain` of the first node under a PodDisruptionBudget allowing one replica down:
/// the first eviction goes, the second is refused (429) until the first one's replacement
/// on the other node is Ready, then goes; the Deployment never has fewer than 3 Ready.
fn drain_against_a_budget(t: &skiff_tests::cluster::TwoNodes) {
    t.apply(
        "apiVersion: policy/v1\nkind: PodDisruptionBudget\nmetadata: {name: web}\nspec:\n  maxUnavailable: 1\n  selector: {matchLabels: {app: web}}\n",
    );
    eventually(30, "the budget's status", || {
        let st = t.c.get_json(&["get", "pdb", "web"])["status"].clone();
        let want = (Some(4), Some(4), Some(3), Some(1));
        let got = (
            st["expectedPods"].as_i64(),
            st["currentHealthy"].as_i64(),
            st["desiredHealthy"].as_i64(),
            st["disruptionsAllowed"].as_i64(),
        );
        if got == want {
            Ok(())
        } else {
            Err(format!("{got:?}: {st}"))
        }
    });
    let (drained, kept) = (t.nodes[0].name.clone(), t.nodes[1].name.clone());
    let mut o = None;
    let low = lowest_ready_during(&t.c, || {
        o = Some(t.c.skiff(&["drain", &drained, "--timeout", "120s"]));
    });
    let o = o.unwrap();
    assert!(o.status.success(), "{}{}", out(&o), err(&o));
    assert!(
        err(&o).contains("(will retry after 5s): Cannot evict pod as it would violate the pod's disruption budget. The disruption budget web needs 3 healthy pods and has 3 currently"),
        "the second eviction waited for the first one's replacement: {}",
        err(&o)
    );
    assert!(
        out(&o).contains(&format!("node/{drained} drained")),
        "{}",
        out(&o)
    );
    assert!(low >= 3, "only {low} replicas were Ready during the drain");
    eventually(60, "4 replicas Ready on the other node", || {
        let pods = t.pods();
        let n = pods
            .iter()
            .filter(|p| ready(p) && node_of(p) == kept)
            .count();
        if n == 4 {
            Ok(())
        } else {
            Err(summary(&pods))
        }
    });
    // A budget that allows nothing: the drain gives up at its timeout, naming why.
    t.apply(
        "apiVersion: policy/v1\nkind: PodDisruptionBudget\nmetadata: {name: web}\nspec:\n  minAvailable: 100%\n  selector: {matchLabels: {app: web}}\n",
    );
    ok(t.c.skiff(&["uncordon", &drained]));
    eventually(30, "no disruption allowed", || {
        match t.c.get_json(&["get", "pdb", "web"])["status"]["disruptionsAllowed"].as_i64() {
            Some(0) => Ok(()),
            other => Err(format!("{other:?}")),
        }
    });
    let o = t.c.skiff(&["drain", &kept, "--timeout", "6s"]);
    assert!(!o.status.success(), "{}", out(&o));
    assert!(err(&o).contains("allowed no eviction"), "{}", err(&o));
    ok(t.c.skiff(&["uncordon", &kept]));
    ok(t.c.skiff(&["delete", "pdb", "web"]));
}

/// Processes in a node's cgroups (its containers), read from the memory hierarchy.
fn processes_under(cgroup_parent: &str) -> usize {
    fn walk(dir: &std::path::Path) -> usize {
        let mut n = std::fs::read_to_string(dir.join("cgroup.procs"))
            .map(|s| s.lines().count())
            .unwrap_or(0);
        if let Ok(rd) = std::fs::read_dir(dir) {
            for e in rd.flatten() {
                if e.path().is_dir() {
                    n += walk(&e.path());
                }
            }
        }
        n
    }
    walk(&std::path::Path::new("/sys/fs/cgroup/memory").join(cgroup_parent.trim_start_matches('/')))
}

#[test]
fn a_cut_off_node_keeps_its_pods_until_it_is_back_and_nothing_is_left_over() {
    let t = two_nodes("cut", &FAST_FAILOVER);
    t.apply(&web(IMAGE));
    wait_spread(&t);
    let kept = t.nodes[0].name.clone();
    let cut_parent = t.nodes[1].cgroup_parent();
    let running_before = processes_under(&cut_parent);
    assert!(running_before >= 2, "the cut node runs its two replicas");
    // Cut the node off: its agent stops answering (SIGSTOP), its containers go on.
    skiff_tests::send_signal(t.agents[1].pid(), libc::SIGSTOP);
    eventually(30, "4 replicas Running on the other node", || {
        let pods = t.pods();
        if pods
            .iter()
            .filter(|p| ready(p) && node_of(p) == kept)
            .count()
            == 4
        {
            Ok(())
        } else {
            Err(summary(&pods))
        }
    });
    assert!(
        processes_under(&cut_parent) >= 2,
        "the cut-off node must keep running its pods while it cannot hear the coordinator"
    );
    // Back: it learns its pods were deleted, stops them and confirms.
    skiff_tests::send_signal(t.agents[1].pid(), libc::SIGCONT);
    eventually(
        60,
        "exactly 4 replicas, none left on the node that came back",
        || {
            let pods = t.pods();
            let procs = processes_under(&cut_parent);
            if pods.len() == 4 && pods.iter().all(|p| ready(p) && node_of(p) == kept) && procs == 0
            {
                Ok(())
            } else {
                Err(format!(
                    "{}\nprocesses on the returned node: {procs}",
                    summary(&pods)
                ))
            }
        },
    );
    let o = t.c.skiff(&["get", "node", &t.nodes[1].name]);
    assert!(out(&o).contains(" Ready"), "{}", out(&o));
}

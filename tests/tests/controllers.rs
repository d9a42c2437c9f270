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
    volumes_across_two_nodes(&t);

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

/// The phase of a claim or volume.
fn phase_of(c: &Coordinator, what: &str, name: &str) -> String {
    c.get_json(&["get", what, name])["status"]["phase"]
        .as_str()
        .unwrap_or("")
        .to_string()
}

/// Runs `sh -c script` in a pod, returning its output.
fn sh(c: &Coordinator, pod: &str, script: &str) -> String {
    ok(c.skiff(&["exec", pod, "--", "sh", "-c", script]))
}

/// The Kubernetes documentation's StatefulSet, unchanged (its nginx image is a stand-in
/// serving the same directory): each replica gets a `local-path` claim on its node and
/// writes to it; deleted pods come back to the same data; the claims outlive a
/// scale-down; deleting a claim removes its volume and the directory. Then a
/// ReadWriteOnce claim on a volume made by hand: a second pod on the other node stays
/// Pending with the scheduler's reason, as does a pod of a provisioned claim pinned away
/// from its volume's node.
fn volumes_across_two_nodes(t: &skiff_tests::cluster::TwoNodes) {
    let c = &t.c;
    let web = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("storage/web.yaml");
    let applied = ok(c.skiff(&["apply", "-f", web.to_str().unwrap()]));
    assert_eq!(
        applied,
        "service/nginx created\nstatefulset.apps/web created\n"
    );
    let running = |pod: &str| {
        eventually(90, &format!("{pod} Running"), || {
            let p = c.get_json(&["get", "pod", pod]);
            if p["status"]["phase"] == "Running" && p["metadata"]["deletionTimestamp"].is_null() {
                Ok(p)
            } else {
                Err(format!(
                    "{}\n{}",
                    p["status"],
                    out(&c.skiff(&["describe", "pvc"]))
                ))
            }
        })
    };
    let mut homes = Vec::new();
    for i in 0..2 {
        let pod = format!("web-{i}");
        let p = running(&pod);
        homes.push(node_of(&p));
        sh(c, &pod, "hostname > /usr/share/nginx/html/index.html");
        // nginx's job, done by the stand-in: the volume is what it serves.
        assert_eq!(
            sh(c, &pod, "wget -qO- http://127.0.0.1/"),
            format!("{pod}\n")
        );
    }
    let pvcs = ok(c.skiff(&["get", "pvc"]));
    for i in 0..2 {
        let line = pvcs
            .lines()
            .find(|l| l.starts_with(&format!("www-web-{i} ")))
            .unwrap_or_else(|| panic!("{pvcs}"));
        let cells: Vec<&str> = line.split_whitespace().collect();
        assert_eq!(cells[1], "Bound", "{pvcs}");
        assert!(cells[2].starts_with("pvc-"), "{pvcs}");
        assert_eq!(&cells[3..6], &["1Gi", "RWO", "local-path"], "{pvcs}");
    }
    let sc = ok(c.skiff(&["get", "sc"]));
    assert!(
        sc.contains(
            "local-path (default)   skiff.io/local-path   Delete          WaitForFirstConsumer"
        ),
        "{sc}"
    );
    let pvs = ok(c.skiff(&["get", "pv"]));
    assert_eq!(
        pvs.matches("   Bound    default/www-web-").count(),
        2,
        "{pvs}"
    );
    let described = ok(c.skiff(&["describe", "pvc", "www-web-0"]));
    assert!(described.contains("ProvisioningSucceeded"), "{described}");

    // The pods go; they come back on their volumes' nodes, to their data.
    ok(c.skiff(&["delete", "pod", "web-0", "web-1", "--wait=false"]));
    for (i, home) in homes.iter().enumerate() {
        let pod = format!("web-{i}");
        let p = running(&pod);
        assert_eq!(&node_of(&p), home, "{pod} moved away from its volume");
        assert_eq!(
            sh(c, &pod, "cat /usr/share/nginx/html/index.html"),
            format!("{pod}\n")
        );
    }

    // Scaled down, web-1's claim stays (retention policy Retain, the default).
    ok(c.skiff(&["scale", "statefulset", "web", "--replicas=1"]));
    eventually(60, "web-1 gone", || {
        let o = c.skiff(&["get", "pod", "web-1"]);
        if o.status.success() {
            Err(out(&o))
        } else {
            Ok(())
        }
    });
    assert_eq!(phase_of(c, "pvc", "www-web-1"), "Bound");
    let volume = c.get_json(&["get", "pvc", "www-web-1"])["spec"]["volumeName"]
        .as_str()
        .unwrap()
        .to_string();
    let dir = c.get_json(&["get", "pv", &volume])["spec"]["hostPath"]["path"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(
        std::path::Path::new(&dir).join("index.html").exists(),
        "{dir}"
    );
    let node1 = t.nodes.iter().find(|n| n.name == homes[1]).unwrap();
    assert!(
        dir.starts_with(node1.data().to_str().unwrap()),
        "{dir} is not on {}",
        homes[1]
    );
    // Deleting the claim deletes the volume (reclaim policy Delete) and its directory.
    ok(c.skiff(&["delete", "pvc", "www-web-1"]));
    eventually(60, "the volume and its directory gone", || {
        let gone = !c.skiff(&["get", "pv", &volume]).status.success();
        if gone && !std::path::Path::new(&dir).exists() {
            Ok(())
        } else {
            Err(format!(
                "{}\n{}",
                out(&c.skiff(&["get", "pv"])),
                t.agents[1].log()
            ))
        }
    });

    // A pod of that volume pinned to the other node cannot go there.
    let other = t
        .nodes
        .iter()
        .find(|n| n.name != homes[0])
        .unwrap()
        .name
        .clone();
    let pinned = |name: &str, claim: &str, node: &str| {
        format!(
            "apiVersion: v1\nkind: Pod\nmetadata: {{name: {name}}}\nspec:\n  nodeSelector: {{kubernetes.io/hostname: {node}}}\n  terminationGracePeriodSeconds: 1\n  containers:\n  - name: c\n    image: {IMAGE}\n    command: [sleep, '3600']\n    volumeMounts: [{{name: v, mountPath: /v}}]\n  volumes:\n  - name: v\n    persistentVolumeClaim: {{claimName: {claim}}}\n"
        )
    };
    let pending_for = |pod: &str, why: &str| {
        eventually(30, &format!("{pod} Pending: {why}"), || {
            let p = c.get_json(&["get", "pod", pod]);
            let cond = p["status"]["conditions"].to_string();
            if p["spec"]["nodeName"].is_null() && cond.contains(why) {
                Ok(())
            } else {
                Err(p["status"].to_string())
            }
        })
    };
    c.apply(&pinned("away", "www-web-0", &other));
    pending_for("away", "had volume node affinity conflict");
    ok(c.skiff(&["delete", "pod", "away", "--force"]));

    // A claim in use is not deleted under its pod (in-use protection); a new pod may not
    // use it any more.
    ok(c.skiff(&["delete", "pvc", "www-web-0", "--wait=false"]));
    std::thread::sleep(std::time::Duration::from_secs(2));
    let claim = c.get_json(&["get", "pvc", "www-web-0"]);
    assert!(!claim["metadata"]["deletionTimestamp"].is_null(), "{claim}");
    assert_eq!(
        sh(c, "web-0", "cat /usr/share/nginx/html/index.html"),
        "web-0\n"
    );
    c.apply(&pinned("late", "www-web-0", &homes[0]));
    pending_for(
        "late",
        "persistentvolumeclaim \\\"www-web-0\\\" is being deleted",
    );
    ok(c.skiff(&["delete", "pod", "late", "--force"]));

    // A volume made by hand (no class, a host directory, no node affinity): a
    // ReadWriteOnce claim binds it at once; its pods share one node only.
    let shared = t.nodes[0].data().join("shared");
    c.apply(&format!(
        "apiVersion: v1\nkind: PersistentVolume\nmetadata: {{name: shared, labels: {{tier: test}}}}\nspec:\n  capacity: {{storage: 2Gi}}\n  accessModes: [ReadWriteOnce]\n  hostPath: {{path: {}}}\n---\napiVersion: v1\nkind: PersistentVolumeClaim\nmetadata: {{name: shared}}\nspec:\n  storageClassName: \"\"\n  accessModes: [ReadWriteOnce]\n  selector: {{matchLabels: {{tier: test}}}}\n  resources: {{requests: {{storage: 1Gi}}}}\n",
        shared.display()
    ));
    eventually(30, "the claim bound", || {
        match phase_of(c, "pvc", "shared").as_str() {
            "Bound" => Ok(()),
            p => Err(format!(
                "{p}\n{}",
                out(&c.skiff(&["describe", "pvc", "shared"]))
            )),
        }
    });
    assert_eq!(phase_of(c, "pv", "shared"), "Bound");
    c.apply(&pinned("first", "shared", &t.nodes[0].name));
    running("first");
    c.apply(&pinned("second", "shared", &t.nodes[1].name));
    pending_for(
        "second",
        "a ReadWriteOnce PersistentVolumeClaim of the pod is in use on another node",
    );
    for pod in ["first", "second"] {
        ok(c.skiff(&["delete", "pod", pod, "--force"]));
    }
    ok(c.skiff(&["delete", "statefulset", "web"]));
    ok(c.skiff(&["delete", "pvc", "shared"]));
    // Retain (the default for volumes made by hand): the volume is Released, data kept.
    eventually(60, "the hand-made volume Released", || {
        match phase_of(c, "pv", "shared").as_str() {
            "Released" => Ok(()),
            p => Err(p.to_string()),
        }
    });
    ok(c.skiff(&["delete", "pv", "shared"]));
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

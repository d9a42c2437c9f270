//! End-to-end: node identity and the coordinator's front door. A real coordinator, real
//! agents over real QUIC, the real CLI, and the CLI holding a node's own credential
//! (`<data-dir>/node.config`). Needs root (namespaces, mounts, cgroups); CI runs as root.

use serde_json::Value;
use skiff_tests::node::{eventually, AgentProc, Node, IMAGE};
use skiff_tests::{binary, command_in, err, fails, ok, out, Coordinator, NetNs, TempDir};
use std::process::Output;
use std::time::Duration;

struct Cluster {
    // Drop order: processes first, then the namespace.
    agent: AgentProc,
    c: Coordinator,
    node: Node,
    dir: TempDir,
    netns: NetNs,
}

fn cluster(tag: &str, coord_flags: &[&str]) -> Cluster {
    let node = Node::new(tag);
    let netns = NetNs::new(tag);
    let dir = TempDir::new(&format!("{tag}-coord"));
    let c = Coordinator::start_with(
        dir.path(),
        skiff_tests::free_port(),
        Some(&netns.name),
        coord_flags,
    );
    let server = format!("127.0.0.1:{}", c.port);
    let agent = AgentProc::start(
        &node,
        &server,
        &c.node_token(),
        &["--restart-backoff", "1s"],
        Some(&netns.name),
    );
    let cl = Cluster {
        agent,
        c,
        node,
        dir,
        netns,
    };
    cl.wait_node_ready();
    cl
}

impl Cluster {
    fn skiff(&self, args: &[&str]) -> Output {
        self.c.skiff(args)
    }

    /// The CLI with the node's own credential.
    fn as_node(&self, args: &[&str]) -> Output {
        command_in(Some(&self.netns.name), binary("skiff"))
            .arg("--config")
            .arg(self.node.data().join("node.config"))
            .args(args)
            .output()
            .expect("run skiff")
    }

    fn write(&self, name: &str, text: &str) -> String {
        let path = self.dir.path().join(name);
        std::fs::write(
            &path,
            text.replace("NODE", &self.node.name)
                .replace("IMAGE", IMAGE),
        )
        .unwrap();
        path.to_str().unwrap().to_string()
    }

    fn apply(&self, yaml: &str) {
        let f = self.write("m.yaml", yaml);
        ok(self.skiff(&["apply", "-f", &f]));
    }

    fn get(&self, args: &[&str]) -> Value {
        let mut a = args.to_vec();
        a.extend(["-o", "json"]);
        serde_json::from_str(&out(&self.skiff(&a))).unwrap_or(Value::Null)
    }

    fn node_condition(&self, t: &str) -> String {
        let n = self.get(&["get", "node", &self.node.name]);
        n["status"]["conditions"]
            .as_array()
            .and_then(|cs| cs.iter().find(|c| c["type"] == t))
            .map(|c| format!("{} {}", c["status"], c["message"]))
            .unwrap_or_default()
    }

    fn wait_node_ready(&self) {
        eventually(30, "node registered and Ready", || {
            let c = self.node_condition("Ready");
            if c.starts_with("\"True\"") {
                Ok(())
            } else {
                Err(format!("{c}\nagent log:\n{}", self.agent.log()))
            }
        });
    }

    /// Waits until pod `name` runs; returns its first container's status.
    fn wait_running(&self, name: &str) -> Value {
        eventually(60, &format!("pod {name} Running"), || {
            let p = self.get(&["get", "pod", name]);
            if p["status"]["phase"] == "Running" {
                Ok(p["status"]["containerStatuses"][0].clone())
            } else {
                Err(format!("{}\nagent log:\n{}", p["status"], self.agent.log()))
            }
        })
    }

    /// The node's containers that run now (from its runtime, not from the coordinator).
    fn running_containers(&self) -> Vec<String> {
        self.node
            .runtime()
            .list()
            .unwrap()
            .into_iter()
            .filter(|c| c.pid.is_some())
            .map(|c| c.id)
            .collect()
    }

    fn token(&self, args: &[&str]) -> String {
        let mut a = vec!["token", "create"];
        a.extend_from_slice(args);
        ok(self.skiff(&a)).trim().to_string()
    }
}

const POD: &str = "apiVersion: v1\nkind: Secret\nmetadata: {name: used}\nstringData: {word: swordfish}\n---\n\
apiVersion: v1\nkind: Secret\nmetadata: {name: unused}\nstringData: {word: marlin}\n---\n\
apiVersion: v1\nkind: Pod\nmetadata: {name: p1}\nspec:\n  nodeName: NODE\n  terminationGracePeriodSeconds: 1\n  \
containers:\n  - name: main\n    image: IMAGE\n    command: [sh, -c, 'echo started; sleep 100000']\n    \
env:\n    - name: WORD\n      valueFrom: {secretKeyRef: {name: used, key: word}}\n";

/// The node's own Node as JSON, changed by `f`, written for `skiff replace`.
fn node_changed(cl: &Cluster, f: impl FnOnce(&mut Value)) -> String {
    let mut n: Value = serde_json::from_str(&ok(cl.as_node(&[
        "get",
        "node",
        &cl.node.name,
        "-o",
        "json",
    ])))
    .unwrap();
    f(&mut n);
    cl.write("node.json", &n.to_string())
}

fn event(ns: &str, name: &str, kind: &str, about: &str) -> String {
    format!(
        "apiVersion: v1\nkind: Event\nmetadata: {{name: {name}, namespace: {ns}}}\n\
         involvedObject: {{kind: {kind}, name: {about}, namespace: {ns}}}\nreason: Test\n\
         message: from the node\ntype: Normal\n"
    )
}

#[test]
fn a_node_does_only_what_a_node_may_renews_its_certificate_and_is_revoked_with_its_node() {
    let mut cl = cluster(
        "id-least",
        &[
            "--node-cert-ttl",
            "8s",
            "--event-ttl",
            "5s",
            "--serving-cert-ttl",
            "6s",
        ],
    );
    cl.apply(POD);
    let started = cl.wait_running("p1");
    let container = started["containerID"].clone();

    // Reads: the Secret its pod uses, not another.
    let s = ok(cl.as_node(&["get", "secret", "used", "-o", "json"]));
    assert!(s.contains("\"word\""), "{s}");
    let e = fails(cl.as_node(&["get", "secret", "unused"]));
    assert!(e.contains("Forbidden"), "{e}");
    // The Secret the node keeps for its pod is on a tmpfs, not on its disk.
    let secrets = cl.node.data().join("state/secrets");
    let mounts = std::fs::read_to_string("/proc/self/mounts").unwrap();
    assert!(
        mounts
            .lines()
            .any(|l| l.starts_with("tmpfs ") && l.contains(&format!(" {} ", secrets.display()))),
        "no tmpfs at {}:\n{mounts}",
        secrets.display()
    );
    assert!(
        std::fs::read_to_string(secrets.join("Secret.default.used.json"))
            .is_ok_and(|s| s.contains("used"))
    );
    // Nowhere on the node's disk: not in its state, not in the container's bundle (the
    // runtime keeps bundles on a tmpfs of its own), not in the logs.
    let in_memory = [secrets.clone(), cl.node.data().join("run/mem")];
    for f in walk(cl.node.data()) {
        if in_memory.iter().any(|m| f.starts_with(m))
            || f.starts_with(cl.node.data().join("content"))
        {
            continue;
        }
        // In clear or as the Secret's base64.
        let bytes = std::fs::read(&f).unwrap_or_default();
        let text = String::from_utf8_lossy(&bytes);
        assert!(
            !text.contains("swordfish") && !text.contains("c3dvcmRmaXNo"),
            "{}",
            f.display()
        );
    }

    // Its own Node: a label a kubelet may set, yes; its spec, a restricted label, no.
    let f = node_changed(&cl, |n| {
        n["metadata"]["labels"]["example.com/board"] = "pi4".into()
    });
    ok(cl.as_node(&["replace", "-f", &f]));
    assert_eq!(
        cl.get(&["get", "node", &cl.node.name])["metadata"]["labels"]["example.com/board"],
        "pi4"
    );
    let f = node_changed(&cl, |n| n["spec"]["podCIDR"] = "10.99.0.0/24".into());
    let e = fails(cl.as_node(&["replace", "-f", &f]));
    assert!(
        e.contains("Forbidden") && e.contains("NodeRestriction"),
        "{e}"
    );
    let f = node_changed(&cl, |n| n["spec"]["unschedulable"] = true.into());
    let e = fails(cl.as_node(&["replace", "-f", &f]));
    assert!(e.contains("NodeRestriction"), "{e}");
    let f = node_changed(&cl, |n| {
        n["metadata"]["labels"]["node-restriction.kubernetes.io/trusted"] = "yes".into()
    });
    let e = fails(cl.as_node(&["replace", "-f", &f]));
    assert!(e.contains("NodeRestriction"), "{e}");
    // Another Node: nothing.
    cl.apply("apiVersion: v1\nkind: Node\nmetadata: {name: other-node}\n");
    let mut other: Value = serde_json::from_str(&ok(cl.as_node(&[
        "get",
        "node",
        "other-node",
        "-o",
        "json",
    ])))
    .unwrap_or_else(|_| cl.get(&["get", "node", "other-node"]));
    other["metadata"]["labels"]["example.com/board"] = "mine".into();
    let f = cl.write("other.json", &other.to_string());
    let e = fails(cl.as_node(&["replace", "-f", &f]));
    assert!(
        e.contains("Forbidden") && e.contains("NodeRestriction"),
        "{e}"
    );
    assert!(
        cl.get(&["get", "node", "other-node"])["metadata"]["labels"]["example.com/board"].is_null()
    );

    // Events: about its pods, yes; about a Deployment in kube-system, no.
    let f = cl.write("ev1.yaml", &event("default", "p1-note", "Pod", "p1"));
    ok(cl.as_node(&["create", "-f", &f]));
    let f = cl.write(
        "ev2.yaml",
        &event("kube-system", "dep-note", "Deployment", "coredns"),
    );
    let e = fails(cl.as_node(&["create", "-f", &f]));
    assert!(
        e.contains("Forbidden") && e.contains("NodeRestriction"),
        "{e}"
    );

    // Pod status: only for pods bound to it.
    cl.apply("apiVersion: v1\nkind: Pod\nmetadata: {name: elsewhere}\nspec:\n  nodeName: other-node\n  containers:\n  - {name: main, image: IMAGE}\n");
    let mut p: Value =
        serde_json::from_str(&out(&cl.skiff(&["get", "pod", "elsewhere", "-o", "json"]))).unwrap();
    p["status"]["phase"] = "Running".into();
    let f = cl.write("elsewhere.json", &p.to_string());
    let e = fails(cl.as_node(&["replace", "-f", &f]));
    assert!(e.contains("Forbidden"), "{e}");

    // Events expire (--event-ttl 5s): the one the node wrote, and the pod's own.
    eventually(20, "the Events expired", || {
        let evs = cl.get(&["get", "events", "-A"]);
        let left: Vec<String> = evs["items"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter(|e| e["involvedObject"]["name"] == "p1")
                    .map(|e| e["metadata"]["name"].to_string())
                    .collect()
            })
            .unwrap_or_default();
        if left.is_empty() {
            Ok(())
        } else {
            Err(format!("{left:?}"))
        }
    });

    // Rotation (--node-cert-ttl 8s): several renewals within one session, pods untouched.
    eventually(60, "three certificate renewals", || {
        let n = cl
            .agent
            .log()
            .matches("renewed the node certificate")
            .count();
        if n >= 3 {
            Ok(())
        } else {
            Err(format!("{n} renewals\n{}", cl.agent.log()))
        }
    });
    let log = cl.agent.log();
    assert!(
        log.matches("connected to the coordinator").count() == 1,
        "the session was not kept across renewals:\n{log}"
    );
    let now = cl.wait_running("p1");
    assert_eq!(now["containerID"], container);
    assert_eq!(now["restartCount"], 0);
    cl.wait_node_ready();
    // The CLI with the renewed node.config still works.
    ok(cl.as_node(&["get", "secret", "used"]));
    // The serving certificate (--serving-cert-ttl 6s) was reissued, with no restart: new
    // connections verify against the new one, the agent's session carries on.
    let renewed = cl.c.log().matches("serving certificate renewed").count();
    assert!(renewed >= 2, "{renewed} serving renewals:\n{}", cl.c.log());
    ok(cl.skiff(&["get", "nodes"]));

    // Deleting the Node revokes its credential: the agent is refused and says how to
    // readmit it; its pods keep running meanwhile.
    ok(cl.skiff(&["delete", "node", &cl.node.name]));
    eventually(30, "the agent refused", || {
        let l = cl.agent.log();
        if l.contains("refuses this node's credential") && l.contains("skiff token create") {
            Ok(())
        } else {
            Err(l)
        }
    });
    let e = fails(cl.as_node(&["get", "secret", "used"]));
    assert!(e.contains("skiff token create"), "{e}");

    // Readmitted as the refusal says: a one-use token, the agent restarted with it.
    let t = cl.token(&["--uses", "1", "--ttl", "1h"]);
    cl.agent.stop();
    cl.agent.set_token(&t);
    cl.agent.restart();
    cl.wait_node_ready();
    ok(cl.as_node(&["get", "node", &cl.node.name]));
    // The one use is spent.
    let list = ok(cl.skiff(&["token", "list"]));
    let id = t.split("::").nth(1).unwrap().split('.').next().unwrap();
    assert!(
        !list.lines().any(|l| l.starts_with(id) && l.contains(" 1 ")),
        "{list}"
    );
}

#[test]
fn a_node_cut_off_past_its_certificate_keeps_its_pods_and_is_readmitted() {
    let mut cl = cluster("id-expiry", &["--node-cert-ttl", "5s"]);
    cl.apply(POD);
    let started = cl.wait_running("p1");
    let before = cl.running_containers();
    assert_eq!(before.len(), 1, "{before:?}");

    // Cut off (agent down) until its certificate is past expiry, then back.
    cl.agent.kill();
    std::thread::sleep(Duration::from_secs(7));
    cl.agent.restart();
    eventually(
        30,
        "the agent says why it is refused and how to readmit it",
        || {
            let l = cl.agent.log();
            if l.contains("expired") && l.contains("skiff token create --uses 1 --ttl 1h") {
                Ok(())
            } else {
                Err(l)
            }
        },
    );
    eventually(30, "the Node says its certificate expired", || {
        let c = cl.node_condition("CertificateExpired");
        if c.starts_with("\"True\"") && c.contains("skiff token create") {
            Ok(())
        } else {
            Err(c)
        }
    });
    assert_eq!(cl.running_containers(), before, "the pods kept running");

    let t = cl.token(&["--uses", "1", "--ttl", "1h"]);
    cl.agent.stop();
    cl.agent.set_token(&t);
    cl.agent.restart();
    cl.wait_node_ready();
    eventually(30, "the CertificateExpired condition cleared", || {
        let c = cl.node_condition("CertificateExpired");
        if c.starts_with("\"False\"") {
            Ok(())
        } else {
            Err(c)
        }
    });
    let now = cl.wait_running("p1");
    assert_eq!(now["containerID"], started["containerID"]);
    assert_eq!(now["restartCount"], 0);
    assert_eq!(cl.running_containers(), before);
}

/// Runs `f` on a tokio runtime in a thread inside `netns`.
fn in_netns<T: Send + 'static>(
    netns: &NetNs,
    f: impl FnOnce() -> std::pin::Pin<Box<dyn std::future::Future<Output = T>>> + Send + 'static,
) -> T {
    let path = netns.path();
    std::thread::spawn(move || {
        skiff_tests::enter_netns(&path);
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap()
            .block_on(f())
    })
    .join()
    .unwrap()
}

#[test]
fn tokens_are_kept_as_hashes_a_name_belongs_to_one_node_and_strangers_cannot_flood_the_door() {
    let netns = NetNs::new("id-door");
    let dir = TempDir::new("id-door");
    let c = Coordinator::start_with(dir.path(), skiff_tests::free_port(), Some(&netns.name), &[]);
    let server = format!("127.0.0.1:{}", c.port);
    let node_token = c.node_token();

    // Tokens: a lifetime, a use count, a description; kept as hashes.
    let one = ok(c.skiff(&[
        "token",
        "create",
        "--ttl",
        "1h",
        "--uses",
        "1",
        "--description",
        "one board",
    ]))
    .trim()
    .to_string();
    let list = ok(c.skiff(&["token", "list"]));
    let row = list
        .lines()
        .find(|l| l.contains("one board"))
        .expect(&list)
        .to_string();
    assert!(row.contains(" 1 "), "{list}");
    let revoked = ok(c.skiff(&["token", "create"])).trim().to_string();
    let revoked_id = revoked
        .split("::")
        .nth(1)
        .unwrap()
        .split('.')
        .next()
        .unwrap()
        .to_string();
    ok(c.skiff(&["token", "revoke", &revoked_id]));
    let short = ok(c.skiff(&["token", "create", "--ttl", "1s"]))
        .trim()
        .to_string();
    std::thread::sleep(Duration::from_secs(2));
    let e = fails(c.skiff(&["token", "create", "--ttl", "soon"]));
    assert!(e.contains("invalid duration"), "{e}");

    let (s1, a, b, cc, d) = (
        server.clone(),
        one.clone(),
        node_token.clone(),
        revoked.clone(),
        short.clone(),
    );
    let (first, again, taken, by_revoked, by_expired) = in_netns(&netns, move || {
        Box::pin(async move {
            use skiff_transport::client::join;
            let first = join(&s1, &a, "board-1").await;
            let again = join(&s1, &a, "board-2").await.err().map(|e| e.to_string());
            let taken = join(&s1, &b, "board-1").await.err().map(|e| e.to_string());
            let by_revoked = join(&s1, &cc, "board-3").await.err().map(|e| e.to_string());
            let by_expired = join(&s1, &d, "board-4").await.err().map(|e| e.to_string());
            (first, again, taken, by_revoked, by_expired)
        })
    });
    let board1 = first.expect("a one-use token admits a node");
    assert!(again.is_some(), "a one-use token admitted a second node");
    let taken = taken.expect("a token took over a name a node holds");
    assert!(
        taken.contains("board-1") && taken.contains("skiff delete node"),
        "{taken}"
    );
    assert!(by_revoked.is_some(), "a revoked token admitted a node");
    assert!(by_expired.is_some(), "an expired token admitted a node");

    // Neither token's secret is anywhere in the coordinator's data (beside the node-token
    // file the operator reads it from).
    for t in [&one, &node_token] {
        let secret = t.rsplit('.').next().unwrap();
        for e in walk(dir.path()) {
            if e.file_name().is_some_and(|n| n == "node-token") {
                continue;
            }
            let bytes = std::fs::read(&e).unwrap_or_default();
            assert!(
                !bytes.windows(secret.len()).any(|w| w == secret.as_bytes()),
                "a token's secret is in {}",
                e.display()
            );
        }
    }

    // The real agent, given a name another node holds, stops and says so.
    let thief_dir = TempDir::new("id-thief");
    let thief = command_in(Some(&netns.name), binary("skiff-agent"))
        .arg("--data-dir")
        .arg(thief_dir.path())
        .args([
            "--name",
            "board-1",
            "--server",
            &server,
            "--token",
            &node_token,
        ])
        .env("SKIFF_LOG", "info")
        .output()
        .expect("run skiff-agent");
    assert_eq!(thief.status.code(), Some(3), "{}", err(&thief));
    assert!(
        err(&thief).contains("board-1") && err(&thief).contains("skiff delete node"),
        "{}",
        err(&thief)
    );

    // The flood: strangers announcing the largest join frames and stalling, streams asked
    // past every limit (a node's credential too), while the admin reads and writes.
    let pid = c.pid();
    let admin = skiff_transport::config::ClientConfig::load(&c.config()).unwrap();
    let quiet_rss = skiff_tests::rss_bytes(pid).unwrap();
    let token = node_token.clone();
    let (peak, strangers, greedy, admin_ok, admin_failed) = in_netns(&netns, move || {
        Box::pin(async move {
            let client = skiff_transport::Client::connect(&admin).await.unwrap();
            let flood = skiff_tests::flood::start(&server, &token, 200, Some(board1)).await;
            let mut peak = 0;
            let (mut good, mut bad) = (0, Vec::new());
            let until = std::time::Instant::now() + Duration::from_secs(8);
            let mut i = 0;
            while std::time::Instant::now() < until {
                match skiff_tests::flood::admin_request(&client, i).await {
                    Ok(_) => good += 1,
                    Err(e) => bad.push(e.to_string()),
                }
                i += 1;
                peak = peak.max(skiff_tests::rss_bytes(pid).unwrap_or(0));
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            let counts = (flood.strangers.get(), flood.greedy.get());
            flood.stop();
            (peak, counts.0, counts.1, good, bad)
        })
    });
    let extra = peak.saturating_sub(quiet_rss);
    eprintln!(
        "flood: strangers {strangers:?} greedy {greedy:?}; admin {admin_ok} ok; coordinator RSS {} MB quiet, +{} MB at peak",
        quiet_rss >> 20,
        extra >> 20
    );
    assert!(
        admin_failed.is_empty(),
        "admin requests failed: {admin_failed:?}"
    );
    // Served throughout, not starved: how many fit in 8 s depends on the machine's load
    // (18 when CI shared its two cores with a build), so only progress is asserted.
    assert!(
        admin_ok >= 5,
        "the admin was starved: {admin_ok} requests in 8 s"
    );
    let (connected, refused, streams, withheld) = strangers;
    assert!(connected > 0 && streams > 0, "{strangers:?}");
    assert!(refused > 0, "200 strangers were all let in: {strangers:?}");
    // One address holds at most its share at once (16 by default): over 8 s and a 20 s
    // life, few more than that got in.
    assert!(
        connected <= 32,
        "one address got {connected} connections: {strangers:?}"
    );
    assert!(
        withheld >= connected,
        "a stranger got more streams than a join needs: {strangers:?}"
    );
    assert_eq!(
        (greedy.2, greedy.3),
        (skiff_coordinator::front_door::STREAMS as usize, 8),
        "{greedy:?}"
    );
    // The bound docs/threat-model.md states: 16 MB for strangers, 8 MB for the greedy
    // node's 128 stalled frames (64 KiB each), and slack for allocator noise.
    assert!(
        extra < 32 << 20,
        "the flood made the coordinator hold {} MB",
        extra >> 20
    );
    // Once the strangers are gone, new connections from their address are let in again.
    eventually(30, "the CLI connects after the flood", || {
        let o = c.skiff(&["get", "configmap", "front-door-probe"]);
        if o.status.success() {
            Ok(())
        } else {
            Err(err(&o))
        }
    });
}

fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut files = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else {
                files.push(p);
            }
        }
    }
    files
}

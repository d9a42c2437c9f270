//! End-to-end: a real coordinator, real agents with real containers, the real CLI.
//! Needs root (namespaces, mounts, cgroups); CI runs as root.

use serde_json::Value;
use skiff_tests::node::{eventually, AgentProc, Node, IMAGE};
use skiff_tests::{err, ok, out, Coordinator, NetNs, TempDir};

struct Cluster {
    // Drop order: processes first, then the namespace.
    agent: AgentProc,
    c: Coordinator,
    node: Node,
    _dir: TempDir,
    netns: NetNs,
}

/// A coordinator and an agent in a network namespace of their own (pods get addresses on
/// the agent's bridge; nothing can leave the machine).
/// A pod on the test's node whose one container runs `script` (a 1 s grace period).
fn pod_running(name: &str, script: &str) -> String {
    format!(
        "apiVersion: v1\nkind: Pod\nmetadata: {{name: {name}}}\nspec:\n  nodeName: NODE\n  \
         terminationGracePeriodSeconds: 1\n  containers:\n  - name: main\n    image: IMAGE\n    \
         command: [\"sh\", \"-c\", {script:?}]\n"
    )
}

fn cluster(tag: &str, extra: &[&str]) -> Cluster {
    cluster_on(Node::new(tag), tag, extra)
}

/// A cluster whose node is `node` (prepared by the caller).
fn cluster_on(node: Node, tag: &str, extra: &[&str]) -> Cluster {
    let netns = NetNs::new(tag);
    let dir = TempDir::new(&format!("{tag}-coord"));
    let c = Coordinator::start_in(dir.path(), skiff_tests::free_port(), Some(&netns.name));
    let server = format!("127.0.0.1:{}", c.port);
    let mut args = vec!["--restart-backoff", "1s", "--usage-interval", "1s"];
    args.extend_from_slice(extra);
    let agent = AgentProc::start(&node, &server, &c.node_token(), &args, Some(&netns.name));
    let cl = Cluster {
        agent,
        c,
        node,
        _dir: dir,
        netns,
    };
    cl.wait_node_ready();
    cl
}

impl Cluster {
    fn skiff(&self, args: &[&str]) -> std::process::Output {
        self.c.skiff(args)
    }

    fn wait_connected(&self) {
        eventually(30, "agent connected", || {
            let l = self.agent.log();
            if l.contains("connected to the coordinator") {
                Ok(())
            } else {
                Err(l)
            }
        });
    }

    fn wait_node_ready(&self) {
        eventually(30, "node registered", || {
            let o = self.skiff(&["get", "nodes"]);
            let s = out(&o);
            if s.contains(&self.node.name) && s.contains("Ready") {
                Ok(())
            } else {
                Err(format!("{s}{}\nagent log:\n{}", err(&o), self.agent.log()))
            }
        });
    }

    /// Applies a manifest given as YAML text.
    fn apply(&self, yaml: &str) {
        // Beside the coordinator's data (the node's disk may be full on purpose).
        let path = self._dir.path().join(format!("m-{}.yaml", rand_suffix()));
        std::fs::write(
            &path,
            yaml.replace("NODE", &self.node.name)
                .replace("IMAGE", IMAGE),
        )
        .unwrap();
        ok(self.skiff(&["apply", "-f", path.to_str().unwrap()]));
    }

    fn pod(&self, name: &str) -> Value {
        let o = self.skiff(&["get", "pod", name, "-o", "json"]);
        serde_json::from_str(&out(&o)).unwrap_or(Value::Null)
    }

    fn container(&self, pod: &str) -> Value {
        self.pod(pod)["status"]["containerStatuses"][0].clone()
    }

    /// Waits until the pod's first container runs and is ready.
    fn wait_running(&self, name: &str) -> Value {
        eventually(60, &format!("pod {name} Running and Ready"), || {
            let p = self.pod(name);
            let ready = p["status"]["conditions"].as_array().is_some_and(|cs| {
                cs.iter()
                    .any(|c| c["type"] == "Ready" && c["status"] == "True")
            });
            if p["status"]["phase"] == "Running" && ready {
                Ok(p)
            } else {
                Err(format!("{}\nagent log:\n{}", p["status"], self.agent.log()))
            }
        })
    }
}

fn rand_suffix() -> String {
    format!(
        "{}",
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos()
    )
}

fn condition(p: &Value, t: &str) -> String {
    p["status"]["conditions"]
        .as_array()
        .and_then(|cs| cs.iter().find(|c| c["type"] == t))
        .and_then(|c| c["status"].as_str())
        .unwrap_or("")
        .to_string()
}

#[test]
fn a_pod_runs_reports_status_serves_logs_and_exec_and_ends_gracefully() {
    let cl = cluster("e2e-basic", &[]);
    // The node registered itself as Kubernetes nodes do.
    let n: Value =
        serde_json::from_str(&ok(cl.skiff(&["get", "node", &cl.node.name, "-o", "json"]))).unwrap();
    let labels = &n["metadata"]["labels"];
    assert_eq!(labels["kubernetes.io/os"], "linux");
    assert_eq!(labels["kubernetes.io/hostname"], cl.node.name.as_str());
    assert!(labels["kubernetes.io/arch"].is_string());
    for r in ["cpu", "memory", "pods", "ephemeral-storage"] {
        assert!(n["status"]["capacity"][r].is_string(), "capacity {r}: {n}");
        assert!(n["status"]["allocatable"][r].is_string(), "allocatable {r}");
    }
    assert!(n["status"]["nodeInfo"]["kernelVersion"].is_string());
    let cidr = n["spec"]["podCIDR"]
        .as_str()
        .expect("the coordinator gives the node a pod CIDR");
    assert!(
        cidr.starts_with("10.42.") && cidr.ends_with(".0/24"),
        "{cidr}"
    );
    assert_eq!(n["status"]["addresses"][0]["type"], "InternalIP");

    let host = cl.node.data().join("host");
    std::fs::create_dir_all(&host).unwrap();
    cl.apply(&format!(
        r#"
apiVersion: v1
kind: Pod
metadata:
  name: web
spec:
  nodeName: NODE
  terminationGracePeriodSeconds: 20
  hostAliases:
  - ip: "127.0.0.1"
    hostnames: [foo.local, bar.local]
  volumes:
  - name: host
    hostPath: {{path: {}}}
  containers:
  - name: main
    image: IMAGE
    env:
    - {{name: GREETING, value: hello}}
    - name: POD
      valueFrom: {{fieldRef: {{fieldPath: metadata.name}}}}
    command: ["sh", "-c"]
    args:
    - |
      trap 'echo term > /host/term; exit 0' TERM
      echo "$GREETING from $POD"
      i=0; while true; do echo tick $i; i=$((i+1)); sleep 0.2; done
    volumeMounts:
    - {{name: host, mountPath: /host}}
    lifecycle:
      preStop:
        exec: {{command: ["sh", "-c", "echo prestop > /host/prestop"]}}
"#,
        host.display()
    ));
    let p = cl.wait_running("web");
    // hostAliases are lines of the pod's /etc/hosts, as the kubelet writes them.
    let hosts = ok(cl.skiff(&["exec", "web", "--", "cat", "/etc/hosts"]));
    assert!(
        hosts.contains("# Entries added by HostAliases.\n127.0.0.1\tfoo.local\tbar.local\n"),
        "{hosts}"
    );
    let st = &p["status"];
    assert_eq!(st["hostIP"], "127.0.0.1");
    let ip = st["podIP"].as_str().expect("podIP").to_string();
    assert_eq!(
        ip.rsplit_once('.').unwrap().0,
        cidr.rsplit_once('.').unwrap().0,
        "{ip} in {cidr}"
    );
    assert_eq!(st["podIPs"][0]["ip"], ip.as_str());
    assert!(st["startTime"].is_string());
    for c in ["PodScheduled", "Initialized", "ContainersReady", "Ready"] {
        assert_eq!(condition(&p, c), "True", "{c}: {st}");
    }
    let cs = &st["containerStatuses"][0];
    assert_eq!(cs["ready"], true);
    assert_eq!(cs["restartCount"], 0);
    assert!(cs["state"]["running"]["startedAt"].is_string(), "{cs}");
    assert!(cs["containerID"].as_str().unwrap().starts_with("skiff://"));
    assert!(cs["imageID"].as_str().unwrap().contains("sha256:"));

    // Pods on the node reach each other by pod IP.
    cl.apply(
        r#"
apiVersion: v1
kind: Pod
metadata: {name: server}
spec:
  nodeName: NODE
  terminationGracePeriodSeconds: 1
  containers:
  - name: httpd
    image: IMAGE
    command: ["sh", "-c", "mkdir -p /www && echo served > /www/index.html && exec httpd -f -p 8080 -h /www"]
"#,
    );
    let server_ip = cl.wait_running("server")["status"]["podIP"]
        .as_str()
        .unwrap()
        .to_string();
    assert_ne!(server_ip, ip);
    eventually(20, "pod to pod", || {
        let o = cl.skiff(&[
            "exec",
            "web",
            "--",
            "wget",
            "-qO-",
            &format!("http://{server_ip}:8080/"),
        ]);
        if out(&o) == "served\n" {
            Ok(())
        } else {
            Err(format!("{} {}", out(&o), err(&o)))
        }
    });
    // No route leaves the node from a pod: only its subnet is reachable.
    let o = cl.skiff(&[
        "exec",
        "web",
        "--",
        "wget",
        "-T",
        "2",
        "-qO-",
        "http://192.0.2.1/",
    ]);
    assert_ne!(o.status.code(), Some(0));
    ok(cl.skiff(&["delete", "pod", "server"]));

    // Logs and exec through the coordinator.
    let logs = eventually(10, "logs", || {
        let l = out(&cl.skiff(&["logs", "web"]));
        if l.contains("tick 3") {
            Ok(l)
        } else {
            Err(l)
        }
    });
    assert!(logs.starts_with("hello from web\n"), "{logs}");
    let tail = ok(cl.skiff(&["logs", "web", "--tail", "2"]));
    assert_eq!(tail.lines().count(), 2, "{tail}");
    let o = cl.skiff(&[
        "exec",
        "web",
        "--",
        "sh",
        "-c",
        "echo out; echo err >&2; exit 3",
    ]);
    assert_eq!(o.status.code(), Some(3));
    assert_eq!(out(&o), "out\n");
    assert_eq!(err(&o), "err\n");
    let o = cl.c.skiff_input(
        &["exec", "-i", "web", "--", "sh", "-c", "tr a-z A-Z"],
        b"piped input\n",
    );
    assert_eq!(String::from_utf8_lossy(&o.stdout), "PIPED INPUT\n");
    // With a terminal (util-linux `script` gives the CLI one): the command sees a tty.
    let cmdline = format!(
        "nsenter --net=/run/netns/{} -- {} --config {} exec -i -t web -- sh -c 'tty; exit 5'",
        cl.netns.name,
        skiff_tests::binary("skiff").display(),
        cl.c.config().display()
    );
    let o = std::process::Command::new("script")
        .args(["-qec", &cmdline, "/dev/null"])
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap();
    assert_eq!(
        o.status.code(),
        Some(5),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(
        String::from_utf8_lossy(&o.stdout).contains("/dev/pts/"),
        "{}",
        String::from_utf8_lossy(&o.stdout)
    );
    // `skiff attach -i` to a container with stdin and stdinOnce: the input reaches its
    // process, the end of the CLI's input is the end of the container's, and its exit code
    // comes back.
    cl.apply(
        r#"
apiVersion: v1
kind: Pod
metadata: {name: asker}
spec:
  nodeName: NODE
  restartPolicy: Never
  containers:
  - name: asker
    image: IMAGE
    stdin: true
    stdinOnce: true
    command: ["sh", "-c", "tr a-z A-Z; exit 2"]
"#,
    );
    cl.wait_running("asker");
    let o =
        cl.c.skiff_input(&["attach", "-i", "asker"], b"attached input\n");
    assert_eq!(String::from_utf8_lossy(&o.stdout), "ATTACHED INPUT\n");
    assert_eq!(o.status.code(), Some(2));
    let e = err(&cl.skiff(&["attach", "-i", "web"]));
    assert!(e.contains("was not started with stdin: true"), "{e}");
    ok(cl.skiff(&["delete", "pod", "asker"]));
    let d = ok(cl.skiff(&["describe", "pod", "web"]));
    assert!(d.contains("Started") && d.contains("Created"), "{d}");
    let top = eventually(20, "top", || {
        let o = cl.skiff(&["top", "pods"]);
        if o.status.success() {
            Ok(out(&o))
        } else {
            Err(err(&o))
        }
    });
    assert!(top.contains("web"), "{top}");
    ok(cl.skiff(&["top", "nodes"]));

    // Deletion: preStop, then SIGTERM; the pod object goes once the node confirms.
    let o = cl.skiff(&["delete", "pod", "web"]);
    assert!(o.status.success(), "{}", err(&o));
    let gone = cl.skiff(&["get", "pod", "web"]);
    assert!(
        !gone.status.success(),
        "the pod must be gone when delete returns"
    );
    assert_eq!(
        std::fs::read_to_string(host.join("prestop")).unwrap(),
        "prestop\n"
    );
    assert_eq!(
        std::fs::read_to_string(host.join("term")).unwrap(),
        "term\n"
    );
    let ps = out(&cl.node.agent(&["ps"]));
    assert_eq!(ps.lines().count(), 1, "no container may remain: {ps}");
    // The pods' addresses went back to the pool.
    let ipam = std::fs::read_to_string(cl.node.data().join("state/ipam.json")).unwrap();
    assert!(!ipam.contains(&ip), "{ipam}");
}

#[test]
fn restarts_follow_the_policy_with_backoff() {
    let cl = cluster("e2e-restart", &[]);
    cl.apply(
        r#"
apiVersion: v1
kind: Pod
metadata: {name: crash}
spec:
  nodeName: NODE
  containers:
  - name: main
    image: IMAGE
    command: ["sh", "-c", "echo attempt; exit 1"]
---
apiVersion: v1
kind: Pod
metadata: {name: hog}
spec:
  nodeName: NODE
  restartPolicy: Never
  containers:
  - name: main
    image: IMAGE
    command: ["sh", "-c", "exec tail /dev/zero"]
    resources:
      limits: {memory: 16Mi}
---
apiVersion: v1
kind: Pod
metadata: {name: job}
spec:
  nodeName: NODE
  restartPolicy: OnFailure
  volumes:
  - {name: work, emptyDir: {}}
  initContainers:
  - name: prepare
    image: IMAGE
    command: ["sh", "-c", "echo prepared > /work/state"]
    volumeMounts: [{name: work, mountPath: /work}]
  containers:
  - name: main
    image: IMAGE
    command: ["sh", "-c", "cat /work/state"]
    volumeMounts: [{name: work, mountPath: /work}]
"#,
    );
    // An image no registry serves: ErrImagePull, then ImagePullBackOff.
    cl.apply(
        r#"
apiVersion: v1
kind: Pod
metadata: {name: nopull}
spec:
  nodeName: NODE
  containers:
  - name: main
    image: 127.0.0.1:9/missing/image:1
"#,
    );
    // A pod past its activeDeadlineSeconds: stopped, Failed, never restarted.
    cl.apply(
        r#"
apiVersion: v1
kind: Pod
metadata: {name: deadline}
spec:
  nodeName: NODE
  activeDeadlineSeconds: 3
  terminationGracePeriodSeconds: 1
  containers:
  - name: main
    image: IMAGE
    command: ["sleep", "100000"]
"#,
    );
    let mut reasons = std::collections::BTreeSet::new();
    eventually(60, "pull backoff", || {
        let cs = cl.container("nopull");
        if let Some(r) = cs["state"]["waiting"]["reason"].as_str() {
            reasons.insert(r.to_string());
        }
        if reasons.contains("ImagePullBackOff") {
            Ok(())
        } else {
            Err(format!("{reasons:?} {cs}"))
        }
    });
    assert_eq!(cl.pod("nopull")["status"]["phase"], "Pending");

    // The crashing container restarts with a doubling backoff; restartCount grows.
    let mut delays = std::collections::BTreeSet::new();
    let cs = eventually(60, "three restarts", || {
        let cs = cl.container("crash");
        if let Some(m) = cs["state"]["waiting"]["message"].as_str() {
            delays.insert(m.split_whitespace().nth(1).unwrap_or("").to_string());
        }
        if cs["restartCount"].as_i64().unwrap_or(0) >= 3
            && cs["state"]["waiting"]["reason"] == "CrashLoopBackOff"
        {
            Ok(cs)
        } else {
            Err(cs.to_string())
        }
    });
    assert_eq!(cs["lastState"]["terminated"]["exitCode"], 1, "{cs}");
    assert_eq!(cs["lastState"]["terminated"]["reason"], "Error");
    assert!(
        delays.contains("2s") && delays.contains("4s"),
        "backoff must double: {delays:?}"
    );
    assert_eq!(ok(cl.skiff(&["logs", "crash", "--previous"])), "attempt\n");
    assert_eq!(cl.pod("crash")["status"]["phase"], "Running");
    let d = ok(cl.skiff(&["describe", "pod", "crash"]));
    assert!(d.contains("BackOff"), "{d}");

    // The memory hog is OOM-killed and, with restartPolicy Never, the pod fails.
    let p = eventually(60, "hog failed", || {
        let p = cl.pod("hog");
        if p["status"]["phase"] == "Failed" {
            Ok(p)
        } else {
            Err(p["status"].to_string())
        }
    });
    let t = &p["status"]["containerStatuses"][0]["state"]["terminated"];
    assert_eq!(t["reason"], "OOMKilled", "{t}");
    assert_eq!(t["exitCode"], 137);

    let p = eventually(60, "deadline exceeded", || {
        let p = cl.pod("deadline");
        let cs = &p["status"]["containerStatuses"][0];
        if p["status"]["phase"] == "Failed" && cs["state"]["terminated"].is_object() {
            Ok(p)
        } else {
            Err(p["status"].to_string())
        }
    });
    assert_eq!(p["status"]["reason"], "DeadlineExceeded", "{p}");
    assert_eq!(
        p["status"]["message"],
        "Pod was active on the node longer than the specified deadline"
    );
    std::thread::sleep(std::time::Duration::from_secs(3));
    let p = cl.pod("deadline");
    let cs = &p["status"]["containerStatuses"][0];
    assert_eq!(p["status"]["phase"], "Failed", "{p}");
    assert_eq!(cs["restartCount"], 0, "not restarted: {cs}");
    assert!(cs["state"]["terminated"].is_object(), "{cs}");
    let d = ok(cl.skiff(&["describe", "pod", "deadline"]));
    assert!(d.contains("DeadlineExceeded"), "{d}");

    // Init containers run first; the job completes.
    let p = eventually(60, "job succeeded", || {
        let p = cl.pod("job");
        if p["status"]["phase"] == "Succeeded" {
            Ok(p)
        } else {
            Err(p["status"].to_string())
        }
    });
    assert_eq!(
        p["status"]["initContainerStatuses"][0]["state"]["terminated"]["reason"],
        "Completed"
    );
    assert_eq!(
        p["status"]["containerStatuses"][0]["state"]["terminated"]["reason"],
        "Completed"
    );
    assert_eq!(ok(cl.skiff(&["logs", "job"])), "prepared\n");

    // Sidecars (init containers with restartPolicy Always), as the Kubernetes docs run a
    // log shipper: the app starts only once the shipper's startup probe passed (else it
    // exits 7), the shipper reads what the app writes, and once the app is done the
    // shipper is stopped and the pod Succeeded. A sidecar that exits is restarted even in
    // a Never pod, while its app runs on.
    cl.apply(
        r#"
apiVersion: v1
kind: Pod
metadata: {name: shipper}
spec:
  nodeName: NODE
  restartPolicy: Never
  terminationGracePeriodSeconds: 2
  volumes: [{name: data, emptyDir: {}}]
  initContainers:
  - name: logshipper
    image: IMAGE
    restartPolicy: Always
    command: ["sh", "-c", "sleep 2; touch /data/app.log /data/up; exec tail -F /data/app.log"]
    startupProbe:
      exec: {command: ["test", "-e", "/data/up"]}
      periodSeconds: 1
      failureThreshold: 30
    volumeMounts: [{name: data, mountPath: /data}]
  containers:
  - name: app
    image: IMAGE
    command: ["sh", "-c", "test -e /data/up || exit 7; for i in 1 2 3; do echo line $i >> /data/app.log; sleep 1; done"]
    volumeMounts: [{name: data, mountPath: /data}]
---
apiVersion: v1
kind: Pod
metadata: {name: flaky-sidecar}
spec:
  nodeName: NODE
  restartPolicy: Never
  terminationGracePeriodSeconds: 1
  initContainers:
  - name: helper
    image: IMAGE
    restartPolicy: Always
    command: ["sh", "-c", "echo helper up; sleep 1; exit 3"]
  containers:
  - name: app
    image: IMAGE
    command: ["sleep", "100000"]
"#,
    );
    let p = eventually(60, "the shipper's pod succeeded", || {
        let p = cl.pod("shipper");
        let side = &p["status"]["initContainerStatuses"][0];
        if p["status"]["phase"] == "Succeeded" && side["state"]["terminated"].is_object() {
            Ok(p)
        } else {
            Err(format!("{}\nagent log:\n{}", p["status"], cl.agent.log()))
        }
    });
    let app = &p["status"]["containerStatuses"][0];
    assert_eq!(app["state"]["terminated"]["exitCode"], 0, "{p}");
    let side = &p["status"]["initContainerStatuses"][0];
    assert_eq!(side["name"], "logshipper");
    assert_eq!(side["restartCount"], 0, "{side}");
    assert_eq!(condition(&p, "Initialized"), "True");
    let shipped = ok(cl.skiff(&["logs", "shipper", "-c", "logshipper"]));
    assert!(shipped.contains("line 1\nline 2\nline 3"), "{shipped:?}");
    let d = ok(cl.skiff(&["describe", "pod", "shipper"]));
    assert!(
        d.contains("Stopping container logshipper: its pod's containers have completed"),
        "{d}"
    );
    let p = eventually(60, "the flaky sidecar restarted beside its app", || {
        let p = cl.pod("flaky-sidecar");
        let side = &p["status"]["initContainerStatuses"][0];
        if side["restartCount"].as_i64().unwrap_or(0) >= 2 {
            Ok(p)
        } else {
            Err(p["status"].to_string())
        }
    });
    let app = &p["status"]["containerStatuses"][0];
    assert!(app["state"]["running"].is_object(), "{p}");
    assert_eq!(app["restartCount"], 0, "{p}");
    assert_eq!(p["status"]["phase"], "Running", "{p}");
    assert_eq!(condition(&p, "Initialized"), "True");
    ok(cl.skiff(&["delete", "pod", "flaky-sidecar", "shipper"]));

    // The docs' Indexed Job (application/job/indexed-job.yaml, with sh for bash): each pod
    // reads its index from JOB_COMPLETION_INDEX in an init container, and its hostname is
    // the Job's name and index.
    cl.apply(
        r#"
apiVersion: batch/v1
kind: Job
metadata: {name: indexed-job}
spec:
  completions: 5
  parallelism: 3
  completionMode: Indexed
  template:
    spec:
      restartPolicy: Never
      terminationGracePeriodSeconds: 1
      initContainers:
      - name: input
        image: IMAGE
        command: ["sh", "-c", "set -- foo bar baz qux xyz; shift $JOB_COMPLETION_INDEX; echo $1 > /input/data.txt"]
        volumeMounts: [{mountPath: /input, name: input}]
      containers:
      - name: worker
        image: IMAGE
        command: ["sh", "-c", "rev /input/data.txt; hostname"]
        volumeMounts: [{mountPath: /input, name: input}]
      volumes:
      - {name: input, emptyDir: {}}
"#,
    );
    let j = eventually(120, "the Indexed Job complete", || {
        let o = cl.skiff(&["get", "job", "indexed-job", "-o", "json"]);
        let j: Value = serde_json::from_str(&out(&o)).unwrap_or(Value::Null);
        if condition(&j, "Complete") == "True" {
            Ok(j)
        } else {
            Err(format!("{}\nagent log:\n{}", j["status"], cl.agent.log()))
        }
    });
    assert_eq!(j["status"]["completedIndexes"], "0-4", "{j}");
    assert_eq!(j["status"]["succeeded"], 5, "{j}");
    let pods: Value = serde_json::from_str(&ok(cl.skiff(&[
        "get",
        "pods",
        "-l",
        "batch.kubernetes.io/job-completion-index=2",
        "-o",
        "json",
    ])))
    .unwrap();
    let name = pods["items"][0]["metadata"]["name"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(name.starts_with("indexed-job-2-"), "{name}");
    assert_eq!(ok(cl.skiff(&["logs", &name])), "zab\nindexed-job-2\n");
    ok(cl.skiff(&["delete", "job", "indexed-job"]));

    // postStart hooks (the docs' lifecycle-events pod): run right after the start; one
    // that fails has its container stopped and restarted.
    cl.apply(
        r#"
apiVersion: v1
kind: Pod
metadata: {name: lifecycle-demo}
spec:
  nodeName: NODE
  terminationGracePeriodSeconds: 1
  containers:
  - name: lifecycle-demo-container
    image: IMAGE
    command: ["sleep", "100000"]
    lifecycle:
      postStart:
        exec:
          command: ["/bin/sh", "-c", "echo Hello from the postStart handler > /tmp/message"]
---
apiVersion: v1
kind: Pod
metadata: {name: bad-hook}
spec:
  nodeName: NODE
  terminationGracePeriodSeconds: 1
  containers:
  - name: main
    image: IMAGE
    command: ["sleep", "100000"]
    lifecycle:
      postStart:
        exec: {command: ["sh", "-c", "exit 3"]}
"#,
    );
    cl.wait_running("lifecycle-demo");
    assert_eq!(
        ok(cl.skiff(&["exec", "lifecycle-demo", "--", "cat", "/tmp/message"])),
        "Hello from the postStart handler\n"
    );
    eventually(60, "the failed hook's container restarted", || {
        let cs = cl.container("bad-hook");
        if cs["restartCount"].as_i64().unwrap_or(0) >= 1 {
            Ok(())
        } else {
            Err(cs.to_string())
        }
    });
    let d = ok(cl.skiff(&["describe", "pod", "bad-hook"]));
    assert!(d.contains("FailedPostStartHook"), "{d}");
    ok(cl.skiff(&["delete", "pod", "lifecycle-demo", "bad-hook"]));
}

#[test]
fn probes_restart_and_gate_readiness() {
    let cl = cluster("e2e-probes", &[]);
    cl.apply(
        r#"
apiVersion: v1
kind: Pod
metadata: {name: sick}
spec:
  nodeName: NODE
  terminationGracePeriodSeconds: 2
  containers:
  - name: web
    image: IMAGE
    command: ["sh", "-c", "mkdir -p /www && echo ok > /www/index.html && exec httpd -f -p 8080 -h /www"]
    ports: [{name: http, containerPort: 8080}]
    readinessProbe:
      httpGet: {path: /index.html, port: http}
      periodSeconds: 1
    livenessProbe:
      httpGet: {path: /healthz, port: 8080}
      periodSeconds: 1
      failureThreshold: 2
---
apiVersion: v1
kind: Pod
metadata: {name: flappy}
spec:
  nodeName: NODE
  containers:
  - name: main
    image: IMAGE
    command: ["sh", "-c", "while true; do touch /tmp/ready; sleep 3; rm -f /tmp/ready; sleep 3; done"]
    readinessProbe:
      exec: {command: ["test", "-f", "/tmp/ready"]}
      periodSeconds: 1
      failureThreshold: 1
---
apiVersion: v1
kind: Pod
metadata: {name: slow}
spec:
  nodeName: NODE
  containers:
  - name: main
    image: IMAGE
    command: ["sh", "-c", "sleep 3; touch /tmp/started; exec sleep 1000"]
    startupProbe:
      exec: {command: ["test", "-f", "/tmp/started"]}
      periodSeconds: 1
      failureThreshold: 30
    livenessProbe:
      tcpSocket: {port: 9}
      periodSeconds: 2
      failureThreshold: 2
"#,
    );
    // A failing HTTP liveness probe (404) restarts the container; readiness over HTTP
    // passes in between.
    eventually(60, "liveness restarts", || {
        let cs = cl.container("sick");
        if cs["restartCount"].as_i64().unwrap_or(0) >= 2 {
            Ok(())
        } else {
            Err(cs.to_string())
        }
    });
    let d = ok(cl.skiff(&["describe", "pod", "sick"]));
    assert!(
        d.contains("Liveness probe failed: HTTP probe failed with statuscode: 404"),
        "{d}"
    );
    assert!(d.contains("Killing"), "{d}");

    // Readiness flips Ready both ways.
    let mut seen = std::collections::BTreeSet::new();
    eventually(60, "Ready flips", || {
        seen.insert(condition(&cl.pod("flappy"), "Ready"));
        if seen.contains("True") && seen.contains("False") {
            Ok(())
        } else {
            Err(format!("{seen:?}"))
        }
    });
    let p = cl.pod("flappy");
    assert_eq!(p["status"]["containerStatuses"][0]["restartCount"], 0);

    // The startup probe holds liveness back: while it has not passed (3 s), the failing
    // liveness probe (a closed port) does not run; once started, liveness restarts it.
    let cs = eventually(30, "started", || {
        let cs = cl.container("slow");
        if cs["started"] == true {
            Ok(cs)
        } else {
            Err(cs.to_string())
        }
    });
    assert_eq!(
        cs["restartCount"], 0,
        "liveness must wait for startup: {cs}"
    );
    eventually(30, "liveness after startup", || {
        let cs = cl.container("slow");
        if cs["restartCount"].as_i64().unwrap_or(0) >= 1 {
            Ok(())
        } else {
            Err(cs.to_string())
        }
    });
    let d = ok(cl.skiff(&["describe", "pod", "slow"]));
    assert!(
        d.contains("failed liveness probe, will be restarted"),
        "{d}"
    );
}

/// A pod's `imagePullSecrets` authenticate its pulls (the node's registries file marks the
/// registry as plain HTTP and holds no credentials); a pod without them is refused, and a
/// Secret that is missing is named in an event.
#[test]
fn image_pull_secrets_authenticate_the_pods_pulls() {
    use skiff_tests::registry::{Auth, Registry, PASSWORD, USER};
    let node = Node::new("e2e-pullsecret");
    let port = 5000;
    std::fs::write(
        node.data().join("registries.yaml"),
        format!("configs:\n  \"127.0.0.1:{port}\":\n    insecure: true\n"),
    )
    .unwrap();
    let cl = cluster_on(node, "e2e-pullsecret", &[]);
    let reg = Registry::start_in(Auth::Basic, false, Some(&cl.netns.name), port);
    let layouts = TempDir::new("pullsecret-layout");
    for tag in ["v1", "v2"] {
        let l = skiff_tests::image::multi_platform_layout(&layouts.path().join(tag), tag);
        reg.push(&l, tag, &format!("team/app:{tag}"));
    }
    let b64 = |s: &str| base64::Engine::encode(&base64::engine::general_purpose::STANDARD, s);
    let config = format!(
        r#"{{"auths": {{"{}": {{"auth": "{}"}}}}}}"#,
        reg.host,
        b64(&format!("{USER}:{PASSWORD}"))
    );
    let pod = |name: &str, tag: &str, secret: &str| {
        format!("apiVersion: v1\nkind: Pod\nmetadata: {{name: {name}}}\nspec:\n  nodeName: NODE\n  restartPolicy: Never\n  imagePullSecrets: [{{name: {secret}}}]\n  containers:\n  - name: main\n    image: {}/team/app:{tag}\n    command: [echo, pulled]\n---\n", reg.host)
    };
    cl.apply(&format!(
        "apiVersion: v1\nkind: Secret\nmetadata: {{name: regcred}}\ntype: kubernetes.io/dockerconfigjson\ndata:\n  .dockerconfigjson: {}\n---\n{}{}",
        b64(&config),
        pod("private", "v1", "regcred"),
        pod("lost", "v2", "missing"),
    ));
    eventually(60, "private pulled and ran", || {
        let p = cl.pod("private");
        match p["status"]["phase"].as_str() {
            Some("Succeeded") => Ok(()),
            _ => Err(format!("{}\n{}", p["status"], cl.agent.log())),
        }
    });
    assert_eq!(ok(cl.skiff(&["logs", "private"])), "pulled\n");
    // Without credentials (its Secret missing), the registry refuses and the pod waits.
    eventually(60, "refused pull", || {
        let cs = cl.container("lost");
        match cs["state"]["waiting"]["reason"].as_str() {
            Some("ErrImagePull" | "ImagePullBackOff") => Ok(()),
            _ => Err(cs.to_string()),
        }
    });
    let d = ok(cl.skiff(&["describe", "pod", "lost"]));
    assert!(
        d.contains("FailedToRetrieveImagePullSecret")
            && d.contains("Unable to retrieve some image pull secrets (missing)")
            && d.contains("needs credentials"),
        "{d}"
    );
}

#[test]
fn config_maps_and_secrets_reach_the_pod_and_follow_changes() {
    let cl = cluster("e2e-config", &[]);
    cl.apply(
        r#"
apiVersion: v1
kind: ConfigMap
metadata: {name: settings}
data: {mode: blue, "app.conf": "level=1"}
---
apiVersion: v1
kind: Secret
metadata: {name: creds}
stringData: {password: hunter2}
---
apiVersion: v1
kind: Pod
metadata: {name: reader}
spec:
  nodeName: NODE
  volumes:
  - {name: conf, configMap: {name: settings}}
  - {name: secret, secret: {secretName: creds}}
  containers:
  - name: main
    image: IMAGE
    command: ["sh", "-c", "exec sleep 1000"]
    env:
    - name: MODE
      valueFrom: {configMapKeyRef: {name: settings, key: mode}}
    envFrom:
    - secretRef: {name: creds}
    volumeMounts:
    - {name: conf, mountPath: /etc/app}
    - {name: secret, mountPath: /etc/secret, readOnly: true}
"#,
    );
    cl.wait_running("reader");
    let env = ok(cl.skiff(&["exec", "reader", "--", "sh", "-c", "echo $MODE $password"]));
    assert_eq!(env, "blue hunter2\n");
    assert_eq!(
        ok(cl.skiff(&["exec", "reader", "--", "cat", "/etc/app/app.conf"])),
        "level=1"
    );
    assert_eq!(
        ok(cl.skiff(&["exec", "reader", "--", "cat", "/etc/secret/password"])),
        "hunter2"
    );
    // A change to the ConfigMap reaches the mounted files of the running container.
    cl.apply(
        r#"
apiVersion: v1
kind: ConfigMap
metadata: {name: settings}
data: {mode: green, "app.conf": "level=2"}
"#,
    );
    eventually(30, "updated file", || {
        let f = out(&cl.skiff(&["exec", "reader", "--", "cat", "/etc/app/app.conf"]));
        if f == "level=2" {
            Ok(())
        } else {
            Err(f)
        }
    });
    assert_eq!(cl.container("reader")["restartCount"], 0);

    // The downward API and projected volumes, as the Kubernetes docs use them: a projected
    // volume of a ConfigMap item, a Secret and the pod's labels; a downwardAPI volume of
    // the annotations and a container's memory limit; env from a resource. A label change
    // reaches the file without a restart.
    let downward = |zone: &str| {
        format!(
            r#"
apiVersion: v1
kind: Pod
metadata:
  name: downward
  labels: {{zone: {zone}, rack: rack-22}}
  annotations: {{builder: john-doe}}
spec:
  nodeName: NODE
  terminationGracePeriodSeconds: 1
  volumes:
  - name: all-in-one
    projected:
      defaultMode: 0440
      sources:
      - configMap:
          name: settings
          items: [{{key: app.conf, path: conf/app.conf}}]
      - secret: {{name: creds}}
      - downwardAPI:
          items: [{{path: labels, fieldRef: {{fieldPath: metadata.labels}}}}]
  - name: podinfo
    downwardAPI:
      items:
      - {{path: annotations, fieldRef: {{fieldPath: metadata.annotations}}}}
      - path: mem_limit
        resourceFieldRef: {{containerName: main, resource: limits.memory, divisor: 1Mi}}
  containers:
  - name: main
    image: IMAGE
    command: ["sh", "-c", "exec sleep 1000"]
    resources:
      requests: {{cpu: 125m}}
      limits: {{memory: 64Mi, cpu: 250m}}
    env:
    - name: CPU_REQUEST
      valueFrom: {{resourceFieldRef: {{resource: requests.cpu, divisor: 1m}}}}
    - name: MY_NAME
      valueFrom: {{fieldRef: {{fieldPath: metadata.name}}}}
    volumeMounts:
    - {{name: all-in-one, mountPath: /projected, readOnly: true}}
    - {{name: podinfo, mountPath: /etc/podinfo}}
"#
        )
    };
    cl.apply(&downward("us-est-coast"));
    cl.wait_running("downward");
    let exec = |cmd: &str| ok(cl.skiff(&["exec", "downward", "--", "sh", "-c", cmd]));
    assert_eq!(exec("echo $CPU_REQUEST $MY_NAME"), "125 downward\n");
    assert_eq!(exec("cat /projected/conf/app.conf"), "level=2");
    assert_eq!(exec("cat /projected/password"), "hunter2");
    assert_eq!(
        exec("cat /projected/labels"),
        "rack=\"rack-22\"\nzone=\"us-est-coast\""
    );
    assert_eq!(exec("stat -L -c %a /projected/password"), "440\n");
    assert_eq!(exec("cat /etc/podinfo/annotations"), "builder=\"john-doe\"");
    assert_eq!(exec("cat /etc/podinfo/mem_limit"), "64");
    cl.apply(&downward("eu-west"));
    eventually(30, "the new label in the projected file", || {
        let f = out(&cl.skiff(&["exec", "downward", "--", "cat", "/projected/labels"]));
        if f.contains("zone=\"eu-west\"") {
            Ok(())
        } else {
            Err(f)
        }
    });
    assert_eq!(cl.container("downward")["restartCount"], 0);
    ok(cl.skiff(&["delete", "pod", "downward", "reader"]));
}

#[test]
fn the_node_keeps_its_pods_through_agent_crashes_and_coordinator_outages() {
    let mut cl = cluster("e2e-autonomy", &[]);
    cl.apply(
        r#"
apiVersion: v1
kind: Pod
metadata: {name: keep}
spec:
  nodeName: NODE
  containers:
  - name: main
    image: IMAGE
    command: ["sh", "-c", "i=0; while true; do echo tick $i; i=$((i+1)); sleep 0.2; done"]
"#,
    );
    cl.apply(&pod_running("doomed", "exec sleep 1000"));
    let p = cl.wait_running("keep");
    cl.wait_running("doomed");
    let uid = p["metadata"]["uid"].as_str().unwrap().to_string();
    let id = p["status"]["containerStatuses"][0]["containerID"]
        .as_str()
        .unwrap()
        .to_string();
    let started = p["status"]["containerStatuses"][0]["state"]["running"]["startedAt"].clone();
    let ticks = |cl: &Cluster| -> Result<u64, String> {
        let o = cl.skiff(&["logs", "keep", "--tail", "1"]);
        out(&o)
            .trim()
            .strip_prefix("tick ")
            .and_then(|n| n.parse().ok())
            .ok_or_else(|| format!("logs: {:?} {:?}", out(&o), err(&o)))
    };
    // Five SIGKILLs of the agent restart no container.
    let mut last = 0;
    for i in 0..5 {
        cl.agent.kill();
        cl.agent.restart();
        cl.wait_connected();
        let t = eventually(30, "agent back with logs", || {
            let t = ticks(&cl)?;
            if t > last {
                Ok(t)
            } else {
                Err(format!("{t} after kill {i}"))
            }
        });
        last = t;
    }
    let cs = cl.container("keep");
    assert_eq!(cs["restartCount"], 0, "{cs}");
    assert_eq!(cs["containerID"], id.as_str());
    assert_eq!(cl.pod("keep")["metadata"]["uid"], uid.as_str());

    // The node's socket moves; the session (one connection) carries on.
    skiff_tests::send_signal(cl.agent.pid(), libc::SIGUSR1);
    eventually(10, "rebound", || {
        if cl.agent.log().contains("moved the connection") {
            Ok(())
        } else {
            Err(cl.agent.log())
        }
    });
    assert_eq!(
        ok(cl.skiff(&["exec", "keep", "--", "echo", "after-move"])),
        "after-move\n"
    );
    assert_eq!(
        cl.agent
            .log()
            .matches("connected to the coordinator")
            .count(),
        1,
        "{}",
        cl.agent.log()
    );

    // A pod deleted while its agent is down is stopped when the agent returns.
    cl.agent.kill();
    ok(cl.skiff(&["delete", "pod", "doomed", "--force", "--grace-period", "0"]));
    cl.agent.restart();
    cl.wait_connected();
    eventually(30, "doomed stopped", || {
        let ps = out(&cl.node.agent(&["ps"]));
        if ps.lines().filter(|l| l.contains("running")).count() == 1 {
            Ok(())
        } else {
            Err(ps)
        }
    });

    // Coordinator down: a crashed container is still restarted.
    let port = cl.c.port;
    cl.c.kill();
    let pid = out(&cl.node.agent(&["ps"]))
        .lines()
        .find(|l| l.contains("running"))
        .and_then(|l| l.split_whitespace().nth(3).map(String::from))
        .unwrap();
    skiff_tests::send_signal(pid.parse().unwrap(), libc::SIGKILL);
    eventually(30, "restarted while cut off", || {
        let ps = out(&cl.node.agent(&["ps"]));
        if ps
            .lines()
            .any(|l| l.contains(".main.1") && l.contains("running"))
        {
            Ok(())
        } else {
            Err(ps)
        }
    });
    // The agent restarted while the coordinator is down (and its containers gone, as after
    // a reboot) brings its pods back from its own disk.
    cl.agent.kill();
    let ids: Vec<String> = out(&cl.node.agent(&["ps"]))
        .lines()
        .skip(1)
        .filter_map(|l| l.split_whitespace().next().map(String::from))
        .collect();
    let mut rm = vec!["rm"];
    rm.extend(ids.iter().map(String::as_str));
    ok(cl.node.agent(&rm));
    cl.agent.restart();
    eventually(30, "pods back from local state", || {
        let ps = out(&cl.node.agent(&["ps"]));
        if ps
            .lines()
            .any(|l| l.contains(&uid) && l.contains("running"))
        {
            Ok(())
        } else {
            Err(format!("{ps}\n{}", cl.agent.log()))
        }
    });
    // The coordinator returns: statuses converge, the pod is the same object.
    cl.c = Coordinator::start_in(&cl.c.data_dir.clone(), port, Some(&cl.netns.name));
    eventually(30, "status converged", || {
        let p = cl.pod("keep");
        let cs = &p["status"]["containerStatuses"][0];
        let now_started = &cs["state"]["running"]["startedAt"];
        if p["status"]["phase"] == "Running"
            && *now_started != started
            && condition(&p, "Ready") == "True"
        {
            Ok(())
        } else {
            Err(p["status"].to_string())
        }
    });
    assert_eq!(
        cl.pod("keep")["metadata"]["uid"],
        uid.as_str(),
        "no pod was recreated"
    );
    let all = out(&cl.skiff(&["get", "pods", "-o", "name"]));
    assert_eq!(all.trim(), "pod/keep");
}

/// The newest log (`<n>.log`, highest n) of a pod's container, read from the node's disk
/// (the coordinator may be down): its attempt number and text.
fn log_on_disk(node: &skiff_tests::node::Node, pod: &str, container: &str) -> (u32, String) {
    let logs = node.data().join("logs");
    let dir = std::fs::read_dir(&logs)
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path())
        .find(|p| {
            p.file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with(&format!("default_{pod}_")))
        })
        .map(|p| p.join(container));
    let newest = dir
        .into_iter()
        .flat_map(|d| std::fs::read_dir(d).into_iter().flatten().flatten())
        .filter_map(|e| {
            let n = e
                .file_name()
                .to_string_lossy()
                .strip_suffix(".log")?
                .parse()
                .ok()?;
            Some((n, e.path()))
        })
        .max();
    newest.map_or((0, String::new()), |(n, p)| {
        (n, std::fs::read_to_string(p).unwrap_or_default())
    })
}

/// Links of the node's namespace whose names start with `prefix` (skiff's veths `skv…`,
/// bridge `skb…`).
fn links(netns: &skiff_tests::NetNs, prefix: &str) -> Vec<String> {
    let o = std::process::Command::new("ip")
        .args(["-n", &netns.name, "-o", "link", "show"])
        .output()
        .unwrap();
    out(&o)
        .lines()
        .filter_map(|l| l.split(": ").nth(1))
        .map(|n| n.split('@').next().unwrap_or(n).to_string())
        .filter(|n| n.starts_with(prefix))
        .collect()
}

/// What the client's log shows when `probe get web:80` reached the pod behind the Service
/// (`probe serve` answers with its hostname).
const REACHED: &str = "stdout F web";

#[test]
fn a_node_comes_back_whole_from_power_cuts_and_broken_sandboxes() {
    let mut cl = cluster("e2e-power", &[]);
    cl.apply(
        r#"
apiVersion: v1
kind: Pod
metadata: {name: web, labels: {app: web}}
spec:
  terminationGracePeriodSeconds: 1
  volumes:
  - {name: data, emptyDir: {}}
  - {name: scratch, emptyDir: {medium: Memory}}
  - {name: kept, persistentVolumeClaim: {claimName: kept}}
  containers:
  - name: main
    image: IMAGE
    command: ["sh", "-c", "[ -f /data/born ] || date +%s%N > /data/born; [ -f /kept/born ] || cp /data/born /kept/born; echo born $(cat /data/born) scratch [$(ls /scratch)] kept $(cat /kept/born); touch /scratch/mark; exec probe serve 8080"]
    readinessProbe:
      httpGet: {path: /, port: 8080}
      periodSeconds: 1
    volumeMounts:
    - {name: data, mountPath: /data}
    - {name: scratch, mountPath: /scratch}
    - {name: kept, mountPath: /kept}
---
apiVersion: v1
kind: PersistentVolumeClaim
metadata: {name: kept}
spec:
  accessModes: [ReadWriteOncePod]
  resources: {requests: {storage: 100Mi}}
---
apiVersion: v1
kind: Service
metadata: {name: web}
spec:
  selector: {app: web}
  ports: [{port: 80, targetPort: 8080}]
---
apiVersion: v1
kind: Pod
metadata: {name: client}
spec:
  nodeName: NODE
  terminationGracePeriodSeconds: 1
  containers:
  - name: main
    image: IMAGE
    command: ["sh", "-c", "while true; do probe get web:80; sleep 0.5; done"]
"#,
    );
    let web = cl.wait_running("web");
    let client = cl.wait_running("client");
    let uids = [&web, &client].map(|p| p["metadata"]["uid"].as_str().unwrap().to_string());
    let (_, first) = log_on_disk(&cl.node, "web", "main");
    let born = first
        .split_whitespace()
        .skip_while(|w| *w != "born")
        .nth(1)
        .expect("born line")
        .to_string();
    eventually(
        30,
        "the client reaches web through its Service",
        || match log_on_disk(&cl.node, "client", "main") {
            (0, l) if l.contains(REACHED) => Ok(()),
            (_, l) => Err(l),
        },
    );

    // The node has heard of the Service and its endpoint (it keeps them on disk).
    let web_ip = cl.pod("web")["status"]["podIP"]
        .as_str()
        .unwrap()
        .to_string();
    eventually(10, "the cluster view kept on disk", || {
        let v =
            std::fs::read_to_string(cl.node.data().join("state/cluster.json")).unwrap_or_default();
        if v.contains(&web_ip) {
            Ok(())
        } else {
            Err(v)
        }
    });

    // Two power cuts in a row, the coordinator down: each time the pods come back from the
    // node's own disk, in new sandboxes, the Service and DNS working from the kept view.
    let port = cl.c.port;
    cl.c.kill();
    for cut in 1..=2u32 {
        cl.agent.kill();
        skiff_tests::node::power_cut(&cl.node, &cl.netns);
        cl.agent.restart();
        eventually(60, &format!("pods back after power cut {cut}"), || {
            let (n, l) = log_on_disk(&cl.node, "client", "main");
            if n == cut && l.contains(REACHED) {
                Ok(())
            } else {
                Err(format!(
                    "client attempt {n}: {l}\nagent logs:\n{}\ncluster view: {}",
                    cl.agent.all_logs(),
                    std::fs::read_to_string(cl.node.data().join("state/cluster.json"))
                        .unwrap_or_default()
                ))
            }
        });
        let (n, l) = log_on_disk(&cl.node, "web", "main");
        assert_eq!(n, cut, "{l}");
        // emptyDir on disk survives (the pod is the same), memory emptyDir does not; the
        // claim's volume (a local-path directory) survives, mounted with no coordinator.
        assert!(
            l.contains(&format!("born {born} scratch [] kept {born}")),
            "{l}"
        );
    }
    assert!(
        cl.agent.log().contains("sandbox broken: making it anew"),
        "{}",
        cl.agent.log()
    );

    // The coordinator returns: the same pods, Running and Ready, each restarted once per
    // power cut, nothing duplicated; the log from before the cut is still there.
    cl.c = Coordinator::start_in(&cl.c.data_dir.clone(), port, Some(&cl.netns.name));
    let restarted = |cl: &Cluster, count: i64| {
        for (name, uid) in ["web", "client"].iter().zip(&uids) {
            let p = cl.wait_running(name);
            assert_eq!(p["metadata"]["uid"], uid.as_str(), "{name} is the same pod");
            eventually(30, &format!("{name} restartCount {count}"), || {
                let cs = cl.container(name);
                if cs["restartCount"] == count && cs["ready"] == true {
                    Ok(())
                } else {
                    Err(cs.to_string())
                }
            });
        }
        let all = out(&cl.skiff(&["get", "pods", "-o", "name"]));
        assert_eq!(
            all.trim(),
            "pod/client\npod/web",
            "no pod duplicated or recreated"
        );
    };
    restarted(&cl, 2);
    let previous = ok(cl.skiff(&["logs", "web", "--previous"]));
    assert!(previous.contains(&format!("born {born}")), "{previous}");
    let events = ok(cl.skiff(&["describe", "pod", "web"]));
    assert!(events.contains("SandboxChanged"), "{events}");

    // Pods' veths deleted under them, then the node's bridge: the sandboxes are made anew
    // and the pods are Ready again without anyone deleting them.
    let reached_again = |cl: &Cluster, attempt: u32| {
        eventually(60, "the client reaches web again", || {
            let (n, l) = log_on_disk(&cl.node, "client", "main");
            if n == attempt && l.contains(REACHED) {
                Ok(())
            } else {
                Err(format!(
                    "client attempt {n}: {l}\nagent log:\n{}",
                    cl.agent.log()
                ))
            }
        });
    };
    let veths = links(&cl.netns, "skv");
    assert_eq!(veths.len(), 2, "{veths:?}");
    for v in &veths {
        ok(std::process::Command::new("ip")
            .args(["-n", &cl.netns.name, "link", "del", v])
            .output()
            .unwrap());
    }
    reached_again(&cl, 3);
    restarted(&cl, 3);
    let bridge = links(&cl.netns, "skb");
    assert_eq!(bridge.len(), 1, "{bridge:?}");
    ok(std::process::Command::new("ip")
        .args(["-n", &cl.netns.name, "link", "del", &bridge[0]])
        .output()
        .unwrap());
    reached_again(&cl, 4);
    restarted(&cl, 4);
    assert_eq!(links(&cl.netns, "skb"), bridge, "the bridge is rebuilt");

    // The node's nftables table (Service translations, masquerading) flushed away: written
    // again, with the Service's translation, and nothing restarts for it.
    let nft = |args: &[&str]| {
        std::process::Command::new("ip")
            .args(["netns", "exec", &cl.netns.name, "nft"])
            .args(args)
            .output()
            .unwrap()
    };
    ok(nft(&["flush", "ruleset"]));
    let table = format!("skiff-{}", cl.node.name);
    eventually(30, "the node's rules written again", || {
        let o = nft(&["list", "table", "ip", &table]);
        let t = out(&o);
        if o.status.success()
            && t.contains("masquerade")
            && t.contains(&format!("dnat to {web_ip}"))
        {
            Ok(())
        } else {
            Err(format!("{t}{}", err(&o)))
        }
    });
    restarted(&cl, 4);
}

#[test]
fn a_corrupt_state_file_never_stops_the_agent() {
    let mut cl = cluster("e2e-corrupt", &[]);
    cl.apply(
        r#"
apiVersion: v1
kind: ConfigMap
metadata: {name: settings}
data: {greeting: hello}
---
apiVersion: v1
kind: Service
metadata: {name: keep}
spec:
  selector: {app: keep}
  ports: [{port: 80, targetPort: 8080}]
---
apiVersion: v1
kind: Pod
metadata: {name: keep, labels: {app: keep}}
spec:
  nodeName: NODE
  terminationGracePeriodSeconds: 1
  volumes:
  - {name: settings, configMap: {name: settings}}
  containers:
  - name: main
    image: IMAGE
    command: ["sh", "-c", "cat /etc/settings/greeting; exec probe serve 8080"]
    readinessProbe:
      tcpSocket: {port: 8080}
      periodSeconds: 1
    volumeMounts: [{name: settings, mountPath: /etc/settings}]
"#,
    );
    let p = cl.wait_running("keep");
    let uid = p["metadata"]["uid"].as_str().unwrap().to_string();
    let state = cl.node.data().join("state");
    let run = cl.node.data().join("run");
    // The pod's newest container (its id ends in the attempt number).
    let container_record = || {
        let mut ids: Vec<(u32, std::path::PathBuf)> = std::fs::read_dir(run.join("containers"))
            .unwrap()
            .flatten()
            .filter_map(|e| {
                let name = e.file_name().to_string_lossy().into_owned();
                let n = name.strip_prefix(&format!("{uid}.main."))?.parse().ok()?;
                Some((n, e.path().join("record.json")))
            })
            .collect();
        ids.sort();
        ids.pop().expect("the pod's container").1
    };
    // Each file: how the agent says it found it unreadable, and whether that alone costs the
    // pod's container a restart (the runtime's own records and the address leases do: the
    // container, resp. the sandbox, is made anew; the agent's other files do not, the pod is
    // adopted as it runs).
    type Where<'a> = Box<dyn Fn() -> std::path::PathBuf + 'a>;
    let files: [(&str, Where, &str, bool); 6] = [
        (
            "ConfigMap",
            Box::new(|| state.join("configs/ConfigMap.default.settings.json")),
            "unreadable agent state",
            false,
        ),
        (
            "pod",
            Box::new(|| state.join(format!("pods/{uid}.json"))),
            "unreadable agent state",
            false,
        ),
        (
            "leases",
            Box::new(|| state.join("ipam.json")),
            "unreadable agent state",
            true,
        ),
        (
            "cluster view",
            Box::new(|| state.join("cluster.json")),
            "unreadable agent state",
            false,
        ),
        (
            "container record",
            Box::new(container_record),
            "unreadable container state",
            true,
        ),
        (
            "sandbox record",
            Box::new(|| run.join(format!("sandboxes/{uid}/record.json"))),
            "its record is unreadable",
            true,
        ),
    ];
    eventually(10, "every state file written", || {
        match files.iter().map(|f| f.1()).find(|f| !f.exists()) {
            None => Ok(()),
            Some(f) => Err(format!("{} missing", f.display())),
        }
    });
    // Each power cut restarts the pod's container once (a new sandbox), as does a runtime
    // record lost: the count tells a status reported after the event from the one the
    // coordinator kept from before it.
    let mut restarts = 0;
    for (what_file, path, says, restarts_pod) in &files {
        for (how, mangle) in [
            ("truncated", 0u8),
            ("emptied", 1),
            ("filled with garbage", 2),
        ] {
            let file = path();
            cl.agent.kill();
            let bytes = std::fs::read(&file).unwrap();
            let new = match mangle {
                0 => bytes[..bytes.len() / 2].to_vec(),
                1 => Vec::new(),
                _ => b"\x00\xffnot json at all {{{".to_vec(),
            };
            std::fs::write(&file, new).unwrap();
            if mangle == 2 {
                // The likelier way to garble a file: a power cut (the coordinator shares the
                // node's namespace, so it goes too), so the pod is made anew from what is
                // left, and from the coordinator once it is back.
                let port = cl.c.port;
                cl.c.kill();
                skiff_tests::node::power_cut(&cl.node, &cl.netns);
                cl.agent.restart();
                cl.c = Coordinator::start_in(&cl.c.data_dir.clone(), port, Some(&cl.netns.name));
                restarts += 1;
            } else {
                cl.agent.restart();
                restarts += i64::from(*restarts_pod);
            }
            let what = format!("the {what_file} file {how} ({})", file.display());
            eventually(30, &format!("the agent noticed {what}"), || {
                let l = cl.agent.log();
                if l.contains(says)
                    && (!says.contains("agent") || l.contains(&*file.to_string_lossy()))
                {
                    Ok(())
                } else {
                    Err(l)
                }
            });
            cl.wait_connected();
            // It converges: the pod is the same, Running and Ready, restarted only as
            // expected, the file rebuilt.
            eventually(60, &format!("converged after {what}"), || {
                let p = cl.pod("keep");
                let cs = &p["status"]["containerStatuses"][0];
                if p["metadata"]["uid"] == uid.as_str()
                    && p["status"]["phase"] == "Running"
                    && cs["ready"] == true
                    && cs["restartCount"] == restarts
                    && path().exists()
                {
                    Ok(())
                } else {
                    Err(format!(
                        "{} want restarts {restarts} uid {uid} got {}\n{} exists: {}\ncontainers: {:?}\nagent log:\n{}",
                        p["status"], p["metadata"]["uid"],
                        file.display(),
                        path().exists(),
                        std::fs::read_dir(run.join("containers")).map(|d| d.flatten().map(|e| e.file_name()).collect::<Vec<_>>()),
                        cl.agent.log()
                    ))
                }
            });
            let mut aside = file.as_os_str().to_owned();
            aside.push(".corrupt");
            if says.contains("agent") {
                std::fs::remove_file(&aside).unwrap_or_else(|e| panic!("{aside:?}: {e}"));
            }
        }
    }
    assert_eq!(
        out(&cl.skiff(&["get", "pods", "-o", "name"])).trim(),
        "pod/keep"
    );
}

/// The back-off of the crashing container's newest restart, from its waiting message
/// ("back-off 4s restarting failed container=…"), when it waits.
fn back_off(cs: &Value) -> Option<u64> {
    let m = cs["state"]["waiting"]["message"].as_str()?;
    m.strip_prefix("back-off ")?.split('s').next()?.parse().ok()
}

#[test]
fn a_wall_clock_jump_moves_nothing_on_the_node() {
    // The node's wall clock (not its monotonic one, as when NTP steps the clock of a board
    // without a real-time clock) moved by libfaketime, for the agent and all it starts.
    let lib = "/usr/lib/x86_64-linux-gnu/faketime/libfaketimeMT.so.1";
    assert!(
        std::path::Path::new(lib).exists(),
        "{lib} missing: scripts/deps installs faketime"
    );
    let mut cl = cluster("e2e-clock", &[]);
    let clock = cl.node.data().join("faketime");
    std::fs::write(&clock, "+0d\n").unwrap();
    cl.agent.kill();
    cl.agent.env = [
        ("LD_PRELOAD", lib),
        ("FAKETIME_TIMESTAMP_FILE", clock.to_str().unwrap()),
        ("FAKETIME_NO_CACHE", "1"),
        ("FAKETIME_DONT_FAKE_MONOTONIC", "1"),
    ]
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .to_vec();
    cl.agent.restart();
    cl.wait_connected();
    cl.apply(
        r#"
apiVersion: v1
kind: Pod
metadata: {name: steady}
spec:
  nodeName: NODE
  terminationGracePeriodSeconds: 1
  containers:
  - name: main
    image: IMAGE
    command: ["sh", "-c", "while true; do echo tick; sleep 1; done & exec probe serve 8080"]
    readinessProbe:
      httpGet: {path: /, port: 8080}
      periodSeconds: 1
    livenessProbe:
      httpGet: {path: /, port: 8080}
      periodSeconds: 1
      failureThreshold: 2
"#,
    );
    cl.apply(&pod_running("crash", "sleep 1; exit 1"));
    let steady = cl.wait_running("steady");
    let uids = [
        steady["metadata"]["uid"].clone(),
        cl.pod("crash")["metadata"]["uid"].clone(),
    ];
    // The crashing container backs off, doubling: wait until it waits 2 s.
    let before = eventually(60, "crash backs off 2s", || {
        let cs = cl.container("crash");
        match back_off(&cs) {
            Some(b) if b >= 2 => Ok(cs["restartCount"].as_i64().unwrap()),
            _ => Err(cs.to_string()),
        }
    });
    let healthy = |cl: &Cluster, when: &str| {
        let p = cl.pod("steady");
        let cs = &p["status"]["containerStatuses"][0];
        assert_eq!(cs["restartCount"], 0, "steady restarted {when}: {cs}");
        assert_eq!(cs["ready"], true, "steady not ready {when}: {cs}");
        let nodes = out(&cl.skiff(&["get", "nodes"]));
        assert!(
            nodes.contains(" Ready"),
            "the node is not Ready {when}: {nodes}"
        );
        let names = out(&cl.skiff(&["get", "pods", "-o", "name"]));
        assert_eq!(names.trim(), "pod/crash\npod/steady", "{when}");
        assert_eq!(cl.pod("steady")["metadata"]["uid"], uids[0], "{when}");
        assert_eq!(cl.pod("crash")["metadata"]["uid"], uids[1], "{when}");
    };

    // A year forward. Two more restarts of the crashing container, each seen running: its
    // back-off keeps doubling (a wall-clock "running for a year" would reset it to 1 s, a
    // restart storm), nothing else restarts, nothing is evicted, the node stays Ready.
    std::fs::write(&clock, "+365d\n").unwrap();
    // (The crashing pod's events keep the agent logging.)
    eventually(10, "the agent's clock a year ahead", || {
        let year = (time_year() + 1).to_string();
        let l = cl.agent.log();
        match l.lines().last() {
            Some(last) if last.starts_with(&year) => Ok(()),
            _ => Err(l),
        }
    });
    let after = eventually(60, "two restarts after the jump", || {
        let cs = cl.container("crash");
        match (cs["restartCount"].as_i64(), back_off(&cs)) {
            (Some(n), Some(b)) if n >= before + 2 => Ok(b),
            _ => Err(cs.to_string()),
        }
    });
    assert!(after >= 8, "the back-off was reset by the jump: {after}s");
    healthy(&cl, "a year ahead");

    // And back: the same, and the container's log goes on (its lines stamped by the node's
    // clock, now a year earlier than the ones before them).
    std::fs::write(&clock, "+0d\n").unwrap();
    let now = time_year().to_string();
    eventually(15, "log lines after the jump back", || {
        let l = out(&cl.skiff(&["logs", "steady", "--timestamps", "--tail", "2"]));
        if l.lines().count() == 2 && l.lines().all(|x| x.starts_with(&now)) {
            Ok(())
        } else {
            Err(l)
        }
    });
    std::thread::sleep(std::time::Duration::from_secs(3));
    healthy(&cl, "after the jump back");
    let cs = cl.container("crash");
    assert!(
        cs["restartCount"].as_i64().unwrap() <= before + 3,
        "restart storm after the jump back: {cs}"
    );
}

/// The current year (UTC), by the test's own (unfaked) clock.
fn time_year() -> i64 {
    let o = std::process::Command::new("date")
        .args(["-u", "+%Y"])
        .output()
        .unwrap();
    out(&o).trim().parse().unwrap()
}

/// A small tmpfs mounted over a node's data directory (what the node holds is copied onto
/// it first); unmounted when dropped, after the cluster on it.
struct SmallDisk(std::path::PathBuf);

impl SmallDisk {
    fn over(node: &Node, size: &str) -> SmallDisk {
        let data = node.data().to_path_buf();
        let keep = data.with_extension("keep");
        let sh = |cmd: String| {
            let o = std::process::Command::new("sh")
                .args(["-c", &cmd])
                .output()
                .unwrap();
            assert!(o.status.success(), "{cmd}: {}", err(&o));
        };
        sh(format!(
            "mkdir -p {k} && cp -a {d}/. {k}/ && mount -t tmpfs -o size={size},mode=0700 skiff-small {d} && cp -a {k}/. {d}/ && rm -rf {k}",
            k = keep.display(),
            d = data.display()
        ));
        SmallDisk(data)
    }

    /// Fills it with one file, until the kernel says no.
    fn fill(&self) -> std::path::PathBuf {
        use std::io::Write;
        let path = self.0.join("filler");
        let mut f = std::fs::File::create(&path).unwrap();
        let chunk = vec![0u8; 1 << 16];
        loop {
            if let Err(e) = f.write_all(&chunk).and_then(|_| f.sync_all()) {
                assert_eq!(e.raw_os_error(), Some(libc::ENOSPC), "{e}");
                break;
            }
        }
        path
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = nix::mount::umount2(&self.0, nix::mount::MntFlags::MNT_DETACH);
    }
}

#[test]
fn a_full_disk_loses_no_state_and_recovers_without_a_restart() {
    let node = Node::new("e2e-full");
    let disk = SmallDisk::over(&node, "96m");
    let cl = cluster_on(node, "e2e-full", &[]);
    // The pod that runs throughout; the labels change while the disk is full.
    let before_pod = |labels: &str| {
        format!(
            "apiVersion: v1\nkind: Pod\nmetadata: {{name: before, labels: {{{labels}}}}}\n{}",
            r#"spec:
  nodeName: NODE
  terminationGracePeriodSeconds: 1
  volumes:
  - {name: settings, configMap: {name: settings}}
  containers:
  - name: main
    image: IMAGE
    command: ["sh", "-c", "exec probe serve 8080"]
    volumeMounts: [{name: settings, mountPath: /etc/settings}]
"#
        )
    };
    cl.apply(&format!(
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {{name: settings}}\ndata: {{greeting: hello}}\n---\n{}",
        before_pod("")
    ));
    let before = cl.wait_running("before");
    let state = cl.node.data().join("state");
    let before_file = state.join(format!(
        "pods/{}.json",
        before["metadata"]["uid"].as_str().unwrap()
    ));
    let cm_file = state.join("configs/ConfigMap.default.settings.json");
    assert!(before_file.exists() && cm_file.exists());

    let filler = disk.fill();
    // While the disk is full: a new pod, a changed ConfigMap, a changed pod.
    cl.apply(
        r#"
apiVersion: v1
kind: ConfigMap
metadata: {name: settings}
data: {greeting: changed}
---
apiVersion: v1
kind: Pod
metadata: {name: during}
spec:
  nodeName: NODE
  terminationGracePeriodSeconds: 1
  containers:
  - name: main
    image: IMAGE
    command: ["sh", "-c", "exec probe serve 8080"]
    readinessProbe:
      tcpSocket: {port: 8080}
      periodSeconds: 1
"#,
    );
    cl.apply(&before_pod("changed: \"yes\""));
    // Clear errors: the agent says which file it could not write and why; the new pod
    // waits with the reason.
    eventually(30, "the agent reports the full disk", || {
        let l = cl.agent.log();
        if l.contains("No space left on device") && l.contains("keeping the pod on disk") {
            Ok(())
        } else {
            Err(l)
        }
    });
    eventually(30, "the new pod waits, saying why", || {
        let p = cl.pod("during");
        let s = p["status"].to_string();
        if s.contains("No space left on device") {
            Ok(())
        } else {
            Err(format!("{s}\nagent log:\n{}", cl.agent.log()))
        }
    });
    // The state on disk is the previous one, whole: every file reads, none half-written.
    for dir in ["pods", "configs"] {
        for e in std::fs::read_dir(state.join(dir)).unwrap().flatten() {
            let p = e.path();
            assert_eq!(
                p.extension().and_then(|x| x.to_str()),
                Some("json"),
                "a leftover: {}",
                p.display()
            );
            let v: Value = serde_json::from_slice(&std::fs::read(&p).unwrap())
                .unwrap_or_else(|e| panic!("{}: {e}", p.display()));
            assert!(v["metadata"]["name"].is_string(), "{}", p.display());
        }
    }
    assert!(std::fs::read_to_string(&cm_file).unwrap().contains("hello"));
    assert!(!std::fs::read_to_string(&before_file)
        .unwrap()
        .contains("changed"));
    let before_again = cl.pod("before");
    assert_eq!(
        before_again["status"]["phase"],
        "Running",
        "{}\nagent log:\n{}",
        before_again["status"],
        cl.agent.log()
    );

    // Space comes back: everything catches up, the agent never restarted.
    std::fs::remove_file(&filler).unwrap();
    let during = cl.wait_running("during");
    let during_file = state.join(format!(
        "pods/{}.json",
        during["metadata"]["uid"].as_str().unwrap()
    ));
    eventually(30, "the state written once space is back", || {
        let cm = std::fs::read_to_string(&cm_file).unwrap_or_default();
        let b = std::fs::read_to_string(&before_file).unwrap_or_default();
        if cm.contains("changed") && b.contains("changed") && during_file.exists() {
            Ok(())
        } else {
            Err(format!("{cm}\n{b}\nagent log:\n{}", cl.agent.log()))
        }
    });
    assert!(
        cl.agent
            .log()
            .contains("agent state written after an earlier failure"),
        "{}",
        cl.agent.log()
    );
    assert_eq!(cl.agent.runs, 1, "the agent was not restarted");
    assert_eq!(cl.container("before")["restartCount"], 0);
    drop(cl);
    drop(disk);
}

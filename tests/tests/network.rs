//! The pod network and Services end to end: three hosts (one client node, two backend
//! nodes), each an agent in a network namespace of its own on a bridged LAN with the
//! coordinator. Needs root (namespaces, cgroups).

use serde_json::Value;
use skiff_tests::cluster::{node_of, ready, FAST_FAILOVER};
use skiff_tests::lan::{client_pod, node_ip, tls_cert, Lan};
use skiff_tests::node::{eventually, IMAGE};
use skiff_tests::{err, out};
use std::collections::BTreeSet;

fn manifests() -> String {
    format!(
        r#"apiVersion: apps/v1
kind: Deployment
metadata: {{name: web}}
spec:
  replicas: 3
  selector: {{matchLabels: {{app: web}}}}
  template:
    metadata: {{labels: {{app: web}}}}
    spec:
      terminationGracePeriodSeconds: 1
      nodeSelector: {{role: backend}}
      containers:
      - name: c
        image: {IMAGE}
        imagePullPolicy: Never
        command: ["probe", "serve", "8080"]
        ports: [{{name: http, containerPort: 8080}}]
        readinessProbe:
          exec: {{command: ["sh", "-c", "test ! -f /tmp/unready"]}}
          periodSeconds: 1
---
apiVersion: v1
kind: Service
metadata: {{name: web}}
spec:
  type: NodePort
  selector: {{app: web}}
  ports: [{{name: http, port: 80, targetPort: http, nodePort: 30080}}]
---
{}"#,
        client_pod()
    )
}

fn web_pods(l: &Lan) -> Vec<Value> {
    l.c.get_json(&["get", "pods", "-l", "app=web"])["items"]
        .as_array()
        .cloned()
        .unwrap_or_default()
}

/// Ready endpoint addresses: (ip, pod name, node).
fn endpoints(l: &Lan) -> Vec<(String, String, String)> {
    let ep = l.c.get_json(&["get", "endpoints", "web"]);
    let mut v = Vec::new();
    for sub in ep["subsets"].as_array().into_iter().flatten() {
        for a in sub["addresses"].as_array().into_iter().flatten() {
            v.push((
                a["ip"].as_str().unwrap_or("").to_string(),
                a["targetRef"]["name"].as_str().unwrap_or("").to_string(),
                a["nodeName"].as_str().unwrap_or("").to_string(),
            ));
        }
    }
    v
}

/// `probe get TARGET N` from the client pod: the bodies (pod names) answered.
fn get_from_client(l: &Lan, target: &str, n: usize) -> Result<Vec<String>, String> {
    get_host_from_client(l, target, n, None)
}

/// The same with a Host header of its own (`probe get TARGET N VHOST`).
fn get_host_from_client(
    l: &Lan,
    target: &str,
    n: usize,
    vhost: Option<&str>,
) -> Result<Vec<String>, String> {
    let n_ = n.to_string();
    let mut args = vec!["exec", "client", "--", "probe", "get", target, &n_];
    args.extend(vhost);
    let o = l.c.skiff(&args);
    let lines: Vec<String> = out(&o).lines().map(String::from).collect();
    if !o.status.success() || lines.len() != n || lines.iter().any(|x| x.starts_with("error")) {
        return Err(format!("{target}: {lines:?} {}", err(&o)));
    }
    Ok(lines)
}

#[test]
fn services_reach_pods_across_nodes_by_ip_dns_and_node_port() {
    let l = Lan::new("net", &["client", "backend", "backend"], &FAST_FAILOVER);
    l.c.apply(&manifests());
    eventually(
        90,
        "3 web pods Ready in the Endpoints, client running",
        || {
            let eps = endpoints(&l);
            let c = l.c.get_json(&["get", "pod", "client"]);
            if eps.len() == 3 && c["status"]["phase"] == "Running" {
                Ok(())
            } else {
                Err(format!(
                    "endpoints {eps:?}, client {}",
                    c["status"]["phase"]
                ))
            }
        },
    );
    let svc = l.c.get_json(&["get", "svc", "web"]);
    let vip = svc["spec"]["clusterIP"].as_str().unwrap().to_string();
    assert!(
        vip.starts_with("10.43."),
        "ClusterIP from the service CIDR: {vip}"
    );
    let names: BTreeSet<String> = endpoints(&l).into_iter().map(|e| e.1).collect();

    // Pod to pod across nodes, by pod IP.
    let (ip0, name0, _) = endpoints(&l)[0].clone();
    let direct = eventually(20, "the client reaches a pod on another node", || {
        get_from_client(&l, &format!("{ip0}:8080"), 1)
    });
    assert_eq!(direct, std::slice::from_ref(&name0));

    // By ClusterIP: the load spreads over the 3 endpoints.
    let got = get_from_client(&l, &format!("{vip}:80"), 30).unwrap();
    let hit: BTreeSet<String> = got.iter().cloned().collect();
    assert_eq!(hit, names, "round robin over every ready endpoint");

    // The kernel translates pods' ClusterIP traffic: the endpoint sees the client pod's
    // own address (through the proxy it would see its node's).
    let client_ip = l.c.get_json(&["get", "pod", "client"])["status"]["podIP"]
        .as_str()
        .unwrap()
        .to_string();
    let peers = get_from_client(&l, &format!("{vip}:80/peer"), 5).unwrap();
    assert!(
        peers.iter().all(|p| *p == client_ip),
        "the client's address {client_ip} reaches the endpoints: {peers:?}"
    );
    // A backend pod reaching its own Service lands on itself too (the hairpin back over
    // its node's bridge), and on the others.
    let o = l.c.skiff(&[
        "exec",
        &name0,
        "--",
        "probe",
        "get",
        &format!("{vip}:80"),
        "30",
    ]);
    let hit: BTreeSet<String> = out(&o).lines().map(String::from).collect();
    assert_eq!(hit, names, "every endpoint answers {name0}: {}", err(&o));

    // By DNS name, in each form the search path allows.
    for name in ["web", "web.default", "web.default.svc.cluster.local"] {
        let got = get_from_client(&l, &format!("{name}:80"), 3).unwrap();
        assert!(got.iter().all(|g| names.contains(g)), "{name}: {got:?}");
    }
    // Over TCP too (what resolvers fall back to for a truncated answer), from the client
    // node to its pods' nameserver.
    let gateway = format!("{}.1", client_ip.rsplit_once('.').unwrap().0);
    let got = l
        .dns_over_tcp(0, &gateway, "web.default.svc.cluster.local")
        .unwrap();
    assert_eq!(got, std::slice::from_ref(&vip), "DNS over TCP");

    // Traffic leaving the cluster is masqueraded: a LAN host with no route to the pod
    // network answers the client pod, and sees the client node's address.
    let port = l.whoami_on_lan();
    let seen = get_from_client(
        &l,
        &format!("{}:{port}", skiff_tests::lan::COORDINATOR_IP),
        1,
    )
    .unwrap_or_else(|e| panic!("a pod reaches a host outside the cluster: {e}"));
    assert_eq!(
        seen,
        [node_ip(0)],
        "the pod's traffic leaves with its node's address"
    );

    // NodePort: the client node's address answers from the LAN.
    // (busybox's wget is static glibc and cannot run here; nc sends no request, which
    // the test server answers all the same.)
    let o = l.on_lan(&["nc", "-w", "5", &node_ip(0), "30080"]);
    let body = out(&o).lines().last().unwrap_or("").to_string();
    assert!(names.contains(&body), "node port: {} {}", out(&o), err(&o));

    host_ports(&l);
    ingress_routes_two_hosts_to_two_services(&l, &names);

    // A failing readiness probe takes its pod out of the Service.
    let o = l.c.skiff(&["exec", &name0, "--", "touch", "/tmp/unready"]);
    assert!(o.status.success(), "{}", err(&o));
    eventually(20, "the unready pod leaves the Endpoints", || {
        let e = endpoints(&l);
        (e.len() == 2 && e.iter().all(|x| x.1 != name0))
            .then_some(())
            .ok_or(format!("{e:?}"))
    });
    let got = get_from_client(&l, &format!("{vip}:80"), 20).unwrap();
    assert!(
        !got.contains(&name0),
        "no traffic to the unready pod: {got:?}"
    );
    let o = l.c.skiff(&["exec", &name0, "--", "rm", "/tmp/unready"]);
    assert!(o.status.success(), "{}", err(&o));
    eventually(20, "it comes back", || {
        (endpoints(&l).len() == 3)
            .then_some(())
            .ok_or("2".to_string())
    });

    // Cut node 1 off the LAN: its pods are evicted, replaced on node 2, and the traffic
    // moves to the endpoints that remain.
    let cut = l.nodes[1].name.clone();
    let other = l.nodes[2].name.clone();
    l.set_link(1, false);
    eventually(60, "every endpoint on the remaining backend", || {
        let e = endpoints(&l);
        let pods = web_pods(&l);
        let ok = e.len() == 3 && e.iter().all(|x| x.2 == other);
        let ready_other = pods
            .iter()
            .filter(|p| ready(p) && node_of(p) == other)
            .count();
        ok.then_some(())
            .ok_or(format!("endpoints {e:?}; ready on {other}: {ready_other}"))
    });
    let now: BTreeSet<String> = endpoints(&l).into_iter().map(|e| e.1).collect();
    let got = eventually(20, "the Service answers from the remaining node", || {
        get_from_client(&l, &format!("{vip}:80"), 30)
    });
    let hit: BTreeSet<String> = got.into_iter().collect();
    assert_eq!(
        hit, now,
        "traffic only to endpoints on {other}, none on {cut}"
    );
}

/// A pod's hostPort: its node's address answers on that port from the LAN and from a pod
/// on another node (the portmap plugin's DNAT); a second pod asking the same port of that
/// node waits with the scheduler's NodePorts reason.
fn host_ports(l: &Lan) {
    let node = &l.nodes[1].name;
    let pod = |name: &str| {
        format!(
            "apiVersion: v1\nkind: Pod\nmetadata: {{name: {name}}}\nspec:\n  nodeSelector: {{kubernetes.io/hostname: {node}}}\n  terminationGracePeriodSeconds: 1\n  containers:\n  - name: c\n    image: {IMAGE}\n    imagePullPolicy: Never\n    command: [probe, serve, '8080']\n    ports: [{{containerPort: 8080, hostPort: 8081}}]\n---\n"
        )
    };
    l.c.apply(&format!("{}{}", pod("hp-a"), pod("hp-b")));
    let (first, second) = eventually(60, "one of the two runs, the other waits", || {
        let phase = |n: &str| l.c.get_json(&["get", "pod", n])["status"]["phase"].clone();
        match (phase("hp-a").as_str(), phase("hp-b").as_str()) {
            (Some("Running"), Some("Pending")) => Ok(("hp-a", "hp-b")),
            (Some("Pending"), Some("Running")) => Ok(("hp-b", "hp-a")),
            other => Err(format!("{other:?}")),
        }
    });
    let target = format!("{}:8081", node_ip(1));
    let got = eventually(30, "the client pod reaches the host port", || {
        get_from_client(l, &target, 1)
    });
    assert_eq!(got, [first]);
    let o = l.on_lan(&["nc", "-w", "5", &node_ip(1), "8081"]);
    assert_eq!(
        out(&o).lines().last(),
        Some(first),
        "from the LAN: {}",
        err(&o)
    );
    let p = l.c.get_json(&["get", "pod", second]);
    let cond = p["status"]["conditions"]
        .as_array()
        .and_then(|c| c.iter().find(|c| c["type"] == "PodScheduled").cloned())
        .unwrap_or_default();
    let m = cond["message"].as_str().unwrap_or_default();
    assert!(
        m.contains("1 node(s) didn't have free ports for the requested pod ports"),
        "{p}"
    );
    let o = l.c.skiff(&["delete", "pod", "hp-a", "hp-b"]);
    assert!(o.status.success(), "{}", err(&o));
}

/// An Ingress routes two hosts to two Services, over HTTP from a pod to another node's
/// ingress port, and over HTTPS (its certificate from a TLS Secret, picked by SNI) from
/// the LAN.
fn ingress_routes_two_hosts_to_two_services(l: &Lan, web: &BTreeSet<String>) {
    let (ca, cert, key) = tls_cert("web.example");
    let b64 = |s: &str| base64::Engine::encode(&base64::engine::general_purpose::STANDARD, s);
    l.c.apply(&format!(
        r#"apiVersion: apps/v1
kind: Deployment
metadata: {{name: api}}
spec:
  replicas: 2
  selector: {{matchLabels: {{app: api}}}}
  template:
    metadata: {{labels: {{app: api}}}}
    spec:
      terminationGracePeriodSeconds: 1
      nodeSelector: {{role: backend}}
      containers:
      - name: c
        image: {IMAGE}
        imagePullPolicy: Never
        command: ["probe", "serve", "9090"]
---
apiVersion: v1
kind: Service
metadata: {{name: api}}
spec:
  selector: {{app: api}}
  ports: [{{name: http, port: 8000, targetPort: 9090}}]
---
apiVersion: v1
kind: Secret
metadata: {{name: web-tls}}
type: kubernetes.io/tls
data:
  tls.crt: {}
  tls.key: {}
---
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata: {{name: two-hosts}}
spec:
  tls:
  - hosts: [web.example]
    secretName: web-tls
  rules:
  - host: web.example
    http:
      paths:
      - {{path: /, pathType: Prefix, backend: {{service: {{name: web, port: {{number: 80}}}}}}}}
  - host: api.example
    http:
      paths:
      - {{path: /, pathType: Prefix, backend: {{service: {{name: api, port: {{name: http}}}}}}}}
"#,
        b64(&cert),
        b64(&key)
    ));
    let api_pods = || -> BTreeSet<String> {
        l.c.get_json(&["get", "pods", "-l", "app=api"])["items"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|p| ready(p))
            .map(|p| p["metadata"]["name"].as_str().unwrap_or("").to_string())
            .collect()
    };
    eventually(60, "2 api pods Ready", || {
        let n = api_pods().len();
        (n == 2).then_some(()).ok_or(format!("{n} ready"))
    });
    let api = api_pods();
    // Node 1's ingress port, from the client pod on node 0.
    let at = format!("{}:80", node_ip(1));
    let got = eventually(20, "web.example through the ingress", || {
        get_host_from_client(l, &at, 12, Some("web.example")).and_then(|g| {
            g.iter()
                .all(|x| web.contains(x))
                .then_some(g.clone())
                .ok_or(format!("{g:?}"))
        })
    });
    let hit: BTreeSet<String> = got.into_iter().collect();
    assert!(
        hit.len() > 1,
        "the ingress spreads over web's endpoints: {hit:?}"
    );
    let got = eventually(20, "api.example through the ingress", || {
        get_host_from_client(l, &at, 6, Some("api.example")).and_then(|g| {
            g.iter()
                .all(|x| api.contains(x))
                .then_some(g.clone())
                .ok_or(format!("{g:?}"))
        })
    });
    assert_eq!(
        got.into_iter().collect::<BTreeSet<_>>(),
        api,
        "api.example reaches both api pods"
    );
    let other = get_host_from_client(l, &at, 1, Some("nobody.example")).unwrap();
    assert_eq!(
        other,
        ["404 page not found"],
        "an unknown host has no route"
    );

    // Every node serves it: its status lists them, as `get ingress` shows.
    let all: BTreeSet<String> = (0..3).map(node_ip).collect();
    eventually(20, "the Ingress's addresses are the nodes", || {
        let i = l.c.get_json(&["get", "ingress", "two-hosts"]);
        let ips: BTreeSet<String> = i["status"]["loadBalancer"]["ingress"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|a| a["ip"].as_str().map(String::from))
            .collect();
        (ips == all).then_some(()).ok_or(format!("{ips:?}"))
    });
    let o = l.c.skiff(&["get", "ing"]);
    let row = out(&o).lines().nth(1).unwrap_or("").to_string();
    let cols: Vec<&str> = row
        .split("  ")
        .filter(|c| !c.trim().is_empty())
        .map(str::trim)
        .collect();
    let addrs = all.iter().cloned().collect::<Vec<_>>().join(",");
    assert_eq!(
        cols[..5],
        [
            "two-hosts",
            "<none>",
            "web.example,api.example",
            addrs.as_str(),
            "80, 443"
        ],
        "{}",
        out(&o)
    );

    // HTTPS from the LAN to node 2: the Secret's certificate, verified against its CA.
    let body = eventually(20, "web.example over HTTPS", || {
        l.https_get(&format!("{}:443", node_ip(2)), "web.example", &ca)
    });
    assert!(web.contains(&body), "HTTPS answered by a web pod: {body:?}");
}

/// Pods reach pods on nodes they share no link with, over the VXLAN overlay: the client
/// node and two backends on one subnet, a third backend behind a router (the LAN
/// namespace). Every node runs `--pod-network auto` but one, which asks for `vxlan`.
#[test]
fn pods_reach_pods_behind_a_router_over_vxlan() {
    use skiff_tests::lan::Host;
    let host = |role, subnet, flags| Host {
        role,
        subnet,
        flags,
    };
    let l = Lan::with_hosts(
        "vx",
        &[
            host("client", 0, &[]),
            host("backend", 1, &[]),
            host("backend", 0, &["--pod-network", "vxlan"]),
            host("backend", 0, &[]),
        ],
        &[],
    );
    l.c.apply(&format!(
        r#"apiVersion: apps/v1
kind: DaemonSet
metadata: {{name: web}}
spec:
  selector: {{matchLabels: {{app: web}}}}
  template:
    metadata: {{labels: {{app: web}}}}
    spec:
      terminationGracePeriodSeconds: 1
      nodeSelector: {{role: backend}}
      containers:
      - name: c
        image: {IMAGE}
        imagePullPolicy: Never
        command: ["probe", "serve", "8080"]
---
apiVersion: v1
kind: Service
metadata: {{name: web}}
spec:
  selector: {{app: web}}
  ports: [{{port: 80, targetPort: 8080}}]
---
{}"#,
        client_pod()
    ));
    eventually(90, "a web pod on each backend, client running", || {
        let eps = endpoints(&l);
        let c = l.c.get_json(&["get", "pod", "client"]);
        if eps.len() == 3 && c["status"]["phase"] == "Running" {
            Ok(())
        } else {
            Err(format!(
                "endpoints {eps:?}, client {}",
                c["status"]["phase"]
            ))
        }
    });

    // How node 0 reaches each backend's pods: the overlay to the node behind the router
    // and to the one that asked for it, a route via its address to the last.
    let cidr = |i: usize| {
        let n = l.c.get_json(&["get", "node", &l.nodes[i].name]);
        n["spec"]["podCIDR"].as_str().unwrap().to_string()
    };
    let o = std::process::Command::new("ip")
        .args(["-n", &l.hosts[0].name, "route", "show", "proto", "157"])
        .output()
        .unwrap();
    let routes = out(&o);
    let route_of = |i: usize| {
        let c = cidr(i);
        routes
            .lines()
            .find(|r| r.starts_with(&c))
            .unwrap_or_else(|| panic!("no route to {c} on node 0: {routes}"))
            .to_string()
    };
    for i in [1, 2] {
        let r = route_of(i);
        let vtep = cidr(i).trim_end_matches("/24").to_string();
        assert!(
            r.contains(&format!("via {vtep} dev skx")) && r.contains("onlink"),
            "node {i} over the overlay: {r}"
        );
    }
    let r = route_of(3);
    assert!(
        r.contains(&format!("via {} dev eth0", l.ips[3])),
        "node 3 shares the subnet: a plain route: {r}"
    );

    // Pod to pod, to each backend's pod by its address.
    for (ip, name, node) in endpoints(&l) {
        let got = eventually(20, "the client reaches the pod", || {
            get_from_client(&l, &format!("{ip}:8080"), 1)
        });
        assert_eq!(got, [name], "the pod on {node}");
    }
    // Through the ClusterIP: node 0's translation reaches all three.
    let vip = l.c.get_json(&["get", "svc", "web"])["spec"]["clusterIP"]
        .as_str()
        .unwrap()
        .to_string();
    let names: BTreeSet<String> = endpoints(&l).into_iter().map(|e| e.1).collect();
    let got: BTreeSet<String> = get_from_client(&l, &format!("{vip}:80"), 30)
        .unwrap()
        .into_iter()
        .collect();
    assert_eq!(got, names, "round robin over the three nodes' pods");

    // Pods' MTU leaves room for the overlay's headers.
    let o =
        l.c.skiff(&["exec", "client", "--", "cat", "/sys/class/net/eth0/mtu"]);
    assert_eq!(out(&o).trim(), "1450", "{}", err(&o));

    // Node 0's overlay device and nftables table removed under it (an operator's `nft
    // flush ruleset`, a network manager): both come back, the overlay carries pods again.
    let ns0 = &l.hosts[0].name;
    let table = format!("skiff-{}", l.nodes[0].name);
    let run = |args: &[&str]| {
        let o = std::process::Command::new("ip")
            .args(["netns", "exec", ns0])
            .args(args)
            .output()
            .unwrap();
        (o.status.success(), format!("{}{}", out(&o), err(&o)))
    };
    let links = out(&std::process::Command::new("ip")
        .args(["-n", ns0, "-o", "link", "show"])
        .output()
        .unwrap());
    let skx: Vec<&str> = links
        .lines()
        .filter_map(|l| l.split(": ").nth(1))
        .map(|n| n.split('@').next().unwrap_or(n))
        .filter(|n| n.starts_with("skx"))
        .collect();
    assert_eq!(skx.len(), 1, "{links}");
    let (done, msg) = run(&["ip", "link", "del", skx[0]]);
    assert!(done, "{msg}");
    let (done, msg) = run(&["nft", "delete", "table", "ip", &table]);
    assert!(done, "{msg}");
    eventually(30, "node 0's table and overlay back", || {
        let (table_back, t) = run(&["nft", "list", "table", "ip", &table]);
        let (_, links) = run(&["ip", "-o", "link", "show", skx[0]]);
        if table_back && t.contains("masquerade") && links.contains(skx[0]) {
            Ok(())
        } else {
            Err(format!("{t}\n{links}"))
        }
    });
    for (ip, name, node) in endpoints(&l) {
        let got = eventually(30, "the client reaches the pod again", || {
            get_from_client(&l, &format!("{ip}:8080"), 1)
        });
        assert_eq!(got, [name], "the pod on {node}");
    }
}

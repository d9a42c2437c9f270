//! End to end over real QUIC with real processes: a coordinator process, the `skiff` CLI
//! and clients with real certificates.

use serde_json::Value;
use skiff_api::wire::{ErrorCode, Request, Response};
use skiff_api::{Kind, ObjectKey};
use skiff_tests::{err, fails, ok, out, Coordinator, TempDir};
use skiff_transport::config::ClientConfig;
use skiff_transport::Client;
use std::path::PathBuf;

fn manifests() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("manifests")
}

fn m(name: &str) -> String {
    manifests().join(name).display().to_string()
}

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

fn json(s: &str) -> Value {
    serde_json::from_str(s).unwrap_or_else(|e| panic!("not JSON ({e}): {s}"))
}

#[test]
fn docs_manifests_apply_get_describe_delete_and_survive_restart() {
    let dir = TempDir::new("e2e");
    let mut c = Coordinator::start(dir.path());

    let applied = ok(c.skiff(&["apply", "-f", manifests().to_str().unwrap()]));
    assert_eq!(
        applied,
        "configmap/game-demo created\nservice/my-service created\ndeployment.apps/nginx-deployment created\nsecret/dotfile-secret created\nsecret/secret-basic-auth created\n"
    );
    let again = ok(c.skiff(&["apply", "-f", &m("nginx-deployment.yaml")]));
    assert_eq!(again, "deployment.apps/nginx-deployment unchanged\n");

    // A change is "configured" and bumps generation.
    let changed = dir.path().join("scaled.yaml");
    std::fs::write(
        &changed,
        std::fs::read_to_string(m("nginx-deployment.yaml"))
            .unwrap()
            .replace("replicas: 3", "replicas: 5"),
    )
    .unwrap();
    assert_eq!(
        ok(c.skiff(&["apply", "-f", changed.to_str().unwrap()])),
        "deployment.apps/nginx-deployment configured\n"
    );
    let d = json(&ok(c.skiff(&[
        "get",
        "deployment",
        "nginx-deployment",
        "-o",
        "json",
    ])));
    assert_eq!(d["kind"], "Deployment");
    assert_eq!(d["spec"]["replicas"], 5);
    assert_eq!(d["metadata"]["generation"], 2);
    // kubectl's KIND/NAME form and short names.
    let d2 = json(&ok(c.skiff(&[
        "get",
        "deploy/nginx-deployment",
        "-o",
        "json",
    ])));
    assert_eq!(d2["metadata"]["uid"], d["metadata"]["uid"]);

    // Lists print as kubectl's List; tables use kubectl's columns.
    let list = json(&ok(c.skiff(&["get", "cm", "-o", "json"])));
    assert_eq!(list["kind"], "List");
    assert_eq!(list["items"][0]["data"]["player_initial_lives"], "3");
    let table = ok(c.skiff(&["get", "svc"]));
    // kubectl's columns, aligned; the ClusterIP column is as wide as the address given.
    let mut lines = table.lines();
    let (header, row) = (lines.next().unwrap_or(""), lines.next().unwrap_or(""));
    let words: Vec<&str> = header.split_whitespace().collect();
    assert_eq!(
        words,
        [
            "NAME",
            "TYPE",
            "CLUSTER-IP",
            "EXTERNAL-IP",
            "PORT(S)",
            "AGE"
        ],
        "{table}"
    );
    assert!(
        row.starts_with("my-service   ClusterIP   10.43."),
        "{table}"
    );
    let ip_at = header.find("CLUSTER-IP").unwrap();
    assert_eq!(
        row[ip_at..].split_whitespace().next(),
        row.split_whitespace().nth(2)
    );
    let names = ok(c.skiff(&["get", "secrets", "-o", "name"]));
    assert_eq!(names, "secret/dotfile-secret\nsecret/secret-basic-auth\n");
    let yaml = ok(c.skiff(&["get", "secret", "secret-basic-auth", "-o", "yaml"]));
    assert!(
        yaml.contains("password: dDBwLVNlY3JldA=="),
        "stringData is folded into data:\n{yaml}"
    );
    let selected = ok(c.skiff(&["get", "deploy", "-l", "app=nginx", "-o", "name"]));
    assert_eq!(selected, "deployment.apps/nginx-deployment\n");
    assert_eq!(
        ok(c.skiff(&["get", "deploy", "-l", "app!=nginx", "-o", "name"])),
        ""
    );

    // describe: readable, with values of Secrets hidden.
    let desc = ok(c.skiff(&["describe", "secret", "secret-basic-auth"]));
    assert!(
        desc.lines()
            .any(|l| l.starts_with("password:") && l.ends_with("10 bytes")),
        "{desc}"
    );
    assert!(!desc.contains("t0p-Secret"), "{desc}");
    let desc = ok(c.skiff(&["describe", "deployment/nginx-deployment"]));
    let has = |label: &str, value: &str| {
        desc.lines()
            .any(|l| l.trim_start().starts_with(label) && l.trim_end().ends_with(value))
    };
    assert!(has("StrategyType:", "RollingUpdate"), "{desc}");
    assert!(
        has(
            "RollingUpdateStrategy:",
            "25% max unavailable, 25% max surge"
        ),
        "{desc}"
    );
    assert!(has("Image:", "nginx:1.14.2"), "{desc}");
    // The Deployment controller made its ReplicaSet and said so.
    assert!(desc.contains("ScalingReplicaSet"), "{desc}");

    // A stale replace conflicts.
    let old = dir.path().join("old.yaml");
    std::fs::write(
        &old,
        ok(c.skiff(&["get", "deployment", "nginx-deployment", "-o", "yaml"])),
    )
    .unwrap();
    ok(c.skiff(&["apply", "-f", &m("nginx-deployment.yaml")]));
    let e = fails(c.skiff(&["replace", "-f", old.to_str().unwrap()]));
    assert!(e.starts_with("Error from server (Conflict): Operation cannot be fulfilled on deployments.apps \"nginx-deployment\""), "{e}");
    // A current replace works (the Deployment controller writes the status too: a replace
    // racing it conflicts, as with kubectl, and a fresh copy goes through).
    let mut replaced = String::new();
    for _ in 0..20 {
        std::fs::write(
            &old,
            ok(c.skiff(&["get", "deployment", "nginx-deployment", "-o", "yaml"])),
        )
        .unwrap();
        let o = c.skiff(&["replace", "-f", old.to_str().unwrap()]);
        replaced = out(&o);
        if o.status.success() {
            break;
        }
        assert!(err(&o).contains("Conflict"), "{}", err(&o));
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    assert_eq!(replaced, "deployment.apps/nginx-deployment replaced\n");
    let e = fails(c.skiff(&["create", "-f", &m("my-service.yaml")]));
    assert_eq!(
        e,
        "Error from server (AlreadyExists): services \"my-service\" already exists\n"
    );

    // delete by KIND NAME, then it is gone.
    assert_eq!(
        ok(c.skiff(&["delete", "configmap", "game-demo"])),
        "configmap/game-demo deleted\n"
    );
    let e = fails(c.skiff(&["get", "cm", "game-demo"]));
    assert_eq!(
        e,
        "Error from server (NotFound): configmaps \"game-demo\" not found\n"
    );
    assert_eq!(
        err(&c.skiff(&["get", "cm"])),
        "No resources found in default namespace.\n"
    );

    // A restart keeps everything, at the same revisions (once the controllers, which
    // keep the Deployment's status, have nothing left to write).
    let mut before = ok(c.skiff(&["get", "deploy,svc,secrets", "-o", "json"]));
    for _ in 0..50 {
        std::thread::sleep(std::time::Duration::from_millis(200));
        let again = ok(c.skiff(&["get", "deploy,svc,secrets", "-o", "json"]));
        if again == before {
            break;
        }
        before = again;
    }
    c.stop();
    let c2 = Coordinator::start_on(dir.path(), c.port);
    let after = ok(c2.skiff(&["get", "deploy,svc,secrets", "-o", "json"]));
    assert_eq!(json(&before), json(&after));
    // Deleting with -f, and a namespace takes its objects along.
    assert_eq!(
        ok(c2.skiff(&["delete", "-f", &m("secrets.yaml")])),
        "secret/dotfile-secret deleted\nsecret/secret-basic-auth deleted\n"
    );
    let ns = dir.path().join("ns.yaml");
    std::fs::write(
        &ns,
        "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: team-a\n",
    )
    .unwrap();
    ok(c2.skiff(&["apply", "-f", ns.to_str().unwrap()]));
    ok(c2.skiff(&[
        "apply",
        "-n",
        "team-a",
        "-f",
        &m("game-demo-configmap.yaml"),
    ]));
    assert_eq!(
        ok(c2.skiff(&["get", "cm", "-A", "-o", "name"])),
        "configmap/game-demo\n"
    );
    ok(c2.skiff(&["delete", "ns", "team-a"]));
    assert_eq!(ok(c2.skiff(&["get", "cm", "-A", "-o", "name"])), "");
    let e = fails(c2.skiff(&["delete", "namespace", "default"]));
    assert!(e.contains("this namespace may not be deleted"), "{e}");
}

#[test]
fn invalid_manifests_write_nothing() {
    let dir = TempDir::new("e2e-bad");
    let c = Coordinator::start(dir.path());
    let bad = dir.path().join("bad.yaml");
    let good = std::fs::read_to_string(m("my-service.yaml")).unwrap();
    let typo = std::fs::read_to_string(m("nginx-deployment.yaml"))
        .unwrap()
        .replace(
            "        image: nginx:1.14.2\n",
            "        image: nginx:1.14.2\n        imagePullPolcy: Always\n",
        );
    std::fs::write(&bad, format!("{good}---\n{typo}")).unwrap();
    let e = fails(c.skiff(&["apply", "-f", bad.to_str().unwrap()]));
    assert!(e.contains("deployment \"nginx-deployment\": spec.template.spec.containers[0].imagePullPolcy: unknown field (line 34)"), "{e}");
    assert!(e.contains("nothing was applied"), "{e}");
    // The valid Service in the same file was not written either.
    assert_eq!(ok(c.skiff(&["get", "svc", "-o", "name"])), "");

    for (doc, want) in [
        ("apiVersion: v1\nkind: Service\nmetadata:\n  name: Web\nspec:\n  ports: [{port: 80}]\n", "metadata.name: Invalid value: \"Web\""),
        ("apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: d}\nspec:\n  replicas: -1\n  selector: {matchLabels: {a: b}}\n  template:\n    metadata: {labels: {a: b}}\n    spec:\n      containers: [{name: c, image: x}]\n", "spec.replicas: Invalid value: -1: must be greater than or equal to 0 (line 5)"),
        ("apiVersion: v1\nkind: Pod\nmetadata: {name: p}\nspec:\n  containers: []\n", "spec.containers: Required value"),
        ("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c\n", "invalid YAML"),
        ("apiVersion: v1\nkind: Pod\nmetadata: {name: p}\nspec:\n  containers:\n  - name: a\n    image: x\n    ports: [{containerPort: 99999}]\n", "containerPort: Invalid value: 99999: must be between 1 and 65535"),
    ] {
        std::fs::write(&bad, doc).unwrap();
        let e = fails(c.skiff(&["apply", "-f", bad.to_str().unwrap()]));
        assert!(e.contains(want), "want {want:?} in {e}");
    }
    // A known Kubernetes field skiff does not implement is a warning, not an error.
    let warn = std::fs::read_to_string(m("nginx-deployment.yaml"))
        .unwrap()
        .replace(
            "      containers:\n",
            "      shareProcessNamespace: true\n      containers:\n",
        );
    std::fs::write(&bad, warn).unwrap();
    let o = c.skiff(&["apply", "-f", bad.to_str().unwrap()]);
    assert_eq!(ok(o.clone()), "deployment.apps/nginx-deployment created\n");
    assert!(
        err(&o).contains("Warning: ")
            && err(&o).contains(
                "spec.template.spec.shareProcessNamespace: skiff does not implement this Kubernetes field"
            ),
        "{}",
        err(&o)
    );
    assert_eq!(
        ok(c.skiff(&["get", "deploy", "-o", "name"])),
        "deployment.apps/nginx-deployment\n"
    );

    // A status update of a kind without a status is refused, not a silent no-op.
    ok(c.skiff(&["apply", "-f", &m("game-demo-configmap.yaml")]));
    rt().block_on(async {
        let a = admin(&c).await;
        let cm = a
            .get_json(skiff_api::ObjectKey {
                kind: Kind::ConfigMap,
                namespace: "default".into(),
                name: "game-demo".into(),
            })
            .await
            .unwrap();
        let e = a
            .call(&Request::Update {
                object: cm.to_string(),
                status: true,
            })
            .await
            .unwrap_err();
        assert_eq!(e.code(), Some(ErrorCode::NotFound), "{e}");
        assert!(e.to_string().contains("configmaps have no status"), "{e}");
    });
}

async fn admin(c: &Coordinator) -> Client {
    Client::connect(&ClientConfig::load(&c.config()).unwrap())
        .await
        .unwrap()
}

#[test]
fn strangers_are_refused_and_nodes_see_only_their_own() {
    let dir = TempDir::new("e2e-authz");
    let c = Coordinator::start(dir.path());
    ok(c.skiff(&["apply", "-f", &m("secrets.yaml")]));
    ok(c.skiff(&["apply", "-f", &m("game-demo-configmap.yaml")]));
    let pod = dir.path().join("pod.yaml");
    std::fs::write(&pod, "apiVersion: v1\nkind: Pod\nmetadata: {name: edge-pod}\nspec:\n  nodeName: edge-1\n  containers:\n  - name: app\n    image: busybox:1.36\n    volumeMounts: [{name: dot, mountPath: /etc/dot}]\n  volumes:\n  - name: dot\n    secret: {secretName: dotfile-secret}\n---\napiVersion: v1\nkind: Pod\nmetadata: {name: other-pod}\nspec:\n  nodeName: edge-2\n  containers: [{name: app, image: busybox:1.36}]\n").unwrap();
    ok(c.skiff(&["apply", "-f", pod.to_str().unwrap()]));
    let server = format!("127.0.0.1:{}", c.port);
    let cfg = ClientConfig::load(&c.config()).unwrap();

    rt().block_on(async {
        // No client certificate: the handshake works (joining needs it), every request is refused.
        let tls = skiff_transport::tls::client_tls(&cfg.certificate_authority, None, None).unwrap();
        let anon = Client::connect_with(&server, "127.0.0.1", tls)
            .await
            .unwrap();
        let e = anon
            .call(&Request::list(Kind::Secret, None, None))
            .await
            .unwrap_err();
        assert_eq!(e.code(), Some(ErrorCode::Unauthorized), "{e}");
        let e = anon.call(&Request::Version).await.unwrap_err();
        assert_eq!(e.code(), Some(ErrorCode::Unauthorized), "{e}");

        // A client certificate from another CA is refused in the handshake.
        let other_key = rcgen::KeyPair::generate().unwrap();
        let mut p = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        p.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        let other_ca = p.self_signed(&other_key).unwrap();
        let issuer = rcgen::Issuer::from_ca_cert_pem(&other_ca.pem(), other_key).unwrap();
        let ck = rcgen::KeyPair::generate().unwrap();
        let mut cp = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        cp.distinguished_name
            .push(rcgen::DnType::CommonName, "admin");
        cp.distinguished_name
            .push(rcgen::DnType::OrganizationName, "system:masters");
        let forged = cp.signed_by(&ck, &issuer).unwrap();
        let tls = skiff_transport::tls::client_tls(
            &cfg.certificate_authority,
            Some(&forged.pem()),
            Some(&ck.serialize_pem()),
        )
        .unwrap();
        let refused = match Client::connect_with(&server, "127.0.0.1", tls).await {
            Err(_) => true,
            Ok(cl) => cl.call(&Request::Version).await.is_err(),
        };
        assert!(
            refused,
            "a certificate from a foreign CA must not be served"
        );

        // A wrong token is refused; the real one enrols a node.
        let token = c.node_token();
        let bad = token.replace(&token[token.len() - 4..], "zzzz");
        assert!(skiff_transport::join(&server, &bad, "edge-1")
            .await
            .is_err());
        let node_cfg = skiff_transport::join(&server, &token, "edge-1")
            .await
            .unwrap();
        let node = Client::connect(&node_cfg).await.unwrap();
        match node.call(&Request::WhoAmI).await.unwrap() {
            Response::Identity { name } => assert_eq!(name, "node:edge-1"),
            other => panic!("{other:?}"),
        }
        let get = |kind, name: &str| Request::Get {
            key: ObjectKey {
                kind,
                namespace: "default".into(),
                name: name.into(),
            },
        };
        // The Secret its pod mounts: readable. Any other: forbidden.
        assert!(node
            .call(&get(Kind::Secret, "dotfile-secret"))
            .await
            .is_ok());
        let e = node
            .call(&get(Kind::Secret, "secret-basic-auth"))
            .await
            .unwrap_err();
        assert_eq!(e.code(), Some(ErrorCode::Forbidden), "{e}");
        let e = node
            .call(&get(Kind::ConfigMap, "game-demo"))
            .await
            .unwrap_err();
        assert_eq!(e.code(), Some(ErrorCode::Forbidden), "{e}");
        // Listing Secrets shows only those its pods use.
        let Response::List { items, .. } = node
            .call(&Request::list(Kind::Secret, None, None))
            .await
            .unwrap()
        else {
            panic!()
        };
        let names: Vec<String> = items
            .iter()
            .map(|i| {
                serde_json::from_str::<serde_json::Value>(i).unwrap()["metadata"]["name"]
                    .as_str()
                    .unwrap()
                    .to_string()
            })
            .collect();
        assert_eq!(names, ["dotfile-secret"]);
        let e = node
            .call(&Request::list(Kind::Deployment, None, None))
            .await
            .unwrap_err();
        assert_eq!(e.code(), Some(ErrorCode::Forbidden), "{e}");
        let e = node.call(&get(Kind::Pod, "other-pod")).await.unwrap_err();
        assert_eq!(e.code(), Some(ErrorCode::Forbidden), "{e}");
        // Its pods, and only its pods, are listed.
        let Response::List { items, .. } = node
            .call(&Request::list(Kind::Pod, None, None))
            .await
            .unwrap()
        else {
            panic!()
        };
        assert_eq!(items.len(), 1);
        assert!(items[0].contains("edge-pod"));
        // It may not write workloads or tokens.
        let dep = std::fs::read_to_string(m("nginx-deployment.yaml")).unwrap();
        let obj = skiff_api::manifest::parse_manifests(&dep)
            .unwrap()
            .remove(0)
            .object
            .to_value()
            .to_string();
        let e = node
            .call(&Request::Apply { object: obj })
            .await
            .unwrap_err();
        assert_eq!(e.code(), Some(ErrorCode::Forbidden), "{e}");
        let e = node.call(&Request::TokenList).await.unwrap_err();
        assert_eq!(e.code(), Some(ErrorCode::Forbidden), "{e}");

        // Tokens: create with expiry, list, revoke; a revoked token no longer joins.
        let a = admin(&c).await;
        let Response::Token { token: t2, info } = a
            .call(&Request::TokenCreate {
                ttl_seconds: Some(3600),
                uses: None,
                description: "rack 2".into(),
            })
            .await
            .unwrap()
        else {
            panic!()
        };
        assert!(info.expires.is_some());
        let Response::Tokens { tokens } = a.call(&Request::TokenList).await.unwrap() else {
            panic!()
        };
        assert_eq!(tokens.len(), 2);
        assert!(tokens.iter().any(|t| t.description == "rack 2"));
        a.call(&Request::TokenRevoke {
            id: info.id.clone(),
        })
        .await
        .unwrap();
        assert!(skiff_transport::join(&server, &t2, "edge-3").await.is_err());
    });
    // The CLI's token verbs.
    let t = ok(c.skiff(&["token", "create", "--ttl", "1h", "--description", "cli"]));
    assert!(t.starts_with("SK10"), "{t}");
    let l = ok(c.skiff(&["token", "list"]));
    // The first-start token lives --node-token-ttl (24 h), not forever.
    assert!(
        l.starts_with("ID ")
            && l.contains("cli")
            && l.contains("default node token")
            && !l.contains("<never>"),
        "{l}"
    );
}

#[test]
fn bad_frames_are_refused_and_the_server_keeps_serving() {
    let dir = TempDir::new("e2e-frames");
    let c = Coordinator::start(dir.path());
    rt().block_on(async {
        let client = admin(&c).await;
        let conn = client.connection().clone();
        async fn raw(conn: &quinn::Connection, bytes: &[u8]) -> Response {
            let (mut send, mut recv) = conn.open_bi().await.unwrap();
            // The server may stop reading early (oversized frames): ignore write errors.
            let _ = send.write_all(bytes).await;
            let _ = send.finish();
            skiff_transport::frames::read_frame(&mut recv, skiff_api::wire::MAX_FRAME_LEN)
                .await
                .unwrap()
                .expect("an answer")
        }
        let expect = |r: Response, code: ErrorCode| match r {
            Response::Error(e) => assert_eq!(e.code, code, "{e}"),
            other => panic!("want {code:?}, got {other:?}"),
        };
        // Truncated: the header announces 100 bytes, 10 arrive.
        let mut t = 100u32.to_be_bytes().to_vec();
        t.extend([0u8; 10]);
        expect(raw(&conn, &t).await, ErrorCode::BadRequest);
        // Over the limit: refused from the header, before any allocation.
        let mut big = u32::MAX.to_be_bytes().to_vec();
        big.extend(vec![7u8; 64 * 1024]);
        expect(raw(&conn, &big).await, ErrorCode::TooLarge);
        // Garbage postcard.
        expect(
            raw(&conn, &[0, 0, 0, 4, 0xff, 0xff, 0xff, 0xff]).await,
            ErrorCode::BadRequest,
        );
        // A frame whose object is not JSON, and one that is not a valid object.
        let f = skiff_api::wire::encode_frame(&Request::Create {
            object: "{not json".into(),
        })
        .unwrap();
        expect(raw(&conn, &f).await, ErrorCode::BadRequest);
        let f = skiff_api::wire::encode_frame(&Request::Create {
            object: r#"{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"x"},"dta":{}}"#
                .into(),
        })
        .unwrap();
        expect(raw(&conn, &f).await, ErrorCode::Invalid);
        // The same connection and a new client still work, and nothing was written.
        let Response::List { items, .. } = client
            .call(&Request::list(Kind::ConfigMap, None, None))
            .await
            .unwrap()
        else {
            panic!()
        };
        assert!(items.is_empty());
        let other = admin(&c).await;
        assert!(matches!(
            other.call(&Request::Version).await.unwrap(),
            Response::Version { .. }
        ));
    });
}

#[test]
fn watch_delivers_changes_in_order_and_resumes_from_a_revision() {
    let dir = TempDir::new("e2e-watch");
    let c = Coordinator::start(dir.path());
    rt().block_on(async {
        let client = admin(&c).await;
        let Response::List { revision, .. } = client.call(&Request::list(Kind::ConfigMap, None, None)).await.unwrap() else { panic!() };
        let mut w = client.watch(&Request::Watch { kind: Kind::ConfigMap, namespace: Some("default".into()), selector: None, since: Some(revision) }).await.unwrap();
        let cm = |n: &str, v: &str| format!(r#"{{"apiVersion":"v1","kind":"ConfigMap","metadata":{{"name":"{n}","namespace":"default"}},"data":{{"v":"{v}"}}}}"#);
        client.call(&Request::Apply { object: cm("a", "1") }).await.unwrap();
        client.call(&Request::Apply { object: cm("a", "2") }).await.unwrap();
        client.call(&Request::Delete { key: ObjectKey { kind: Kind::ConfigMap, namespace: "default".into(), name: "a".into() }, resource_version: None, grace_period_seconds: None, force: false, propagation: Default::default() }).await.unwrap();
        let mut revs = Vec::new();
        let mut kinds = Vec::new();
        for _ in 0..3 {
            let e = w.next().await.unwrap().unwrap();
            revs.push(e.revision().unwrap());
            kinds.push(format!("{e:?}").split_whitespace().next().unwrap().to_string());
        }
        assert_eq!(kinds, ["Added", "Modified", "Deleted"]);
        assert_eq!(revs, [revision + 1, revision + 2, revision + 3]);
        // Resuming from the middle replays what came after.
        let mut w2 = client.watch(&Request::Watch { kind: Kind::ConfigMap, namespace: None, selector: None, since: Some(revision + 1) }).await.unwrap();
        assert_eq!(w2.next().await.unwrap().unwrap().revision(), Some(revision + 2));
        assert_eq!(w2.next().await.unwrap().unwrap().revision(), Some(revision + 3));
    });
}

#[test]
fn answered_requests_end_their_streams_without_stop_or_reset() {
    // A request stream read to its end closes quietly; one dropped before its end sends
    // the peer a STOP_SENDING frame (and a peer may answer that with a reset).
    let dir = TempDir::new("e2e-streams");
    let c = Coordinator::start(dir.path());
    rt().block_on(async {
        let client = admin(&c).await;
        let cm = |n: usize| format!(r#"{{"apiVersion":"v1","kind":"ConfigMap","metadata":{{"name":"s{n}","namespace":"default"}},"data":{{"v":"{n}"}}}}"#);
        for n in 0..20 {
            client.call(&Request::Create { object: cm(n) }).await.unwrap();
            client.call(&Request::list(Kind::ConfigMap, None, None)).await.unwrap();
        }
        // Let the last answers' acknowledgements and any late frames arrive.
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
        let s = client.connection().stats();
        // A stream's end can come a moment after its frame (when the peer's connection
        // task sends between the peer's write and its finish): that stream is stopped as
        // before. Without take_end, every one of the 40 was.
        let frames = |f: &quinn::FrameStats| (f.stop_sending, f.reset_stream);
        let quiet = |f: &quinn::FrameStats| f.stop_sending <= 4 && f.reset_stream <= 4;
        assert!(quiet(&s.frame_tx), "sent (STOP_SENDING, RESET_STREAM): {:?}", frames(&s.frame_tx));
        assert!(quiet(&s.frame_rx), "received (STOP_SENDING, RESET_STREAM): {:?}", frames(&s.frame_rx));
    });
}

#[test]
fn large_lists_come_in_pages() {
    let dir = TempDir::new("e2e-pages");
    let c = Coordinator::start(dir.path());
    rt().block_on(async {
        let client = admin(&c).await;
        let cm = |n: usize, tier: &str, pad: usize| {
            format!(
                r#"{{"apiVersion":"v1","kind":"ConfigMap","metadata":{{"name":"cm-{n:05}","namespace":"default","labels":{{"tier":"{tier}"}}}},"data":{{"v":"{}"}}}}"#,
                "x".repeat(pad)
            )
        };
        let mut tasks = Vec::new();
        for k in 0..16 {
            let client = client.clone();
            tasks.push(tokio::spawn(async move {
                for n in (k..1200).step_by(16) {
                    let tier = if n % 3 == 0 { "db" } else { "web" };
                    client.call(&Request::Create { object: cm(n, tier, 10) }).await.unwrap();
                }
            }));
        }
        for t in tasks {
            t.await.unwrap();
        }
        // Pages of 500, 500 and 200, in name order, with continue tokens between them.
        let mut token = None;
        let mut sizes = Vec::new();
        let mut names = Vec::new();
        loop {
            let req = Request::List { kind: Kind::ConfigMap, namespace: Some("default".into()), selector: None, limit: Some(500), continue_token: token.take() };
            let Response::List { items, continue_token, .. } = client.call(&req).await.unwrap() else { panic!() };
            sizes.push(items.len());
            names.extend(items.iter().map(|i| json(i)["metadata"]["name"].as_str().unwrap().to_string()));
            match continue_token {
                Some(t) => token = Some(t),
                None => break,
            }
        }
        assert_eq!(sizes, [500, 500, 200]);
        let mut sorted = names.clone();
        sorted.sort();
        sorted.dedup();
        assert_eq!(names, sorted, "pages are in order with no repeats");
        // A selector filters across pages.
        let (_, db) = client.list_all(Kind::ConfigMap, None, Some("tier=db".into())).await.unwrap();
        assert_eq!(db.len(), 400);
        // Big objects: a page never exceeds the byte cap, so it always fits in a frame.
        for n in 2000..2025 {
            client.call(&Request::Create { object: cm(n, "big", 300_000) }).await.unwrap();
        }
        let Response::List { items, continue_token, .. } = client.call(&Request::list(Kind::ConfigMap, None, Some("tier=big".into()))).await.unwrap() else { panic!() };
        assert!(items.len() < 25 && continue_token.is_some(), "{} items in one page", items.len());
        let (_, big) = client.list_all(Kind::ConfigMap, None, Some("tier=big".into())).await.unwrap();
        assert_eq!(big.len(), 25);
    });
    // The CLI follows pages too.
    assert_eq!(
        ok(c.skiff(&["get", "cm", "-o", "name"])).lines().count(),
        1225
    );
}

#[test]
fn several_kinds_print_aligned_tables() {
    let dir = TempDir::new("e2e-kinds");
    let c = Coordinator::start(dir.path());
    ok(c.skiff(&[
        "apply",
        "-f",
        &m("nginx-deployment.yaml"),
        "-f",
        &m("my-service.yaml"),
    ]));
    let out = ok(c.skiff(&["get", "deploy,svc"]));
    let blocks: Vec<&str> = out.split("\n\n").collect();
    assert_eq!(blocks.len(), 2, "{out}");
    for block in blocks {
        let lines: Vec<&str> = block.lines().collect();
        // The AGE value starts right under its header (names are prefixed before layout).
        let age_col = lines[0].find("AGE").unwrap();
        assert_eq!(&lines[1][age_col - 1..age_col], " ", "{block}");
        assert!(
            lines[1][age_col..].starts_with(|c: char| c.is_ascii_digit()),
            "{block}"
        );
        assert!(
            lines[1].starts_with("deployment.apps/nginx-deployment")
                || lines[1].starts_with("service/my-service"),
            "{block}"
        );
    }
}

#[test]
fn a_kind_without_a_controller_is_stored_listed_and_described() {
    // PodDisruptionBudget, as the Kubernetes documentation's ZooKeeper tutorial writes it.
    let dir = TempDir::new("e2e-pdb");
    let c = Coordinator::start(dir.path());
    let pdb = dir.path().join("pdb.yaml");
    std::fs::write(&pdb, "apiVersion: policy/v1\nkind: PodDisruptionBudget\nmetadata:\n  name: zk-pdb\nspec:\n  minAvailable: 2\n  selector:\n    matchLabels:\n      app: zookeeper\n").unwrap();
    assert_eq!(
        ok(c.skiff(&["apply", "-f", pdb.to_str().unwrap()])),
        "poddisruptionbudget.policy/zk-pdb created\n"
    );
    let table = ok(c.skiff(&["get", "pdb"]));
    let lines: Vec<&str> = table.lines().collect();
    assert!(
        lines[0]
            .starts_with("NAME     MIN AVAILABLE   MAX UNAVAILABLE   ALLOWED DISRUPTIONS   AGE"),
        "{table}"
    );
    assert!(
        lines[1].starts_with("zk-pdb   2               N/A               0 "),
        "{table}"
    );
    let page = ok(c.skiff(&["describe", "poddisruptionbudget", "zk-pdb"]));
    assert!(page.contains("Min available:      2\n"), "{page}");
    assert!(
        page.contains("Selector:           app=zookeeper\n"),
        "{page}"
    );
    let o = json(&ok(c.skiff(&["get", "pdb", "zk-pdb", "-o", "json"])));
    assert_eq!(o["metadata"]["generation"], 1, "{o}");
    // Invalid budgets are refused with the field's path.
    std::fs::write(&pdb, "apiVersion: policy/v1\nkind: PodDisruptionBudget\nmetadata:\n  name: both\nspec:\n  minAvailable: 1\n  maxUnavailable: 1\n").unwrap();
    let e = fails(c.skiff(&["apply", "-f", pdb.to_str().unwrap()]));
    assert!(
        e.contains("minAvailable and maxUnavailable cannot be both set"),
        "{e}"
    );
    ok(c.skiff(&["delete", "pdb", "zk-pdb"]));
    assert_eq!(ok(c.skiff(&["get", "pdb", "-o", "name"])), "");
}

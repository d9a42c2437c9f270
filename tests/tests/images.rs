//! Images end to end: pulls from a real registry (Debian's docker-registry on loopback) with
//! basic and bearer-token auth over HTTPS with a configured CA, plain HTTP only when marked
//! insecure, manifest lists resolved to this platform, no refetch of present blobs, progress;
//! offline import of both archive formats through `skiff-agent`.

use std::sync::Mutex;

use skiff_images::{ImageStore, Progress, RegistryConfig};
use skiff_tests::image;
use skiff_tests::node::{require_root, Node, IMAGE};
use skiff_tests::registry::{Auth, Registry, PASSWORD, USER};
use skiff_tests::TempDir;

fn layout(tag: &str) -> (TempDir, std::path::PathBuf) {
    let dir = TempDir::new("layout");
    let l = image::multi_platform_layout(&dir.path().join("oci"), tag);
    (dir, l)
}

fn pull(node: &Node, registries: &str, reference: &str) -> (bool, String, String) {
    std::fs::write(node.data().join("registries.yaml"), registries).unwrap();
    let out = node.agent(&["image", "pull", reference]);
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn basic_auth_over_https_with_a_configured_ca() {
    let reg = Registry::start(Auth::Basic, true);
    let (_d, l) = layout("v1");
    reg.push(&l, "v1", "team/busybox:v1");
    let node = Node::new("pull-basic");
    let reference = format!("{}/team/busybox:v1", reg.host);

    let (ok, _, err) = pull(&node, &reg.registries_yaml(None, true, false), &reference);
    assert!(
        !ok && err.contains("needs credentials"),
        "anonymous is refused: {err}"
    );
    let (ok, _, err) = pull(
        &node,
        &reg.registries_yaml(Some((USER, "wrong")), true, false),
        &reference,
    );
    assert!(
        !ok && err.contains("unauthorized"),
        "a wrong password is refused: {err}"
    );
    let (ok, _, err) = pull(
        &node,
        &reg.registries_yaml(Some((USER, PASSWORD)), false, false),
        &reference,
    );
    assert!(
        !ok && err.to_lowercase().contains("certificate"),
        "an unknown CA is refused: {err}"
    );
    let (ok, out, err) = pull(
        &node,
        &reg.registries_yaml(Some((USER, PASSWORD)), true, false),
        &reference,
    );
    assert!(ok, "{err}");
    assert!(out.contains(&format!("pulled {reference}")), "{out}");
    assert!(err.contains(": done"), "per-layer progress: {err}");
    // The manifest list resolved to this host's platform, and the image runs.
    let (code, out, e) = node.run(&[], "true");
    assert_eq!(code, 0, "{e}");
    let _ = out;
    let out = node.agent(&[
        "run",
        "--rm",
        &reference,
        "--",
        "sh",
        "-c",
        "echo $IMAGE_ENV",
    ]);
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "from-image\n",
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // A second pull fetches no blob again.
    let (ok, _, err) = pull(
        &node,
        &reg.registries_yaml(Some((USER, PASSWORD)), true, false),
        &reference,
    );
    assert!(
        ok && err.contains("already present") && !err.contains(": done"),
        "{err}"
    );
}

#[test]
fn bearer_tokens_and_progress_through_the_library() {
    require_root();
    let reg = Registry::start(Auth::Token, true);
    let (_d, l) = layout("v2");
    reg.push(&l, "v2", "apps/tool:v2");
    let dir = TempDir::new("pull-token");
    let store = ImageStore::open(dir.path()).unwrap();
    let cfg: RegistryConfig = serde_json::from_value(serde_json::json!({
        "configs": {reg.host.clone(): {"auth": {"username": USER, "password": PASSWORD}, "tls": {"ca_file": reg.ca()}}}
    }))
    .unwrap();
    let events = Mutex::new(Vec::new());
    let report = |p: Progress| events.lock().unwrap().push(p);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let rec = rt
        .block_on(store.pull(&format!("{}/apps/tool:v2", reg.host), &cfg, &report))
        .unwrap();
    assert_eq!(
        store.config(&rec).unwrap().architecture,
        skiff_images::Platform::host().architecture
    );
    let ev = events.lock().unwrap().clone();
    let Progress::Resolved { layers, .. } = &ev[0] else {
        panic!("first event resolves the manifest: {ev:?}")
    };
    assert_eq!(layers.len(), 1);
    let (digest, size) = layers[0].clone();
    assert!(ev.iter().any(|e| matches!(e, Progress::Layer { digest: d, done, total } if *d == digest && done == total && *total == size)));
    assert!(ev.contains(&Progress::LayerDone {
        digest: digest.clone(),
        cached: false
    }));
    // Again: nothing fetched.
    events.lock().unwrap().clear();
    rt.block_on(store.pull(&format!("{}/apps/tool:v2", reg.host), &cfg, &report))
        .unwrap();
    let ev = events.lock().unwrap().clone();
    assert!(
        ev.contains(&Progress::LayerDone {
            digest,
            cached: true
        }) && !ev.iter().any(|e| matches!(e, Progress::Layer { .. })),
        "{ev:?}"
    );
    // Without credentials the token server refuses.
    let anon: RegistryConfig = serde_json::from_value(
        serde_json::json!({"configs": {reg.host.clone(): {"tls": {"ca_file": reg.ca()}}}}),
    )
    .unwrap();
    let err = rt
        .block_on(store.pull(&format!("{}/apps/tool:v2", reg.host), &anon, &|_| {}))
        .unwrap_err();
    assert!(err.to_string().contains("token"), "{err}");
}

#[test]
fn plain_http_only_for_insecure_registries() {
    let reg = Registry::start(Auth::Anonymous, false);
    let (_d, l) = layout("v3");
    reg.push(&l, "v3", "open/box:v3");
    let node = Node::new("pull-http");
    let reference = format!("{}/open/box:v3", reg.host);
    let (ok, _, err) = pull(&node, "", &reference);
    assert!(!ok, "HTTPS to a plain-HTTP registry fails: {err}");
    let (ok, _, err) = pull(&node, &reg.registries_yaml(None, false, true), &reference);
    assert!(ok, "{err}");
    // A typo in the registries file is an error naming the field.
    let (ok, _, err) = pull(
        &node,
        &format!("configs:\n  \"{}\":\n    insecur: true\n", reg.host),
        &reference,
    );
    assert!(!ok && err.contains("insecur"), "{err}");
}

#[test]
fn offline_import_of_both_archive_formats() {
    let node = Node::new("import");
    let dir = TempDir::new("archives");
    let save = dir.path().join("saved.tar");
    image::docker_save(&save, "example.com/team/saved:1.0");
    let (_l, layout) = {
        let d = TempDir::new("layout");
        let l = image::oci_layout(&d.path().join("oci"), "localhost:5000/oci/img:2");
        (d, l)
    };
    let archive = dir.path().join("oci.tar");
    image::oci_archive(&layout, &archive);
    for f in [&save, &archive] {
        let out = node.agent(&["image", "import", f.to_str().unwrap()]);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let ls = String::from_utf8_lossy(&node.agent(&["image", "ls"]).stdout).into_owned();
    for name in [
        "example.com/team/saved:1.0",
        "localhost:5000/oci/img:2",
        IMAGE,
    ] {
        assert!(ls.contains(name), "{name} in {ls}");
    }
    let out = node.agent(&[
        "run",
        "--rm",
        "localhost:5000/oci/img:2",
        "--",
        "echo",
        "from-oci",
    ]);
    assert_eq!(String::from_utf8_lossy(&out.stdout), "from-oci\n");
    // Short names resolve as Docker does: busybox:1.36 is docker.io/library/busybox:1.36.
    image::docker_save(&save, "busybox:1.36");
    node.agent(&["image", "import", save.to_str().unwrap()]);
    let out = node.agent(&[
        "run",
        "--rm",
        "docker.io/library/busybox:1.36",
        "--",
        "true",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // rm untags and collects what nothing else uses.
    let out = node.agent(&[
        "image",
        "rm",
        "busybox:1.36",
        "example.com/team/saved:1.0",
        IMAGE,
        "localhost:5000/oci/img:2",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let ls = String::from_utf8_lossy(&node.agent(&["image", "ls"]).stdout).into_owned();
    assert_eq!(ls.lines().count(), 1, "only the header is left: {ls}");
    let blobs = std::fs::read_dir(node.data().join("content/blobs/sha256"))
        .unwrap()
        .count();
    assert_eq!(blobs, 0);
    // The airgap directory: archives dropped in <data-dir>/images/ are imported at start.
    std::fs::create_dir_all(node.data().join("images")).unwrap();
    image::docker_save(&node.data().join("images/dropped.tar"), "dropped/app:7");
    let out = node.agent(&["image", "ls"]);
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("imported dropped/app:7"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("dropped/app:7"));
    let again = node.agent(&["image", "ls"]);
    assert!(
        !String::from_utf8_lossy(&again.stderr).contains("imported"),
        "imported once"
    );
    // A crafted archive is refused with the entry named.
    let bad = dir.path().join("bad.tar");
    std::fs::write(&bad, b"definitely not a tar archive").unwrap();
    let out = node.agent(&["image", "import", bad.to_str().unwrap()]);
    assert!(!out.status.success());
}

//! Teardown leaves nothing: 1,000 create/start/wait/delete cycles of a sandbox and its
//! container, then no mount, cgroup directory, descriptor, process or run-dir entry is left
//! over. Its own test binary, so no other test opens descriptors meanwhile.

use std::path::Path;
use std::time::Duration;

use skiff_tests::node::Node;

fn fds(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .map(|d| d.count())
        .unwrap_or(0)
}

fn mounts_under(p: &Path) -> Vec<String> {
    let prefix = p.display().to_string();
    std::fs::read_to_string("/proc/self/mountinfo")
        .unwrap()
        .lines()
        .filter_map(|l| l.split(' ').nth(4).map(str::to_string))
        .filter(|m| m.starts_with(&prefix))
        .collect()
}

fn cgroup_dirs(parent: &str) -> Vec<String> {
    let mut out = Vec::new();
    for hierarchy in std::fs::read_dir("/sys/fs/cgroup").unwrap() {
        let dir = hierarchy
            .unwrap()
            .path()
            .join(parent.trim_start_matches('/'));
        if let Ok(entries) = std::fs::read_dir(&dir) {
            for e in entries {
                let e = e.unwrap();
                if e.file_type().unwrap().is_dir() {
                    out.push(e.path().display().to_string());
                }
            }
        }
    }
    out
}

fn children(pid: u32) -> usize {
    std::fs::read_to_string(format!("/proc/{pid}/task/{pid}/children"))
        .map(|s| s.split_whitespace().count())
        .unwrap_or(0)
}

#[test]
fn a_thousand_cycles_leak_nothing() {
    let node = Node::new("cycles");
    let rt = node.runtime();
    let store = node.store();
    let helper = rt.helper_pid().expect("the helper runs");
    // One warm-up cycle, then the baseline.
    let cycle = |i: usize| {
        let pod = format!("p{i}");
        node.start(&rt, &pod, &format!("c{i}"), "true", |_| {});
        let exit = rt
            .wait(&format!("c{i}"), Some(Duration::from_secs(30)))
            .unwrap()
            .expect("exits");
        assert_eq!(exit.exit_code, 0);
        rt.remove_sandbox(&pod).unwrap();
        store.remove_rootfs(&format!("c{i}")).unwrap();
        let _ = std::fs::remove_file(node.log_path(&format!("c{i}")));
    };
    cycle(0);
    let me = std::process::id();
    let (my_fds, helper_fds) = (fds(me), fds(helper));
    for i in 1..=1000 {
        cycle(i);
    }
    // The helper reaps its monitors within a second.
    std::thread::sleep(Duration::from_millis(1500));
    assert_eq!(fds(me), my_fds, "descriptors of the runtime's process");
    assert_eq!(fds(helper), helper_fds, "descriptors of the helper");
    assert_eq!(
        children(helper),
        0,
        "no monitor or zombie left under the helper"
    );
    // The runtime's own tmpfs for bundles stays (one, from its start); nothing else.
    let mem = node.data().join("run/mem").display().to_string();
    let mounts: Vec<String> = mounts_under(node.data())
        .into_iter()
        .filter(|m| *m != mem)
        .collect();
    assert_eq!(mounts, Vec::<String>::new(), "mounts");
    assert_eq!(
        cgroup_dirs(&node.cgroup_parent()),
        Vec::<String>::new(),
        "pod cgroups"
    );
    for d in [
        "run/containers",
        "run/sandboxes",
        "run/lc",
        "run/exec",
        "run/mem/bundles",
        "run/mem/exec",
        "content/rootfs",
    ] {
        let left: Vec<_> = std::fs::read_dir(node.data().join(d))
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert!(left.is_empty(), "{d} keeps {left:?}");
    }
    assert!(rt.list().unwrap().is_empty());
}

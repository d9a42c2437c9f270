//! Real containers on this machine's kernel, through `skiff-agent` and the runtime library
//! with its real helper process. Root, namespaces and cgroups are required (CI has them).

use std::time::Duration;

use skiff_runtime::{ContainerState, ExecConfig, Resources, Security};
use skiff_tests::node::Node;

/// Runs a process in a container to its end: exit code and stdout.
fn exec_output(rt: &skiff_runtime::Runtime, id: &str, args: &[&str]) -> (i32, String) {
    use std::io::Read;
    let mut e = rt
        .exec(
            id,
            &ExecConfig {
                args: args.iter().map(|a| a.to_string()).collect(),
                ..Default::default()
            },
        )
        .unwrap();
    let mut out = String::new();
    e.stdout.take().unwrap().read_to_string(&mut out).unwrap();
    (e.wait().unwrap(), out)
}

#[test]
fn exit_codes_env_args_workdir_user_hostname() {
    let node = Node::new("basics");
    let (code, out, err) = node.run(
        &["-e", "FOO=bar"],
        "echo $IMAGE_ENV $FOO; pwd; id -u; hostname; echo to-stderr >&2; exit 7",
    );
    assert_eq!(code, 7, "stderr: {err}");
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[0], "from-image bar");
    assert_eq!(lines[1], "/");
    assert_eq!(lines[2], "0");
    assert!(
        lines[3].starts_with("run-"),
        "hostname is the sandbox's: {}",
        lines[3]
    );
    assert!(err.contains("to-stderr"));
    let (code, out, _) = node.run(&["--user", "1000"], "id -u; id -g");
    assert_eq!(
        (code, out.as_str()),
        (0, "1000\n1000\n"),
        "uid and the passwd group"
    );
    // Arguments replace the image's cmd.
    let out = node.agent(&[
        "run",
        "--rm",
        skiff_tests::node::IMAGE,
        "--",
        "echo",
        "a b",
        "c",
    ]);
    assert_eq!(String::from_utf8_lossy(&out.stdout), "a b c\n");
    // A missing command is an error naming it, and leaves nothing behind.
    let out = node.agent(&["run", "--rm", skiff_tests::node::IMAGE, "--", "/no/such"]);
    assert!(!out.status.success());
    let rt = node.runtime();
    assert!(
        rt.list().unwrap().is_empty(),
        "no container left after a failed run"
    );
}

#[test]
fn pod_containers_share_localhost_not_pids() {
    let node = Node::new("pod");
    let rt = node.runtime();
    node.start(
        &rt,
        "pod1",
        "server",
        "echo pid=$$; echo pong | nc -l -p 8080; echo served",
        |c| {
            c.working_dir = Some("/tmp".into());
        },
    );
    node.start(&rt, "pod1", "client", "echo pid=$$; pwd; hostname; for i in $(seq 100); do nc 127.0.0.1 8080 && break; sleep 0.05; done", |_| {});
    let client = rt
        .wait("client", Some(Duration::from_secs(20)))
        .unwrap()
        .expect("client exits");
    assert_eq!(client.exit_code, 0);
    let log = node.log("client");
    assert!(
        log.contains("pong"),
        "client reached the server on localhost: {log}"
    );
    assert!(log.contains("pid=1\n"), "own PID namespace: {log}");
    assert!(
        log.contains("/\npod1\n"),
        "default working dir and the pod's hostname: {log}"
    );
    let server = rt
        .wait("server", Some(Duration::from_secs(20)))
        .unwrap()
        .expect("server exits");
    assert_eq!(server.exit_code, 0);
    let slog = node.log("server");
    assert!(
        slog.starts_with("pid=1\n"),
        "each container is PID 1 of its own namespace: {slog}"
    );
    // The server's working dir was applied.
    node.start(&rt, "pod1", "wd", "pwd", |c| {
        c.working_dir = Some("/tmp".into())
    });
    rt.wait("wd", Some(Duration::from_secs(20)))
        .unwrap()
        .unwrap();
    assert_eq!(node.log("wd"), "/tmp\n");
    rt.remove_sandbox("pod1").unwrap();
    assert!(rt.list().unwrap().is_empty());
}

#[test]
fn limits_are_enforced() {
    let node = Node::new("limits");
    // Memory: the hog is OOM-killed, the exit code is 137 and the reason is recorded.
    let (code, _, err) = node.run(&["--memory", "16Mi"], "exec tail /dev/zero");
    assert_eq!(code, 137, "{err}");
    assert!(err.contains("OOMKilled"), "{err}");
    // pids: a fork bomb stops at the limit.
    let (code, out, err) = node.run(
        &["--pids-limit", "8"],
        "for i in $(seq 20); do sleep 5 & done; echo started",
    );
    assert!(
        err.contains("can't fork") || err.contains("Resource temporarily unavailable"),
        "code {code} out {out} err {err}"
    );
    // cpu: a busy loop under a 0.1 cpu limit is throttled; without a limit it is not.
    let rt = node.runtime();
    for (id, limit) in [("spin-limited", Some(100)), ("spin-free", None)] {
        node.start(&rt, "cpu", id, "while true; do :; done", |c| {
            c.resources = Resources {
                cpu_limit_millis: limit,
                cpu_request_millis: limit,
                ..Default::default()
            };
        });
    }
    let mut throttled = (0, 0);
    for _ in 0..100 {
        std::thread::sleep(Duration::from_millis(50));
        throttled = (
            rt.stats("spin-limited").unwrap().cpu_throttled_periods,
            rt.stats("spin-free").unwrap().cpu_throttled_periods,
        );
        if throttled.0 >= 5 {
            break;
        }
    }
    assert!(
        throttled.0 >= 5,
        "the limited loop was throttled: {throttled:?}"
    );
    assert_eq!(throttled.1, 0, "the unlimited loop was not: {throttled:?}");
    let s = rt.stats("spin-limited").unwrap();
    assert!(
        s.cpu_usage_ns > 0 && s.pids >= 1 && s.memory_working_set > 0,
        "{s:?}"
    );
    rt.remove_sandbox("cpu").unwrap();
}

#[test]
fn security_defaults_hold() {
    let node = Node::new("security");
    let script = "grep CapEff /proc/self/status; mount -t tmpfs none /mnt && echo MOUNTED; ps -o pid | wc -l; probe keyctl; grep -c . /proc/1/cmdline";
    let (code, out, err) = node.run(&[], script);
    assert_eq!(code, 0, "{err}");
    let cap_eff = u64::from_str_radix(
        out.lines()
            .next()
            .unwrap()
            .split_whitespace()
            .nth(1)
            .unwrap(),
        16,
    )
    .unwrap();
    assert_eq!(cap_eff & (1 << 21), 0, "no CAP_SYS_ADMIN: {out}");
    assert_eq!(cap_eff, 0xa80425fb, "exactly Docker's default set: {out}");
    assert!(
        !out.contains("MOUNTED") && err.contains("mount"),
        "mount fails: {out} {err}"
    );
    let procs: usize = out.lines().nth(1).unwrap().trim().parse().unwrap();
    assert!(
        procs <= 4,
        "only the container's processes are visible ({procs} lines)"
    );
    assert!(
        out.contains("errno 1\n"),
        "keyctl is blocked by the seccomp profile with EPERM: {out}"
    );
    // The same probe in a privileged container (no seccomp) succeeds: the check can fail.
    let rt = node.runtime();
    node.start(&rt, "priv", "priv", "probe keyctl", |c| {
        c.security = Security {
            privileged: true,
            ..Default::default()
        }
    });
    rt.wait("priv", Some(Duration::from_secs(20)))
        .unwrap()
        .unwrap();
    assert_eq!(node.log("priv"), "ok\n");
    // securityContext: runAsNonRoot refuses a root image user, readOnlyRootFilesystem holds.
    let store = node.store();
    let rec = store.get(skiff_tests::node::IMAGE).unwrap();
    let rootfs = store.prepare_rootfs("nonroot", &rec).unwrap();
    let err = rt
        .create_container(
            "priv",
            "nonroot",
            &skiff_runtime::ContainerConfig {
                name: "nonroot".into(),
                command: Some(vec!["true".into()]),
                security: Security {
                    run_as_non_root: true,
                    ..Default::default()
                },
                log_path: node.log_path("nonroot"),
                ..Default::default()
            },
            &Default::default(),
            &rootfs.path,
        )
        .unwrap_err();
    assert!(err.to_string().contains("runAsNonRoot"), "{err}");
    node.start(
        &rt,
        "priv",
        "ro",
        "touch /x && echo WROTE; touch /tmp/y && echo tmp-ok; id -u",
        |c| {
            c.security = Security {
                read_only_root_filesystem: true,
                run_as_user: Some(1000),
                drop_capabilities: vec!["ALL".into()],
                ..Default::default()
            };
            c.mounts = vec![];
        },
    );
    rt.wait("ro", Some(Duration::from_secs(20)))
        .unwrap()
        .unwrap();
    let log = node.log("ro");
    assert!(!log.contains("WROTE") && log.contains("1000"), "{log}");
    rt.remove_sandbox("priv").unwrap();
}

#[test]
fn logs_rotate_exec_works_stop_honours_grace() {
    let node = Node::new("lifecycle");
    let rt = node.runtime();
    node.start(
        &rt,
        "p",
        "chatty",
        "i=0; while [ $i -lt 3000 ]; do echo line $i; i=$((i+1)); done",
        |c| {
            c.log_max_size = Some(16 * 1024);
            c.log_max_files = Some(3);
        },
    );
    rt.wait("chatty", Some(Duration::from_secs(30)))
        .unwrap()
        .unwrap();
    let path = node.log_path("chatty");
    assert!(
        skiff_runtime::logs::rotated(&path, 1).exists()
            && skiff_runtime::logs::rotated(&path, 2).exists(),
        "rotated"
    );
    assert!(
        !skiff_runtime::logs::rotated(&path, 3).exists(),
        "at most 3 files"
    );
    let log = node.log("chatty");
    assert!(log.ends_with("line 2999\n"), "the newest lines are kept");
    assert!(!log.contains("line 0\n"), "the oldest were rotated away");

    // exec, plain and with a terminal.
    node.start(
        &rt,
        "p",
        "svc",
        "trap 'echo got TERM; exit 42' TERM; echo ready; while true; do sleep 0.1; done",
        |_| {},
    );
    node.wait_log("svc", "ready");
    let mut e = rt
        .exec(
            "svc",
            &ExecConfig {
                args: vec![
                    "sh".into(),
                    "-c".into(),
                    "read x; echo in:$x; hostname; exit 5".into(),
                ],
                ..Default::default()
            },
        )
        .unwrap();
    use std::io::{Read, Write};
    e.stdin.take().unwrap().write_all(b"hello\n").unwrap();
    let mut out = String::new();
    e.stdout.take().unwrap().read_to_string(&mut out).unwrap();
    assert_eq!(e.wait().unwrap(), 5);
    assert_eq!(out, "in:hello\np\n");
    // An exec'd process is confined like the container: same seccomp profile.
    let (code, out) = exec_output(&rt, "svc", &["probe", "keyctl"]);
    assert_eq!(code, 0);
    assert_eq!(
        out, "errno 1\n",
        "keyctl is blocked in exec'd processes too"
    );
    let mut t = rt
        .exec(
            "svc",
            &ExecConfig {
                args: vec!["sh".into(), "-c".into(), "tty; exit 3".into()],
                tty: true,
                ..Default::default()
            },
        )
        .unwrap();
    let mut tty = t.tty.take().unwrap();
    let mut seen = Vec::new();
    let mut buf = [0u8; 256];
    // The pty gives EIO once the process is gone.
    while let Ok(n) = tty.read(&mut buf) {
        if n == 0 {
            break;
        }
        seen.extend_from_slice(&buf[..n]);
    }
    assert_eq!(t.wait().unwrap(), 3);
    assert!(
        String::from_utf8_lossy(&seen).contains("/dev/pts/"),
        "{}",
        String::from_utf8_lossy(&seen)
    );

    // stop: a container that handles TERM exits with its own code; one that ignores it is
    // killed once the grace period ends.
    let exit = rt.stop("svc", Duration::from_secs(20)).unwrap();
    assert_eq!(exit.exit_code, 42);
    assert!(node.log("svc").contains("got TERM"));
    node.start(
        &rt,
        "p",
        "stubborn",
        "trap '' TERM; echo ready; while true; do sleep 0.1; done",
        |_| {},
    );
    node.wait_log("stubborn", "ready");
    let exit = rt.stop("stubborn", Duration::from_millis(300)).unwrap();
    assert_eq!((exit.exit_code, exit.signal), (137, Some(9)));
    rt.remove_sandbox("p").unwrap();
}

#[test]
fn containers_survive_a_runtime_restart_and_are_readopted() {
    let node = Node::new("readopt");
    let rt = node.runtime();
    node.start(
        &rt,
        "p",
        "long",
        "echo before; while true; do sleep 0.1; done",
        |_| {},
    );
    node.wait_log("long", "before");
    let pid = rt.status("long").unwrap().pid.unwrap();
    let helper = rt.helper_pid().expect("the helper runs");
    drop(rt);
    assert!(
        !std::path::Path::new(&format!("/proc/{helper}")).exists()
            || std::fs::read_to_string(format!("/proc/{helper}/stat"))
                .unwrap_or_default()
                .contains(") Z"),
        "helper exited with its runtime"
    );
    assert!(
        std::path::Path::new(&format!("/proc/{pid}")).exists(),
        "the container kept running"
    );
    let rt = node.runtime();
    let list = rt.list().unwrap();
    assert_eq!(list.len(), 1);
    assert_eq!(list[0].state, ContainerState::Running);
    assert_eq!(list[0].pid, Some(pid), "same process, never restarted");
    // Logs kept flowing while nobody drove the runtime, and exec/stop work after adoption.
    let (_, out) = exec_output(&rt, "long", &["sh", "-c", "echo adopted"]);
    assert_eq!(out, "adopted\n");
    let exit = rt.stop("long", Duration::from_millis(200)).unwrap();
    assert_eq!(exit.exit_code, 137);
    rt.remove_sandbox("p").unwrap();
}

/// An idle helper is stopped on request, containers keep running, and the next request
/// starts a new helper.
#[test]
fn an_idle_helper_stops_and_the_next_request_starts_another() {
    let node = Node::new("idle-helper");
    let rt = node.runtime();
    node.start(
        &rt,
        "p",
        "c",
        "echo up; while true; do sleep 0.1; done",
        |_| {},
    );
    node.wait_log("c", "up");
    let pid = rt.status("c").unwrap().pid.unwrap();
    let first = rt.helper_pid().expect("the helper runs");
    assert!(
        !rt.release_idle_helper(Duration::from_secs(3600)),
        "not idle that long"
    );
    assert_eq!(rt.helper_pid(), Some(first));
    assert!(rt.release_idle_helper(Duration::ZERO), "stopped");
    assert_eq!(rt.helper_pid(), None);
    let gone = |p: u32| {
        std::fs::read_to_string(format!("/proc/{p}/stat")).map_or(true, |s| s.contains(") Z"))
    };
    assert!(gone(first), "the helper process ended");
    assert!(!gone(pid as u32), "the container kept running");
    assert_eq!(rt.status("c").unwrap().state, ContainerState::Running);
    // An exec needs the helper: a new one starts.
    let (_, out) = exec_output(&rt, "c", &["sh", "-c", "echo again"]);
    assert_eq!(out, "again\n");
    let second = rt.helper_pid().expect("a new helper");
    assert_ne!(second, first);
    let exit = rt.stop("c", Duration::from_millis(200)).unwrap();
    assert_eq!(exit.exit_code, 137);
    rt.remove_sandbox("p").unwrap();
}

#[test]
fn volumes_and_generated_files() {
    use skiff_runtime::{
        DnsConfig, HostPathKind, MountConfig, ProjectedFile, SandboxConfig, Volume, VolumeSource,
    };
    let node = Node::new("volumes");
    let rt = node.runtime();
    let host_dir = node.data().join("host-data");
    std::fs::create_dir_all(&host_dir).unwrap();
    std::fs::write(host_dir.join("from-host"), "host file\n").unwrap();
    rt.create_sandbox(&SandboxConfig {
        id: "vol".into(),
        hostname: "web-0".into(),
        pod_ip: Some("10.42.0.7".parse().unwrap()),
        host_aliases: vec![("10.42.0.1".parse().unwrap(), vec!["gateway.local".into()])],
        dns: DnsConfig {
            nameservers: vec!["10.43.0.10".parse().unwrap()],
            searches: vec!["default.svc.cluster.local".into()],
            options: vec!["ndots:5".into()],
        },
        volumes: vec![
            Volume {
                name: "scratch".into(),
                source: VolumeSource::EmptyDir {
                    memory: false,
                    size_limit: None,
                },
            },
            Volume {
                name: "ram".into(),
                source: VolumeSource::EmptyDir {
                    memory: true,
                    size_limit: Some(4 << 20),
                },
            },
            Volume {
                name: "host".into(),
                source: VolumeSource::HostPath {
                    path: host_dir.clone(),
                    kind: HostPathKind::Directory,
                },
            },
            Volume {
                name: "config".into(),
                source: VolumeSource::Files {
                    files: vec![ProjectedFile {
                        path: "app/settings.conf".into(),
                        data: b"mode=edge\n".to_vec(),
                        mode: None,
                    }],
                    default_mode: 0o644,
                    tmpfs: false,
                },
            },
            Volume {
                name: "secret".into(),
                source: VolumeSource::Files {
                    files: vec![ProjectedFile {
                        path: "token".into(),
                        data: b"t0k3n".to_vec(),
                        mode: Some(0o400),
                    }],
                    default_mode: 0o644,
                    tmpfs: true,
                },
            },
        ],
        ..Default::default()
    })
    .unwrap();
    let mounts = vec![
        MountConfig {
            volume: "scratch".into(),
            container_path: "/scratch".into(),
            ..Default::default()
        },
        MountConfig {
            volume: "ram".into(),
            container_path: "/ram".into(),
            ..Default::default()
        },
        MountConfig {
            volume: "host".into(),
            container_path: "/host".into(),
            read_only: true,
            ..Default::default()
        },
        MountConfig {
            volume: "config".into(),
            container_path: "/etc/app".into(),
            read_only: true,
            sub_path: Some("app".into()),
        },
        MountConfig {
            volume: "secret".into(),
            container_path: "/var/run/secrets/token".into(),
            read_only: true,
            ..Default::default()
        },
    ];
    let script = "echo shared > /scratch/a; cat /host/from-host; touch /host/x 2>/dev/null || echo host-ro; \
                  cat /etc/app/settings.conf; cat /var/run/secrets/token/token; echo; stat -L -c %a /var/run/secrets/token/token; \
                  dd if=/dev/zero of=/ram/big bs=1M count=8 2>/dev/null || echo ram-full; grep ' /ram ' /proc/mounts | cut -d' ' -f3; \
                  cat /etc/hostname; grep web-0 /etc/hosts; grep gateway /etc/hosts; cat /etc/resolv.conf";
    node.start(&rt, "vol", "writer", script, |c| c.mounts = mounts.clone());
    rt.wait("writer", Some(Duration::from_secs(20)))
        .unwrap()
        .unwrap();
    node.start(&rt, "vol", "reader", "cat /scratch/a", |c| {
        c.mounts = mounts.clone()
    });
    rt.wait("reader", Some(Duration::from_secs(20)))
        .unwrap()
        .unwrap();
    let log = node.log("writer");
    for want in [
        "host file\n",
        "host-ro\n",
        "mode=edge\n",
        "t0k3n\n400\n",
        "ram-full\ntmpfs\n",
        "web-0\n10.42.0.7\tweb-0\n",
        "10.42.0.1\tgateway.local\n",
        "nameserver 10.43.0.10\nsearch default.svc.cluster.local\noptions ndots:5\n",
    ] {
        assert!(log.contains(want), "{want:?} missing from:\n{log}");
    }
    assert_eq!(
        node.log("reader"),
        "shared\n",
        "emptyDir is shared by the pod's containers"
    );
    assert!(!host_dir.join("x").exists());
    rt.remove_sandbox("vol").unwrap();
    assert!(
        host_dir.join("from-host").exists(),
        "a hostPath outlives the pod"
    );
    assert!(!node.data().join("run/sandboxes/vol").exists());
}

/// Reads attach frames until `until` holds for the output so far (or the exit): the output
/// and the exit code, if it came.
fn attached_output(
    a: &mut skiff_runtime::attach::Attached,
    until: impl Fn(&str) -> bool,
) -> (String, Option<i32>) {
    use skiff_runtime::attach::Frame;
    use std::io::Read;
    a.sock
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    let (mut raw, mut out) = (Vec::new(), String::new());
    let mut buf = [0u8; 4096];
    loop {
        while let Some((f, used)) = Frame::decode(&raw).unwrap() {
            raw.drain(..used);
            match f {
                Frame::Stdout(b) | Frame::Stderr(b) => out.push_str(&String::from_utf8_lossy(&b)),
                Frame::Exit(code) => return (out, Some(code)),
                other => panic!("the monitor sent {other:?}"),
            }
            if until(&out) {
                return (out, None);
            }
        }
        let n = a.sock.read(&mut buf).expect("attach output within 30 s");
        assert!(n > 0, "the session ended without an exit; output {out:?}");
        raw.extend_from_slice(&buf[..n]);
    }
}

fn send(a: &mut skiff_runtime::attach::Attached, f: skiff_runtime::attach::Frame) {
    let mut b = Vec::new();
    f.encode(&mut b);
    std::io::Write::write_all(&mut a.sock, &b).unwrap();
}

/// `stdin`, `stdinOnce` and `tty` as Kubernetes runs them: the monitor holds the input open
/// until the first session that wrote to it ends; a second session only watches; a terminal
/// is resized and echoes; every session is told the exit code.
#[test]
fn attach_to_stdin_and_a_terminal() {
    use skiff_runtime::attach::Frame;
    let node = Node::new("attach");
    let rt = node.runtime();
    node.start(
        &rt,
        "p",
        "reader",
        "while read l; do echo got:$l; done; echo eof; exit 4",
        |c| {
            c.stdin = true;
            c.stdin_once = true;
        },
    );
    let mut owner = rt.attach("reader", true).unwrap();
    let mut watcher = rt.attach("reader", true).unwrap();
    send(&mut owner, Frame::Stdin(b"one\n".to_vec()));
    let (out, _) = attached_output(&mut owner, |o| o.contains("got:one"));
    assert_eq!(out, "got:one\n");
    // The watcher's input goes nowhere: stdinOnce input belongs to the first session.
    send(&mut watcher, Frame::Stdin(b"ignored\n".to_vec()));
    send(&mut owner, Frame::Stdin(b"two\n".to_vec()));
    let (out, _) = attached_output(&mut watcher, |o| o.contains("got:two"));
    assert_eq!(
        out, "got:one\ngot:two\n",
        "the watcher sees the output since it attached, and not its own input"
    );
    // The owner leaves: end of input, the loop ends, both hear the exit.
    drop(owner);
    let (out, code) = attached_output(&mut watcher, |_| false);
    assert_eq!((out.as_str(), code), ("eof\n", Some(4)));
    assert_eq!(node.log("reader"), "got:one\ngot:two\neof\n");
    let e = rt.attach("reader", false).err().expect("ended").to_string();
    assert!(e.contains("has no attach socket"), "{e}");

    // A terminal: resized, input echoed, output logged as stdout.
    node.start(
        &rt,
        "p",
        "term",
        "read l; stty size; echo got:$l; exit 3",
        |c| {
            c.stdin = true;
            c.tty = true;
        },
    );
    let mut a = rt.attach("term", true).unwrap();
    send(
        &mut a,
        Frame::Resize {
            cols: 100,
            rows: 30,
        },
    );
    send(&mut a, Frame::Stdin(b"hi\n".to_vec()));
    let (out, code) = attached_output(&mut a, |_| false);
    assert_eq!(code, Some(3), "{out:?}");
    assert_eq!(out, "hi\r\n30 100\r\ngot:hi\r\n");
    let log = node.log("term");
    assert!(log.contains("30 100") && log.contains("got:hi"), "{log}");
    // Without stdin or tty there is nothing to attach to.
    node.start(&rt, "p", "plain", "sleep 1000", |_| {});
    let e = rt
        .attach("plain", false)
        .err()
        .expect("no socket")
        .to_string();
    assert!(e.contains("has no attach socket"), "{e}");
    for id in ["reader", "term", "plain"] {
        rt.remove_container(id).unwrap();
    }
}

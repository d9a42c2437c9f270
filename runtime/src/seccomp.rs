//! The default seccomp profile: an allowlist in the spirit of Docker's and containerd's
//! default (`EPERM` for anything not listed), with the same capability-gated additions and
//! the same argument filters on `clone` and `personality`. `clone3` answers `ENOSYS` so libc
//! falls back to `clone`, whose namespace flags can be filtered.
//!
//! Names unknown on an architecture are skipped by libseccomp, so one list serves every
//! target.

use oci_spec::runtime::{
    Arch, LinuxSeccomp, LinuxSeccompAction, LinuxSeccompArgBuilder, LinuxSeccompBuilder,
    LinuxSeccompOperator, LinuxSyscall, LinuxSyscallBuilder,
};

/// Allowed for every container.
const ALLOWED: &[&str] = &[
    "accept",
    "accept4",
    "access",
    "adjtimex",
    "alarm",
    "bind",
    "brk",
    "cachestat",
    "capget",
    "capset",
    "chdir",
    "chmod",
    "chown",
    "chown32",
    "clock_getres",
    "clock_getres_time64",
    "clock_gettime",
    "clock_gettime64",
    "clock_nanosleep",
    "clock_nanosleep_time64",
    "close",
    "close_range",
    "connect",
    "copy_file_range",
    "creat",
    "dup",
    "dup2",
    "dup3",
    "epoll_create",
    "epoll_create1",
    "epoll_ctl",
    "epoll_ctl_old",
    "epoll_pwait",
    "epoll_pwait2",
    "epoll_wait",
    "epoll_wait_old",
    "eventfd",
    "eventfd2",
    "execve",
    "execveat",
    "exit",
    "exit_group",
    "faccessat",
    "faccessat2",
    "fadvise64",
    "fadvise64_64",
    "fallocate",
    "fanotify_mark",
    "fchdir",
    "fchmod",
    "fchmodat",
    "fchmodat2",
    "fchown",
    "fchown32",
    "fchownat",
    "fcntl",
    "fcntl64",
    "fdatasync",
    "fgetxattr",
    "flistxattr",
    "flock",
    "fork",
    "fremovexattr",
    "fsetxattr",
    "fstat",
    "fstat64",
    "fstatat64",
    "fstatfs",
    "fstatfs64",
    "fsync",
    "ftruncate",
    "ftruncate64",
    "futex",
    "futex_requeue",
    "futex_time64",
    "futex_wait",
    "futex_waitv",
    "futex_wake",
    "futimesat",
    "getcpu",
    "getcwd",
    "getdents",
    "getdents64",
    "getegid",
    "getegid32",
    "geteuid",
    "geteuid32",
    "getgid",
    "getgid32",
    "getgroups",
    "getgroups32",
    "getitimer",
    "getpeername",
    "getpgid",
    "getpgrp",
    "getpid",
    "getppid",
    "getpriority",
    "getrandom",
    "getresgid",
    "getresgid32",
    "getresuid",
    "getresuid32",
    "getrlimit",
    "get_robust_list",
    "getrusage",
    "getsid",
    "getsockname",
    "getsockopt",
    "get_thread_area",
    "gettid",
    "gettimeofday",
    "getuid",
    "getuid32",
    "getxattr",
    "inotify_add_watch",
    "inotify_init",
    "inotify_init1",
    "inotify_rm_watch",
    "io_cancel",
    "ioctl",
    "io_destroy",
    "io_getevents",
    "io_pgetevents",
    "io_pgetevents_time64",
    "ioprio_get",
    "ioprio_set",
    "io_setup",
    "io_submit",
    "ipc",
    "kill",
    "landlock_add_rule",
    "landlock_create_ruleset",
    "landlock_restrict_self",
    "lchown",
    "lchown32",
    "lgetxattr",
    "link",
    "linkat",
    "listen",
    "listxattr",
    "llistxattr",
    "_llseek",
    "lremovexattr",
    "lseek",
    "lsetxattr",
    "lstat",
    "lstat64",
    "madvise",
    "map_shadow_stack",
    "membarrier",
    "memfd_create",
    "memfd_secret",
    "mincore",
    "mkdir",
    "mkdirat",
    "mknod",
    "mknodat",
    "mlock",
    "mlock2",
    "mlockall",
    "mmap",
    "mmap2",
    "mprotect",
    "mq_getsetattr",
    "mq_notify",
    "mq_open",
    "mq_timedreceive",
    "mq_timedreceive_time64",
    "mq_timedsend",
    "mq_timedsend_time64",
    "mq_unlink",
    "mremap",
    "msgctl",
    "msgget",
    "msgrcv",
    "msgsnd",
    "msync",
    "munlock",
    "munlockall",
    "munmap",
    "nanosleep",
    "newfstatat",
    "_newselect",
    "open",
    "openat",
    "openat2",
    "pause",
    "pidfd_open",
    "pidfd_send_signal",
    "pipe",
    "pipe2",
    "pkey_alloc",
    "pkey_free",
    "pkey_mprotect",
    "poll",
    "ppoll",
    "ppoll_time64",
    "prctl",
    "pread64",
    "preadv",
    "preadv2",
    "prlimit64",
    "process_mrelease",
    "pselect6",
    "pselect6_time64",
    "pwrite64",
    "pwritev",
    "pwritev2",
    "read",
    "readahead",
    "readlink",
    "readlinkat",
    "readv",
    "recv",
    "recvfrom",
    "recvmmsg",
    "recvmmsg_time64",
    "recvmsg",
    "remap_file_pages",
    "removexattr",
    "rename",
    "renameat",
    "renameat2",
    "restart_syscall",
    "rmdir",
    "rseq",
    "rt_sigaction",
    "rt_sigpending",
    "rt_sigprocmask",
    "rt_sigqueueinfo",
    "rt_sigreturn",
    "rt_sigsuspend",
    "rt_sigtimedwait",
    "rt_sigtimedwait_time64",
    "rt_tgsigqueueinfo",
    "sched_getaffinity",
    "sched_getattr",
    "sched_getparam",
    "sched_get_priority_max",
    "sched_get_priority_min",
    "sched_getscheduler",
    "sched_rr_get_interval",
    "sched_rr_get_interval_time64",
    "sched_setaffinity",
    "sched_setattr",
    "sched_setparam",
    "sched_setscheduler",
    "sched_yield",
    "seccomp",
    "select",
    "semctl",
    "semget",
    "semop",
    "semtimedop",
    "semtimedop_time64",
    "send",
    "sendfile",
    "sendfile64",
    "sendmmsg",
    "sendmsg",
    "sendto",
    "setfsgid",
    "setfsgid32",
    "setfsuid",
    "setfsuid32",
    "setgid",
    "setgid32",
    "setgroups",
    "setgroups32",
    "setitimer",
    "setpgid",
    "setpriority",
    "setregid",
    "setregid32",
    "setresgid",
    "setresgid32",
    "setresuid",
    "setresuid32",
    "setreuid",
    "setreuid32",
    "setrlimit",
    "set_robust_list",
    "setsid",
    "setsockopt",
    "set_thread_area",
    "set_tid_address",
    "setuid",
    "setuid32",
    "setxattr",
    "shmat",
    "shmctl",
    "shmdt",
    "shmget",
    "shutdown",
    "sigaltstack",
    "signalfd",
    "signalfd4",
    "sigprocmask",
    "sigreturn",
    "socketcall",
    "socketpair",
    "splice",
    "stat",
    "stat64",
    "statfs",
    "statfs64",
    "statx",
    "symlink",
    "symlinkat",
    "sync",
    "sync_file_range",
    "syncfs",
    "sysinfo",
    "tee",
    "tgkill",
    "time",
    "timer_create",
    "timer_delete",
    "timer_getoverrun",
    "timer_gettime",
    "timer_gettime64",
    "timer_settime",
    "timer_settime64",
    "timerfd_create",
    "timerfd_gettime",
    "timerfd_gettime64",
    "timerfd_settime",
    "timerfd_settime64",
    "times",
    "tkill",
    "truncate",
    "truncate64",
    "ugetrlimit",
    "umask",
    "uname",
    "unlink",
    "unlinkat",
    "utime",
    "utimensat",
    "utimensat_time64",
    "utimes",
    "vfork",
    "vmsplice",
    "wait4",
    "waitid",
    "waitpid",
    "write",
    "writev",
    // Architecture-specific.
    "arch_prctl",
    "modify_ldt",
    "arm_fadvise64_64",
    "arm_sync_file_range",
    "sync_file_range2",
    "breakpoint",
    "cacheflush",
    "set_tls",
    "riscv_flush_icache",
    "riscv_hwprobe",
    // Since kernel 4.8 a seccomp filter cannot be bypassed with ptrace, so Docker allows it.
    "ptrace",
];

/// Added when the container holds the capability, as Docker does.
const BY_CAPABILITY: &[(&str, &[&str])] = &[
    (
        "CAP_SYS_ADMIN",
        &[
            "bpf",
            "fanotify_init",
            "fsconfig",
            "fsmount",
            "fsopen",
            "fspick",
            "lookup_dcookie",
            "mount",
            "mount_setattr",
            "move_mount",
            "open_tree",
            "perf_event_open",
            "quotactl",
            "quotactl_fd",
            "setdomainname",
            "sethostname",
            "setns",
            "syslog",
            "umount",
            "umount2",
            "unshare",
        ],
    ),
    ("CAP_SYS_BOOT", &["reboot"]),
    ("CAP_SYS_CHROOT", &["chroot"]),
    (
        "CAP_SYS_MODULE",
        &["delete_module", "init_module", "finit_module"],
    ),
    ("CAP_SYS_PACCT", &["acct"]),
    (
        "CAP_SYS_PTRACE",
        &[
            "kcmp",
            "pidfd_getfd",
            "process_madvise",
            "process_vm_readv",
            "process_vm_writev",
        ],
    ),
    ("CAP_SYS_RAWIO", &["iopl", "ioperm"]),
    (
        "CAP_SYS_TIME",
        &[
            "settimeofday",
            "stime",
            "clock_settime",
            "clock_settime64",
            "clock_adjtime",
            "clock_adjtime64",
        ],
    ),
    ("CAP_SYS_TTY_CONFIG", &["vhangup"]),
    (
        "CAP_SYS_NICE",
        &[
            "get_mempolicy",
            "mbind",
            "set_mempolicy",
            "set_mempolicy_home_node",
        ],
    ),
    ("CAP_SYSLOG", &["syslog"]),
    ("CAP_BPF", &["bpf"]),
    ("CAP_PERFMON", &["perf_event_open"]),
];

/// The namespace flags of `clone` a container without CAP_SYS_ADMIN may not pass:
/// CLONE_NEWNS | CLONE_NEWUTS | CLONE_NEWIPC | CLONE_NEWUSER | CLONE_NEWPID | CLONE_NEWNET |
/// CLONE_NEWCGROUP.
const CLONE_NAMESPACE_FLAGS: u64 = 0x7E02_0000;

fn allow(names: &[&str]) -> LinuxSyscall {
    LinuxSyscallBuilder::default()
        .names(names.iter().map(|s| s.to_string()).collect::<Vec<_>>())
        .action(LinuxSeccompAction::ScmpActAllow)
        .build()
        .expect("syscall rule builds")
}

/// Allows `name` when its first argument compares `op` to `value` (and `value_two`, the
/// expected result for a masked comparison).
fn allow_if(
    name: &str,
    op: LinuxSeccompOperator,
    value: u64,
    value_two: Option<u64>,
) -> LinuxSyscall {
    let mut arg = LinuxSeccompArgBuilder::default()
        .index(0usize)
        .value(value)
        .op(op);
    if let Some(v2) = value_two {
        arg = arg.value_two(v2);
    }
    LinuxSyscallBuilder::default()
        .names(vec![name.to_string()])
        .action(LinuxSeccompAction::ScmpActAllow)
        .args(vec![arg.build().expect("arg builds")])
        .build()
        .expect("rule builds")
}

/// Docker's default profile for a container with these capabilities (`CAP_*` names).
pub fn default_profile(caps: &[String]) -> LinuxSeccomp {
    let has = |c: &str| caps.iter().any(|x| x == c);
    let mut rules = vec![allow(ALLOWED)];
    // socket: everything but AF_VSOCK (40), as Docker.
    rules.push(allow_if(
        "socket",
        LinuxSeccompOperator::ScmpCmpNe,
        40,
        None,
    ));
    // personality: only the harmless personas.
    for persona in [0x0u64, 0x0008, 0x2_0000, 0x2_0008, 0xffff_ffff] {
        rules.push(allow_if(
            "personality",
            LinuxSeccompOperator::ScmpCmpEq,
            persona,
            None,
        ));
    }
    if has("CAP_SYS_ADMIN") {
        rules.push(allow(&["clone", "clone3"]));
    } else {
        // clone without namespace flags (on s390 the flags are the second argument; skiff
        // does not target s390).
        rules.push(allow_if(
            "clone",
            LinuxSeccompOperator::ScmpCmpMaskedEq,
            CLONE_NAMESPACE_FLAGS,
            Some(0),
        ));
        // clone3 passes its flags in memory seccomp cannot read: ENOSYS makes libc use clone.
        rules.push(
            LinuxSyscallBuilder::default()
                .names(vec!["clone3".to_string()])
                .action(LinuxSeccompAction::ScmpActErrno)
                .errno_ret(38u32)
                .build()
                .expect("rule builds"),
        );
    }
    let mut extra: Vec<&str> = BY_CAPABILITY
        .iter()
        .filter(|(cap, _)| has(cap))
        .flat_map(|(_, names)| names.iter().copied())
        .collect();
    extra.sort_unstable();
    extra.dedup();
    if !extra.is_empty() {
        rules.push(allow(&extra));
    }
    LinuxSeccompBuilder::default()
        .default_action(LinuxSeccompAction::ScmpActErrno)
        .default_errno_ret(1u32)
        .architectures(native_arches())
        .syscalls(rules)
        .build()
        .expect("profile builds")
}

/// Compiles a profile to the BPF program the kernel loads, as libcontainer would build it
/// (same rule translation; arguments compared more than once become separate rules).
///
/// Compiling Docker's profile with libseccomp costs milliseconds for every container when
/// libcontainer does it in each container's init; the runtime compiles each distinct
/// profile once and the container's init only loads the result (see `sys::BpfExecutor`).
pub fn compile(profile: &LinuxSeccomp) -> Result<Vec<u8>, String> {
    use libseccomp::{
        ScmpAction, ScmpArch, ScmpArgCompare, ScmpCompareOp, ScmpFilterContext, ScmpSyscall,
    };
    let action = |a: LinuxSeccompAction, errno: Option<u32>| -> Result<ScmpAction, String> {
        Ok(match a {
            LinuxSeccompAction::ScmpActAllow => ScmpAction::Allow,
            LinuxSeccompAction::ScmpActErrno => ScmpAction::Errno(errno.unwrap_or(1) as i32),
            LinuxSeccompAction::ScmpActKill => ScmpAction::KillThread,
            LinuxSeccompAction::ScmpActKillProcess => ScmpAction::KillProcess,
            LinuxSeccompAction::ScmpActLog => ScmpAction::Log,
            other => return Err(format!("seccomp action {other:?} is not precompiled")),
        })
    };
    let default = action(profile.default_action(), profile.default_errno_ret())?;
    let mut ctx = ScmpFilterContext::new(default).map_err(|e| e.to_string())?;
    // The kernel applies no_new_privs itself (the spec asks for it); never let libseccomp.
    ctx.set_ctl_nnp(false).map_err(|e| e.to_string())?;
    for arch in profile.architectures().iter().flatten() {
        let a = match arch {
            Arch::ScmpArchX86_64 => ScmpArch::X8664,
            Arch::ScmpArchX86 => ScmpArch::X86,
            Arch::ScmpArchX32 => ScmpArch::X32,
            Arch::ScmpArchAarch64 => ScmpArch::Aarch64,
            Arch::ScmpArchArm => ScmpArch::Arm,
            Arch::ScmpArchRiscv64 => ScmpArch::Riscv64,
            other => return Err(format!("seccomp architecture {other:?} is not precompiled")),
        };
        ctx.add_arch(a).map_err(|e| e.to_string())?;
    }
    for rule in profile.syscalls().iter().flatten() {
        let act = action(rule.action(), rule.errno_ret())?;
        if act == default {
            continue;
        }
        for name in rule.names() {
            // Unknown on this architecture (or this libseccomp): nothing to filter.
            let Ok(sc) = ScmpSyscall::from_name(name) else {
                continue;
            };
            let cmps: Vec<ScmpArgCompare> = rule
                .args()
                .iter()
                .flatten()
                .map(|a| {
                    let op = match a.op() {
                        LinuxSeccompOperator::ScmpCmpNe => ScmpCompareOp::NotEqual,
                        LinuxSeccompOperator::ScmpCmpLt => ScmpCompareOp::Less,
                        LinuxSeccompOperator::ScmpCmpLe => ScmpCompareOp::LessOrEqual,
                        LinuxSeccompOperator::ScmpCmpEq => ScmpCompareOp::Equal,
                        LinuxSeccompOperator::ScmpCmpGe => ScmpCompareOp::GreaterEqual,
                        LinuxSeccompOperator::ScmpCmpGt => ScmpCompareOp::Greater,
                        LinuxSeccompOperator::ScmpCmpMaskedEq => {
                            ScmpCompareOp::MaskedEqual(a.value_two().unwrap_or(0))
                        }
                    };
                    ScmpArgCompare::new(a.index() as u32, op, a.value())
                })
                .collect();
            let indices: std::collections::BTreeSet<u32> = rule
                .args()
                .iter()
                .flatten()
                .map(|a| a.index() as u32)
                .collect();
            if cmps.is_empty() {
                ctx.add_rule(act, sc).map_err(|e| format!("{name}: {e}"))?;
            } else if indices.len() == cmps.len() {
                ctx.add_rule_conditional(act, sc, &cmps)
                    .map_err(|e| format!("{name}: {e}"))?;
            } else {
                // libseccomp compares each argument once per rule: one rule per comparison.
                for c in &cmps {
                    ctx.add_rule_conditional(act, sc, std::slice::from_ref(c))
                        .map_err(|e| format!("{name}: {e}"))?;
                }
            }
        }
    }
    let memfd = rustix::fs::memfd_create("skiff-seccomp", rustix::fs::MemfdFlags::CLOEXEC)
        .map_err(|e| e.to_string())?;
    ctx.export_bpf(&memfd).map_err(|e| e.to_string())?;
    let mut file = std::fs::File::from(memfd);
    use std::io::{Read, Seek};
    file.rewind().map_err(|e| e.to_string())?;
    let mut bpf = Vec::new();
    file.read_to_end(&mut bpf).map_err(|e| e.to_string())?;
    if bpf.is_empty() || bpf.len() % 8 != 0 {
        return Err(format!("libseccomp exported {} bytes of BPF", bpf.len()));
    }
    Ok(bpf)
}

/// The architectures a process on this host may use (the native one plus its compat ABIs).
fn native_arches() -> Vec<Arch> {
    match std::env::consts::ARCH {
        "x86_64" => vec![Arch::ScmpArchX86_64, Arch::ScmpArchX86, Arch::ScmpArchX32],
        "aarch64" => vec![Arch::ScmpArchAarch64, Arch::ScmpArchArm],
        "arm" => vec![Arch::ScmpArchArm],
        "riscv64" => vec![Arch::ScmpArchRiscv64],
        _ => vec![],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn allowed(p: &LinuxSeccomp, name: &str) -> bool {
        p.syscalls().as_ref().unwrap().iter().any(|r| {
            r.action() == LinuxSeccompAction::ScmpActAllow
                && r.args().is_none()
                && r.names().iter().any(|n| n == name)
        })
    }

    #[test]
    fn capabilities_open_their_syscalls() {
        let plain = default_profile(&["CAP_CHOWN".to_string()]);
        assert_eq!(plain.default_action(), LinuxSeccompAction::ScmpActErrno);
        for blocked in [
            "mount",
            "unshare",
            "setns",
            "keyctl",
            "add_key",
            "kexec_load",
            "reboot",
            "bpf",
            "clone3",
            "userfaultfd",
        ] {
            assert!(
                !allowed(&plain, blocked),
                "{blocked} must not be allowed by default"
            );
        }
        for ok in ["read", "openat", "execve", "futex"] {
            assert!(allowed(&plain, ok), "{ok}");
        }
        let admin = default_profile(&["CAP_SYS_ADMIN".to_string()]);
        assert!(allowed(&admin, "mount") && allowed(&admin, "clone") && allowed(&admin, "setns"));
    }

    #[test]
    fn profiles_compile_to_bpf() {
        let bpf = compile(&default_profile(&["CAP_CHOWN".to_string()])).unwrap();
        // sock_filter entries are 8 bytes; Docker's profile needs hundreds.
        assert!(bpf.len() / 8 > 100, "{} instructions", bpf.len() / 8);
        let admin = compile(&default_profile(&["CAP_SYS_ADMIN".to_string()])).unwrap();
        assert_ne!(bpf, admin, "capabilities change the program");
    }

    #[test]
    fn no_name_is_listed_twice_in_the_base_list() {
        let mut v: Vec<&str> = ALLOWED.to_vec();
        v.sort();
        let n = v.len();
        v.dedup();
        assert_eq!(v.len(), n);
    }
}

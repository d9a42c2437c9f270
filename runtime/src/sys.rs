//! Small kernel operations the crate shares; the few that need `unsafe` are each wrapped
//! here once, with the reason they are sound.
#![allow(unsafe_code)]

use std::io;
use std::os::fd::{FromRawFd, OwnedFd, RawFd};
use std::os::unix::process::CommandExt;
use std::process::{Child, Command};

/// A pipe whose ends close on exec.
pub fn pipe() -> io::Result<(OwnedFd, OwnedFd)> {
    Ok(rustix::pipe::pipe_with(rustix::pipe::PipeFlags::CLOEXEC)?)
}

/// Result of [`fork`].
pub enum Forked {
    Parent(i32),
    Child,
}

/// Counts this process's threads (from `/proc/self/stat`).
pub fn thread_count() -> io::Result<usize> {
    let stat = std::fs::read_to_string("/proc/self/stat")?;
    let after = stat.rsplit_once(')').map(|(_, a)| a).unwrap_or("");
    // Fields after the comm: state(3) ppid(4) ... num_threads is field 20, i.e. index 17 here.
    after
        .split_whitespace()
        .nth(17)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| io::Error::other("cannot read thread count"))
}

/// Forks. Only called from the helper and its children, which are single-threaded (checked
/// when the helper starts), so the child may allocate and call anything.
pub fn fork() -> io::Result<Forked> {
    // SAFETY: the calling process has one thread (the helper checks this at start and never
    // spawns threads), so no lock can be held by a thread that does not exist in the child.
    match unsafe { nix::unistd::fork() } {
        Ok(nix::unistd::ForkResult::Parent { child }) => Ok(Forked::Parent(child.as_raw())),
        Ok(nix::unistd::ForkResult::Child) => Ok(Forked::Child),
        Err(e) => Err(e.into()),
    }
}

/// Takes ownership of a descriptor number this process inherited.
pub fn inherited_fd(fd: RawFd) -> io::Result<OwnedFd> {
    rustix::io::fcntl_getfd(
        // SAFETY: only used to check the descriptor is open before owning it.
        unsafe { rustix::fd::BorrowedFd::borrow_raw(fd) },
    )
    .map_err(io::Error::from)?;
    // SAFETY: the descriptor is open (checked above) and nothing else in this process owns it:
    // it was placed at this number by our parent for us alone.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// Spawns `cmd` with `fd` as its descriptor 3.
pub fn spawn_with_fd3(cmd: &mut Command, fd: RawFd) -> io::Result<Child> {
    // SAFETY: the closure runs between fork and exec and only calls dup2 and fcntl, which are
    // async-signal-safe, on descriptor numbers, without allocating.
    unsafe {
        cmd.pre_exec(move || {
            if fd == 3 {
                let flags = libc::fcntl(3, libc::F_GETFD);
                if flags < 0 || libc::fcntl(3, libc::F_SETFD, flags & !libc::FD_CLOEXEC) < 0 {
                    return Err(io::Error::last_os_error());
                }
            } else if libc::dup2(fd, 3) < 0 {
                return Err(io::Error::last_os_error());
            }
            Ok(())
        })
    };
    cmd.spawn()
}

/// Brings the loopback interface of the current network namespace up.
pub fn loopback_up() -> io::Result<()> {
    let sock = rustix::net::socket(
        rustix::net::AddressFamily::INET,
        rustix::net::SocketType::DGRAM,
        None,
    )?;
    // SAFETY: ifreq is plain old data; zeroed is a valid value.
    let mut req: libc::ifreq = unsafe { std::mem::zeroed() };
    for (dst, src) in req.ifr_name.iter_mut().zip(b"lo\0") {
        *dst = *src as libc::c_char;
    }
    use std::os::fd::AsRawFd;
    // SAFETY: SIOCGIFFLAGS reads into the ifreq we own, which lives across the call.
    if unsafe { libc::ioctl(sock.as_raw_fd(), libc::SIOCGIFFLAGS as _, &mut req) } < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: the union member SIOCGIFFLAGS just filled is ifru_flags.
    unsafe {
        req.ifr_ifru.ifru_flags |= (libc::IFF_UP | libc::IFF_RUNNING) as libc::c_short;
    }
    // SAFETY: as above; SIOCSIFFLAGS reads the ifreq.
    if unsafe { libc::ioctl(sock.as_raw_fd(), libc::SIOCSIFFLAGS as _, &req) } < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// libcontainer's executor with a precompiled seccomp program: loads it, then execs the
/// payload exactly as libcontainer's default executor does. It runs in the container's init
/// after `no_new_privs` is set (only containers with `no_new_privs` take this path), as the
/// last step before exec, which is where libcontainer would load the filter itself.
#[derive(Clone)]
pub struct BpfExecutor {
    pub bpf: std::sync::Arc<Vec<u8>>,
}

impl libcontainer::workload::Executor for BpfExecutor {
    fn exec(
        &self,
        spec: &oci_spec::runtime::Spec,
    ) -> Result<(), libcontainer::workload::ExecutorError> {
        load_seccomp(&self.bpf).map_err(|e| {
            libcontainer::workload::ExecutorError::Other(format!("loading seccomp: {e}"))
        })?;
        libcontainer::workload::default::DefaultExecutor {}.exec(spec)
    }

    fn validate(
        &self,
        spec: &oci_spec::runtime::Spec,
    ) -> Result<(), libcontainer::workload::ExecutorValidationError> {
        libcontainer::workload::default::DefaultExecutor {}.validate(spec)
    }
}

/// Loads a classic BPF seccomp program (an array of 8-byte `sock_filter`) into this thread.
pub fn load_seccomp(bpf: &[u8]) -> io::Result<()> {
    if bpf.is_empty() || !bpf.len().is_multiple_of(8) || bpf.len() / 8 > u16::MAX as usize {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "not a BPF program",
        ));
    }
    let filters: Vec<libc::sock_filter> = bpf
        .chunks_exact(8)
        .map(|c| libc::sock_filter {
            code: u16::from_ne_bytes([c[0], c[1]]),
            jt: c[2],
            jf: c[3],
            k: u32::from_ne_bytes([c[4], c[5], c[6], c[7]]),
        })
        .collect();
    let prog = libc::sock_fprog {
        len: filters.len() as u16,
        filter: filters.as_ptr() as *mut libc::sock_filter,
    };
    // SAFETY: `prog` points at `filters`, which outlives the call; the kernel copies the
    // program and does not keep the pointer.
    let r = unsafe {
        libc::prctl(
            libc::PR_SET_SECCOMP,
            libc::SECCOMP_MODE_FILTER,
            &prog as *const libc::sock_fprog,
        )
    };
    if r != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Resolves when a process descriptor (a pidfd: [`crate::Runtime::exit_fd`]) becomes
/// readable, i.e. the process exited. For callers on a tokio runtime.
pub async fn exited(fd: OwnedFd) -> io::Result<()> {
    // SAFETY: `register` requires the descriptor to stay open and not be registered
    // elsewhere while the AsyncFd lives. The AsyncFd owns `fd` (an OwnedFd moved in, a
    // fresh duplicate from `exit_fd`), so it is closed only when the AsyncFd drops, after
    // its deregistration.
    let afd = unsafe {
        tokio::io::unix::AsyncFd::register_with_interest(fd, tokio::io::Interest::READABLE)
    }
    .map_err(|e| e.into_parts().1)?;
    let _guard = afd.readable().await?;
    Ok(())
}

/// Keeps glibc's allocator to one arena. glibc gives every thread that allocates its own
/// arena and keeps their freed memory; a small daemon whose work hops across a blocking
/// pool pays megabytes for that. (musl's allocator, the boards' builds, has no arenas.)
pub fn single_malloc_arena() {
    #[cfg(target_env = "gnu")]
    // SAFETY: mallopt only tunes the allocator; it takes no pointers and is safe to call
    // at any time (the agent calls it first thing, before other threads exist).
    unsafe {
        libc::mallopt(libc::M_ARENA_MAX, 1);
    }
}

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

/// One mapping of a `/proc/PID/smaps` listing, with the fields read here.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
struct Mapping {
    start: usize,
    end: usize,
    writable: bool,
    inode: u64,
    /// kB of it copied on write (private to this process).
    anonymous_kb: u64,
    /// kB of it resident.
    rss_kb: u64,
    /// Marked for random access (`rr` in VmFlags).
    random: bool,
}

/// The mappings of an smaps listing, in order.
fn mappings(smaps: &str) -> Vec<Mapping> {
    let mut out: Vec<Mapping> = Vec::new();
    let kb = |v: &str| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok();
    for line in smaps.lines() {
        let mut f = line.split_whitespace();
        let first = f.next().unwrap_or("");
        if let Some((lo, hi)) = first.split_once('-').filter(|_| !first.ends_with(':')) {
            // A mapping's header: range perms offset dev inode [path].
            let perms = f.next().unwrap_or("");
            let inode = f.nth(2).and_then(|i| i.parse::<u64>().ok());
            if let (Ok(start), Ok(end), Some(inode)) = (
                usize::from_str_radix(lo, 16),
                usize::from_str_radix(hi, 16),
                inode,
            ) {
                out.push(Mapping {
                    start,
                    end,
                    writable: perms.contains('w'),
                    inode,
                    ..Mapping::default()
                });
            }
        } else if let Some(m) = out.last_mut() {
            if let Some(v) = line.strip_prefix("Anonymous:") {
                m.anonymous_kb = kb(v).unwrap_or(0);
            } else if let Some(v) = line.strip_prefix("Rss:") {
                m.rss_kb = kb(v).unwrap_or(0);
            } else if let Some(flags) = line.strip_prefix("VmFlags:") {
                m.random = flags.split_whitespace().any(|f| f == "rr");
            }
        }
    }
    out
}

/// A read-only mapping of this process's own executable (see [`shed_code_pages`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct CodeMapping {
    start: usize,
    end: usize,
    /// Whether any page of it was copied on write (relocated data): those must stay.
    modified: bool,
}

/// Picks, out of `/proc/self/smaps`, the mappings of the file with inode `ino` that are
/// not writable, and whether any of their pages is private (copied on write).
fn code_mappings(smaps: &str, ino: u64) -> Vec<CodeMapping> {
    mappings(smaps)
        .into_iter()
        .filter(|m| m.inode == ino && !m.writable)
        .map(|m| CodeMapping {
            start: m.start,
            end: m.end,
            modified: m.anonymous_kb > 0,
        })
        .collect()
}

/// What [`shed_code_pages`] does with the executable's pages in the page cache.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PageCache {
    /// Drop those no process maps, so fault-around has nothing to map in.
    Evict,
    /// Leave the page cache alone; only this process's mappings are dropped.
    Keep,
}

/// Keeps only the pages of the agent's own code that it runs resident.
///
/// A page fault on a file mapping maps the 64 KB around it when those pages are in the
/// page cache, and reads 128 KB ahead to get there: a daemon that runs a few hundred
/// scattered functions ends up with most of its multi-megabyte text resident. This marks
/// the executable's read-only mappings for random access (a fault reads its own page and
/// no more), drops their pages from this process, and drops the file's pages no process
/// maps from the page cache, so what comes back is what the process touches from now on.
/// Mappings with copied-on-write pages (relocated data) are left alone. Returns the
/// bytes of mappings shed.
///
/// `cache` says whether the file's unmapped pages leave the page cache too. A container's
/// monitor keeps them: evicting them made the helper, which goes on creating containers,
/// read its code back from disk one page at a time.
pub fn shed_code_pages(cache: PageCache) -> io::Result<usize> {
    use std::os::unix::fs::MetadataExt;
    let exe = std::fs::File::open("/proc/self/exe")?;
    let ino = exe.metadata()?.ino();
    let smaps = std::fs::read_to_string("/proc/self/smaps")?;
    let mut shed = 0;
    for m in code_mappings(&smaps, ino)
        .into_iter()
        .filter(|m| !m.modified)
    {
        let (addr, len) = (m.start as *mut libc::c_void, m.end - m.start);
        // SAFETY: the range is a whole mapping of this process's executable, read-only and
        // with no private (copied) page, so every page equals the file's contents: dropping
        // them only makes the next access fault them in again from the file. The advice
        // concerns this process's page tables only; no Rust reference is invalidated.
        let r = unsafe {
            if libc::madvise(addr, len, libc::MADV_RANDOM) == 0 {
                libc::madvise(addr, len, libc::MADV_DONTNEED)
            } else {
                -1
            }
        };
        if r != 0 {
            return Err(io::Error::last_os_error());
        }
        shed += len;
    }
    if cache == PageCache::Evict {
        rustix::fs::fadvise(&exe, 0, None, rustix::fs::Advice::DontNeed)?;
    }
    Ok(shed)
}

#[cfg(test)]
mod tests {
    use super::*;

    const SMAPS: &str = "\
55d0a0000000-55d0a0100000 r--p 00000000 fe:01 4242 /usr/bin/skiff-agent
Size:               1024 kB
Rss:                 640 kB
Anonymous:             0 kB
VmFlags: rd mr mw me
55d0a0100000-55d0a0900000 r-xp 00100000 fe:01 4242 /usr/bin/skiff-agent
Rss:                9396 kB
Anonymous:             0 kB
55d0a0900000-55d0a0940000 r--p 00900000 fe:01 4242 /usr/bin/skiff-agent
Anonymous:           256 kB
55d0a0940000-55d0a0950000 rw-p 00940000 fe:01 4242 /usr/bin/skiff-agent
Anonymous:            64 kB
55d0a1000000-55d0a1200000 rw-p 00000000 00:00 0 [heap]
Anonymous:          1600 kB
7f0000000000-7f0000100000 r-xp 00028000 fe:01 777 /usr/lib/x86_64-linux-gnu/libc.so.6
Anonymous:             0 kB
";

    #[test]
    fn code_mappings_are_the_executables_read_only_ones() {
        let m = code_mappings(SMAPS, 4242);
        assert_eq!(
            m,
            vec![
                CodeMapping {
                    start: 0x55d0a0000000,
                    end: 0x55d0a0100000,
                    modified: false
                },
                CodeMapping {
                    start: 0x55d0a0100000,
                    end: 0x55d0a0900000,
                    modified: false
                },
                // Relocated data made read-only after start: it has private pages.
                CodeMapping {
                    start: 0x55d0a0900000,
                    end: 0x55d0a0940000,
                    modified: true
                },
            ]
        );
        assert!(code_mappings(SMAPS, 1).is_empty());
    }

    /// Resident kB and whether every clean mapping of this test binary reads at random.
    fn own_code() -> (u64, bool) {
        use std::os::unix::fs::MetadataExt;
        let ino = std::fs::metadata("/proc/self/exe").unwrap().ino();
        let smaps = std::fs::read_to_string("/proc/self/smaps").unwrap();
        assert!(
            !code_mappings(&smaps, ino).is_empty(),
            "no mapping of the test binary found"
        );
        mappings(&smaps)
            .iter()
            .filter(|m| m.inode == ino && !m.writable && m.anonymous_kb == 0)
            .fold((0, true), |(rss, random), m| {
                (rss + m.rss_kb, random && m.random)
            })
    }

    #[test]
    fn shedding_keeps_only_the_code_run_afterwards() {
        let (before, random_before) = own_code();
        assert!(!random_before, "a fresh process reads its code ahead");
        let shed = shed_code_pages(PageCache::Evict).unwrap();
        assert!(shed > 0, "nothing shed");
        let (after, random_after) = own_code();
        assert!(
            random_after,
            "the code mappings are not marked for random access"
        );
        assert!(
            after < before,
            "resident code {after} kB after shedding, {before} kB before"
        );
    }
}

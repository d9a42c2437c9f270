//! The few operations that need `unsafe`, each wrapped once with the reason it is sound.
#![allow(unsafe_code)]

use std::io;
use std::os::fd::{FromRawFd, OwnedFd, RawFd};
use std::os::unix::process::CommandExt;
use std::process::{Child, Command};

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

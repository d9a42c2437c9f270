//! Messages between the runtime (in the agent, multi-threaded) and its single-threaded helper
//! process, one postcard message per SOCK_SEQPACKET packet; descriptors ride along as
//! SCM_RIGHTS.

use std::io::{self, IoSlice, IoSliceMut};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::PathBuf;

use rustix::net::{
    recvmsg, sendmsg, RecvAncillaryBuffer, RecvAncillaryMessage, RecvFlags, SendAncillaryBuffer,
    SendAncillaryMessage, SendFlags,
};
use serde::{de::DeserializeOwned, Deserialize, Serialize};

/// Largest message either side sends.
pub const MAX_MESSAGE: usize = 64 * 1024;
/// Most descriptors attached to one message.
pub const MAX_FDS: usize = 4;

#[derive(Debug, Serialize, Deserialize)]
pub enum Request {
    /// Create the pod's namespaces and bind-mount them onto `ns_dir/{net,ipc,uts}`.
    CreateSandbox {
        ns_dir: PathBuf,
        hostname: String,
        host_network: bool,
    },
    /// Create the container (libcontainer `build`) in a new monitor process that keeps its
    /// logs and its exit status.
    CreateContainer(ContainerJob),
    /// Let the created container's process run.
    Start { id: String, lc_root: PathBuf },
    /// Remove libcontainer's state and the container's cgroup.
    Delete { id: String, lc_root: PathBuf },
    /// Run `process.json` in the container. Attached: stdin, stdout, stderr (not for a tty)
    /// and a status pipe, on which the exec process reports `started <pid>`, then
    /// `exit <code>`, or `error <message>`.
    Exec {
        id: String,
        lc_root: PathBuf,
        process_json: PathBuf,
        console_socket: Option<PathBuf>,
        /// The container's precompiled seccomp program, which the exec'd process loads too.
        seccomp_bpf: Option<PathBuf>,
    },
}

/// What a container's monitor needs.
#[derive(Debug, Serialize, Deserialize)]
pub struct ContainerJob {
    pub id: String,
    pub lc_root: PathBuf,
    pub bundle: PathBuf,
    pub state_dir: PathBuf,
    pub log_path: PathBuf,
    pub log_max_size: Option<u64>,
    pub log_max_files: Option<u32>,
    pub cgroup_path: String,
    pub cgroup_v2: bool,
    /// Where the monitor listens for attach sessions (with `stdin` or `tty`).
    pub attach_socket: Option<PathBuf>,
    /// Keep a pipe on the container's standard input.
    pub stdin: bool,
    /// Close it when the first attach that wrote to it ends.
    pub stdin_once: bool,
    /// Give the container a terminal (`process.terminal` in its spec).
    pub tty: bool,
}

#[derive(Debug, Serialize, Deserialize)]
pub enum Response {
    /// Done (for CreateContainer, with a pidfd of the monitor attached).
    Ok,
    Error(String),
}

/// Sends one message with descriptors.
pub fn send<T: Serialize>(sock: BorrowedFd<'_>, msg: &T, fds: &[BorrowedFd<'_>]) -> io::Result<()> {
    let bytes =
        postcard::to_stdvec(msg).map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?;
    if bytes.len() > MAX_MESSAGE {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "helper message too large",
        ));
    }
    let mut space = [std::mem::MaybeUninit::uninit(); rustix::cmsg_space!(ScmRights(MAX_FDS))];
    let mut anc = SendAncillaryBuffer::new(&mut space);
    if !fds.is_empty() {
        anc.push(SendAncillaryMessage::ScmRights(fds));
    }
    sendmsg(sock, &[IoSlice::new(&bytes)], &mut anc, SendFlags::NOSIGNAL)?;
    Ok(())
}

/// Receives one message; `None` when the peer closed the socket.
pub fn recv<T: DeserializeOwned>(sock: BorrowedFd<'_>) -> io::Result<Option<(T, Vec<OwnedFd>)>> {
    let mut buf = vec![0u8; MAX_MESSAGE];
    let mut space = [std::mem::MaybeUninit::uninit(); rustix::cmsg_space!(ScmRights(MAX_FDS))];
    let mut anc = RecvAncillaryBuffer::new(&mut space);
    let msg = loop {
        match recvmsg(
            sock,
            &mut [IoSliceMut::new(&mut buf)],
            &mut anc,
            RecvFlags::CMSG_CLOEXEC,
        ) {
            Err(rustix::io::Errno::INTR) => continue,
            other => break other?,
        }
    };
    let mut fds = Vec::new();
    for m in anc.drain() {
        if let RecvAncillaryMessage::ScmRights(rights) = m {
            fds.extend(rights);
        }
    }
    if msg.bytes == 0 {
        return Ok(None);
    }
    if msg.flags.contains(rustix::net::ReturnFlags::TRUNC) {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            "helper message truncated",
        ));
    }
    let value = postcard::from_bytes(&buf[..msg.bytes])
        .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?;
    Ok(Some((value, fds)))
}

/// Borrows a list of owned descriptors.
pub fn borrow_all(fds: &[OwnedFd]) -> Vec<BorrowedFd<'_>> {
    fds.iter().map(|f| f.as_fd()).collect()
}

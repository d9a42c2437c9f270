//! Attaching to a container's own process (`kubectl attach`, `kubectl run -i`). A container
//! started with `stdin` or `tty` keeps what Kubernetes promises it: its monitor holds the
//! write end of its standard input (a pipe), or its terminal's master side, and listens on
//! `<run>/attach/<hash>.sock` for attach sessions, so a session reaches the same process
//! after the agent restarts. A session sees the output written while it is attached (the
//! log has the rest), may write input and resize the terminal, and is told the exit code
//! when the process ends.
//!
//! The monitor is single-threaded and never blocks on a session: sockets are non-blocking,
//! output a session has not taken is queued up to [`MAX_QUEUED`] (a session further behind
//! is dropped: the container's output is never held up), and input is taken from sessions
//! only while less than [`MAX_QUEUED`] waits for the container to read it.
//!
//! `stdinOnce`: the first session that attaches with input owns it; when it ends (or sends
//! `CloseStdin`), the container's standard input is closed (end of file; with a terminal,
//! input stops and the terminal stays). Without it, input stays open across sessions.

use std::io;
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};

use rustix::event::{PollFd, PollFlags};

/// Largest payload of one frame.
pub const MAX_PAYLOAD: usize = 64 << 10;
/// Most output queued for one session, and most input queued for the container.
pub const MAX_QUEUED: usize = 1 << 20;
/// Most sessions attached to one container at once.
pub const MAX_SESSIONS: usize = 16;

/// A message on an attach socket: a kind byte, a 4-byte big-endian length, the payload.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Frame {
    /// Session → monitor, first: whether this session writes input.
    Open { stdin: bool },
    /// Session → monitor: input.
    Stdin(Vec<u8>),
    /// Session → monitor: no more input from this session.
    CloseStdin,
    /// Session → monitor: the terminal's size.
    Resize { cols: u16, rows: u16 },
    /// Monitor → session: output (a terminal's is all `Stdout`).
    Stdout(Vec<u8>),
    /// Monitor → session: standard error.
    Stderr(Vec<u8>),
    /// Monitor → session: the process ended with this code; nothing follows.
    Exit(i32),
}

impl Frame {
    /// Appends the frame's bytes to `out`.
    pub fn encode(&self, out: &mut Vec<u8>) {
        let (kind, payload): (u8, std::borrow::Cow<'_, [u8]>) = match self {
            Frame::Open { stdin } => (0, vec![*stdin as u8].into()),
            Frame::Stdin(b) => (1, b.as_slice().into()),
            Frame::CloseStdin => (2, Vec::new().into()),
            Frame::Resize { cols, rows } => {
                let mut p = cols.to_be_bytes().to_vec();
                p.extend_from_slice(&rows.to_be_bytes());
                (3, p.into())
            }
            Frame::Stdout(b) => (4, b.as_slice().into()),
            Frame::Stderr(b) => (5, b.as_slice().into()),
            Frame::Exit(code) => (6, code.to_be_bytes().to_vec().into()),
        };
        out.push(kind);
        out.extend_from_slice(&(payload.len() as u32).to_be_bytes());
        out.extend_from_slice(&payload);
    }

    /// The frame at the front of `buf` and the bytes it took; `None` until it is whole.
    /// A length over [`MAX_PAYLOAD`] or an unknown kind is an error (checked before reading
    /// the payload).
    pub fn decode(buf: &[u8]) -> Result<Option<(Frame, usize)>, String> {
        let Some(head) = buf.get(..5) else {
            return Ok(None);
        };
        let kind = head[0];
        let len = u32::from_be_bytes([head[1], head[2], head[3], head[4]]) as usize;
        if kind > 6 {
            return Err(format!("unknown attach frame kind {kind}"));
        }
        if len > MAX_PAYLOAD {
            return Err(format!(
                "attach frame of {len} bytes (at most {MAX_PAYLOAD})"
            ));
        }
        let Some(p) = buf.get(5..5 + len) else {
            return Ok(None);
        };
        let fixed = |n: usize| -> Result<(), String> {
            if p.len() == n {
                Ok(())
            } else {
                Err(format!(
                    "attach frame kind {kind} needs {n} bytes, got {}",
                    p.len()
                ))
            }
        };
        let frame = match kind {
            0 => {
                fixed(1)?;
                Frame::Open { stdin: p[0] != 0 }
            }
            1 => Frame::Stdin(p.to_vec()),
            2 => Frame::CloseStdin,
            3 => {
                fixed(4)?;
                Frame::Resize {
                    cols: u16::from_be_bytes([p[0], p[1]]),
                    rows: u16::from_be_bytes([p[2], p[3]]),
                }
            }
            4 => Frame::Stdout(p.to_vec()),
            5 => Frame::Stderr(p.to_vec()),
            _ => {
                fixed(4)?;
                Frame::Exit(i32::from_be_bytes([p[0], p[1], p[2], p[3]]))
            }
        };
        Ok(Some((frame, 5 + len)))
    }
}

/// Where container `id`'s monitor listens: a short name (a socket path has at most 107
/// bytes), the FNV-1a hash of the id, stable across builds.
pub fn socket_path(run_dir: &Path, id: &str) -> PathBuf {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in id.bytes() {
        h ^= b as u64;
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    run_dir.join("attach").join(format!("{h:016x}.sock"))
}

/// One attached session, as the monitor sees it.
struct Session {
    sock: UnixStream,
    /// Bytes read and not yet a whole frame.
    read: Vec<u8>,
    /// Output not yet taken.
    queued: Vec<u8>,
    /// Has said whether it writes input.
    opened: bool,
    /// Writes input (and has not closed it).
    stdin: bool,
    /// Owns input under `stdinOnce`.
    owner: bool,
}

/// What one poll entry of the console stands for.
#[derive(Clone, Copy)]
pub(crate) enum Slot {
    Listener,
    Input,
    Session(usize),
}

/// The monitor's side: the container's input and terminal, and the attached sessions.
pub(crate) struct Console {
    listener: UnixListener,
    path: PathBuf,
    /// The container's standard input (pipe write end, or the terminal's master), while open.
    input: Option<OwnedFd>,
    /// The terminal's master, for resizes.
    tty: Option<OwnedFd>,
    stdin_once: bool,
    /// `stdinOnce` input was owned by a session that ended.
    spent: bool,
    /// Input not yet read by the container.
    pending: Vec<u8>,
    sessions: Vec<Session>,
}

impl Console {
    /// Listens at `path` (replacing a stale socket) for a container whose input is `input`.
    pub(crate) fn listen(
        path: &Path,
        input: Option<OwnedFd>,
        tty: Option<OwnedFd>,
        stdin_once: bool,
    ) -> io::Result<Console> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)?;
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))?;
        }
        let _ = std::fs::remove_file(path);
        let listener = UnixListener::bind(path)?;
        listener.set_nonblocking(true)?;
        for fd in input.iter().chain(tty.iter()) {
            set_nonblocking(fd)?;
        }
        Ok(Console {
            listener,
            path: path.to_path_buf(),
            input,
            tty,
            stdin_once,
            spent: false,
            pending: Vec::new(),
            sessions: Vec::new(),
        })
    }

    /// The descriptors to poll, appended to `fds`, and what each is.
    pub(crate) fn poll_fds<'a>(&'a self, fds: &mut Vec<PollFd<'a>>) -> Vec<Slot> {
        let mut slots = vec![Slot::Listener];
        fds.push(PollFd::new(&self.listener, PollFlags::IN));
        if let (Some(fd), false) = (&self.input, self.pending.is_empty()) {
            slots.push(Slot::Input);
            fds.push(PollFd::new(fd, PollFlags::OUT));
        }
        let take_input = self.pending.len() < MAX_QUEUED;
        for (i, s) in self.sessions.iter().enumerate() {
            let mut flags = PollFlags::empty();
            if take_input {
                flags |= PollFlags::IN;
            }
            if !s.queued.is_empty() {
                flags |= PollFlags::OUT;
            }
            slots.push(Slot::Session(i));
            fds.push(PollFd::new(&s.sock, flags));
        }
        slots
    }

    /// Serves what the poll found ready (`ready[i]` for `slots[i]`).
    pub(crate) fn serve(&mut self, slots: &[Slot], ready: &[PollFlags]) {
        let mut gone = Vec::new();
        for (slot, r) in slots.iter().zip(ready) {
            if r.is_empty() {
                continue;
            }
            match *slot {
                Slot::Listener => self.accept(),
                Slot::Input => self.feed(),
                Slot::Session(i) => {
                    if !self.serve_session(i, *r) {
                        gone.push(i);
                    }
                }
            }
        }
        for i in gone.into_iter().rev() {
            self.end_session(i);
        }
    }

    /// Output of the container, for every session.
    pub(crate) fn output(&mut self, stderr: bool, data: &[u8]) {
        let mut gone = Vec::new();
        for (i, s) in self.sessions.iter_mut().enumerate() {
            for chunk in data.chunks(MAX_PAYLOAD) {
                let f = if stderr {
                    Frame::Stderr(chunk.to_vec())
                } else {
                    Frame::Stdout(chunk.to_vec())
                };
                f.encode(&mut s.queued);
            }
            if !flush(s) || s.queued.len() > MAX_QUEUED {
                gone.push(i);
            }
        }
        for i in gone.into_iter().rev() {
            self.end_session(i);
        }
    }

    /// The process ended: tells every session (waiting up to a second for each to take
    /// what is queued) and removes the socket.
    pub(crate) fn finish(mut self, code: i32) {
        let _ = std::fs::remove_file(&self.path);
        for s in &mut self.sessions {
            Frame::Exit(code).encode(&mut s.queued);
            let _ = s.sock.set_nonblocking(false);
            let _ = s
                .sock
                .set_write_timeout(Some(std::time::Duration::from_secs(1)));
            let _ = io::Write::write_all(&mut s.sock, &s.queued);
        }
    }

    fn accept(&mut self) {
        while let Ok((sock, _)) = self.listener.accept() {
            if self.sessions.len() >= MAX_SESSIONS || sock.set_nonblocking(true).is_err() {
                continue;
            }
            self.sessions.push(Session {
                sock,
                read: Vec::new(),
                queued: Vec::new(),
                opened: false,
                stdin: false,
                owner: false,
            });
        }
    }

    /// Writes pending input to the container.
    fn feed(&mut self) {
        let Some(fd) = &self.input else {
            self.pending.clear();
            return;
        };
        match rustix::io::write(fd, &self.pending) {
            Ok(n) => {
                self.pending.drain(..n);
            }
            Err(rustix::io::Errno::AGAIN) | Err(rustix::io::Errno::INTR) => {}
            // The container closed its end: input goes nowhere from now on.
            Err(_) => {
                self.input = None;
                self.pending.clear();
            }
        }
    }

    /// Reads and writes what session `i` is ready for; false when it is to be dropped.
    fn serve_session(&mut self, i: usize, ready: PollFlags) -> bool {
        if ready.intersects(PollFlags::OUT) && !flush(&mut self.sessions[i]) {
            return false;
        }
        if !ready.intersects(PollFlags::IN | PollFlags::HUP | PollFlags::ERR) {
            return true;
        }
        let mut buf = [0u8; 16 << 10];
        let n = match io::Read::read(&mut self.sessions[i].sock, &mut buf) {
            Ok(0) => return false,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return true,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => return true,
            Err(_) => return false,
        };
        self.sessions[i].read.extend_from_slice(&buf[..n]);
        loop {
            let decoded = Frame::decode(&self.sessions[i].read);
            let (frame, used) = match decoded {
                Ok(Some(v)) => v,
                Ok(None) => return true,
                Err(_) => return false,
            };
            self.sessions[i].read.drain(..used);
            if !self.take(i, frame) {
                return false;
            }
        }
    }

    /// Acts on one frame from session `i`; false for a frame a session may not send.
    fn take(&mut self, i: usize, frame: Frame) -> bool {
        if !self.sessions[i].opened {
            let Frame::Open { stdin } = frame else {
                return false;
            };
            let taken = self.sessions.iter().any(|o| o.owner);
            let open = stdin && self.input.is_some() && !self.spent;
            let s = &mut self.sessions[i];
            s.opened = true;
            // Under stdinOnce one session owns the input; later ones only watch.
            s.stdin = open && !(self.stdin_once && taken);
            s.owner = s.stdin && self.stdin_once;
            return true;
        }
        match frame {
            Frame::Stdin(b) => {
                if self.sessions[i].stdin && self.input.is_some() {
                    self.pending.extend_from_slice(&b);
                    self.feed();
                }
                true
            }
            Frame::CloseStdin => {
                let s = &mut self.sessions[i];
                s.stdin = false;
                if std::mem::take(&mut s.owner) {
                    self.close_input();
                }
                true
            }
            Frame::Resize { cols, rows } => {
                if let Some(t) = &self.tty {
                    let _ = crate::exec::set_winsize_fd(t.as_fd(), cols, rows);
                }
                true
            }
            _ => false,
        }
    }

    fn end_session(&mut self, i: usize) {
        let s = self.sessions.remove(i);
        if s.owner {
            self.close_input();
        }
    }

    /// `stdinOnce`: the owning session is done, and so is the container's input (what it
    /// sent is still written first, if the container reads it soon).
    fn close_input(&mut self) {
        self.spent = true;
        if let Some(fd) = &self.input {
            if !self.pending.is_empty() {
                let _ = set_blocking_briefly(fd);
                let _ = rustix::io::write(fd, &self.pending);
            }
        }
        self.pending.clear();
        self.input = None;
    }
}

impl Drop for Console {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

/// Writes what session `s` has queued, as far as its socket takes it; false if it is gone.
fn flush(s: &mut Session) -> bool {
    while !s.queued.is_empty() {
        match rustix::net::send(&s.sock, &s.queued, rustix::net::SendFlags::NOSIGNAL) {
            Ok(n) => {
                s.queued.drain(..n);
            }
            Err(rustix::io::Errno::AGAIN) => return true,
            Err(rustix::io::Errno::INTR) => {}
            Err(_) => return false,
        }
    }
    true
}

fn set_nonblocking(fd: &OwnedFd) -> io::Result<()> {
    let flags = rustix::fs::fcntl_getfl(fd)?;
    rustix::fs::fcntl_setfl(fd, flags | rustix::fs::OFlags::NONBLOCK)?;
    Ok(())
}

/// Input handed over when `stdinOnce` ends: one blocking write (the pipe takes 64 KiB).
fn set_blocking_briefly(fd: &OwnedFd) -> io::Result<()> {
    let flags = rustix::fs::fcntl_getfl(fd)?;
    rustix::fs::fcntl_setfl(fd, flags.difference(rustix::fs::OFlags::NONBLOCK))?;
    Ok(())
}

/// The agent's side: a session with a container's monitor.
pub struct Attached {
    /// The connection (blocking); frames as [`Frame`].
    pub sock: UnixStream,
}

impl Attached {
    /// Connects to container `id`'s monitor and says whether input follows.
    pub(crate) fn connect(run_dir: &Path, id: &str, stdin: bool) -> io::Result<Attached> {
        let mut sock = UnixStream::connect(socket_path(run_dir, id))?;
        let mut open = Vec::new();
        Frame::Open { stdin }.encode(&mut open);
        io::Write::write_all(&mut sock, &open)?;
        Ok(Attached { sock })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_round_trip_and_wait_until_whole() {
        let frames = [
            Frame::Open { stdin: true },
            Frame::Stdin(b"ls\n".to_vec()),
            Frame::CloseStdin,
            Frame::Resize {
                cols: 120,
                rows: 40,
            },
            Frame::Stdout(vec![7; 3]),
            Frame::Stderr(Vec::new()),
            Frame::Exit(-1),
        ];
        let mut buf = Vec::new();
        for f in &frames {
            f.encode(&mut buf);
        }
        let mut at = 0;
        for f in &frames {
            // Every cut short of the whole frame waits for more.
            let (_, len) = Frame::decode(&buf[at..]).unwrap().unwrap();
            for cut in 0..len {
                assert_eq!(Frame::decode(&buf[at..at + cut]).unwrap(), None);
            }
            let (got, used) = Frame::decode(&buf[at..]).unwrap().unwrap();
            assert_eq!(&got, f);
            at += used;
        }
        assert_eq!(at, buf.len());
    }

    #[test]
    fn bad_frames_are_refused_before_their_payload() {
        let mut huge = vec![1u8];
        huge.extend_from_slice(&(MAX_PAYLOAD as u32 + 1).to_be_bytes());
        assert!(Frame::decode(&huge).unwrap_err().contains("at most"));
        assert!(Frame::decode(&[9, 0, 0, 0, 0])
            .unwrap_err()
            .contains("unknown"));
        assert!(Frame::decode(&[3, 0, 0, 0, 1, 0])
            .unwrap_err()
            .contains("needs 4"));
    }

    #[test]
    fn socket_names_are_short_and_stable() {
        let long = "x".repeat(128);
        let p = socket_path(Path::new("/run/skiff"), &long);
        assert_eq!(p.file_name().unwrap().len(), "0123456789abcdef.sock".len());
        assert_eq!(p, socket_path(Path::new("/run/skiff"), &long));
        assert_ne!(p, socket_path(Path::new("/run/skiff"), "y"));
        // FNV-1a of the empty id is the offset basis.
        assert_eq!(
            socket_path(Path::new("/r"), ""),
            Path::new("/r/attach/cbf29ce484222325.sock")
        );
    }
}

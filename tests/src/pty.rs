//! A pseudo-terminal for tests that drive a client wanting one on its standard input
//! (`kubectl exec -it`, `kubectl run -it`): the client runs on the slave side, the test
//! types into and reads from the master side.

use std::fs::File;
use std::io::{Read, Write};
use std::os::fd::AsFd;
use std::process::{Child, Command};
use std::time::{Duration, Instant};

/// A client on a terminal of a given size.
pub struct Pty {
    master: File,
    pub child: Child,
    /// Everything the client wrote to its terminal so far.
    pub seen: String,
}

impl Pty {
    /// Starts `cmd` with a `cols`×`rows` terminal as its standard input, output and error.
    pub fn spawn(mut cmd: Command, cols: u16, rows: u16) -> Pty {
        let size = nix::pty::Winsize {
            ws_row: rows,
            ws_col: cols,
            ws_xpixel: 0,
            ws_ypixel: 0,
        };
        let p = nix::pty::openpty(Some(&size), None).expect("openpty");
        let slave = File::from(p.slave);
        cmd.stdin(slave.try_clone().unwrap())
            .stdout(slave.try_clone().unwrap())
            .stderr(slave);
        let child = cmd.spawn().expect("start the client on a terminal");
        // The command holds the slave's copies: gone with it, so the master sees the end.
        drop(cmd);
        Pty {
            master: File::from(p.master),
            child,
            seen: String::new(),
        }
    }

    /// Types `text`.
    pub fn type_in(&mut self, text: &str) {
        self.master.write_all(text.as_bytes()).unwrap();
    }

    /// Reads until what the client wrote contains `needle`; panics with all of it after
    /// `secs` seconds, or if the terminal closes first.
    pub fn read_until(&mut self, needle: &str, secs: u64) -> &str {
        let deadline = Instant::now() + Duration::from_secs(secs);
        let mut buf = [0u8; 4096];
        while !self.seen.contains(needle) {
            let left = deadline.saturating_duration_since(Instant::now());
            assert!(
                !left.is_zero(),
                "{needle:?} never appeared on the terminal; it shows {:?}",
                self.seen
            );
            let mut fds = [nix::poll::PollFd::new(
                self.master.as_fd(),
                nix::poll::PollFlags::POLLIN,
            )];
            let ms = left.as_millis().min(1000) as u16;
            if nix::poll::poll(&mut fds, nix::poll::PollTimeout::from(ms)).unwrap_or(0) == 0 {
                continue;
            }
            match self.master.read(&mut buf) {
                Ok(n) if n > 0 => self.seen.push_str(&String::from_utf8_lossy(&buf[..n])),
                // EIO: every slave copy is closed (the client ended).
                _ => panic!(
                    "the terminal closed before {needle:?}; it shows {:?}",
                    self.seen
                ),
            }
        }
        &self.seen
    }

    /// Reads what the client writes for `wait`.
    pub fn read_for(&mut self, wait: Duration) {
        let deadline = Instant::now() + wait;
        let mut buf = [0u8; 4096];
        while let Some(left) = deadline.checked_duration_since(Instant::now()) {
            let mut fds = [nix::poll::PollFd::new(
                self.master.as_fd(),
                nix::poll::PollFlags::POLLIN,
            )];
            let ms = left.as_millis().clamp(1, 1000) as u16;
            if nix::poll::poll(&mut fds, nix::poll::PollTimeout::from(ms)).unwrap_or(0) == 0 {
                continue;
            }
            match self.master.read(&mut buf) {
                Ok(n) if n > 0 => self.seen.push_str(&String::from_utf8_lossy(&buf[..n])),
                _ => return,
            }
        }
    }

    /// Waits (bounded) for the client's exit code, reading what it still writes.
    pub fn wait(&mut self, secs: u64) -> Option<i32> {
        let deadline = Instant::now() + Duration::from_secs(secs);
        let mut buf = [0u8; 4096];
        loop {
            if let Some(st) = self.child.try_wait().unwrap() {
                return st.code();
            }
            assert!(
                Instant::now() < deadline,
                "the client did not end; its terminal shows {:?}",
                self.seen
            );
            let mut fds = [nix::poll::PollFd::new(
                self.master.as_fd(),
                nix::poll::PollFlags::POLLIN,
            )];
            if nix::poll::poll(&mut fds, nix::poll::PollTimeout::from(100u16)).unwrap_or(0) > 0 {
                if let Ok(n) = self.master.read(&mut buf) {
                    self.seen.push_str(&String::from_utf8_lossy(&buf[..n]));
                }
            }
        }
    }
}

impl Drop for Pty {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

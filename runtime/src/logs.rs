//! Container logs in the CRI format kubelet and containerd write:
//! `2016-10-06T00:17:09.669794202Z stdout F the line`, with `P` for a long line cut into
//! pieces. Files rotate by size (`0.log` → `0.log.1` → ...) and a bounded number is kept.
//! The writer runs in the container's monitor process, so logs keep flowing while the agent
//! restarts; the reader follows a file across rotations for `logs -f`.

use std::fs::{self, File, OpenOptions};
use std::io::{self, BufRead, BufReader, Read, Seek, SeekFrom, Write};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

/// A line longer than this is written in `P`artial pieces.
pub const MAX_LINE: usize = 16 * 1024;
/// Default rotation size.
pub const DEFAULT_MAX_SIZE: u64 = 10 << 20;
/// Default number of files kept (the live one included).
pub const DEFAULT_MAX_FILES: u32 = 5;

/// Which output a line came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Stream {
    Stdout,
    Stderr,
}

impl Stream {
    fn as_str(self) -> &'static str {
        match self {
            Stream::Stdout => "stdout",
            Stream::Stderr => "stderr",
        }
    }
}

/// RFC 3339 with nanoseconds, UTC.
pub fn timestamp(t: SystemTime) -> String {
    let d = t.duration_since(UNIX_EPOCH).unwrap_or_default();
    let secs = d.as_secs() as i64;
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    // Howard Hinnant's civil_from_days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + if month <= 2 { 1 } else { 0 };
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:09}Z",
        rem / 3600,
        rem / 60 % 60,
        rem % 60,
        d.subsec_nanos()
    )
}

/// Writes one container's log, rotating by size.
pub struct LogWriter {
    path: PathBuf,
    file: File,
    size: u64,
    max_size: u64,
    max_files: u32,
    partial: [Vec<u8>; 2],
}

impl LogWriter {
    /// Opens (appending to) the live file.
    pub fn open(
        path: &Path,
        max_size: Option<u64>,
        max_files: Option<u32>,
    ) -> io::Result<LogWriter> {
        if let Some(dir) = path.parent() {
            fs::create_dir_all(dir)?;
        }
        let file = OpenOptions::new().create(true).append(true).open(path)?;
        let size = file.metadata()?.len();
        Ok(LogWriter {
            path: path.to_path_buf(),
            file,
            size,
            max_size: max_size.unwrap_or(DEFAULT_MAX_SIZE).max(4096),
            max_files: max_files.unwrap_or(DEFAULT_MAX_FILES).max(1),
            partial: [Vec::new(), Vec::new()],
        })
    }

    /// Takes a chunk of a stream's output.
    pub fn write(&mut self, stream: Stream, data: &[u8]) -> io::Result<()> {
        let idx = stream as usize;
        let mut rest = data;
        while let Some(nl) = rest.iter().position(|b| *b == b'\n') {
            let mut line = std::mem::take(&mut self.partial[idx]);
            line.extend_from_slice(&rest[..nl]);
            self.emit_long(stream, &line, true)?;
            rest = &rest[nl + 1..];
        }
        self.partial[idx].extend_from_slice(rest);
        // Cut full pieces off a long unterminated line; keep the rest for what follows.
        while self.partial[idx].len() >= MAX_LINE {
            let piece: Vec<u8> = self.partial[idx].drain(..MAX_LINE).collect();
            self.emit(stream, &piece, false)?;
        }
        Ok(())
    }

    /// Writes out unterminated output (at the end of the stream).
    pub fn finish(&mut self) -> io::Result<()> {
        for stream in [Stream::Stdout, Stream::Stderr] {
            let line = std::mem::take(&mut self.partial[stream as usize]);
            if !line.is_empty() {
                self.emit_long(stream, &line, true)?;
            }
        }
        self.file.flush()
    }

    fn emit_long(&mut self, stream: Stream, line: &[u8], complete: bool) -> io::Result<()> {
        let mut chunks = line.chunks(MAX_LINE).peekable();
        if chunks.peek().is_none() {
            return self.emit(stream, b"", complete);
        }
        while let Some(c) = chunks.next() {
            let last = chunks.peek().is_none();
            self.emit(stream, c, complete && last)?;
        }
        Ok(())
    }

    fn emit(&mut self, stream: Stream, content: &[u8], complete: bool) -> io::Result<()> {
        let mut entry = Vec::with_capacity(content.len() + 48);
        entry.extend_from_slice(timestamp(SystemTime::now()).as_bytes());
        entry.push(b' ');
        entry.extend_from_slice(stream.as_str().as_bytes());
        entry.extend_from_slice(if complete { b" F " } else { b" P " });
        entry.extend_from_slice(content);
        entry.push(b'\n');
        if self.size > 0 && self.size + entry.len() as u64 > self.max_size {
            self.rotate()?;
        }
        self.file.write_all(&entry)?;
        self.size += entry.len() as u64;
        Ok(())
    }

    fn rotate(&mut self) -> io::Result<()> {
        let keep = self.max_files.saturating_sub(1);
        if keep == 0 {
            self.file.set_len(0)?;
            self.size = 0;
            return Ok(());
        }
        let _ = fs::remove_file(rotated(&self.path, keep));
        for n in (1..keep).rev() {
            let from = rotated(&self.path, n);
            if from.exists() {
                fs::rename(&from, rotated(&self.path, n + 1))?;
            }
        }
        fs::rename(&self.path, rotated(&self.path, 1))?;
        self.file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.path)?;
        self.size = 0;
        Ok(())
    }
}

/// `<path>.<n>`.
pub fn rotated(path: &Path, n: u32) -> PathBuf {
    let mut s = path.as_os_str().to_os_string();
    s.push(format!(".{n}"));
    PathBuf::from(s)
}

/// One parsed log entry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LogEntry {
    pub time: String,
    pub stream: Stream,
    /// The line continues in the next entry.
    pub partial: bool,
    pub content: Vec<u8>,
}

/// Parses one CRI log line (without its newline).
pub fn parse_line(line: &[u8]) -> Option<LogEntry> {
    let mut parts = line.splitn(4, |b| *b == b' ');
    let time = std::str::from_utf8(parts.next()?).ok()?.to_string();
    let stream = match parts.next()? {
        b"stdout" => Stream::Stdout,
        b"stderr" => Stream::Stderr,
        _ => return None,
    };
    let partial = match parts.next()? {
        b"P" => true,
        b"F" => false,
        _ => return None,
    };
    Some(LogEntry {
        time,
        stream,
        partial,
        content: parts.next().unwrap_or(b"").to_vec(),
    })
}

/// Every entry still on disk, oldest first (rotated files included).
pub fn read_all(path: &Path) -> io::Result<Vec<LogEntry>> {
    let mut files = Vec::new();
    let mut n = 1;
    while rotated(path, n).exists() {
        files.push(rotated(path, n));
        n += 1;
    }
    files.reverse();
    files.push(path.to_path_buf());
    let mut out = Vec::new();
    for f in files {
        let file = match File::open(&f) {
            Ok(f) => f,
            Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
            Err(e) => return Err(e),
        };
        for line in BufReader::new(file).split(b'\n') {
            if let Some(e) = parse_line(&line?) {
                out.push(e);
            }
        }
    }
    Ok(out)
}

/// Follows a log file across rotations.
pub struct Follower {
    path: PathBuf,
    file: Option<File>,
    inode: u64,
    pending: Vec<u8>,
}

impl Follower {
    /// Starts at the beginning of the live file (`from_start`) or at its end.
    pub fn new(path: &Path, from_start: bool) -> io::Result<Follower> {
        let mut f = Follower {
            path: path.to_path_buf(),
            file: None,
            inode: 0,
            pending: Vec::new(),
        };
        f.reopen(from_start)?;
        Ok(f)
    }

    fn reopen(&mut self, from_start: bool) -> io::Result<()> {
        match File::open(&self.path) {
            Ok(mut file) => {
                self.inode = file.metadata()?.ino();
                if !from_start {
                    file.seek(SeekFrom::End(0))?;
                }
                self.file = Some(file);
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => self.file = None,
            Err(e) => return Err(e),
        }
        Ok(())
    }

    /// The file that follows the one being read: the rotated file just newer than it, or the
    /// oldest one left if it was already deleted.
    fn next_file(&self) -> PathBuf {
        let mut n = 1;
        while rotated(&self.path, n).exists() {
            if fs::metadata(rotated(&self.path, n)).map(|m| m.ino()).ok() == Some(self.inode) {
                return if n == 1 {
                    self.path.clone()
                } else {
                    rotated(&self.path, n - 1)
                };
            }
            n += 1;
        }
        if n > 1 {
            rotated(&self.path, n - 1)
        } else {
            self.path.clone()
        }
    }

    /// Entries written since the last call.
    pub fn poll(&mut self) -> io::Result<Vec<LogEntry>> {
        let mut out = Vec::new();
        loop {
            if let Some(file) = &mut self.file {
                let mut buf = Vec::new();
                file.read_to_end(&mut buf)?;
                self.pending.extend_from_slice(&buf);
                while let Some(nl) = self.pending.iter().position(|b| *b == b'\n') {
                    let line: Vec<u8> = self.pending.drain(..=nl).collect();
                    if let Some(e) = parse_line(&line[..line.len() - 1]) {
                        out.push(e);
                    }
                }
            }
            // Rotated away (the live path now names another file): the old one is fully
            // read; go on with the file written after it.
            let current = fs::metadata(&self.path).map(|m| m.ino()).ok();
            match current {
                Some(ino) if self.file.is_none() || ino != self.inode => {
                    self.pending.clear();
                    let next = if self.file.is_none() {
                        self.path.clone()
                    } else {
                        self.next_file()
                    };
                    match File::open(&next) {
                        Ok(file) => {
                            self.inode = file.metadata()?.ino();
                            self.file = Some(file);
                        }
                        Err(e) if e.kind() == io::ErrorKind::NotFound => self.reopen(true)?,
                        Err(e) => return Err(e),
                    }
                    continue;
                }
                _ => return Ok(out),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn timestamps_are_rfc3339_utc() {
        assert_eq!(timestamp(UNIX_EPOCH), "1970-01-01T00:00:00.000000000Z");
        let t = UNIX_EPOCH + Duration::new(1_475_713_029, 669_794_202);
        assert_eq!(timestamp(t), "2016-10-06T00:17:09.669794202Z");
        let leap = UNIX_EPOCH + Duration::from_secs(951_782_400); // 2000-02-29
        assert_eq!(&timestamp(leap)[..10], "2000-02-29");
    }

    #[test]
    fn lines_partials_and_rotation() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c/0.log");
        let mut w = LogWriter::open(&path, Some(4096), Some(3)).unwrap();
        let mut follow = Follower::new(&path, true).unwrap();
        w.write(Stream::Stdout, b"hello\nwor").unwrap();
        w.write(Stream::Stderr, b"oops\n").unwrap();
        w.write(Stream::Stdout, b"ld\n").unwrap();
        let got = follow.poll().unwrap();
        let text: Vec<(Stream, &[u8])> = got
            .iter()
            .map(|e| (e.stream, e.content.as_slice()))
            .collect();
        assert_eq!(
            text,
            vec![
                (Stream::Stdout, &b"hello"[..]),
                (Stream::Stderr, b"oops"),
                (Stream::Stdout, b"world")
            ]
        );
        // A long line is cut into P pieces ending with F.
        let long = vec![b'x'; MAX_LINE + 10];
        w.write(Stream::Stdout, &long).unwrap();
        w.write(Stream::Stdout, b"\n").unwrap();
        let got = follow.poll().unwrap();
        assert_eq!(got.len(), 2);
        assert!(got[0].partial && !got[1].partial);
        assert_eq!(got[0].content.len() + got[1].content.len(), MAX_LINE + 10);
        // Rotation keeps 3 files, and the follower crosses into the new file.
        let mut followed = Vec::new();
        for i in 0..400 {
            w.write(Stream::Stdout, format!("line {i}\n").as_bytes())
                .unwrap();
            if i % 50 == 0 {
                followed.extend(follow.poll().unwrap());
            }
        }
        w.finish().unwrap();
        assert!(rotated(&path, 1).exists() && rotated(&path, 2).exists());
        assert!(!rotated(&path, 3).exists(), "bounded number of files");
        let all = read_all(&path).unwrap();
        assert_eq!(all.last().unwrap().content, b"line 399");
        followed.extend(follow.poll().unwrap());
        assert_eq!(followed.last().unwrap().content, b"line 399");
        // The follower saw a contiguous tail: every line after its first is the next number.
        let nums: Vec<u32> = followed
            .iter()
            .filter_map(|e| {
                std::str::from_utf8(&e.content)
                    .ok()?
                    .strip_prefix("line ")?
                    .parse()
                    .ok()
            })
            .collect();
        assert_eq!(nums.len(), 400, "every line once");
        assert!(
            nums.windows(2).all(|w| w[1] == w[0] + 1),
            "no gaps or repeats"
        );
        assert_eq!(parse_line(b"garbage"), None);
    }
}

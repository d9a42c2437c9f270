//! The part of SPDY/3.1 that `kubectl port-forward` speaks (moby/spdystream, tunnelled in
//! WebSocket binary messages or on an upgraded connection): frames, and the zlib-compressed
//! header blocks. Pure: bytes in, frames out, frames to bytes.
//!
//! Header blocks the client sends are one zlib stream per direction with SPDY's preset
//! dictionary (miniz_oxide cannot take one, so the stream's window is primed with it here);
//! the blocks skiff sends are stored (uncompressed) deflate blocks in a zlib stream without a
//! dictionary, which every zlib reader takes. Flow control is not kept, as spdystream keeps
//! none; frames over [`MAX_FRAME`] are refused before they are buffered.

use miniz_oxide::inflate::core::{decompress, inflate_flags, DecompressorOxide};
use miniz_oxide::inflate::TINFLStatus;
use std::sync::OnceLock;

/// Largest frame taken (SPDY allows 16 MiB; spdystream writes at most 32 KiB of data).
pub const MAX_FRAME: usize = 1 << 20;
/// Largest header block, once inflated.
pub const MAX_HEADERS: usize = 64 << 10;

pub const FLAG_FIN: u8 = 0x01;

const SYN_STREAM: u16 = 1;
const SYN_REPLY: u16 = 2;
const RST_STREAM: u16 = 3;
const SETTINGS: u16 = 4;
const PING: u16 = 6;
const GOAWAY: u16 = 7;
const HEADERS: u16 = 8;
const WINDOW_UPDATE: u16 = 9;

/// A frame the client sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Frame {
    /// A new stream and its headers (names lower-case).
    SynStream {
        id: u32,
        fin: bool,
        headers: Vec<(String, String)>,
    },
    Data {
        id: u32,
        fin: bool,
        data: Vec<u8>,
    },
    Reset {
        id: u32,
    },
    Ping {
        id: u32,
    },
    GoAway,
    /// SYN_REPLY, HEADERS, SETTINGS, WINDOW_UPDATE and unknown control frames: nothing to do
    /// for a port-forward server (header blocks are still inflated, to keep the stream).
    Other,
}

/// SPDY/3's preset dictionary for header compression (1423 bytes): the header names of its
/// section 2.6.10.1, each after its 4-byte length, then a run of common values.
pub fn dictionary() -> &'static [u8] {
    static DICT: OnceLock<Vec<u8>> = OnceLock::new();
    DICT.get_or_init(|| {
        const NAMES: [&str; 65] = [
            "options", "head", "post", "put", "delete", "trace", "accept", "accept-charset",
            "accept-encoding", "accept-language", "accept-ranges", "age", "allow",
            "authorization", "cache-control", "connection", "content-base", "content-encoding",
            "content-language", "content-length", "content-location", "content-md5",
            "content-range", "content-type", "date", "etag", "expect", "expires", "from", "host",
            "if-match", "if-modified-since", "if-none-match", "if-range", "if-unmodified-since",
            "last-modified", "location", "max-forwards", "pragma", "proxy-authenticate",
            "proxy-authorization", "range", "referer", "retry-after", "server", "te", "trailer",
            "transfer-encoding", "upgrade", "user-agent", "vary", "via", "warning",
            "www-authenticate", "method", "get", "status", "200 OK", "version", "HTTP/1.1", "url",
            "public", "set-cookie", "keep-alive", "origin",
        ];
        const VALUES: [&str; 8] = [
            "100101201202205206300302303304305306307402405406407408409410411412413414415416417502504505",
            "203 Non-Authoritative Information204 No Content301 Moved Permanently400 Bad Request",
            "401 Unauthorized403 Forbidden404 Not Found500 Internal Server Error",
            "501 Not Implemented503 Service Unavailable",
            "Jan Feb Mar Apr May Jun Jul Aug Sept Oct Nov Dec 00:00:00 ",
            "Mon, Tue, Wed, Thu, Fri, Sat, Sun, GMT",
            "chunked,text/html,image/png,image/jpg,image/gif,application/xml,application/xhtml+xml,text/plain,text/javascript,",
            "publicprivatemax-age=gzip,deflate,sdchcharset=utf-8charset=iso-8859-1,utf-,*,enq=0.",
        ];
        let mut d = Vec::with_capacity(1423);
        for n in NAMES {
            d.extend_from_slice(&(n.len() as u32).to_be_bytes());
            d.extend_from_slice(n.as_bytes());
        }
        for v in VALUES {
            d.extend_from_slice(v.as_bytes());
        }
        d
    })
}

/// Adler-32 (RFC 1950), for the dictionary's id.
fn adler32(data: &[u8]) -> u32 {
    let (mut a, mut b) = (1u32, 0u32);
    for &x in data {
        a = (a + x as u32) % 65_521;
        b = (b + a) % 65_521;
    }
    (b << 16) | a
}

/// The client's header-block stream: one zlib stream across all its frames.
#[derive(Default)]
pub struct HeaderInflater {
    state: Box<DecompressorOxide>,
    /// Output so far (the dictionary first): what back-references reach.
    window: Vec<u8>,
    /// Bytes of the zlib header not yet seen.
    header: Vec<u8>,
    started: bool,
}

impl HeaderInflater {
    /// Inflates one header block (what one frame carries of the stream).
    pub fn inflate(&mut self, mut input: &[u8]) -> Result<Vec<u8>, String> {
        if !self.started {
            // CMF, FLG, and with FDICT the dictionary's Adler-32.
            while self.header.len() < 2 || (self.header[1] & 0x20 != 0 && self.header.len() < 6) {
                let Some((&b, rest)) = input.split_first() else {
                    return Ok(Vec::new());
                };
                self.header.push(b);
                input = rest;
            }
            let (cmf, flg) = (self.header[0], self.header[1]);
            if cmf & 0x0f != 8 || (u16::from(cmf) << 8 | u16::from(flg)) % 31 != 0 {
                return Err("the header block is not a zlib stream".into());
            }
            if flg & 0x20 != 0 {
                let id = u32::from_be_bytes([
                    self.header[2],
                    self.header[3],
                    self.header[4],
                    self.header[5],
                ]);
                if id != adler32(dictionary()) {
                    return Err(format!(
                        "the header block uses dictionary {id:08x}, not SPDY/3's"
                    ));
                }
                self.window.extend_from_slice(dictionary());
            }
            self.started = true;
        }
        let mut out = Vec::new();
        loop {
            let filled = self.window.len();
            self.window.resize(filled + (16 << 10), 0);
            let flags = inflate_flags::TINFL_FLAG_USING_NON_WRAPPING_OUTPUT_BUF
                | inflate_flags::TINFL_FLAG_HAS_MORE_INPUT;
            let (status, read, wrote) =
                decompress(&mut self.state, input, &mut self.window, filled, flags);
            out.extend_from_slice(&self.window[filled..filled + wrote]);
            self.window.truncate(filled + wrote);
            input = &input[read..];
            if out.len() > MAX_HEADERS {
                return Err(format!("a header block over {MAX_HEADERS} bytes"));
            }
            match status {
                TINFLStatus::NeedsMoreInput if input.is_empty() => break,
                TINFLStatus::NeedsMoreInput | TINFLStatus::HasMoreOutput => {}
                TINFLStatus::Done => break,
                other => return Err(format!("the header block does not inflate: {other:?}")),
            }
        }
        // Back-references reach 32 KiB: keep that much of the window.
        if self.window.len() > 96 << 10 {
            let cut = self.window.len() - (32 << 10);
            self.window.drain(..cut);
        }
        Ok(out)
    }
}

/// The name/value pairs of an inflated header block, names lower-cased.
pub fn parse_headers(block: &[u8]) -> Result<Vec<(String, String)>, String> {
    fn word<'a>(block: &'a [u8], at: &mut usize, what: &str) -> Result<&'a [u8], String> {
        let len = block
            .get(*at..*at + 4)
            .map(|b| u32::from_be_bytes([b[0], b[1], b[2], b[3]]) as usize)
            .ok_or_else(|| format!("a header block cut short in a {what} length"))?;
        let w = block
            .get(*at + 4..*at + 4 + len)
            .ok_or_else(|| format!("a header block cut short in a {what}"))?;
        *at += 4 + len;
        Ok(w)
    }
    let count = block
        .get(..4)
        .map(|b| u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
        .ok_or("an empty header block")?;
    if count > 64 {
        return Err(format!("{count} headers on a stream (at most 64)"));
    }
    let mut at = 4;
    let mut pairs = Vec::new();
    for _ in 0..count {
        let name = String::from_utf8_lossy(word(block, &mut at, "name")?).to_ascii_lowercase();
        let value = String::from_utf8_lossy(word(block, &mut at, "value")?).into_owned();
        pairs.push((name, value));
    }
    Ok(pairs)
}

/// Frames from the client's bytes, as they arrive.
#[derive(Default)]
pub struct Parser {
    buf: Vec<u8>,
    headers: HeaderInflater,
}

impl Parser {
    /// Takes bytes; returns the frames they complete.
    pub fn feed(&mut self, bytes: &[u8]) -> Result<Vec<Frame>, String> {
        self.buf.extend_from_slice(bytes);
        let mut frames = Vec::new();
        while let Some(head) = self.buf.get(..8) {
            let len = u32::from_be_bytes([0, head[5], head[6], head[7]]) as usize;
            if len > MAX_FRAME {
                return Err(format!("a SPDY frame of {len} bytes (at most {MAX_FRAME})"));
            }
            if self.buf.len() < 8 + len {
                break;
            }
            let frame: Vec<u8> = self.buf.drain(..8 + len).collect();
            frames.push(self.frame(&frame)?);
        }
        Ok(frames)
    }

    fn frame(&mut self, f: &[u8]) -> Result<Frame, String> {
        let flags = f[4];
        let body = &f[8..];
        let word = |at: usize| -> Result<u32, String> {
            body.get(at..at + 4)
                .map(|b| u32::from_be_bytes([b[0], b[1], b[2], b[3]]) & 0x7fff_ffff)
                .ok_or_else(|| "a SPDY control frame cut short".to_string())
        };
        if f[0] & 0x80 == 0 {
            let id = u32::from_be_bytes([f[0], f[1], f[2], f[3]]);
            return Ok(Frame::Data {
                id,
                fin: flags & FLAG_FIN != 0,
                data: body.to_vec(),
            });
        }
        let version = u16::from_be_bytes([f[0] & 0x7f, f[1]]);
        if version != 3 {
            return Err(format!("SPDY version {version} (only 3 is spoken)"));
        }
        let kind = u16::from_be_bytes([f[2], f[3]]);
        Ok(match kind {
            SYN_STREAM => {
                let id = word(0)?;
                let block = body.get(10..).ok_or("a SYN_STREAM cut short")?;
                let headers = parse_headers(&self.headers.inflate(block)?)?;
                Frame::SynStream {
                    id,
                    fin: flags & FLAG_FIN != 0,
                    headers,
                }
            }
            SYN_REPLY | HEADERS => {
                // Their header blocks belong to the same zlib stream.
                self.headers.inflate(body.get(4..).unwrap_or_default())?;
                Frame::Other
            }
            RST_STREAM => Frame::Reset { id: word(0)? },
            PING => Frame::Ping {
                id: u32::from_be_bytes(
                    body.get(..4)
                        .ok_or("a PING cut short")?
                        .try_into()
                        .expect("four bytes"),
                ),
            },
            GOAWAY => Frame::GoAway,
            SETTINGS | WINDOW_UPDATE => Frame::Other,
            _ => Frame::Other,
        })
    }
}

/// Writes skiff's frames; its header blocks are stored deflate blocks of one zlib stream.
#[derive(Default)]
pub struct Writer {
    started: bool,
}

impl Writer {
    fn control(kind: u16, flags: u8, body: &[u8]) -> Vec<u8> {
        let mut f = vec![0x80, 3];
        f.extend_from_slice(&kind.to_be_bytes());
        f.push(flags);
        f.extend_from_slice(&(body.len() as u32).to_be_bytes()[1..]);
        f.extend_from_slice(body);
        f
    }

    /// A header block with no headers.
    fn empty_headers(&mut self) -> Vec<u8> {
        let raw = 0u32.to_be_bytes();
        let mut z = Vec::new();
        if !std::mem::replace(&mut self.started, true) {
            z.extend_from_slice(&[0x78, 0x01]);
        }
        // A stored block (not final), then an empty one: the sync flush that makes a
        // reader hand out what it has (Go's flate keeps a block's bytes until then).
        for data in [&raw[..], &[]] {
            let len = data.len() as u16;
            z.push(0);
            z.extend_from_slice(&len.to_le_bytes());
            z.extend_from_slice(&(!len).to_le_bytes());
            z.extend_from_slice(data);
        }
        z
    }

    /// SYN_REPLY for stream `id`, with no headers.
    pub fn syn_reply(&mut self, id: u32) -> Vec<u8> {
        let mut body = id.to_be_bytes().to_vec();
        body.extend_from_slice(&self.empty_headers());
        Self::control(SYN_REPLY, 0, &body)
    }

    /// Data on stream `id` (`fin`: the last).
    pub fn data(id: u32, fin: bool, data: &[u8]) -> Vec<u8> {
        let mut f = (id & 0x7fff_ffff).to_be_bytes().to_vec();
        f.push(if fin { FLAG_FIN } else { 0 });
        f.extend_from_slice(&(data.len() as u32).to_be_bytes()[1..]);
        f.extend_from_slice(data);
        f
    }

    pub fn reset(id: u32, status: u32) -> Vec<u8> {
        let mut body = id.to_be_bytes().to_vec();
        body.extend_from_slice(&status.to_be_bytes());
        Self::control(RST_STREAM, 0, &body)
    }

    /// The answer to the client's PING.
    pub fn ping(id: u32) -> Vec<u8> {
        Self::control(PING, 0, &id.to_be_bytes())
    }

    pub fn goaway(last_id: u32) -> Vec<u8> {
        let mut body = last_id.to_be_bytes().to_vec();
        body.extend_from_slice(&0u32.to_be_bytes());
        Self::control(GOAWAY, 0, &body)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Header blocks as spdystream writes them: one zlib stream with SPDY's dictionary,
    /// sync-flushed per frame (made with Python's zlib, `zdict` = the dictionary):
    /// `port: 8080, requestid: 0, streamtype: error`, then `... streamtype: data`.
    const ERROR_BLOCK: &str = "78f9e3c6a7c202253a48f95b044eea16061606409ab308125f99a074cc68004e892545a989b9d0c2863515141500000000ffff";
    const DATA_BLOCK: &str = "225333a8a44a04000000ffff";

    fn hex(s: &str) -> Vec<u8> {
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    }

    fn syn_stream(id: u32, block: &[u8]) -> Vec<u8> {
        let mut body = id.to_be_bytes().to_vec();
        body.extend_from_slice(&[0, 0, 0, 0, 0, 0]);
        body.extend_from_slice(block);
        Writer::control(SYN_STREAM, 0, &body)
    }

    #[test]
    fn the_dictionary_is_spdy3s() {
        assert_eq!(dictionary().len(), 1423);
        assert_eq!(adler32(dictionary()), 0xe3c6_a7c2);
    }

    #[test]
    fn stream_headers_inflate_across_frames_in_any_cut() {
        let mut wire = syn_stream(1, &hex(ERROR_BLOCK));
        wire.extend(syn_stream(3, &hex(DATA_BLOCK)));
        wire.extend(Writer::data(3, true, b"GET /"));
        wire.extend(Writer::ping(1));
        for cut in [1, 7, 13, wire.len()] {
            let mut p = Parser::default();
            let mut frames = Vec::new();
            for chunk in wire.chunks(cut) {
                frames.extend(p.feed(chunk).unwrap());
            }
            let pairs = |t: &str| {
                vec![
                    ("port".to_string(), "8080".to_string()),
                    ("requestid".to_string(), "0".to_string()),
                    ("streamtype".to_string(), t.to_string()),
                ]
            };
            assert_eq!(
                frames,
                vec![
                    Frame::SynStream {
                        id: 1,
                        fin: false,
                        headers: pairs("error")
                    },
                    Frame::SynStream {
                        id: 3,
                        fin: false,
                        headers: pairs("data")
                    },
                    Frame::Data {
                        id: 3,
                        fin: true,
                        data: b"GET /".to_vec()
                    },
                    Frame::Ping { id: 1 },
                ],
                "cut every {cut} bytes"
            );
        }
    }

    #[test]
    fn bad_input_is_refused() {
        let mut huge = vec![0, 0, 0, 1, 0];
        huge.extend_from_slice(&((MAX_FRAME as u32 + 1).to_be_bytes()[1..]));
        assert!(Parser::default()
            .feed(&huge)
            .unwrap_err()
            .contains("at most"));
        let mut other_dict = hex(ERROR_BLOCK);
        other_dict[2] ^= 1;
        let e = Parser::default()
            .feed(&syn_stream(1, &other_dict))
            .unwrap_err();
        assert!(e.contains("not SPDY/3's"), "{e}");
        let e = Parser::default()
            .feed(&syn_stream(1, b"\x00\x01garbage"))
            .unwrap_err();
        assert!(e.contains("not a zlib stream"), "{e}");
        let mut v2 = Writer::ping(1);
        v2[1] = 2;
        assert!(Parser::default()
            .feed(&v2)
            .unwrap_err()
            .contains("version 2"));
        assert!(parse_headers(&[0, 0, 0, 1, 0, 0, 0, 9, b'x'])
            .unwrap_err()
            .contains("cut short"));
    }

    #[test]
    fn replies_are_a_zlib_stream_any_reader_takes() {
        let mut w = Writer::default();
        let mut z = Vec::new();
        for id in [1, 3] {
            let f = w.syn_reply(id);
            assert_eq!(&f[..4], &[0x80, 3, 0, 2]);
            assert_eq!(u32::from_be_bytes([f[8], f[9], f[10], f[11]]), id);
            // Each block ends in a sync flush, without which Go's reader holds the bytes.
            assert!(f.ends_with(&[0, 0, 0, 0xff, 0xff]));
            z.extend_from_slice(&f[12..]);
        }
        // Both blocks inflate, in order, to an empty header list.
        let mut inflater = HeaderInflater::default();
        assert_eq!(inflater.inflate(&z).unwrap(), vec![0; 8]);
    }
}

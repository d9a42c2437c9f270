//! Frames over QUIC streams: the length is checked before the body is allocated.

use serde::{de::DeserializeOwned, Serialize};
use skiff_api::wire::{decode_body, encode_frame, frame_len, FrameError};
use std::pin::Pin;
use std::task::{Context, Waker};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf};

/// Reading a frame failed.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    /// The frame itself is bad.
    #[error(transparent)]
    Frame(#[from] FrameError),
    /// The stream failed.
    #[error("stream: {0}")]
    Io(#[from] std::io::Error),
}

/// Reads one frame. `Ok(None)` when the stream ends cleanly before a frame starts.
pub async fn read_frame<T: DeserializeOwned, R: AsyncRead + Unpin>(
    r: &mut R,
    max: usize,
) -> Result<Option<T>, ReadError> {
    let mut header = [0u8; 4];
    let mut got = 0;
    while got < 4 {
        let n = r.read(&mut header[got..]).await?;
        if n == 0 {
            if got == 0 {
                return Ok(None);
            }
            return Err(FrameError::Truncated { got, want: 4 }.into());
        }
        got += n;
    }
    let len = frame_len(header, max)?;
    let mut body = vec![0u8; len];
    let mut got = 0;
    while got < len {
        let n = r.read(&mut body[got..]).await?;
        if n == 0 {
            return Err(FrameError::Truncated {
                got: 4 + got,
                want: 4 + len,
            }
            .into());
        }
        got += n;
    }
    Ok(Some(decode_body(&body)?))
}

/// Takes the end of a stream that the peer has already finished, without waiting for it.
/// A QUIC receive stream dropped before its end is read sends the peer a STOP_SENDING
/// frame: one per request for nothing. A peer that has not finished yet (or sent more
/// after the frame) is not waited for: that stream is then stopped as before.
pub fn take_end<R: AsyncRead + Unpin>(r: &mut R) {
    let mut byte = [0u8; 1];
    let mut buf = ReadBuf::new(&mut byte);
    let _ = Pin::new(r).poll_read(&mut Context::from_waker(Waker::noop()), &mut buf);
}

/// Writes one frame.
pub async fn write_frame<T: Serialize, W: AsyncWrite + Unpin>(
    w: &mut W,
    msg: &T,
) -> Result<(), ReadError> {
    let bytes = encode_frame(msg)?;
    w.write_all(&bytes).await?;
    Ok(())
}

//! Frames over QUIC streams: the length is checked before the body is allocated, and the
//! body is allocated as its bytes arrive.

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

/// How much of a frame's body is allocated ahead of the bytes that fill it.
const GROW_STEP: usize = 64 << 10;

/// Reads one frame. `Ok(None)` when the stream ends cleanly before a frame starts.
pub async fn read_frame<T: DeserializeOwned, R: AsyncRead + Unpin>(
    r: &mut R,
    max: usize,
) -> Result<Option<T>, ReadError> {
    let Some(len) = read_header(r, max).await? else {
        return Ok(None);
    };
    Ok(Some(read_body(r, len).await?))
}

/// Reads one frame whose body first takes its size from `budget` (in KiB, waiting for
/// it): what a peer's frames in flight on one connection can make the reader hold is
/// the budget, whatever the streams. The permit is the caller's until it lets go of the
/// request. `Ok(None)` when the stream ends cleanly before a frame starts.
pub async fn read_frame_within<'a, T: DeserializeOwned, R: AsyncRead + Unpin>(
    r: &mut R,
    max: usize,
    budget: &'a tokio::sync::Semaphore,
) -> Result<Option<(T, tokio::sync::SemaphorePermit<'a>)>, ReadError> {
    let Some(len) = read_header(r, max).await? else {
        return Ok(None);
    };
    let kib = u32::try_from(len.div_ceil(1024).max(1)).unwrap_or(u32::MAX);
    let permit = budget
        .acquire_many(kib)
        .await
        .map_err(|_| std::io::Error::other("the connection is closing"))?;
    Ok(Some((read_body(r, len).await?, permit)))
}

/// Reads a frame's length header, checked against `max`.
async fn read_header<R: AsyncRead + Unpin>(
    r: &mut R,
    max: usize,
) -> Result<Option<usize>, ReadError> {
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
    Ok(Some(frame_len(header, max)?))
}

/// Reads and decodes a body of `len` bytes.
async fn read_body<T: DeserializeOwned, R: AsyncRead + Unpin>(
    r: &mut R,
    len: usize,
) -> Result<T, ReadError> {
    // The body grows as it arrives: a peer that announces a large frame and stalls holds
    // what it sent, not what it announced.
    let mut body = Vec::with_capacity(len.min(GROW_STEP));
    while body.len() < len {
        let want = (len - body.len()).min(GROW_STEP);
        body.reserve_exact(want);
        let n = (&mut *r).take(want as u64).read_to_end(&mut body).await?;
        if n == 0 {
            return Err(FrameError::Truncated {
                got: 4 + body.len(),
                want: 4 + len,
            }
            .into());
        }
    }
    Ok(decode_body(&body)?)
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

#[cfg(test)]
mod budget_tests {
    use super::*;
    use std::time::Duration;

    #[tokio::test]
    async fn a_frame_waits_for_its_share_of_the_budget() {
        let frame = encode_frame(&"x".repeat(3000)).unwrap();
        let budget = tokio::sync::Semaphore::new(4); // KiB: one 3 KB frame at a time
        let (mut a, mut b) = (&frame[..], &frame[..]);
        let (first, permit) = read_frame_within::<String, _>(&mut a, 1 << 20, &budget)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(first.len(), 3000);
        assert_eq!(budget.available_permits(), 1);
        // The second waits while the first holds its share...
        let second = read_frame_within::<String, _>(&mut b, 1 << 20, &budget);
        tokio::pin!(second);
        assert!(tokio::time::timeout(Duration::from_millis(50), &mut second)
            .await
            .is_err());
        // ...and goes on once the first is answered.
        drop(permit);
        let (s, _p) = second.await.unwrap().unwrap();
        assert_eq!(s.len(), 3000);
    }
}

//! Length-prefixed frames: 4 bytes big-endian length, then the body.
//!
//! A body is read into a buffer that grows with the bytes that actually arrive, never
//! allocated at the announced length: a peer announcing 16 MiB and sending nothing costs
//! nothing (issue 10).

use std::io::{self, Read, Write};

/// Bytes read (and the buffer grown) at a time.
pub const READ_CHUNK: usize = 64 << 10;

/// Largest request rvsd accepts (a restore of tens of thousands of rules fits easily).
pub const MAX_REQUEST: usize = 16 << 20;
/// Largest reply a client accepts (a connection listing of millions of entries).
pub const MAX_REPLY: usize = 1 << 30;

#[derive(Debug, thiserror::Error)]
pub enum FrameError {
    #[error("{0}")]
    Io(#[from] io::Error),
    #[error("frame of {len} bytes exceeds the limit of {max}")]
    TooLarge { len: usize, max: usize },
    #[error("malformed message: {0}")]
    Json(#[from] serde_json::Error),
    #[error("connection closed")]
    Closed,
    /// The reader's memory budget is spent by other requests being read.
    #[error("too many large requests are being read at once; try again")]
    Busy,
}

pub fn write_frame<W: Write>(w: &mut W, body: &[u8]) -> Result<(), FrameError> {
    let len = u32::try_from(body.len()).map_err(|_| FrameError::TooLarge {
        len: body.len(),
        max: u32::MAX as usize,
    })?;
    w.write_all(&len.to_be_bytes())?;
    w.write_all(body)?;
    w.flush()?;
    Ok(())
}

pub fn read_frame<R: Read>(r: &mut R, max: usize) -> Result<Vec<u8>, FrameError> {
    let mut hdr = [0u8; 4];
    match r.read_exact(&mut hdr) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Err(FrameError::Closed),
        Err(e) => return Err(e.into()),
    }
    let len = u32::from_be_bytes(hdr) as usize;
    if len > max {
        return Err(FrameError::TooLarge { len, max });
    }
    let mut body = Vec::new();
    while body.len() < len {
        let want = (len - body.len()).min(READ_CHUNK);
        let n = r.take(want as u64).read_to_end(&mut body)?;
        if n == 0 {
            return Err(io::Error::from(io::ErrorKind::UnexpectedEof).into());
        }
    }
    Ok(body)
}

#[cfg(feature = "tokio")]
pub async fn read_frame_async<R: tokio::io::AsyncRead + Unpin>(
    r: &mut R,
    max: usize,
) -> Result<Vec<u8>, FrameError> {
    use tokio::io::AsyncReadExt;
    let mut hdr = [0u8; 4];
    match r.read_exact(&mut hdr).await {
        Ok(_) => {}
        Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Err(FrameError::Closed),
        Err(e) => return Err(e.into()),
    }
    let len = u32::from_be_bytes(hdr) as usize;
    if len > max {
        return Err(FrameError::TooLarge { len, max });
    }
    read_body_async(r, len, |_| true).await
}

/// Reads a body of `len` bytes, growing the buffer [`READ_CHUNK`] at a time as bytes
/// arrive. `grow(n)` is asked before the buffer grows by `n` bytes (a budget shared by
/// the readers of a server); `false` ends the read with [`FrameError::Busy`].
#[cfg(feature = "tokio")]
pub async fn read_body_async<R: tokio::io::AsyncRead + Unpin>(
    r: &mut R,
    len: usize,
    mut grow: impl FnMut(usize) -> bool,
) -> Result<Vec<u8>, FrameError> {
    use tokio::io::AsyncReadExt;
    let mut body: Vec<u8> = Vec::new();
    while body.len() < len {
        let want = (len - body.len()).min(READ_CHUNK);
        if body.capacity() - body.len() < want {
            let extra = want.max(body.capacity().min(len - body.len()));
            if !grow(extra) {
                return Err(FrameError::Busy);
            }
            body.reserve_exact(extra);
        }
        let n = (&mut *r).take(want as u64).read_buf(&mut body).await?;
        if n == 0 {
            return Err(io::Error::from(io::ErrorKind::UnexpectedEof).into());
        }
    }
    Ok(body)
}

#[cfg(feature = "tokio")]
pub async fn write_frame_async<W: tokio::io::AsyncWrite + Unpin>(
    w: &mut W,
    body: &[u8],
) -> Result<(), FrameError> {
    use tokio::io::AsyncWriteExt;
    let len = u32::try_from(body.len()).map_err(|_| FrameError::TooLarge {
        len: body.len(),
        max: u32::MAX as usize,
    })?;
    w.write_all(&len.to_be_bytes()).await?;
    w.write_all(body).await?;
    w.flush().await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frame_round_trip_and_limit() {
        let mut buf = Vec::new();
        write_frame(&mut buf, b"{\"a\":1}").unwrap();
        assert_eq!(&buf[..4], &[0, 0, 0, 7]);
        let got = read_frame(&mut &buf[..], 100).unwrap();
        assert_eq!(got, b"{\"a\":1}");
        assert!(matches!(
            read_frame(&mut &buf[..], 3),
            Err(FrameError::TooLarge { len: 7, max: 3 })
        ));
        assert!(matches!(
            read_frame(&mut &b""[..], 3),
            Err(FrameError::Closed)
        ));
    }

    /// A reader that says how many bytes it handed out, then ends.
    struct Trickle(usize);
    impl Read for Trickle {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            let n = buf.len().min(self.0).min(1000);
            buf[..n].fill(b' ');
            self.0 -= n;
            Ok(n)
        }
    }

    #[test]
    fn a_truncated_body_is_an_error_and_the_buffer_follows_the_bytes_sent() {
        // 16 MiB announced, 3000 bytes sent: an unexpected end, not a 16 MiB buffer.
        let mut hdr = (16u32 << 20).to_be_bytes().to_vec();
        hdr.extend_from_slice(&[b' '; 3000]);
        match read_frame(&mut &hdr[..], 16 << 20) {
            Err(FrameError::Io(e)) => assert_eq!(e.kind(), io::ErrorKind::UnexpectedEof),
            other => panic!("{other:?}"),
        }
        let mut full = 200_000u32.to_be_bytes().to_vec();
        full.extend_from_slice(&[b' '; 200_000]);
        let mut r = full.chain(Trickle(0));
        assert_eq!(read_frame(&mut r, 1 << 20).unwrap().len(), 200_000);
    }

    #[cfg(feature = "tokio")]
    #[tokio::test]
    async fn the_async_reader_asks_its_budget_before_each_growth() {
        let mut data = vec![b'x'; 300_000];
        let mut asked = Vec::new();
        let body = read_body_async(&mut &data[..], 300_000, |n| {
            asked.push(n);
            true
        })
        .await
        .unwrap();
        assert_eq!(body.len(), 300_000);
        assert!(asked.iter().sum::<usize>() >= 300_000);
        assert!(asked[0] <= READ_CHUNK, "{asked:?}");
        // A budget that says no ends the read.
        data.truncate(100_000);
        let r = read_body_async(&mut &data[..], 100_000, |n| n < 1).await;
        assert!(matches!(r, Err(FrameError::Busy)));
    }
}

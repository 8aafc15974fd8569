//! Reading the first bytes of a connection under a deadline, then handing them back.
//!
//! hyper-util's auto server reads up to 24 bytes to tell HTTP/1.1 from h2 before any of
//! hyper's timers run, so a client that connects and sends nothing would hold the
//! connection forever. We read those bytes ourselves, bounded by `header_read_timeout`,
//! and replay them through [`Prefixed`].

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::{Buf, Bytes, BytesMut};
use pin_project_lite::pin_project;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, ReadBuf};

const H2_PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

/// Reads until the protocol can be told (the h2 preface, or the first byte that departs from
/// it). `Ok(None)`: the client closed or sent nothing in time.
pub(super) async fn read_preface<S: AsyncRead + Unpin>(
    stream: &mut S,
    timeout: Duration,
) -> io::Result<Option<Bytes>> {
    let mut buf = BytesMut::with_capacity(H2_PREFACE.len());
    let decided = tokio::time::timeout(timeout, async {
        loop {
            if stream.read_buf(&mut buf).await? == 0 {
                return Ok::<bool, io::Error>(false);
            }
            if buf.len() >= H2_PREFACE.len() || !H2_PREFACE.starts_with(&buf) {
                return Ok(true);
            }
        }
    })
    .await;
    match decided {
        Ok(Ok(true)) => Ok(Some(buf.freeze())),
        Ok(Ok(false)) | Err(_) => Ok(None),
        Ok(Err(e)) => Err(e),
    }
}

pin_project! {
    /// A stream whose first bytes were already read: they are replayed before the rest.
    pub struct Prefixed<S> {
        prefix: Bytes,
        #[pin]
        inner: S,
    }
}

impl<S> Prefixed<S> {
    /// Replays `prefix`, then reads from `inner`.
    pub(super) fn new(prefix: Bytes, inner: S) -> Self {
        Prefixed { prefix, inner }
    }
}

impl<S: AsyncRead> AsyncRead for Prefixed<S> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.project();
        if this.prefix.has_remaining() {
            let n = this.prefix.len().min(buf.remaining());
            buf.put_slice(&this.prefix[..n]);
            this.prefix.advance(n);
            return Poll::Ready(Ok(()));
        }
        this.inner.poll_read(cx, buf)
    }
}

impl<S: AsyncWrite> AsyncWrite for Prefixed<S> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        self.project().inner.poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        self.project().inner.poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.project().inner.poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.project().inner.poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::AsyncWriteExt;

    #[tokio::test]
    async fn http1_is_decided_on_the_first_byte_and_replayed() {
        let (mut client, mut server) = tokio::io::duplex(64);
        client.write_all(b"GET / HTTP/1.1\r\n").await.unwrap();
        let prefix = read_preface(&mut server, Duration::from_secs(5))
            .await
            .unwrap()
            .unwrap();
        assert!(!prefix.is_empty());
        let mut replayed = Prefixed::new(prefix, server);
        let mut line = [0u8; 16];
        replayed.read_exact(&mut line).await.unwrap();
        assert_eq!(&line, b"GET / HTTP/1.1\r\n");
    }

    #[tokio::test]
    async fn a_partial_h2_preface_waits_for_the_rest() {
        let (mut client, mut server) = tokio::io::duplex(64);
        client.write_all(&H2_PREFACE[..5]).await.unwrap();
        let reader =
            tokio::spawn(async move { read_preface(&mut server, Duration::from_secs(5)).await });
        client.write_all(&H2_PREFACE[5..]).await.unwrap();
        assert_eq!(reader.await.unwrap().unwrap().unwrap(), H2_PREFACE);
    }

    #[tokio::test]
    async fn silence_and_close_give_none() {
        let (_client, mut server) = tokio::io::duplex(64);
        assert!(
            read_preface(&mut server, Duration::from_millis(20))
                .await
                .unwrap()
                .is_none()
        );
        let (client, mut server) = tokio::io::duplex(64);
        drop(client);
        assert!(
            read_preface(&mut server, Duration::from_secs(5))
                .await
                .unwrap()
                .is_none()
        );
    }
}

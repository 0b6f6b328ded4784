//! The listener's connection limit: past `max_connections`, further connections wait in the
//! kernel's accept queue until one closes, instead of each taking memory and a task.

use std::{
    io,
    pin::Pin,
    sync::Arc,
    task::{Context, Poll},
};

use pin_project_lite::pin_project;
use tokio::{
    io::{AsyncRead, AsyncWrite, ReadBuf},
    net::TcpStream,
    sync::{OwnedSemaphorePermit, Semaphore},
};
use tokio_stream::{Stream, StreamExt};
use tonic::transport::server::{Connected, TcpConnectInfo};

pin_project! {
    /// A connection that holds one of the listener's permits until it closes.
    pub(crate) struct Limited {
        #[pin]
        stream: TcpStream,
        _permit: OwnedSemaphorePermit,
    }
}

impl Connected for Limited {
    // The TCP stream's own, so the peer address and TLS details read the same as without a
    // limit.
    type ConnectInfo = TcpConnectInfo;

    fn connect_info(&self) -> Self::ConnectInfo {
        self.stream.connect_info()
    }
}

impl AsyncRead for Limited {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        self.project().stream.poll_read(cx, buf)
    }
}

impl AsyncWrite for Limited {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        self.project().stream.poll_write(cx, buf)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.project().stream.poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.project().stream.poll_shutdown(cx)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        self.project().stream.poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }
}

/// `incoming`, accepting a connection only while fewer than `max` are open.
pub(crate) fn limit_connections<S>(
    incoming: S,
    max: usize,
) -> impl Stream<Item = io::Result<Limited>> + Send + 'static
where
    S: Stream<Item = io::Result<TcpStream>> + Send + Unpin + 'static,
{
    let permits = Arc::new(Semaphore::new(max.max(1)));
    Box::pin(futures_util::stream::unfold(
        (incoming, permits),
        |(mut incoming, permits)| async move {
            // A permit first: at the limit, nothing more is accepted until a connection ends.
            let permit = Arc::clone(&permits).acquire_owned().await.ok()?;
            let accepted = incoming.next().await?;
            let item = accepted.map(|stream| Limited {
                stream,
                _permit: permit,
            });
            Some((item, (incoming, permits)))
        },
    ))
}

use std::{
    pin::Pin,
    sync::Arc,
    task::{Context, Poll},
};

use bytes::{Bytes, BytesMut};
use http::HeaderMap;
use http_body::{Body, Frame, SizeHint};
use warden_core::{AnswerFuture, BoxError};

use super::{
    decode::{announced_too_large, decode_frame, truncated},
    stream::StreamChecks,
};
use crate::{
    grpc::{Encoding, FrameHeader},
    map::MethodSpec,
    rejection::{Code, Rejection},
};

/// The request body after classification: the bytes already read are replayed unchanged, then
/// the rest of the body follows. For client streams each later message is decoded and
/// authorized before it is released; a denied message ends the body with an error and never
/// reaches the handler.
pub struct ClassifiedBody<B> {
    inner: B,
    ready: Option<Bytes>,
    held: BytesMut,
    // Boxed, as the inspector: request trailers are rare, and the body is moved with the
    // request through every layer.
    trailers: Option<Box<HeaderMap>>,
    inner_done: bool,
    failed: bool,
    inspector: Option<Box<Inspector>>,
}

pub(crate) struct Inspector {
    pub(crate) spec: Arc<MethodSpec>,
    pub(crate) encoding: Result<Encoding, String>,
    pub(crate) max_message_size: usize,
    pub(crate) checks: Arc<StreamChecks>,
    pub(crate) next_index: u64,
    pending: Option<(Bytes, AnswerFuture<Result<(), Rejection>>)>,
}

impl Inspector {
    pub(crate) fn new(
        spec: Arc<MethodSpec>,
        encoding: Result<Encoding, String>,
        max_message_size: usize,
        checks: Arc<StreamChecks>,
        next_index: u64,
    ) -> Self {
        Self {
            spec,
            encoding,
            max_message_size,
            checks,
            next_index,
            pending: None,
        }
    }
}

impl<B> std::fmt::Debug for ClassifiedBody<B> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClassifiedBody")
            .field("inspecting", &self.inspector.is_some())
            .finish_non_exhaustive()
    }
}

impl<B> ClassifiedBody<B> {
    pub(crate) fn new(
        inner: B,
        ready: Option<Bytes>,
        held: BytesMut,
        trailers: Option<HeaderMap>,
        inner_done: bool,
        inspector: Option<Inspector>,
    ) -> Self {
        Self {
            inner,
            ready: ready.filter(|b| !b.is_empty()),
            held,
            trailers: trailers.map(Box::new),
            inner_done,
            failed: false,
            inspector: inspector.map(Box::new),
        }
    }

    pub(crate) fn passthrough(inner: B) -> Self {
        Self::new(inner, None, BytesMut::new(), None, false, None)
    }

    fn fail(&mut self, rejection: Rejection) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        self.failed = true;
        if let Some(inspector) = &self.inspector {
            let _ = inspector.checks.denial.set(rejection.clone());
        }
        Poll::Ready(Some(Err(Box::new(rejection))))
    }
}

enum Step {
    Emit(Bytes),
    Fail(Rejection),
    NeedMore,
    Wait,
}

impl Inspector {
    /// Moves the stream forward by at most one message.
    fn step(&mut self, held: &mut BytesMut, cx: &mut Context<'_>) -> Step {
        if let Some((frame, check)) = &mut self.pending {
            return match Pin::new(check).poll(cx) {
                Poll::Pending => Step::Wait,
                Poll::Ready(Ok(())) => {
                    let frame = frame.clone();
                    self.pending = None;
                    Step::Emit(frame)
                }
                Poll::Ready(Err(rejection)) => Step::Fail(rejection),
            };
        }
        let header = match FrameHeader::parse(held) {
            Err(reason) => return Step::Fail(Rejection::new(Code::InvalidArgument, reason)),
            Ok(None) => return Step::NeedMore,
            Ok(Some(header)) => header,
        };
        if header.len > self.max_message_size {
            return Step::Fail(announced_too_large(header.len, self.max_message_size));
        }
        if held.len() < header.frame_len() {
            return Step::NeedMore;
        }
        let frame = held.split_to(header.frame_len()).freeze();
        let operation = match decode_frame(
            &self.spec,
            &self.encoding,
            self.max_message_size,
            &frame,
            header.compressed,
        ) {
            Ok(operation) => operation,
            Err(rejection) => return Step::Fail(rejection),
        };
        let index = self.next_index;
        self.next_index += 1;
        match self.checks.check(operation, index) {
            warden_core::Answer::Ready(Ok(())) => Step::Emit(frame),
            warden_core::Answer::Ready(Err(rejection)) => Step::Fail(rejection),
            warden_core::Answer::Pending(check) => {
                self.pending = Some((frame, AnswerFuture::Pending(check)));
                self.step(held, cx)
            }
        }
    }
}

use std::future::Future;

impl<B> Body for ClassifiedBody<B>
where
    B: Body<Data = Bytes> + Unpin,
    B::Error: Into<BoxError>,
{
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let this = self.get_mut();
        if this.failed {
            return Poll::Ready(None);
        }
        loop {
            if let Some(data) = this.ready.take() {
                return Poll::Ready(Some(Ok(Frame::data(data))));
            }
            match &mut this.inspector {
                Some(inspector) => match inspector.step(&mut this.held, cx) {
                    Step::Emit(frame) => return Poll::Ready(Some(Ok(Frame::data(frame)))),
                    Step::Fail(rejection) => return this.fail(rejection),
                    Step::Wait => return Poll::Pending,
                    Step::NeedMore => {}
                },
                None if !this.held.is_empty() => {
                    return Poll::Ready(Some(Ok(Frame::data(this.held.split().freeze()))));
                }
                None => {}
            }
            if this.inner_done {
                if !this.held.is_empty() {
                    let need = FrameHeader::parse(&this.held)
                        .ok()
                        .flatten()
                        .map(|h| h.frame_len());
                    let have = this.held.len();
                    return this.fail(truncated(have, need));
                }
                return Poll::Ready(this.trailers.take().map(|t| Ok(Frame::trailers(*t))));
            }
            match Pin::new(&mut this.inner).poll_frame(cx) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(None) => this.inner_done = true,
                Poll::Ready(Some(Err(error))) => return Poll::Ready(Some(Err(error.into()))),
                Poll::Ready(Some(Ok(frame))) => match frame.into_data() {
                    Ok(data) if this.inspector.is_some() => this.held.extend_from_slice(&data),
                    Ok(data) => return Poll::Ready(Some(Ok(Frame::data(data)))),
                    Err(frame) => {
                        if let Ok(trailers) = frame.into_trailers() {
                            this.trailers = Some(Box::new(trailers));
                        }
                        this.inner_done = true;
                    }
                },
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.failed
            || (self.ready.is_none()
                && self.held.is_empty()
                && self.trailers.is_none()
                && (self.inner_done || self.inner.is_end_stream()))
    }

    fn size_hint(&self) -> SizeHint {
        if self.inspector.is_some() {
            return SizeHint::default();
        }
        let buffered = (self.ready.as_ref().map_or(0, Bytes::len) + self.held.len()) as u64;
        if self.inner_done {
            return SizeHint::with_exact(buffered);
        }
        let inner = self.inner.size_hint();
        let mut hint = SizeHint::new();
        hint.set_lower(inner.lower() + buffered);
        if let Some(upper) = inner.upper() {
            hint.set_upper(upper + buffered);
        }
        hint
    }
}

//! The response body of Warden's layers: the inner service's body, or a refusal's.

use std::{
    pin::Pin,
    sync::{Arc, OnceLock},
    task::{Context, Poll, ready},
};

use bytes::Bytes;
use http::{HeaderMap, HeaderValue};
use http_body::{Body, Frame, SizeHint};
use pin_project_lite::pin_project;

use warden_core::Protocol;

use crate::rejection::{Rejection, SharedResponder};

pin_project! {
    /// The body of a response that passed through Warden: the inner service's body, or the
    /// fixed body of a refusal.
    ///
    /// When a later message of a client stream is denied after the handler started, the call
    /// still ends with that denial: the status in the trailers is replaced, whatever the
    /// handler answered, and an error of the handler's body (an upstream that reset its stream
    /// when the request was cut) becomes those trailers instead of a reset.
    pub struct ResponseBody<B> {
        #[pin]
        kind: Kind<B>,
        stream_denial: Option<Box<(Arc<StreamDenial>, SharedResponder)>>,
        trailers_sent: bool,
    }
}

pin_project! {
    #[project = KindProj]
    enum Kind<B> {
        Inner { #[pin] body: B },
        Full { data: Option<Bytes> },
    }
}

impl<B> ResponseBody<B> {
    pub(crate) fn inner(body: B) -> Self {
        Self {
            kind: Kind::Inner { body },
            stream_denial: None,
            trailers_sent: false,
        }
    }

    pub(crate) fn full(data: Bytes) -> Self {
        Self {
            kind: Kind::Full {
                data: (!data.is_empty()).then_some(data),
            },
            stream_denial: None,
            trailers_sent: false,
        }
    }

    /// Ends the response with the stream's denial, answered by `responder`, if a later
    /// request message is denied.
    pub(crate) fn watching(
        mut self,
        denial: Arc<StreamDenial>,
        responder: SharedResponder,
    ) -> Self {
        self.stream_denial = Some(Box::new((denial, responder)));
        self
    }
}

impl<B> std::fmt::Debug for ResponseBody<B> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ResponseBody").finish_non_exhaustive()
    }
}

impl<B> Body for ResponseBody<B>
where
    B: Body<Data = Bytes>,
{
    type Data = Bytes;
    type Error = B::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        let this = self.project();
        match this.kind.project() {
            KindProj::Full { data } => Poll::Ready(data.take().map(|d| Ok(Frame::data(d)))),
            KindProj::Inner { body } => {
                // The denial's trailers ended the response; the inner body is not asked again.
                if *this.trailers_sent {
                    return Poll::Ready(None);
                }
                let frame = ready!(body.poll_frame(cx));
                let Some((denial, responder)) = this
                    .stream_denial
                    .as_deref()
                    .and_then(|(d, r)| Some((d.get()?, r)))
                else {
                    return Poll::Ready(frame);
                };
                match frame {
                    Some(Ok(frame)) if frame.is_trailers() => {
                        let mut trailers = frame.into_trailers().unwrap_or_default();
                        overwrite_status(&mut trailers, responder, denial);
                        *this.trailers_sent = true;
                        Poll::Ready(Some(Ok(Frame::trailers(trailers))))
                    }
                    // The handler's body ended, or failed because the request stream was
                    // cut at the denied message (a proxied upstream resets its stream then):
                    // either way the call ends with the denial, not a reset.
                    None | Some(Err(_)) => {
                        *this.trailers_sent = true;
                        let mut trailers = HeaderMap::new();
                        overwrite_status(&mut trailers, responder, denial);
                        Poll::Ready(Some(Ok(Frame::trailers(trailers))))
                    }
                    other => Poll::Ready(other),
                }
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        match &self.kind {
            Kind::Inner { body } => {
                body.is_end_stream()
                    && (self.trailers_sent
                        || self
                            .stream_denial
                            .as_deref()
                            .is_none_or(|(d, _)| d.get().is_none()))
            }
            Kind::Full { data } => data.is_none(),
        }
    }

    fn size_hint(&self) -> SizeHint {
        match &self.kind {
            Kind::Inner { body } => body.size_hint(),
            Kind::Full { data } => {
                SizeHint::with_exact(data.as_ref().map_or(0, |d| d.len() as u64))
            }
        }
    }
}

/// Replaces the handler's status with the denial, as the configured responder answers it (its
/// error details included: Temporal's SDKs read them).
fn overwrite_status(trailers: &mut HeaderMap, responder: &SharedResponder, denial: &Rejection) {
    let response = responder.respond(denial, Protocol::Grpc);
    for name in ["grpc-status", "grpc-message", "grpc-status-details-bin"] {
        match response.headers().get(name) {
            Some(value) => {
                trailers.insert(name, value.clone());
            }
            None => {
                trailers.remove(name);
            }
        }
    }
    trailers
        .entry("grpc-status")
        .or_insert_with(|| HeaderValue::from_static("7"));
}

/// The first denial of a later stream message, shared by the request body that found it and
/// the response body that reports it.
pub(crate) type StreamDenial = OnceLock<Rejection>;

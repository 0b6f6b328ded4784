//! Reading the request body up to what classification needs: the first message (and, for
//! single-message methods, the end of the body), or a whole JSON body.

use super::*;

pub(super) enum Target {
    FirstMessage {
        spec: Arc<MethodSpec>,
        encoding: Result<Encoding, String>,
    },
    // Boxed: HTTP routes with JSON arguments are the rare path; keep the gRPC state small.
    WholeJson {
        operation: Box<Operation>,
    },
}

/// The refusal of a single-message call whose body carries more than one message.
#[cold]
pub(super) fn second_message(operation: &Operation) -> Read {
    Read::Refuse(
        Rejection::new(
            Code::InvalidArgument,
            format!(
                "{}/{} takes one request message, but the request carries more than one",
                operation.service, operation.method
            ),
        ),
        Protocol::Grpc,
    )
}

/// What has been read of a request body so far, and what it is read for.
pub(super) struct Reader {
    pub(super) buf: BytesMut,
    pub(super) trailers: Option<HeaderMap>,
    pub(super) target: Target,
    /// The one message of a unary or server-streaming call, judged, until the body ends.
    pub(super) judged: Option<(Arc<Operation>, Option<Bytes>)>,
    /// Listed the first time the body is not ready.
    pub(super) wait: Option<Wait>,
}

/// What reading produced.
pub(super) enum Read {
    Proceed {
        operation: Arc<Operation>,
        replay: Option<Bytes>,
        done: bool,
    },
    Refuse(Rejection, Protocol),
}

impl Reader {
    pub(super) fn new(target: Target) -> Self {
        Self {
            buf: BytesMut::new(),
            trailers: None,
            target,
            judged: None,
            wait: None,
        }
    }

    pub(super) fn poll_read<B>(
        &mut self,
        body: &mut B,
        config: &Config,
        cx: &mut Context<'_>,
    ) -> Poll<Read>
    where
        B: Body<Data = Bytes> + Unpin,
        B::Error: Into<BoxError>,
    {
        let protocol = match self.target {
            Target::FirstMessage { .. } => Protocol::Grpc,
            Target::WholeJson { .. } => Protocol::Http,
        };
        let limit = config.max_message_size;
        loop {
            let mut done = false;
            match Pin::new(&mut *body).poll_frame(cx) {
                Poll::Pending => return self.wait(config, cx, protocol),
                Poll::Ready(None) => done = true,
                Poll::Ready(Some(Err(error))) => {
                    let error: BoxError = error.into();
                    let rejection = Rejection::new(
                        Code::Cancelled,
                        format!("reading the request body failed: {error}"),
                    );
                    return Poll::Ready(Read::Refuse(rejection, protocol));
                }
                Poll::Ready(Some(Ok(frame))) => match frame.into_data() {
                    Ok(data) if self.judged.is_some() => {
                        if !data.is_empty()
                            && let Some((operation, _)) = &self.judged
                        {
                            return Poll::Ready(second_message(operation));
                        }
                    }
                    Ok(data) => {
                        // The common case: the first DATA frame holds the whole message, so
                        // it is decoded and replayed without a copy.
                        if let Some(read) = self.whole_first_message(&data, config) {
                            match self.settle(read, false) {
                                Some(read) => return Poll::Ready(read),
                                None => continue,
                            }
                        }
                        self.buf.extend_from_slice(&data);
                    }
                    Err(frame) => {
                        self.trailers = frame.into_trailers().ok();
                        done = true;
                    }
                },
            }
            if done && let Some((operation, replay)) = self.judged.take() {
                return Poll::Ready(Read::Proceed {
                    operation,
                    replay,
                    done: true,
                });
            }
            if self.judged.is_some() {
                continue;
            }
            match &self.target {
                Target::FirstMessage { .. } => {
                    let header = match FrameHeader::parse(&self.buf) {
                        Err(reason) => {
                            return Poll::Ready(Read::Refuse(
                                Rejection::new(Code::InvalidArgument, reason),
                                protocol,
                            ));
                        }
                        Ok(header) => header,
                    };
                    if let Some(header) = header {
                        if header.len > limit {
                            return Poll::Ready(Read::Refuse(
                                announced_too_large(header.len, limit),
                                protocol,
                            ));
                        }
                        if self.buf.len() >= header.frame_len() {
                            let read = self.first_message(header, done, config);
                            match self.settle(read, done) {
                                Some(read) => return Poll::Ready(read),
                                None => continue,
                            }
                        }
                    }
                    if done {
                        return Poll::Ready(self.ended_early(header));
                    }
                }
                Target::WholeJson { .. } => {
                    if self.buf.len() > limit {
                        return Poll::Ready(Read::Refuse(too_large(limit, "request "), protocol));
                    }
                    if done {
                        return Poll::Ready(self.whole_json());
                    }
                }
            }
        }
    }

    /// Decodes the first message straight from `data` when nothing is buffered yet and `data`
    /// holds all of it; `None` leaves every other case to the buffered path.
    pub(super) fn whole_first_message(&mut self, data: &Bytes, config: &Config) -> Option<Read> {
        let Target::FirstMessage { .. } = self.target else {
            return None;
        };
        if !self.buf.is_empty() {
            return None;
        }
        let header = FrameHeader::parse(data).ok()??;
        if header.len > config.max_message_size || data.len() < header.frame_len() {
            return None;
        }
        // Whatever follows the first message (rare in one DATA frame) is replayed after it.
        if data.len() > header.frame_len() {
            self.buf.extend_from_slice(&data[header.frame_len()..]);
        }
        Some(self.decode_first(
            header,
            data.slice(..header.frame_len()),
            false,
            config.max_message_size,
        ))
    }

    /// What a decoded first message leads to. A client stream goes on at once, its later
    /// messages judged as they come. A unary or server-streaming call takes one message, so it
    /// goes on only once its body has ended with nothing after that message: a second one
    /// could ask for something else, and it would reach the handler unjudged.
    pub(super) fn settle(&mut self, read: Read, done: bool) -> Option<Read> {
        let Target::FirstMessage { spec, .. } = &self.target else {
            return Some(read);
        };
        if spec.is_client_streaming() {
            return Some(read);
        }
        let Read::Proceed {
            operation, replay, ..
        } = read
        else {
            return Some(read);
        };
        if !self.buf.is_empty() {
            return Some(second_message(&operation));
        }
        if done {
            return Some(Read::Proceed {
                operation,
                replay,
                done: true,
            });
        }
        self.judged = Some((operation, replay));
        None
    }

    /// The body is not ready: start (or check) the first-message deadline.
    pub(super) fn wait(
        &mut self,
        config: &Config,
        cx: &mut Context<'_>,
        protocol: Protocol,
    ) -> Poll<Read> {
        let deadlines = &config.deadlines;
        if deadlines.poll(&mut self.wait, cx).is_pending() {
            return Poll::Pending;
        }
        let what = match protocol {
            Protocol::Grpc => "the first message",
            _ => "the request body",
        };
        Poll::Ready(Read::Refuse(
            Rejection::new(
                Code::DeadlineExceeded,
                format!("{what} did not arrive within {:?}", deadlines.timeout()),
            ),
            protocol,
        ))
    }

    pub(super) fn first_message(
        &mut self,
        header: FrameHeader,
        done: bool,
        config: &Config,
    ) -> Read {
        let frame = self.buf.split_to(header.frame_len()).freeze();
        self.decode_first(header, frame, done, config.max_message_size)
    }

    pub(super) fn decode_first(
        &self,
        header: FrameHeader,
        frame: Bytes,
        done: bool,
        limit: usize,
    ) -> Read {
        let Target::FirstMessage { spec, encoding } = &self.target else {
            unreachable!("first_message on a non-gRPC read");
        };
        let operation = match decode_frame(spec, encoding, limit, &frame, header.compressed) {
            Ok(operation) => operation,
            Err(rejection) => return Read::Refuse(rejection, Protocol::Grpc),
        };
        Read::Proceed {
            operation,
            replay: Some(frame),
            done,
        }
    }

    pub(super) fn ended_early(&mut self, header: Option<FrameHeader>) -> Read {
        let Target::FirstMessage { spec, .. } = &self.target else {
            unreachable!("ended_early on a non-gRPC read");
        };
        if !self.buf.is_empty() {
            return Read::Refuse(
                truncated(self.buf.len(), header.map(|h| h.frame_len())),
                Protocol::Grpc,
            );
        }
        if !spec.is_client_streaming() {
            let rejection = Rejection::new(
                Code::InvalidArgument,
                format!(
                    "the request has no message, but {}/{} needs one",
                    spec.service(),
                    spec.method()
                ),
            );
            return Read::Refuse(rejection, Protocol::Grpc);
        }
        // An empty client stream: authorize the method itself.
        let operation = Arc::new(spec.operation());
        Read::Proceed {
            operation,
            replay: None,
            done: true,
        }
    }

    pub(super) fn whole_json(&mut self) -> Read {
        let Target::WholeJson { operation } = &mut self.target else {
            unreachable!("whole_json on a gRPC read");
        };
        let mut operation = mem::replace(
            &mut **operation,
            Operation::new(OperationKind::Other, "", ""),
        );
        if !self.buf.is_empty() {
            match serde_json::from_slice(&self.buf) {
                Ok(args) => operation.args = warden_core::Args::from_value(args),
                Err(error) => {
                    let rejection = Rejection::new(
                        Code::InvalidArgument,
                        format!("the request body is not valid JSON: {error}"),
                    );
                    return Read::Refuse(rejection, Protocol::Http);
                }
            }
        }
        Read::Proceed {
            operation: Arc::new(operation),
            replay: Some(self.buf.split().freeze()),
            done: true,
        }
    }

    /// The request's parts and replaying body with Warden's record of the call, and the
    /// shared stream-denial slot when later messages are checked.
    pub(super) fn into_classified<B>(
        self,
        parts: &Parts,
        body: B,
        config: &Arc<Config>,
        operation: Arc<Operation>,
        replay: Option<Bytes>,
        done: bool,
    ) -> (ClassifiedBody<B>, Call, Option<Arc<StreamDenial>>) {
        let Self {
            buf,
            trailers,
            target,
            judged: _,
            wait: _,
        } = self;
        let (protocol, inspect) = match target {
            Target::FirstMessage { spec, encoding } => (
                Protocol::Grpc,
                spec.is_client_streaming().then_some((spec, encoding)),
            ),
            Target::WholeJson { .. } => (Protocol::Http, None),
        };
        let context = config.context(protocol, &parts.extensions);
        // A client stream's later messages are judged after the headers went on: its checks
        // keep a copy of the metadata, once per stream.
        let checks = inspect.as_ref().map(|_| {
            let metadata = Metadata::new(parts.headers.clone());
            Arc::new(StreamChecks::new(context.clone().with_metadata(metadata)))
        });
        let call = config.call(operation, context, checks.clone());
        let denial = checks.as_ref().map(|c| Arc::clone(&c.denial));
        let inspector = inspect.zip(checks).map(|((spec, encoding), checks)| {
            Inspector::new(spec, encoding, config.max_message_size, checks, 1)
        });
        let body = ClassifiedBody::new(body, replay, buf, trailers, done, inspector);
        (body, call, denial)
    }
}

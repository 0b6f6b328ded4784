use std::{
    fmt,
    future::{Future, IntoFuture},
    pin::Pin,
    task::{Context, Poll},
};

/// A boxed, sendable future: used only where dynamic dispatch is the point (a `dyn Policy`).
pub type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send + 'static>>;

/// An answer that is either known now or will be known later.
///
/// Policies and claim mappers that decide from memory return [`Answer::Ready`], which costs no
/// allocation and no extra poll; those that must wait on I/O return [`Answer::Pending`].
pub enum Answer<T> {
    /// The answer, known at once.
    Ready(T),
    /// A future that will produce the answer.
    Pending(BoxFuture<T>),
}

impl<T> Answer<T> {
    /// Wraps a future that will produce the answer.
    pub fn pending<F>(future: F) -> Self
    where
        F: Future<Output = T> + Send + 'static,
    {
        Self::Pending(Box::pin(future))
    }

    /// The answer if it is known now.
    pub fn now(self) -> Option<T> {
        match self {
            Self::Ready(value) => Some(value),
            Self::Pending(_) => None,
        }
    }
}

impl<T> fmt::Debug for Answer<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Ready(_) => f.write_str("Answer::Ready(..)"),
            Self::Pending(_) => f.write_str("Answer::Pending(..)"),
        }
    }
}

impl<T> IntoFuture for Answer<T> {
    type Output = T;
    type IntoFuture = AnswerFuture<T>;

    fn into_future(self) -> Self::IntoFuture {
        match self {
            Self::Ready(value) => AnswerFuture::Ready(Some(value)),
            Self::Pending(future) => AnswerFuture::Pending(future),
        }
    }
}

/// The future of an [`Answer`].
pub enum AnswerFuture<T> {
    /// Resolves at the first poll.
    Ready(Option<T>),
    /// Waits on the boxed future.
    Pending(BoxFuture<T>),
}

impl<T> fmt::Debug for AnswerFuture<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("AnswerFuture")
    }
}

// Neither variant is structurally pinned: `Option<T>` is moved out, the future is boxed.
impl<T> Unpin for AnswerFuture<T> {}

impl<T> Future for AnswerFuture<T> {
    type Output = T;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<T> {
        match self.get_mut() {
            Self::Ready(value) => match value.take() {
                Some(value) => Poll::Ready(value),
                None => panic!("AnswerFuture polled after completion"),
            },
            Self::Pending(future) => future.as_mut().poll(cx),
        }
    }
}

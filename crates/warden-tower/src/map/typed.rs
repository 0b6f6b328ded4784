use std::{any::type_name, marker::PhantomData, sync::Arc};

use bytes::Bytes;
use warden_core::Operation;

use super::{DecodeError, Extract};

struct Typed<M, F> {
    extract: F,
    _message: PhantomData<fn() -> M>,
}

pub(super) fn extractor<M, F>(extract: F) -> Arc<dyn Extract>
where
    M: prost::Message + Default + 'static,
    F: Fn(M, Operation) -> Operation + Send + Sync + 'static,
{
    Arc::new(Typed {
        extract,
        _message: PhantomData::<fn() -> M>,
    })
}

impl<M, F> Extract for Typed<M, F>
where
    M: prost::Message + Default + 'static,
    F: Fn(M, Operation) -> Operation + Send + Sync + 'static,
{
    fn extract(&self, message: &Bytes, operation: &mut Operation) -> Result<(), DecodeError> {
        let decoded =
            M::decode(message.as_ref()).map_err(|e| DecodeError::new(short_name::<M>(), e))?;
        let blank = Operation::new(operation.kind, "", "");
        *operation = (self.extract)(decoded, std::mem::replace(operation, blank));
        Ok(())
    }
}

fn short_name<M>() -> &'static str {
    let name = type_name::<M>();
    name.rsplit("::").next().unwrap_or(name)
}

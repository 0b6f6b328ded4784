//! Entities: who a decision is for, and how they are resolved to the representation subject
//! mappings read.

use std::{
    fmt,
    future::Future,
    hash::{Hash, Hasher},
    path::Path,
    pin::Pin,
    sync::Arc,
};

use foldhash::HashMap;
use serde_json::{Map, Value};
use warden_core::{AuthInfo, ClaimMapper, Claims, Secret};

/// Who a decision is for.
#[derive(Clone)]
pub enum EntityRef {
    /// A token the decision point verifies (a JWT, through an identity mapper).
    Token(Secret),
    /// An id the resolver looks up (a user name, an e-mail address).
    Id(Arc<str>),
    /// Claims the caller asserts, used as they are: only trusted, authenticated callers may ask
    /// the decision point, and they vouch for these.
    Claims(Arc<Value>),
}

impl fmt::Debug for EntityRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            // Secrets never print.
            Self::Token(_) => f.write_str("Token(..)"),
            Self::Id(id) => f.debug_tuple("Id").field(id).finish(),
            Self::Claims(claims) => f.debug_tuple("Claims").field(claims).finish(),
        }
    }
}

impl PartialEq for EntityRef {
    fn eq(&self, other: &Self) -> bool {
        match (self, other) {
            (Self::Token(a), Self::Token(b)) => a.expose() == b.expose(),
            (Self::Id(a), Self::Id(b)) => a == b,
            (Self::Claims(a), Self::Claims(b)) => Arc::ptr_eq(a, b) || a == b,
            _ => false,
        }
    }
}

impl Eq for EntityRef {}

impl Hash for EntityRef {
    fn hash<H: Hasher>(&self, state: &mut H) {
        match self {
            Self::Token(token) => (0u8, token.expose()).hash(state),
            Self::Id(id) => (1u8, &**id).hash(state),
            // Claims are compared whole; their hash is their kind, and equal entities are rare.
            Self::Claims(_) => 2u8.hash(state),
        }
    }
}

/// An entity in a request: the id its results carry, and who it is.
#[derive(Clone, Debug, PartialEq)]
pub struct EntityInput {
    /// Echoed in the results.
    pub ephemeral_id: Arc<str>,
    /// Who.
    pub entity: EntityRef,
}

impl EntityInput {
    /// An entity looked up by `id`.
    pub fn id(ephemeral_id: impl Into<Arc<str>>, id: impl Into<Arc<str>>) -> Self {
        Self {
            ephemeral_id: ephemeral_id.into(),
            entity: EntityRef::Id(id.into()),
        }
    }

    /// An entity given by a token.
    pub fn token(ephemeral_id: impl Into<Arc<str>>, token: impl Into<Arc<str>>) -> Self {
        Self {
            ephemeral_id: ephemeral_id.into(),
            entity: EntityRef::Token(Secret::new(token)),
        }
    }

    /// An entity given by its claims.
    pub fn claims(ephemeral_id: impl Into<Arc<str>>, claims: Value) -> Self {
        Self {
            ephemeral_id: ephemeral_id.into(),
            entity: EntityRef::Claims(Arc::new(claims)),
        }
    }
}

/// The representation of one entity, or why it could not be resolved (that entity's decisions
/// are then denials naming the reason; the others are decided).
pub type Resolved = Result<Arc<Value>, String>;

/// A boxed future borrowing the resolver and its input.
pub type ResolveFuture<'a> =
    Pin<Box<dyn Future<Output = Result<Vec<Resolved>, ResolveError>> + Send + 'a>>;

/// The resolver as a whole failed (a directory down): the call is answered `UNAVAILABLE`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("entity resolver unavailable: {0}")]
pub struct ResolveError(pub String);

/// Resolves a batch of distinct entities in one go (one directory call per request, not per
/// entity), answering one [`Resolved`] per entity, in order.
pub trait EntityResolver: Send + Sync + 'static {
    /// Resolves `entities`; the answer must have exactly one entry per entity.
    fn resolve<'a>(&'a self, entities: &'a [EntityRef]) -> ResolveFuture<'a>;
}

impl<R: EntityResolver + ?Sized> EntityResolver for Arc<R> {
    fn resolve<'a>(&'a self, entities: &'a [EntityRef]) -> ResolveFuture<'a> {
        (**self).resolve(entities)
    }
}

/// The built-in resolver: tokens through an identity mapper (a verified JWT's claims), ids
/// from entity records (a JSON file), claims as they are. A kind it is not configured for
/// is refused for that entity.
#[derive(Clone, Default)]
pub struct StandardResolver {
    tokens: Option<Arc<dyn ClaimMapper>>,
    records: Option<Arc<HashMap<Box<str>, Arc<Value>>>>,
}

impl fmt::Debug for StandardResolver {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StandardResolver")
            .field("tokens", &self.tokens.is_some())
            .field("records", &self.records.as_ref().map(|r| r.len()))
            .finish()
    }
}

impl StandardResolver {
    /// Resolves nothing but claims.
    pub fn new() -> Self {
        Self::default()
    }

    /// Verifies token entities with `mapper` (such as `warden_identity`'s JWT mapper) and uses
    /// the claims it proves.
    #[must_use]
    pub fn tokens(mut self, mapper: impl ClaimMapper) -> Self {
        self.tokens = Some(Arc::new(mapper));
        self
    }

    /// Looks ids up in `records` (id → the entity's representation).
    #[must_use]
    pub fn records(mut self, records: impl IntoIterator<Item = (String, Value)>) -> Self {
        self.records = Some(Arc::new(
            records
                .into_iter()
                .map(|(id, record)| (id.into_boxed_str(), Arc::new(record)))
                .collect(),
        ));
        self
    }

    /// Reads records from a JSON file: an object of id → representation.
    pub fn records_file(self, path: &Path) -> Result<Self, String> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("{}: cannot be read: {e}", path.display()))?;
        let records: Map<String, Value> = serde_json::from_str(&text)
            .map_err(|e| format!("{}: not a JSON object of id → record: {e}", path.display()))?;
        Ok(self.records(records))
    }
}

impl EntityResolver for StandardResolver {
    fn resolve<'a>(&'a self, entities: &'a [EntityRef]) -> ResolveFuture<'a> {
        Box::pin(async move {
            let mut out = Vec::with_capacity(entities.len());
            for entity in entities {
                out.push(match entity {
                    EntityRef::Claims(claims) => Ok(Arc::clone(claims)),
                    EntityRef::Id(id) => match &self.records {
                        Some(records) => records
                            .get(&**id)
                            .cloned()
                            .ok_or_else(|| format!("no entity record `{id}`")),
                        None => Err("entities by id are not configured".to_owned()),
                    },
                    EntityRef::Token(token) => match &self.tokens {
                        Some(mapper) => {
                            let info = AuthInfo::new().with_bearer(token.clone());
                            match mapper.map(&info).await {
                                Ok(claims) => Ok(Arc::new(representation(&claims))),
                                Err(warden_core::AuthError::Unavailable { reason }) => {
                                    return Err(ResolveError(reason));
                                }
                                Err(error) => Err(format!("token: {error}")),
                            }
                        }
                        None => Err("entities by token are not configured".to_owned()),
                    },
                });
            }
            Ok(out)
        })
    }
}

/// The representation subject mappings read for `claims`:
/// `{subject, roles: {system, namespaces: {ns: role}}, privileges: [..], groups: [..],
/// attributes: {..}}` — selectors such as `.groups[]` or `.attributes.department`.
pub fn representation(claims: &Claims) -> Value {
    let mut roles = Map::new();
    roles.insert("system".into(), Value::String(claims.system.to_string()));
    roles.insert(
        "namespaces".into(),
        Value::Object(
            claims
                .namespaces
                .iter()
                .map(|(ns, role)| (ns.clone(), Value::String(role.to_string())))
                .collect(),
        ),
    );
    let mut out = Map::new();
    if let Some(subject) = &claims.subject {
        out.insert("subject".into(), Value::String(subject.clone()));
    }
    out.insert("roles".into(), Value::Object(roles));
    out.insert(
        "privileges".into(),
        claims.privileges.iter().cloned().collect(),
    );
    out.insert("groups".into(), claims.groups.iter().cloned().collect());
    out.insert(
        "attributes".into(),
        Value::Object(claims.attributes.clone()),
    );
    Value::Object(out)
}

use std::{borrow::Cow, sync::Arc};

use bytes::Bytes;
use prost_reflect::{
    DescriptorPool, DynamicMessage, FieldDescriptor, Kind, MessageDescriptor, Value,
};
use serde::Deserialize;
use warden_core::{Operation, OperationKind, Text};

use super::{
    DecodeError, Extract, Fields, MapError, MethodSpec, OperationMap, OperationMapBuilder,
    json_args,
};
use crate::grpc::MethodPath;

/// An operation map written as config: methods of a protobuf descriptor set and the field
/// paths that hold their targets.
///
/// ```toml
/// [[method]]
/// path = "/warden.example.v1.WorkflowService/SignalWorkflow"
/// kind = "signal"
/// namespace = "namespace"
/// instance = "execution.workflow_id"
/// name = "signal_name"
/// args = "input"
/// ```
///
/// Paths are checked against the descriptors when the map is built: an unknown method, an
/// unknown field or a text target that is not a string field is an error then, not at call
/// time. Client streaming is taken from the descriptor. An `args` field of type `bytes` is
/// read as JSON; a message field is converted to JSON by its protobuf JSON mapping.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReflectConfig {
    /// The mapped methods.
    #[serde(rename = "method", default)]
    pub methods: Vec<ReflectMethod>,
}

/// One method of a [`ReflectConfig`].
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReflectMethod {
    /// `/package.Service/Method`.
    pub path: String,
    /// The operation kind (`execute`, `signal`, `query`, `update`, …).
    pub kind: String,
    /// Dotted field path of the namespace.
    #[serde(default)]
    pub namespace: Option<String>,
    /// Dotted field path of the instance id.
    #[serde(default)]
    pub instance: Option<String>,
    /// Dotted field path of the run id.
    #[serde(default)]
    pub run: Option<String>,
    /// Dotted field path of the workflow type.
    #[serde(default)]
    pub workflow_type: Option<String>,
    /// Dotted field path of the task queue.
    #[serde(default)]
    pub task_queue: Option<String>,
    /// Dotted field path of the operation name (signal name, query type, update name).
    #[serde(default)]
    pub name: Option<String>,
    /// Dotted field path of the arguments.
    #[serde(default)]
    pub args: Option<String>,
}

impl ReflectConfig {
    /// Builds the map against an encoded `FileDescriptorSet`.
    pub fn build(&self, descriptor_set: &[u8]) -> Result<OperationMap, MapError> {
        self.add_to(OperationMapBuilder::default(), descriptor_set)?
            .build()
    }

    /// Adds these methods to `builder` (e.g. a preset's), checked against an encoded
    /// `FileDescriptorSet`.
    pub fn add_to(
        &self,
        mut builder: OperationMapBuilder,
        descriptor_set: &[u8],
    ) -> Result<OperationMapBuilder, MapError> {
        let pool = DescriptorPool::decode(descriptor_set)
            .map_err(|e| MapError::Descriptor(format!("invalid descriptor set: {e}")))?;
        for method in &self.methods {
            let (path, spec) = method.spec(&pool)?;
            builder = builder.push_spec(path, spec);
        }
        Ok(builder)
    }
}

impl ReflectMethod {
    fn spec(&self, pool: &DescriptorPool) -> Result<(String, MethodSpec), MapError> {
        let invalid = |reason| MapError::InvalidPath {
            path: self.path.clone(),
            reason,
        };
        let parsed = MethodPath::parse(&self.path).map_err(invalid)?;
        let kind: OperationKind = self
            .kind
            .parse()
            .map_err(|e| MapError::Descriptor(format!("method `{}`: {e}", self.path)))?;
        let service = pool.get_service_by_name(parsed.service).ok_or_else(|| {
            MapError::Descriptor(format!(
                "service `{}` is not in the descriptor set",
                parsed.service
            ))
        })?;
        let method = service
            .methods()
            .find(|m| m.name() == parsed.method)
            .ok_or_else(|| {
                MapError::Descriptor(format!(
                    "service `{}` has no method `{}`",
                    parsed.service, parsed.method
                ))
            })?;
        let input = method.input();
        let text = |path: &Option<String>| -> Result<Option<FieldPath>, MapError> {
            path.as_deref()
                .map(|p| FieldPath::resolve(&input, p, &self.path, true))
                .transpose()
        };
        let extractor = ReflectExtractor {
            message: input.clone(),
            namespace: text(&self.namespace)?,
            instance: text(&self.instance)?,
            run: text(&self.run)?,
            workflow_type: text(&self.workflow_type)?,
            task_queue: text(&self.task_queue)?,
            name: text(&self.name)?,
            args: self
                .args
                .as_deref()
                .map(|p| FieldPath::resolve(&input, p, &self.path, false))
                .transpose()?,
        };
        let extractor: Arc<dyn Extract> = match extractor.wire() {
            Some(fields) => fields.extractor(input.full_name())?,
            None => Arc::new(extractor),
        };
        let mut spec = MethodSpec::new(parsed, kind, Some(extractor));
        spec.client_streaming = method.is_client_streaming();
        Ok((self.path.clone(), spec))
    }
}

/// A chain of singular fields from the request message down to a target.
#[derive(Debug, Clone)]
struct FieldPath(Vec<FieldDescriptor>);

impl FieldPath {
    fn resolve(
        root: &MessageDescriptor,
        dotted: &str,
        method: &str,
        text: bool,
    ) -> Result<Self, MapError> {
        let error = |what: String| {
            MapError::Descriptor(format!("method `{method}`, field path `{dotted}`: {what}"))
        };
        let mut fields = Vec::new();
        let mut message = root.clone();
        let segments: Vec<&str> = dotted.split('.').collect();
        for (i, segment) in segments.iter().enumerate() {
            let field = message.get_field_by_name(segment).ok_or_else(|| {
                error(format!(
                    "`{}` has no field `{segment}`",
                    message.full_name()
                ))
            })?;
            if field.is_list() || field.is_map() {
                return Err(error(format!(
                    "`{segment}` is repeated; only singular fields can be targets"
                )));
            }
            let last = i + 1 == segments.len();
            match field.kind() {
                Kind::Message(inner) if !last => message = inner,
                _ if !last => return Err(error(format!("`{segment}` is not a message"))),
                Kind::String => {}
                _ if text => return Err(error(format!("`{segment}` is not a string field"))),
                _ => {}
            }
            fields.push(field);
        }
        Ok(Self(fields))
    }

    /// The field numbers of the path, when a pass over the encoding reads it as a decoder
    /// would: no field on it is a member of a real `oneof`.
    fn numbers(&self) -> Option<Vec<u32>> {
        self.0
            .iter()
            .map(|f| {
                let in_oneof = f.containing_oneof().is_some_and(|o| !o.is_synthetic());
                (!in_oneof).then_some(f.number())
            })
            .collect()
    }

    fn last_kind(&self) -> Option<Kind> {
        self.0.last().map(FieldDescriptor::kind)
    }

    /// The value at the end of the path; `None` when an intermediate message is unset.
    fn get<'a>(&self, message: &'a DynamicMessage) -> Option<Cow<'a, Value>> {
        let (last, parents) = self.0.split_last()?;
        let mut current = message;
        for field in parents {
            if !current.has_field(field) {
                return None;
            }
            match current.get_field(field) {
                Cow::Borrowed(Value::Message(inner)) => current = inner,
                _ => return None,
            }
        }
        current.has_field(last).then(|| current.get_field(last))
    }

    fn text(&self, message: &DynamicMessage) -> Option<Text> {
        match self.get(message)?.as_ref() {
            Value::String(s) if !s.is_empty() => Some(Text::new(s)),
            _ => None,
        }
    }
}

struct ReflectExtractor {
    message: MessageDescriptor,
    namespace: Option<FieldPath>,
    instance: Option<FieldPath>,
    run: Option<FieldPath>,
    workflow_type: Option<FieldPath>,
    task_queue: Option<FieldPath>,
    name: Option<FieldPath>,
    args: Option<FieldPath>,
}

impl ReflectExtractor {
    /// The same targets as a pass over the encoding ([`Fields`]), when every path allows it;
    /// `None` leaves the method to a full `DynamicMessage` decode.
    fn wire(&self) -> Option<Fields> {
        let mut fields = Fields::new();
        type Set = fn(Fields, &[u32]) -> Fields;
        let texts: [(&Option<FieldPath>, Set); 6] = [
            (&self.namespace, Fields::namespace),
            (&self.instance, Fields::instance),
            (&self.run, Fields::run),
            (&self.workflow_type, Fields::workflow_type),
            (&self.task_queue, Fields::task_queue),
            (&self.name, Fields::name),
        ];
        for (path, set) in texts {
            if let Some(path) = path {
                fields = set(fields, &path.numbers()?);
            }
        }
        if let Some(path) = &self.args {
            let numbers = path.numbers()?;
            fields = match path.last_kind()? {
                Kind::Bytes => fields.json_args(&numbers),
                Kind::String => fields.args(&numbers, |b| {
                    std::str::from_utf8(b)
                        .ok()
                        .map(|s| serde_json::Value::String(s.to_owned()))
                }),
                Kind::Message(message) => fields.args_shared(
                    &numbers,
                    Arc::new(move |b: &[u8]| {
                        let decoded = DynamicMessage::decode(message.clone(), b).ok()?;
                        serde_json::to_value(&decoded).ok()
                    }),
                    true,
                ),
                // Scalars are not length-delimited; the full decode reads them.
                _ => return None,
            };
        }
        Some(fields)
    }
}

impl Extract for ReflectExtractor {
    fn extract(&self, bytes: &Bytes, operation: &mut Operation) -> Result<(), DecodeError> {
        let message = DynamicMessage::decode(self.message.clone(), bytes.as_ref())
            .map_err(|e| DecodeError::new(self.message.full_name(), e))?;
        let text = |path: &Option<FieldPath>| path.as_ref().and_then(|p| p.text(&message));
        operation.namespace = text(&self.namespace);
        operation.instance_id = text(&self.instance);
        operation.run_id = text(&self.run);
        operation.workflow_type = text(&self.workflow_type);
        operation.task_queue = text(&self.task_queue);
        operation.name = text(&self.name);
        operation.args = match self.args.as_ref().and_then(|p| p.get(&message)) {
            // JSON payload bytes stay unparsed until a policy reads them.
            Some(value) => match value.as_ref() {
                Value::Bytes(bytes) => warden_core::Args::from_json_bytes(bytes.to_vec()),
                other => value_to_json(other)
                    .map(warden_core::Args::from_value)
                    .unwrap_or_default(),
            },
            None => warden_core::Args::none(),
        };
        Ok(())
    }
}

fn value_to_json(value: &Value) -> Option<serde_json::Value> {
    use serde_json::Value as Json;
    Some(match value {
        Value::Bytes(bytes) => return json_args(bytes),
        Value::Message(message) => serde_json::to_value(message).ok()?,
        Value::String(s) => Json::String(s.clone()),
        Value::Bool(b) => Json::Bool(*b),
        Value::I32(n) | Value::EnumNumber(n) => Json::from(*n),
        Value::I64(n) => Json::from(*n),
        Value::U32(n) => Json::from(*n),
        Value::U64(n) => Json::from(*n),
        Value::F32(n) => Json::from(f64::from(*n)),
        Value::F64(n) => Json::from(*n),
        Value::List(_) | Value::Map(_) => return None,
    })
}

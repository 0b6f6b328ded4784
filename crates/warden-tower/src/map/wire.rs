//! Reading a method's targets straight from the protobuf encoding of its request.
//!
//! Decoding a whole request (prost, or a `DynamicMessage`) allocates every string, byte field
//! and nested message of it, and Temporal's requests carry payloads, memos, headers and search
//! attributes Warden never looks at. [`Fields`] names only the fields Warden reads, by field
//! number; one pass over the encoding finds them, skipping everything else without copying it.
//! Text targets are checked as UTF-8 and copied; arguments stay a slice of the request's own
//! buffer until a policy reads them.
//!
//! The pass reads what a protobuf decoder would: for a field that occurs more than once the
//! last occurrence wins, an embedded message that occurs more than once is merged, and a
//! mapped field with the wrong wire type or a malformed encoding anywhere in the scanned
//! messages is an error, so the decision is made on exactly what the handler will decode.
//! Paths must not pass through a `oneof` member: a later member of the same `oneof` would clear
//! it in the handler's decoder, which a pass that does not know the schema cannot see.

use std::{fmt, ops::Range, sync::Arc};

use bytes::Bytes;
use warden_core::{Args, ArgsDecoder, Operation, SharedArgsDecoder, Text};

use super::{DecodeError, Extract, MapError, json_args};

/// The largest protobuf field number.
const MAX_FIELD: u32 = (1 << 29) - 1;
/// How deeply groups may nest in skipped data (prost's own recursion limit).
const MAX_DEPTH: u32 = 100;

/// A target an operation takes from its request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
enum Target {
    Namespace = 0,
    Instance = 1,
    Run = 2,
    WorkflowType = 3,
    TaskQueue = 4,
    Name = 5,
    Args = 6,
}

const TARGETS: usize = 7;

impl Target {
    const TEXT: [Target; 6] = [
        Self::Namespace,
        Self::Instance,
        Self::Run,
        Self::WorkflowType,
        Self::TaskQueue,
        Self::Name,
    ];

    const fn bit(self) -> u8 {
        1 << self as u8
    }

    const fn label(self) -> &'static str {
        match self {
            Self::Namespace => "namespace",
            Self::Instance => "instance",
            Self::Run => "run",
            Self::WorkflowType => "workflow type",
            Self::TaskQueue => "task queue",
            Self::Name => "name",
            Self::Args => "args",
        }
    }
}

#[derive(Clone)]
enum Decoder {
    Fn(ArgsDecoder),
    Shared(SharedArgsDecoder),
}

/// Where a method's targets sit in its request message, as paths of protobuf field numbers:
/// `[2, 1]` is field 1 of the message in field 2. Every field on a path is a singular string,
/// bytes or message field.
///
/// ```
/// use warden_core::OperationKind;
/// use warden_tower::map::{Fields, OperationMap};
///
/// // message SignalRequest {
/// //   string namespace = 1;
/// //   Execution execution = 2;   // message Execution { string workflow_id = 1; string run_id = 2; }
/// //   string signal_name = 3;
/// //   bytes input = 4;           // JSON
/// // }
/// let map = OperationMap::builder()
///     .fields(
///         "/shop.Orders/Signal",
///         OperationKind::Signal,
///         Fields::new()
///             .namespace(&[1])
///             .instance(&[2, 1])
///             .run(&[2, 2])
///             .name(&[3])
///             .json_args(&[4]),
///     )
///     .build()
///     .unwrap();
/// assert!(map.get("/shop.Orders/Signal").unwrap().decodes_payload());
/// ```
#[derive(Clone, Default)]
#[must_use]
pub struct Fields {
    paths: [Option<Box<[u32]>>; TARGETS],
    decoder: Option<Decoder>,
    merge_args: bool,
}

impl fmt::Debug for Fields {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut map = f.debug_map();
        for (target, path) in ALL.iter().zip(&self.paths) {
            if let Some(path) = path {
                map.entry(&target.label(), path);
            }
        }
        map.finish()
    }
}

const ALL: [Target; TARGETS] = [
    Target::Namespace,
    Target::Instance,
    Target::Run,
    Target::WorkflowType,
    Target::TaskQueue,
    Target::Name,
    Target::Args,
];

impl Fields {
    /// No targets yet.
    pub fn new() -> Self {
        Self::default()
    }

    fn set(mut self, target: Target, path: &[u32]) -> Self {
        self.paths[target as usize] = Some(path.into());
        self
    }

    /// The string field holding the namespace.
    pub fn namespace(self, path: &[u32]) -> Self {
        self.set(Target::Namespace, path)
    }

    /// The string field holding the instance (workflow) id.
    pub fn instance(self, path: &[u32]) -> Self {
        self.set(Target::Instance, path)
    }

    /// The string field holding the run id.
    pub fn run(self, path: &[u32]) -> Self {
        self.set(Target::Run, path)
    }

    /// The string field holding the workflow type.
    pub fn workflow_type(self, path: &[u32]) -> Self {
        self.set(Target::WorkflowType, path)
    }

    /// The string field holding the task queue.
    pub fn task_queue(self, path: &[u32]) -> Self {
        self.set(Target::TaskQueue, path)
    }

    /// The string field holding the operation name (signal name, query type, update name).
    pub fn name(self, path: &[u32]) -> Self {
        self.set(Target::Name, path)
    }

    /// A `bytes` field holding the arguments as JSON.
    pub fn json_args(self, path: &[u32]) -> Self {
        self.args(path, json_args)
    }

    /// A `bytes` or `string` field holding the arguments, read by `decoder` when a policy
    /// first asks for them.
    pub fn args(mut self, path: &[u32], decoder: ArgsDecoder) -> Self {
        self.decoder = Some(Decoder::Fn(decoder));
        self.merge_args = false;
        self.set(Target::Args, path)
    }

    /// An embedded message holding the arguments, read by `decoder` (given the message's
    /// encoding) when a policy first asks for them. Occurrences of the field are merged, as
    /// protobuf merges an embedded message.
    pub fn message_args(mut self, path: &[u32], decoder: ArgsDecoder) -> Self {
        self.decoder = Some(Decoder::Fn(decoder));
        self.merge_args = true;
        self.set(Target::Args, path)
    }

    /// Like [`message_args`](Self::message_args) (`merge` true) or [`args`](Self::args), with
    /// a decoder that carries state.
    pub fn args_shared(mut self, path: &[u32], decoder: SharedArgsDecoder, merge: bool) -> Self {
        self.decoder = Some(Decoder::Shared(decoder));
        self.merge_args = merge;
        self.set(Target::Args, path)
    }

    /// Checks the paths and builds the scanner; `what` names the message in decode errors.
    pub(crate) fn extractor(&self, what: &str) -> Result<Arc<dyn Extract>, MapError> {
        let mut root = Node::default();
        for (target, path) in ALL.iter().zip(&self.paths) {
            let Some(path) = path else { continue };
            let invalid = |reason: &str| {
                MapError::Descriptor(format!(
                    "{what}: {} field path {path:?}: {reason}",
                    target.label()
                ))
            };
            if path.is_empty() {
                return Err(invalid("a path needs at least one field number"));
            }
            if let Some(n) = path.iter().find(|n| **n == 0 || **n > MAX_FIELD) {
                return Err(invalid(&format!(
                    "{n} is not a protobuf field number (1 to {MAX_FIELD})"
                )));
            }
            root.insert(path, *target);
        }
        Ok(Arc::new(WireExtractor {
            root,
            decoder: self.decoder.clone(),
            merge_args: self.merge_args,
            what: what.into(),
        }))
    }
}

/// One message level of the scan: the fields read at this level.
#[derive(Default)]
struct Node {
    steps: Vec<Step>,
}

struct Step {
    number: u32,
    /// Targets this field holds (bits of [`Target`]).
    targets: u8,
    /// The fields read inside it, when it is a message on some target's path.
    child: Option<Box<Node>>,
}

impl Node {
    fn insert(&mut self, path: &[u32], target: Target) {
        let Some((number, rest)) = path.split_first() else {
            return;
        };
        let step = self.step_mut(*number);
        if rest.is_empty() {
            step.targets |= target.bit();
        } else {
            step.child
                .get_or_insert_with(Box::default)
                .insert(rest, target);
        }
    }

    fn step_mut(&mut self, number: u32) -> &mut Step {
        let index = match self.steps.iter().position(|s| s.number == number) {
            Some(index) => index,
            None => {
                self.steps.push(Step {
                    number,
                    targets: 0,
                    child: None,
                });
                self.steps.len() - 1
            }
        };
        &mut self.steps[index]
    }

    #[inline]
    fn find(&self, number: u32) -> Option<&Step> {
        self.steps.iter().find(|s| s.number == number)
    }
}

struct WireExtractor {
    root: Node,
    decoder: Option<Decoder>,
    merge_args: bool,
    what: Arc<str>,
}

/// What the scan found, as ranges of the root message; merged arguments are copied out.
#[derive(Default)]
struct Found {
    ranges: [Option<Range<usize>>; TARGETS],
    merged_args: Option<Vec<u8>>,
}

impl Extract for WireExtractor {
    fn extract(&self, message: &Bytes, operation: &mut Operation) -> Result<(), DecodeError> {
        let error = |reason: &str| DecodeError::new(&*self.what, reason);
        let mut found = Found::default();
        let mut scan = Scan {
            message,
            merge_args: self.merge_args,
            found: &mut found,
        };
        scan.message(&self.root, 0..message.len()).map_err(error)?;

        for target in Target::TEXT {
            let Some(range) = found.ranges[target as usize].clone() else {
                continue;
            };
            let text = std::str::from_utf8(&message[range])
                .map_err(|_| error(&format!("the {} is not valid UTF-8", target.label())))?;
            if text.is_empty() {
                continue;
            }
            let slot = match target {
                Target::Namespace => &mut operation.namespace,
                Target::Instance => &mut operation.instance_id,
                Target::Run => &mut operation.run_id,
                Target::WorkflowType => &mut operation.workflow_type,
                Target::TaskQueue => &mut operation.task_queue,
                Target::Name | Target::Args => &mut operation.name,
            };
            *slot = Some(Text::new(text));
        }
        if let Some(decoder) = &self.decoder {
            let bytes = match (found.merged_args, &found.ranges[Target::Args as usize]) {
                (Some(merged), _) => Bytes::from(merged),
                (None, Some(range)) => message.slice(range.clone()),
                (None, None) => Bytes::new(),
            };
            operation.args = match decoder {
                Decoder::Fn(decode) => Args::lazy(bytes, *decode),
                Decoder::Shared(decode) => Args::lazy_shared(bytes, Arc::clone(decode)),
            };
        }
        Ok(())
    }
}

struct Scan<'a> {
    message: &'a [u8],
    merge_args: bool,
    found: &'a mut Found,
}

impl Scan<'_> {
    /// Reads the fields of `node` in `range` of the root message.
    fn message(&mut self, node: &Node, range: Range<usize>) -> Result<(), &'static str> {
        // Sliced once to the message's end: every read below is bounded by `buf.len()`.
        let buf = &self.message[..range.end];
        let mut at = range.start;
        while at < buf.len() {
            let (number, wire) = key(buf, &mut at)?;
            match node.find(number) {
                Some(step) => {
                    if wire != WireType::Len {
                        return Err("a mapped field has the wrong wire type");
                    }
                    let len = varint(buf, &mut at)?;
                    let value = span(at, len, buf.len())?;
                    at = value.end;
                    if step.targets != 0 {
                        self.record(step.targets, &value);
                    }
                    if let Some(child) = &step.child {
                        self.message(child, value)?;
                    }
                }
                // The fields a request carries besides Warden's targets are mostly strings,
                // messages and integers: skip those here, the rest in `skip`.
                None if wire == WireType::Len => {
                    let len = varint(buf, &mut at)?;
                    at = span(at, len, buf.len())?.end;
                }
                None if wire == WireType::Varint => {
                    varint(buf, &mut at)?;
                }
                None => skip(buf, &mut at, number, wire, 0)?,
            }
        }
        Ok(())
    }

    fn record(&mut self, mut targets: u8, value: &Range<usize>) {
        // One turn per target this field holds (usually one), lowest bit first.
        while targets != 0 {
            let index = targets.trailing_zeros() as usize;
            targets &= targets - 1;
            let slot = &mut self.found.ranges[index];
            if index == Target::Args as usize && self.merge_args {
                // An embedded message that occurs again is merged: its encodings concatenated.
                if let Some(first) = slot.as_ref() {
                    let merged = self
                        .found
                        .merged_args
                        .get_or_insert_with(|| self.message[first.clone()].to_vec());
                    merged.extend_from_slice(&self.message[value.clone()]);
                }
            }
            *slot = Some(value.clone());
        }
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum WireType {
    Varint,
    Fixed64,
    Len,
    StartGroup,
    EndGroup,
    Fixed32,
}

/// Field key and wire type at `at` of `buf` (which ends where the message ends).
#[inline]
fn key(buf: &[u8], at: &mut usize) -> Result<(u32, WireType), &'static str> {
    let key = varint(buf, at)?;
    let key = u32::try_from(key).map_err(|_| "a field key is out of range")?;
    let wire = match key & 7 {
        0 => WireType::Varint,
        1 => WireType::Fixed64,
        2 => WireType::Len,
        3 => WireType::StartGroup,
        4 => WireType::EndGroup,
        5 => WireType::Fixed32,
        _ => return Err("a field has an invalid wire type"),
    };
    let number = key >> 3;
    if number == 0 {
        return Err("a field has number 0");
    }
    Ok((number, wire))
}

/// The varint at `at` of `buf` (which ends where the message ends).
#[inline]
fn varint(buf: &[u8], at: &mut usize) -> Result<u64, &'static str> {
    // Keys and the lengths of short fields are one byte: read those without the loop.
    match buf.get(*at) {
        Some(&byte) if byte < 0x80 => {
            *at += 1;
            Ok(u64::from(byte))
        }
        _ => long_varint(buf, at),
    }
}

#[cold]
fn long_varint(buf: &[u8], at: &mut usize) -> Result<u64, &'static str> {
    let mut value = 0u64;
    for shift in 0..10 {
        let Some(&byte) = buf.get(*at) else {
            return Err("the message ends inside a varint");
        };
        *at += 1;
        if shift == 9 && byte > 1 {
            return Err("a varint overflows 64 bits");
        }
        value |= u64::from(byte & 0x7f) << (shift * 7);
        if byte & 0x80 == 0 {
            return Ok(value);
        }
    }
    Err("a varint overflows 64 bits")
}

#[inline]
fn span(at: usize, len: u64, end: usize) -> Result<Range<usize>, &'static str> {
    usize::try_from(len)
        .ok()
        .and_then(|len| at.checked_add(len))
        .filter(|stop| *stop <= end)
        .map(|stop| at..stop)
        .ok_or("a length-delimited field runs past the end of its message")
}

/// Skips one field Warden does not read (`buf` ends where its message ends).
fn skip(
    buf: &[u8],
    at: &mut usize,
    number: u32,
    wire: WireType,
    depth: u32,
) -> Result<(), &'static str> {
    let fixed = |at: &mut usize, n: usize| {
        *at = span(*at, n as u64, buf.len())?.end;
        Ok(())
    };
    match wire {
        WireType::Varint => varint(buf, at).map(drop),
        WireType::Fixed64 => fixed(at, 8),
        WireType::Fixed32 => fixed(at, 4),
        WireType::Len => {
            let len = varint(buf, at)?;
            fixed(
                at,
                usize::try_from(len).map_err(|_| "a length is out of range")?,
            )
        }
        WireType::StartGroup => {
            if depth >= MAX_DEPTH {
                return Err("groups nest too deeply");
            }
            loop {
                if *at >= buf.len() {
                    return Err("a group is not closed");
                }
                let (inner, inner_wire) = key(buf, at)?;
                if inner_wire == WireType::EndGroup {
                    return if inner == number {
                        Ok(())
                    } else {
                        Err("a group is closed by another field's end tag")
                    };
                }
                skip(buf, at, inner, inner_wire, depth + 1)?;
            }
        }
        WireType::EndGroup => Err("an end-group tag has no group to close"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use warden_core::OperationKind;

    /// The example's signal request: namespace 1, execution 2 {workflow_id 1, run_id 2},
    /// signal_name 3, input 4, identity 5.
    fn signal_fields() -> Fields {
        Fields::new()
            .namespace(&[1])
            .instance(&[2, 1])
            .run(&[2, 2])
            .name(&[3])
            .json_args(&[4])
    }

    fn len_field(number: u32, value: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        put_varint(&mut out, u64::from(number << 3 | 2));
        put_varint(&mut out, value.len() as u64);
        out.extend_from_slice(value);
        out
    }

    fn put_varint(out: &mut Vec<u8>, mut value: u64) {
        while value >= 0x80 {
            out.push((value as u8) | 0x80);
            value >>= 7;
        }
        out.push(value as u8);
    }

    fn extract(fields: &Fields, message: Vec<u8>) -> Result<Operation, DecodeError> {
        let extractor = fields.extractor("test message").unwrap();
        let mut op = Operation::new(OperationKind::Signal, "s", "m");
        extractor.extract(&Bytes::from(message), &mut op)?;
        Ok(op)
    }

    #[test]
    fn mapped_fields_are_found_and_everything_else_is_skipped() {
        let mut message = Vec::new();
        message.extend(len_field(9, b"an unknown field before"));
        message.extend([0x50, 0x96, 0x01]); // field 10, varint 150
        message.extend([0x5d, 1, 2, 3, 4]); // field 11, fixed32
        message.extend([0x61, 1, 2, 3, 4, 5, 6, 7, 8]); // field 12, fixed64
        message.extend([0x6b, 0x08, 0x01, 0x6c]); // field 13, a group holding a varint
        message.extend(len_field(1, b"orders"));
        let mut execution = len_field(1, b"wf-1");
        execution.extend(len_field(2, b"run-1"));
        message.extend(len_field(2, &execution));
        message.extend(len_field(3, b"approve"));
        message.extend(len_field(4, br#"{"amount":5}"#));
        message.extend(len_field(5, b"identity, not mapped"));
        let op = extract(&signal_fields(), message).unwrap();
        assert_eq!(op.namespace.as_deref(), Some("orders"));
        assert_eq!(op.instance_id.as_deref(), Some("wf-1"));
        assert_eq!(op.run_id.as_deref(), Some("run-1"));
        assert_eq!(op.name.as_deref(), Some("approve"));
        assert_eq!(op.args.get(), Some(&serde_json::json!({"amount": 5})));
        assert_eq!(op.workflow_type, None);
    }

    #[test]
    fn the_last_occurrence_wins_and_repeated_messages_merge_as_protobuf_does() {
        let mut message = len_field(1, b"billing");
        message.extend(len_field(2, &len_field(1, b"wf-1")));
        message.extend(len_field(1, b"orders"));
        // The execution again, setting only the run: the workflow id from before stays.
        message.extend(len_field(2, &len_field(2, b"run-2")));
        let op = extract(&signal_fields(), message).unwrap();
        assert_eq!(op.namespace.as_deref(), Some("orders"));
        assert_eq!(op.instance_id.as_deref(), Some("wf-1"));
        assert_eq!(op.run_id.as_deref(), Some("run-2"));
    }

    #[test]
    fn message_arguments_that_occur_twice_are_concatenated() {
        fn count_fields(bytes: &[u8]) -> Option<serde_json::Value> {
            Some(serde_json::Value::from(
                bytes.iter().filter(|b| **b == 0x0a).count(),
            ))
        }
        let fields = Fields::new().message_args(&[4], count_fields);
        let mut message = len_field(4, &len_field(1, b"x"));
        message.extend(len_field(4, &len_field(1, b"y")));
        let op = extract(&fields, message).unwrap();
        assert_eq!(op.args.get(), Some(&serde_json::Value::from(2)));
    }

    #[test]
    fn empty_and_missing_targets_are_absent() {
        let op = extract(&signal_fields(), len_field(1, b"")).unwrap();
        assert_eq!(op.namespace, None);
        assert!(!op.args.is_present());
        let op = extract(&signal_fields(), Vec::new()).unwrap();
        assert_eq!(op.instance_id, None);
    }

    #[test]
    fn malformed_encodings_are_errors_not_guesses() {
        let cases: Vec<(&str, Vec<u8>)> = vec![
            ("truncated varint", vec![0x50, 0x96]),
            ("length past the end", vec![0x0a, 0x05, b'a']),
            ("mapped field as a varint", vec![0x08, 0x01]),
            ("field number 0", vec![0x02, 0x00]),
            ("wire type 6", vec![0x0e]),
            ("stray end group", vec![0x6c]),
            ("unclosed group", vec![0x6b, 0x08, 0x01]),
            ("group closed by another field", vec![0x6b, 0x74]),
            ("invalid UTF-8 namespace", len_field(1, &[0xff, 0xfe])),
            ("nested truncation", len_field(2, &[0x0a, 0x09, b'w'])),
            (
                "varint over 64 bits",
                vec![
                    0x50, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f,
                ],
            ),
        ];
        for (case, message) in cases {
            let error = extract(&signal_fields(), message).expect_err(case);
            assert!(
                error
                    .to_string()
                    .starts_with("cannot decode test message: "),
                "{case}: {error}"
            );
        }
    }

    #[test]
    fn paths_are_checked_when_the_map_is_built() {
        assert!(Fields::new().namespace(&[]).extractor("m").is_err());
        assert!(Fields::new().namespace(&[0]).extractor("m").is_err());
        assert!(Fields::new().namespace(&[1 << 29]).extractor("m").is_err());
        assert!(Fields::new().namespace(&[1, 2]).extractor("m").is_ok());
    }

    #[test]
    fn a_field_can_be_both_a_target_and_the_parent_of_one() {
        // args = the whole `input` message (field 3), name = its field 1.
        let fields = Fields::new()
            .name(&[3, 1])
            .message_args(&[3], |b| Some(serde_json::Value::from(b.len())));
        let op = extract(&fields, len_field(3, &len_field(1, b"go"))).unwrap();
        assert_eq!(op.name.as_deref(), Some("go"));
        assert_eq!(op.args.get(), Some(&serde_json::Value::from(4)));
    }
}

//! The attribute model: definitions and their values, subject mappings, and what an entity is
//! entitled to.

use std::{
    collections::BTreeMap,
    fmt,
    path::{Path, PathBuf},
    sync::Arc,
};

use foldhash::{HashMap, HashMapExt};
use serde::Deserialize;
use serde_json::Value;

/// How a resource's values of one definition are matched against an entity's entitlements.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Rule {
    /// The entity must be entitled to every value of the definition the resource carries.
    #[serde(alias = "ALL_OF", alias = "allof")]
    AllOf,
    /// The entity must be entitled to at least one of them.
    #[serde(alias = "ANY_OF", alias = "anyof")]
    AnyOf,
    /// Values are ordered highest first; the entity must be entitled to the resource's highest
    /// value of the definition or to one above it.
    #[serde(alias = "HIERARCHY")]
    Hierarchy,
}

/// How the conditions of a group are joined.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BoolOp {
    /// Every condition must hold.
    #[default]
    #[serde(alias = "AND")]
    And,
    /// At least one must hold.
    #[serde(alias = "OR")]
    Or,
}

/// How a condition compares the values its selector finds with its own.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Operator {
    /// A selected value equals one of the condition's values.
    #[serde(alias = "IN")]
    In,
    /// No selected value equals any of them (true when the selector finds nothing, as in
    /// OpenTDF).
    #[serde(alias = "NOT_IN")]
    NotIn,
    /// A selected value contains one of them as a substring.
    #[serde(alias = "IN_CONTAINS")]
    InContains,
}

/// The model file: attribute definitions and subject mappings, in TOML or JSON.
///
/// ```toml
/// [[attributes]]
/// namespace = "example.com"
/// name = "classification"
/// rule = "hierarchy"                       # all_of | any_of | hierarchy
/// values = ["topsecret", "secret", "public"]  # a hierarchy's highest first
/// obligations = { topsecret = ["https://example.com/obl/drm/value/watermark"] }
///
/// [[subject_mappings]]
/// attribute_value = "https://example.com/attr/classification/value/secret"
/// actions = ["read"]
/// [[subject_mappings.condition_groups]]   # groups are joined by AND
/// operator = "or"                          # how this group's conditions are joined
/// conditions = [
///   { selector = ".groups[]", operator = "in", values = ["analysts"] },
///   { selector = ".attributes.clearance", operator = "in", values = ["secret"] },
/// ]
/// ```
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelConfig {
    /// The attribute definitions.
    #[serde(default)]
    pub attributes: Vec<AttributeConfig>,
    /// What grants entitlements.
    #[serde(default)]
    pub subject_mappings: Vec<SubjectMappingConfig>,
}

/// One attribute definition.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AttributeConfig {
    /// The namespace (a host name: `example.com`).
    pub namespace: String,
    /// The definition's name.
    pub name: String,
    /// Its rule.
    pub rule: Rule,
    /// Its values (a hierarchy's highest first).
    pub values: Vec<String>,
    /// Value → the obligations a resource carrying it puts on whoever accesses it.
    #[serde(default)]
    pub obligations: BTreeMap<String, Vec<String>>,
}

/// A subject mapping: entities whose representation meets every condition group are granted
/// `actions` on `attribute_value`.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SubjectMappingConfig {
    /// The value FQN granted.
    pub attribute_value: String,
    /// The actions granted on it.
    pub actions: Vec<String>,
    /// Joined by AND; at least one.
    pub condition_groups: Vec<ConditionGroupConfig>,
}

/// Conditions joined by one operator.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConditionGroupConfig {
    /// `and` (default) or `or`.
    #[serde(default)]
    pub operator: BoolOp,
    /// At least one.
    pub conditions: Vec<ConditionConfig>,
}

/// One condition over the entity's representation.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConditionConfig {
    /// A flattened JSON selector: `.groups[]`, `.attributes.department`, `.subject`.
    pub selector: String,
    /// How the selected values are compared.
    pub operator: Operator,
    /// The values compared with (at least one).
    pub values: Vec<String>,
}

/// Every problem found in a model file, each located by its file and item.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}", .problems.iter().map(|p| format!("{}: {p}", .file)).collect::<Vec<_>>().join("\n"))]
pub struct ModelError {
    /// The file (or `<inline>`).
    pub file: String,
    /// The problems, in file order.
    pub problems: Vec<Problem>,
}

/// One problem, at `location` (`attributes[2].values[1]`, or `line 4, column 7` for syntax).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// Where.
    pub location: String,
    /// What is wrong.
    pub message: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.location, self.message)
    }
}

/// The most distinct actions a model may name: an entitlement keeps its actions as bits.
pub const MAX_ACTIONS: usize = 64;

/// An interned attribute value.
pub(crate) type ValueId = u32;

#[derive(Debug)]
pub(crate) struct Definition {
    pub(crate) fqn: Arc<str>,
    pub(crate) rule: Rule,
    /// The definition's values are the ids `first..first + len`, in the configured order.
    pub(crate) first: ValueId,
    pub(crate) len: u32,
}

#[derive(Debug)]
pub(crate) struct AttrValue {
    pub(crate) fqn: Arc<str>,
    pub(crate) definition: u32,
    pub(crate) obligations: Arc<[Arc<str>]>,
}

#[derive(Debug)]
struct Selector {
    segments: Box<[(Box<str>, bool)]>,
}

#[derive(Debug)]
struct Condition {
    operator: Operator,
    values: Box<[Box<str>]>,
}

#[derive(Debug)]
struct Group {
    operator: BoolOp,
    /// Indexes into [`Conditions::list`].
    conditions: Box<[u32]>,
}

/// Every condition of the model, indexed so that an entity's representation is walked once
/// per distinct selector, not once per condition: each value found is looked up once.
#[derive(Debug, Default)]
struct Conditions {
    /// Distinct selectors.
    selectors: Vec<Selector>,
    list: Vec<Condition>,
    /// Per selector: a value → the IN and NOT_IN conditions listing it.
    exact: Vec<HashMap<Box<str>, Vec<u32>>>,
    /// Per selector: its IN_CONTAINS conditions, which test each value found.
    contains: Vec<Vec<u32>>,
}

impl Conditions {
    fn add(
        &mut self,
        selectors: &mut HashMap<String, u32>,
        text: &str,
        selector: Selector,
        condition: Condition,
    ) -> u32 {
        let s = *selectors.entry(text.to_owned()).or_insert_with(|| {
            self.selectors.push(selector);
            self.exact.push(HashMap::new());
            self.contains.push(Vec::new());
            u32::try_from(self.selectors.len() - 1).unwrap_or(u32::MAX)
        });
        let id = u32::try_from(self.list.len()).unwrap_or(u32::MAX);
        match condition.operator {
            Operator::In | Operator::NotIn => {
                for value in &condition.values {
                    let ids = self.exact[s as usize].entry(value.clone()).or_default();
                    if ids.last() != Some(&id) {
                        ids.push(id);
                    }
                }
            }
            Operator::InContains => self.contains[s as usize].push(id),
        }
        self.list.push(condition);
        id
    }

    /// Marks in `met` each condition whose selector finds one of its values (for NOT_IN: one
    /// it must not find).
    fn meet(&self, representation: &Value, met: &mut Vec<bool>) {
        met.clear();
        met.resize(self.list.len(), false);
        for (s, selector) in self.selectors.iter().enumerate() {
            let (exact, contains) = (&self.exact[s], &self.contains[s]);
            selector.any(representation, &mut |leaf| {
                if let Some(ids) = exact.get(leaf) {
                    for &id in ids {
                        met[id as usize] = true;
                    }
                }
                for &id in contains {
                    if !met[id as usize]
                        && self.list[id as usize]
                            .values
                            .iter()
                            .any(|v| leaf.contains(&**v))
                    {
                        met[id as usize] = true;
                    }
                }
                // Keep walking: every value found counts.
                false
            });
        }
    }

    fn holds(&self, id: u32, met: &[bool]) -> bool {
        match self.list[id as usize].operator {
            Operator::In | Operator::InContains => met[id as usize],
            Operator::NotIn => !met[id as usize],
        }
    }
}

#[derive(Debug)]
struct Mapping {
    value: ValueId,
    actions: u64,
    groups: Box<[Group]>,
}

/// A validated, compiled model: what decisions are made from. Cheap to share; a reload swaps
/// in a new one while calls in flight finish on the old.
#[derive(Debug)]
pub struct Model {
    pub(crate) definitions: Vec<Definition>,
    pub(crate) values: Vec<AttrValue>,
    by_fqn: HashMap<Box<str>, ValueId>,
    actions: Vec<Arc<str>>,
    action_ids: HashMap<Box<str>, u8>,
    conditions: Conditions,
    mappings: Vec<Mapping>,
}

/// What an entity may do: (value, action bits), sorted by value, one entry per value.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Entitlements {
    pub(crate) grants: Vec<(ValueId, u64)>,
}

impl Entitlements {
    /// Whether the entity holds no entitlement at all.
    pub fn is_empty(&self) -> bool {
        self.grants.is_empty()
    }

    #[inline]
    pub(crate) fn get(&self, value: ValueId) -> u64 {
        match self.grants.binary_search_by_key(&value, |(v, _)| *v) {
            Ok(at) => self.grants[at].1,
            Err(_) => 0,
        }
    }

    /// Whether any value in `first..=last` carries `bit`.
    #[inline]
    pub(crate) fn any_in(&self, first: ValueId, last: ValueId, bit: u64) -> bool {
        let start = self.grants.partition_point(|(v, _)| *v < first);
        self.grants[start..]
            .iter()
            .take_while(|(v, _)| *v <= last)
            .any(|(_, actions)| actions & bit != 0)
    }
}

impl Model {
    /// Reads and compiles a model file: TOML, or JSON when its name ends in `.json`.
    pub fn load(path: impl AsRef<Path>) -> Result<Self, ModelError> {
        let path = path.as_ref();
        Self::parse(&read(path)?, is_json(path), &path.display().to_string())
    }

    /// Parses and compiles a model given as text; `file` names it in errors.
    pub fn parse(text: &str, json: bool, file: &str) -> Result<Self, ModelError> {
        let syntax = |location: String, message: String| ModelError {
            file: file.to_owned(),
            problems: vec![Problem { location, message }],
        };
        let config: ModelConfig = if json {
            serde_json::from_str(text).map_err(|e| {
                syntax(
                    format!("line {}, column {}", e.line(), e.column()),
                    e.to_string(),
                )
            })?
        } else {
            toml::from_str(text).map_err(|e| {
                let location = e
                    .span()
                    .map(|span| line_column(text, span.start))
                    .unwrap_or_else(|| "file".to_owned());
                syntax(location, e.message().to_owned())
            })?
        };
        Self::compile(&config).map_err(|problems| ModelError {
            file: file.to_owned(),
            problems,
        })
    }

    /// Validates and compiles `config`, naming every problem.
    pub fn compile(config: &ModelConfig) -> Result<Self, Vec<Problem>> {
        let mut problems = Vec::new();
        let mut problem = |location: String, message: String| {
            problems.push(Problem { location, message });
        };
        let mut model = Self {
            definitions: Vec::new(),
            values: Vec::new(),
            by_fqn: HashMap::new(),
            actions: Vec::new(),
            action_ids: HashMap::new(),
            conditions: Conditions::default(),
            mappings: Vec::new(),
        };
        let mut selectors = HashMap::new();
        let mut definitions = HashMap::new();
        for (i, attribute) in config.attributes.iter().enumerate() {
            let at = format!("attributes[{i}]");
            for (field, part) in [
                ("namespace", &attribute.namespace),
                ("name", &attribute.name),
            ] {
                if let Err(why) = fqn_part(part) {
                    problem(format!("{at}.{field}"), why);
                }
            }
            let fqn = format!(
                "https://{}/attr/{}",
                attribute.namespace.to_ascii_lowercase(),
                attribute.name.to_ascii_lowercase()
            );
            if let Some(earlier) = definitions.insert(fqn.clone(), i) {
                problem(
                    at.clone(),
                    format!("`{fqn}` is already defined by attributes[{earlier}]"),
                );
            }
            if attribute.values.is_empty() {
                problem(
                    format!("{at}.values"),
                    "a definition needs values".to_owned(),
                );
            }
            let index = u32::try_from(model.definitions.len()).unwrap_or(u32::MAX);
            let first = u32::try_from(model.values.len()).unwrap_or(u32::MAX);
            for (j, value) in attribute.values.iter().enumerate() {
                if let Err(why) = fqn_part(value) {
                    problem(format!("{at}.values[{j}]"), why);
                }
                let value_fqn = format!("{fqn}/value/{}", value.to_ascii_lowercase());
                let obligations = attribute
                    .obligations
                    .iter()
                    .find(|(name, _)| name.eq_ignore_ascii_case(value))
                    .map(|(_, list)| list.iter().map(|o| Arc::from(o.as_str())).collect())
                    .unwrap_or_default();
                let id = u32::try_from(model.values.len()).unwrap_or(u32::MAX);
                if model.by_fqn.insert(value_fqn.clone().into(), id).is_some() {
                    problem(
                        format!("{at}.values[{j}]"),
                        format!("`{value}` is listed twice"),
                    );
                }
                model.values.push(AttrValue {
                    fqn: value_fqn.into(),
                    definition: index,
                    obligations,
                });
            }
            for name in attribute.obligations.keys() {
                if !attribute
                    .values
                    .iter()
                    .any(|v| v.eq_ignore_ascii_case(name))
                {
                    problem(
                        format!("{at}.obligations.{name}"),
                        "not one of the definition's values".to_owned(),
                    );
                }
            }
            model.definitions.push(Definition {
                fqn: fqn.into(),
                rule: attribute.rule,
                first,
                len: u32::try_from(attribute.values.len()).unwrap_or(u32::MAX),
            });
        }
        for (i, mapping) in config.subject_mappings.iter().enumerate() {
            let at = format!("subject_mappings[{i}]");
            let value = model.value_id(&mapping.attribute_value);
            if value.is_none() {
                problem(
                    format!("{at}.attribute_value"),
                    format!(
                        "`{}` is not a value of a defined attribute",
                        mapping.attribute_value
                    ),
                );
            }
            if mapping.actions.is_empty() {
                problem(format!("{at}.actions"), "grants no action".to_owned());
            }
            let mut actions = 0u64;
            for (j, action) in mapping.actions.iter().enumerate() {
                match model.intern_action(action) {
                    Ok(bit) => actions |= bit,
                    Err(why) => problem(format!("{at}.actions[{j}]"), why),
                }
            }
            if mapping.condition_groups.is_empty() {
                problem(
                    format!("{at}.condition_groups"),
                    "needs at least one group (a mapping that matches everyone must say so with a condition)".to_owned(),
                );
            }
            let mut groups = Vec::new();
            for (g, group) in mapping.condition_groups.iter().enumerate() {
                if group.conditions.is_empty() {
                    problem(
                        format!("{at}.condition_groups[{g}].conditions"),
                        "needs at least one condition".to_owned(),
                    );
                }
                let mut conditions = Vec::new();
                for (c, condition) in group.conditions.iter().enumerate() {
                    let here = format!("{at}.condition_groups[{g}].conditions[{c}]");
                    if condition.values.is_empty() {
                        problem(
                            format!("{here}.values"),
                            "needs at least one value".to_owned(),
                        );
                    }
                    match Selector::parse(&condition.selector) {
                        Ok(selector) => conditions.push(model.conditions.add(
                            &mut selectors,
                            &condition.selector,
                            selector,
                            Condition {
                                operator: condition.operator,
                                values:
                                    condition.values.iter().map(|v| v.as_str().into()).collect(),
                            },
                        )),
                        Err(why) => problem(format!("{here}.selector"), why),
                    }
                }
                groups.push(Group {
                    operator: group.operator,
                    conditions: conditions.into(),
                });
            }
            if let Some(value) = value {
                model.mappings.push(Mapping {
                    value,
                    actions,
                    groups: groups.into(),
                });
            }
        }
        if problems.is_empty() {
            Ok(model)
        } else {
            Err(problems)
        }
    }

    fn intern_action(&mut self, action: &str) -> Result<u64, String> {
        if action.trim().is_empty() {
            return Err("an action needs a name".to_owned());
        }
        if let Some(id) = self.action_id(action) {
            return Ok(1 << id);
        }
        if self.actions.len() == MAX_ACTIONS {
            return Err(format!("more than {MAX_ACTIONS} distinct actions"));
        }
        let id = u8::try_from(self.actions.len()).unwrap_or(u8::MAX);
        self.actions.push(action.to_ascii_lowercase().into());
        self.action_ids
            .insert(action.to_ascii_lowercase().into(), id);
        Ok(1 << id)
    }

    /// The id of `action` (case-insensitive), if any mapping grants it.
    pub(crate) fn action_id(&self, action: &str) -> Option<u8> {
        if action.bytes().any(|b| b.is_ascii_uppercase()) {
            self.action_ids
                .get(action.to_ascii_lowercase().as_str())
                .copied()
        } else {
            self.action_ids.get(action).copied()
        }
    }

    /// The action names, by id.
    pub(crate) fn action_name(&self, id: u32) -> &Arc<str> {
        &self.actions[id as usize]
    }

    /// The interned id of a value FQN, compared ASCII-case-insensitively.
    pub(crate) fn value_id(&self, fqn: &str) -> Option<ValueId> {
        if fqn.bytes().any(|b| b.is_ascii_uppercase()) {
            self.by_fqn.get(fqn.to_ascii_lowercase().as_str()).copied()
        } else {
            self.by_fqn.get(fqn).copied()
        }
    }

    /// How many definitions, values and subject mappings the model holds.
    pub fn counts(&self) -> (usize, usize, usize) {
        (
            self.definitions.len(),
            self.values.len(),
            self.mappings.len(),
        )
    }

    /// What an entity with `representation` is entitled to: every subject mapping evaluated
    /// once.
    pub fn entitlements(&self, representation: &Value) -> Entitlements {
        self.entitlements_with(representation, &mut Vec::new())
    }

    /// [`Model::entitlements`] with a scratch buffer reused across many entities.
    pub fn entitlements_with(&self, representation: &Value, met: &mut Vec<bool>) -> Entitlements {
        self.conditions.meet(representation, met);
        let mut grants: Vec<(ValueId, u64)> = Vec::new();
        for mapping in &self.mappings {
            let holds = mapping.groups.iter().all(|group| {
                let mut each = group
                    .conditions
                    .iter()
                    .map(|&c| self.conditions.holds(c, met));
                match group.operator {
                    BoolOp::And => each.all(|held| held),
                    BoolOp::Or => each.any(|held| held),
                }
            });
            if holds {
                grants.push((mapping.value, mapping.actions));
            }
        }
        grants.sort_unstable_by_key(|(value, _)| *value);
        grants.dedup_by(|later, earlier| {
            if later.0 == earlier.0 {
                earlier.1 |= later.1;
                true
            } else {
                false
            }
        });
        Entitlements { grants }
    }

    /// `entitlements` as (value FQN, action names), with the lower values a hierarchy
    /// entitlement implies when `comprehensive`.
    pub fn describe(
        &self,
        entitlements: &Entitlements,
        comprehensive: bool,
    ) -> Vec<(Arc<str>, Vec<Arc<str>>)> {
        let mut all: BTreeMap<ValueId, u64> = BTreeMap::new();
        for &(value, actions) in &entitlements.grants {
            *all.entry(value).or_default() |= actions;
            let definition = &self.definitions[self.values[value as usize].definition as usize];
            if comprehensive && definition.rule == Rule::Hierarchy {
                for lower in value + 1..definition.first + definition.len {
                    *all.entry(lower).or_default() |= actions;
                }
            }
        }
        all.into_iter()
            .map(|(value, actions)| {
                let names = (0..64u32)
                    .filter(|bit| actions & (1u64 << bit) != 0)
                    .map(|bit| Arc::clone(self.action_name(bit)))
                    .collect();
                (Arc::clone(&self.values[value as usize].fqn), names)
            })
            .collect()
    }
}

/// The model file's text, or why it cannot be read.
fn read(path: &Path) -> Result<String, ModelError> {
    std::fs::read_to_string(path).map_err(|e| ModelError {
        file: path.display().to_string(),
        problems: vec![Problem {
            location: "file".to_owned(),
            message: format!("cannot be read: {e}"),
        }],
    })
}

fn is_json(path: &Path) -> bool {
    path.extension()
        .is_some_and(|ext| ext.eq_ignore_ascii_case("json"))
}

fn line_column(text: &str, offset: usize) -> String {
    let before = &text[..offset.min(text.len())];
    let line = before.matches('\n').count() + 1;
    let column = before.len() - before.rfind('\n').map_or(0, |at| at + 1) + 1;
    format!("line {line}, column {column}")
}

fn fqn_part(part: &str) -> Result<(), String> {
    if part.is_empty() {
        Err("must not be empty".to_owned())
    } else if part.contains('/') || part.chars().any(char::is_whitespace) {
        Err(format!("`{part}` must not hold `/` or white space"))
    } else {
        Ok(())
    }
}

impl Selector {
    /// `.a.b[]`: keys separated by dots, `[]` after a key to look into each element of an
    /// array (arrays are looked into either way).
    fn parse(text: &str) -> Result<Self, String> {
        let rest = text
            .strip_prefix('.')
            .ok_or_else(|| format!("`{text}` must start with `.` (as in `.groups[]`)"))?;
        let mut segments = Vec::new();
        for part in rest.split('.') {
            let (key, each) = match part.strip_suffix("[]") {
                Some(key) => (key, true),
                None => (part, false),
            };
            if key.is_empty() || key.contains(['[', ']']) {
                return Err(format!(
                    "`{text}`: `{part}` is not a key (keys are separated by `.`, `[]` looks into an array)"
                ));
            }
            segments.push((key.into(), each));
        }
        Ok(Self {
            segments: segments.into(),
        })
    }

    /// Whether `test` holds for any scalar the selector finds (strings as they are, numbers
    /// and booleans in their JSON spelling).
    fn any(&self, value: &Value, test: &mut dyn FnMut(&str) -> bool) -> bool {
        walk(value, &self.segments, test)
    }
}

fn walk(value: &Value, segments: &[(Box<str>, bool)], test: &mut dyn FnMut(&str) -> bool) -> bool {
    match (value, segments.split_first()) {
        (Value::Array(items), _) => items.iter().any(|item| walk(item, segments, test)),
        (Value::Object(map), Some(((key, _), rest))) => {
            map.get(&**key).is_some_and(|next| walk(next, rest, test))
        }
        (Value::String(text), None) => test(text),
        (Value::Number(number), None) => test(&number.to_string()),
        (Value::Bool(flag), None) => test(if *flag { "true" } else { "false" }),
        _ => false,
    }
}

/// A model that can be replaced while calls read it: each call takes the current one once.
#[derive(Clone, Debug)]
pub struct ModelHandle {
    shared: Arc<HandleInner>,
}

#[derive(Debug)]
struct HandleInner {
    current: std::sync::RwLock<Arc<Model>>,
    path: Option<PathBuf>,
    seen: std::sync::Mutex<Option<String>>,
}

impl ModelHandle {
    /// A handle on a model that is never reloaded.
    pub fn new(model: Model) -> Self {
        Self {
            shared: Arc::new(HandleInner {
                current: std::sync::RwLock::new(Arc::new(model)),
                path: None,
                seen: std::sync::Mutex::new(None),
            }),
        }
    }

    /// Loads the model file at `path`; [`ModelHandle::watch`] reloads it when it changes.
    pub fn load(path: impl Into<PathBuf>) -> Result<Self, ModelError> {
        let path = path.into();
        let text = read(&path)?;
        let model = Model::parse(&text, is_json(&path), &path.display().to_string())?;
        Ok(Self {
            shared: Arc::new(HandleInner {
                current: std::sync::RwLock::new(Arc::new(model)),
                path: Some(path),
                seen: std::sync::Mutex::new(Some(text)),
            }),
        })
    }

    /// The current model.
    pub fn current(&self) -> Arc<Model> {
        Arc::clone(
            &self
                .shared
                .current
                .read()
                .unwrap_or_else(std::sync::PoisonError::into_inner),
        )
    }

    /// Replaces the model; calls already deciding finish on the one they took.
    pub fn replace(&self, model: Model) {
        *self
            .shared
            .current
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = Arc::new(model);
    }

    /// Polls the file every `every` on the Tokio runtime and reloads it when it changes, until
    /// the handle is dropped. A changed file is taken only once it has settled (two reads agree
    /// on text, length and modification time; see [`warden_core::watch`]), so one caught
    /// mid-write is not taken for a shorter valid one; an invalid file is logged with every
    /// problem and the previous model stays.
    pub fn watch(&self, every: std::time::Duration) {
        let Some(path) = self.shared.path.clone() else {
            return;
        };
        warden_core::watch::watch_file(
            Arc::downgrade(&self.shared),
            path.clone(),
            every,
            move |shared, text| {
                let mut seen = shared
                    .seen
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner);
                if seen.as_deref() == Some(text.as_str()) {
                    return;
                }
                let parsed = Model::parse(&text, is_json(&path), &path.display().to_string());
                // Remembered either way, so an invalid file is reported once, not every poll.
                *seen = Some(text);
                drop(seen);
                match parsed {
                    Ok(model) => {
                        let (definitions, values, mappings) = model.counts();
                        let handle = ModelHandle {
                            shared: Arc::clone(shared),
                        };
                        handle.replace(model);
                        tracing::info!(path = %path.display(), definitions, values, mappings, "attribute model reloaded");
                    }
                    Err(error) => {
                        tracing::error!(%error, "the changed attribute model is invalid; keeping the previous one");
                    }
                }
            },
        );
    }
}

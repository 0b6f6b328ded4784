use std::{fmt, sync::Arc};

use http::Method;
use percent_encoding::percent_decode_str;
use warden_core::{Operation, OperationKind};

use super::MapError;

/// What a plain HTTP route does: its kind, and whether its JSON body holds the arguments.
#[derive(Debug, Clone, Copy)]
pub struct HttpRoute {
    kind: OperationKind,
    args_from_body: bool,
}

impl HttpRoute {
    /// A route of `kind`.
    pub fn new(kind: OperationKind) -> Self {
        Self {
            kind,
            args_from_body: false,
        }
    }

    /// Reads the JSON request body (up to the classify layer's limit) as the arguments.
    #[must_use]
    pub fn args_from_body(mut self) -> Self {
        self.args_from_body = true;
        self
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Target {
    Namespace,
    Instance,
    Run,
    WorkflowType,
    TaskQueue,
    Name,
    Ignored,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Segment {
    Literal(String),
    Param(Target),
}

#[derive(Debug, Clone)]
struct CompiledRoute {
    method: Method,
    label: Arc<str>,
    segments: Vec<Segment>,
    route: HttpRoute,
}

/// Maps plain HTTP routes (method and path template) to operations.
///
/// Templates are `/`-separated literals and `{placeholders}`. The placeholders `{namespace}`,
/// `{instance}`, `{run}`, `{workflow_type}`, `{task_queue}` and `{name}` fill those targets;
/// any other placeholder matches one segment and is ignored. A request no route matches is
/// classified as [`OperationKind::Other`] and still goes to the policy.
///
/// ```
/// use http::Method;
/// use warden_core::OperationKind;
/// use warden_tower::map::{HttpOperationMap, HttpRoute};
///
/// let map = HttpOperationMap::builder()
///     .route(Method::POST, "/v1/{namespace}/workflows/{instance}/signals/{name}",
///            HttpRoute::new(OperationKind::Signal).args_from_body())
///     .build()
///     .unwrap();
/// let (op, _) = map.classify(&Method::POST, "/v1/orders/workflows/wf-1/signals/approve").unwrap();
/// assert_eq!(op.kind, OperationKind::Signal);
/// assert_eq!(op.instance_id.as_deref(), Some("wf-1"));
/// ```
#[derive(Clone, Default)]
pub struct HttpOperationMap {
    routes: Arc<[CompiledRoute]>,
}

impl fmt::Debug for HttpOperationMap {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HttpOperationMap")
            .field("routes", &self.routes.len())
            .finish()
    }
}

/// Builds an [`HttpOperationMap`].
#[derive(Debug, Default)]
#[must_use]
pub struct HttpOperationMapBuilder {
    routes: Vec<(Method, String, HttpRoute)>,
}

impl HttpOperationMap {
    /// Starts a map.
    pub fn builder() -> HttpOperationMapBuilder {
        HttpOperationMapBuilder::default()
    }

    /// The operation of `method` on `path`, and whether its body holds the arguments; `None`
    /// when no route matches.
    pub fn classify(&self, method: &Method, path: &str) -> Option<(Operation, bool)> {
        let parts: Vec<&str> = path.strip_prefix('/')?.split('/').collect();
        'routes: for route in self.routes.iter() {
            if route.method != *method || route.segments.len() != parts.len() {
                continue;
            }
            let mut operation = Operation::new(route.route.kind, "http", Arc::clone(&route.label));
            for (segment, part) in route.segments.iter().zip(&parts) {
                match segment {
                    Segment::Literal(literal) if literal == part => {}
                    Segment::Literal(_) => continue 'routes,
                    Segment::Param(target) => {
                        let Ok(value) = percent_decode_str(part).decode_utf8() else {
                            continue 'routes;
                        };
                        if value.is_empty() {
                            continue 'routes;
                        }
                        operation = fill(operation, *target, value.into_owned());
                    }
                }
            }
            return Some((operation, route.route.args_from_body));
        }
        None
    }
}

fn fill(operation: Operation, target: Target, value: String) -> Operation {
    match target {
        Target::Namespace => operation.with_namespace(value),
        Target::Instance => operation.with_instance(value),
        Target::Run => operation.with_run(value),
        Target::WorkflowType => operation.with_workflow_type(value),
        Target::TaskQueue => operation.with_task_queue(value),
        Target::Name => operation.with_name(value),
        Target::Ignored => operation,
    }
}

impl HttpOperationMapBuilder {
    /// Maps `method` on `template` to `route`. Routes are tried in the order added.
    pub fn route(mut self, method: Method, template: &str, route: HttpRoute) -> Self {
        self.routes.push((method, template.to_owned(), route));
        self
    }

    /// Checks the templates and builds the map.
    pub fn build(self) -> Result<HttpOperationMap, MapError> {
        let routes = self
            .routes
            .into_iter()
            .map(|(method, template, route)| {
                let invalid = |reason| MapError::InvalidPath {
                    path: template.clone(),
                    reason,
                };
                let rest = template
                    .strip_prefix('/')
                    .ok_or_else(|| invalid("a route template must start with `/`"))?;
                let segments = rest
                    .split('/')
                    .map(|segment| {
                        match segment.strip_prefix('{').and_then(|s| s.strip_suffix('}')) {
                            Some("namespace") => Ok(Segment::Param(Target::Namespace)),
                            Some("instance") => Ok(Segment::Param(Target::Instance)),
                            Some("run") => Ok(Segment::Param(Target::Run)),
                            Some("workflow_type") => Ok(Segment::Param(Target::WorkflowType)),
                            Some("task_queue") => Ok(Segment::Param(Target::TaskQueue)),
                            Some("name") => Ok(Segment::Param(Target::Name)),
                            Some(other) if !other.is_empty() => Ok(Segment::Param(Target::Ignored)),
                            Some(_) => Err(invalid("an empty `{}` placeholder")),
                            None if segment.contains(['{', '}']) => {
                                Err(invalid("a placeholder must be a whole segment"))
                            }
                            None => Ok(Segment::Literal(segment.to_owned())),
                        }
                    })
                    .collect::<Result<Vec<_>, _>>()?;
                Ok(CompiledRoute {
                    label: format!("{method} {template}").into(),
                    method,
                    segments,
                    route,
                })
            })
            .collect::<Result<Vec<_>, MapError>>()?;
        Ok(HttpOperationMap {
            routes: routes.into(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map() -> HttpOperationMap {
        HttpOperationMap::builder()
            .route(
                Method::GET,
                "/v1/{namespace}/workflows/{instance}",
                HttpRoute::new(OperationKind::Read),
            )
            .route(
                Method::POST,
                "/v1/{namespace}/workflows/{instance}/signals/{name}",
                HttpRoute::new(OperationKind::Signal).args_from_body(),
            )
            .build()
            .unwrap()
    }

    #[test]
    fn templates_fill_targets_and_decode_percent_escapes() {
        let (op, args) = map()
            .classify(&Method::POST, "/v1/orders/workflows/wf%201/signals/approve")
            .unwrap();
        assert_eq!(op.kind, OperationKind::Signal);
        assert_eq!(op.namespace.as_deref(), Some("orders"));
        assert_eq!(op.instance_id.as_deref(), Some("wf 1"));
        assert_eq!(op.name.as_deref(), Some("approve"));
        assert_eq!(
            &*op.method,
            "POST /v1/{namespace}/workflows/{instance}/signals/{name}"
        );
        assert!(args);
    }

    #[test]
    fn method_segment_count_and_literals_must_match() {
        let map = map();
        assert!(
            map.classify(&Method::DELETE, "/v1/orders/workflows/wf")
                .is_none()
        );
        assert!(
            map.classify(&Method::GET, "/v1/orders/workflows/wf/extra")
                .is_none()
        );
        assert!(
            map.classify(&Method::GET, "/v2/orders/workflows/wf")
                .is_none()
        );
        assert!(map.classify(&Method::GET, "/v1//workflows/wf").is_none());
    }

    #[test]
    fn malformed_templates_are_refused() {
        let bad = HttpOperationMap::builder()
            .route(
                Method::GET,
                "/v1/x{namespace}",
                HttpRoute::new(OperationKind::Read),
            )
            .build();
        assert!(bad.is_err());
    }
}

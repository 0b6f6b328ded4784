//! The decision rules, subject mappings, obligations and limits, as tables; a property test
//! that many-entity answers equal single decisions; bulk calls that resolve each entity once.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::{
    Arc, Mutex,
    atomic::{AtomicUsize, Ordering},
};

use rand::{Rng, SeedableRng, rngs::StdRng};
use serde_json::{Value, json};
use warden_pdp::{
    DecisionPoint, Decisions, EntityInput, EntityRef, EntityResolver, Limits, Model, ModelHandle,
    MultiResourceRequest, PdpError, ResolveFuture, ResourceInput, StandardResolver,
};

const MODEL: &str = r#"
[[attributes]]
namespace = "example.com"
name = "classification"
rule = "hierarchy"
values = ["topsecret", "secret", "confidential", "public"]
obligations = { topsecret = ["https://example.com/obl/drm/value/watermark"] }

[[attributes]]
namespace = "example.com"
name = "department"
rule = "any_of"
values = ["eng", "sales", "hr"]

[[attributes]]
namespace = "example.com"
name = "project"
rule = "all_of"
values = ["apollo", "gemini"]

# Clearance grants read on its level; only topsecret also grants decrypt.
[[subject_mappings]]
attribute_value = "https://example.com/attr/classification/value/topsecret"
actions = ["read", "decrypt"]
condition_groups = [{ conditions = [{ selector = ".attributes.clearance", operator = "in", values = ["topsecret"] }] }]

[[subject_mappings]]
attribute_value = "https://example.com/attr/classification/value/secret"
actions = ["read"]
condition_groups = [{ conditions = [{ selector = ".attributes.clearance", operator = "in", values = ["secret"] }] }]

[[subject_mappings]]
attribute_value = "https://example.com/attr/classification/value/public"
actions = ["read"]
condition_groups = [{ conditions = [{ selector = ".subject", operator = "not_in", values = ["mallory"] }] }]

[[subject_mappings]]
attribute_value = "https://example.com/attr/department/value/eng"
actions = ["read"]
condition_groups = [{ conditions = [{ selector = ".groups[]", operator = "in", values = ["engineers"] }] }]

# Sales: a sales group AND (a manager title OR a sales e-mail).
[[subject_mappings]]
attribute_value = "https://example.com/attr/department/value/sales"
actions = ["read"]
[[subject_mappings.condition_groups]]
conditions = [{ selector = ".groups[]", operator = "in", values = ["sales"] }]
[[subject_mappings.condition_groups]]
operator = "or"
conditions = [
  { selector = ".attributes.title", operator = "in", values = ["manager"] },
  { selector = ".attributes.email", operator = "in_contains", values = ["@sales.example.com"] },
]

[[subject_mappings]]
attribute_value = "https://example.com/attr/project/value/apollo"
actions = ["read"]
condition_groups = [{ conditions = [{ selector = ".attributes.projects[]", operator = "in", values = ["apollo"] }] }]

[[subject_mappings]]
attribute_value = "https://example.com/attr/project/value/gemini"
actions = ["read"]
condition_groups = [{ conditions = [{ selector = ".attributes.projects[]", operator = "in", values = ["gemini"] }] }]
"#;

fn point() -> DecisionPoint {
    let model = Model::parse(MODEL, false, "model.toml").unwrap();
    DecisionPoint::new(ModelHandle::new(model), StandardResolver::new())
}

fn v(definition: &str, value: &str) -> String {
    format!("https://example.com/attr/{definition}/value/{value}")
}

fn run<T>(future: impl std::future::Future<Output = T>) -> T {
    tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap()
        .block_on(future)
}

/// (permitted, failed definitions' names, reason) of one entity on one resource.
fn decide_one(
    point: &DecisionPoint,
    entity: Value,
    action: &str,
    values: &[String],
) -> (bool, Vec<String>, Option<String>) {
    let decisions = run(point.decide(
        &EntityInput::claims("e", entity),
        action,
        &ResourceInput::new("r", values.iter().map(String::as_str)),
    ))
    .unwrap();
    let entity = &decisions.entities[0];
    let d = decisions.decisions(entity).next().unwrap();
    (
        d.permitted(),
        d.failed_definitions()
            .map(|f| f.rsplit('/').next().unwrap().to_owned())
            .collect(),
        d.reason().map(|r| r.into_owned()),
    )
}

/// (what, entity, action, resource values, permitted, failed definitions).
type Case<'a> = (
    &'a str,
    &'a Value,
    &'a str,
    Vec<String>,
    bool,
    &'a [&'a str],
);

#[test]
fn hierarchy_all_of_any_of_and_mixed_definitions_decide_as_the_table_says() {
    let point = point();
    let secret = json!({"subject": "sam", "attributes": {"clearance": "secret"}});
    let top = json!({"subject": "tia", "attributes": {"clearance": "topsecret"}});
    let nobody = json!({"subject": "mallory"});
    let eng = json!({"subject": "eve", "groups": ["engineers"], "attributes": {"clearance": "secret", "projects": ["apollo"]}});
    let both_projects = json!({"subject": "pat", "attributes": {"projects": ["apollo", "gemini"]}});
    let c = |value: &str| v("classification", value);
    #[rustfmt::skip]
    let table: Vec<Case<'_>> = vec![
        ("the highest value itself", &secret, "read", vec![c("secret")], true, &[]),
        ("a value above the requested one", &top, "read", vec![c("secret")], true, &[]),
        ("a value far above", &top, "read", vec![c("confidential")], true, &[]),
        ("a value below the requested one", &secret, "read", vec![c("topsecret")], false, &["classification"]),
        ("the resource's highest value decides", &secret, "read", vec![c("public"), c("topsecret")], false, &["classification"]),
        ("lower values beside the highest", &secret, "read", vec![c("public"), c("secret")], true, &[]),
        ("a wrong action", &secret, "decrypt", vec![c("secret")], false, &["classification"]),
        ("an action no mapping grants", &top, "shred", vec![c("public")], false, &["classification"]),
        ("the right action above", &top, "decrypt", vec![c("secret")], true, &[]),
        ("no entitlements", &nobody, "read", vec![c("public")], false, &["classification"]),
        ("any-of: one value entitled", &eng, "read", vec![v("department", "eng"), v("department", "sales")], true, &[]),
        ("any-of: none entitled", &eng, "read", vec![v("department", "sales"), v("department", "hr")], false, &["department"]),
        ("all-of: one of two", &eng, "read", vec![v("project", "apollo"), v("project", "gemini")], false, &["project"]),
        ("all-of: both", &both_projects, "read", vec![v("project", "apollo"), v("project", "gemini")], true, &[]),
        ("all-of: the one it has", &eng, "read", vec![v("project", "apollo")], true, &[]),
        ("mixed: every definition passes", &eng, "read", vec![c("secret"), v("department", "eng"), v("project", "apollo")], true, &[]),
        ("mixed: only the failing definition is named", &eng, "read", vec![c("secret"), v("department", "hr"), v("project", "gemini")], false, &["department", "project"]),
        ("case-insensitive FQNs", &secret, "READ", vec!["HTTPS://Example.COM/attr/Classification/value/SECRET".to_owned()], true, &[]),
    ];
    for (what, entity, action, values, permitted, failed) in table {
        let (got, got_failed, reason) = decide_one(&point, entity.clone(), action, &values);
        assert_eq!(got, permitted, "{what}: permitted");
        assert_eq!(got_failed, failed, "{what}: failed definitions");
        assert_eq!(reason, None, "{what}: no other reason");
    }
}

#[test]
fn an_unknown_value_denies_only_its_resource_and_says_which() {
    let point = point();
    let decisions = run(point.decide_multi_resource(
        &EntityInput::claims("tia", json!({"attributes": {"clearance": "topsecret"}})),
        "read",
        &[
            ResourceInput::new("known", [v("classification", "secret")]),
            ResourceInput::new(
                "unknown",
                [v("classification", "secret"), v("classification", "cosmic")],
            ),
            ResourceInput::new("bare", Vec::<String>::new()),
        ],
    ))
    .unwrap();
    let entity = &decisions.entities[0];
    assert!(!entity.all_permitted);
    let all: Vec<_> = decisions.decisions(entity).collect();
    assert!(all[0].permitted());
    assert!(!all[1].permitted());
    assert_eq!(
        all[1].reason().unwrap(),
        "unknown attribute value `https://example.com/attr/classification/value/cosmic`"
    );
    assert!(!all[2].permitted());
    assert_eq!(
        all[2].reason().unwrap(),
        "the resource carries no attribute values"
    );
}

#[test]
fn obligations_of_the_resources_values_come_with_the_decision() {
    let point = point();
    let decisions = run(point.decide_multi_resource(
        &EntityInput::claims("tia", json!({"attributes": {"clearance": "topsecret"}})),
        "read",
        &[
            ResourceInput::new("top", [v("classification", "topsecret")]),
            ResourceInput::new("public", [v("classification", "public")]),
        ],
    ))
    .unwrap();
    let all: Vec<_> = decisions.decisions(&decisions.entities[0]).collect();
    assert!(all[0].permitted() && all[1].permitted());
    assert_eq!(
        all[0].obligations().collect::<Vec<_>>(),
        ["https://example.com/obl/drm/value/watermark"]
    );
    assert_eq!(all[1].obligations().count(), 0);
}

#[test]
fn subject_mapping_operators_and_and_or_groups_match_as_specified() {
    let point = point();
    let sales = |entity: Value| decide_one(&point, entity, "read", &[v("department", "sales")]).0;
    // Group 1 (sales) AND group 2 (manager OR sales e-mail).
    assert!(sales(
        json!({"groups": ["sales"], "attributes": {"title": "manager"}})
    ));
    assert!(sales(
        json!({"groups": ["x", "sales"], "attributes": {"email": "kim@sales.example.com"}})
    ));
    assert!(!sales(json!({"groups": ["sales"]})), "the OR group fails");
    assert!(
        !sales(json!({"groups": ["eng"], "attributes": {"title": "manager"}})),
        "the first group fails"
    );
    assert!(
        !sales(json!({"groups": ["sales"], "attributes": {"email": "kim@example.com"}})),
        "IN_CONTAINS needs the substring"
    );
    // NOT_IN: true unless a selected value is listed, also when the field is missing.
    let public =
        |entity: Value| decide_one(&point, entity, "read", &[v("classification", "public")]).0;
    assert!(public(json!({"subject": "ann"})));
    assert!(public(json!({})));
    assert!(!public(json!({"subject": "mallory"})));
    // IN over an array selector and a scalar one; numbers compare by their JSON spelling.
    let model = Model::parse(
        r#"
[[attributes]]
namespace = "n.io"
name = "level"
rule = "any_of"
values = ["one"]
[[subject_mappings]]
attribute_value = "https://n.io/attr/level/value/one"
actions = ["read"]
condition_groups = [{ conditions = [{ selector = ".attributes.level", operator = "in", values = ["7"] }] }]
"#,
        false,
        "n.toml",
    )
    .unwrap();
    let numbers = DecisionPoint::new(ModelHandle::new(model), StandardResolver::new());
    let one = vec!["https://n.io/attr/level/value/one".to_owned()];
    assert!(decide_one(&numbers, json!({"attributes": {"level": 7}}), "read", &one).0);
    assert!(!decide_one(&numbers, json!({"attributes": {"level": 8}}), "read", &one).0);
}

#[test]
fn invalid_model_files_name_every_problem_with_its_place() {
    let error = Model::parse(
        r#"
[[attributes]]
namespace = "example.com"
name = "a"
rule = "any_of"
values = ["x", "x", "y/z"]
obligations = { w = ["o"] }

[[subject_mappings]]
attribute_value = "https://example.com/attr/a/value/nope"
actions = []
condition_groups = [{ conditions = [{ selector = "groups", operator = "in", values = [] }] }]
"#,
        false,
        "bad.toml",
    )
    .unwrap_err();
    let text = error.to_string();
    for expected in [
        "bad.toml: attributes[0].values[1]: `x` is listed twice",
        "bad.toml: attributes[0].values[2]: `y/z` must not hold `/`",
        "bad.toml: attributes[0].obligations.w: not one of the definition's values",
        "bad.toml: subject_mappings[0].attribute_value: `https://example.com/attr/a/value/nope` is not a value",
        "bad.toml: subject_mappings[0].actions: grants no action",
        "bad.toml: subject_mappings[0].condition_groups[0].conditions[0].values: needs at least one value",
        "bad.toml: subject_mappings[0].condition_groups[0].conditions[0].selector: `groups` must start with `.`",
    ] {
        assert!(text.contains(expected), "missing `{expected}` in:\n{text}");
    }
    let syntax = Model::parse("[[attributes]]\nnamespace = \n", false, "s.toml").unwrap_err();
    assert!(
        syntax.to_string().starts_with("s.toml: line 2, column"),
        "{syntax}"
    );
    let json = Model::parse("{\"attributes\": [}", true, "m.json").unwrap_err();
    assert!(
        json.to_string().starts_with("m.json: line 1, column"),
        "{json}"
    );
    let unknown_field = Model::parse("[[attributes]]\nnamespace = \"a\"\nname = \"b\"\nrule = \"any_of\"\nvalues = [\"c\"]\ncolour = 1\n", false, "u.toml").unwrap_err();
    assert!(
        unknown_field.to_string().contains("line 6")
            && unknown_field.to_string().contains("colour"),
        "{unknown_field}"
    );
}

fn small_limits() -> Limits {
    Limits {
        max_resources: 3,
        max_entities: 2,
        max_entity_resources: 2,
        max_bulk_requests: 2,
        max_resource_values: 2,
        max_entitlement_entities: 1,
        max_evaluations: 2,
    }
}

fn invalid(result: Result<impl std::fmt::Debug, PdpError>) -> String {
    match result {
        Err(error @ PdpError::InvalidArgument { .. }) => error.to_string(),
        other => panic!("expected INVALID_ARGUMENT, got {other:?}"),
    }
}

#[test]
fn every_limit_is_checked_naming_the_field_the_count_and_the_maximum() {
    let point = point().with_limits(small_limits());
    let entity = |id: &str| EntityInput::claims(id, json!({}));
    let resource = |id: &str| ResourceInput::new(id, [v("classification", "public")]);
    let resources = |n: usize| (0..n).map(|i| resource(&i.to_string())).collect::<Vec<_>>();
    assert_eq!(
        invalid(run(point.decide_multi_resource(
            &entity("a"),
            "read",
            &resources(4)
        ))),
        "resources: 4 given, at most 3"
    );
    assert_eq!(
        invalid(run(point.decide_multi_entity(
            &[entity("a"), entity("b"), entity("c")],
            "read",
            &resources(1)
        ))),
        "entities: 3 given, at most 2"
    );
    assert_eq!(
        invalid(run(point.decide_multi_entity(
            &[entity("a")],
            "read",
            &resources(3)
        ))),
        "resources: 3 given, at most 2"
    );
    let request = |n| MultiResourceRequest {
        entity: entity("a"),
        action: "read".into(),
        resources: resources(n),
    };
    assert_eq!(
        invalid(run(point.decide_bulk(&[
            request(1),
            request(1),
            request(1)
        ]))),
        "requests: 3 given, at most 2"
    );
    assert_eq!(
        invalid(run(point.decide_bulk(&[request(1), request(4)]))),
        "requests[1].resources: 4 given, at most 3"
    );
    let wide = ResourceInput::new(
        "wide",
        [
            v("classification", "public"),
            v("department", "eng"),
            v("project", "apollo"),
        ],
    );
    assert_eq!(
        invalid(run(point.decide(&entity("a"), "read", &wide))),
        "resources[0].attribute_values: 3 given, at most 2"
    );
    assert_eq!(
        invalid(run(point.entitlements(&[entity("a"), entity("b")], false))),
        "entities: 2 given, at most 1"
    );
    assert_eq!(
        invalid(run(point.decide_multi_resource(&entity("a"), "read", &[]))),
        "resources: at least one resource is needed"
    );
    assert_eq!(
        invalid(run(point.decide_multi_entity(&[], "read", &resources(1)))),
        "entities: at least one entity is needed"
    );
    assert_eq!(
        invalid(run(point.decide(&entity("a"), "", &resource("r")))),
        "action: must name an action"
    );
}

#[test]
fn entitlements_list_actions_per_value_and_the_hierarchy_below_when_asked() {
    let point = point();
    let top = || EntityInput::claims("tia", json!({"attributes": {"clearance": "topsecret"}}));
    let plain = run(point.entitlements(&[top()], false)).unwrap();
    let describe = |e: &warden_pdp::EntityEntitlements| -> Vec<(String, Vec<String>)> {
        e.entitlements
            .iter()
            .map(|(value, actions)| {
                (
                    value.rsplit('/').next().unwrap().to_owned(),
                    actions.iter().map(|a| a.to_string()).collect(),
                )
            })
            .collect()
    };
    assert_eq!(
        describe(&plain[0]),
        [
            (
                "topsecret".to_owned(),
                vec!["read".to_owned(), "decrypt".to_owned()]
            ),
            ("public".to_owned(), vec!["read".to_owned()]),
        ]
    );
    let comprehensive = run(point.entitlements(&[top()], true)).unwrap();
    let values: Vec<String> = describe(&comprehensive[0])
        .into_iter()
        .map(|(v, _)| v)
        .collect();
    assert_eq!(values, ["topsecret", "secret", "confidential", "public"]);
}

/// Counts how often each entity is resolved, and in how many batches.
#[derive(Default)]
struct Counting {
    batches: AtomicUsize,
    seen: Mutex<Vec<String>>,
}

impl EntityResolver for Counting {
    fn resolve<'a>(&'a self, entities: &'a [EntityRef]) -> ResolveFuture<'a> {
        self.batches.fetch_add(1, Ordering::SeqCst);
        Box::pin(async move {
            let mut seen = self.seen.lock().unwrap();
            Ok(entities
                .iter()
                .map(|e| match e {
                    EntityRef::Id(id) => {
                        seen.push(id.to_string());
                        Ok(Arc::new(
                            json!({"subject": &**id, "attributes": {"clearance": "secret"}}),
                        ))
                    }
                    _ => Err("ids only".to_owned()),
                })
                .collect())
        })
    }
}

#[test]
fn a_bulk_call_resolves_each_entity_once_in_one_batch() {
    let counting = Arc::new(Counting::default());
    let model = Model::parse(MODEL, false, "model.toml").unwrap();
    let point = DecisionPoint::new(ModelHandle::new(model), Arc::clone(&counting));
    // 200 requests over 20 entities.
    let requests: Vec<_> = (0..200)
        .map(|i| MultiResourceRequest {
            entity: EntityInput::id(format!("req-{i}"), format!("user-{}", i % 20)),
            action: "read".into(),
            resources: vec![
                ResourceInput::new("s", [v("classification", "secret")]),
                ResourceInput::new("t", [v("classification", "topsecret")]),
            ],
        })
        .collect();
    let answers = run(point.decide_bulk(&requests)).unwrap();
    assert_eq!(counting.batches.load(Ordering::SeqCst), 1);
    let mut seen = counting.seen.lock().unwrap().clone();
    assert_eq!(seen.len(), 20, "each entity once: {seen:?}");
    seen.sort();
    seen.dedup();
    assert_eq!(seen.len(), 20);
    assert_eq!(answers.len(), 200);
    for (i, answer) in answers.iter().enumerate() {
        let entity = &answer.entities[0];
        assert_eq!(&*entity.ephemeral_id, format!("req-{i}"));
        let permitted: Vec<bool> = answer.decisions(entity).map(|d| d.permitted()).collect();
        assert_eq!(permitted, [true, false]);
    }
    // Multi-entity too: repeated entities resolve once.
    counting.seen.lock().unwrap().clear();
    let entities: Vec<EntityInput> = (0..100)
        .map(|i| EntityInput::id(format!("e{i}"), format!("user-{}", i % 10)))
        .collect();
    let decisions = run(point.decide_multi_entity(
        &entities,
        "read",
        &[ResourceInput::new("s", [v("classification", "secret")])],
    ))
    .unwrap();
    assert_eq!(counting.seen.lock().unwrap().len(), 10);
    assert_eq!(decisions.entities.len(), 100);
    assert!(decisions.all_permitted());
}

#[test]
fn an_entity_that_does_not_resolve_is_denied_and_the_others_are_decided() {
    let model = Model::parse(MODEL, false, "model.toml").unwrap();
    let point = DecisionPoint::new(ModelHandle::new(model), Counting::default());
    let decisions = run(point.decide_multi_entity(
        &[
            EntityInput::id("ok", "sam"),
            EntityInput::token("bad", "not-configured"),
        ],
        "read",
        &[ResourceInput::new("s", [v("classification", "secret")])],
    ))
    .unwrap();
    let results: Vec<(bool, Option<String>)> = decisions
        .iter()
        .map(|(e, mut d)| {
            (
                e.all_permitted,
                d.next().unwrap().reason().map(|r| r.into_owned()),
            )
        })
        .collect();
    assert_eq!(
        results,
        [
            (true, None),
            (false, Some("entity not resolved: ids only".to_owned()))
        ]
    );
}

/// A random model: `definitions` definitions of random rules and sizes, mappings on random
/// values keyed on random groups and departments.
fn random_model(rng: &mut StdRng) -> String {
    let rules = ["all_of", "any_of", "hierarchy"];
    let mut text = String::new();
    let mut values = Vec::new();
    for d in 0..rng.gen_range(1..5) {
        let n = rng.gen_range(1..5);
        let names: Vec<String> = (0..n).map(|i| format!("\"v{i}\"")).collect();
        text += &format!(
            "[[attributes]]\nnamespace = \"r.io\"\nname = \"d{d}\"\nrule = \"{}\"\nvalues = [{}]\n",
            rules[rng.gen_range(0..3)],
            names.join(", ")
        );
        values.extend((0..n).map(|i| format!("https://r.io/attr/d{d}/value/v{i}")));
    }
    for _ in 0..rng.gen_range(0..12) {
        let value = &values[rng.gen_range(0..values.len())];
        let actions = ["read", "write"][..rng.gen_range(1..3)]
            .iter()
            .map(|a| format!("\"{a}\""))
            .collect::<Vec<_>>()
            .join(", ");
        let op = ["in", "not_in", "in_contains"][rng.gen_range(0..3)];
        let joiner = ["and", "or"][rng.gen_range(0..2)];
        text += &format!(
            "[[subject_mappings]]\nattribute_value = \"{value}\"\nactions = [{actions}]\ncondition_groups = [{{ operator = \"{joiner}\", conditions = [{{ selector = \".groups[]\", operator = \"{op}\", values = [\"g{}\"] }}, {{ selector = \".attributes.dept\", operator = \"in\", values = [\"d{}\"] }}] }}]\n",
            rng.gen_range(0..4),
            rng.gen_range(0..3),
        );
    }
    text
}

#[test]
fn multi_entity_answers_equal_single_decisions_on_random_inputs() {
    let mut rng = StdRng::seed_from_u64(0x5eed_7df0);
    for case in 0..200 {
        let text = random_model(&mut rng);
        let model = Model::parse(&text, false, "random.toml").unwrap();
        let (_, value_count, _) = model.counts();
        let all_values: Vec<String> = {
            // Values of the random model, plus one it does not define.
            let mut all = Vec::new();
            for line in text.lines().filter(|l| l.starts_with("name = ")) {
                let d = line.trim_start_matches("name = ").trim_matches('"');
                all.extend((0..4).map(|i| format!("https://r.io/attr/{d}/value/v{i}")));
            }
            all.push("https://r.io/attr/none/value/x".to_owned());
            all
        };
        assert!(value_count > 0);
        let point = DecisionPoint::new(ModelHandle::new(model), StandardResolver::new());
        let entities: Vec<EntityInput> = (0..rng.gen_range(1..80))
            .map(|i| {
                let groups: Vec<String> =
                    (0..rng.gen_range(0..3)).map(|_| format!("g{}", rng.gen_range(0..4))).collect();
                EntityInput::claims(
                    format!("e{i}"),
                    json!({"groups": groups, "attributes": {"dept": format!("d{}", rng.gen_range(0..3))}}),
                )
            })
            .collect();
        let resources: Vec<ResourceInput> = (0..rng.gen_range(1..6))
            .map(|r| {
                let n = rng.gen_range(0..4);
                ResourceInput::new(
                    format!("r{r}"),
                    (0..n)
                        .map(|_| all_values[rng.gen_range(0..all_values.len())].clone())
                        .collect::<Vec<_>>(),
                )
            })
            .collect();
        let action = ["read", "write", "delete"][rng.gen_range(0..3)];
        let many = run(point.decide_multi_entity(&entities, action, &resources)).unwrap();
        assert_eq!(many.entities.len(), entities.len());
        for (entity, (result, decisions)) in entities.iter().zip(many.iter()) {
            assert_eq!(result.ephemeral_id, entity.ephemeral_id);
            let mut all = true;
            for (resource, decision) in resources.iter().zip(decisions) {
                let single = run(point.decide(entity, action, resource)).unwrap();
                let one = single.decisions(&single.entities[0]).next().unwrap();
                assert_eq!(decision.ephemeral_id(), &*resource.ephemeral_id);
                assert_eq!(
                    (decision.permitted(), summary(&many, &decision)),
                    (one.permitted(), summary(&single, &one)),
                    "case {case}: {} on {:?}\n{text}",
                    entity.ephemeral_id,
                    resource.attribute_values
                );
                all &= one.permitted();
            }
            assert_eq!(result.all_permitted, all);
        }
    }
}

fn summary(_: &Decisions, d: &warden_pdp::ResourceDecision<'_>) -> (Vec<String>, Option<String>) {
    (
        d.failed_definitions().map(str::to_owned).collect(),
        d.reason().map(|r| r.into_owned()),
    )
}

/// A call naming more than 64 distinct values is checked without the compiled plan; both
/// ways must agree on every resource.
#[test]
fn resources_checked_with_and_without_the_compiled_plan_get_the_same_decisions() {
    let mut rng = StdRng::seed_from_u64(64);
    let mut text = String::new();
    for (d, rule) in ["all_of", "any_of", "hierarchy"].iter().enumerate() {
        let values: Vec<String> = (0..30).map(|i| format!("\"v{i}\"")).collect();
        text += &format!(
            "[[attributes]]\nnamespace = \"w.io\"\nname = \"d{d}\"\nrule = \"{rule}\"\nvalues = [{}]\n",
            values.join(", ")
        );
        for i in 0..30 {
            text += &format!(
                "[[subject_mappings]]\nattribute_value = \"https://w.io/attr/d{d}/value/v{i}\"\nactions = [\"read\"]\ncondition_groups = [{{ conditions = [{{ selector = \".groups[]\", operator = \"in\", values = [\"g{d}-{i}\"] }}] }}]\n"
            );
        }
    }
    let model = Model::parse(&text, false, "wide.toml").unwrap();
    let point = DecisionPoint::new(ModelHandle::new(model), StandardResolver::new());
    let value = |d: usize, i: usize| format!("https://w.io/attr/d{d}/value/v{i}");
    // Two fillers naming 66 distinct values between them (each within the per-resource limit).
    let filler = |from: usize| {
        ResourceInput::new(
            format!("filler-{from}"),
            (from..from + 33)
                .map(|i| value(i % 3, i / 3))
                .collect::<Vec<_>>(),
        )
    };
    let mut compared = 0;
    for _ in 0..300 {
        let groups: Vec<String> = (0..rng.gen_range(0..12))
            .map(|_| format!("g{}-{}", rng.gen_range(0..3), rng.gen_range(0..30)))
            .collect();
        let entity = EntityInput::claims("e", json!({ "groups": groups }));
        let resource = ResourceInput::new(
            "r",
            (0..rng.gen_range(1..5))
                .map(|_| value(rng.gen_range(0..3), rng.gen_range(0..30)))
                .collect::<Vec<_>>(),
        );
        let alone = run(point.decide(&entity, "read", &resource)).unwrap();
        let among = run(point.decide_multi_resource(
            &entity,
            "read",
            &[resource.clone(), filler(0), filler(33)],
        ))
        .unwrap();
        let a = alone.decisions(&alone.entities[0]).next().unwrap();
        let b = among.decisions(&among.entities[0]).next().unwrap();
        assert_eq!(
            (a.permitted(), a.failed_definitions().collect::<Vec<_>>()),
            (b.permitted(), b.failed_definitions().collect::<Vec<_>>()),
            "{:?}",
            resource.attribute_values
        );
        compared += usize::from(a.permitted());
    }
    assert!(
        compared > 0,
        "some resources were permitted, so both paths were exercised"
    );
}

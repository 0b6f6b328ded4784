//! The decision point, in process and over loopback gRPC: 500 entities × 5 resources × 1
//! action answered as one multi-entity call, beside (a) the same work as 2,500 single
//! decisions, (b) one bulk call of 500 one-entity requests (OpenTDF's way), and (c) the floor:
//! resolving the 500 entities and computing their entitlements, no resource checked. Also
//! 1 entity × 1,000 resources, bulk with 200 requests sharing 20 entities, the gRPC round
//! trip's percentiles and the request sizes on the wire.
//!
//! `cargo bench --bench decisions` (`-- --quick` for a short run). In-process figures are the
//! median over interleaved rounds.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::{hint::black_box, net::SocketAddr, time::Instant};

use common::{args, median, percentile};
use prost::Message;
use serde_json::json;
use warden_pdp::{
    DecisionPoint, DecisionService, EntityInput, EntityRef, EntityResolver, Limits, Model,
    ModelHandle, MultiResourceRequest, ResourceInput, StandardResolver, proto,
};

const CLASSIFICATION: [&str; 4] = ["topsecret", "secret", "confidential", "public"];

/// 4 hierarchy values, 10 departments (any-of), 20 projects (all-of); 34 subject mappings on
/// groups and attributes.
fn model() -> String {
    let mut text = String::new();
    let list = |values: &[String]| {
        values
            .iter()
            .map(|v| format!("\"{v}\""))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let departments: Vec<String> = (0..10).map(|i| format!("dept{i}")).collect();
    let projects: Vec<String> = (0..20).map(|i| format!("proj{i}")).collect();
    let classification: Vec<String> = CLASSIFICATION.iter().map(|s| (*s).to_owned()).collect();
    for (name, rule, values) in [
        ("classification", "hierarchy", &classification),
        ("department", "any_of", &departments),
        ("project", "all_of", &projects),
    ] {
        text += &format!(
            "[[attributes]]\nnamespace = \"example.com\"\nname = \"{name}\"\nrule = \"{rule}\"\nvalues = [{}]\n",
            list(values)
        );
    }
    let mapping = |definition: &str, value: &str, selector: &str, wanted: &str| {
        format!(
            "[[subject_mappings]]\nattribute_value = \"https://example.com/attr/{definition}/value/{value}\"\nactions = [\"read\", \"decrypt\"]\ncondition_groups = [{{ operator = \"or\", conditions = [{{ selector = \"{selector}\", operator = \"in\", values = [\"{wanted}\"] }}, {{ selector = \".groups[]\", operator = \"in\", values = [\"{value}-admins\"] }}] }}]\n"
        )
    };
    for value in CLASSIFICATION {
        text += &mapping("classification", value, ".attributes.clearance", value);
    }
    for value in &departments {
        text += &mapping("department", value, ".attributes.department", value);
    }
    for value in &projects {
        text += &mapping("project", value, ".groups[]", value);
    }
    text
}

fn v(definition: &str, value: &str) -> String {
    format!("https://example.com/attr/{definition}/value/{value}")
}

/// Entity records for `count` users: a clearance, a department, three project groups.
fn records(count: usize) -> Vec<(String, serde_json::Value)> {
    (0..count)
        .map(|i| {
            (
                format!("user-{i}"),
                json!({
                    "subject": format!("user-{i}"),
                    "groups": [format!("proj{}", i % 20), format!("proj{}", (i + 3) % 20), format!("proj{}", (i + 7) % 20), "staff"],
                    "attributes": {"clearance": CLASSIFICATION[i % 4], "department": format!("dept{}", i % 10)},
                }),
            )
        })
        .collect()
}

fn resources(count: usize) -> Vec<ResourceInput> {
    (0..count)
        .map(|i| {
            ResourceInput::new(
                format!("doc-{i}"),
                [
                    v("classification", CLASSIFICATION[i % 4]),
                    v("department", &format!("dept{}", i % 10)),
                    v("project", &format!("proj{}", i % 20)),
                ],
            )
        })
        .collect()
}

fn entities(count: usize, distinct: usize) -> Vec<EntityInput> {
    (0..count)
        .map(|i| EntityInput::id(format!("e{i}"), format!("user-{}", i % distinct)))
        .collect()
}

fn time_ms(runs: usize, mut op: impl FnMut()) -> f64 {
    let started = Instant::now();
    for _ in 0..runs {
        op();
    }
    started.elapsed().as_secs_f64() * 1e3 / runs as f64
}

fn main() {
    let (_, quick) = args();
    let rounds = if quick { 3 } else { 25 };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let model = Model::parse(&model(), false, "bench.toml").unwrap();
    let resolver = StandardResolver::new().records(records(500));
    let limits = Limits {
        max_bulk_requests: 500,
        ..Limits::default()
    };
    let point = DecisionPoint::new(ModelHandle::new(model), resolver.clone()).with_limits(limits);
    let block = |f: std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send + '_>>| {
        runtime.block_on(f);
    };

    let five = resources(5);
    let members = entities(500, 500);
    let multi = || {
        block(Box::pin(async {
            let d = point
                .decide_multi_entity(&members, "read", &five)
                .await
                .unwrap();
            black_box(d);
        }));
    };
    let singles = || {
        block(Box::pin(async {
            for entity in &members {
                for resource in &five {
                    let d = point.decide(entity, "read", resource).await.unwrap();
                    black_box(d);
                }
            }
        }));
    };
    let bulk_requests: Vec<MultiResourceRequest> = members
        .iter()
        .map(|entity| MultiResourceRequest {
            entity: entity.clone(),
            action: "read".into(),
            resources: five.clone(),
        })
        .collect();
    let bulk = || {
        block(Box::pin(async {
            let d = point.decide_bulk(&bulk_requests).await.unwrap();
            black_box(d);
        }));
    };
    let refs: Vec<EntityRef> = members.iter().map(|e| e.entity.clone()).collect();
    let floor_model = point.model();
    let floor = || {
        block(Box::pin(async {
            let resolved = resolver.resolve(&refs).await.unwrap();
            let mut scratch = Vec::new();
            for representation in resolved {
                black_box(floor_model.entitlements_with(&representation.unwrap(), &mut scratch));
            }
        }));
    };
    let thousand = resources(1000);
    let one = EntityInput::id("e", "user-0");
    let multi_resource = || {
        block(Box::pin(async {
            let d = point
                .decide_multi_resource(&one, "read", &thousand)
                .await
                .unwrap();
            black_box(d);
        }));
    };
    let shared: Vec<MultiResourceRequest> = entities(200, 20)
        .into_iter()
        .map(|entity| MultiResourceRequest {
            entity,
            action: "read".into(),
            resources: resources(5),
        })
        .collect();
    let bulk_shared = || {
        block(Box::pin(async {
            let d = point.decide_bulk(&shared).await.unwrap();
            black_box(d);
        }));
    };

    let mut samples: [Vec<f64>; 6] = Default::default();
    for _ in 0..rounds {
        samples[0].push(time_ms(4, multi));
        samples[1].push(time_ms(1, singles));
        samples[2].push(time_ms(2, bulk));
        samples[3].push(time_ms(4, floor));
        samples[4].push(time_ms(4, multi_resource));
        samples[5].push(time_ms(4, bulk_shared));
    }
    let [m, a, b, c, mr, bs] = samples.map(median);
    println!("500 entities x 5 resources x 1 action, in process (median ms of {rounds} rounds):");
    println!("  multi-entity call                 {m:8.3} ms");
    println!(
        "  (a) 2,500 single GetDecision      {a:8.3} ms   multi is {:.1}x faster",
        a / m
    );
    println!(
        "  (b) bulk of 500 one-entity reqs   {b:8.3} ms   multi is {:.2}x faster",
        b / m
    );
    println!(
        "  (c) floor: resolve + entitlements {c:8.3} ms   multi / floor = {:.2}",
        m / c
    );
    println!("1 entity x 1,000 resources          {mr:8.3} ms");
    println!("bulk: 200 requests over 20 entities {bs:8.3} ms");

    // On the wire: the multi-entity request beside (b)'s bulk request.
    let entity = |e: &EntityInput| proto::Entity {
        ephemeral_id: e.ephemeral_id.to_string(),
        kind: Some(proto::entity::Kind::Id(match &e.entity {
            EntityRef::Id(id) => id.to_string(),
            _ => unreachable!("the bench's entities are ids"),
        })),
    };
    let wire_resources: Vec<proto::Resource> = five
        .iter()
        .map(|r| proto::Resource {
            ephemeral_id: r.ephemeral_id.to_string(),
            attribute_values: r.attribute_values.iter().map(|v| v.to_string()).collect(),
        })
        .collect();
    let multi_request = proto::GetDecisionMultiEntityRequest {
        entities: members.iter().map(entity).collect(),
        action: "read".into(),
        resources: wire_resources.clone(),
    };
    let bulk_request = proto::GetDecisionBulkRequest {
        requests: members
            .iter()
            .map(|e| proto::GetDecisionMultiResourceRequest {
                entity: Some(entity(e)),
                action: "read".into(),
                resources: wire_resources.clone(),
            })
            .collect(),
    };
    let (small, large) = (multi_request.encoded_len(), bulk_request.encoded_len());
    println!(
        "request on the wire: multi-entity {small} B, bulk {large} B: {:.1}% smaller",
        100.0 * (1.0 - small as f64 / large as f64)
    );

    // Over loopback gRPC: the multi-entity call's latency.
    let address: SocketAddr = runtime.block_on(async {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        let service = DecisionService::new(point.clone()).into_server();
        // As `warden pdp` serves: no Nagle delay on the answers.
        let incoming =
            tonic::transport::server::TcpIncoming::from(listener).with_nodelay(Some(true));
        tokio::spawn(
            tonic::transport::Server::builder()
                .add_service(service)
                .serve_with_incoming(incoming),
        );
        address
    });
    let calls = if quick { 20 } else { 1000 };
    let latencies = runtime.block_on(async {
        let channel = tonic::transport::Channel::from_shared(format!("http://{address}"))
            .unwrap()
            .connect()
            .await
            .unwrap();
        let mut client = proto::decision_service_client::DecisionServiceClient::new(channel)
            .max_decoding_message_size(64 << 20);
        let mut latencies = Vec::with_capacity(calls);
        for _ in 0..calls {
            let started = Instant::now();
            let answer = client
                .get_decision_multi_entity(multi_request.clone())
                .await
                .unwrap();
            latencies.push(started.elapsed().as_secs_f64() * 1e3);
            black_box(answer);
        }
        latencies
    });
    let mut sorted = latencies;
    sorted.sort_by(f64::total_cmp);
    println!(
        "gRPC over loopback, 500 x 5, {calls} calls: p50 {:.3} ms, p99 {:.3} ms, max {:.3} ms",
        percentile(&sorted, 0.5),
        percentile(&sorted, 0.99),
        sorted[sorted.len() - 1]
    );
}

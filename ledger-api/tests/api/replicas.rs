//! Reads from a real streaming standby (`pg_basebackup -R` of the test's own cluster): read
//! models and the global log come from it, `waitForPosition` reads the caller's own write,
//! and a standby that dies fails no read and comes back into rotation when it recovers.

use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use ledger_api::auth::Role;
use ledger_api::error::ApiResult;
use ledger_api::live::LiveLog;
use ledger_api::replicas::{ReadPools, ReplicaSettings};
use ledger_api::server::ServerConfig;
use ledger_core::ids::Environment;
use ledger_store::testing::{Shutdown, TestCluster};
use ledger_store::RecordedEvent;
use serde_json::{json, Value};
use sqlx::{Connection, PgConnection};

use crate::helpers::{metrics, payment_mutation, series, spawn_on, test_config, TestApp};
use crate::subscriptions::append_events;

const PAYMENTS: &str = "query($wait: Position) { payments(waitForPosition: $wait, \
    filter: {merchantId: \"m-replica\"}) { edges { node { id } } } }";

/// A server on a fresh database of `primary`, reading from `standby`.
async fn serve_with_standby(primary: &TestCluster, standby: &TestCluster) -> (TestApp, String) {
    let database = primary.create_database().await.unwrap();
    let standby_url = standby.url(database.name());
    let config = ServerConfig {
        read_replicas: ReplicaSettings {
            urls: vec![standby_url.clone()],
            max_lag: Duration::from_secs(60),
            replay_wait: Duration::from_millis(300),
            check_interval: Duration::from_millis(100),
        },
        ..test_config()
    };
    (spawn_on(database, config, true).await, standby_url)
}

async fn readyz(app: &TestApp) -> (u16, Value) {
    let response = app
        .client
        .get(format!("{}/readyz", app.address))
        .send()
        .await
        .unwrap();
    (response.status().as_u16(), response.json().await.unwrap())
}

/// Waits (bounded) until `/readyz` shows the one standby in rotation or not.
async fn until_in_rotation(app: &TestApp, wanted: bool) -> Value {
    for _ in 0..200 {
        let (_, body) = readyz(app).await;
        if body["read_replicas"][0]["in_rotation"] == json!(wanted) {
            return body;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("the standby's rotation never became {wanted}");
}

async fn pay(app: &TestApp, key: &str) -> (String, String) {
    let result = payment_mutation(
        app,
        "initiatePayment",
        json!({"idempotencyKey": key, "orderId": key, "merchantId": "m-replica",
               "amount": "5.00", "currency": "USD"}),
    )
    .await;
    (
        result["payment"]["id"].as_str().unwrap().to_owned(),
        result["position"].as_str().unwrap().to_owned(),
    )
}

fn ids(answer: &Value) -> Vec<String> {
    answer["payments"]["edges"]
        .as_array()
        .unwrap()
        .iter()
        .map(|edge| edge["node"]["id"].as_str().unwrap().to_owned())
        .collect()
}

fn metric_label(standby_url: &str) -> String {
    let options: sqlx::postgres::PgConnectOptions = standby_url.parse().unwrap();
    format!(
        "{{replica=\"{}:{}/{}\"}}",
        options.get_host(),
        options.get_port(),
        options.get_database().unwrap()
    )
}

/// With replay paused on the standby, reads without a position do not see a new payment
/// (so the standby answered them), while a read waiting for the payment's position sees it
/// (the standby does not have it within the wait: the primary answers). Once replay goes on,
/// the standby has it too.
#[tokio::test]
async fn reads_come_from_the_standby_and_wait_for_position_reads_ones_own_write() {
    let primary = TestCluster::start().unwrap();
    let standby = primary.start_standby().unwrap();
    let (app, standby_url) = serve_with_standby(&primary, &standby).await;
    until_in_rotation(&app, true).await;
    let (first, position) = pay(&app, "replica-1").await;
    let seen = app.graphql(PAYMENTS, json!({"wait": position})).await;
    assert_eq!(ids(seen.data()), vec![first.clone()]);
    until_listed(&app, 1).await;

    let mut control = PgConnection::connect(&standby_url).await.unwrap();
    sqlx::query("SELECT pg_wal_replay_pause()")
        .execute(&mut control)
        .await
        .unwrap();
    let (second, position) = pay(&app, "replica-2").await;
    let from_standby = app.graphql(PAYMENTS, json!({})).await;
    assert_eq!(ids(from_standby.data()), vec![first.clone()]);
    let own_write = app.graphql(PAYMENTS, json!({"wait": position})).await;
    assert_eq!(ids(own_write.data()), vec![first.clone(), second.clone()]);
    // The global log comes from the standby too: its page ends before the new events.
    let admin = app.key(Role::Admin, Environment::Test).to_owned();
    let events = app
        .graphql_as(
            Some(&admin),
            "{ events(first: 500) { position } }",
            json!({}),
        )
        .await;
    let last = events.data()["events"].as_array().unwrap().last().unwrap()["position"].clone();
    assert!(last.as_str().unwrap().parse::<u64>().unwrap() < position.parse::<u64>().unwrap());
    // The lag shows while replay is paused.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let text = metrics(&app).await;
    let label = metric_label(&standby_url);
    assert!(series(&text, &format!("ledger_read_replica_lag_positions{label}")) > 0.0);
    assert_eq!(
        series(&text, &format!("ledger_read_replica_in_rotation{label}")),
        1.0
    );

    sqlx::query("SELECT pg_wal_replay_resume()")
        .execute(&mut control)
        .await
        .unwrap();
    assert_eq!(until_listed(&app, 2).await, vec![first, second]);
}

/// The payments a read without a position lists, once they are `count` (bounded wait).
async fn until_listed(app: &TestApp, count: usize) -> Vec<String> {
    let mut listed = Vec::new();
    for _ in 0..100 {
        listed = ids(app.graphql(PAYMENTS, json!({})).await.data());
        if listed.len() == count {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    listed
}

/// Reads go on, every one answered, while the standby is killed; `/readyz` stays ready and
/// shows it out of rotation, `/metrics` too; restarted, it is back in rotation.
#[tokio::test]
async fn a_killed_standby_fails_no_read_and_returns_to_rotation() {
    let primary = TestCluster::start().unwrap();
    let standby = primary.start_standby().unwrap();
    let (app, standby_url) = serve_with_standby(&primary, &standby).await;
    until_in_rotation(&app, true).await;
    let (first, position) = pay(&app, "replica-kill").await;
    app.graphql(PAYMENTS, json!({"wait": position}))
        .await
        .data();
    // The standby has it too (a read without a position may come from it).
    assert_eq!(until_listed(&app, 1).await, vec![first.clone()]);

    let reader = {
        let client = app.client.clone();
        let url = format!("{}/graphql", app.address);
        let key = app.key(Role::Service, Environment::Test).to_owned();
        tokio::spawn(async move {
            let deadline = tokio::time::Instant::now() + Duration::from_secs(2);
            let mut reads = 0;
            while tokio::time::Instant::now() < deadline {
                let body = json!({"query": PAYMENTS, "variables": {}});
                let answer: Value = client
                    .post(&url)
                    .bearer_auth(&key)
                    .json(&body)
                    .send()
                    .await
                    .unwrap()
                    .json()
                    .await
                    .unwrap();
                assert!(answer.get("errors").is_none(), "a read failed: {answer}");
                assert_eq!(
                    answer["data"]["payments"]["edges"]
                        .as_array()
                        .unwrap()
                        .len(),
                    1
                );
                reads += 1;
            }
            reads
        })
    };
    tokio::time::sleep(Duration::from_millis(300)).await;
    standby.stop(Shutdown::Immediate).unwrap();
    assert!(reader.await.unwrap() > 10);

    let body = until_in_rotation(&app, false).await;
    let (status, _) = readyz(&app).await;
    assert_eq!(
        status, 200,
        "a standby out of rotation must not make the server unready"
    );
    assert_eq!(body["read_replicas"][0]["state"], "unreachable");
    let label = metric_label(&standby_url);
    let text = metrics(&app).await;
    assert_eq!(
        series(&text, &format!("ledger_read_replica_in_rotation{label}")),
        0.0
    );
    assert_eq!(
        ids(app.graphql(PAYMENTS, json!({})).await.data()),
        vec![first.clone()]
    );

    standby.start_server().unwrap();
    let body = until_in_rotation(&app, true).await;
    assert_eq!(body["read_replicas"][0]["lag_positions"], 0);
    let text = metrics(&app).await;
    assert_eq!(
        series(&text, &format!("ledger_read_replica_in_rotation{label}")),
        1.0
    );
    assert_eq!(
        ids(app.graphql(PAYMENTS, json!({})).await.data()),
        vec![first]
    );
}

/// The live log's follower reads the standby: with replay paused there, an event committed on
/// the primary reaches no subscriber until replay goes on. When the standby dies, the
/// subscription goes on from the primary, every position once and in order.
#[tokio::test]
async fn subscriptions_follow_the_standby_and_go_on_without_it() {
    let primary = TestCluster::start().unwrap();
    let standby = primary.start_standby().unwrap();
    let database = primary.create_database().await.unwrap();
    let standby_url = standby.url(database.name());
    let settings = ReplicaSettings {
        urls: vec![standby_url.clone()],
        check_interval: Duration::from_millis(100),
        ..ReplicaSettings::default()
    };
    let reads = ReadPools::new(database.pool().clone(), &settings).unwrap();
    for _ in 0..200 {
        if reads.statuses()[0].in_rotation {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(reads.statuses()[0].in_rotation);
    let store = database.store();
    let live = LiveLog::with_reads(store.clone(), reads.clone());
    let mut events = Box::pin(live.follow(1, live.reserve(None).unwrap()));
    append_events(&store, 5).await;
    assert_eq!(positions(&mut events, 5).await, vec![1, 2, 3, 4, 5]);
    // Once the standby is known to have them, the subscriber's reads go there too (until
    // then they may go to the primary, which has everything).
    for _ in 0..200 {
        if reads.statuses()[0].replayed_position == Some(5) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(reads.statuses()[0].replayed_position, Some(5));

    let mut control = PgConnection::connect(&standby_url).await.unwrap();
    sqlx::query("SELECT pg_wal_replay_pause()")
        .execute(&mut control)
        .await
        .unwrap();
    append_events(&store, 1).await;
    let early = tokio::time::timeout(Duration::from_millis(500), events.next()).await;
    assert!(early.is_err(), "an event came before the standby had it");
    sqlx::query("SELECT pg_wal_replay_resume()")
        .execute(&mut control)
        .await
        .unwrap();
    assert_eq!(positions(&mut events, 1).await, vec![6]);

    standby.stop(Shutdown::Immediate).unwrap();
    append_events(&store, 5).await;
    assert_eq!(positions(&mut events, 5).await, vec![7, 8, 9, 10, 11]);
}

/// The positions of the next `count` events of a subscription (bounded wait).
async fn positions<S>(events: &mut S, count: usize) -> Vec<u64>
where
    S: futures::Stream<Item = ApiResult<Arc<RecordedEvent>>> + Unpin,
{
    let mut positions = Vec::new();
    for _ in 0..count {
        let event = tokio::time::timeout(Duration::from_secs(10), events.next())
            .await
            .expect("every event arrives in time");
        positions.push(event.unwrap().unwrap().position);
    }
    positions
}

//! Shared helpers of the Stripe webhook tests: fixtures, signing as Stripe signs, and short
//! builders for the commands the tests expect. Included by each `stripe_*` test as a module;
//! compiled alone it holds no tests.
#![allow(dead_code)]

use std::path::PathBuf;

use chrono::{DateTime, TimeZone, Utc};
use ledger_core::ids::MerchantId;
use ledger_core::text::ShortText;
use ledger_core::{Currency, Money, PositiveMoney};
use ledger_stripe::gateway::event::DEFAULT_MAX_BODY_BYTES;
use ledger_stripe::gateway::{
    map_event, sign, verify_event, GatewayFact, MappingContext, PaymentFact, VerifiedEvent,
    WebhookSecrets,
};

/// A test-mode secret and a live one, in `LEDGER_STRIPE_WEBHOOK_SECRETS` syntax.
pub const TEST_SECRET: &str = "whsec_plRW2Kq9yT0vF6hJ3mXc8bNd";
pub const LIVE_SECRET: &str = "whsec_Lv7sQ2mZp9Xc4RtY8uWk3JhN";

pub fn secrets() -> WebhookSecrets {
    WebhookSecrets::parse(&format!("test:{TEST_SECRET},live:{LIVE_SECRET}")).unwrap()
}

pub fn fixture(name: &str) -> Vec<u8> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/stripe")
        .join(format!("{name}.json"));
    std::fs::read(&path).unwrap_or_else(|error| panic!("{}: {error}", path.display()))
}

/// The event's `created`, as the time Stripe signs and delivers it.
pub fn created(body: &[u8]) -> i64 {
    let value: serde_json::Value = serde_json::from_slice(body).unwrap();
    value["created"].as_i64().unwrap()
}

pub fn at(unix_seconds: i64) -> DateTime<Utc> {
    Utc.timestamp_opt(unix_seconds, 0).single().unwrap()
}

/// Signs a body with the configured secret of the test environment at `timestamp`.
pub fn signed(body: &[u8], timestamp: i64) -> String {
    let secrets = secrets();
    let secret = secrets.newest(ledger_core::ids::Environment::Test).unwrap();
    sign(secret, timestamp, body)
}

/// Delivers a body as Stripe would: signed when created, received two seconds later.
pub fn deliver_body(body: &[u8]) -> VerifiedEvent {
    let timestamp = created(body);
    let header = signed(body, timestamp);
    verify_event(
        Some(&header),
        body,
        &secrets(),
        at(timestamp + 2),
        DEFAULT_MAX_BODY_BYTES,
    )
    .unwrap()
}

pub fn deliver(name: &str) -> VerifiedEvent {
    deliver_body(&fixture(name))
}

pub fn default_merchant() -> MerchantId {
    MerchantId::parse("merchant_default").unwrap()
}

pub fn context() -> MappingContext {
    MappingContext::new(default_merchant())
}

pub fn map_fixture(name: &str) -> GatewayFact {
    map_event(&deliver(name), &context()).unwrap()
}

pub fn payment_fact(name: &str) -> PaymentFact {
    match map_fixture(name) {
        GatewayFact::Payment(fact) => fact,
        other => panic!("{name}: expected a payment fact, got {other:?}"),
    }
}

/// Replaces a JSON value inside a fixture (by a JSON pointer) and returns the new body.
pub fn with_value(name: &str, pointer: &str, value: serde_json::Value) -> Vec<u8> {
    let mut event: serde_json::Value = serde_json::from_slice(&fixture(name)).unwrap();
    *event.pointer_mut(pointer).unwrap() = value;
    serde_json::to_vec(&event).unwrap()
}

pub fn money(amount: &str, currency: Currency) -> Money {
    Money::parse(amount, currency).unwrap()
}

pub fn positive(amount: &str, currency: Currency) -> PositiveMoney {
    PositiveMoney::parse(amount, currency).unwrap()
}

pub fn text(value: &str) -> ShortText {
    ShortText::parse(value).unwrap()
}

/// 2023-11-14T22:13:20Z, the `created` of the first fixture event.
pub const T0: i64 = 1_700_000_000;

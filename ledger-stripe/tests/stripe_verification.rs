//! Verification of webhook deliveries: signatures exactly as Stripe makes them, the
//! tolerance, livemode, secrets rotation, header garbage, and the bounds and shape of bodies.

mod stripe_support;

use ledger_core::ids::Environment;
use ledger_stripe::gateway::event::DEFAULT_MAX_BODY_BYTES;
use ledger_stripe::gateway::signature::v1_signature;
use ledger_stripe::gateway::{
    map_event, sign, verify_event, verify_signature, GatewayFact, IgnoredReason, StripeError,
    WebhookSecret, WebhookSecrets, TOLERANCE_SECONDS,
};
use serde_json::json;
use stripe_support::*;

fn verify_at(
    header: Option<&str>,
    body: &[u8],
    secrets: &WebhookSecrets,
    now: i64,
) -> Result<Environment, StripeError> {
    verify_event(header, body, secrets, at(now), DEFAULT_MAX_BODY_BYTES)
        .map(|event| event.environment())
}

#[test]
fn signing_matches_an_hmac_computed_independently() {
    // Proves the signed payload is "<t>.<body>" keyed with the whole `whsec_…` string:
    // python3 -c "import hmac,hashlib; print(hmac.new(b'whsec_plRW2Kq9yT0vF6hJ3mXc8bNd',
    //   b'1700000000.{\"id\":\"evt_1\",\"object\":\"event\"}', hashlib.sha256).hexdigest())"
    let secret = WebhookSecret::new(Environment::Test, TEST_SECRET).unwrap();
    let body = br#"{"id":"evt_1","object":"event"}"#;
    let expected = "4b35a9576259c83e5d37a58fbe106e6acf97a0698c9182af4e41e946f12a074c";
    assert_eq!(v1_signature(&secret, T0, body), expected);
    assert_eq!(sign(&secret, T0, body), format!("t={T0},v1={expected}"));
}

#[test]
fn a_delivery_signed_with_the_test_secret_verifies_as_test() {
    let body = fixture("payment_intent.created");
    let header = signed(&body, created(&body));
    let verified = verify_at(Some(&header), &body, &secrets(), created(&body) + 2);
    assert_eq!(verified, Ok(Environment::Test));
}

#[test]
fn a_live_event_signed_with_the_live_secret_verifies_as_live() {
    let body = with_value("payment_intent.created", "/livemode", json!(true));
    let live = WebhookSecret::new(Environment::Live, LIVE_SECRET).unwrap();
    let header = sign(&live, T0, &body);
    assert_eq!(
        verify_at(Some(&header), &body, &secrets(), T0),
        Ok(Environment::Live)
    );
}

#[test]
fn a_signature_made_with_another_secret_is_refused() {
    let body = fixture("payment_intent.created");
    let stranger = WebhookSecret::new(Environment::Test, "whsec_someoneElse123").unwrap();
    let header = sign(&stranger, T0, &body);
    assert_eq!(
        verify_at(Some(&header), &body, &secrets(), T0),
        Err(StripeError::NoSecretMatched)
    );
}

#[test]
fn a_body_changed_after_signing_is_refused() {
    let body = fixture("payment_intent.created");
    let header = signed(&body, T0);
    let tampered = with_value("payment_intent.created", "/data/object/amount", json!(1));
    assert_eq!(
        verify_at(Some(&header), &tampered, &secrets(), T0),
        Err(StripeError::NoSecretMatched)
    );
    // Even whitespace counts: the signature covers the raw bytes.
    let mut spaced = body.clone();
    spaced.push(b' ');
    assert_eq!(
        verify_at(Some(&header), &spaced, &secrets(), T0),
        Err(StripeError::NoSecretMatched)
    );
}

#[test]
fn a_timestamp_more_than_five_minutes_away_is_refused_either_way() {
    let body = fixture("payment_intent.created");
    let header = signed(&body, T0);
    let stale = StripeError::TimestampOutsideTolerance {
        timestamp: T0,
        tolerance_seconds: TOLERANCE_SECONDS,
    };
    for now in [T0 + 301, T0 - 301, T0 + 86_400, T0 - 86_400] {
        assert_eq!(
            verify_at(Some(&header), &body, &secrets(), now),
            Err(stale.clone()),
            "now = {now}"
        );
    }
    for now in [T0 - 300, T0, T0 + 300] {
        assert_eq!(
            verify_at(Some(&header), &body, &secrets(), now),
            Ok(Environment::Test),
            "now = {now}"
        );
    }
}

#[test]
fn livemode_must_match_the_environment_of_the_secret() {
    // A live event signed with the test secret, and a test event signed with the live one.
    let live_body = with_value("payment_intent.created", "/livemode", json!(true));
    let header = signed(&live_body, T0);
    assert_eq!(
        verify_at(Some(&header), &live_body, &secrets(), T0),
        Err(StripeError::LivemodeMismatch {
            livemode: true,
            environment: Environment::Test
        })
    );
    let test_body = fixture("payment_intent.created");
    let live = WebhookSecret::new(Environment::Live, LIVE_SECRET).unwrap();
    let header = sign(&live, T0, &test_body);
    assert_eq!(
        verify_at(Some(&header), &test_body, &secrets(), T0),
        Err(StripeError::LivemodeMismatch {
            livemode: false,
            environment: Environment::Live
        })
    );
}

#[test]
fn any_of_several_v1_signatures_may_match_and_other_schemes_are_ignored() {
    let body = fixture("payment_intent.created");
    let secret = WebhookSecret::new(Environment::Test, TEST_SECRET).unwrap();
    let good = v1_signature(&secret, T0, &body);
    let wrong = "0".repeat(64);
    let header = format!("t={T0},v1={wrong},v0=6ffbb59b2300aae63f27240606,v1={good}");
    assert_eq!(
        verify_at(Some(&header), &body, &secrets(), T0),
        Ok(Environment::Test)
    );
    let only_wrong = format!("t={T0},v1={wrong},v0={good}");
    assert_eq!(
        verify_at(Some(&only_wrong), &body, &secrets(), T0),
        Err(StripeError::NoSecretMatched)
    );
}

#[test]
fn old_and_new_secrets_both_verify_during_a_rotation() {
    let rotated = WebhookSecrets::parse(
        "test:whsec_oldOldOld111,live:whsec_liveLive222,test:whsec_newNewNew333",
    )
    .unwrap();
    let body = fixture("payment_intent.created");
    for secret in ["whsec_oldOldOld111", "whsec_newNewNew333"] {
        let secret = WebhookSecret::new(Environment::Test, secret).unwrap();
        let header = sign(&secret, T0, &body);
        assert_eq!(
            verify_signature(Some(&header), &body, &rotated, at(T0)),
            Ok(Environment::Test)
        );
    }
    // During a roll, Stripe sends one v1 per secret.
    let old = WebhookSecret::new(Environment::Test, "whsec_oldOldOld111").unwrap();
    let new = WebhookSecret::new(Environment::Test, "whsec_newNewNew333").unwrap();
    let both = format!(
        "t={T0},v1={},v1={}",
        v1_signature(&new, T0, &body),
        v1_signature(&old, T0, &body)
    );
    assert_eq!(
        verify_signature(Some(&both), &body, &rotated, at(T0)),
        Ok(Environment::Test)
    );
}

#[test]
fn header_garbage_is_refused_with_a_reason() {
    let body = fixture("payment_intent.created");
    let signature = signed(&body, T0);
    let v1 = signature.split_once(",v1=").unwrap().1;
    assert_eq!(
        verify_at(None, &body, &secrets(), T0),
        Err(StripeError::MissingSignatureHeader)
    );
    assert_eq!(
        verify_at(Some(&format!("t={T0}")), &body, &secrets(), T0),
        Err(StripeError::NoV1Signature)
    );
    for garbage in [
        String::new(),
        "garbage".to_owned(),
        format!("v1={v1}"),
        format!("t=soon,v1={v1}"),
        format!("t={T0},v1=not-hex"),
        format!("t={T0},t={T0},v1={v1}"),
        "t=1;v1=2".to_owned(),
        "x".repeat(10_000),
    ] {
        let refused = verify_at(Some(&garbage), &body, &secrets(), T0);
        assert!(
            matches!(refused, Err(StripeError::MalformedSignatureHeader { .. })),
            "{garbage:.40}: {refused:?}"
        );
        assert_eq!(refused.unwrap_err().http_status(), 400);
    }
}

#[test]
fn a_body_over_the_bound_is_refused_before_anything_else() {
    let body = fixture("payment_intent.created");
    let header = signed(&body, T0);
    let refused = verify_event(Some(&header), &body, &secrets(), at(T0), 100);
    assert_eq!(
        refused.unwrap_err(),
        StripeError::BodyTooLarge {
            size_bytes: body.len(),
            max_bytes: 100
        }
    );
    // Unsigned, too: the size is checked before any HMAC is computed.
    let refused = verify_event(None, &body, &secrets(), at(T0), 100).unwrap_err();
    assert_eq!(refused.code(), "body_too_large");
    assert_eq!(refused.http_status(), 413);
}

#[test]
fn signed_bodies_that_are_not_events_are_refused() {
    let not_events: Vec<Vec<u8>> = vec![
        b"not json at all".to_vec(),
        b"{\"id\": \"evt_1\", \"object\": \"event\"".to_vec(),
        serde_json::to_vec(&json!([1, 2, 3])).unwrap(),
        with_value("payment_intent.created", "/object", json!("charge")),
        with_value("payment_intent.created", "/id", json!("pi_123")),
        with_value("payment_intent.created", "/data/object", json!("a string")),
        with_value("payment_intent.created", "/created", json!("yesterday")),
        {
            let mut event: serde_json::Value =
                serde_json::from_slice(&fixture("payment_intent.created")).unwrap();
            event.as_object_mut().unwrap().remove("type");
            serde_json::to_vec(&event).unwrap()
        },
    ];
    for body in not_events {
        let header = signed(&body, T0);
        let refused = verify_at(Some(&header), &body, &secrets(), T0);
        assert!(
            matches!(refused, Err(StripeError::MalformedBody { .. })),
            "{}: {refused:?}",
            String::from_utf8_lossy(&body)
        );
    }
}

#[test]
fn a_mapped_object_missing_a_required_field_is_refused() {
    let mut event: serde_json::Value =
        serde_json::from_slice(&fixture("payment_intent.created")).unwrap();
    event["data"]["object"]
        .as_object_mut()
        .unwrap()
        .remove("amount");
    let body = serde_json::to_vec(&event).unwrap();
    let error = map_event(&deliver_body(&body), &context()).unwrap_err();
    assert!(
        matches!(&error, StripeError::MalformedBody { reason } if reason.contains("amount")),
        "{error:?}"
    );
}

#[test]
fn unknown_fields_and_newer_api_versions_are_tolerated() {
    let mut event: serde_json::Value =
        serde_json::from_slice(&fixture("payment_intent.created")).unwrap();
    event["api_version"] = json!("2031-01-01.future");
    event["context"] = json!("acct_future");
    event["data"]["object"]["brand_new_field"] = json!({"nested": [1, 2]});
    let body = serde_json::to_vec(&event).unwrap();
    assert!(matches!(
        map_event(&deliver_body(&body), &context()),
        Ok(GatewayFact::Payment(_))
    ));
}

#[test]
fn unknown_event_types_are_ignored() {
    assert_eq!(
        map_fixture("customer.created"),
        GatewayFact::Ignored(IgnoredReason::UnhandledEventType {
            event_type: "customer.created".to_owned()
        })
    );
}

#[test]
fn a_verified_event_exposes_what_the_exactly_once_record_needs() {
    let event = deliver("charge.captured");
    assert_eq!(event.id(), "evt_3MtwBwLkdIwHu7ix0Y1QpL2m");
    assert_eq!(event.event_type(), "charge.captured");
    assert_eq!(event.environment(), Environment::Test);
    assert_eq!(event.occurred_at(), at(T0 + 3600));
    assert_eq!(
        ledger_stripe::gateway::payment_intent_id(&event).as_deref(),
        Some("pi_3MtwBwLkdIwHu7ix28a3tqPa")
    );
}

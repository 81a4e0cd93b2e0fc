//! Each team's expectations against what happened: every difference as one line that says
//! what was expected and what came.

use std::collections::BTreeMap;
use std::str::FromStr;

use rust_decimal::Decimal;
use serde_json::Value;

use super::file::{Engineering, Finance, Reconciliation, Support};
use super::gateway::Answer;
use super::ledger::LedgerView;

/// Collects differences.
#[derive(Debug, Default)]
struct Differences(Vec<String>);

impl Differences {
    /// Text (or absent) against the expected text.
    fn text(&mut self, what: &str, expected: Option<&str>, actual: &Value) {
        let Some(expected) = expected else { return };
        match actual.as_str() {
            Some(actual) if actual == expected => {}
            Some(actual) => self
                .0
                .push(format!("{what}: expected {expected:?}, got {actual:?}")),
            None => self
                .0
                .push(format!("{what}: expected {expected:?}, got {actual}")),
        }
    }

    fn integer(&mut self, what: &str, expected: Option<i64>, actual: &Value) {
        let Some(expected) = expected else { return };
        if actual.as_i64() != Some(expected) {
            self.0
                .push(format!("{what}: expected {expected}, got {actual}"));
        }
    }

    /// Decimals compare by value: "20" is "20.00".
    fn decimal(&mut self, what: &str, expected: Option<&str>, actual: &Value) {
        let Some(expected) = expected else { return };
        let wanted = Decimal::from_str(expected.trim());
        let got = actual.as_str().map(Decimal::from_str);
        match (wanted, got) {
            (Ok(wanted), Some(Ok(got))) if wanted == got => {}
            (Err(_), _) => self.0.push(format!(
                "{what}: {expected:?} in the scenario is not a decimal"
            )),
            _ => self
                .0
                .push(format!("{what}: expected {expected}, got {actual}")),
        }
    }

    fn list(&mut self, what: &str, expected: Option<&[String]>, actual: Vec<&Value>) {
        let Some(expected) = expected else { return };
        let actual: Vec<&str> = actual
            .iter()
            .map(|value| value.as_str().unwrap_or("?"))
            .collect();
        if actual != expected {
            self.0
                .push(format!("{what}: expected {expected:?}, got {actual:?}"));
        }
    }
}

/// Engineering's view of one answer of the gateway.
pub fn answer(expected: Option<&Engineering>, answer: &Answer) -> Vec<String> {
    let mut differences = Differences::default();
    let default = Engineering::default();
    let expected = expected.unwrap_or(&default);
    match expected.http_status {
        Some(status) if status != answer.status => differences.0.push(format!(
            "HTTP status: expected {status}, got {}",
            answer.summary()
        )),
        None if !(200..300).contains(&answer.status) => differences.0.push(format!(
            "the gateway refused the step: {} ({})",
            answer.summary(),
            answer.body["error"]["message"].as_str().unwrap_or("")
        )),
        _ => {}
    }
    let error = &answer.body["error"];
    let object = answer.object();
    // An error's status is its PaymentIntent's (a card error carries it).
    differences.text("status", expected.status.as_deref(), &object["status"]);
    differences.text("error type", expected.error_type.as_deref(), &error["type"]);
    differences.text("error code", expected.error_code.as_deref(), &error["code"]);
    differences.text(
        "decline code",
        expected.decline_code.as_deref(),
        &error["decline_code"],
    );
    differences.integer(
        "amount_received",
        expected.amount_received,
        &object["amount_received"],
    );
    differences.integer(
        "amount_capturable",
        expected.amount_capturable,
        &object["amount_capturable"],
    );
    differences.integer(
        "amount_refunded",
        expected.amount_refunded,
        &object["amount_refunded"],
    );
    if let Some(replayed) = expected.replayed {
        if replayed != answer.replayed {
            differences.0.push(format!(
                "idempotent replay: expected {replayed}, got {}",
                answer.replayed
            ));
        }
    }
    differences.0
}

/// Engineering's view of the ledger: the outcome of the newest delivery of each event type.
pub fn ledger_webhooks(expected: Option<&Engineering>, view: &LedgerView) -> Vec<String> {
    let mut differences = Differences::default();
    for (event_type, outcome) in expected.map(|e| &e.ledger_webhooks).into_iter().flatten() {
        match view
            .webhooks
            .iter()
            .find(|delivery| delivery["eventType"] == **event_type)
        {
            Some(delivery) if delivery["outcome"] != **outcome => differences.0.push(format!(
                "the ledger's outcome of {event_type}: expected {outcome:?}, got {} ({})",
                delivery["outcome"],
                delivery["detail"].as_str().unwrap_or("no detail")
            )),
            Some(_) => {}
            None => differences.0.push(format!(
                "the ledger received no {event_type} for this payment"
            )),
        }
    }
    differences.0
}

/// Support's view: the playbook's advice the ledger serves for the payment.
pub fn support(expected: &Support, view: &LedgerView) -> Vec<String> {
    let mut differences = Differences::default();
    if view.payment.is_null() {
        return vec!["the ledger has no such payment".into()];
    }
    let advice = &view.payment["declineAdvice"];
    if expected.advice == Some(false) {
        if !advice.is_null() {
            differences
                .0
                .push(format!("expected no decline advice, got {advice}"));
        }
        return differences.0;
    }
    if advice.is_null() {
        return vec![format!(
            "expected decline advice, the payment has none (status {})",
            view.payment["status"]
        )];
    }
    differences.text("code", expected.code.as_deref(), &advice["code"]);
    differences.text(
        "category",
        expected.category.as_deref(),
        &advice["category"],
    );
    differences.text(
        "customer message",
        expected.customer_message.as_deref(),
        &advice["customerMessage"],
    );
    differences.text("retry", expected.retry.as_deref(), &advice["retry"]);
    differences.text(
        "next step",
        expected.next_step.as_deref(),
        &advice["nextStep"],
    );
    differences.text(
        "escalation",
        expected.escalation.as_deref(),
        &advice["escalation"],
    );
    differences.0
}

/// Finance's view: the ledger's status and amounts.
pub fn finance(expected: &Finance, view: &LedgerView) -> Vec<String> {
    let payment = &view.payment;
    if payment.is_null() {
        return vec!["the ledger has no such payment".into()];
    }
    let mut differences = Differences::default();
    differences.text("status", expected.status.as_deref(), &payment["status"]);
    let amounts = [
        ("amount", &expected.amount, "amount"),
        ("authorized", &expected.authorized, "authorizedAmount"),
        ("captured", &expected.captured, "capturedAmount"),
        ("capturable", &expected.capturable, "capturableAmount"),
        ("refunded", &expected.refunded, "refundedAmount"),
        (
            "refund pending",
            &expected.refund_pending,
            "refundPendingAmount",
        ),
        ("refundable", &expected.refundable, "refundableAmount"),
        ("disputed", &expected.disputed, "disputedAmount"),
    ];
    for (what, expected, field) in amounts {
        differences.decimal(what, expected.as_deref(), &payment[field]);
    }
    differences.text(
        "decline code",
        expected.decline_code.as_deref(),
        &payment["declineCode"],
    );
    if let Some(captures) = expected.captures {
        let count = payment["captures"].as_array().map_or(0, Vec::len);
        if count != captures {
            differences
                .0
                .push(format!("captures: expected {captures}, got {count}"));
        }
    }
    let statuses = |field: &str| -> Vec<&Value> {
        payment[field]
            .as_array()
            .map(|items| items.iter().map(|item| &item["status"]).collect())
            .unwrap_or_default()
    };
    differences.list("refunds", expected.refunds.as_deref(), statuses("refunds"));
    differences.list(
        "disputes",
        expected.disputes.as_deref(),
        statuses("disputes"),
    );
    differences.0
}

/// Finance's view of an imported payout report: its result and its exceptions' classes.
pub fn reconciliation(expected: &Reconciliation, imported: &Value) -> Vec<String> {
    let mut differences = Differences::default();
    let counts = [
        ("report lines", expected.lines, "lines"),
        ("matched lines", expected.matched_lines, "matchedLines"),
        ("exceptions", expected.exceptions, "exceptions"),
        ("payouts proven", expected.payouts_proven, "payoutsProven"),
        (
            "payouts unproven",
            expected.payouts_unproven,
            "payoutsUnproven",
        ),
        (
            "batches recorded",
            expected.batches_recorded,
            "batchesRecorded",
        ),
    ];
    for (what, expected, field) in counts {
        differences.integer(what, expected, &imported[field]);
    }
    let classes: Vec<&Value> = imported["exceptionClasses"]
        .as_array()
        .map(|classes| classes.iter().collect())
        .unwrap_or_default();
    differences.list(
        "exception classes",
        expected.exception_classes.as_deref(),
        classes,
    );
    differences.0
}

/// Finance's view of the merchant's books: how each named balance moved since `before`.
pub fn balance_changes(
    expected: &BTreeMap<String, String>,
    before: &BTreeMap<String, Decimal>,
    now: &BTreeMap<String, Decimal>,
) -> Vec<String> {
    let mut differences = Vec::new();
    for (account, change) in expected {
        let Ok(wanted) = Decimal::from_str(change.trim()) else {
            differences.push(format!(
                "balance change of {account}: {change:?} in the scenario is not a decimal"
            ));
            continue;
        };
        let key = account.to_lowercase();
        let key = match key.split_once(' ') {
            Some((currency, name)) => format!("{} {name}", currency.to_uppercase()),
            None => key,
        };
        let got = now.get(&key).copied().unwrap_or_default()
            - before.get(&key).copied().unwrap_or_default();
        if got != wanted {
            differences.push(format!(
                "balance change of {account}: expected {wanted}, got {got}"
            ));
        }
    }
    differences
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn amounts_compare_by_value_and_differences_name_both_sides() {
        let view = LedgerView {
            payment: json!({ "status": "CAPTURED", "capturedAmount": "20.00", "captures": [{}] }),
            webhooks: vec![],
        };
        let same = Finance {
            status: Some("CAPTURED".into()),
            captured: Some("20".into()),
            captures: Some(1),
            ..Finance::default()
        };
        assert!(finance(&same, &view).is_empty());
        let other = Finance {
            status: Some("REFUNDED".into()),
            captured: Some("15".into()),
            ..Finance::default()
        };
        assert_eq!(
            finance(&other, &view),
            vec![
                "status: expected \"REFUNDED\", got \"CAPTURED\"".to_owned(),
                "captured: expected 15, got \"20.00\"".to_owned(),
            ]
        );
    }

    #[test]
    fn an_error_answer_fails_a_step_that_expected_success() {
        let declined = Answer {
            status: 402,
            replayed: false,
            body: json!({ "error": { "type": "card_error", "code": "card_declined", "decline_code": "generic_decline", "payment_intent": { "status": "requires_payment_method" } } }),
        };
        let differences = answer(None, &declined);
        assert_eq!(differences.len(), 1);
        assert!(differences[0].contains("402 card_declined (generic_decline)"));
        let expected = Engineering {
            http_status: Some(402),
            status: Some("requires_payment_method".into()),
            decline_code: Some("generic_decline".into()),
            ..Engineering::default()
        };
        assert!(answer(Some(&expected), &declined).is_empty());
    }

    #[test]
    fn balance_changes_are_measured_from_the_scenario_start_by_value() {
        let before = BTreeMap::from([("USD bank".to_owned(), Decimal::new(1_000, 2))]);
        let now = BTreeMap::from([
            ("USD bank".to_owned(), Decimal::new(15_640, 2)),
            ("USD sales".to_owned(), Decimal::new(-16_700, 2)),
        ]);
        let expected = BTreeMap::from([
            ("usd bank".to_owned(), "146.4".to_owned()),
            ("USD sales".to_owned(), "-167.00".to_owned()),
            ("USD refunds".to_owned(), "0".to_owned()),
        ]);
        assert!(balance_changes(&expected, &before, &now).is_empty());
        let wrong = BTreeMap::from([("USD bank".to_owned(), "146.41".to_owned())]);
        assert_eq!(
            balance_changes(&wrong, &before, &now),
            vec!["balance change of USD bank: expected 146.41, got 146.40".to_owned()]
        );
    }

    #[test]
    fn a_reconciliation_with_an_exception_differs_from_one_expected_clean() {
        let imported = json!({ "lines": 4, "matchedLines": 3, "exceptions": 1, "payoutsProven": 0, "exceptionClasses": ["MISSING_FROM_LEDGER"] });
        let clean = Reconciliation {
            lines: Some(4),
            matched_lines: Some(4),
            exceptions: Some(0),
            exception_classes: Some(vec![]),
            ..Reconciliation::default()
        };
        assert_eq!(
            reconciliation(&clean, &imported),
            vec![
                "matched lines: expected 4, got 3".to_owned(),
                "exceptions: expected 0, got 1".to_owned(),
                "exception classes: expected [], got [\"MISSING_FROM_LEDGER\"]".to_owned(),
            ]
        );
    }
}

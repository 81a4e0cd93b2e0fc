//! The console of `ledger serve` in a real browser: sign in with a support key, find a
//! payment by its order id and see its timeline, be refused balances, have a form without its
//! CSRF token refused, sign out and be asked for the key again; finance resolves a
//! reconciliation exception through the page and the log has the event; a payment played by
//! `ledger demo` is found by its order id (and its PaymentIntent id) with its whole timeline,
//! and finance sees the demo's balances as of a day and its reconciliation run.
//!
//! `UPDATE_SCREENSHOTS=1` saves what the pages show to `docs/console-*.png`.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use ledger_store::testing::TestDatabase;
use ledger_tests::browser::{fantoccini::Locator, with_browser, Browser};
use ledger_tests::server::{create_key, Server};
use serde_json::json;

/// Initiates a payment through the API, and waits until the read model shows it.
async fn initiate_payment(server: &Server, database: &TestDatabase, key: &str, order_id: &str) {
    let answer: serde_json::Value = reqwest::Client::new()
        .post(format!("{}/graphql", server.address))
        .bearer_auth(key)
        .json(&json!({
            "query": "mutation($input: InitiatePaymentInput!) { initiatePayment(input: $input) { payment { id } } }",
            "variables": {"input": {"idempotencyKey": "browser-console-1", "orderId": order_id,
                "merchantId": "merchant-console", "amount": "19.99", "currency": "USD"}},
        }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(answer.get("errors").is_none(), "{answer}");
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let found: i64 =
            sqlx::query_scalar("SELECT count(*) FROM projection_payments WHERE order_id = $1")
                .bind(order_id)
                .fetch_one(database.pool())
                .await
                .unwrap();
        if found == 1 {
            return;
        }
        assert!(Instant::now() < deadline, "the read model did not catch up");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn screenshot(browser: &Browser, name: &str) {
    if std::env::var("UPDATE_SCREENSHOTS").is_ok_and(|value| value == "1") {
        let path: PathBuf =
            Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("../docs/console-{name}.png"));
        browser.screenshot(path).await;
    }
}

async fn click(browser: &Browser, css: &str) {
    browser
        .client
        .find(Locator::Css(css))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
}

#[tokio::test]
async fn support_signs_in_finds_a_payment_by_order_and_signs_out() {
    let database = TestDatabase::new().await;
    let service = create_key(database.url(), "service");
    let support = create_key(database.url(), "support");
    let server = Server::start(database.url());
    initiate_payment(&server, &database, &service, "order-browser-1").await;
    let console = format!("{}/console", server.address);

    with_browser(|browser| async move {
        // Without a session the console asks for the key.
        browser.client.goto(&console).await.unwrap();
        let key = browser.wait_for("input[name=key]").await;
        screenshot(&browser, "sign-in").await;
        key.send_keys("lk_test_not_a_real_key").await.unwrap();
        click(&browser, "#sign-in").await;
        browser
            .wait_for_text("#sign-in-error", "That key was refused")
            .await;

        browser
            .wait_for("input[name=key]")
            .await
            .send_keys(&support)
            .await
            .unwrap();
        click(&browser, "#sign-in").await;
        browser.wait_for_text("#environment", "TEST").await;
        browser.wait_for_text("#role", "support").await;
        // The key is nowhere the page's scripts or its address could reach.
        let url = browser.client.current_url().await.unwrap();
        assert!(!url.as_str().contains(&support[8..]));
        assert_eq!(
            browser.run("return document.cookie;", vec![]).await,
            json!("")
        );
        // A support key has no balances link, and the page itself refuses it.
        assert!(browser
            .client
            .find(Locator::Css("a[href='/console/balances']"))
            .await
            .is_err());

        // Found by its order id, its timeline shown.
        browser
            .wait_for("#q")
            .await
            .send_keys("order-browser-1")
            .await
            .unwrap();
        click(&browser, "#search").await;
        browser.wait_for_text("#results", "order-browser-1").await;
        screenshot(&browser, "payments").await;
        click(&browser, "#results tbody a").await;
        browser.wait_for_text("#timeline", "PaymentInitiated").await;
        browser
            .wait_for_text("#timeline", "browser-console-1")
            .await;
        browser.wait_for_text("#amounts", "19.99 USD").await;
        browser.wait_for_text("#amounts", "0.00 USD").await;
        browser
            .run(
                "document.getElementById('timeline').scrollIntoView();",
                vec![],
            )
            .await;
        screenshot(&browser, "payment").await;

        browser
            .client
            .goto(&format!("{console}/balances"))
            .await
            .unwrap();
        browser
            .wait_for_text("#error-message", "support key may not see balances")
            .await;

        // The sign-out form without its CSRF token is refused, and the session goes on.
        browser
            .client
            .goto(&format!("{console}/payments"))
            .await
            .unwrap();
        browser.wait_for("#sign-out").await;
        browser
            .run(
                "const form = document.querySelector('form.sign-out'); \
                 form.querySelector('input[name=csrf]').remove(); form.submit();",
                vec![],
            )
            .await;
        browser
            .wait_for_text("#error-message", "did not come from the console")
            .await;
        browser
            .client
            .goto(&format!("{console}/payments"))
            .await
            .unwrap();
        browser.wait_for_text("#role", "support").await;

        // After sign-out the pages ask for the key again.
        click(&browser, "#sign-out").await;
        browser.wait_for("input[name=key]").await;
        browser
            .client
            .goto(&format!("{console}/payments"))
            .await
            .unwrap();
        browser.wait_for("input[name=key]").await;

        // Nothing failed to load or was refused by the pages' policy (the refused key's 401,
        // the refused form's 403 and the forbidden page's 403 aside).
        let problems: Vec<_> = browser
            .console()
            .await
            .into_iter()
            .filter(|entry| {
                entry.level == "SEVERE"
                    && !entry.message.contains("status of 401")
                    && !entry.message.contains("status of 403")
            })
            .collect();
        assert!(problems.is_empty(), "{problems:#?}");
    })
    .await;
}

/// Records a completed reconciliation run with one exception through the command handler, as
/// the importer does; the run's id and the exception's.
async fn run_with_one_exception(database: &TestDatabase) -> (uuid::Uuid, uuid::Uuid) {
    use chrono::Utc;
    use ledger_core::ids::{Environment, PayoutId, ReconciliationExceptionId, ReconciliationRunId};
    use ledger_core::reconciliation::{
        ExceptionClass, ReconciliationCommand, ReconciliationException, ReconciliationRunState,
        ReconciliationSource, ReportSide, StartRun,
    };
    use ledger_core::text::ShortText;
    use ledger_store::commands::{CommandContext, CommandHandler};

    let text = |value: &str| ShortText::parse(value).unwrap();
    let handler = CommandHandler::new(database.store());
    let context = CommandContext {
        environment: Environment::Test,
        actor_id: "importer".to_owned(),
        actor_role: "finance".to_owned(),
        correlation_id: uuid::Uuid::new_v4(),
        causation_id: None,
        occurred_at: Utc::now(),
        idempotency: None,
    };
    let run = ReconciliationRunId::new_random();
    let exception = ReconciliationExceptionId::new_random();
    let commands = [
        ReconciliationCommand::Start(StartRun {
            environment: Environment::Test,
            source: ReconciliationSource::StripePayouts,
            file_name: Some(text("payouts.csv")),
            file_sha256: "ab".repeat(32),
            started_by: text("finance-key"),
            started_at: Utc::now(),
            availability_days: 2,
        }),
        ReconciliationCommand::RecordExceptions {
            exceptions: vec![ReconciliationException {
                exception_id: exception,
                class: ExceptionClass::MissingFromLedger,
                detail: text("line 3: not in the ledger"),
                line_number: Some(3),
                payout_id: Some(PayoutId::parse("po_browser").unwrap()),
                payment_id: None,
                item: None,
                report: Some(ReportSide {
                    balance_transaction_id: Some(text("txn_3")),
                    reporting_category: Some(text("charge")),
                    currency: Some(text("usd")),
                    gross: Some(text("10.00")),
                    fee: Some(text("0.30")),
                    net: Some(text("9.70")),
                    available_on: Some(text("2026-11-20")),
                }),
                ledger: None,
            }],
        },
        ReconciliationCommand::Complete {
            lines: 3,
            matched_lines: 2,
            completed_at: Utc::now(),
        },
    ];
    let mut state = ReconciliationRunState::default();
    for command in &commands {
        state = handler
            .advance_reconciliation(run, state, command, &context)
            .await
            .unwrap()
            .0;
    }
    (run.as_uuid(), exception.as_uuid())
}

#[tokio::test]
async fn finance_resolves_a_reconciliation_exception_through_the_page() {
    let database = TestDatabase::new().await;
    let finance = create_key(database.url(), "finance");
    let server = Server::start(database.url());
    let (run, exception) = run_with_one_exception(&database).await;
    let console = format!("{}/console", server.address);

    with_browser(|browser| async move {
        browser.client.goto(&console).await.unwrap();
        browser
            .wait_for("input[name=key]")
            .await
            .send_keys(&finance)
            .await
            .unwrap();
        click(&browser, "#sign-in").await;
        browser.wait_for_text("#role", "finance").await;
        click(&browser, "a[href='/console/exceptions']").await;
        // The projections follow the log in the server: the page shows the run once they have.
        let row = format!("#exception-{exception}");
        let deadline = Instant::now() + Duration::from_secs(15);
        while browser.client.find(Locator::Css(&row)).await.is_err() {
            assert!(Instant::now() < deadline, "the exception never showed");
            browser.client.refresh().await.unwrap();
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        browser
            .wait_for_text(&row, "gross 10.00 fee 0.30 USD")
            .await;
        browser
            .wait_for(&format!("#reason-{exception}"))
            .await
            .send_keys("booked by hand on the 21st")
            .await
            .unwrap();
        screenshot(&browser, "exceptions").await;
        click(&browser, &format!("{row} form.resolve button")).await;
        let deadline = Instant::now() + Duration::from_secs(15);
        while browser
            .client
            .find(Locator::Css(&format!("{row} .resolution")))
            .await
            .is_err()
        {
            assert!(Instant::now() < deadline, "the resolution never showed");
            tokio::time::sleep(Duration::from_millis(200)).await;
            browser.client.refresh().await.unwrap();
        }
        browser
            .wait_for_text(&row, "booked by hand on the 21st")
            .await;
    })
    .await;

    let events = database.store().read_stream(run, 1).await.unwrap();
    let last = events.last().unwrap();
    assert_eq!(last.event_type, "ReconciliationExceptionResolved");
    assert_eq!(last.payload["reason"], "booked by hand on the 21st");
}

/// Waits until every projection of `ledger serve` has applied the whole log.
async fn projections_caught_up(database: &TestDatabase) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let behind: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM projection_checkpoints
             WHERE position < (SELECT last_position FROM log_head WHERE id = 1)",
        )
        .fetch_one(database.pool())
        .await
        .unwrap();
        let payments: i64 = sqlx::query_scalar("SELECT count(*) FROM projection_payments")
            .fetch_one(database.pool())
            .await
            .unwrap();
        if behind == 0 && payments > 0 {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "the projections did not catch up"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn a_payment_played_by_ledger_demo_is_found_by_its_order_id_with_its_timeline() {
    let database = TestDatabase::new().await;
    // A day of traffic as a newcomer plays it: API commands, signed Stripe webhooks, a payout
    // report imported; written to this database.
    let demo = std::process::Command::new(ledger_tests::ledger_binary())
        .args(["demo", "--payments", "8"])
        .env("DATABASE_URL", database.url())
        .env_remove("LEDGER_SERVER_DATABASE_URL")
        .env_remove("LEDGER_STRIPE_WEBHOOK_SECRETS")
        .env("RUST_LOG", "error")
        .output()
        .expect("the ledger binary runs");
    assert!(
        demo.status.success(),
        "{}",
        String::from_utf8_lossy(&demo.stderr)
    );
    let support = create_key(database.url(), "support");
    let finance = create_key(database.url(), "finance");
    let server = Server::start(database.url());
    projections_caught_up(&database).await;
    // The demo's payment with the longest history, and that history from its own stream.
    let (payment, order_id, merchant): (uuid::Uuid, String, String) = sqlx::query_as(
        "SELECT payment_id, order_id, merchant_id FROM projection_payments
         ORDER BY version DESC, payment_id LIMIT 1",
    )
    .fetch_one(database.pool())
    .await
    .unwrap();
    let history: Vec<String> = sqlx::query_scalar(
        "SELECT event_type FROM events WHERE stream_id = $1 ORDER BY stream_version",
    )
    .bind(payment)
    .fetch_all(database.pool())
    .await
    .unwrap();
    assert!(history.len() >= 3, "{history:?}");
    // A payment the demo's Stripe webhooks linked to their PaymentIntent.
    let (intent, linked): (String, uuid::Uuid) = sqlx::query_as(
        "SELECT payment_intent_id, payment_id FROM webhook_payment_links
         ORDER BY payment_intent_id LIMIT 1",
    )
    .fetch_one(database.pool())
    .await
    .unwrap();
    let console = format!("{}/console", server.address);

    with_browser(|browser| async move {
        browser.client.goto(&console).await.unwrap();
        browser
            .wait_for("input[name=key]")
            .await
            .send_keys(&support)
            .await
            .unwrap();
        click(&browser, "#sign-in").await;
        browser.wait_for_text("#role", "support").await;

        browser
            .wait_for("#q")
            .await
            .send_keys(&order_id)
            .await
            .unwrap();
        click(&browser, "#search").await;
        browser.wait_for_text("#results", &order_id).await;
        click(
            &browser,
            &format!("#results a[href='/console/payments/{payment}']"),
        )
        .await;
        browser.wait_for_text("#order", &order_id).await;
        let timeline = browser.wait_for_text("#timeline", &history[0]).await;
        for event_type in &history {
            assert!(
                timeline.contains(event_type.as_str()),
                "{event_type}: {timeline}"
            );
        }
        let rows = browser
            .client
            .find_all(Locator::Css("#timeline tbody tr"))
            .await
            .unwrap();
        assert_eq!(rows.len(), history.len());

        // The same lookup by the Stripe PaymentIntent id.
        browser
            .client
            .goto(&format!("{console}/payments?by=intent&q={intent}"))
            .await
            .unwrap();
        browser.wait_for_text("#results", &linked.to_string()).await;

        // Finance sees the demo's balances as of today and its reconciliation run.
        click(&browser, "#sign-out").await;
        browser
            .wait_for("input[name=key]")
            .await
            .send_keys(&finance)
            .await
            .unwrap();
        click(&browser, "#sign-in").await;
        browser.wait_for_text("#role", "finance").await;
        browser
            .client
            .goto(&format!("{console}/balances"))
            .await
            .unwrap();
        browser
            .wait_for("#merchant")
            .await
            .send_keys(&merchant)
            .await
            .unwrap();
        let today = chrono::Utc::now().date_naive().format("%m%d%Y").to_string();
        // A date control takes the digits of the locale's order (en-US: month, day, year).
        browser
            .wait_for("#as_of")
            .await
            .send_keys(&today)
            .await
            .unwrap();
        click(&browser, "form.search button").await;
        browser.wait_for_text("#summary", "USD").await;
        browser.wait_for_text("#balances", "gateway_pending").await;
        screenshot(&browser, "balances").await;

        click(&browser, "a[href='/console/reconciliation']").await;
        browser.wait_for("#runs").await;
        click(&browser, "#runs tbody a").await;
        browser.wait_for_text("#verdicts", "proven").await;
        screenshot(&browser, "reconciliation").await;
    })
    .await;
}

//! The console over real HTTP against the real server and a fresh database: sign-in with a
//! key, its session cookie, CSRF tokens, pages that follow the key's role and environment,
//! revocation and sign-out.

use ledger_api::auth::{create_key, revoke_key, Role};
use ledger_api::server::ServerConfig;
use ledger_core::ids::Environment;
use reqwest::header::{COOKIE, LOCATION, SET_COOKIE};
use reqwest::StatusCode;
use serde_json::json;

mod support;
use support::{csrf_of, spawn_with, App};

async fn spawn() -> App {
    spawn_with(ServerConfig::default()).await
}

impl App {
    async fn key(&self, role: Role, environment: Environment) -> (String, uuid::Uuid) {
        let (key, record) = create_key(self.database.pool(), role, environment, "console")
            .await
            .unwrap();
        (key.reveal().to_owned(), record.id)
    }

    /// Initiates a payment through the API and waits until the payments read model has it.
    async fn payment(&self, key: &str, order_id: &str) -> String {
        let answer: serde_json::Value = self
            .client
            .post(format!("{}/graphql", self.address))
            .bearer_auth(key)
            .json(&json!({
                "query": "mutation($input: InitiatePaymentInput!) { initiatePayment(input: $input) { payment { id } } }",
                "variables": {"input": {"idempotencyKey": format!("console-{order_id}"), "orderId": order_id,
                    "merchantId": "merchant-console", "amount": "42.00", "currency": "EUR"}},
            }))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let id = answer["data"]["initiatePayment"]["payment"]["id"]
            .as_str()
            .unwrap_or_else(|| panic!("{answer}"))
            .to_owned();
        for _ in 0..200 {
            let found = sqlx::query_scalar::<_, i64>(
                "SELECT count(*) FROM projection_payments WHERE payment_id = $1::uuid",
            )
            .bind(&id)
            .fetch_one(self.database.pool())
            .await
            .unwrap();
            if found == 1 {
                return id;
            }
            tokio::time::sleep(std::time::Duration::from_millis(25)).await;
        }
        panic!("the payments read model did not catch up");
    }

    async fn get(&self, path: &str, session: Option<&str>) -> reqwest::Response {
        let mut request = self.client.get(format!("{}{path}", self.address));
        if let Some(session) = session {
            request = request.header(COOKIE, format!("ledger_console_session={session}"));
        }
        request.send().await.unwrap()
    }

    async fn post(
        &self,
        path: &str,
        cookie: Option<String>,
        form: &[(&str, &str)],
    ) -> reqwest::Response {
        let mut request = self
            .client
            .post(format!("{}{path}", self.address))
            .form(form);
        if let Some(cookie) = cookie {
            request = request.header(COOKIE, cookie);
        }
        request.send().await.unwrap()
    }

    /// The sign-in form: its CSRF token and the cookie that must come back with it.
    async fn sign_in_form(&self) -> (String, String) {
        let response = self.get("/console/sign-in", None).await;
        assert_eq!(response.status(), StatusCode::OK);
        let cookie = set_cookie(&response, "ledger_console_sign_in").unwrap();
        let token = csrf_of(&response.text().await.unwrap());
        (token, cookie)
    }

    /// Signs in with the key: the session id, and the CSRF token of its pages.
    async fn sign_in(&self, key: &str) -> (String, String) {
        let (token, cookie) = self.sign_in_form().await;
        let response = self
            .post(
                "/console/sign-in",
                Some(format!("ledger_console_sign_in={cookie}")),
                &[("key", key), ("csrf", &token)],
            )
            .await;
        assert_eq!(response.status(), StatusCode::SEE_OTHER);
        assert_eq!(response.headers()[LOCATION], "/console/payments");
        let session = set_cookie(&response, "ledger_console_session").unwrap();
        let page = self.get("/console/payments", Some(&session)).await;
        assert_eq!(page.status(), StatusCode::OK);
        let csrf = csrf_of(&page.text().await.unwrap());
        (session, csrf)
    }
}

/// The value a response's Set-Cookie gives cookie `name`.
fn set_cookie(response: &reqwest::Response, name: &str) -> Option<String> {
    response
        .headers()
        .get_all(SET_COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .find_map(|value| value.strip_prefix(&format!("{name}=")))
        .map(|rest| rest.split(';').next().unwrap_or_default().to_owned())
}

fn set_cookie_header(response: &reqwest::Response, name: &str) -> String {
    response
        .headers()
        .get_all(SET_COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .find(|value| value.starts_with(&format!("{name}=")))
        .unwrap()
        .to_owned()
}

#[tokio::test]
async fn sign_in_keeps_the_key_on_the_server_behind_a_strict_http_only_cookie() {
    let app = spawn().await;
    let (key, _) = app.key(Role::Support, Environment::Test).await;
    let (token, cookie) = app.sign_in_form().await;
    let response = app
        .post(
            "/console/sign-in",
            Some(format!("ledger_console_sign_in={cookie}")),
            &[("key", key.as_str()), ("csrf", token.as_str())],
        )
        .await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    let header = set_cookie_header(&response, "ledger_console_session");
    for attribute in [
        "HttpOnly",
        "SameSite=Strict",
        "Path=/console",
        "Max-Age=28800",
    ] {
        assert!(header.contains(attribute), "{header}");
    }
    assert!(!header.contains("Secure"), "plain HTTP: {header}");
    assert!(!header.contains(&key[8..]), "the key is not in the cookie");
    assert!(!response.headers()[LOCATION]
        .to_str()
        .unwrap()
        .contains(&key[8..]));
    let session = set_cookie(&response, "ledger_console_session").unwrap();
    assert_eq!(session.len(), 64);

    // Behind a TLS proxy the cookie is Secure.
    let (token, cookie) = app.sign_in_form().await;
    let response = app
        .client
        .post(format!("{}/console/sign-in", app.address))
        .header(COOKIE, format!("ledger_console_sign_in={cookie}"))
        .header("x-forwarded-proto", "https")
        .form(&[("key", key.as_str()), ("csrf", token.as_str())])
        .send()
        .await
        .unwrap();
    assert!(set_cookie_header(&response, "ledger_console_session").contains("Secure"));
}

#[tokio::test]
async fn sign_in_refuses_wrong_keys_and_forms_without_their_token() {
    let app = spawn().await;
    let (key, _) = app.key(Role::Support, Environment::Test).await;

    let (token, cookie) = app.sign_in_form().await;
    let jar = Some(format!("ledger_console_sign_in={cookie}"));
    let wrong = app
        .post(
            "/console/sign-in",
            jar.clone(),
            &[
                (
                    "key",
                    "lk_test_0123456789abcdef0123456789abcdef0123456789abcdef",
                ),
                ("csrf", &token),
            ],
        )
        .await;
    assert_eq!(wrong.status(), StatusCode::UNAUTHORIZED);
    assert!(set_cookie(&wrong, "ledger_console_session").is_none());
    assert!(wrong.text().await.unwrap().contains("That key was refused"));

    // No token, a token without its cookie, a token of another form: refused, no session.
    for (cookie, form) in [
        (jar.clone(), vec![("key", key.as_str())]),
        (None, vec![("key", key.as_str()), ("csrf", token.as_str())]),
        (
            Some(format!("ledger_console_sign_in={}", "0".repeat(64))),
            vec![("key", key.as_str()), ("csrf", token.as_str())],
        ),
    ] {
        let response = app.post("/console/sign-in", cookie, &form).await;
        assert_eq!(response.status(), StatusCode::FORBIDDEN);
        assert!(set_cookie(&response, "ledger_console_session").is_none());
    }
}

#[tokio::test]
async fn pages_ask_for_a_key_without_a_session_and_load_nothing_from_elsewhere() {
    let app = spawn().await;
    for path in ["/console", "/console/payments", "/console/balances"] {
        let response = app.get(path, None).await;
        assert_eq!(response.status(), StatusCode::SEE_OTHER, "{path}");
        assert_eq!(response.headers()[LOCATION], "/console/sign-in");
    }
    let forged = app.get("/console/payments", Some(&"a".repeat(64))).await;
    assert_eq!(forged.headers()[LOCATION], "/console/sign-in");
    let page = app.get("/console/sign-in", None).await;
    let policy = page.headers()["content-security-policy"].to_str().unwrap();
    assert!(policy.contains("default-src 'none'") && policy.contains("form-action 'self'"));
    let html = page.text().await.unwrap();
    assert!(!html.contains("<script"));
    assert!(html.contains(r#"<label for="key">"#) && html.contains(r#"name="key""#));
}

#[tokio::test]
async fn a_support_key_sees_payments_and_their_timeline_but_not_balances() {
    let app = spawn().await;
    let (service, _) = app.key(Role::Service, Environment::Test).await;
    let payment = app.payment(&service, "order-support-1").await;
    let (support, _) = app.key(Role::Support, Environment::Test).await;
    let (session, _) = app.sign_in(&support).await;

    let found = app
        .get(
            "/console/payments?by=order&q=order-support-1",
            Some(&session),
        )
        .await;
    assert_eq!(found.status(), StatusCode::OK);
    let html = found.text().await.unwrap();
    assert!(
        html.contains(&format!("/console/payments/{payment}")),
        "{html}"
    );
    assert!(html.contains("42.00 EUR") && html.contains("INITIATED"));
    assert!(html.contains("TEST") && !html.contains("/console/balances"));

    // The same search as a CSV download, behind the same role.
    let download = app
        .get(
            "/console/payments?by=order&q=order-support-1&format=csv",
            Some(&session),
        )
        .await;
    assert_eq!(download.status(), StatusCode::OK);
    assert_eq!(
        download.headers()[reqwest::header::CONTENT_TYPE],
        "text/csv; charset=utf-8"
    );
    let csv = download.text().await.unwrap();
    let lines: Vec<&str> = csv.lines().collect();
    assert_eq!(lines.len(), 2, "{csv}");
    assert_eq!(
        lines[0],
        "payment_id,order_id,merchant_id,status,amount,created_at"
    );
    assert!(
        lines[1].starts_with(&format!(
            "{payment},order-support-1,merchant-console,INITIATED,42.00 EUR,"
        )),
        "{csv}"
    );

    let detail = app
        .get(&format!("/console/payments/{payment}"), Some(&session))
        .await;
    assert_eq!(detail.status(), StatusCode::OK);
    let html = detail.text().await.unwrap();
    assert!(html.contains("PaymentInitiated"), "{html}");
    assert!(
        html.contains("console-order-support-1"),
        "the idempotency key: {html}"
    );

    let balances = app
        .get(
            "/console/balances?merchant=merchant-console",
            Some(&session),
        )
        .await;
    assert_eq!(balances.status(), StatusCode::FORBIDDEN);
    assert!(balances
        .text()
        .await
        .unwrap()
        .contains("support key may not see balances"));

    let (finance, _) = app.key(Role::Finance, Environment::Test).await;
    let (session, _) = app.sign_in(&finance).await;
    let balances = app
        .get(
            "/console/balances?merchant=merchant-console",
            Some(&session),
        )
        .await;
    assert_eq!(balances.status(), StatusCode::OK);
    assert!(balances
        .text()
        .await
        .unwrap()
        .contains(r#"href="/console/balances""#));
}

#[tokio::test]
async fn a_live_key_sees_the_live_banner_and_no_test_payment() {
    let app = spawn().await;
    let (service, _) = app.key(Role::Service, Environment::Test).await;
    let payment = app.payment(&service, "order-test-only").await;
    let (live, _) = app.key(Role::Support, Environment::Live).await;
    let (session, _) = app.sign_in(&live).await;
    let page = app
        .get(
            "/console/payments?by=order&q=order-test-only",
            Some(&session),
        )
        .await;
    let html = page.text().await.unwrap();
    assert!(html.contains("banner-live") && html.contains("<strong>LIVE</strong>"));
    assert!(html.contains("No payment matches"));
    let detail = app
        .get(&format!("/console/payments/{payment}"), Some(&session))
        .await;
    assert_eq!(detail.status(), StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn sign_out_needs_the_token_and_ends_the_session() {
    let app = spawn().await;
    let (key, _) = app.key(Role::Finance, Environment::Test).await;
    let (session, csrf) = app.sign_in(&key).await;
    let jar = Some(format!("ledger_console_session={session}"));

    let refused = app.post("/console/sign-out", jar.clone(), &[]).await;
    assert_eq!(refused.status(), StatusCode::FORBIDDEN);
    let wrong = app
        .post(
            "/console/sign-out",
            jar.clone(),
            &[("csrf", &"0".repeat(64))],
        )
        .await;
    assert_eq!(wrong.status(), StatusCode::FORBIDDEN);
    assert_eq!(
        app.get("/console/payments", Some(&session)).await.status(),
        StatusCode::OK
    );

    let signed_out = app
        .post("/console/sign-out", jar, &[("csrf", csrf.as_str())])
        .await;
    assert_eq!(signed_out.status(), StatusCode::SEE_OTHER);
    assert_eq!(signed_out.headers()[LOCATION], "/console/sign-in");
    assert!(set_cookie_header(&signed_out, "ledger_console_session").contains("Max-Age=0"));
    let after = app.get("/console/payments", Some(&session)).await;
    assert_eq!(after.headers()[LOCATION], "/console/sign-in");
}

#[tokio::test]
async fn revoking_the_key_ends_its_sessions() {
    let app = spawn().await;
    let (key, id) = app.key(Role::Support, Environment::Test).await;
    let (session, _) = app.sign_in(&key).await;
    revoke_key(app.database.pool(), id).await.unwrap();
    let after = app.get("/console/payments", Some(&session)).await;
    assert_eq!(after.status(), StatusCode::SEE_OTHER);
    assert_eq!(after.headers()[LOCATION], "/console/sign-in");
}

/// Records a completed reconciliation run with one exception, as the importer does, and waits
/// until the read model shows it: the run's id and the exception's.
async fn run_with_one_exception(app: &App) -> (uuid::Uuid, uuid::Uuid) {
    use chrono::Utc;
    use ledger_core::ids::{PayoutId, ReconciliationExceptionId, ReconciliationRunId};
    use ledger_core::reconciliation::{
        ExceptionClass, ReconciliationCommand, ReconciliationException, ReconciliationRunState,
        ReconciliationSource, ReportSide, StartRun,
    };
    use ledger_core::text::ShortText;
    use ledger_store::commands::{CommandContext, CommandHandler};

    let text = |value: &str| ShortText::parse(value).unwrap();
    let handler = CommandHandler::new(app.database.store());
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
                payout_id: Some(PayoutId::parse("po_console").unwrap()),
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
    wait_for_exception(app, exception.as_uuid(), false).await;
    (run.as_uuid(), exception.as_uuid())
}

async fn wait_for_exception(app: &App, exception: uuid::Uuid, resolved: bool) {
    for _ in 0..200 {
        let found = sqlx::query_scalar::<_, i64>(
            "SELECT count(*) FROM projection_reconciliation_exceptions
             WHERE exception_id = $1 AND (resolved_at IS NOT NULL) = $2",
        )
        .bind(exception)
        .bind(resolved)
        .fetch_one(app.database.pool())
        .await
        .unwrap();
        if found == 1 {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(25)).await;
    }
    panic!("the reconciliation read model did not catch up");
}

#[tokio::test]
async fn finance_resolves_a_reconciliation_exception_with_a_reason_and_it_is_an_event() {
    let app = spawn().await;
    let (run, exception) = run_with_one_exception(&app).await;
    let (finance, finance_id) = app.key(Role::Finance, Environment::Test).await;
    let (session, csrf) = app.sign_in(&finance).await;

    let page = app.get("/console/exceptions", Some(&session)).await;
    assert_eq!(page.status(), StatusCode::OK);
    let html = page.text().await.unwrap();
    assert!(
        html.contains("missing_from_ledger: <strong>1</strong>"),
        "{html}"
    );
    assert!(html.contains(&format!("/console/exceptions/{exception}/resolve")));
    assert!(html.contains("gross 10.00 fee 0.30 USD"));

    let path = format!("/console/exceptions/{exception}/resolve");
    let jar = Some(format!("ledger_console_session={session}"));
    let refused = app
        .post(&path, jar.clone(), &[("reason", "booked by hand")])
        .await;
    assert_eq!(refused.status(), StatusCode::FORBIDDEN);
    let no_reason = app
        .post(
            &path,
            jar.clone(),
            &[("csrf", csrf.as_str()), ("reason", " ")],
        )
        .await;
    assert_eq!(no_reason.status(), StatusCode::BAD_REQUEST);

    let resolved = app
        .post(
            &path,
            jar,
            &[("csrf", csrf.as_str()), ("reason", "booked by hand")],
        )
        .await;
    assert_eq!(resolved.status(), StatusCode::SEE_OTHER);
    let events = app.database.store().read_stream(run, 1).await.unwrap();
    let last = events.last().unwrap();
    assert_eq!(last.event_type, "ReconciliationExceptionResolved");
    assert_eq!(last.payload["reason"], "booked by hand");
    assert_eq!(last.metadata["actor_id"], finance_id.to_string());

    wait_for_exception(&app, exception, true).await;
    let html = app
        .get("/console/exceptions?state=resolved", Some(&session))
        .await
        .text()
        .await
        .unwrap();
    assert!(html.contains("booked by hand"), "{html}");
    let open = app
        .get("/console/exceptions", Some(&session))
        .await
        .text()
        .await
        .unwrap();
    assert!(open.contains("No open reconciliation exception"));

    // Support may not see the queue, nor resolve.
    let (support, _) = app.key(Role::Support, Environment::Test).await;
    let (session, csrf) = app.sign_in(&support).await;
    assert_eq!(
        app.get("/console/exceptions", Some(&session))
            .await
            .status(),
        StatusCode::FORBIDDEN
    );
    let refused = app
        .post(
            &path,
            Some(format!("ledger_console_session={session}")),
            &[("csrf", csrf.as_str()), ("reason", "x")],
        )
        .await;
    assert_eq!(refused.status(), StatusCode::FORBIDDEN);
}

impl App {
    /// Runs a GraphQL mutation with the key and returns its data, failing on any error.
    async fn graphql(
        &self,
        key: &str,
        query: &str,
        variables: serde_json::Value,
    ) -> serde_json::Value {
        let answer: serde_json::Value = self
            .client
            .post(format!("{}/graphql", self.address))
            .bearer_auth(key)
            .json(&json!({"query": query, "variables": variables}))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert!(answer["errors"].is_null(), "{answer}");
        answer["data"].clone()
    }

    /// Authorizes and captures a payment through the API.
    async fn captured(&self, key: &str, payment: &str) {
        self.graphql(
            key,
            "mutation($input: RecordAuthorizationInput!) { recordAuthorization(input: $input) { payment { id } } }",
            json!({"input": {"idempotencyKey": format!("auth-{payment}"), "paymentId": payment, "outcome": "APPROVED"}}),
        )
        .await;
        self.graphql(
            key,
            "mutation($input: CapturePaymentInput!) { capturePayment(input: $input) { payment { id } } }",
            json!({"input": {"idempotencyKey": format!("capture-{payment}"), "paymentId": payment}}),
        )
        .await;
    }

    /// Opens a dispute on a captured payment whose evidence is due in two days; waits until
    /// the read models show it.
    async fn disputed(&self, key: &str, payment: &str) {
        let due = (chrono::Utc::now() + chrono::Duration::days(2)).to_rfc3339();
        self.graphql(
            key,
            "mutation($input: OpenDisputeInput!) { openDispute(input: $input) { payment { id } } }",
            json!({"input": {"idempotencyKey": format!("dispute-{payment}"), "paymentId": payment,
                "disputeId": "dp_console", "amount": "42.00", "reason": "fraudulent", "evidenceDueBy": due}}),
        )
        .await;
        for _ in 0..200 {
            let found = sqlx::query_scalar::<_, i64>(
                "SELECT count(*) FROM projection_disputes WHERE payment_id = $1::uuid",
            )
            .bind(payment)
            .fetch_one(self.database.pool())
            .await
            .unwrap();
            if found == 1 {
                return;
            }
            tokio::time::sleep(std::time::Duration::from_millis(25)).await;
        }
        panic!("the disputes read model did not catch up");
    }

    /// Records a webhook delivery row as the Stripe endpoint writes it.
    async fn delivery(&self, event: &str, outcome: &str, payment: Option<&str>, minutes_ago: i64) {
        sqlx::query(
            "INSERT INTO webhook_deliveries (environment, stripe_event_id, event_type,
                 payment_intent_id, payment_id, outcome, detail, received_at, last_received_at,
                 processed_at)
             VALUES ('test', $1, 'payment_intent.succeeded', 'pi_console', $2::uuid, $3,
                 'waits for its payment', now() - make_interval(mins => $4::int),
                 now() - make_interval(mins => $4::int), now())",
        )
        .bind(event)
        .bind(payment)
        .bind(outcome)
        .bind(i32::try_from(minutes_ago).unwrap())
        .execute(self.database.pool())
        .await
        .unwrap();
    }

    async fn get_text(&self, path: &str, session: &str) -> String {
        let response = self.get(path, Some(session)).await;
        assert_eq!(response.status(), StatusCode::OK, "{path}");
        response.text().await.unwrap()
    }
}

/// The href of the page's "next page" link, unescaped.
fn next_page(html: &str) -> Option<String> {
    let at = html.find(r#"rel="next""#)?;
    let start = html[..at].rfind("href=\"")? + 6;
    let end = start + html[start..].find('"')?;
    Some(html[start..end].replace("&amp;", "&").replace("&#38;", "&"))
}

#[tokio::test]
async fn a_payment_is_found_by_its_payment_intent_and_shows_its_webhook_deliveries() {
    let app = spawn().await;
    let (service, _) = app.key(Role::Service, Environment::Test).await;
    let payment = app.payment(&service, "order-intent-1").await;
    // What the Stripe endpoint records when a PaymentIntent's event names the payment.
    sqlx::query(
        "INSERT INTO webhook_payment_links (environment, payment_intent_id, payment_id)
         VALUES ('test', 'pi_console', $1::uuid)",
    )
    .bind(&payment)
    .execute(app.database.pool())
    .await
    .unwrap();
    app.delivery("evt_console_applied", "applied", Some(&payment), 1)
        .await;
    let (support, _) = app.key(Role::Support, Environment::Test).await;
    let (session, _) = app.sign_in(&support).await;

    let html = app
        .get_text("/console/payments?by=intent&q=pi_console", &session)
        .await;
    assert!(
        html.contains(&format!("/console/payments/{payment}")),
        "{html}"
    );
    assert!(html.contains(r#"<option value="intent" selected>"#));
    let none = app
        .get_text("/console/payments?by=intent&q=pi_other", &session)
        .await;
    assert!(none.contains("No payment matches"));

    let detail = app
        .get_text(&format!("/console/payments/{payment}"), &session)
        .await;
    assert!(detail.contains("evt_console_applied"), "{detail}");

    // A live key does not find the test environment's PaymentIntent.
    let (live, _) = app.key(Role::Support, Environment::Live).await;
    let (session, _) = app.sign_in(&live).await;
    let html = app
        .get_text("/console/payments?by=intent&q=pi_console", &session)
        .await;
    assert!(html.contains("No payment matches"));
}

#[tokio::test]
async fn the_queue_lists_webhook_problems_and_disputes_due_with_counts_filters_and_pages() {
    let app = spawn().await;
    let (service, _) = app.key(Role::Service, Environment::Test).await;
    let payment = app.payment(&service, "order-queue-1").await;
    app.captured(&service, &payment).await;
    app.disputed(&service, &payment).await;
    // 55 parked deliveries (more than a page), one rejected of the payment, one applied.
    for n in 0..55 {
        app.delivery(&format!("evt_parked_{n:02}"), "parked", None, n)
            .await;
    }
    app.delivery("evt_rejected", "rejected", Some(&payment), 100)
        .await;
    app.delivery("evt_fine", "applied", Some(&payment), 0).await;
    let (finance, _) = app.key(Role::Finance, Environment::Test).await;
    let (session, _) = app.sign_in(&finance).await;

    let html = app.get_text("/console/exceptions", &session).await;
    assert!(
        html.contains("webhook: parked: <strong>55</strong>"),
        "{html}"
    );
    assert!(html.contains("webhook: rejected: <strong>1</strong>"));
    assert!(html.contains("dispute: evidence due soon: <strong>1</strong>"));
    assert!(html.contains("dp_console") && html.contains("fraudulent"));
    assert!(html.contains(&format!(r#"href="/console/payments/{payment}""#)));
    assert!(
        !html.contains("evt_fine"),
        "applied deliveries are no exception"
    );
    // The newest first, one page of 50: the oldest parked and the rejected one come next.
    assert!(html.contains("evt_parked_00") && !html.contains("evt_parked_54"));
    let next = next_page(&html).expect("a next page of webhook deliveries");
    assert!(next.contains("kind=webhook"), "{next}");
    let second = app.get_text(&next, &session).await;
    assert!(
        second.contains("evt_parked_54") && second.contains("evt_rejected"),
        "{next}: {second}"
    );
    assert!(!second.contains("evt_parked_00") && !second.contains("dp_console"));
    assert!(next_page(&second).is_none());

    // Filters: by outcome, by the payment's merchant and currency.
    let rejected = app
        .get_text(
            "/console/exceptions?kind=webhook&outcome=rejected",
            &session,
        )
        .await;
    assert!(rejected.contains("evt_rejected") && !rejected.contains("evt_parked_"));
    let of_merchant = app
        .get_text(
            "/console/exceptions?kind=all&merchant=merchant-console&currency=eur",
            &session,
        )
        .await;
    assert!(of_merchant.contains("evt_rejected") && !of_merchant.contains("evt_parked_"));
    assert!(of_merchant.contains("dp_console"));
    let other = app
        .get_text(
            "/console/exceptions?merchant=merchant-console&currency=USD",
            &session,
        )
        .await;
    assert!(!other.contains("evt_rejected") && !other.contains("dp_console"));
    assert!(
        other.contains("No dispute&#x27;s evidence is due soon") || other.contains("No dispute")
    );

    // Bad filters are refused, not ignored.
    for path in [
        "/console/exceptions?kind=everything",
        "/console/exceptions?outcome=applied",
        "/console/exceptions?currency=EURO",
        "/console/exceptions?kind=webhook&after=garbage",
        "/console/exceptions?after=1:1",
    ] {
        let response = app.get(path, Some(&session)).await;
        assert_eq!(response.status(), StatusCode::BAD_REQUEST, "{path}");
    }

    // Each section downloads as CSV.
    let csv = app
        .get(
            "/console/exceptions?kind=dispute&format=csv",
            Some(&session),
        )
        .await;
    assert_eq!(csv.status(), StatusCode::OK);
    assert_eq!(csv.headers()["content-type"], "text/csv; charset=utf-8");
    assert_eq!(
        csv.headers()["content-disposition"],
        r#"attachment; filename="disputes-evidence-due.csv""#
    );
    let body = csv.text().await.unwrap();
    let mut lines = body.lines();
    assert!(lines
        .next()
        .unwrap()
        .starts_with("dispute,payment,merchant,amount"));
    assert!(lines
        .next()
        .unwrap()
        .starts_with(&format!("dp_console,{payment},merchant-console,42.00 EUR")));
    let webhooks = app
        .get(
            "/console/exceptions?kind=webhook&format=csv",
            Some(&session),
        )
        .await
        .text()
        .await
        .unwrap();
    assert_eq!(webhooks.lines().count(), 1 + 56, "every problem, up to 500");
}

#[tokio::test]
async fn the_reconciliation_page_shows_runs_verdicts_and_both_sides_and_downloads_csv() {
    let app = spawn().await;
    let (run, exception) = run_with_one_exception(&app).await;
    let (auditor, _) = app.key(Role::Auditor, Environment::Test).await;
    let (session, _) = app.sign_in(&auditor).await;

    let runs = app.get_text("/console/reconciliation", &session).await;
    assert!(
        runs.contains(&format!(r#"href="/console/reconciliation/{run}""#)),
        "{runs}"
    );
    assert!(runs.contains("payouts.csv") && runs.contains("COMPLETED"));
    assert!(runs.contains(r#"aria-current="page">Reconciliation"#));

    let page = app
        .get_text(&format!("/console/reconciliation/{run}"), &session)
        .await;
    assert!(
        page.contains(&format!("run-exception-{exception}")),
        "{page}"
    );
    assert!(page.contains(r#"<td class="report-side">gross 10.00 fee 0.30 USD</td>"#));
    assert!(page.contains("line 3: not in the ledger"));
    assert!(page.contains("3 read, 2 matched"));

    let csv = app
        .get(
            &format!("/console/reconciliation/{run}?table=exceptions&format=csv"),
            Some(&session),
        )
        .await;
    assert_eq!(csv.status(), StatusCode::OK);
    assert_eq!(csv.headers()["content-type"], "text/csv; charset=utf-8");
    assert_eq!(
        csv.headers()["content-disposition"],
        format!(r#"attachment; filename="reconciliation-{run}-exceptions.csv""#).as_str()
    );
    let body = csv.text().await.unwrap();
    assert!(
        body.contains(&format!(
            "{exception},missing_from_ledger,line 3: not in the ledger,3,po_console"
        )),
        "{body}"
    );
    let runs_csv = app
        .get("/console/reconciliation?format=csv", Some(&session))
        .await
        .text()
        .await
        .unwrap();
    assert!(runs_csv.starts_with("run,file,status"));
    assert!(runs_csv.contains(&format!("{run},payouts.csv,COMPLETED")));

    let missing = app
        .get(
            &format!("/console/reconciliation/{}", uuid::Uuid::new_v4()),
            Some(&session),
        )
        .await;
    assert_eq!(missing.status(), StatusCode::NOT_FOUND);

    // Support may see neither the page nor its downloads.
    let (support, _) = app.key(Role::Support, Environment::Test).await;
    let (session, _) = app.sign_in(&support).await;
    for path in [
        "/console/reconciliation".to_owned(),
        "/console/reconciliation?format=csv".to_owned(),
        format!("/console/reconciliation/{run}?table=exceptions&format=csv"),
        "/console/exceptions?kind=webhook&format=csv".to_owned(),
    ] {
        let response = app.get(&path, Some(&session)).await;
        assert_eq!(response.status(), StatusCode::FORBIDDEN, "{path}");
    }
}

#[tokio::test]
async fn balances_are_shown_as_of_a_day_and_download_as_csv_for_finance_only() {
    let app = spawn().await;
    let (service, _) = app.key(Role::Service, Environment::Test).await;
    let payment = app.payment(&service, "order-balance-1").await;
    app.captured(&service, &payment).await;
    // The journal follows the log; wait until it has the capture's postings.
    for _ in 0..200 {
        let lag = sqlx::query_scalar::<_, i64>(
            "SELECT (SELECT last_position FROM log_head) - position FROM projection_checkpoints
             WHERE projection = 'journal'",
        )
        .fetch_one(app.database.pool())
        .await
        .unwrap();
        if lag == 0 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(25)).await;
    }
    let (finance, _) = app.key(Role::Finance, Environment::Test).await;
    let (session, _) = app.sign_in(&finance).await;
    let today = chrono::Utc::now().date_naive();
    let yesterday = today.pred_opt().unwrap();

    let now = app
        .get_text("/console/balances?merchant=merchant-console", &session)
        .await;
    assert!(now.contains(r#"<table id="summary">"#), "{now}");
    assert!(now.contains("42.00 EUR"), "captured, not settled: {now}");
    let as_of_today = app
        .get_text(
            &format!("/console/balances?merchant=merchant-console&as_of={today}"),
            &session,
        )
        .await;
    assert!(
        as_of_today.contains("42.00 EUR")
            && as_of_today.contains(&format!("at the end of {today}"))
    );
    let as_of_yesterday = app
        .get_text(
            &format!("/console/balances?merchant=merchant-console&as_of={yesterday}"),
            &session,
        )
        .await;
    assert!(
        as_of_yesterday.contains("No balance for this merchant"),
        "{as_of_yesterday}"
    );
    assert!(
        as_of_yesterday.contains(r#"type="date""#)
            && as_of_yesterday.contains(r#"<label for="as_of">"#)
    );
    for bad in ["2026-13-01", "tomorrow", "9999-01-01"] {
        let response = app
            .get(
                &format!("/console/balances?merchant=merchant-console&as_of={bad}"),
                Some(&session),
            )
            .await;
        assert_eq!(response.status(), StatusCode::BAD_REQUEST, "{bad}");
    }

    let csv = app
        .get(
            &format!("/console/balances?merchant=merchant-console&as_of={today}&table=accounts&format=csv"),
            Some(&session),
        )
        .await;
    assert_eq!(csv.status(), StatusCode::OK);
    assert_eq!(csv.headers()["content-type"], "text/csv; charset=utf-8");
    assert_eq!(
        csv.headers()["content-disposition"],
        format!(r#"attachment; filename="journal-accounts-merchant-console-{today}.csv""#).as_str()
    );
    let body = csv.text().await.unwrap();
    assert!(
        body.starts_with("merchant,currency,account,balance\n"),
        "{body}"
    );
    assert!(
        body.contains("merchant-console,EUR,gateway_pending,"),
        "{body}"
    );
    let summary = app
        .get(
            "/console/balances?merchant=merchant-console&table=summary&format=csv",
            Some(&session),
        )
        .await
        .text()
        .await
        .unwrap();
    assert!(
        summary.contains("merchant-console,EUR,42.00 EUR"),
        "{summary}"
    );

    let (support, _) = app.key(Role::Support, Environment::Test).await;
    let (session, _) = app.sign_in(&support).await;
    let refused = app
        .get(
            "/console/balances?merchant=merchant-console&table=accounts&format=csv",
            Some(&session),
        )
        .await;
    assert_eq!(refused.status(), StatusCode::FORBIDDEN);
    assert!(!refused.text().await.unwrap().contains("gateway_pending"));
}

#[tokio::test]
async fn the_audit_page_shows_the_head_and_downloads_an_export_that_verifies() {
    let app = spawn().await;
    let (service, _) = app.key(Role::Service, Environment::Test).await;
    let payment = app.payment(&service, "order-audit-1").await;
    app.captured(&service, &payment).await;
    let head = app.database.store().head().await.unwrap();
    assert!(head.last_position >= 3);
    let (auditor, _) = app.key(Role::Auditor, Environment::Live).await;
    let (session, _) = app.sign_in(&auditor).await;

    let page = app.get_text("/console/audit", &session).await;
    assert!(
        page.contains(&format!(
            r#"<dd id="head-position">{}</dd>"#,
            head.last_position
        )),
        "{page}"
    );
    assert!(page.contains(&hex::encode(head.last_hash)));
    assert!(page.contains(r#"href="/console/audit/export.jsonl""#));
    assert!(page.contains("No verification recorded yet"), "{page}");

    // What `ledger verify` does: verify everything, then record the outcome.
    let store = app.database.store();
    let report =
        ledger_projections::verify(&store, ledger_projections::ProjectorOptions::for_build())
            .await
            .unwrap();
    assert!(report.is_clean(), "{report}");
    ledger_projections::record_verification(app.database.pool(), &report, Some(head))
        .await
        .unwrap();
    let page = app.get_text("/console/audit", &session).await;
    assert!(
        page.contains(r#"<dd id="verification-outcome">clean</dd>"#),
        "{page}"
    );
    assert!(page.contains(&format!(
        "position {} ({} events checked)",
        head.last_position, head.last_position
    )));
    assert!(page.contains(&head.to_string()));

    let export = app.get("/console/audit/export.jsonl", Some(&session)).await;
    assert_eq!(export.status(), StatusCode::OK);
    assert_eq!(export.headers()["content-type"], "application/x-ndjson");
    assert_eq!(
        export.headers()["content-disposition"],
        format!(
            r#"attachment; filename="ledger-export-{}.jsonl""#,
            head.last_position
        )
        .as_str()
    );
    assert_eq!(
        export.headers()["x-ledger-export-head"],
        head.to_string().as_str()
    );
    let body = export.text().await.unwrap();
    let lines: Vec<serde_json::Value> = body
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect();
    assert_eq!(lines.len() as u64, head.last_position);
    assert_eq!(lines[0]["position"], 1);
    assert_eq!(lines.last().unwrap()["hash"], hex::encode(head.last_hash));
    // The auditor's own check, which shares no code with the ledger, accepts it.
    let file = std::env::temp_dir().join(format!("console-export-{}.jsonl", uuid::Uuid::new_v4()));
    std::fs::write(&file, &body).unwrap();
    let checked = std::process::Command::new("python3")
        .arg(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../audit/verify_export.py"
        ))
        .arg(&file)
        .output()
        .unwrap();
    let _ = std::fs::remove_file(&file);
    assert!(
        checked.status.success(),
        "{}{}",
        String::from_utf8_lossy(&checked.stdout),
        String::from_utf8_lossy(&checked.stderr)
    );

    // Support may see neither.
    let (support, _) = app.key(Role::Support, Environment::Test).await;
    let (session, _) = app.sign_in(&support).await;
    for path in ["/console/audit", "/console/audit/export.jsonl"] {
        let response = app.get(path, Some(&session)).await;
        assert_eq!(response.status(), StatusCode::FORBIDDEN, "{path}");
    }
    assert!(!app
        .get_text("/console/payments", &session)
        .await
        .contains("/console/audit"));
}

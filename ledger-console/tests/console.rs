//! The console over real HTTP against the real server and a fresh database: sign-in with a
//! key, its session cookie, CSRF tokens, pages that follow the key's role and environment,
//! revocation and sign-out.

use ledger_api::auth::{create_key, revoke_key, Role};
use ledger_api::server::{application, ServerConfig};
use ledger_core::ids::Environment;
use ledger_store::testing::TestDatabase;
use reqwest::header::{COOKIE, LOCATION, SET_COOKIE};
use reqwest::StatusCode;
use serde_json::json;

struct App {
    address: String,
    database: TestDatabase,
    client: reqwest::Client,
}

async fn spawn() -> App {
    let database = TestDatabase::new().await;
    let serving = database.server_pool().await;
    let (state, routes) = application(serving.clone(), ServerConfig::default()).unwrap();
    let routes = routes.merge(ledger_console::router(ledger_console::ConsoleState::new(
        state.app.pool.clone(),
        state.app.handler.clone(),
    )));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, routes).await });
    tokio::spawn(ledger_projections::Projector::live(serving).follow(std::future::pending::<()>()));
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    App {
        address,
        database,
        client,
    }
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

fn csrf_of(html: &str) -> String {
    let start = html.find(r#"name="csrf" value=""#).expect("a CSRF field") + 19;
    html[start..start + 64].to_owned()
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

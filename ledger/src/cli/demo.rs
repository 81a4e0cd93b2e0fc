//! `ledger demo`: a realistic day of traffic through the public API, so a newcomer sees every
//! view filled. Services' commands go through GraphQL; the gateway's side arrives as Stripe
//! webhooks signed the way Stripe signs them: card payments are made through a sandbox in
//! this process (`ledger-sandbox`), whose clock pays them out and whose payout report finance
//! imports.

use anyhow::Context as _;
use serde_json::{json, Value};
use sqlx::PgPool;

use super::client::{admin_key, serve_in_process, GraphqlClient};
use ledger_core::ids::Environment;
use ledger_sandbox::scenarios::Gateway;
use ledger_sandbox::SandboxConfig;
use ledger_stripe::gateway::secrets::WEBHOOK_SECRETS_VARIABLE;
use ledger_stripe::gateway::{sign, WebhookSecret, SIGNATURE_HEADER};

/// The secret the demo signs with when the operator configured none.
const DEMO_WEBHOOK_SECRET: &str = "whsec_ledger_demo_local_only";

const PAYMENT: &str = "payment { id status capturedAmount refundedAmount captures { captureId amount } refunds { refundId amount status } disputes { disputeId amount fee status } }";

struct Demo {
    client: GraphqlClient,
    run: String,
    merchant: String,
}

impl Demo {
    async fn mutate(&self, name: &str, input: Value) -> anyhow::Result<Value> {
        let input_type = format!("{}{}Input", name[..1].to_uppercase(), &name[1..]);
        let query = format!(
            "mutation($input: {input_type}!) {{ {name}(input: $input) {{ {PAYMENT} position }} }}"
        );
        let data = self
            .client
            .run(&query, json!({"input": input}))
            .await
            .with_context(|| format!("{name} failed"))?;
        Ok(data[name].clone())
    }

    fn key(&self, step: &str) -> String {
        format!("demo-{}-{step}", self.run)
    }

    async fn initiate(&self, index: usize, amount: &str, mode: &str) -> anyhow::Result<String> {
        let result = self
            .mutate(
                "initiatePayment",
                json!({"idempotencyKey": self.key(&format!("{index}-init")),
                       "orderId": format!("order-{}-{index}", self.run), "merchantId": self.merchant,
                       "amount": amount, "currency": "USD", "captureMode": mode, "paymentMethod": "card"}),
            )
            .await?;
        Ok(result["payment"]["id"]
            .as_str()
            .unwrap_or_default()
            .to_owned())
    }

    async fn step(
        &self,
        name: &str,
        index: usize,
        label: &str,
        mut input: Value,
        payment_id: &str,
    ) -> anyhow::Result<Value> {
        input["idempotencyKey"] = json!(self.key(&format!("{index}-{label}")));
        input["paymentId"] = json!(payment_id);
        self.mutate(name, input).await
    }

    /// One payment's day, chosen by its index so every lifecycle of domain.md appears.
    async fn lifecycle(&self, index: usize) -> anyhow::Result<String> {
        let amount = format!("{}.{:02}", 20 + (index * 37) % 480, (index * 13) % 100);
        let automatic = index % 3 == 0;
        let id = self
            .initiate(
                index,
                &amount,
                if automatic { "AUTOMATIC" } else { "MANUAL" },
            )
            .await?;
        match index % 10 {
            7 => {
                let code = if index % 20 == 7 {
                    "insufficient_funds"
                } else {
                    "stolen_card"
                };
                self.step(
                    "recordAuthorization",
                    index,
                    "auth",
                    json!({"outcome": "DECLINED", "declineCode": code}),
                    &id,
                )
                .await?;
                return Ok(id);
            }
            8 if !automatic => {
                self.step(
                    "recordAuthorization",
                    index,
                    "auth",
                    json!({"outcome": "APPROVED", "authorizationCode": "A1B2C3"}),
                    &id,
                )
                .await?;
                self.step(
                    "voidPayment",
                    index,
                    "void",
                    json!({"reason": "customer cancelled the order"}),
                    &id,
                )
                .await?;
                return Ok(id);
            }
            _ => {
                self.step(
                    "recordAuthorization",
                    index,
                    "auth",
                    json!({"outcome": "APPROVED", "authorizationCode": "A1B2C3"}),
                    &id,
                )
                .await?;
            }
        }
        if !automatic {
            if index % 5 == 1 {
                self.step("capturePayment", index, "cap1", json!({"captureId": format!("cap_{}_{index}_1", self.run), "amount": "10.00", "final": false}), &id).await?;
            }
            self.step(
                "capturePayment",
                index,
                "cap2",
                json!({"captureId": format!("cap_{}_{index}_2", self.run)}),
                &id,
            )
            .await?;
        }
        if index % 4 == 2 {
            let refund_id = format!("re_{}_{index}", self.run);
            let amount = if index % 8 == 2 {
                json!(null)
            } else {
                json!("5.00")
            };
            self.step(
                "refundPayment",
                index,
                "refund",
                json!({"refundId": refund_id, "amount": amount, "reason": "requested_by_customer"}),
                &id,
            )
            .await?;
            let outcome = if index % 12 == 10 {
                "FAILED"
            } else {
                "SUCCEEDED"
            };
            self.step("recordRefundOutcome", index, "refund-outcome", json!({"refundId": refund_id, "outcome": outcome, "failureReason": "expired_or_canceled_card"}), &id).await?;
        }
        Ok(id)
    }

    async fn dispute(&self, index: usize, id: &str, won: bool) -> anyhow::Result<()> {
        let dispute_id = format!("dp_{}_{index}", self.run);
        self.step("openDispute", index, "dispute", json!({"disputeId": dispute_id, "amount": "15.00", "reason": "fraudulent", "fee": "15.00",
            "evidenceDueBy": (chrono::Utc::now() + chrono::Duration::days(7)).to_rfc3339()}), id).await?;
        self.step("submitDisputeEvidence", index, "evidence", json!({"disputeId": dispute_id,
            "evidence": {"customer_email_address": "jenny@example.com", "shipping_tracking_number": "1Z999AA10123456784"}}), id).await?;
        self.step(
            "resolveDispute",
            index,
            "resolve",
            json!({"disputeId": dispute_id, "outcome": if won { "WON" } else { "LOST" }}),
            id,
        )
        .await?;
        Ok(())
    }

    /// Settles every capture, succeeded refund and dispute of the given payments in one batch,
    /// with Stripe-like fees, then pays the net out.
    async fn settle(&self, payment_ids: &[String]) -> anyhow::Result<(String, String)> {
        let mut items = Vec::new();
        for id in payment_ids {
            let data = self
                .client
                .run(
                    &format!(
                        "query($id: UUID!) {{ payment(id: $id) {} }}",
                        &PAYMENT["payment ".len()..]
                    ),
                    json!({"id": id}),
                )
                .await?;
            let payment = &data["payment"];
            for capture in payment["captures"].as_array().into_iter().flatten() {
                let gross: rust_decimal::Decimal =
                    capture["amount"].as_str().unwrap_or("0").parse()?;
                let fee = (gross * rust_decimal::Decimal::new(29, 3)
                    + rust_decimal::Decimal::new(30, 2))
                .round_dp(2);
                items.push(json!({"paymentId": id, "kind": "CAPTURE", "itemId": capture["captureId"], "gross": capture["amount"], "fee": fee.to_string()}));
            }
            for refund in payment["refunds"]
                .as_array()
                .into_iter()
                .flatten()
                .filter(|refund| refund["status"] == "SUCCEEDED")
            {
                items.push(json!({"paymentId": id, "kind": "REFUND", "itemId": refund["refundId"], "gross": refund["amount"], "fee": "0.00"}));
            }
            for dispute in payment["disputes"].as_array().into_iter().flatten() {
                items.push(json!({"paymentId": id, "kind": "DISPUTE", "itemId": dispute["disputeId"], "gross": dispute["amount"], "fee": dispute["fee"]}));
            }
        }
        let batch_id = uuid::Uuid::new_v4().to_string();
        let settlement = "batch { id gross fees reserve net payouts { payoutId status } } position";
        let data = self
            .client
            .run(
                &format!("mutation($input: RecordSettlementBatchInput!) {{ recordSettlementBatch(input: $input) {{ {settlement} }} }}"),
                json!({"input": {"idempotencyKey": self.key("batch"), "batchId": batch_id, "merchantId": self.merchant,
                       "currency": "USD", "reserve": "25.00", "items": items}}),
            )
            .await
            .context("recording the settlement batch failed")?;
        let net = data["recordSettlementBatch"]["batch"]["net"]
            .as_str()
            .unwrap_or("0")
            .to_owned();
        for (status, label) in [("INITIATED", "payout-initiated")] {
            self.client
                .run(
                    &format!("mutation($input: RecordPayoutInput!) {{ recordPayout(input: $input) {{ {settlement} }} }}"),
                    json!({"input": {"idempotencyKey": self.key(label), "batchId": batch_id, "payoutId": format!("po_{}", self.run),
                           "amount": net, "status": status,
                           "expectedArrivalDate": (chrono::Utc::now() + chrono::Duration::days(2)).date_naive().to_string()}}),
                )
                .await
                .with_context(|| format!("recording the payout ({status}) failed"))?;
        }
        Ok((batch_id, net))
    }

    /// Delivers one Stripe event, built from a fixture in Stripe's shape with this run's ids,
    /// signed as Stripe signs; `copies` deliveries, as Stripe may repeat itself.
    async fn deliver(
        &self,
        address: std::net::SocketAddr,
        secret: &WebhookSecret,
        fixture: &str,
        copies: usize,
        shape: impl FnOnce(&mut Value),
    ) -> anyhow::Result<()> {
        let mut event: Value =
            serde_json::from_str(fixture).context("the demo's Stripe event does not parse")?;
        let now = chrono::Utc::now().timestamp();
        event["created"] = json!(now);
        shape(&mut event);
        let body = serde_json::to_vec(&event)?;
        for _ in 0..copies {
            let response = self
                .client
                .http()
                .post(format!("http://{address}/webhooks/stripe"))
                .header(SIGNATURE_HEADER, sign(secret, now, &body))
                .header("content-type", "application/json")
                .body(body.clone())
                .send()
                .await
                .context("the webhook did not reach the server")?;
            anyhow::ensure!(
                response.status().is_success(),
                "the webhook was refused: {}",
                response.status()
            );
            // A 200 also answers parked, ignored and conflicting events: only these two mean
            // the ledger holds the facts.
            let answer: Value = response.json().await.unwrap_or_default();
            let outcome = answer["outcome"].as_str().unwrap_or_default();
            anyhow::ensure!(
                matches!(outcome, "applied" | "duplicate"),
                "the webhook was answered {outcome:?}, not applied"
            );
        }
        Ok(())
    }

    /// A zero-decimal (JPY) payment that only the gateway reports: Stripe's
    /// `payment_intent.succeeded` (delivered twice, as Stripe may), then a partial refund that
    /// Stripe reports as succeeded.
    async fn gateway_payment(
        &self,
        address: std::net::SocketAddr,
        secret: &WebhookSecret,
    ) -> anyhow::Result<()> {
        let payment_intent = format!("pi_demo_{}", self.run);
        self.deliver(
            address,
            secret,
            include_str!(
                "../../../ledger-stripe/tests/fixtures/stripe/payment_intent.succeeded.jpy.json"
            ),
            2,
            |event| {
                event["id"] = json!(format!("evt_demo_{}", self.run));
                // The fixture is a Connect event; on those the account decides the merchant
                // and metadata naming the demo's merchant would be a conflict. The demo is
                // no Connect platform, so its event names no account.
                event["account"] = serde_json::Value::Null;
                event["data"]["object"]["id"] = json!(payment_intent);
                event["data"]["object"]["metadata"] = json!({
                    "order_id": format!("jp-order-{}", self.run),
                    "merchant_id": self.merchant,
                });
            },
        )
        .await?;
        self.deliver(
            address,
            secret,
            include_str!("../../../ledger-stripe/tests/fixtures/stripe/refund.updated.json"),
            1,
            |event| {
                event["id"] = json!(format!("evt_demo_refund_{}", self.run));
                let refund = &mut event["data"]["object"];
                refund["id"] = json!(format!("re_demo_{}", self.run));
                refund["amount"] = json!(200);
                refund["currency"] = json!("jpy");
                refund["payment_intent"] = json!(payment_intent);
            },
        )
        .await
    }

    /// Card payments made through a sandbox in this process (Stripe's API and test cards),
    /// whose signed webhooks reach this ledger: a manual authorization partly captured, a
    /// charge refunded in part, a charge disputed (…0259) and lost, and a decline. The
    /// sandbox clock then moves past the payout delay; answers the sandbox's payout report.
    async fn sandbox_card_payments(
        &self,
        address: std::net::SocketAddr,
        secret: &str,
    ) -> anyhow::Result<String> {
        let mut config = SandboxConfig::new(secret)
            .context("the demo's webhook secret")?
            .with_webhook_url(&format!("http://{address}/webhooks/stripe"))
            .context("the demo's webhook endpoint")?;
        // A random seed: the ledger outlives the demo, and PaymentIntent ids follow the seed.
        config.seed = uuid::Uuid::new_v4().as_u64_pair().0;
        let sandbox =
            ledger_sandbox::start(config, std::net::SocketAddr::from(([127, 0, 0, 1], 0)))
                .await
                .context("the demo's sandbox")?;
        let gateway = Gateway::new(self.client.http().clone(), &sandbox.base_url());
        let report = self.play_cards(&gateway).await;
        sandbox.task.abort();
        report
    }

    async fn play_cards(&self, gateway: &Gateway) -> anyhow::Result<String> {
        let post = |path: String, form: Vec<(&'static str, String)>, status: u16| async move {
            let form: Vec<(String, String)> = form
                .into_iter()
                .map(|(name, value)| (name.to_owned(), value))
                .collect();
            let answer = gateway
                .post(&path, &form, None)
                .await
                .map_err(|error| anyhow::anyhow!("the sandbox: {error}"))?;
            anyhow::ensure!(
                answer.status == status,
                "the sandbox answered {path} with {}, not {status}",
                answer.summary()
            );
            Ok::<Value, anyhow::Error>(answer.object().clone())
        };
        let intent = |order: &str, amount: i64, card: &str, manual: bool| {
            vec![
                ("amount", amount.to_string()),
                ("currency", "usd".to_owned()),
                ("payment_method", card.to_owned()),
                ("confirm", "true".to_owned()),
                (
                    "capture_method",
                    if manual { "manual" } else { "automatic" }.to_owned(),
                ),
                ("metadata[order_id]", format!("{order}-{}", self.run)),
                ("metadata[merchant_id]", self.merchant.clone()),
            ]
        };
        let id = |object: &Value| object["id"].as_str().unwrap_or_default().to_owned();
        // A: authorized for 20.00, captured 15.00 (the rest is released).
        let a = post(
            "/v1/payment_intents".into(),
            intent("web-a", 2000, "pm_card_visa", true),
            200,
        )
        .await?;
        let a = id(&a);
        post(
            format!("/v1/payment_intents/{a}/capture"),
            vec![("amount_to_capture", "1500".to_owned())],
            200,
        )
        .await?;
        // B: 50.00 captured, 10.00 refunded.
        let b = post(
            "/v1/payment_intents".into(),
            intent("web-b", 5000, "pm_card_mastercard", false),
            200,
        )
        .await?;
        post(
            "/v1/refunds".into(),
            vec![("payment_intent", id(&b)), ("amount", "1000".to_owned())],
            200,
        )
        .await?;
        // C: 30.00 captured; the cardholder disputes it as fraud, and the evidence loses.
        let c = post(
            "/v1/payment_intents".into(),
            intent("web-c", 3000, "pm_card_createDispute", false),
            200,
        )
        .await?;
        let dispute = gateway
            .dispute_of(&id(&c))
            .await
            .map_err(|error| anyhow::anyhow!("the sandbox: {error}"))?;
        post(
            format!("/v1/disputes/{dispute}"),
            vec![("evidence[uncategorized_text]", "losing_evidence".to_owned())],
            200,
        )
        .await?;
        // D: declined.
        post(
            "/v1/payment_intents".into(),
            intent("web-d", 2500, "pm_card_chargeDeclined", false),
            402,
        )
        .await?;
        let settle = || async {
            gateway
                .settle()
                .await
                .map_err(|error| anyhow::anyhow!("the sandbox's webhooks: {error}"))
        };
        settle().await?;
        let advanced = post(
            "/sandbox/clock/advance".into(),
            vec![(
                "days",
                ledger_sandbox::DEFAULT_PAYOUT_DELAY_DAYS.to_string(),
            )],
            200,
        )
        .await?;
        let payouts = advanced["payouts"].as_array().cloned().unwrap_or_default();
        let [payout] = payouts.as_slice() else {
            anyhow::bail!("the sandbox made {} payouts, not one", payouts.len());
        };
        // `payout.paid` waits in the ledger (parked) for the batch the import records.
        settle().await?;
        gateway
            .payout_report(payout.as_str().unwrap_or_default())
            .await
            .map_err(|error| anyhow::anyhow!("the sandbox's payout report: {error}"))
    }

    /// Finance imports the payout report: the gateway's payments are proven and settled.
    async fn reconcile(&self, report: String) -> anyhow::Result<Value> {
        let data = self
            .client
            .run(
                "mutation($input: ImportStripePayoutReportInput!) { importStripePayoutReport(input: $input) { runId lines matchedLines exceptions payoutsProven batchesRecorded } }",
                json!({"input": {"idempotencyKey": self.key("reconcile"), "csv": report,
                                 "fileName": format!("payout_reconciliation_{}.csv", self.run)}}),
            )
            .await
            .context("importing the payout report failed")?;
        Ok(data["importStripePayoutReport"].clone())
    }

    /// Stripe's `payout.paid` for the batch's payout, in minor units as Stripe sends it.
    async fn payout_paid(
        &self,
        address: std::net::SocketAddr,
        secret: &WebhookSecret,
        net: &str,
    ) -> anyhow::Result<()> {
        let net = ledger_core::Money::parse(net, ledger_core::Currency::USD)?;
        self.deliver(
            address,
            secret,
            include_str!("../../../ledger-stripe/tests/fixtures/stripe/payout.paid.json"),
            1,
            |event| {
                event["id"] = json!(format!("evt_demo_payout_{}", self.run));
                let payout = &mut event["data"]["object"];
                payout["id"] = json!(format!("po_{}", self.run));
                payout["amount"] = json!(net.to_minor_units());
                payout["metadata"] = json!({"merchant_id": self.merchant});
            },
        )
        .await
    }
}

pub async fn run(pool: PgPool, payments: usize) -> anyhow::Result<()> {
    let payments = payments.clamp(12, 1_000);
    let configured = std::env::var(WEBHOOK_SECRETS_VARIABLE).ok();
    let secret_text = match &configured {
        Some(secrets) => secrets
            .split(',')
            .find_map(|entry| entry.trim().strip_prefix("test:"))
            .context("the demo signs test-mode webhooks: configure a test secret")?
            .to_owned(),
        None => {
            std::env::set_var(
                WEBHOOK_SECRETS_VARIABLE,
                format!("test:{DEMO_WEBHOOK_SECRET}"),
            );
            DEMO_WEBHOOK_SECRET.to_owned()
        }
    };
    let secret = WebhookSecret::new(Environment::Test, &secret_text)?;
    let server = serve_in_process(pool.clone()).await?;
    let address = server.address;
    let demo = Demo {
        client: GraphqlClient::new(address, admin_key(&pool, "ledger demo").await?)?,
        run: uuid::Uuid::new_v4().simple().to_string()[..8].to_owned(),
        merchant: "merchant_demo".to_owned(),
    };
    eprintln!("playing a day of {payments} payments through the API (test environment)…");
    let mut ids = Vec::with_capacity(payments);
    for index in 0..payments {
        ids.push(demo.lifecycle(index).await?);
        if (index + 1) % 10 == 0 || index + 1 == payments {
            eprintln!("  {}/{payments} payments", index + 1);
        }
    }
    demo.dispute(1001, &ids[0], true).await?;
    demo.dispute(1002, &ids[3], false).await?;
    eprintln!("  a dispute won, a dispute lost");
    demo.gateway_payment(address, &secret).await?;
    eprintln!(
        "  a JPY payment and its partial refund reported by Stripe's webhooks (the payment delivered twice, applied once)"
    );
    let report = demo.sandbox_card_payments(address, &secret_text).await?;
    eprintln!("  four card payments through the sandbox (Stripe's API, test cards, signed webhooks): a partial capture, a refund, a chargeback lost, a decline; paid out on the sandbox clock");
    let run = demo.reconcile(report).await?;
    anyhow::ensure!(
        run["exceptions"] == 0 && run["payoutsProven"] == 1,
        "the demo's payout report did not reconcile cleanly: {run}"
    );
    eprintln!(
        "  Stripe's payout report imported: {} lines matched, 0 exceptions, the payout proven (run {})",
        run["matchedLines"],
        run["runId"].as_str().unwrap_or_default()
    );
    // Declined and voided payments have nothing to settle and add no items.
    let (batch_id, net) = demo.settle(&ids).await?;
    demo.payout_paid(address, &secret, &net).await?;
    eprintln!(
        "  settlement batch {batch_id} recorded by finance; Stripe's payout.paid for {net} USD applied"
    );
    // Let the read models catch up so every view is filled when this returns.
    for _ in 0..100 {
        let lag = ledger_projections::projection_lag(&pool).await?;
        if lag
            .iter()
            .all(|projection| projection.positions_behind == 0)
        {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    let head = ledger_store::EventStore::new(pool.clone()).head().await?;
    println!(
        "demo done: {} payments, merchant {}, batch {batch_id}; the log now holds {} events.",
        payments + 5,
        demo.merchant,
        head.last_position
    );
    println!("next: `ledger serve`, then `ledger keys create --role admin --env test` and open http://127.0.0.1:8080/graphql");
    Ok(())
}

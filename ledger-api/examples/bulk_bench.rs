//! Bulk commands through HTTP against the store's own rate, in one run (performance.md: HTTP
//! bulk commands reach at least 70% of the store's commands a second).
//!
//! ```text
//! cargo run --profile test -p ledger-api --example bulk_bench -- --seconds 10
//! ```
//!
//! Uses a fresh database (`DATABASE_URL`'s server when set, else a private cluster), and a
//! server on a local port. First the store: `--writers` tasks walk their own payments through
//! initiate → authorize → capture straight through the command handler, one command a call.
//! Then HTTP: `--clients` clients post `POST /commands` requests of `--lines` lines, each
//! request one step (all initiates, then all authorizations, then all captures) of as many
//! payments. Every command has its idempotency key in both.

use std::error::Error;
use std::time::{Duration, Instant};

use chrono::Utc;
use ledger_api::auth::{create_key, Role};
use ledger_api::server::{application, ServerConfig};
use ledger_core::ids::{CaptureId, Environment, MerchantId, OrderId, PaymentId};
use ledger_core::payment::{
    CaptureMode, CapturePayment, InitiatePayment, PaymentCommand, RecordAuthorization,
};
use ledger_core::{Currency, PositiveMoney};
use ledger_store::commands::{CommandContext, CommandHandler, Idempotency};
use ledger_store::testing::TestDatabase;
use serde_json::json;
use uuid::Uuid;

// The allocator the `ledger` binary uses, so the server's cost is measured as it runs there.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

type Result<T> = std::result::Result<T, Box<dyn Error + Send + Sync>>;

struct Arguments {
    seconds: u64,
    writers: usize,
    clients: usize,
    lines: usize,
}

fn arguments() -> Result<Arguments> {
    let mut arguments = Arguments {
        seconds: 10,
        writers: 64,
        clients: 4,
        lines: 1_000,
    };
    let mut words = std::env::args().skip(1);
    while let Some(word) = words.next() {
        let value: u64 = words
            .next()
            .ok_or(format!("{word} needs a value"))?
            .parse()?;
        match word.as_str() {
            "--seconds" => arguments.seconds = value,
            "--writers" => arguments.writers = usize::try_from(value)?,
            "--clients" => arguments.clients = usize::try_from(value)?,
            "--lines" => arguments.lines = usize::try_from(value)?,
            other => {
                return Err(
                    format!("unknown {other}; use --seconds --writers --clients --lines").into(),
                )
            }
        }
    }
    Ok(arguments)
}

#[tokio::main]
async fn main() -> Result<()> {
    let arguments = arguments()?;
    let database = TestDatabase::new().await;
    let serving = database.server_pool().await;
    let (state, routes) = application(serving, ServerConfig::default())?;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let address = format!("http://{}/commands", listener.local_addr()?);
    tokio::spawn(async move { axum::serve(listener, routes).await });
    let (key, _) = create_key(database.pool(), Role::Service, Environment::Test, "bench").await?;
    let duration = Duration::from_secs(arguments.seconds);

    let store = store_rate(&state.app.handler, arguments.writers, duration).await?;
    println!(
        "store: {:.0} commands/s ({} writers, direct CommandHandler)",
        store, arguments.writers
    );
    let http = http_rate(&address, key.reveal(), &arguments, duration).await?;
    println!(
        "http bulk: {:.0} commands/s ({} clients, {} lines a request)",
        http, arguments.clients, arguments.lines
    );
    println!("ratio: {:.0}% (at least 70%)", 100.0 * http / store);
    Ok(())
}

async fn store_rate(handler: &CommandHandler, writers: usize, duration: Duration) -> Result<f64> {
    let started = Instant::now();
    let deadline = started + duration;
    let tasks: Vec<_> = (0..writers)
        .map(|writer| {
            let handler = handler.clone();
            tokio::spawn(async move {
                let mut done = 0_u64;
                let mut step = 0_u64;
                while Instant::now() < deadline {
                    submit(&handler, writer, step).await?;
                    done += 1;
                    step += 1;
                }
                Ok::<_, Box<dyn Error + Send + Sync>>(done)
            })
        })
        .collect();
    let mut commands = 0;
    for task in tasks {
        commands += task.await??;
    }
    Ok(commands as f64 / started.elapsed().as_secs_f64())
}

async fn submit(handler: &CommandHandler, writer: usize, step: u64) -> Result<()> {
    let lifecycle = step / 3;
    let payment_id = PaymentId::from_uuid(payment_uuid(writer, lifecycle));
    let command = match step % 3 {
        0 => PaymentCommand::Initiate(InitiatePayment {
            merchant_id: MerchantId::parse("merchant_bench")?,
            order_id: OrderId::parse(format!("store-{writer}-{lifecycle}"))?,
            environment: Environment::Test,
            amount: PositiveMoney::parse("49.99", Currency::USD)?,
            capture_mode: CaptureMode::Manual,
            payment_method: None,
        }),
        1 => PaymentCommand::RecordAuthorization(RecordAuthorization::Approved {
            authorized_amount: None,
            authorization_code: None,
            gateway_reference: None,
            expires_at: None,
        }),
        _ => PaymentCommand::Capture(CapturePayment {
            capture_id: CaptureId::parse(format!("cap_{writer}_{lifecycle}"))?,
            amount: None,
            final_capture: true,
        }),
    };
    let key = format!("store-{writer}-{step}");
    let context = CommandContext {
        environment: Environment::Test,
        actor_id: "bench".to_owned(),
        actor_role: "service".to_owned(),
        correlation_id: Uuid::new_v4(),
        causation_id: None,
        occurred_at: Utc::now(),
        idempotency: Some(Idempotency::for_request(
            key.clone(),
            &json!({ "bench": key }),
        )?),
    };
    handler
        .handle_payment(payment_id, &command, &context)
        .await?;
    Ok(())
}

/// The payment of a store writer's lifecycle.
fn payment_uuid(writer: usize, lifecycle: u64) -> Uuid {
    Uuid::new_v5(
        &Uuid::NAMESPACE_OID,
        format!("bench-{writer}-{lifecycle}").as_bytes(),
    )
}

async fn http_rate(
    address: &str,
    key: &str,
    arguments: &Arguments,
    duration: Duration,
) -> Result<f64> {
    let client = reqwest::Client::new();
    let started = Instant::now();
    let deadline = started + duration;
    let tasks: Vec<_> = (0..arguments.clients)
        .map(|client_number| {
            let (client, address, key) = (client.clone(), address.to_owned(), key.to_owned());
            let lines = arguments.lines;
            tokio::spawn(async move {
                let mut done = 0_u64;
                let mut round = 0_u64;
                while Instant::now() < deadline {
                    let ids: Vec<Uuid> = (0..lines).map(|_| Uuid::new_v4()).collect();
                    for step in ["initiatePayment", "recordAuthorization", "capturePayment"] {
                        let body = request(step, &ids, client_number, round);
                        let response = client
                            .post(&address)
                            .bearer_auth(&key)
                            .header("content-type", "application/x-ndjson")
                            .body(body)
                            .send()
                            .await?;
                        let text = response.text().await?;
                        let failed = text
                            .lines()
                            .filter(|line| line.starts_with("{\"error\""))
                            .count();
                        if failed > 0 {
                            let first = text.lines().find(|line| line.starts_with("{\"error\""));
                            return Err(format!("{failed} lines failed: {first:?}").into());
                        }
                        done += text.lines().count() as u64;
                    }
                    round += 1;
                }
                Ok::<_, Box<dyn Error + Send + Sync>>(done)
            })
        })
        .collect();
    let mut commands = 0;
    for task in tasks {
        commands += task.await??;
    }
    Ok(commands as f64 / started.elapsed().as_secs_f64())
}

fn request(step: &str, ids: &[Uuid], client: usize, round: u64) -> String {
    let mut body = String::with_capacity(ids.len() * 200);
    for (n, id) in ids.iter().enumerate() {
        let key = format!("http-{client}-{round}-{n}-{step}");
        let input = match step {
            "initiatePayment" => json!({"idempotencyKey": key, "paymentId": id,
                "orderId": format!("http-{client}-{round}-{n}"), "merchantId": "merchant_bench",
                "amount": "49.99", "currency": "USD"}),
            "recordAuthorization" => {
                json!({"idempotencyKey": key, "paymentId": id, "outcome": "APPROVED"})
            }
            _ => json!({"idempotencyKey": key, "paymentId": id}),
        };
        body.push_str(&json!({"command": step, "input": input}).to_string());
        body.push('\n');
    }
    body
}

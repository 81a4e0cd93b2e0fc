//! The store benchmark's load with the read models following it: `writers` tasks submit
//! payment commands straight to the command handler (no HTTP, as `append_bench` drives the
//! store), while the live projector keeps the read models up to date and the lag is sampled.
//! It answers how far behind finance's views fall when the log is written as fast as it can be.

use std::time::{Duration, Instant};

use chrono::Utc;
use ledger_core::ids::{CaptureId, Environment, MerchantId, OrderId, PaymentId};
use ledger_core::payment::{
    CaptureMode, CapturePayment, InitiatePayment, PaymentCommand, RecordAuthorization,
};
use ledger_core::{Currency, PositiveMoney};
use ledger_store::commands::{CommandContext, CommandHandler, Idempotency};
use ledger_store::EventStore;
use sqlx::PgPool;
use uuid::Uuid;

/// What the writers did.
pub struct StoreLoad {
    pub commands: u64,
    pub failures: u64,
    pub elapsed: Duration,
}

/// Runs `writers` tasks for `duration`, each walking its own payments through initiate →
/// authorize → capture, one command per call, each with its idempotency key.
pub async fn run(pool: &PgPool, writers: usize, duration: Duration) -> anyhow::Result<StoreLoad> {
    let handler = CommandHandler::new(EventStore::new(pool.clone()));
    let run = Uuid::new_v4().simple().to_string();
    let started = Instant::now();
    let deadline = started + duration;
    let tasks: Vec<_> = (0..writers)
        .map(|writer| {
            let handler = handler.clone();
            let run = run.clone();
            tokio::spawn(async move {
                let (mut commands, mut failures) = (0_u64, 0_u64);
                let mut step = 0_u64;
                while Instant::now() < deadline {
                    match submit(&handler, &run, writer, step).await {
                        Ok(()) => commands += 1,
                        Err(_) => failures += 1,
                    }
                    step += 1;
                }
                (commands, failures)
            })
        })
        .collect();
    let mut load = StoreLoad {
        commands: 0,
        failures: 0,
        elapsed: Duration::ZERO,
    };
    for task in tasks {
        let (commands, failures) = task.await?;
        load.commands += commands;
        load.failures += failures;
    }
    load.elapsed = started.elapsed();
    Ok(load)
}

async fn submit(
    handler: &CommandHandler,
    run: &str,
    writer: usize,
    step: u64,
) -> anyhow::Result<()> {
    let lifecycle = step / 3;
    let payment_id = PaymentId::from_uuid(Uuid::new_v5(
        &Uuid::NAMESPACE_OID,
        format!("{run}-store-{writer}-{lifecycle}").as_bytes(),
    ));
    let amount = PositiveMoney::parse("49.99", Currency::USD)?;
    let command = match step % 3 {
        0 => PaymentCommand::Initiate(InitiatePayment {
            merchant_id: MerchantId::parse("merchant_bench")?,
            order_id: OrderId::parse(format!("bench-store-{writer}-{lifecycle}"))?,
            environment: Environment::Test,
            amount,
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
            final_capture: false,
        }),
    };
    let key = format!("{run}-store-{writer}-{step}");
    let context = CommandContext {
        environment: Environment::Test,
        actor_id: "ledger bench".to_owned(),
        actor_role: "admin".to_owned(),
        correlation_id: Uuid::new_v4(),
        causation_id: None,
        occurred_at: Utc::now(),
        idempotency: Some(Idempotency::for_request(
            key.clone(),
            &serde_json::json!({ "bench": key }),
        )?),
    };
    handler
        .handle_payment(payment_id, &command, &context)
        .await?;
    Ok(())
}

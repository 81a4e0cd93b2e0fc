//! Rebuild benchmark: generates a log of realistic payment lifecycles, then rebuilds every
//! projection from zero and prints events per second beside baselines measured in the same run.
//!
//! ```sh
//! cargo run --release -p ledger-projections --example rebuild_bench -- [EVENTS] [BATCH_SIZES]
//! ```
//! `EVENTS` defaults to 1,000,000. `BATCH_SIZES` (events per projector transaction) defaults
//! to the builds' own `BUILD_BATCH_SIZE`; a list such as `20000,50000` rebuilds the same log
//! once per size. With `DATABASE_URL` set the log is written to a fresh database on that server;
//! otherwise to a private test cluster (ledger-store's harness, `fsync` off).
//!
//! The log is written through ledger-store's normal `append` (validation, group commit, hash
//! chain), so it is a log the store itself would hold. Every event comes from ledger-core's
//! `decide` on the folded state: payments are generated in waves of [`WAVE_PAYMENTS`]; each
//! wave advances all its payments one lifecycle step per round (streams interleave in the log
//! as they would in production), packs each round into multi-stream appends of up to
//! [`EVENTS_PER_APPEND`] events, and ends with a settlement batch per merchant and its payout.
//! A few waves run at once so the store's writer always has work queued.
//!
//! Baselines: a plain read of the whole log page by page through `EventStore::read_all`, and
//! the same read with every event decoded and folded through ledger-core (no writes).

#[path = "../tests/support/mod.rs"]
mod support;

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Instant;

use chrono::{DateTime, Duration, Utc};
use ledger_core::ids::{CaptureId, PaymentId, SettlementBatchId};
use ledger_core::payment::{
    self, CaptureMode, DisputeOutcome, PaymentCommand, PaymentEvent, PaymentState, SettledItem,
};
use ledger_core::settlement::{self, PayoutUpdate, SettlementBatchState, SettlementEvent};
use ledger_core::{Currency, Money, PositiveMoney};
use ledger_projections::{rebuild, Projection, ProjectorOptions};
use ledger_store::{
    AppendRequest, EventStore, ExpectedVersion, KeptState, StreamAppend, StreamType,
};
use rust_decimal::Decimal;
use support::*;

/// Payments generated together, their lifecycles interleaved.
const WAVE_PAYMENTS: usize = 2_000;
/// Events per multi-stream append (the store allows 1,000).
const EVENTS_PER_APPEND: usize = 900;
/// Waves generated at once.
const CONCURRENT_WAVES: usize = 4;
const MERCHANTS: usize = 20;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let arguments: Vec<String> = std::env::args().collect();
    let target_events: u64 = arguments
        .get(1)
        .map(|text| text.parse())
        .transpose()?
        .unwrap_or(1_000_000);
    // Several sizes ("20000,50000") rebuild the same log once each, to compare them.
    let batch_sizes: Vec<usize> = match arguments.get(2) {
        Some(list) => list
            .split(',')
            .map(|size| size.parse())
            .collect::<Result<_, _>>()?,
        None => vec![ledger_projections::BUILD_BATCH_SIZE],
    };
    let database = ledger_store::testing::TestDatabase::new().await;
    let store = database.store();
    let pool = database.pool().clone();

    let started = Instant::now();
    generate(&store, target_events).await?;
    let head = store.head().await?.last_position;
    let generation = started.elapsed().as_secs_f64();
    println!(
        "log: {head} events generated in {generation:.1} s ({:.0} events/s appended)",
        head as f64 / generation
    );

    let (read_seconds, _) = timed(plain_read(&store)).await?;
    println!(
        "baseline, plain read of the log:        {:>9.0} events/s ({read_seconds:.1} s)",
        head as f64 / read_seconds
    );
    let (fold_seconds, _) = timed(read_and_fold(&store)).await?;
    println!(
        "baseline, read + decode + fold (no I/O): {:>9.0} events/s ({fold_seconds:.1} s)",
        head as f64 / fold_seconds
    );

    let mut options = ProjectorOptions::for_build();
    for batch_size in batch_sizes {
        options.batch_size = batch_size;
        let resident_before = memory_kib("VmRSS:");
        reset_peak_memory();
        let report = rebuild(&pool, &Projection::ALL, options).await?;
        let rebuild_rate = report.events_per_second();
        println!(
            "rebuild of all {} projections from zero:  {:>9.0} events/s ({:.1} s, batch {batch_size}, swap included; {:.1} s of it making the tables durable and indexing them)",
            report.projections.len(),
            rebuild_rate,
            report.elapsed.as_secs_f64(),
            report.finishing.as_secs_f64()
        );
        if let (Some(before), Some(peak)) = (resident_before, memory_kib("VmHWM:")) {
            println!(
                "  this process's resident memory: {} MiB before the rebuild, {} MiB at its peak",
                before / 1024,
                peak / 1024
            );
        }
        println!(
            "rebuild / plain read: {:.2}; rebuild / read+fold: {:.2}; target 30,000 events/s: {}",
            rebuild_rate * read_seconds / head as f64,
            rebuild_rate * fold_seconds / head as f64,
            if rebuild_rate >= 30_000.0 {
                "met"
            } else {
                "NOT met"
            }
        );
    }
    if std::env::var_os("BENCH_EACH_PROJECTION").is_some() {
        for projection in Projection::ALL {
            let alone = rebuild(&pool, &[projection], options).await?;
            println!(
                "  rebuild of {projection:<10} alone: {:>9.0} events/s",
                alone.events_per_second()
            );
        }
    }
    for projection in Projection::ALL {
        for table in projection.tables() {
            // Table names come from the crate's own constant list.
            let rows: i64 = sqlx::query_scalar(&format!("SELECT count(*) FROM {table}"))
                .fetch_one(&pool)
                .await?;
            println!("  {table:<36} {rows:>9} rows");
        }
    }
    Ok(())
}

/// Starts a new peak-memory measurement: Linux resets the high-water mark to the current
/// resident size when "5" is written to `clear_refs`.
pub(crate) fn reset_peak_memory() {
    let _ = std::fs::write("/proc/self/clear_refs", "5");
}

/// A memory figure of this process in KiB (`VmRSS:` resident now, `VmHWM:` the high-water
/// mark), where the system reports it.
pub(crate) fn memory_kib(field: &str) -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|line| line.starts_with(field))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

async fn timed<T>(
    work: impl std::future::Future<Output = anyhow::Result<T>>,
) -> anyhow::Result<(f64, T)> {
    let started = Instant::now();
    let value = work.await?;
    Ok((started.elapsed().as_secs_f64(), value))
}

async fn plain_read(store: &EventStore) -> anyhow::Result<u64> {
    let mut next = 1;
    let mut count = 0;
    loop {
        let page = store.read_all(next, ledger_store::MAX_PAGE_SIZE).await?;
        let Some(last) = page.last() else {
            return Ok(count);
        };
        next = last.position + 1;
        count += page.len() as u64;
    }
}

async fn read_and_fold(store: &EventStore) -> anyhow::Result<u64> {
    let mut next = 1;
    let mut payments: HashMap<uuid::Uuid, PaymentState> = HashMap::new();
    let mut batches: HashMap<uuid::Uuid, SettlementBatchState> = HashMap::new();
    let mut entries = 0_u64;
    loop {
        let page = store.read_all(next, ledger_store::MAX_PAGE_SIZE).await?;
        let Some(last) = page.last() else {
            return Ok(entries);
        };
        next = last.position + 1;
        for event in page {
            let version = event.schema_version as u32;
            if event.stream_type == StreamType::Payment {
                let decoded = PaymentEvent::from_stored(&event.event_type, version, event.payload)?;
                let state = payments.remove(&event.stream_id).unwrap_or_default();
                entries += u64::from(matches!(
                    ledger_core::journal::payment_entry(&state, &decoded),
                    Ok(Some(_))
                ));
                payments.insert(event.stream_id, payment::evolve(state, &decoded));
            } else {
                let decoded =
                    SettlementEvent::from_stored(&event.event_type, version, event.payload)?;
                let state = batches.remove(&event.stream_id).unwrap_or_default();
                entries += u64::from(matches!(
                    ledger_core::journal::settlement_entry(&state, &decoded),
                    Ok(Some(_))
                ));
                batches.insert(event.stream_id, settlement::evolve(state, &decoded));
            }
        }
    }
}

/// Appends waves until the log holds at least `target_events`. How many events a wave brings
/// depends on the mix of lifecycles, so the head decides when to stop, not an estimate; the
/// waves still running when it does overshoot by a few percent.
/// (`ledger-console`'s console benchmark includes this file for it.)
pub(crate) async fn generate(store: &EventStore, target_events: u64) -> anyhow::Result<()> {
    let semaphore = Arc::new(tokio::sync::Semaphore::new(CONCURRENT_WAVES));
    let mut tasks = tokio::task::JoinSet::new();
    for wave in 0.. {
        let permit = semaphore.clone().acquire_owned().await?;
        // A failed wave stops the generation rather than leaving a gap in the mix.
        while let Some(finished) = tasks.try_join_next() {
            finished??;
        }
        if store.head().await?.last_position >= target_events {
            break;
        }
        let wave_store = store.clone();
        tasks.spawn(async move {
            let result = run_wave(&wave_store, wave).await;
            drop(permit);
            result
        });
    }
    while let Some(finished) = tasks.join_next().await {
        finished??;
    }
    Ok(())
}

/// A small deterministic mixer, so every run generates the same mix of lifecycles.
fn mix(value: u64) -> u64 {
    let mut x = value.wrapping_add(0x9E37_79B9_7F4A_7C15);
    x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    x ^ (x >> 31)
}

/// One payment's commands, from a deterministic draw.
fn lifecycle(
    index: u64,
    merchant: &str,
    currency: Currency,
    start: DateTime<Utc>,
) -> Vec<PaymentCommand> {
    let draw = mix(index);
    let minor = 500 + (draw % 20_000) as i64;
    let amount = PositiveMoney::new(Money::from_minor_units(minor, currency).unwrap()).unwrap();
    let half = PositiveMoney::new(Money::from_minor_units(minor / 2, currency).unwrap()).unwrap();
    let order = format!("order_{index}");
    let kind = draw % 100;
    let mode = if kind < 55 {
        CaptureMode::Automatic
    } else {
        CaptureMode::Manual
    };
    let mut commands = vec![initiate(
        merchant,
        &order,
        &amount.amount().to_string(),
        currency,
        mode,
    )];
    if kind >= 90 {
        commands.push(decline(if kind % 2 == 0 {
            "insufficient_funds"
        } else {
            "stolen_card"
        }));
        return commands;
    }
    commands.push(approve(None, start + Duration::days(7)));
    if kind >= 85 {
        commands.push(void());
        return commands;
    }
    if mode == CaptureMode::Manual {
        commands.push(capture("ca_1", Some(half), false));
        commands.push(capture("ca_2", None, true));
    }
    let after = mix(draw) % 100;
    if after < 12 {
        commands.push(refund("re_1", Some(half)));
        commands.push(refund_outcome("re_1", after < 10));
    } else if after < 15 {
        let fee = Money::from_minor_units(1500, currency).unwrap();
        commands.push(open_dispute("dp_1", half, fee, start + Duration::days(21)));
        commands.push(submit_evidence("dp_1"));
        commands.push(resolve(
            "dp_1",
            if after < 14 {
                DisputeOutcome::Won
            } else {
                DisputeOutcome::Lost
            },
        ));
    }
    commands
}

struct Live {
    payment_id: PaymentId,
    state: PaymentState,
    commands: std::vec::IntoIter<PaymentCommand>,
    merchant: usize,
}

async fn run_wave(store: &EventStore, wave: usize) -> anyhow::Result<()> {
    let start = at(1, 0) + Duration::hours(wave as i64);
    let mut live: Vec<Live> = (0..WAVE_PAYMENTS)
        .map(|slot| {
            let index = (wave * WAVE_PAYMENTS + slot) as u64;
            let merchant = (mix(index ^ 0xABCD) % MERCHANTS as u64) as usize;
            let currency = if merchant % 4 == 0 {
                Currency::EUR
            } else {
                Currency::USD
            };
            Live {
                payment_id: PaymentId::new_random(),
                state: PaymentState::default(),
                commands: lifecycle(index, &format!("merchant_{merchant}"), currency, start)
                    .into_iter(),
                merchant,
            }
        })
        .collect();
    let mut round = 0;
    loop {
        let occurred_at = start + Duration::minutes(10 * round);
        let mut appends = Vec::new();
        for payment in &mut live {
            let Some(command) = payment.commands.next() else {
                continue;
            };
            let events = payment::decide(&payment.state, &command)?;
            appends.push(payment_append(
                payment.payment_id,
                &payment.state,
                &events,
                occurred_at,
                Some(start),
            ));
            payment.state = events
                .iter()
                .fold(std::mem::take(&mut payment.state), payment::evolve);
        }
        if appends.is_empty() {
            break;
        }
        append_packed(store, appends).await?;
        round += 1;
    }
    settle_wave(store, &live, start, start + Duration::days(2)).await
}

/// Packs one round's stream appends into requests of about [`EVENTS_PER_APPEND`] events and
/// appends them concurrently.
async fn append_packed(store: &EventStore, appends: Vec<StreamAppend>) -> anyhow::Result<()> {
    let mut requests = Vec::new();
    let mut current: Vec<StreamAppend> = Vec::new();
    let mut events = 0;
    for append in appends {
        if events + append.events.len() > EVENTS_PER_APPEND {
            requests.push(std::mem::take(&mut current));
            events = 0;
        }
        events += append.events.len();
        current.push(append);
    }
    if !current.is_empty() {
        requests.push(current);
    }
    let outcomes = futures::future::join_all(requests.into_iter().map(|streams| {
        store.append(AppendRequest {
            streams,
            idempotency: None,
        })
    }))
    .await;
    for outcome in outcomes {
        outcome?;
    }
    Ok(())
}

/// One settlement batch per merchant of the wave's captures, then its payout, paid.
async fn settle_wave(
    store: &EventStore,
    live: &[Live],
    start: DateTime<Utc>,
    occurred_at: DateTime<Utc>,
) -> anyhow::Result<()> {
    let mut by_merchant: BTreeMap<usize, Vec<&Live>> = BTreeMap::new();
    for payment in live {
        by_merchant
            .entry(payment.merchant)
            .or_default()
            .push(payment);
    }
    for (merchant, payments) in by_merchant {
        let mut items = Vec::new();
        let mut states = BTreeMap::new();
        let mut currency = Currency::USD;
        for payment in &payments {
            let Some(state) = &payment.state.payment else {
                continue;
            };
            currency = state.currency();
            for capture in &state.captures {
                let fee = Money::new(
                    (capture.amount.amount() * Decimal::new(29, 3)).round_dp(2),
                    currency,
                )?;
                items.push(batch_item(
                    payment.payment_id,
                    SettledItem::Capture(CaptureId::parse(capture.capture_id.as_str())?),
                    PositiveMoney::new(capture.amount)?,
                    fee,
                ));
            }
            states.insert(payment.payment_id, payment.state.clone());
        }
        if items.is_empty() {
            continue;
        }
        items.truncate(900);
        let batch_id = SettlementBatchId::new_random();
        let reserve = Money::from_minor_units(if merchant % 5 == 0 { 1000 } else { 0 }, currency)?;
        let command = record_batch(
            batch_id,
            &format!("merchant_{merchant}"),
            currency,
            items,
            Some(reserve),
        );
        let decision = settlement::decide(&SettlementBatchState::default(), &states, &command)?;
        let batch_state = decision
            .batch_events
            .iter()
            .fold(SettlementBatchState::default(), settlement::evolve);
        let mut streams = vec![StreamAppend {
            stream_id: batch_id.as_uuid(),
            stream_type: StreamType::SettlementBatch,
            expected_version: ExpectedVersion::NoStream,
            events: decision
                .batch_events
                .iter()
                .map(|event| new_event(event, occurred_at))
                .collect(),
            kept_state: Some(KeptState::of(&batch_state, occurred_at)?),
        }];
        for (payment_id, events) in &decision.payment_events {
            let state = states.get(payment_id).cloned().unwrap_or_default();
            streams.push(payment_append(
                *payment_id,
                &state,
                events,
                occurred_at,
                Some(start),
            ));
        }
        store
            .append(AppendRequest {
                streams,
                idempotency: None,
            })
            .await?;
        let Some(batch) = &batch_state.batch else {
            continue;
        };
        if !batch.net.is_positive() {
            continue;
        }
        let payout_command = payout("po_1", PositiveMoney::new(batch.net)?, PayoutUpdate::Paid);
        let payout_decision = settlement::decide(&batch_state, &BTreeMap::new(), &payout_command)?;
        store
            .append(AppendRequest {
                streams: vec![StreamAppend {
                    stream_id: batch_id.as_uuid(),
                    stream_type: StreamType::SettlementBatch,
                    expected_version: ExpectedVersion::Exactly(batch_state.version),
                    events: payout_decision
                        .batch_events
                        .iter()
                        .map(|event| new_event(event, occurred_at + Duration::days(1)))
                        .collect(),
                    kept_state: Some(KeptState::after(
                        &batch_state,
                        &payout_decision.batch_events,
                        occurred_at,
                    )?),
                }],
                idempotency: None,
            })
            .await?;
    }
    Ok(())
}

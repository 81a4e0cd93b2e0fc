//! The background check of every standby: how far behind the primary it is, and so whether it
//! is in rotation.
//!
//! Lag is measured in the log's own terms, which is what a reader needs: the last position
//! the standby has replayed against the primary's head, and the age of the oldest event it
//! lacks (zero when it lacks none; an idle primary leaves a standby at zero lag, unlike
//! `now() - pg_last_xact_replay_timestamp()`, which grows while nothing is written).

use std::sync::atomic::Ordering;
use std::sync::Weak;
use std::time::Duration;

use ledger_store::LogReader;

use super::{Health, Inner, Standby};

/// A check that takes longer than this finds the standby unreachable.
const CHECK_TIMEOUT: Duration = Duration::from_secs(2);

/// Checks every standby each `interval` while the pools are in use.
pub(super) async fn run(pools: Weak<Inner>, interval: Duration, max_lag: Duration) {
    loop {
        let Some(inner) = pools.upgrade() else {
            return;
        };
        check_all(&inner, max_lag).await;
        drop(inner);
        tokio::time::sleep(interval).await;
    }
}

async fn check_all(inner: &Inner, max_lag: Duration) {
    let primary = LogReader::new(inner.primary.clone());
    // Without the primary's head no lag can be measured; reachability still decides.
    let head = tokio::time::timeout(CHECK_TIMEOUT, primary.head())
        .await
        .ok()
        .and_then(Result::ok)
        .map(|head| head.last_position);
    futures::future::join_all(
        inner
            .standbys
            .iter()
            .map(|standby| check(standby, &primary, head, max_lag)),
    )
    .await;
}

async fn check(standby: &Standby, primary: &LogReader, head: Option<u64>, max_lag: Duration) {
    let replayed = tokio::time::timeout(CHECK_TIMEOUT, LogReader::new(standby.pool.clone()).head())
        .await
        .ok()
        .and_then(Result::ok)
        .map(|head| head.last_position);
    let Some(replayed) = replayed else {
        if standby.in_rotation.swap(false, Ordering::AcqRel) {
            tracing::warn!(standby = %standby.label, "a standby does not answer: out of rotation");
        }
        set(
            standby,
            Health {
                checked: true,
                ..Health::default()
            },
        );
        return;
    };
    let lag_positions = head.map(|head| head.saturating_sub(replayed));
    let lag_seconds = match lag_positions {
        Some(0) => Some(0.0),
        Some(_) => oldest_missing_age(primary, replayed + 1).await,
        None => None,
    };
    let within = lag_seconds.is_none_or(|seconds| seconds <= max_lag.as_secs_f64());
    let was = standby.in_rotation.swap(within, Ordering::AcqRel);
    if was != within {
        if within {
            tracing::info!(standby = %standby.label, replayed, "a standby is in rotation");
        } else {
            tracing::warn!(
                standby = %standby.label,
                replayed,
                ?lag_seconds,
                "a standby lags past the bound: out of rotation"
            );
        }
    }
    set(
        standby,
        Health {
            checked: true,
            reachable: true,
            replayed_position: Some(replayed),
            lag_positions,
            lag_seconds,
        },
    );
}

/// Seconds since the primary recorded the event at `position`, the oldest one the standby
/// lacks.
async fn oldest_missing_age(primary: &LogReader, position: u64) -> Option<f64> {
    let page = tokio::time::timeout(CHECK_TIMEOUT, primary.read_all(position, 1))
        .await
        .ok()?
        .ok()?;
    let recorded_at = page.first()?.recorded_at;
    let age = chrono::Utc::now() - recorded_at;
    Some(age.num_milliseconds().max(0) as f64 / 1000.0)
}

fn set(standby: &Standby, health: Health) {
    *standby
        .health
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner) = health;
}

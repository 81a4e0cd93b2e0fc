//! Reads from PostgreSQL standbys (`LEDGER_READ_REPLICA_URLS`): which database answers a read.
//!
//! [`ReadPools`] holds the primary's pool and one pool per standby. A background check
//! (`monitor.rs`) measures each standby against the primary every interval: the last log
//! position it has replayed, how many positions it lacks, and how old the oldest event it
//! lacks is. A standby that does not answer, or lacks events older than the bound
//! ([`ReplicaSettings::max_lag`]), is out of rotation until a check finds it reachable and
//! within the bound again.
//!
//! Who reads where:
//! - read-model queries, the global `events` page and the live log's follower and catch-up
//!   reads take a standby in rotation (round robin), else the primary ([`ReadPools::any`]);
//! - a read with `waitForPosition` takes a standby only once that standby's read models have
//!   reached the position, waiting at most [`ReplicaSettings::replay_wait`] for it, else the
//!   primary ([`ReadPools::having_projected`]);
//! - commands, the reads they decide on, `payment(id)` and everything else stay on the
//!   primary (`AppState::pool` and the store).
//!
//! A read that fails on a standby for any reason but the caller's (a validation error, a
//! permission, a missing row) runs once more on the primary, and a standby that could not be
//! reached is taken out of rotation at once, so that a standby dying fails no request.
//! Nothing routed here writes: a standby refuses writes, and such a read would fall back.

mod monitor;

use std::future::Future;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use ledger_projections::Projection;
use sqlx::PgPool;

use crate::error::{ApiError, ApiResult};

/// Connections each standby's pool opens at most.
pub const STANDBY_POOL_CONNECTIONS: u32 = 16;
/// How long a read waits for a connection to a standby before it goes to the primary.
const STANDBY_ACQUIRE_TIMEOUT: Duration = Duration::from_secs(2);
/// The first pause of a `waitForPosition` read waiting for a standby, doubled up to the next.
const REPLAY_FIRST_POLL: Duration = Duration::from_millis(5);
const REPLAY_MAX_POLL: Duration = Duration::from_millis(50);

/// What an operator configures reads from standbys with.
#[derive(Debug, Clone)]
pub struct ReplicaSettings {
    /// The standbys' URLs (`LEDGER_READ_REPLICA_URLS`); none sends every read to the primary.
    pub urls: Vec<String>,
    /// A standby lacking an event recorded longer ago than this is out of rotation
    /// (`LEDGER_READ_REPLICA_MAX_LAG`, seconds).
    pub max_lag: Duration,
    /// How long a `waitForPosition` read waits for a standby to have the position before it
    /// reads on the primary (`LEDGER_READ_REPLICA_WAIT_MS`).
    pub replay_wait: Duration,
    /// How often each standby is checked (`LEDGER_READ_REPLICA_CHECK_INTERVAL_MS`).
    pub check_interval: Duration,
}

impl Default for ReplicaSettings {
    fn default() -> Self {
        ReplicaSettings {
            urls: Vec::new(),
            max_lag: Duration::from_secs(10),
            replay_wait: Duration::from_millis(500),
            check_interval: Duration::from_secs(1),
        }
    }
}

/// The primary and the standbys. Cheap to clone; the check stops when the last clone drops.
#[derive(Clone)]
pub struct ReadPools {
    inner: Arc<Inner>,
}

struct Inner {
    primary: PgPool,
    standbys: Vec<Standby>,
    next: AtomicUsize,
    replay_wait: Duration,
}

struct Standby {
    /// Where it is, without credentials: `host:port/database`.
    label: String,
    pool: PgPool,
    in_rotation: AtomicBool,
    health: Mutex<Health>,
    /// Reads that failed on it and were answered by the primary.
    fallbacks: AtomicU64,
}

/// What the last check found.
#[derive(Debug, Clone, Copy, Default)]
struct Health {
    checked: bool,
    reachable: bool,
    replayed_position: Option<u64>,
    lag_positions: Option<u64>,
    lag_seconds: Option<f64>,
}

/// One standby as `/readyz` and `/metrics` show it.
#[derive(Debug, Clone)]
pub struct StandbyStatus {
    pub label: String,
    pub in_rotation: bool,
    /// `in_rotation`, `unchecked`, `unreachable`, `lagging` or `failed` (a read failed on it
    /// since the last check).
    pub state: &'static str,
    pub replayed_position: Option<u64>,
    pub lag_positions: Option<u64>,
    pub lag_seconds: Option<f64>,
    pub fallbacks: u64,
}

impl ReadPools {
    /// Every read on the primary.
    pub fn primary_only(primary: PgPool) -> ReadPools {
        ReadPools {
            inner: Arc::new(Inner {
                primary,
                standbys: Vec::new(),
                next: AtomicUsize::new(0),
                replay_wait: Duration::ZERO,
            }),
        }
    }

    /// The primary and a pool per standby (connected lazily, as the server role), checked in
    /// the background from now on. Needs a Tokio runtime when there are standbys.
    pub fn new(primary: PgPool, settings: &ReplicaSettings) -> ApiResult<ReadPools> {
        let standbys = settings
            .urls
            .iter()
            .map(String::as_str)
            .map(standby)
            .collect::<ApiResult<Vec<_>>>()?;
        let pools = ReadPools {
            inner: Arc::new(Inner {
                primary,
                standbys,
                next: AtomicUsize::new(0),
                replay_wait: settings.replay_wait,
            }),
        };
        if !pools.inner.standbys.is_empty() {
            tokio::spawn(monitor::run(
                Arc::downgrade(&pools.inner),
                settings.check_interval,
                settings.max_lag,
            ));
        }
        Ok(pools)
    }

    pub fn primary(&self) -> &PgPool {
        &self.inner.primary
    }

    pub fn has_standbys(&self) -> bool {
        !self.inner.standbys.is_empty()
    }

    /// The primary, for reads that must see every write.
    pub fn primary_route(&self) -> ReadRoute {
        self.route(None)
    }

    /// A standby in rotation, taking turns, else the primary.
    pub fn any(&self) -> ReadRoute {
        self.route(self.pick(|_| true))
    }

    /// A standby in rotation that has replayed the log at least to `position` when last
    /// checked, else the primary: for reads that must not miss what comes before it.
    pub fn having_replayed(&self, position: u64) -> ReadRoute {
        self.route(self.pick(|health| {
            health
                .replayed_position
                .is_some_and(|replayed| replayed >= position)
        }))
    }

    /// A standby whose read models have reached `position` in every one of `projections`
    /// (the primary's have already), waiting for one at most the configured replay wait;
    /// else the primary.
    pub async fn having_projected(&self, position: u64, projections: &[Projection]) -> ReadRoute {
        let Some(index) = self.pick(|_| true) else {
            return self.primary_route();
        };
        let standby = &self.inner.standbys[index];
        let deadline = tokio::time::Instant::now() + self.inner.replay_wait;
        let mut pause = REPLAY_FIRST_POLL;
        loop {
            match ledger_projections::projection_lag(&standby.pool).await {
                Ok(lag)
                    if crate::graphql::query::read_models::page::reached(
                        &lag,
                        position,
                        projections,
                    ) =>
                {
                    return self.route(Some(index));
                }
                Ok(_) => {}
                Err(error) => {
                    standby.failed(&ApiError::from(error));
                    return self.primary_route();
                }
            }
            if tokio::time::Instant::now() >= deadline {
                metrics::counter!("ledger_read_replica_wait_timeouts_total").increment(1);
                return self.primary_route();
            }
            tokio::time::sleep(pause).await;
            pause = (pause * 2).min(REPLAY_MAX_POLL);
        }
    }

    /// Each standby's state, in the configured order.
    pub fn statuses(&self) -> Vec<StandbyStatus> {
        self.inner
            .standbys
            .iter()
            .map(|standby| {
                let health = standby.health();
                let in_rotation = standby.in_rotation.load(Ordering::Acquire);
                let state = if in_rotation {
                    "in_rotation"
                } else if !health.checked {
                    "unchecked"
                } else if !health.reachable {
                    "unreachable"
                } else if health.lag_positions.is_some_and(|lag| lag > 0) {
                    "lagging"
                } else {
                    "failed"
                };
                StandbyStatus {
                    label: standby.label.clone(),
                    in_rotation,
                    state,
                    replayed_position: health.replayed_position,
                    lag_positions: health.lag_positions,
                    lag_seconds: health.lag_seconds,
                    fallbacks: standby.fallbacks.load(Ordering::Relaxed),
                }
            })
            .collect()
    }

    fn route(&self, standby: Option<usize>) -> ReadRoute {
        ReadRoute {
            pools: self.clone(),
            standby,
        }
    }

    /// The next standby in rotation whose last check passes `fits`, taking turns.
    fn pick(&self, fits: impl Fn(&Health) -> bool) -> Option<usize> {
        let standbys = &self.inner.standbys;
        if standbys.is_empty() {
            return None;
        }
        let start = self.inner.next.fetch_add(1, Ordering::Relaxed);
        (0..standbys.len())
            .map(|offset| (start + offset) % standbys.len())
            .find(|&index| {
                let standby = &standbys[index];
                standby.in_rotation.load(Ordering::Acquire) && fits(&standby.health())
            })
    }
}

/// Where one read goes: a standby, with the primary behind it, or the primary.
pub struct ReadRoute {
    pools: ReadPools,
    standby: Option<usize>,
}

impl ReadRoute {
    /// Whether a standby answers.
    pub fn on_standby(&self) -> bool {
        self.standby.is_some()
    }

    /// Runs `read` on the route's database; a failure on a standby that is not the caller's
    /// runs it once more on the primary.
    pub async fn run<T, F, Fut>(&self, read: F) -> ApiResult<T>
    where
        F: Fn(PgPool) -> Fut,
        Fut: Future<Output = ApiResult<T>>,
    {
        let primary = self.pools.inner.primary.clone();
        let Some(index) = self.standby else {
            return read(primary).await;
        };
        let standby = &self.pools.inner.standbys[index];
        match read(standby.pool.clone()).await {
            Err(error) if !callers_error(&error) => {
                standby.failed(&error);
                read(primary).await
            }
            answered => answered,
        }
    }
}

/// Errors that any database would answer alike: the request's, not the standby's.
fn callers_error(error: &ApiError) -> bool {
    matches!(
        error,
        ApiError::Validation { .. }
            | ApiError::Unauthenticated
            | ApiError::Forbidden(_)
            | ApiError::NotFound(_)
    )
}

impl Standby {
    fn health(&self) -> Health {
        *self
            .health
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// A read failed here: out of rotation until the next check finds it well.
    fn failed(&self, error: &ApiError) {
        self.in_rotation.store(false, Ordering::Release);
        self.fallbacks.fetch_add(1, Ordering::Relaxed);
        tracing::warn!(
            standby = %self.label,
            %error,
            "a read failed on a standby and went to the primary; the standby is out of rotation \
             until its next check"
        );
    }
}

fn standby(url: &str) -> ApiResult<Standby> {
    let options: sqlx::postgres::PgConnectOptions = url
        .trim()
        .parse()
        .map_err(|error| ApiError::internal(format!("a read replica URL is malformed: {error}")))?;
    let label = format!(
        "{}:{}/{}",
        options.get_host(),
        options.get_port(),
        options.get_database().unwrap_or_default()
    );
    let pool = ledger_store::server_role::server_pool_options(STANDBY_POOL_CONNECTIONS)
        .acquire_timeout(STANDBY_ACQUIRE_TIMEOUT)
        .connect_lazy_with(options);
    Ok(Standby {
        label,
        pool,
        in_rotation: AtomicBool::new(false),
        health: Mutex::new(Health::default()),
        fallbacks: AtomicU64::new(0),
    })
}

//! A batch planned on state read under the head's lock: the writer's way when it does not know
//! what the log holds (at start, after a batch failed), while another process writes too,
//! when a request's outcome depends on state it has not seen (`ExpectedVersion::Any` on a
//! stream it never wrote), and when its plan would record nothing (only a written batch has
//! its assumptions checked). Four round trips:
//!
//! 1. `BEGIN` and lock the single `log_head` row (`SELECT … FOR UPDATE`), with no time
//!    limit, sent together;
//! 2. read the head, the versions of the batch's streams and the idempotency claims it names,
//!    in one statement after the lock, so that it sees what the previous holder of the lock
//!    committed;
//! 3. write the plan (see `batch_write`; its checks hold, since nothing moved under the lock);
//! 4. `COMMIT`.
//!
//! Pipelined batches of another process take the head's lock last, after inserting their
//! rows. One that inserted a position this batch needs and then waits for the lock this batch
//! holds gives up after [`LOCK_TIMEOUT`](crate::connections::LOCK_TIMEOUT); this batch, which
//! waits for it, has no time limit, so it is the one that goes on.

use std::collections::{HashMap, HashSet};

use chrono::Utc;
use sqlx::{Connection, PgConnection, PgPool};
use uuid::Uuid;

use crate::batch_write::{write_plan, Refusal};
use crate::connections::ready;
use crate::error::StoreError;
use crate::hash_chain::truncate_to_microseconds;
use crate::plan::{plan_batch, ClaimKey, Head, Plan, StoredClaim, StreamState};
use crate::rows::from_stored;
use crate::validate::PreparedRequest;

/// Attempts at a batch that PostgreSQL chose to cancel to break a deadlock.
pub const MAX_ATTEMPTS: usize = 4;

/// Locks the head, reads what the batch needs, plans and writes it; the written plan, and the
/// connection back unless it broke.
pub(crate) async fn write_fresh_batch(
    pool: &PgPool,
    kept: Option<(PgConnection, std::time::Instant)>,
    requests: &[&PreparedRequest],
) -> (Result<Plan, StoreError>, Option<PgConnection>) {
    let mut connection = match ready(pool, kept).await {
        Ok(connection) => connection,
        Err(error) => return (Err(error), None),
    };
    let mut attempt = 1;
    loop {
        let error = match write_locked(&mut connection, requests).await {
            Ok(plan) => return (Ok(plan), Some(connection)),
            Err(Failed::Begin(error)) => return (Err(error), None),
            Err(Failed::Begun(error)) => error,
        };
        if Refusal::of(&error).is_none() || attempt == MAX_ATTEMPTS {
            let usable = matches!(&error, StoreError::Database(sqlx::Error::Database(_)));
            return (Err(error), usable.then_some(connection));
        }
        tracing::debug!(%error, attempt, "a batch under the head's lock was cancelled");
        attempt += 1;
    }
}

async fn write_locked(
    connection: &mut PgConnection,
    requests: &[&PreparedRequest],
) -> Result<Plan, Failed> {
    // One round trip for the first two steps: fixed text with nothing bound, as `BEGIN` is.
    let begun = connection
        .begin_with(
            "BEGIN; SET LOCAL lock_timeout = 0; SELECT 1 FROM log_head WHERE id = 1 FOR UPDATE",
        )
        .await;
    let mut transaction = match begun {
        Ok(transaction) => transaction,
        // sqlx counts the transaction only once all three statements succeeded; should the
        // lock fail, the transaction it began is still open, and aborted: the connection is
        // not used again.
        Err(error) => return Err(Failed::Begin(error.into())),
    };
    let written = async {
        let (head, streams, claims) = stored_state(&mut transaction, requests).await?;
        let recorded_at = truncate_to_microseconds(Utc::now());
        let plan = plan_batch(head, streams, &claims, requests, recorded_at)?;
        if !plan.events.is_empty() {
            write_plan(&mut transaction, &plan).await?;
        }
        Ok(plan)
    }
    .await;
    match written {
        Ok(plan) => {
            transaction
                .commit()
                .await
                .map_err(|error| Failed::Begun(error.into()))?;
            Ok(plan)
        }
        Err(error) => {
            // Explicitly, so the connection is out of the failed transaction before its
            // next attempt.
            transaction
                .rollback()
                .await
                .map_err(|error| Failed::Begin(error.into()))?;
            Err(Failed::Begun(error))
        }
    }
}

/// How a batch under the lock failed: whether its connection can still be used.
enum Failed {
    /// Its transaction may still be open: the connection is dropped.
    Begin(StoreError),
    /// Its transaction is over.
    Begun(StoreError),
}

/// What the batch finds stored: the log head, its streams' versions and its idempotency
/// claims, read in one round trip after the head is locked.
///
/// This must be a statement of its own, after the one that took the lock. In READ COMMITTED a
/// statement's snapshot is taken when it starts: a `SELECT … FOR UPDATE` that waits for
/// another writer's lock re-reads only the locked row when it gets it, and would see the
/// streams as they were before that writer committed. A statement started after the lock is
/// granted sees every batch committed before.
async fn stored_state(
    connection: &mut PgConnection,
    requests: &[&PreparedRequest],
) -> Result<
    (
        Head,
        HashMap<Uuid, StreamState>,
        HashMap<ClaimKey, StoredClaim>,
    ),
    StoreError,
> {
    let ids: Vec<Uuid> = requests
        .iter()
        .flat_map(|request| request.streams.iter().map(|stream| stream.stream_id))
        .collect::<HashSet<Uuid>>()
        .into_iter()
        .collect();
    let (environments, keys): (Vec<String>, Vec<String>) = requests
        .iter()
        .flat_map(|request| &request.claims)
        .map(|claim| (claim.environment.as_str().to_owned(), claim.key.clone()))
        .unzip();
    let rows = sqlx::query!(
        // One primary-key probe per wanted stream and key, whatever plan PostgreSQL caches
        // for the prepared statement. A plain join is flattened, and its generic plan, made
        // while the tables were small, hashes a sequential scan of the whole table: a batch
        // then costs time in proportion to the log. `LIMIT 1` keeps each lateral subquery a
        // parameterized index probe.
        r#"SELECT 'head'::text AS "kind!", NULL::uuid AS "stream_id?",
               NULL::text AS "stream_type?", last_position AS "version?",
               NULL::text AS "environment?", NULL::text AS "key?",
               last_hash AS "request_hash?", NULL::jsonb AS "result?"
           FROM log_head WHERE id = 1
           UNION ALL
           SELECT 'stream'::text, stream.stream_id,
               stream.stream_type, stream.version,
               NULL::text, NULL::text, NULL::bytea, NULL::jsonb
           FROM UNNEST($1::uuid[]) AS wanted (stream_id)
           CROSS JOIN LATERAL (
               SELECT stream_id, stream_type, version FROM streams
               WHERE streams.stream_id = wanted.stream_id
               LIMIT 1
           ) AS stream
           UNION ALL
           SELECT 'claim'::text, NULL::uuid, NULL::text, NULL::bigint,
               claim.environment, claim.key, claim.request_hash, claim.result
           FROM UNNEST($2::text[], $3::text[]) AS wanted (environment, key)
           CROSS JOIN LATERAL (
               SELECT environment, key, request_hash, result FROM idempotency_keys
               WHERE idempotency_keys.environment = wanted.environment
                 AND idempotency_keys.key = wanted.key
               LIMIT 1
           ) AS claim"#,
        &ids,
        &environments,
        &keys,
    )
    .fetch_all(connection)
    .await?;
    let mut head = None;
    let mut streams = HashMap::with_capacity(ids.len());
    let mut claims = HashMap::with_capacity(keys.len());
    for row in rows {
        if row.kind == "head" {
            head = Some(stored_head(row.version, row.request_hash)?);
            continue;
        }
        match (row.stream_id, row.stream_type, row.version) {
            (Some(stream_id), Some(stream_type), Some(version)) => {
                let state = StreamState {
                    stream_type: stream_type.parse()?,
                    version: from_stored(version)?,
                };
                streams.insert(stream_id, state);
            }
            _ => {
                let (Some(environment), Some(key), Some(request_hash), Some(result)) =
                    (row.environment, row.key, row.request_hash, row.result)
                else {
                    return Err(StoreError::CorruptEvent {
                        position: 0,
                        reason: format!("unexpected {} row among stored state", row.kind),
                    });
                };
                let claim = stored_claim(&key, request_hash, &result)?;
                claims.insert((environment.parse()?, key), claim);
            }
        }
    }
    let head = head.ok_or_else(|| StoreError::CorruptEvent {
        position: 0,
        reason: "the log_head row is missing".into(),
    })?;
    Ok((head, streams, claims))
}

fn stored_head(position: Option<i64>, hash: Option<Vec<u8>>) -> Result<Head, StoreError> {
    let position = position.unwrap_or(-1);
    Ok(Head {
        position: from_stored(position)?,
        hash: hash
            .unwrap_or_default()
            .try_into()
            .map_err(|_| StoreError::CorruptEvent {
                position,
                reason: "log head hash is not 32 bytes".into(),
            })?,
    })
}

/// A stored claim; its result names the positions its request recorded.
fn stored_claim(
    key: &str,
    request_hash: Vec<u8>,
    result: &serde_json::Value,
) -> Result<StoredClaim, StoreError> {
    let position = |name: &str| {
        result
            .get(name)
            .and_then(serde_json::Value::as_u64)
            .ok_or_else(|| StoreError::CorruptEvent {
                position: 0,
                reason: format!("idempotency result for key {key:?} lacks {name}"),
            })
    };
    Ok(StoredClaim {
        request_hash,
        first_position: position("first_position")?,
        last_position: position("last_position")?,
    })
}

//! Reading the log: one stream, the global order by position, idempotency claims, the head.
//! Reads need no lock: the writer only makes position N+1 visible after N (see `writer`).

use sqlx::{PgConnection, PgPool};

use crate::error::StoreError;
use crate::event::{Environment, IdempotencyRecord, RecordedEvent};
use crate::rows::{from_stored, to_stored, EventRow};

/// Most events one page of [`crate::EventStore::read_all`] returns, whatever the caller asks.
pub const MAX_PAGE_SIZE: usize = 10_000;

/// The last position written and its hash. Written and parsed as `POSITION:HASH` (the hash
/// in lowercase hex), the form `ledger export` prints and `ledger verify --expect-head` takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LogHead {
    pub last_position: u64,
    pub last_hash: [u8; 32],
}

impl std::fmt::Display for LogHead {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            formatter,
            "{}:{}",
            self.last_position,
            hex::encode(self.last_hash)
        )
    }
}

impl std::str::FromStr for LogHead {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let expected =
            "give the head as POSITION:HASH, e.g. 1042:9f86d0…, as `ledger export` printed it";
        let (position, hash) = text.trim().split_once(':').ok_or(expected)?;
        let last_position = position
            .parse::<u64>()
            .ok()
            .filter(|position| *position > 0)
            .ok_or_else(|| format!("`{position}` is not a log position: {expected}"))?;
        let mut last_hash = [0u8; 32];
        hex::decode_to_slice(hash, &mut last_hash)
            .map_err(|_| format!("`{hash}` is not 64 hexadecimal digits: {expected}"))?;
        Ok(LogHead {
            last_position,
            last_hash,
        })
    }
}

fn decode(rows: Vec<EventRow>) -> Result<Vec<RecordedEvent>, StoreError> {
    rows.into_iter().map(RecordedEvent::try_from).collect()
}

/// Up to `limit` events (capped at [`MAX_PAGE_SIZE`]) from `from_position` on, in position
/// order. The next page starts after the last position returned.
pub(crate) async fn read_all(
    pool: &PgPool,
    from_position: u64,
    limit: usize,
) -> Result<Vec<RecordedEvent>, StoreError> {
    let limit = i64::try_from(limit.min(MAX_PAGE_SIZE)).unwrap_or(0);
    let rows = sqlx::query_as!(
        EventRow,
        r#"SELECT position, event_id, stream_id, stream_type, stream_version, event_type,
               schema_version, recorded_at, occurred_at, payload, metadata, prev_hash, hash
           FROM events
           WHERE position >= $1
           ORDER BY position
           LIMIT $2"#,
        to_stored(from_position)?,
        limit,
    )
    .fetch_all(pool)
    .await?;
    decode(rows)
}

/// Up to `limit` events of one environment (capped at [`MAX_PAGE_SIZE`]) from `from_position`
/// on, in position order: a page shorter than `limit` means the end of the log, however the
/// environments' events are interleaved (the index on environment and position finds them).
pub(crate) async fn read_all_of_environment(
    pool: &PgPool,
    environment: Environment,
    from_position: u64,
    limit: usize,
) -> Result<Vec<RecordedEvent>, StoreError> {
    let limit = i64::try_from(limit.min(MAX_PAGE_SIZE)).unwrap_or(0);
    let rows = sqlx::query_as!(
        EventRow,
        r#"SELECT position, event_id, stream_id, stream_type, stream_version, event_type,
               schema_version, recorded_at, occurred_at, payload, metadata, prev_hash, hash
           FROM events
           WHERE metadata->>'environment' = $1 AND position >= $2
           ORDER BY position
           LIMIT $3"#,
        environment.as_str(),
        to_stored(from_position)?,
        limit,
    )
    .fetch_all(pool)
    .await?;
    decode(rows)
}

/// The events at positions `first..=last`: what one earlier append recorded.
pub(crate) async fn events_between(
    pool: &PgPool,
    first_position: u64,
    last_position: u64,
) -> Result<Vec<RecordedEvent>, StoreError> {
    let rows = sqlx::query_as!(
        EventRow,
        r#"SELECT position, event_id, stream_id, stream_type, stream_version, event_type,
               schema_version, recorded_at, occurred_at, payload, metadata, prev_hash, hash
           FROM events
           WHERE position BETWEEN $1 AND $2
           ORDER BY position"#,
        to_stored(first_position)?,
        to_stored(last_position)?,
    )
    .fetch_all(pool)
    .await?;
    decode(rows)
}

/// Several idempotency claims from one statement, in the order asked: `None` for a key nobody
/// claimed; a row that does not read back fails its own answer, not the others'. Read on the
/// stream readers' connections (see `connections`).
pub(crate) async fn idempotency_records(
    connection: &mut PgConnection,
    keys: &[(Environment, String)],
) -> Result<Vec<Result<Option<IdempotencyRecord>, StoreError>>, StoreError> {
    let environments: Vec<&str> = keys
        .iter()
        .map(|(environment, _)| environment.as_str())
        .collect();
    let names: Vec<&str> = keys.iter().map(|(_, key)| key.as_str()).collect();
    // One primary-key probe per key; `OFFSET 0` keeps the lateral subquery a probe.
    let rows = sqlx::query!(
        r#"SELECT k.read AS "read!", i.environment AS "environment!", i.key AS "key!",
               i.request_hash AS "request_hash!", i.result AS "result!",
               i.created_at AS "created_at!"
           FROM UNNEST($1::text[], $2::text[]) WITH ORDINALITY AS k(environment, key, read)
           CROSS JOIN LATERAL (
               SELECT * FROM idempotency_keys
               WHERE idempotency_keys.environment = k.environment AND idempotency_keys.key = k.key
               OFFSET 0
           ) i"#,
        &environments as &[&str],
        &names as &[&str],
    )
    .fetch_all(connection)
    .await?;
    let mut records: Vec<Result<Option<IdempotencyRecord>, StoreError>> =
        keys.iter().map(|_| Ok(None)).collect();
    for row in rows {
        let slot = crate::connections::answer_to(&mut records, row.read, "claim")?;
        *slot = row
            .environment
            .parse::<Environment>()
            .map_err(StoreError::from)
            .map(|environment| {
                Some(IdempotencyRecord {
                    environment,
                    key: row.key,
                    request_hash: row.request_hash,
                    result: row.result,
                    created_at: row.created_at,
                })
            });
    }
    Ok(records)
}

pub(crate) async fn head(pool: &PgPool) -> Result<LogHead, StoreError> {
    let row = sqlx::query!("SELECT last_position, last_hash FROM log_head WHERE id = 1")
        .fetch_one(pool)
        .await?;
    Ok(LogHead {
        last_position: from_stored(row.last_position)?,
        last_hash: row
            .last_hash
            .try_into()
            .map_err(|_| StoreError::CorruptEvent {
                position: row.last_position,
                reason: "log head hash is not 32 bytes".into(),
            })?,
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::LogHead;

    #[test]
    fn a_head_reads_back_from_its_printed_form() {
        let head = LogHead {
            last_position: 1042,
            last_hash: [0x9f; 32],
        };
        let printed = head.to_string();
        assert_eq!(printed, format!("1042:{}", "9f".repeat(32)));
        assert_eq!(printed.parse::<LogHead>().unwrap(), head);
    }

    #[test]
    fn a_malformed_head_is_refused_with_the_expected_form() {
        for text in [
            "",
            "1042",
            "x:00",
            "0:00",
            &format!("7:{}", "9f".repeat(31)),
        ] {
            let error = text.parse::<LogHead>().unwrap_err();
            assert!(error.contains("POSITION:HASH"), "{text}: {error}");
        }
    }
}

//! The journal read model: one entry per money-moving event with its postings (from
//! `ledger_core::journal`, given the state before the event), running balances per
//! environment, merchant, currency and account, the merchant summary, and balances as of any
//! past position.

use std::collections::{BTreeMap, HashMap};

use ledger_core::ids::Environment;
use ledger_core::journal::{Account, Posting, Side};
use rust_decimal::Decimal;
use sqlx::{PgConnection, PgPool};

use super::read_rows;
use crate::batch::Batch;
use crate::error::{parse_stored, to_stored, ProjectionError};

type AccountKey = (String, String, String, &'static str);

/// An account's balance is kept after every this many of its posting lines
/// (`projection_balance_snapshots`), so that a balance as of a past position adds fewer lines
/// than this to a snapshot instead of summing the account's whole history. The migration
/// `…_balance_snapshots.sql` backfills with the same figure.
const SNAPSHOT_EVERY: i64 = 256;

/// An account's posting lines in one batch, in log order: position and signed amount.
#[derive(Default)]
struct AccountLines(Vec<(i64, Decimal)>);

impl AccountLines {
    fn change(&self) -> Decimal {
        self.0.iter().map(|(_, amount)| amount).sum()
    }

    fn last_position(&self) -> i64 {
        self.0.last().map_or(0, |(position, _)| *position)
    }

    fn count(&self) -> i64 {
        i64::try_from(self.0.len()).unwrap_or(i64::MAX)
    }

    /// The snapshots these lines complete, given the account's balance and line count after
    /// them: at the position of each (`SNAPSHOT_EVERY`·k)-th line, the balance after every
    /// line at that position.
    fn snapshots(&self, balance_after: Decimal, count_after: i64) -> Vec<(i64, Decimal)> {
        let mut balance = balance_after - self.change();
        let mut count = count_after - self.count();
        let mut snapshots = Vec::new();
        let mut due = false;
        for (index, (position, amount)) in self.0.iter().enumerate() {
            balance += amount;
            count += 1;
            due |= count % SNAPSHOT_EVERY == 0;
            let position_ends = self
                .0
                .get(index + 1)
                .is_none_or(|(next, _)| next != position);
            if due && position_ends {
                snapshots.push((*position, balance));
                due = false;
            }
        }
        snapshots
    }
}

pub(crate) async fn apply(
    connection: &mut PgConnection,
    batch: &Batch,
    after: u64,
) -> Result<(), ProjectionError> {
    let mut entries = EntryColumns::default();
    let mut postings = PostingColumns::default();
    let mut accounts: BTreeMap<AccountKey, AccountLines> = BTreeMap::new();
    for event in batch.events_after(after) {
        let Some(entry) = &event.entry else {
            continue;
        };
        let position = to_stored(event.position)?;
        let environment = entry.environment.as_str().to_owned();
        let merchant_id = entry.merchant_id.as_str().to_owned();
        let currency = entry.currency.code().to_owned();
        entries.positions.push(position);
        entries.event_ids.push(event.event_id);
        entries.stream_ids.push(event.stream_id);
        entries.event_types.push(event.event_type.clone());
        entries.environments.push(environment.clone());
        entries.merchant_ids.push(merchant_id.clone());
        entries.currencies.push(currency.clone());
        entries.occurred_at.push(event.occurred_at);
        entries.recorded_at.push(event.recorded_at);
        for (line, (account, side, amount)) in consolidated(&entry.postings).into_iter().enumerate()
        {
            postings.positions.push(position);
            postings
                .line_numbers
                .push(i32::try_from(line + 1).unwrap_or(i32::MAX));
            postings.environments.push(environment.clone());
            postings.merchant_ids.push(merchant_id.clone());
            postings.currencies.push(currency.clone());
            postings.accounts.push(account.as_str().to_owned());
            postings.sides.push(side.as_str().to_owned());
            postings.amounts.push(amount);
            let key = (
                environment.clone(),
                merchant_id.clone(),
                currency.clone(),
                account.as_str(),
            );
            let signed = match side {
                Side::Debit => amount,
                Side::Credit => -amount,
            };
            accounts.entry(key).or_default().0.push((position, signed));
        }
    }
    if entries.positions.is_empty() {
        return Ok(());
    }
    entries.write(connection).await?;
    postings.write(connection).await?;
    write_balances(connection, accounts).await
}

/// One line per account and side, amounts summed, in the order of first appearance. A
/// settlement batch's entry has postings per item (processing_fees once per capture); its
/// journal shows them as the one line per account a ledger would, and the batch's items
/// keep the detail. Sums are exact, so balances are unchanged.
pub fn consolidated(postings: &[Posting]) -> Vec<(Account, Side, Decimal)> {
    let mut lines: Vec<(Account, Side, Decimal)> = Vec::with_capacity(postings.len().min(16));
    for posting in postings {
        match lines
            .iter_mut()
            .find(|(account, side, _)| *account == posting.account && *side == posting.side)
        {
            Some(line) => line.2 += posting.amount.amount(),
            None => lines.push((posting.account, posting.side, posting.amount.amount())),
        }
    }
    lines
}

#[derive(Default)]
struct EntryColumns {
    positions: Vec<i64>,
    event_ids: Vec<uuid::Uuid>,
    stream_ids: Vec<uuid::Uuid>,
    event_types: Vec<String>,
    environments: Vec<String>,
    merchant_ids: Vec<String>,
    currencies: Vec<String>,
    occurred_at: Vec<chrono::DateTime<chrono::Utc>>,
    recorded_at: Vec<chrono::DateTime<chrono::Utc>>,
}

impl EntryColumns {
    async fn write(self, connection: &mut PgConnection) -> Result<(), ProjectionError> {
        sqlx::query!(
            r#"INSERT INTO projection_journal_entries (position, event_id, stream_id, event_type,
                   environment, merchant_id, currency, occurred_at, recorded_at)
               SELECT * FROM UNNEST($1::bigint[], $2::uuid[], $3::uuid[], $4::text[], $5::text[],
                   $6::text[], $7::text[], $8::timestamptz[], $9::timestamptz[])"#,
            &self.positions,
            &self.event_ids,
            &self.stream_ids,
            &self.event_types,
            &self.environments,
            &self.merchant_ids,
            &self.currencies,
            &self.occurred_at,
            &self.recorded_at,
        )
        .execute(connection)
        .await?;
        Ok(())
    }
}

#[derive(Default)]
struct PostingColumns {
    positions: Vec<i64>,
    line_numbers: Vec<i32>,
    environments: Vec<String>,
    merchant_ids: Vec<String>,
    currencies: Vec<String>,
    accounts: Vec<String>,
    sides: Vec<String>,
    amounts: Vec<Decimal>,
}

impl PostingColumns {
    async fn write(self, connection: &mut PgConnection) -> Result<(), ProjectionError> {
        sqlx::query!(
            r#"INSERT INTO projection_postings (position, line_number, environment, merchant_id,
                   currency, account, side, amount)
               SELECT * FROM UNNEST($1::bigint[], $2::int[], $3::text[], $4::text[], $5::text[],
                   $6::text[], $7::text[], $8::numeric[])"#,
            &self.positions,
            &self.line_numbers,
            &self.environments,
            &self.merchant_ids,
            &self.currencies,
            &self.accounts,
            &self.sides,
            &self.amounts,
        )
        .execute(connection)
        .await?;
        Ok(())
    }
}

async fn write_balances(
    connection: &mut PgConnection,
    accounts: BTreeMap<AccountKey, AccountLines>,
) -> Result<(), ProjectionError> {
    let mut environments = Vec::with_capacity(accounts.len());
    let mut merchant_ids = Vec::with_capacity(accounts.len());
    let mut currencies = Vec::with_capacity(accounts.len());
    let mut names = Vec::with_capacity(accounts.len());
    let mut changes = Vec::with_capacity(accounts.len());
    let mut positions = Vec::with_capacity(accounts.len());
    let mut counts = Vec::with_capacity(accounts.len());
    for ((environment, merchant_id, currency, account), lines) in &accounts {
        environments.push(environment.clone());
        merchant_ids.push(merchant_id.clone());
        currencies.push(currency.clone());
        names.push((*account).to_owned());
        changes.push(lines.change());
        positions.push(lines.last_position());
        counts.push(lines.count());
    }
    let written = sqlx::query!(
        r#"INSERT INTO projection_balances (environment, merchant_id, currency, account, balance,
               last_position, postings)
           SELECT * FROM UNNEST($1::text[], $2::text[], $3::text[], $4::text[], $5::numeric[],
               $6::bigint[], $7::bigint[])
           ON CONFLICT (environment, merchant_id, currency, account) DO UPDATE SET
               balance = projection_balances.balance + EXCLUDED.balance,
               last_position = EXCLUDED.last_position,
               postings = projection_balances.postings + EXCLUDED.postings
           RETURNING environment, merchant_id, currency, account, balance, postings"#,
        &environments,
        &merchant_ids,
        &currencies,
        &names,
        &changes,
        &positions,
        &counts,
    )
    .fetch_all(&mut *connection)
    .await?;
    let lines_of: HashMap<(&str, &str, &str, &str), &AccountLines> = accounts
        .iter()
        .map(|((environment, merchant_id, currency, account), lines)| {
            (
                (
                    environment.as_str(),
                    merchant_id.as_str(),
                    currency.as_str(),
                    *account,
                ),
                lines,
            )
        })
        .collect();
    let mut snapshots = SnapshotColumns::default();
    for row in &written {
        let key = (
            row.environment.as_str(),
            row.merchant_id.as_str(),
            row.currency.as_str(),
            row.account.as_str(),
        );
        let Some(lines) = lines_of.get(&key) else {
            continue;
        };
        for (position, balance) in lines.snapshots(row.balance, row.postings) {
            snapshots.environments.push(row.environment.clone());
            snapshots.merchant_ids.push(row.merchant_id.clone());
            snapshots.currencies.push(row.currency.clone());
            snapshots.accounts.push(row.account.clone());
            snapshots.positions.push(position);
            snapshots.balances.push(balance);
        }
    }
    snapshots.write(connection).await
}

#[derive(Default)]
struct SnapshotColumns {
    environments: Vec<String>,
    merchant_ids: Vec<String>,
    currencies: Vec<String>,
    accounts: Vec<String>,
    positions: Vec<i64>,
    balances: Vec<Decimal>,
}

impl SnapshotColumns {
    async fn write(self, connection: &mut PgConnection) -> Result<(), ProjectionError> {
        if self.positions.is_empty() {
            return Ok(());
        }
        sqlx::query!(
            r#"INSERT INTO projection_balance_snapshots (environment, merchant_id, currency,
                   account, position, balance)
               SELECT * FROM UNNEST($1::text[], $2::text[], $3::text[], $4::text[], $5::bigint[],
                   $6::numeric[])"#,
            &self.environments,
            &self.merchant_ids,
            &self.currencies,
            &self.accounts,
            &self.positions,
            &self.balances,
        )
        .execute(connection)
        .await?;
        Ok(())
    }
}

/// The balance of one account; debit balances are positive.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Balance {
    pub environment: Environment,
    pub merchant_id: String,
    pub currency: String,
    pub account: Account,
    pub balance: Decimal,
}

struct StoredBalance {
    environment: String,
    merchant_id: String,
    currency: String,
    account: String,
    balance: Decimal,
}

impl TryFrom<StoredBalance> for Balance {
    type Error = ProjectionError;

    fn try_from(row: StoredBalance) -> Result<Self, ProjectionError> {
        Ok(Balance {
            environment: parse_stored(&row.environment)?,
            merchant_id: row.merchant_id,
            currency: row.currency,
            account: parse_stored(&row.account)?,
            balance: row.balance,
        })
    }
}

/// A merchant's money in one currency, by where it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MerchantSummary {
    pub currency: String,
    /// Captured, not yet settled by the gateway (gateway_pending).
    pub pending: Decimal,
    /// Settled by the gateway, not yet paid out (gateway_settled).
    pub settled: Decimal,
    /// Paid out, not yet arrived (payouts_in_transit).
    pub in_transit: Decimal,
    /// Arrived at the bank (bank).
    pub paid_out: Decimal,
    /// Withheld by the gateway as a reserve (gateway_reserve).
    pub reserved: Decimal,
}

/// Current balances of a merchant (every merchant when `None`) in an environment.
#[tracing::instrument(skip(pool))]
pub async fn balances(
    pool: &PgPool,
    environment: Environment,
    merchant_id: Option<&str>,
) -> Result<Vec<Balance>, ProjectionError> {
    let rows = sqlx::query_as!(
        StoredBalance,
        r#"SELECT environment, merchant_id, currency, account, balance
           FROM projection_balances
           WHERE environment = $1 AND ($2::text IS NULL OR merchant_id = $2)
           ORDER BY merchant_id, currency, account"#,
        environment.as_str(),
        merchant_id,
    )
    .fetch_all(pool)
    .await?;
    read_rows(rows)
}

/// Balances from the postings of events up to `position` (inclusive). The caller makes sure
/// the journal has reached `position` (see [`crate::rebuild::balances_as_of`]). Each account
/// starts from its latest snapshot at or before `position` and adds the lines since, fewer
/// than [`SNAPSHOT_EVERY`], so the cost does not grow with the log. An account whose first
/// line comes after `position` is left out, as it had no balance then.
pub(crate) async fn balances_up_to(
    connection: &mut PgConnection,
    environment: Environment,
    merchant_id: Option<&str>,
    position: u64,
) -> Result<Vec<Balance>, ProjectionError> {
    let rows = sqlx::query_as!(
        StoredBalance,
        r#"SELECT held.environment, held.merchant_id, held.currency, held.account,
                  COALESCE(snapshot.balance, 0) + COALESCE(since.change, 0) AS "balance!"
           FROM projection_balances AS held
           LEFT JOIN LATERAL (
               SELECT position, balance FROM projection_balance_snapshots
               WHERE environment = held.environment AND merchant_id = held.merchant_id
                 AND currency = held.currency AND account = held.account
                 AND position <= $3
               ORDER BY position DESC LIMIT 1
           ) AS snapshot ON true
           CROSS JOIN LATERAL (
               SELECT SUM(CASE side WHEN 'debit' THEN amount ELSE -amount END) AS change,
                      count(*) AS lines
               FROM projection_postings
               WHERE environment = held.environment AND merchant_id = held.merchant_id
                 AND currency = held.currency AND account = held.account
                 AND position > COALESCE(snapshot.position, 0) AND position <= $3
           ) AS since
           WHERE held.environment = $1 AND ($2::text IS NULL OR held.merchant_id = $2)
             AND (snapshot.position IS NOT NULL OR since.lines > 0)
           ORDER BY held.merchant_id, held.currency, held.account"#,
        environment.as_str(),
        merchant_id,
        to_stored(position)?,
    )
    .fetch_all(connection)
    .await?;
    read_rows(rows)
}

/// The merchant summary per currency from balances (current, or as of a past position).
pub fn merchant_summary(balances: &[Balance]) -> Vec<MerchantSummary> {
    let mut by_currency: BTreeMap<&str, MerchantSummary> = BTreeMap::new();
    for balance in balances {
        let summary = by_currency
            .entry(balance.currency.as_str())
            .or_insert_with(|| MerchantSummary {
                currency: balance.currency.clone(),
                pending: Decimal::ZERO,
                settled: Decimal::ZERO,
                in_transit: Decimal::ZERO,
                paid_out: Decimal::ZERO,
                reserved: Decimal::ZERO,
            });
        let slot = match balance.account {
            Account::GatewayPending => &mut summary.pending,
            Account::GatewaySettled => &mut summary.settled,
            Account::PayoutsInTransit => &mut summary.in_transit,
            Account::Bank => &mut summary.paid_out,
            Account::GatewayReserve => &mut summary.reserved,
            _ => continue,
        };
        *slot += balance.balance;
    }
    by_currency.into_values().collect()
}

#[cfg(test)]
mod tests {
    use ledger_core::{Currency, Money};

    use super::*;

    fn posting(account: Account, side: Side, amount: &str) -> Posting {
        Posting {
            account,
            side,
            amount: Money::parse(amount, Currency::USD).unwrap(),
        }
    }

    /// Lines of the same account and side are summed, in first-appearance order, and the
    /// entry still balances.
    #[test]
    fn consolidates_postings_per_account_and_side() {
        let postings = [
            posting(Account::ProcessingFees, Side::Debit, "1.00"),
            posting(Account::GatewaySettled, Side::Debit, "9.00"),
            posting(Account::GatewayPending, Side::Credit, "10.00"),
            posting(Account::ProcessingFees, Side::Debit, "2.00"),
            posting(Account::GatewaySettled, Side::Debit, "18.00"),
            posting(Account::GatewayPending, Side::Credit, "20.00"),
        ];
        let lines = consolidated(&postings);
        let amount = |text: &str| Decimal::from_str_exact(text).unwrap();
        assert_eq!(
            lines,
            vec![
                (Account::ProcessingFees, Side::Debit, amount("3.00")),
                (Account::GatewaySettled, Side::Debit, amount("27.00")),
                (Account::GatewayPending, Side::Credit, amount("30.00")),
            ]
        );
    }

    /// A snapshot falls at the position of every (256·k)-th line of the account, counting the
    /// lines before the batch, and holds every line at that position: here the 256th line is
    /// the debit of position 12, and the credit of the same position is in its balance.
    #[test]
    fn snapshots_fall_at_every_256th_line_with_its_whole_position() {
        let amount = |text: &str| Decimal::from_str_exact(text).unwrap();
        let lines = AccountLines(vec![
            (10, amount("1.00")),
            (12, amount("5.00")),
            (12, amount("-2.00")),
            (13, amount("7.00")),
        ]);
        // 254 lines and a balance of 100.00 before the batch.
        let snapshots = lines.snapshots(amount("111.00"), 258);
        assert_eq!(snapshots, vec![(12, amount("104.00"))]);
        // 255 lines before: the 256th is the first line of the batch.
        assert_eq!(
            lines.snapshots(amount("111.00"), 259),
            vec![(10, amount("101.00"))]
        );
        // 100 lines before: no multiple of 256 reached.
        assert!(lines.snapshots(amount("111.00"), 104).is_empty());
    }
}

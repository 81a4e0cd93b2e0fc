//! Running scenarios: each step against the gateway, then each team's expectations against
//! the gateway's answer (engineering) or the ledger once webhooks settled (support,
//! finance, and engineering's view of the ledger's webhook outcomes).

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rust_decimal::Decimal;
use serde_json::Value;
use tokio::sync::Semaphore;
use tokio::task::JoinSet;

use super::checks;
use super::file::{Finance, Kind, Scenario, Step};
use super::gateway::{card_fields, Answer, Gateway};
use super::ledger::{Ledger, LedgerView};

/// Scenarios run at once: each waits mostly on webhooks, so several overlap well.
const CONCURRENT_SCENARIOS: usize = 8;
/// How long the ledger may take to show what its settled webhooks recorded.
const LEDGER_DEADLINE: Duration = Duration::from_secs(5);

/// Where scenarios run: a gateway, and the ledger it delivers webhooks to.
#[derive(Debug, Clone)]
pub struct Target {
    pub gateway: Gateway,
    pub ledger: Ledger,
    /// Makes idempotency keys unique to this run, so a long-lived gateway replays nothing
    /// of an earlier run.
    pub run_id: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Team {
    Engineering,
    Support,
    Finance,
}

impl Team {
    pub const ALL: [Team; 3] = [Team::Engineering, Team::Support, Team::Finance];

    pub fn name(self) -> &'static str {
        match self {
            Team::Engineering => "engineering",
            Team::Support => "support",
            Team::Finance => "finance",
        }
    }
}

/// One team's verdict on one scenario.
#[derive(Debug, Clone, Default)]
pub struct Verdict {
    /// Whether the scenario expects anything of this team.
    pub checked: bool,
    pub differences: Vec<String>,
}

impl Verdict {
    pub fn passed(&self) -> bool {
        self.differences.is_empty()
    }
}

#[derive(Debug, Clone)]
pub struct Outcome {
    pub name: String,
    pub path: std::path::PathBuf,
    pub elapsed: Duration,
    /// In [`Team::ALL`]'s order.
    pub verdicts: [Verdict; 3],
}

impl Outcome {
    pub fn verdict(&self, team: Team) -> &Verdict {
        &self.verdicts[team as usize]
    }

    pub fn passed(&self) -> bool {
        self.verdicts.iter().all(Verdict::passed)
    }
}

/// Runs every scenario and answers their outcomes in the given order: those that move the
/// sandbox clock first, one at a time (a clock advance pays out the whole sandbox's
/// available funds, and their balance checks read the merchant's whole books), then the
/// others several at once.
pub async fn run_all(target: &Target, scenarios: Vec<Scenario>) -> Vec<Outcome> {
    let count = scenarios.len();
    let mut outcomes: Vec<Option<Outcome>> = vec![None; count];
    let (alone, together): (Vec<_>, Vec<_>) = scenarios
        .into_iter()
        .enumerate()
        .partition(|(_, scenario)| scenario.moves_clock());
    for (index, scenario) in alone {
        outcomes[index] = Some(run(target, index, &scenario).await);
    }
    let limit = Arc::new(Semaphore::new(CONCURRENT_SCENARIOS));
    let mut tasks = JoinSet::new();
    for (index, scenario) in together {
        let target = target.clone();
        let limit = limit.clone();
        tasks.spawn(async move {
            let _permit = limit.acquire_owned().await;
            (index, run(&target, index, &scenario).await)
        });
    }
    while let Some(joined) = tasks.join_next().await {
        if let Ok((index, outcome)) = joined {
            if let Some(slot) = outcomes.get_mut(index) {
                *slot = Some(outcome);
            }
        }
    }
    outcomes.into_iter().flatten().collect()
}

/// What one scenario has made so far: its payments' intents and its refunds, by name; the
/// payouts its clock advances made; its latest payout report import; the balances of the
/// merchants it checks, as they were when it began.
#[derive(Default)]
struct Made {
    intents: HashMap<String, String>,
    refunds: HashMap<String, String>,
    payouts: Vec<String>,
    imported: Option<Value>,
    balances_before: HashMap<String, BTreeMap<String, Decimal>>,
}

pub async fn run(target: &Target, index: usize, scenario: &Scenario) -> Outcome {
    let started = Instant::now();
    let mut verdicts: [Verdict; 3] = Default::default();
    verdicts[Team::Engineering as usize].checked = true;
    for step in &scenario.steps {
        verdicts[Team::Support as usize].checked |= step.support.is_some();
        verdicts[Team::Finance as usize].checked |= step.finance.is_some();
    }
    let mut made = Made::default();
    let merchants: Vec<&str> = scenario
        .steps
        .iter()
        .filter_map(|step| step.finance.as_ref())
        .filter(|finance| !finance.balance_changes.is_empty())
        .map(|finance| finance.merchant())
        .collect();
    for merchant in merchants {
        if made.balances_before.contains_key(merchant) {
            continue;
        }
        match target.ledger.balances(merchant).await {
            Ok(balances) => {
                made.balances_before.insert(merchant.to_owned(), balances);
            }
            Err(reason) => verdicts[Team::Finance as usize]
                .differences
                .push(format!("the balances before the scenario: {reason}")),
        }
    }
    for (number, step) in scenario.steps.iter().enumerate() {
        let label = format!("step {} ({})", number + 1, step.kind.name());
        let mut note = |team: Team, differences: Vec<String>| {
            verdicts[team as usize]
                .differences
                .extend(differences.into_iter().map(|d| format!("{label}: {d}")));
        };
        let answers = match act(target, index, step, &mut made).await {
            Ok(answers) => answers,
            Err(reason) => {
                note(Team::Engineering, vec![format!("could not run: {reason}")]);
                for team in [Team::Support, Team::Finance] {
                    if verdicts[team as usize].checked && verdicts[team as usize].passed() {
                        verdicts[team as usize]
                            .differences
                            .push(format!("not reached: the scenario stopped at {label}"));
                    }
                }
                break;
            }
        };
        let mut engineering = Vec::new();
        for answer in &answers {
            engineering.extend(checks::answer(step.engineering.as_ref(), answer));
        }
        if step
            .engineering
            .as_ref()
            .and_then(|expected| expected.same_object)
            == Some(true)
        {
            let mut ids: Vec<String> = answers
                .iter()
                .map(|answer| answer.object()["id"].to_string())
                .collect();
            ids.sort();
            ids.dedup();
            if ids.len() != 1 {
                engineering.push(format!("expected one object, the answers name {ids:?}"));
            }
        }
        if let Some(expected) = step.engineering.as_ref().and_then(|e| e.payouts) {
            let made_now = answers
                .first()
                .and_then(|answer| answer.body["payouts"].as_array())
                .map_or(0, Vec::len);
            if made_now != expected {
                engineering.push(format!("payouts: expected {expected}, got {made_now}"));
            }
        }
        note(Team::Engineering, engineering);
        if step.checks_ledger() {
            match check_ledger(target, step, &made).await {
                Ok(by_team) => {
                    for (team, differences) in by_team {
                        note(team, differences);
                    }
                }
                Err(reason) => note(Team::Engineering, vec![reason]),
            }
        }
    }
    Outcome {
        name: scenario.name.clone(),
        path: scenario.path.clone(),
        elapsed: started.elapsed(),
        verdicts,
    }
}

/// Does the step against the gateway; answers every answer it got (none for `settle` and
/// for a lost answer).
async fn act(
    target: &Target,
    index: usize,
    step: &Step,
    made: &mut Made,
) -> Result<Vec<Answer>, String> {
    let gateway = &target.gateway;
    let intent = || -> Result<String, String> {
        made.intents
            .get(step.payment_name())
            .cloned()
            .ok_or_else(|| format!("no payment `{}` was created", step.payment_name()))
    };
    let mut form: Vec<(String, String)> = Vec::new();
    let path = match step.kind {
        Kind::Settle => {
            if let Some(wait) = step.wait_ms {
                tokio::time::sleep(Duration::from_millis(wait)).await;
            }
            gateway.settle().await?;
            return Ok(Vec::new());
        }
        Kind::AdvanceClock => {
            form.push(("days".into(), step.days.unwrap_or(1).to_string()));
            "/sandbox/clock/advance".to_owned()
        }
        Kind::ImportPayoutReport => {
            made.imported = Some(import_payout_report(target, index, made).await?);
            return Ok(Vec::new());
        }
        Kind::Retrieve => {
            let path = match &step.refund {
                Some(name) => {
                    let refund = made
                        .refunds
                        .get(name)
                        .ok_or_else(|| format!("no refund `{name}` was made"))?;
                    format!("/v1/refunds/{refund}")
                }
                None => format!("/v1/payment_intents/{}", intent()?),
            };
            return Ok(vec![gateway.get(&path).await?]);
        }
        Kind::Create => {
            form.push(("amount".into(), step.amount.unwrap_or_default().to_string()));
            form.push(("currency".into(), step.currency.clone().unwrap_or_default()));
            if let Some(method) = &step.capture_method {
                form.push(("capture_method".into(), method.clone()));
            }
            if let Some(confirm) = step.confirm {
                form.push(("confirm".into(), confirm.to_string()));
            }
            form.extend(step.card.as_deref().map(card_fields).unwrap_or_default());
            "/v1/payment_intents".to_owned()
        }
        Kind::Confirm => {
            form.extend(step.card.as_deref().map(card_fields).unwrap_or_default());
            format!("/v1/payment_intents/{}/confirm", intent()?)
        }
        Kind::Authenticate => {
            let outcome = step.outcome.clone().unwrap_or_else(|| "success".into());
            form.push(("outcome".into(), outcome));
            format!("/sandbox/payment_intents/{}/authenticate", intent()?)
        }
        Kind::Capture => {
            if let Some(amount) = step.amount {
                form.push(("amount_to_capture".into(), amount.to_string()));
            }
            format!("/v1/payment_intents/{}/capture", intent()?)
        }
        Kind::Cancel => {
            if let Some(reason) = &step.cancellation_reason {
                form.push(("cancellation_reason".into(), reason.clone()));
            }
            format!("/v1/payment_intents/{}/cancel", intent()?)
        }
        Kind::Refund => {
            form.push(("payment_intent".into(), intent()?));
            if let Some(amount) = step.amount {
                form.push(("amount".into(), amount.to_string()));
            }
            "/v1/refunds".to_owned()
        }
        Kind::Evidence => {
            let dispute = gateway.dispute_of(&intent()?).await?;
            form.push((
                "evidence[uncategorized_text]".into(),
                step.evidence.clone().unwrap_or_default(),
            ));
            format!("/v1/disputes/{dispute}")
        }
    };
    let key = step
        .idempotency_key
        .as_ref()
        .map(|key| format!("{}-{index}-{key}", target.run_id));
    let mut copies = JoinSet::new();
    for _ in 0..step.times.unwrap_or(1) {
        let (gateway, path, form, key) = (gateway.clone(), path.clone(), form.clone(), key.clone());
        copies.spawn(async move { gateway.post(&path, &form, key.as_deref()).await });
    }
    let mut answers = Vec::new();
    while let Some(joined) = copies.join_next().await {
        answers.push(joined.map_err(|error| format!("a request task failed: {error}"))??);
    }
    if step.lose_answer {
        return Ok(Vec::new());
    }
    if let Some(answer) = answers.first() {
        remember(step, answer, made);
    }
    Ok(answers)
}

/// Names what the answer made: a created intent (declined ones too: a card error carries
/// its intent), a refund.
fn remember(step: &Step, answer: &Answer, made: &mut Made) {
    let id = answer.object()["id"].as_str().map(str::to_owned);
    match (step.kind, id) {
        (Kind::Create, Some(id)) => {
            made.intents.insert(step.payment_name().to_owned(), id);
        }
        (Kind::Refund, Some(id)) if answer.status == 200 => {
            let name = step.refund.clone().unwrap_or_else(|| "refund".into());
            made.refunds.insert(name, id);
        }
        (Kind::AdvanceClock, _) => made.payouts.extend(
            answer.body["payouts"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|payout| payout.as_str().map(str::to_owned)),
        ),
        _ => {}
    }
}

/// Downloads the report of every payout the scenario's clock advances made (one CSV, one
/// header) and imports it into the ledger, once webhooks settled so the ledger knows what
/// the report lists.
async fn import_payout_report(target: &Target, index: usize, made: &Made) -> Result<Value, String> {
    if made.payouts.is_empty() {
        return Err("no clock advance of this scenario made a payout".into());
    }
    target.gateway.settle().await?;
    let mut csv = String::new();
    for payout in &made.payouts {
        let report = target.gateway.payout_report(payout).await?;
        let mut lines = report.lines();
        let header = lines.next().unwrap_or_default();
        if csv.is_empty() {
            csv.push_str(header);
            csv.push('\n');
        }
        for line in lines.filter(|line| !line.is_empty()) {
            csv.push_str(line);
            csv.push('\n');
        }
    }
    let key = format!("{}-{index}-payout-report", target.run_id);
    target
        .ledger
        .import_payout_report(&csv, "payout_reconciliation.csv", &key)
        .await
}

/// Waits for webhooks to settle, then reads the ledger until every expectation of the step
/// holds or the deadline passes (answering the last differences).
async fn check_ledger(
    target: &Target,
    step: &Step,
    made: &Made,
) -> Result<Vec<(Team, Vec<String>)>, String> {
    target.gateway.settle().await?;
    let reads_payment = step.support.is_some()
        || step.finance.as_ref().is_some_and(Finance::checks_payment)
        || step
            .engineering
            .as_ref()
            .is_some_and(|engineering| !engineering.ledger_webhooks.is_empty());
    let intent = match made.intents.get(step.payment_name()) {
        Some(intent) => Some(intent),
        None if reads_payment => {
            return Err(format!("no payment `{}` was created", step.payment_name()))
        }
        None => None,
    };
    let deadline = Instant::now() + LEDGER_DEADLINE;
    loop {
        let mut by_team = match intent {
            Some(intent) if reads_payment => compare(step, &target.ledger.payment(intent).await?),
            _ => Vec::new(),
        };
        if let Some(finance) = &step.finance {
            by_team.push((Team::Finance, merchant_checks(target, finance, made).await?));
        }
        if by_team
            .iter()
            .all(|(_, differences)| differences.is_empty())
            || Instant::now() > deadline
        {
            return Ok(by_team);
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn compare(step: &Step, view: &LedgerView) -> Vec<(Team, Vec<String>)> {
    let mut by_team = vec![(
        Team::Engineering,
        checks::ledger_webhooks(step.engineering.as_ref(), view),
    )];
    if let Some(support) = &step.support {
        by_team.push((Team::Support, checks::support(support, view)));
    }
    if let Some(finance) = step.finance.as_ref().filter(|f| f.checks_payment()) {
        by_team.push((Team::Finance, checks::finance(finance, view)));
    }
    by_team
}

/// Finance's expectations beyond one payment: the imported report's run, the merchant's
/// balances.
async fn merchant_checks(
    target: &Target,
    finance: &Finance,
    made: &Made,
) -> Result<Vec<String>, String> {
    let mut differences = Vec::new();
    if let Some(expected) = &finance.reconciliation {
        match &made.imported {
            Some(imported) => differences.extend(checks::reconciliation(expected, imported)),
            None => differences.push("no payout report was imported".into()),
        }
    }
    if !finance.balance_changes.is_empty() {
        let merchant = finance.merchant();
        let now = target.ledger.balances(merchant).await?;
        let empty = BTreeMap::new();
        let before = made.balances_before.get(merchant).unwrap_or(&empty);
        differences.extend(checks::balance_changes(
            &finance.balance_changes,
            before,
            &now,
        ));
    }
    Ok(differences)
}

//! Running scenarios: each step against the gateway, then each team's expectations against
//! the gateway's answer (engineering) or the ledger once webhooks settled (support,
//! finance, and engineering's view of the ledger's webhook outcomes).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::Semaphore;
use tokio::task::JoinSet;

use super::checks;
use super::file::{Kind, Scenario, Step};
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

/// Runs every scenario (several at once) and answers their outcomes in the given order.
pub async fn run_all(target: &Target, scenarios: Vec<Scenario>) -> Vec<Outcome> {
    let limit = Arc::new(Semaphore::new(CONCURRENT_SCENARIOS));
    let mut tasks = JoinSet::new();
    let count = scenarios.len();
    for (index, scenario) in scenarios.into_iter().enumerate() {
        let target = target.clone();
        let limit = limit.clone();
        tasks.spawn(async move {
            let _permit = limit.acquire_owned().await;
            (index, run(&target, index, &scenario).await)
        });
    }
    let mut outcomes: Vec<Option<Outcome>> = vec![None; count];
    while let Some(joined) = tasks.join_next().await {
        if let Ok((index, outcome)) = joined {
            if let Some(slot) = outcomes.get_mut(index) {
                *slot = Some(outcome);
            }
        }
    }
    outcomes.into_iter().flatten().collect()
}

/// What one scenario has made so far: its payments' intents and its refunds, by name.
#[derive(Default)]
struct Made {
    intents: HashMap<String, String>,
    refunds: HashMap<String, String>,
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
    for (number, step) in scenario.steps.iter().enumerate() {
        let label = format!("step {} ({:?})", number + 1, step.kind).to_lowercase();
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
        _ => {}
    }
}

/// Waits for webhooks to settle, then reads the ledger until every expectation of the step
/// holds or the deadline passes (answering the last differences).
async fn check_ledger(
    target: &Target,
    step: &Step,
    made: &Made,
) -> Result<Vec<(Team, Vec<String>)>, String> {
    target.gateway.settle().await?;
    let intent = made
        .intents
        .get(step.payment_name())
        .ok_or_else(|| format!("no payment `{}` was created", step.payment_name()))?;
    let deadline = Instant::now() + LEDGER_DEADLINE;
    loop {
        let view = target.ledger.payment(intent).await?;
        let by_team = compare(step, &view);
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
    if let Some(finance) = &step.finance {
        by_team.push((Team::Finance, checks::finance(finance, view)));
    }
    by_team
}

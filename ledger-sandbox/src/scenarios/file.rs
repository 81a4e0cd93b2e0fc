//! Scenario files: TOML, read strictly (an unknown key is an error, so a misspelt
//! expectation cannot pass by checking nothing) and checked step by step before anything
//! runs.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::error::SandboxError;

/// Bounds on what a scenario file may ask for.
pub const MAX_FILE_BYTES: u64 = 64 * 1024;
pub const MAX_FILES: usize = 1_000;
pub const MAX_STEPS: usize = 64;
/// Concurrent copies of one request (a double-clicked checkout).
pub const MAX_TIMES: u32 = 8;
/// A `settle` step's pause before waiting for deliveries.
pub const MAX_WAIT_MS: u64 = 10_000;
/// How far one `advance_clock` step moves the sandbox clock.
pub const MAX_ADVANCE_DAYS: u32 = 31;
const MAX_TEXT: usize = 200;

/// One scenario, as its file says it.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Scenario {
    /// The matrix's row; the file's stem when absent.
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub description: String,
    pub steps: Vec<Step>,
    /// Where it was read from.
    #[serde(skip)]
    pub path: PathBuf,
}

/// What a step does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    /// Create a PaymentIntent (and confirm it with `card` when `confirm`).
    Create,
    /// Confirm the payment's intent, with `card` when given.
    Confirm,
    /// Complete 3D Secure: `outcome` success (default) or failure.
    Authenticate,
    /// Capture all of the authorization, or `amount`.
    Capture,
    /// Cancel (void) the intent.
    Cancel,
    /// Refund all that is refundable, or `amount`; `refund` names it for later steps.
    Refund,
    /// Submit `evidence` (`winning_evidence` or `losing_evidence`) on the payment's dispute.
    Evidence,
    /// Read the payment's intent, or the refund named `refund`, back from the gateway.
    Retrieve,
    /// Wait `wait_ms`, then for every webhook delivery to settle.
    Settle,
    /// Move the sandbox clock `days` ahead: funds become available and are paid out.
    AdvanceClock,
    /// Import the payout reconciliation report of the payouts this scenario's clock
    /// advances made into the ledger, as finance does.
    ImportPayoutReport,
}

/// A step as written: the action's fields, and what each team expects after it.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Step {
    #[serde(rename = "do")]
    pub kind: Kind,
    /// Which payment of the scenario (a name of its own); `payment` when absent.
    pub payment: Option<String>,
    /// Minor units, as Stripe counts (2000 is 20.00 USD).
    pub amount: Option<i64>,
    pub currency: Option<String>,
    /// A Stripe test token (`pm_card_visa`) or a test card number.
    pub card: Option<String>,
    pub confirm: Option<bool>,
    pub capture_method: Option<String>,
    /// Sent as `Idempotency-Key`, made unique to this run and scenario.
    pub idempotency_key: Option<String>,
    /// Send this many copies at once (a double click): every answer is checked.
    pub times: Option<u32>,
    /// Throw the answer away, as when the connection drops after the gateway acted.
    #[serde(default)]
    pub lose_answer: bool,
    /// 3D Secure's outcome: `success` or `failure`.
    pub outcome: Option<String>,
    /// A refund's name within the scenario.
    pub refund: Option<String>,
    pub evidence: Option<String>,
    pub cancellation_reason: Option<String>,
    pub wait_ms: Option<u64>,
    /// Days an `advance_clock` step moves the clock.
    pub days: Option<u32>,
    pub engineering: Option<Engineering>,
    pub support: Option<Support>,
    pub finance: Option<Finance>,
}

/// Engineering: what the gateway answered the step, and what the ledger made of its webhooks.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Engineering {
    /// Without it, any 2xx answer passes and anything else is a difference.
    pub http_status: Option<u16>,
    /// The answer's object `status` (`succeeded`, `requires_capture`, …).
    pub status: Option<String>,
    pub error_type: Option<String>,
    pub error_code: Option<String>,
    pub decline_code: Option<String>,
    pub amount_received: Option<i64>,
    pub amount_capturable: Option<i64>,
    pub amount_refunded: Option<i64>,
    /// Whether the gateway answered from a saved idempotent result.
    pub replayed: Option<bool>,
    /// Every copy (`times`) answered about the same object.
    pub same_object: Option<bool>,
    /// How many payouts an `advance_clock` step made.
    pub payouts: Option<usize>,
    /// The ledger's outcome of the newest delivery of each event type for this payment
    /// (`applied`, `duplicate`, `ignored`, `parked`, `conflict`, `rejected`).
    #[serde(default)]
    pub ledger_webhooks: BTreeMap<String, String>,
}

/// Support: the failure playbook's advice the ledger serves for the payment's decline.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Support {
    pub code: Option<String>,
    pub category: Option<String>,
    pub customer_message: Option<String>,
    pub retry: Option<String>,
    pub next_step: Option<String>,
    pub escalation: Option<String>,
    /// `false`: the payment must have no decline advice (it was not declined).
    pub advice: Option<bool>,
}

/// Finance: the ledger's payment, in the ledger's units (decimal major units, `"20.00"`).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Finance {
    pub status: Option<String>,
    pub amount: Option<String>,
    pub authorized: Option<String>,
    pub captured: Option<String>,
    pub capturable: Option<String>,
    pub refunded: Option<String>,
    pub refund_pending: Option<String>,
    pub refundable: Option<String>,
    pub disputed: Option<String>,
    pub decline_code: Option<String>,
    /// How many captures the ledger holds.
    pub captures: Option<usize>,
    /// Each refund's status, oldest first.
    pub refunds: Option<Vec<String>>,
    /// Each dispute's status.
    pub disputes: Option<Vec<String>>,
    /// The reconciliation run of the scenario's latest `import_payout_report` step.
    pub reconciliation: Option<Reconciliation>,
    /// How the merchant's balances moved since the scenario began, by `"CURRENCY account"`
    /// (`"USD bank" = "146.40"`; debits positive, as the ledger's `balances` answers). An
    /// account not named may have moved.
    #[serde(default)]
    pub balance_changes: BTreeMap<String, String>,
    /// Whose balances `balance_changes` reads; the ledger's default merchant (`default`)
    /// when absent.
    pub merchant: Option<String>,
}

/// Finance: what an imported payout report found.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Reconciliation {
    pub lines: Option<i64>,
    pub matched_lines: Option<i64>,
    pub exceptions: Option<i64>,
    pub payouts_proven: Option<i64>,
    pub payouts_unproven: Option<i64>,
    pub batches_recorded: Option<i64>,
    /// Every exception's class (`MISSING_FROM_LEDGER`, …), in report order.
    pub exception_classes: Option<Vec<String>>,
}

impl Finance {
    /// Whether it names anything of the step's payment (the rest is the merchant's).
    pub fn checks_payment(&self) -> bool {
        self.status.is_some()
            || self.amount.is_some()
            || self.authorized.is_some()
            || self.captured.is_some()
            || self.capturable.is_some()
            || self.refunded.is_some()
            || self.refund_pending.is_some()
            || self.refundable.is_some()
            || self.disputed.is_some()
            || self.decline_code.is_some()
            || self.captures.is_some()
            || self.refunds.is_some()
            || self.disputes.is_some()
    }

    /// The merchant whose balances it reads.
    pub fn merchant(&self) -> &str {
        self.merchant.as_deref().unwrap_or(DEFAULT_MERCHANT)
    }
}

/// The ledger's merchant of gateway events that name none.
pub const DEFAULT_MERCHANT: &str = "default";

impl Kind {
    /// The name a scenario file gives it.
    pub fn name(self) -> &'static str {
        match self {
            Kind::Create => "create",
            Kind::Confirm => "confirm",
            Kind::Authenticate => "authenticate",
            Kind::Capture => "capture",
            Kind::Cancel => "cancel",
            Kind::Refund => "refund",
            Kind::Evidence => "evidence",
            Kind::Retrieve => "retrieve",
            Kind::Settle => "settle",
            Kind::AdvanceClock => "advance_clock",
            Kind::ImportPayoutReport => "import_payout_report",
        }
    }
}

impl Step {
    pub fn payment_name(&self) -> &str {
        self.payment.as_deref().unwrap_or("payment")
    }

    /// Whether the step names the ledger's side (so the runner waits for webhooks first).
    pub fn checks_ledger(&self) -> bool {
        self.support.is_some()
            || self.finance.is_some()
            || self
                .engineering
                .as_ref()
                .is_some_and(|engineering| !engineering.ledger_webhooks.is_empty())
    }

    /// The fields each kind takes; any other is refused, so nothing written is ignored.
    fn check(&self) -> Result<(), String> {
        let given: Vec<(&str, bool)> = vec![
            ("amount", self.amount.is_some()),
            ("currency", self.currency.is_some()),
            ("card", self.card.is_some()),
            ("confirm", self.confirm.is_some()),
            ("capture_method", self.capture_method.is_some()),
            ("idempotency_key", self.idempotency_key.is_some()),
            ("times", self.times.is_some()),
            ("lose_answer", self.lose_answer),
            ("outcome", self.outcome.is_some()),
            ("refund", self.refund.is_some()),
            ("evidence", self.evidence.is_some()),
            ("cancellation_reason", self.cancellation_reason.is_some()),
            ("wait_ms", self.wait_ms.is_some()),
            ("days", self.days.is_some()),
        ];
        let request = ["idempotency_key", "times", "lose_answer"];
        let allowed: Vec<&str> = match self.kind {
            Kind::Create => [
                &["amount", "currency", "card", "confirm", "capture_method"][..],
                &request,
            ]
            .concat(),
            Kind::Confirm => [&["card"][..], &request].concat(),
            Kind::Authenticate => [&["outcome"][..], &request].concat(),
            Kind::Capture => [&["amount"][..], &request].concat(),
            Kind::Cancel => [&["cancellation_reason"][..], &request].concat(),
            Kind::Refund => [&["amount", "refund"][..], &request].concat(),
            Kind::Evidence => [&["evidence"][..], &request].concat(),
            Kind::Retrieve => vec!["refund"],
            Kind::Settle => vec!["wait_ms"],
            Kind::AdvanceClock => vec!["days"],
            Kind::ImportPayoutReport => vec![],
        };
        if let Some((field, _)) = given
            .iter()
            .find(|(field, present)| *present && !allowed.contains(field))
        {
            return Err(format!(
                "`{field}` does not apply to `{}`",
                self.kind.name()
            ));
        }
        if self.kind == Kind::Create && (self.amount.is_none() || self.currency.is_none()) {
            return Err("`create` needs `amount` and `currency`".into());
        }
        if self.kind == Kind::AdvanceClock
            && !self
                .days
                .is_some_and(|days| (1..=MAX_ADVANCE_DAYS).contains(&days))
        {
            return Err(format!(
                "`advance_clock` needs `days`, 1 to {MAX_ADVANCE_DAYS}"
            ));
        }
        if self.kind == Kind::Evidence && self.evidence.is_none() {
            return Err("`evidence` needs `evidence`".into());
        }
        if self.amount.is_some_and(|amount| amount <= 0) {
            return Err("`amount` must be positive (minor units)".into());
        }
        if self
            .times
            .is_some_and(|times| times == 0 || times > MAX_TIMES)
        {
            return Err(format!("`times` must be 1 to {MAX_TIMES}"));
        }
        if self.times.is_some_and(|times| times > 1) && self.lose_answer {
            return Err("`times` and `lose_answer` do not go together".into());
        }
        let answer_expected = self.engineering.as_ref().is_some_and(|engineering| {
            engineering.http_status.is_some()
                || engineering.payouts.is_some()
                || engineering.status.is_some()
                || engineering.replayed.is_some()
                || engineering.error_code.is_some()
        });
        if self.lose_answer && answer_expected {
            return Err("a lost answer cannot be checked: expect it on the retry".into());
        }
        if self.wait_ms.is_some_and(|wait| wait > MAX_WAIT_MS) {
            return Err(format!("`wait_ms` must be at most {MAX_WAIT_MS}"));
        }
        if let Some(outcome) = &self.outcome {
            if !matches!(outcome.as_str(), "success" | "failure") {
                return Err("`outcome` is `success` or `failure`".into());
            }
        }
        let texts = [
            self.payment.as_deref(),
            self.currency.as_deref(),
            self.card.as_deref(),
            self.capture_method.as_deref(),
            self.idempotency_key.as_deref(),
            self.refund.as_deref(),
            self.evidence.as_deref(),
            self.cancellation_reason.as_deref(),
        ];
        if texts.iter().flatten().any(|text| text.len() > MAX_TEXT) {
            return Err(format!("a value is longer than {MAX_TEXT} characters"));
        }
        Ok(())
    }
}

impl Scenario {
    /// Whether it moves the sandbox clock: the clock and its payouts are the whole
    /// sandbox's, so such a scenario runs alone.
    pub fn moves_clock(&self) -> bool {
        self.steps
            .iter()
            .any(|step| step.kind == Kind::AdvanceClock)
    }

    /// Parses and checks one file's text; `path` names it in errors and gives the default
    /// name.
    pub fn parse(text: &str, path: &Path) -> Result<Scenario, SandboxError> {
        let invalid = |message: String| SandboxError::ScenarioInvalid {
            path: path.to_owned(),
            message,
        };
        let mut scenario: Scenario =
            toml::from_str(text).map_err(|error| invalid(error.to_string()))?;
        scenario.path = path.to_owned();
        if scenario.name.is_empty() {
            scenario.name = path
                .file_stem()
                .map(|stem| stem.to_string_lossy().into_owned())
                .unwrap_or_default();
        }
        if scenario.name.len() > MAX_TEXT {
            return Err(invalid(format!(
                "the name is longer than {MAX_TEXT} characters"
            )));
        }
        if scenario.steps.is_empty() || scenario.steps.len() > MAX_STEPS {
            return Err(invalid(format!("a scenario has 1 to {MAX_STEPS} steps")));
        }
        for (index, step) in scenario.steps.iter().enumerate() {
            step.check()
                .map_err(|message| invalid(format!("step {}: {message}", index + 1)))?;
        }
        Ok(scenario)
    }

    pub fn read(path: &Path) -> Result<Scenario, SandboxError> {
        let unreadable = |source| SandboxError::ScenarioUnreadable {
            path: path.to_owned(),
            source,
        };
        let size = std::fs::metadata(path).map_err(unreadable)?.len();
        if size > MAX_FILE_BYTES {
            return Err(SandboxError::ScenarioInvalid {
                path: path.to_owned(),
                message: format!("larger than {MAX_FILE_BYTES} bytes"),
            });
        }
        let text = std::fs::read_to_string(path).map_err(unreadable)?;
        Scenario::parse(&text, path)
    }
}

/// Every scenario under `paths`: a file as it is, a directory's `*.toml` files (not its
/// subdirectories) in name order.
pub fn load(paths: &[PathBuf]) -> Result<Vec<Scenario>, SandboxError> {
    let mut files = Vec::new();
    for path in paths {
        if path.is_dir() {
            let unreadable = |source| SandboxError::ScenarioUnreadable {
                path: path.clone(),
                source,
            };
            let mut found = Vec::new();
            for entry in std::fs::read_dir(path).map_err(unreadable)? {
                let entry_path = entry.map_err(unreadable)?.path();
                if entry_path.is_file() && entry_path.extension().is_some_and(|ext| ext == "toml") {
                    found.push(entry_path);
                }
            }
            found.sort();
            files.extend(found);
        } else {
            files.push(path.clone());
        }
        if files.len() > MAX_FILES {
            return Err(SandboxError::TooManyScenarios { max: MAX_FILES });
        }
    }
    if files.is_empty() {
        return Err(SandboxError::NoScenarios);
    }
    files.iter().map(|file| Scenario::read(file)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Scenario, SandboxError> {
        Scenario::parse(text, Path::new("scenarios/example.toml"))
    }

    #[test]
    fn a_scenario_reads_with_its_expectations_and_takes_its_name_from_the_file() {
        let scenario = parse(
            r#"
            [[steps]]
            do = "create"
            amount = 2000
            currency = "usd"
            card = "pm_card_visa"
            confirm = true
            engineering = { status = "succeeded" }
            [[steps]]
            do = "settle"
            [steps.finance]
            status = "CAPTURED"
            captured = "20.00"
            "#,
        )
        .unwrap();
        assert_eq!(scenario.name, "example");
        assert_eq!(scenario.steps.len(), 2);
        assert!(scenario.steps[1].checks_ledger());
        assert_eq!(
            scenario.steps[1]
                .finance
                .as_ref()
                .unwrap()
                .captured
                .as_deref(),
            Some("20.00")
        );
    }

    #[test]
    fn misspelt_keys_and_fields_of_another_step_are_refused() {
        let misspelt =
            parse("[[steps]]\ndo = \"settle\"\n[steps.finance]\nstatuss = \"CAPTURED\"\n");
        assert!(matches!(
            misspelt,
            Err(SandboxError::ScenarioInvalid { .. })
        ));
        let wrong_step = parse("[[steps]]\ndo = \"settle\"\namount = 5\n").unwrap_err();
        assert!(
            wrong_step.to_string().contains("`amount` does not apply"),
            "{wrong_step}"
        );
        let no_amount = parse("[[steps]]\ndo = \"create\"\ncurrency = \"usd\"\n").unwrap_err();
        assert!(
            no_amount.to_string().contains("needs `amount`"),
            "{no_amount}"
        );
        assert!(parse("steps = []").is_err());
        let too_many =
            parse("[[steps]]\ndo = \"create\"\namount = 1\ncurrency = \"usd\"\ntimes = 99\n");
        assert!(too_many.is_err());
    }

    #[test]
    fn a_clock_advance_needs_its_days_and_makes_the_scenario_run_alone() {
        let payout_day = parse(
            r#"
            [[steps]]
            do = "advance_clock"
            days = 2
            engineering = { payouts = 1 }
            [[steps]]
            do = "import_payout_report"
            [steps.finance.reconciliation]
            exceptions = 0
            exception_classes = []
            [steps.finance.balance_changes]
            "USD bank" = "146.40"
            "#,
        )
        .unwrap();
        assert!(payout_day.moves_clock());
        let finance = payout_day.steps[1].finance.as_ref().unwrap();
        assert!(!finance.checks_payment());
        assert_eq!(finance.merchant(), "default");
        assert!(!parse("[[steps]]\ndo = \"settle\"\n").unwrap().moves_clock());
        let no_days = parse("[[steps]]\ndo = \"advance_clock\"\n").unwrap_err();
        assert!(no_days.to_string().contains("needs `days`"), "{no_days}");
        assert!(parse("[[steps]]\ndo = \"advance_clock\"\ndays = 400\n").is_err());
        let misplaced = parse("[[steps]]\ndo = \"import_payout_report\"\ndays = 1\n").unwrap_err();
        assert!(
            misplaced
                .to_string()
                .contains("`days` does not apply to `import_payout_report`"),
            "{misplaced}"
        );
    }
}

//! Chaos profiles: how hostile delivery is, drawn from a seeded generator so that a run is
//! reproducible from `--seed` (the plan of every delivery; the network's own timing aside).
//!
//! | profile | what happens to each event's delivery |
//! |---|---|
//! | `none` | sent at once, once |
//! | `delays` | held 0–400 ms, in emission order (later events wait for earlier ones) |
//! | `duplicates` | sent, then sent again 0–200 ms later (a third copy one time in four) |
//! | `reorder` | held 0–1000 ms each, independently, so later events overtake earlier ones |
//! | `drop-first` | its first attempt is lost before reaching the endpoint; the retry delivers it |
//! | `hostile` | `reorder`, plus a duplicate half the time and a lost first attempt half the time |

use std::str::FromStr;
use std::time::Duration;

use rand::rngs::StdRng;
use rand::Rng;

use crate::error::SandboxError;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Chaos {
    #[default]
    None,
    Delays,
    Duplicates,
    Reorder,
    DropFirst,
    Hostile,
}

impl FromStr for Chaos {
    type Err = SandboxError;

    fn from_str(text: &str) -> Result<Chaos, SandboxError> {
        match text {
            "none" => Ok(Chaos::None),
            "delays" => Ok(Chaos::Delays),
            "duplicates" => Ok(Chaos::Duplicates),
            "reorder" => Ok(Chaos::Reorder),
            "drop-first" => Ok(Chaos::DropFirst),
            "hostile" => Ok(Chaos::Hostile),
            other => Err(SandboxError::UnknownChaosProfile(other.to_owned())),
        }
    }
}

impl std::fmt::Display for Chaos {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.write_str(match self {
            Chaos::None => "none",
            Chaos::Delays => "delays",
            Chaos::Duplicates => "duplicates",
            Chaos::Reorder => "reorder",
            Chaos::DropFirst => "drop-first",
            Chaos::Hostile => "hostile",
        })
    }
}

/// What happens to one event's delivery to one endpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    /// Held this long before the first attempt.
    pub delay: Duration,
    /// Whether the dispatcher waits out `delay` before handling the next event (keeps order).
    pub in_order: bool,
    /// Extra deliveries of the same event, each after this delay from the first.
    pub duplicates: Vec<Duration>,
    /// The first attempt is lost on the way.
    pub drop_first: bool,
}

impl Chaos {
    pub fn plan(self, rng: &mut StdRng) -> Plan {
        let mut plan = Plan {
            delay: Duration::ZERO,
            in_order: false,
            duplicates: Vec::new(),
            drop_first: false,
        };
        let millis = |rng: &mut StdRng, max: u64| Duration::from_millis(rng.random_range(0..=max));
        match self {
            Chaos::None => {}
            Chaos::Delays => {
                plan.delay = millis(rng, 400);
                plan.in_order = true;
            }
            Chaos::Duplicates => {
                plan.duplicates.push(millis(rng, 200));
                if rng.random_ratio(1, 4) {
                    plan.duplicates.push(millis(rng, 200));
                }
            }
            Chaos::Reorder => plan.delay = millis(rng, 1000),
            Chaos::DropFirst => plan.drop_first = true,
            Chaos::Hostile => {
                plan.delay = millis(rng, 1000);
                if rng.random_bool(0.5) {
                    plan.duplicates.push(millis(rng, 500));
                }
                plan.drop_first = rng.random_bool(0.5);
            }
        }
        plan
    }
}

#[cfg(test)]
mod tests {
    use rand::SeedableRng;

    use super::*;

    #[test]
    fn the_same_seed_plans_the_same_deliveries() {
        let plans = |seed| {
            let mut rng = StdRng::seed_from_u64(seed);
            (0..20)
                .map(|_| Chaos::Hostile.plan(&mut rng))
                .collect::<Vec<_>>()
        };
        assert_eq!(plans(7), plans(7));
        assert_ne!(plans(7), plans(8));
        for name in [
            "none",
            "delays",
            "duplicates",
            "reorder",
            "drop-first",
            "hostile",
        ] {
            assert_eq!(name.parse::<Chaos>().unwrap().to_string(), name);
        }
        assert!("loud".parse::<Chaos>().is_err());
    }
}

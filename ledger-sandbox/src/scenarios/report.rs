//! What a run reports: the matrix (scenario × team, pass or fail) with every difference
//! under it, and JUnit XML (one test case per scenario and team) for CI.

use std::fmt::Write as _;

use super::run::{Outcome, Team};

/// The matrix as text: a row per scenario, a column per team (`pass`, `FAIL`, or `-` when
/// the scenario expects nothing of the team), then what differed.
pub fn matrix(outcomes: &[Outcome]) -> String {
    let width = outcomes
        .iter()
        .map(|outcome| outcome.name.chars().count())
        .max()
        .unwrap_or(0)
        .max("scenario".len());
    let mut text = format!("{:<width$}", "scenario");
    for team in Team::ALL {
        let _ = write!(text, "  {:<11}", team.name());
    }
    text.push_str("  seconds\n");
    for outcome in outcomes {
        let _ = write!(text, "{:<width$}", outcome.name);
        for team in Team::ALL {
            let verdict = outcome.verdict(team);
            let cell = match (verdict.checked, verdict.passed()) {
                (_, false) => "FAIL",
                (true, true) => "pass",
                (false, true) => "-",
            };
            let _ = write!(text, "  {cell:<11}");
        }
        let _ = writeln!(text, "  {:.1}", outcome.elapsed.as_secs_f64());
    }
    let failed: Vec<&Outcome> = outcomes.iter().filter(|o| !o.passed()).collect();
    if !failed.is_empty() {
        text.push_str("\nwhat differed:\n");
        for outcome in failed {
            for team in Team::ALL {
                for difference in &outcome.verdict(team).differences {
                    let _ = writeln!(text, "  {} / {}: {difference}", outcome.name, team.name());
                }
            }
        }
    }
    let passed = outcomes.iter().filter(|o| o.passed()).count();
    let _ = writeln!(text, "\n{passed} of {} scenarios passed", outcomes.len());
    text
}

/// JUnit XML: a test suite per scenario, a test case per team; a team the scenario expects
/// nothing of is skipped.
pub fn junit(outcomes: &[Outcome]) -> String {
    let cases = outcomes.len() * Team::ALL.len();
    let failures: usize = outcomes
        .iter()
        .map(|outcome| {
            Team::ALL
                .iter()
                .filter(|team| !outcome.verdict(**team).passed())
                .count()
        })
        .sum();
    let mut xml = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    let _ = writeln!(
        xml,
        "<testsuites name=\"ledger scenarios\" tests=\"{cases}\" failures=\"{failures}\">"
    );
    for outcome in outcomes {
        let failed = Team::ALL
            .iter()
            .filter(|team| !outcome.verdict(**team).passed())
            .count();
        let skipped = Team::ALL
            .iter()
            .filter(|team| !outcome.verdict(**team).checked)
            .count();
        let _ = writeln!(
            xml,
            "  <testsuite name=\"{}\" tests=\"3\" failures=\"{failed}\" skipped=\"{skipped}\" time=\"{:.3}\" file=\"{}\">",
            escape(&outcome.name),
            outcome.elapsed.as_secs_f64(),
            escape(&outcome.path.display().to_string()),
        );
        for team in Team::ALL {
            let verdict = outcome.verdict(team);
            let _ = write!(
                xml,
                "    <testcase classname=\"{}\" name=\"{}\"",
                escape(&outcome.name),
                team.name()
            );
            if !verdict.passed() {
                let _ = writeln!(
                    xml,
                    ">\n      <failure message=\"{}\">{}</failure>\n    </testcase>",
                    escape(&verdict.differences[0]),
                    escape(&verdict.differences.join("\n"))
                );
            } else if !verdict.checked {
                xml.push_str(">\n      <skipped message=\"no expectations for this team\"/>\n    </testcase>\n");
            } else {
                xml.push_str("/>\n");
            }
        }
        xml.push_str("  </testsuite>\n");
    }
    xml.push_str("</testsuites>\n");
    xml
}

/// XML's five special characters, and control characters XML 1.0 cannot hold.
fn escape(text: &str) -> String {
    let mut escaped = String::with_capacity(text.len());
    for character in text.chars() {
        match character {
            '&' => escaped.push_str("&amp;"),
            '<' => escaped.push_str("&lt;"),
            '>' => escaped.push_str("&gt;"),
            '"' => escaped.push_str("&quot;"),
            '\'' => escaped.push_str("&apos;"),
            '\n' | '\t' | '\r' => escaped.push(character),
            control if control.is_control() => escaped.push('\u{FFFD}'),
            other => escaped.push(other),
        }
    }
    escaped
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scenarios::run::Verdict;
    use std::time::Duration;

    fn outcome(name: &str, finance: Vec<String>) -> Outcome {
        Outcome {
            name: name.into(),
            path: format!("scenarios/{name}.toml").into(),
            elapsed: Duration::from_millis(1500),
            verdicts: [
                Verdict {
                    checked: true,
                    differences: vec![],
                },
                Verdict {
                    checked: false,
                    differences: vec![],
                },
                Verdict {
                    checked: true,
                    differences: finance,
                },
            ],
        }
    }

    #[test]
    fn the_matrix_marks_each_team_and_lists_what_differed() {
        let text = matrix(&[
            outcome("happy_path", vec![]),
            outcome(
                "broken",
                vec!["step 2 (settle): status: expected \"X\", got \"Y\"".into()],
            ),
        ]);
        assert!(
            text.contains("happy_path  pass         -            pass"),
            "{text}"
        );
        assert!(
            text.contains("broken      pass         -            FAIL"),
            "{text}"
        );
        assert!(text.contains("broken / finance: step 2 (settle)"), "{text}");
        assert!(text.contains("1 of 2 scenarios passed"), "{text}");
    }

    #[test]
    fn junit_escapes_what_it_quotes() {
        let xml = junit(&[outcome(
            "a<b>&\"c\"",
            vec!["got <none> & 'nothing'\u{1}".into()],
        )]);
        assert!(
            xml.contains("name=\"a&lt;b&gt;&amp;&quot;c&quot;\""),
            "{xml}"
        );
        assert!(
            xml.contains("got &lt;none&gt; &amp; &apos;nothing&apos;\u{FFFD}"),
            "{xml}"
        );
        assert!(xml.contains("tests=\"3\" failures=\"1\""), "{xml}");
        assert!(xml.contains("<skipped"), "{xml}");
    }
}

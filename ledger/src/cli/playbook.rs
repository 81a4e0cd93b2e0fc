//! `ledger playbook`: the failure playbook printed for support to read (Markdown), to load
//! into a spreadsheet (CSV) or a tool (JSON). It needs no database: it is data of the core.

use std::io::Write;

use clap::ValueEnum;
use ledger_core::playbook::{Advice, PLAYBOOK};

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    Markdown,
    Csv,
    Json,
}

/// Prints the playbook on standard output. It is rendered whole first (it is small), so the
/// only write that can fail is the last one, and a reader that closes the pipe early
/// (`ledger playbook | head`) ends it quietly: it asked for no more.
pub fn print(format: Format) -> anyhow::Result<()> {
    let rendered = render(format)?;
    let mut out = std::io::stdout().lock();
    match out.write_all(&rendered).and_then(|()| out.flush()) {
        Err(error) if error.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        other => Ok(other?),
    }
}

fn render(format: Format) -> anyhow::Result<Vec<u8>> {
    let mut out = Vec::new();
    match format {
        Format::Markdown => write_markdown(&mut out, PLAYBOOK)?,
        Format::Csv => {
            let mut writer = csv::Writer::from_writer(&mut out);
            for row in PLAYBOOK {
                writer.serialize(row)?;
            }
            writer.flush()?;
        }
        Format::Json => {
            serde_json::to_writer_pretty(&mut out, PLAYBOOK)?;
            writeln!(out)?;
        }
    }
    Ok(out)
}

fn write_markdown(out: &mut impl Write, rows: &[Advice]) -> std::io::Result<()> {
    writeln!(out, "# Failure playbook")?;
    writeln!(out)?;
    writeln!(
        out,
        "What each decline or error code means, what to tell the customer (word for word), \
         whether a retry may help, what the customer should do next and who to escalate to. \
         Fraud-related codes get the generic decline message: never tell a customer why."
    )?;
    writeln!(out)?;
    writeln!(
        out,
        "| code | category | tell the customer | retry | next step | escalate to | what it means |"
    )?;
    writeln!(out, "|---|---|---|---|---|---|---|")?;
    for row in rows {
        writeln!(
            out,
            "| `{}` | {} | {} | {} | {} | {} | {} |",
            row.code,
            row.category.as_str(),
            cell(row.customer_message),
            row.retry.explained(),
            row.next_step.as_str(),
            row.escalation.as_str(),
            cell(row.meaning),
        )?;
    }
    Ok(())
}

/// Text inside a Markdown table cell: a `|` would end the cell.
fn cell(text: &str) -> String {
    text.replace('|', "\\|")
}

//! The `ledger` binary: parses the command line, opens the database, runs the subcommand.

use clap::Parser;
use ledger_api::cli::{Cli, Command};
use ledger_api::database::Database;

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn init_logging(json: bool) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,sqlx=warn"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    if json {
        builder.json().init();
    } else {
        builder.init();
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    init_logging(cli.log_json);
    let database = Database::open()?;
    let outcome = run(&database, cli.command).await;
    database.close()?;
    outcome
}

async fn run(database: &Database, command: Command) -> anyhow::Result<()> {
    let pool = database.connect().await?;
    match command {
        Command::Serve { bind } => ledger_api::cli::serve::run(pool, bind).await,
        Command::Migrate => {
            println!("migrations are current");
            Ok(())
        }
        Command::Keys { command } => ledger_api::cli::keys::run(&pool, command).await,
        Command::Replay {
            to_position,
            as_of,
            projection,
        } => ledger_api::cli::audit::replay(&pool, to_position, as_of, projection).await,
        Command::Verify => ledger_api::cli::audit::verify(&pool).await,
        Command::Demo { payments } => ledger_api::cli::demo::run(pool, payments).await,
        Command::Bench {
            clients,
            seconds,
            store_writers,
        } => {
            ledger_api::cli::bench::run(pool, database.url(), clients, seconds, store_writers).await
        }
        Command::Reconcile { command } => ledger_api::cli::reconcile::run(&pool, command).await,
        Command::Export {
            from_position,
            to_position,
        } => ledger_api::cli::audit::export(&pool, from_position, to_position).await,
    }
}

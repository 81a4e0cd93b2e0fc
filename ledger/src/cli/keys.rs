//! `ledger keys create|list|revoke`.

use clap::Subcommand;
use ledger_core::ids::Environment;
use sqlx::PgPool;
use uuid::Uuid;

use ledger_api::auth::{create_key, list_keys, revoke_key, Role};

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum EnvironmentArgument {
    Test,
    Live,
}

impl From<EnvironmentArgument> for Environment {
    fn from(argument: EnvironmentArgument) -> Self {
        match argument {
            EnvironmentArgument::Test => Environment::Test,
            EnvironmentArgument::Live => Environment::Live,
        }
    }
}

#[derive(Debug, Subcommand)]
pub enum KeysCommand {
    /// Create a key; it is printed once, as the last line, and never shown again.
    Create {
        /// service, support, finance, auditor or admin.
        #[arg(long)]
        role: Role,
        /// The environment the key sees and changes: test or live.
        #[arg(long = "env", value_enum)]
        environment: EnvironmentArgument,
        /// A name to tell keys apart.
        #[arg(long, default_value = "unnamed")]
        name: String,
    },
    /// List keys (their prefixes, never the keys).
    List,
    /// Revoke a key by its id; requests with it are refused from now on.
    Revoke { id: Uuid },
}

pub async fn run(pool: &PgPool, command: KeysCommand) -> anyhow::Result<()> {
    match command {
        KeysCommand::Create {
            role,
            environment,
            name,
        } => {
            let (key, record) = create_key(pool, role, environment.into(), &name).await?;
            println!(
                "created key {} ({}, {}, {:?}); store it now, it will not be shown again:",
                record.id, record.role, record.environment, record.name
            );
            println!("{}", key.reveal());
        }
        KeysCommand::List => {
            for key in list_keys(pool).await? {
                let status = match key.revoked_at {
                    Some(at) => format!("revoked {}", at.to_rfc3339()),
                    None => "active".to_owned(),
                };
                println!(
                    "{}  {}…  {:<8} {:<4}  {:<20} created {}  {}",
                    key.id,
                    key.key_prefix,
                    key.role,
                    key.environment,
                    key.name,
                    key.created_at.to_rfc3339(),
                    status
                );
            }
        }
        KeysCommand::Revoke { id } => {
            revoke_key(pool, id).await?;
            println!("revoked key {id}");
        }
    }
    Ok(())
}

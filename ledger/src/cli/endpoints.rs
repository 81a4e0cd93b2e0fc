//! `ledger endpoints create|list|disable|rotate|deliveries|replay`: outbound notification
//! endpoints from the command line, as the owner, through the same store as the API.

use clap::Subcommand;
use ledger_core::ids::Environment;
use ledger_notify::{deliveries, Endpoint, Endpoints, NewEndpoint};
use sqlx::PgPool;
use uuid::Uuid;

use super::keys::EnvironmentArgument;

#[derive(Debug, Subcommand)]
pub enum EndpointsCommand {
    /// Register an endpoint; its secret is printed once, as the last line.
    Create {
        #[arg(long = "env", value_enum)]
        environment: EnvironmentArgument,
        /// https://… (http://… too in test mode).
        #[arg(long)]
        url: String,
        /// A notification type, repeatable (`payment.captured`, …), or `*` for all.
        #[arg(long = "event-type", required = true)]
        event_types: Vec<String>,
        #[arg(long)]
        description: Option<String>,
        /// Makes a retry of the same command answer with the same endpoint.
        #[arg(long)]
        idempotency_key: Option<String>,
    },
    /// List an environment's endpoints.
    List {
        #[arg(long = "env", value_enum)]
        environment: EnvironmentArgument,
    },
    /// Stop sending to an endpoint.
    Disable {
        #[arg(long = "env", value_enum)]
        environment: EnvironmentArgument,
        id: Uuid,
    },
    /// Give an endpoint a new secret (printed once); the old one signs too for 24 hours.
    Rotate {
        #[arg(long = "env", value_enum)]
        environment: EnvironmentArgument,
        id: Uuid,
    },
    /// An endpoint's latest deliveries.
    Deliveries {
        #[arg(long = "env", value_enum)]
        environment: EnvironmentArgument,
        id: Uuid,
        #[arg(long, default_value_t = 20)]
        first: i64,
    },
    /// Send an endpoint's notifications of a range of log positions again.
    Replay {
        #[arg(long = "env", value_enum)]
        environment: EnvironmentArgument,
        id: Uuid,
        #[arg(long)]
        from_position: u64,
        #[arg(long)]
        to_position: u64,
    },
}

fn print(endpoint: &Endpoint) {
    println!(
        "{}  {:<8}  {}  {}  {}",
        endpoint.id,
        endpoint.status.as_str(),
        endpoint.url,
        endpoint.event_types.join(","),
        endpoint.description
    );
}

pub async fn run(pool: &PgPool, command: EndpointsCommand) -> anyhow::Result<()> {
    // The command line is the operator's: private targets are theirs to allow, as the server
    // allows them with LEDGER_NOTIFY_ALLOW_PRIVATE_TARGETS.
    let policy = crate::config::notify_sender_options()?.policy;
    let endpoints = Endpoints::new(pool.clone(), policy);
    match command {
        EndpointsCommand::Create {
            environment,
            url,
            event_types,
            description,
            idempotency_key,
        } => {
            let created = endpoints
                .create(
                    environment.into(),
                    NewEndpoint {
                        idempotency_key: idempotency_key
                            .unwrap_or_else(|| Uuid::new_v4().to_string()),
                        url,
                        event_types,
                        description,
                    },
                )
                .await?;
            print(&created.endpoint);
            println!("its signing secret; store it now, it will not be shown again:");
            println!("{}", created.secret);
        }
        EndpointsCommand::List { environment } => {
            for endpoint in endpoints.list(environment.into()).await? {
                print(&endpoint);
            }
        }
        EndpointsCommand::Disable { environment, id } => {
            print(&endpoints.disable(environment.into(), id).await?);
        }
        EndpointsCommand::Rotate { environment, id } => {
            let rotated = endpoints.rotate_secret(environment.into(), id).await?;
            println!(
                "rotated; the previous secret also signs until {}. The new secret:",
                rotated.previous_secret_expires_at.to_rfc3339()
            );
            println!("{}", rotated.secret);
        }
        EndpointsCommand::Deliveries {
            environment,
            id,
            first,
        } => {
            let environment: Environment = environment.into();
            for delivery in deliveries::list(pool, environment, id, first, None).await? {
                println!(
                    "{}  {}  position {}  {:<30} {:<9} attempts {}  last {}  {} ms  next {}",
                    delivery.delivery_id,
                    delivery.notification_id,
                    delivery.position,
                    delivery.notification_type,
                    delivery.status,
                    delivery.attempts,
                    delivery
                        .last_status_code
                        .map_or_else(|| "-".to_owned(), |code| code.to_string()),
                    delivery.last_latency_ms.unwrap_or(0),
                    delivery
                        .next_attempt_at
                        .map_or_else(|| "-".to_owned(), |at| at.to_rfc3339()),
                );
            }
        }
        EndpointsCommand::Replay {
            environment,
            id,
            from_position,
            to_position,
        } => {
            let queued =
                deliveries::replay(pool, environment.into(), id, from_position, to_position)
                    .await?;
            println!("queued {queued} notifications again");
        }
    }
    Ok(())
}

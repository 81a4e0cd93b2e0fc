//! `ledger serve`: the HTTP server, until Ctrl-C or SIGTERM, then a clean drain.

use std::net::SocketAddr;

use anyhow::Context as _;
use ledger_api::server::application;
use sqlx::PgPool;

pub async fn run(pool: PgPool, bind: SocketAddr, shutdown: ShutdownSignal) -> anyhow::Result<()> {
    let (stop_projections, projections_stopped) = tokio::sync::watch::channel(false);
    let projector = tokio::spawn(ledger_projections::Projector::live(pool.clone()).follow(
        async move {
            let mut stopped = projections_stopped;
            let _ = stopped.wait_for(|stop| *stop).await;
        },
    ));
    let (state, routes) = application(pool, crate::config::server_config()?)?;
    let routes = routes.merge(ledger_console::router(ledger_console::ConsoleState::new(
        state.app.pool.clone(),
        state.app.handler.clone(),
    )));
    let sweep = state.app.webhooks.clone().map(|webhooks| {
        let mut stopped = stop_projections.subscribe();
        tokio::spawn(ledger_stripe::webhooks::sweep_parked(
            webhooks,
            ledger_stripe::webhooks::PARKED_SWEEP_INTERVAL,
            async move {
                let _ = stopped.wait_for(|stop| *stop).await;
            },
        ))
    });
    let expiries = {
        let mut stopped = stop_projections.subscribe();
        tokio::spawn(ledger_api::expiry::sweep_expiries(
            state.app.handler.clone(),
            state.app.pool.clone(),
            ledger_api::expiry::EXPIRY_SWEEP_INTERVAL,
            async move {
                let _ = stopped.wait_for(|stop| *stop).await;
            },
        ))
    };
    // Notifications: the dispatcher turns the log into deliveries, the sender delivers them,
    // the pruner deletes finished ones past the retention period.
    let notifications = {
        let wake = std::sync::Arc::new(tokio::sync::Notify::new());
        let dispatcher = ledger_notify::Dispatcher::new(state.app.pool.clone(), wake.clone());
        let sender = ledger_notify::Sender::new(
            state.app.pool.clone(),
            crate::config::notify_sender_options()?,
            wake,
        )?;
        let retention = crate::config::notify_retention()?;
        let mut dispatcher_stopped = stop_projections.subscribe();
        let mut sender_stopped = stop_projections.subscribe();
        let mut pruner_stopped = stop_projections.subscribe();
        [
            tokio::spawn(
                dispatcher.follow(std::time::Duration::from_secs(1), async move {
                    let _ = dispatcher_stopped.wait_for(|stop| *stop).await;
                }),
            ),
            tokio::spawn(sender.run(async move {
                let _ = sender_stopped.wait_for(|stop| *stop).await;
            })),
            tokio::spawn(ledger_notify::retention::prune_until(
                state.app.pool.clone(),
                retention,
                async move {
                    let _ = pruner_stopped.wait_for(|stop| *stop).await;
                },
            )),
        ]
    };
    let listener = tokio::net::TcpListener::bind(bind)
        .await
        .with_context(|| format!("could not listen on {bind}"))?;
    tracing::info!(address = %bind, "ledger serving: GraphiQL at http://{bind}/graphql");
    println!("ledger serving on http://{bind} (GraphiQL at http://{bind}/graphql, the console at http://{bind}/console); Ctrl-C stops");
    axum::serve(listener, routes)
        .with_graceful_shutdown(shutdown.received())
        .await
        .context("the server failed")?;
    tracing::info!("drained; stopping the projections");
    let _ = stop_projections.send(true);
    projector
        .await
        .context("the projector task failed to stop cleanly")?;
    expiries
        .await
        .context("the sweep of expired authorizations failed to stop cleanly")?;
    for task in notifications {
        task.await
            .context("the notification dispatcher, sender or pruner failed to stop cleanly")?;
    }
    if let Some(sweep) = sweep {
        sweep
            .await
            .context("the sweep of parked webhooks failed to stop cleanly")?;
    }
    Ok(())
}

/// Ctrl-C and SIGTERM, listened for from the moment this is made: a signal that arrives while
/// the server is still starting (migrations, binding) is kept and drains it as soon as it
/// serves, instead of killing the process with the embedded cluster still running.
pub struct ShutdownSignal {
    #[cfg(unix)]
    interrupt: tokio::signal::unix::Signal,
    #[cfg(unix)]
    terminate: tokio::signal::unix::Signal,
}

impl ShutdownSignal {
    pub fn listen() -> anyhow::Result<Self> {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{signal, SignalKind};
            Ok(ShutdownSignal {
                interrupt: signal(SignalKind::interrupt())
                    .context("could not listen for Ctrl-C")?,
                terminate: signal(SignalKind::terminate())
                    .context("could not listen for SIGTERM")?,
            })
        }
        #[cfg(not(unix))]
        Ok(ShutdownSignal {})
    }

    async fn received(mut self) {
        #[cfg(unix)]
        tokio::select! {
            _ = self.interrupt.recv() => {},
            _ = self.terminate.recv() => {},
        }
        #[cfg(not(unix))]
        let _ = tokio::signal::ctrl_c().await;
    }
}

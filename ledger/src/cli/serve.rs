//! `ledger serve`: the HTTP server, until Ctrl-C or SIGTERM, then a clean drain.

use std::net::SocketAddr;

use anyhow::Context as _;
use ledger_api::server::application;
use sqlx::PgPool;

pub async fn run(pool: PgPool, bind: SocketAddr) -> anyhow::Result<()> {
    let (stop_projections, projections_stopped) = tokio::sync::watch::channel(false);
    let projector = tokio::spawn(ledger_projections::Projector::live(pool.clone()).follow(
        async move {
            let mut stopped = projections_stopped;
            let _ = stopped.wait_for(|stop| *stop).await;
        },
    ));
    let (state, routes) = application(pool, crate::config::server_config()?)?;
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
    let listener = tokio::net::TcpListener::bind(bind)
        .await
        .with_context(|| format!("could not listen on {bind}"))?;
    tracing::info!(address = %bind, "ledger serving: GraphiQL at http://{bind}/graphql");
    println!("ledger serving on http://{bind} (GraphiQL at http://{bind}/graphql); Ctrl-C stops");
    axum::serve(listener, routes)
        .with_graceful_shutdown(shutdown_signal())
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
    if let Some(sweep) = sweep {
        sweep
            .await
            .context("the sweep of parked webhooks failed to stop cleanly")?;
    }
    Ok(())
}

async fn shutdown_signal() {
    let interrupt = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = interrupt => {},
        () = terminate => {},
    }
}

//! What the console's HTTP test files share: the real server with the console mounted, serving
//! as the server's database role over a fresh database, its projector following the log.

use ledger_api::server::{application, ServerConfig};
use ledger_store::testing::TestDatabase;

pub struct App {
    pub address: String,
    pub database: TestDatabase,
    pub client: reqwest::Client,
}

pub async fn spawn_with(config: ServerConfig) -> App {
    let database = TestDatabase::new().await;
    let serving = database.server_pool().await;
    let (state, routes) = application(serving.clone(), config).unwrap();
    let routes = routes.merge(ledger_console::router(ledger_console::ConsoleState::new(
        state.app.pool.clone(),
        state.app.handler.clone(),
    )));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, routes).await });
    tokio::spawn(ledger_projections::Projector::live(serving).follow(std::future::pending::<()>()));
    // Redirects are what the tests look at (sign-in, sign-out), so none is followed.
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    App {
        address,
        database,
        client,
    }
}

/// The CSRF token a page's form carries.
pub fn csrf_of(html: &str) -> String {
    let start = html.find(r#"name="csrf" value=""#).expect("a CSRF field") + 19;
    html[start..start + 64].to_owned()
}

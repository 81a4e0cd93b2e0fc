//! The GraphiQL page of `ledger serve` in a real browser with no internet: it asks for the key
//! once per tab, runs a mutation over HTTP and a subscription over the websocket with it, and
//! loads nothing but the server's own files.
//!
//! `UPDATE_SCREENSHOTS=1` saves what the page shows to `docs/graphiql.png`.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use ledger_store::testing::TestDatabase;
use ledger_tests::browser::{fantoccini::Locator, with_browser, Browser};
use ledger_tests::server::{create_key, Server};
use serde_json::json;

/// Puts `text`, an operation of `kind` (`mutation`, `subscription`…), in GraphiQL's query
/// editor (CodeMirror's own API: typing would meet its bracket auto-closing), waits until
/// GraphiQL has parsed it, as it has long before a person can press run, and presses run.
async fn run_in_editor(browser: &Browser, kind: &str, text: &str) {
    let editor = "document.querySelector('.graphiql-query-editor .CodeMirror').CodeMirror";
    browser
        .run(
            &format!("{editor}.setValue(arguments[0]);"),
            vec![json!(text)],
        )
        .await;
    let parsed = format!(
        "const operations = {editor}.operations; \
        return operations && operations.length === 1 ? operations[0].operation : null;"
    );
    let deadline = Instant::now() + Duration::from_secs(5);
    while browser.run(&parsed, vec![]).await != json!(kind) {
        assert!(Instant::now() < deadline, "GraphiQL did not parse {text}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    browser
        .client
        .find(Locator::Css(".graphiql-execute-button"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
}

async fn key_form_shown(browser: &Browser) -> bool {
    let shown = browser
        .run(
            "return !document.getElementById('key-form').hidden;",
            vec![],
        )
        .await;
    shown == json!(true)
}

fn screenshot_path() -> Option<PathBuf> {
    let wanted = std::env::var("UPDATE_SCREENSHOTS").is_ok_and(|value| value == "1");
    wanted.then(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/graphiql.png"))
}

#[tokio::test]
async fn graphiql_asks_for_the_key_once_and_works_offline() {
    let database = TestDatabase::new().await;
    let key = create_key(database.url(), "admin");
    let server = Server::start(database.url());
    let page = format!("{}/graphql", server.address);

    with_browser(|browser| async move {
        browser.client.goto(&page).await.unwrap();
        let input = browser.wait_for("#api-key").await;
        assert!(key_form_shown(&browser).await);

        // A wrong key is refused with the server's reason, and not kept.
        input.send_keys("lk_test_not_a_real_key").await.unwrap();
        browser
            .client
            .find(Locator::Id("use-key"))
            .await
            .unwrap()
            .click()
            .await
            .unwrap();
        browser
            .wait_for_text("#key-error", "That key was refused")
            .await;
        assert!(key_form_shown(&browser).await);

        input.clear().await.unwrap();
        input.send_keys(&key).await.unwrap();
        browser
            .client
            .find(Locator::Id("use-key"))
            .await
            .unwrap()
            .click()
            .await
            .unwrap();
        browser.wait_for(".graphiql-query-editor .CodeMirror").await;
        assert!(!key_form_shown(&browser).await);

        // A mutation over HTTP with the key...
        run_in_editor(
            &browser,
            "mutation",
            r#"mutation {
  initiatePayment(input: {idempotencyKey: "graphiql-1", orderId: "order-graphiql",
      merchantId: "merchant-1", amount: "12.50", currency: "EUR"}) {
    payment { orderId status amount }
  }
}"#,
        )
        .await;
        browser
            .wait_for_text(".graphiql-response", "\"orderId\": \"order-graphiql\"")
            .await;
        // ...and a subscription over the websocket, the key in its connection_init.
        run_in_editor(
            &browser,
            "subscription",
            "subscription {\n  ledgerEvents {\n    position\n    type\n    streamId\n  }\n}",
        )
        .await;
        browser
            .wait_for_text(".graphiql-response", "\"type\": \"PaymentInitiated\"")
            .await;
        if let Some(path) = screenshot_path() {
            browser.screenshot(path).await;
        }

        // Everything the page loaded came from the server.
        for address in browser.loaded_addresses().await {
            assert!(
                address.starts_with(&format!("{}/", server_origin(&page))),
                "the page loaded {address}"
            );
        }
        // The key is in this tab's session storage only: not in the address, a cookie or
        // the storage that outlives the tab.
        assert_eq!(browser.client.current_url().await.unwrap().as_str(), page);
        let kept = browser
            .run(
                "return [document.cookie, JSON.stringify(localStorage), \
                    sessionStorage.getItem('ledger.graphiql.apiKey')];",
                vec![],
            )
            .await;
        assert_eq!(kept[0], "");
        assert!(!kept[1].as_str().unwrap().contains(&key));
        assert_eq!(kept[2], json!(key));

        // A reload does not ask again.
        browser.client.refresh().await.unwrap();
        browser.wait_for(".graphiql-query-editor .CodeMirror").await;
        assert!(!key_form_shown(&browser).await);

        // Nothing failed to load or was refused by the page's policy (the wrong key's 401
        // aside): a request to the internet would show here, unresolvable.
        let console = browser.console().await;
        let problems: Vec<_> = console
            .iter()
            .filter(|entry| entry.level == "SEVERE" && !entry.message.contains("status of 401"))
            .collect();
        assert!(problems.is_empty(), "{problems:#?}");

        // A new browser session does.
        let other = browser.new_session().await;
        other.client.goto(&page).await.unwrap();
        other.wait_for("#api-key").await;
        assert!(key_form_shown(&other).await);

        // And "Forget key" forgets it.
        browser
            .client
            .find(Locator::Id("forget-key"))
            .await
            .unwrap()
            .click()
            .await
            .unwrap();
        // The page reloads: asked until it answers, so a question put mid-reload is no failure.
        let deadline = Instant::now() + Duration::from_secs(10);
        let question = "return !document.getElementById('key-form').hidden \
            && sessionStorage.getItem('ledger.graphiql.apiKey') === null;";
        while browser.client.execute(question, vec![]).await.ok() != Some(json!(true)) {
            assert!(Instant::now() < deadline, "the key was not forgotten");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await;
    drop(server);
}

fn server_origin(page: &str) -> &str {
    page.trim_end_matches("/graphql")
}

//! A real browser for the end-to-end tests: Debian's `chromedriver` driving headless Chromium
//! over WebDriver (through `fantoccini`).
//!
//! [`with_browser`] starts chromedriver on a free port, opens one Chromium session, runs the
//! test, then ends every session it opened and chromedriver itself, whether the test passed
//! or panicked. Each session is a new Chromium with a fresh profile (no cookies, no storage:
//! a new visitor), that cannot resolve any host name but `localhost`, so a page that tries to
//! load anything from the internet fails to, and its test can see that.
//!
//! Chromium and chromedriver come from Debian: `apt-get install chromium chromium-driver`
//! (`.ci/run` installs them).

use std::future::Future;
use std::net::TcpListener;
use std::os::unix::process::CommandExt as _;
use std::panic::AssertUnwindSafe;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use fantoccini::{Client, ClientBuilder, Locator};
use futures::FutureExt;
use hyper_util::client::legacy::connect::HttpConnector;
use serde_json::json;

pub use fantoccini;

const CHROMEDRIVER: &str = "/usr/bin/chromedriver";
const CHROMIUM: &str = "/usr/bin/chromium";
/// How long chromedriver may take to start listening.
const DRIVER_START: Duration = Duration::from_secs(20);
/// How long [`Browser::wait_for`] and friends wait by default.
pub const WAIT: Duration = Duration::from_secs(15);

/// Runs `test` with a fresh headless Chromium, and cleans everything up after it, even when
/// it panics (the panic is then passed on).
///
/// ```no_run
/// # async fn example() {
/// use ledger_tests::browser::with_browser;
///
/// with_browser(|browser| async move {
///     browser.client.goto("http://127.0.0.1:8080/graphql").await.unwrap();
///     browser.screenshot("page.png").await;
/// })
/// .await;
/// # }
/// ```
pub async fn with_browser<F, Fut, T>(test: F) -> T
where
    F: FnOnce(Browser) -> Fut,
    Fut: Future<Output = T>,
{
    let driver = Arc::new(Driver::start());
    let outcome = match Browser::open(driver.clone()).await {
        Ok(browser) => Ok(AssertUnwindSafe(test(browser)).catch_unwind().await),
        Err(error) => Err(error),
    };
    driver.close_sessions().await;
    driver.stop();
    match outcome {
        Ok(Ok(value)) => value,
        // The panic's message was printed when it happened.
        Ok(Err(panic)) => std::panic::resume_unwind(panic),
        Err(error) => panic!("{error}"),
    }
}

/// One Chromium session, and the way to open others.
#[derive(Clone)]
pub struct Browser {
    pub client: Client,
    driver: Arc<Driver>,
}

impl Browser {
    async fn open(driver: Arc<Driver>) -> Result<Browser, String> {
        let profile = crate::fresh_directory("chromium-profile");
        let arguments = [
            "--headless=new",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--disable-dev-shm-usage",
            "--window-size=1400,900",
            // Nothing but this machine: a request to the internet fails at once.
            "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE localhost, EXCLUDE 127.0.0.1",
            &format!("--user-data-dir={}", profile.display()),
        ];
        let mut options = json!({ "args": arguments });
        if Path::new(CHROMIUM).is_file() {
            options["binary"] = json!(CHROMIUM);
        }
        let mut capabilities = serde_json::Map::new();
        capabilities.insert("browserName".to_owned(), json!("chrome"));
        capabilities.insert("goog:chromeOptions".to_owned(), options);
        // Keeps the console (and the network errors and policy refusals Chromium logs there)
        // for `console`.
        capabilities.insert("goog:loggingPrefs".to_owned(), json!({ "browser": "ALL" }));
        let client = ClientBuilder::new(HttpConnector::new())
            .capabilities(capabilities)
            .connect(&driver.url)
            .await
            .map_err(|error| format!("Chromium did not start through chromedriver: {error}"))?;
        driver.keep(client.clone(), profile);
        Ok(Browser { client, driver })
    }

    /// Another session: a separate Chromium with a fresh profile, as a new visitor (or the same
    /// person after closing the browser). Ended with the others when the test ends.
    pub async fn new_session(&self) -> Browser {
        match Browser::open(self.driver.clone()).await {
            Ok(browser) => browser,
            Err(error) => panic!("{error}"),
        }
    }

    /// Saves what the window shows as a PNG file, making its directory if need be.
    pub async fn screenshot(&self, path: impl AsRef<Path>) {
        let path = path.as_ref();
        let png = self
            .client
            .screenshot()
            .await
            .unwrap_or_else(|error| panic!("no screenshot: {error}"));
        if let Some(directory) = path.parent() {
            std::fs::create_dir_all(directory)
                .unwrap_or_else(|error| panic!("{}: {error}", directory.display()));
        }
        std::fs::write(path, png).unwrap_or_else(|error| panic!("{}: {error}", path.display()));
    }

    /// Waits (at most [`WAIT`]) for an element matching `css`.
    pub async fn wait_for(&self, css: &str) -> fantoccini::elements::Element {
        self.client
            .wait()
            .at_most(WAIT)
            .for_element(Locator::Css(css))
            .await
            .unwrap_or_else(|error| panic!("no {css} within {WAIT:?}: {error}"))
    }

    /// Waits (at most [`WAIT`]) until the text of the element matching `css` contains `text`,
    /// and returns all of its text.
    pub async fn wait_for_text(&self, css: &str, text: &str) -> String {
        let deadline = Instant::now() + WAIT;
        let mut seen = String::new();
        while Instant::now() < deadline {
            if let Ok(element) = self.client.find(Locator::Css(css)).await {
                seen = element.text().await.unwrap_or_default();
                if seen.contains(text) {
                    return seen;
                }
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("{css} did not show {text:?} within {WAIT:?}; it shows:\n{seen}")
    }

    /// Runs `script` (a function body; `arguments` are its arguments) in the page.
    pub async fn run(&self, script: &str, arguments: Vec<serde_json::Value>) -> serde_json::Value {
        self.client
            .execute(script, arguments)
            .await
            .unwrap_or_else(|error| panic!("the script failed: {error}\n{script}"))
    }

    /// Every address the current page has loaded, the page's own included (the Resource
    /// Timing API: scripts, stylesheets, fonts, fetches, websockets excepted).
    pub async fn loaded_addresses(&self) -> Vec<String> {
        let value = self
            .run(
                "return [location.href].concat(performance.getEntriesByType('resource')\
                    .map(entry => entry.name));",
                vec![],
            )
            .await;
        serde_json::from_value(value.clone())
            .unwrap_or_else(|error| panic!("not a list of addresses: {value} ({error})"))
    }
}

/// One line of the browser's console, as Chromium logged it.
#[derive(Debug, Clone, serde::Deserialize)]
pub struct ConsoleEntry {
    /// `SEVERE` (errors, failed loads, refusals by the page's policy), `WARNING`, `INFO`…
    pub level: String,
    pub message: String,
}

impl Browser {
    /// The console lines logged since the last call (chromedriver hands each out once).
    pub async fn console(&self) -> Vec<ConsoleEntry> {
        let entries = self
            .client
            .issue_cmd(BrowserLog)
            .await
            .unwrap_or_else(|error| panic!("the browser's console could not be read: {error}"));
        serde_json::from_value(entries.clone())
            .unwrap_or_else(|error| panic!("not console entries: {entries} ({error})"))
    }
}

/// chromedriver's command for the console: not in the WebDriver standard, so not in fantoccini.
#[derive(Debug)]
struct BrowserLog;

impl fantoccini::wd::WebDriverCompatibleCommand for BrowserLog {
    fn endpoint(
        &self,
        base_url: &url::Url,
        session_id: Option<&str>,
    ) -> Result<url::Url, url::ParseError> {
        base_url.join(&format!(
            "session/{}/se/log",
            session_id.unwrap_or_default()
        ))
    }

    fn method_and_body(&self, _: &url::Url) -> (http::Method, Option<String>) {
        (
            http::Method::POST,
            Some(json!({ "type": "browser" }).to_string()),
        )
    }
}

/// The chromedriver process, and what its sessions leave behind.
struct Driver {
    url: String,
    process: Mutex<Child>,
    sessions: Mutex<Vec<(Client, PathBuf)>>,
}

impl Driver {
    fn start() -> Driver {
        assert!(
            Path::new(CHROMEDRIVER).is_file(),
            "{CHROMEDRIVER} is missing: install Chromium with \
             `apt-get install -y chromium chromium-driver`"
        );
        let port = free_port();
        let process = Command::new(CHROMEDRIVER)
            .arg(format!("--port={port}"))
            .arg("--allowed-ips=127.0.0.1")
            // Its own process group, so that the Chromium processes it starts can be ended
            // with it if a session could not be closed.
            .process_group(0)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|error| panic!("{CHROMEDRIVER} did not start: {error}"));
        let driver = Driver {
            url: format!("http://127.0.0.1:{port}"),
            process: Mutex::new(process),
            sessions: Mutex::new(Vec::new()),
        };
        let deadline = Instant::now() + DRIVER_START;
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                Instant::now() < deadline,
                "chromedriver did not listen on port {port} within {DRIVER_START:?}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        driver
    }

    fn keep(&self, client: Client, profile: PathBuf) {
        self.sessions
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .push((client, profile));
    }

    /// Ends every session (chromedriver then stops its Chromium) and removes its profile.
    async fn close_sessions(&self) {
        let sessions = std::mem::take(
            &mut *self
                .sessions
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner()),
        );
        for (client, profile) in sessions {
            let _ = tokio::time::timeout(Duration::from_secs(10), client.close()).await;
            let _ = std::fs::remove_dir_all(profile);
        }
    }
}

impl Driver {
    /// Stops chromedriver and anything left in its process group; again does nothing.
    fn stop(&self) {
        let mut process = self
            .process
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if let Ok(None) = process.try_wait() {
            let _ = Command::new("kill")
                .args(["-KILL", "--", &format!("-{}", process.id())])
                .stderr(Stdio::null())
                .status();
            let _ = process.kill();
        }
        let _ = process.wait();
    }
}

impl Drop for Driver {
    /// For a test whose future was dropped before [`with_browser`] could clean up.
    fn drop(&mut self) {
        self.stop();
    }
}

/// A port nothing listens on now (the OS's choice; it is given back at once).
fn free_port() -> u16 {
    match TcpListener::bind("127.0.0.1:0").and_then(|listener| listener.local_addr()) {
        Ok(address) => address.port(),
        Err(error) => panic!("no free port: {error}"),
    }
}

//! A headless Chromium driven over WebDriver (chromedriver, plain JSON over HTTP), with the
//! network blocked for the browser: every proxied request goes to a closed port and every
//! host name fails to resolve. Used to check the plan's HTML page as an analyst sees it.
//!
//! Chromium and chromedriver come from Debian's packages (`apt-get install chromium
//! chromium-driver`, done by `.ci/run`). Without them [`Browser::start`] prints a loud
//! message and returns `None`, so a developer's machine skips the browser checks; under CI
//! (`CI` set) it fails instead, as CI installs them.

use std::net::TcpListener;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

const CHROMIUM: &str = "/usr/bin/chromium";
const CHROMEDRIVER: &str = "/usr/bin/chromedriver";

/// How long the browser may take for one step (load a page, filter a table).
const STEP_TIMEOUT: Duration = Duration::from_secs(60);

/// One browser session; dropping it ends the session and stops chromedriver.
pub struct Browser {
    runtime: tokio::runtime::Runtime,
    client: reqwest::Client,
    session: String,
    base: String,
    driver: Child,
    _profile: tempfile::TempDir,
}

impl Browser {
    /// Starts chromedriver and a headless Chromium without network access, or returns
    /// `None` after a loud message when they are not installed (outside CI only).
    pub fn start() -> Option<Browser> {
        if !Path::new(CHROMIUM).exists() || !Path::new(CHROMEDRIVER).exists() {
            let message = format!(
                "\n{bar}\nSKIPPED: the HTML plan page's browser checks need Chromium and chromedriver \
                 ({CHROMIUM}, {CHROMEDRIVER}).\nInstall them with `apt-get install -y chromium chromium-driver` \
                 (`.ci/run` does).\n{bar}\n",
                bar = "!".repeat(78)
            );
            assert!(
                std::env::var_os("CI").is_none(),
                "{message}under CI they must be installed"
            );
            eprintln!("{message}");
            return None;
        }
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        let driver = Command::new(CHROMEDRIVER)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("chromedriver starts");
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a tokio runtime");
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(120))
            .build()
            .expect("an HTTP client");
        let profile = tempfile::Builder::new()
            .prefix("engine-e2e-chromium-")
            .tempdir()
            .expect("a profile directory");
        let base = format!("http://127.0.0.1:{port}");
        let mut browser = Browser {
            runtime,
            client,
            session: String::new(),
            base,
            driver,
            _profile: profile,
        };
        let started = Instant::now();
        while browser
            .request(reqwest::Method::GET, "/status", None)
            .is_err()
        {
            assert!(
                started.elapsed() < STEP_TIMEOUT,
                "chromedriver did not answer on port {port}"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        let capabilities = json!({"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": {
                "binary": CHROMIUM,
                "args": [
                    "--headless=new",
                    "--no-sandbox",
                    "--disable-gpu",
                    "--disable-dev-shm-usage",
                    "--no-first-run",
                    "--disable-extensions",
                    "--disable-background-networking",
                    "--disable-component-update",
                    "--disable-sync",
                    // No network: every proxied request to a closed port, no host resolves.
                    "--proxy-server=127.0.0.1:9",
                    "--proxy-bypass-list=<-loopback>",
                    "--host-resolver-rules=MAP * ~NOTFOUND",
                    format!("--user-data-dir={}", browser._profile.path().display()),
                ],
            },
        }}});
        let session = browser
            .request(reqwest::Method::POST, "/session", Some(&capabilities))
            .unwrap_or_else(|e| panic!("Chromium starts a WebDriver session: {e}"));
        browser.session = session["sessionId"]
            .as_str()
            .expect("a session id")
            .to_string();
        Some(browser)
    }

    /// Sends a WebDriver command and returns its `value`.
    fn request(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<&Value>,
    ) -> Result<Value, String> {
        let url = format!("{}{path}", self.base);
        self.runtime.block_on(async {
            let mut request = self.client.request(method, &url);
            if let Some(body) = body {
                request = request.json(body);
            }
            let response = request.send().await.map_err(|e| e.to_string())?;
            let status = response.status();
            let answer: Value = response.json().await.map_err(|e| e.to_string())?;
            if !status.is_success() {
                return Err(format!("{status}: {answer}"));
            }
            Ok(answer["value"].clone())
        })
    }

    fn command(&self, method: reqwest::Method, path: &str, body: Value) -> Value {
        let path = format!("/session/{}{path}", self.session);
        self.request(method, &path, Some(&body))
            .unwrap_or_else(|e| panic!("WebDriver {path}: {e}"))
    }

    /// Loads `file` (a file:// URL) and waits until the page says it is ready.
    pub fn open(&self, file: &Path) -> Duration {
        let started = Instant::now();
        let url = format!("file://{}", file.display());
        self.command(reqwest::Method::POST, "/url", json!({ "url": url }));
        self.wait_for("the page to be ready", |b| {
            b.execute("return document.documentElement.getAttribute('data-ready') === 'true';")
                == json!(true)
        });
        started.elapsed()
    }

    /// Runs `script` in the page and returns what it returns.
    pub fn execute(&self, script: &str) -> Value {
        self.command(
            reqwest::Method::POST,
            "/execute/sync",
            json!({ "script": script, "args": [] }),
        )
    }

    /// Runs an asynchronous `script` (it calls `arguments[0]` with its result).
    pub fn execute_async(&self, script: &str) -> Value {
        self.command(
            reqwest::Method::POST,
            "/execute/async",
            json!({ "script": script, "args": [] }),
        )
    }

    fn element(&self, css: &str) -> String {
        let found = self.command(
            reqwest::Method::POST,
            "/element",
            json!({ "using": "css selector", "value": css }),
        );
        found
            .as_object()
            .and_then(|o| o.values().next())
            .and_then(Value::as_str)
            .unwrap_or_else(|| panic!("no element {css}: {found}"))
            .to_string()
    }

    /// Types `text` into the element at `css`, as a person would.
    pub fn type_into(&self, css: &str, text: &str) {
        let id = self.element(css);
        self.command(
            reqwest::Method::POST,
            &format!("/element/{id}/value"),
            json!({ "text": text }),
        );
    }

    /// Empties the input at `css`.
    pub fn clear(&self, css: &str) {
        let id = self.element(css);
        self.command(
            reqwest::Method::POST,
            &format!("/element/{id}/clear"),
            json!({}),
        );
    }

    /// Clicks the element at `css` (an `<option>` selects it).
    pub fn click(&self, css: &str) {
        let id = self.element(css);
        self.command(
            reqwest::Method::POST,
            &format!("/element/{id}/click"),
            json!({}),
        );
    }

    /// Polls `condition` until it holds; fails the test after [`STEP_TIMEOUT`].
    pub fn wait_for(&self, what: &str, mut condition: impl FnMut(&Browser) -> bool) {
        let started = Instant::now();
        while !condition(self) {
            assert!(
                started.elapsed() < STEP_TIMEOUT,
                "timed out waiting for {what}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        if !self.session.is_empty() {
            let path = format!("/session/{}", self.session);
            let _ = self.request(reqwest::Method::DELETE, &path, None);
        }
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}

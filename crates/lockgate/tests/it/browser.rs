//! `Browser`: a headless Chromium per test, driven through its own chromedriver with fantoccini,
//! plus the waiting helpers the console tests share (no test sleeps for a fixed time).
//!
//! Environment: `LOCKGATE_CHROMEDRIVER` names the chromedriver to run (default
//! `/usr/bin/chromedriver`, then `chromedriver` on `PATH`), `LOCKGATE_CHROMIUM` the browser binary
//! (default `/usr/bin/chromium` when present, else chromedriver's own choice) and
//! `LOCKGATE_SCREENSHOTS` a directory that [`Browser::screenshot`] writes PNGs to.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fantoccini::actions::{InputSource, MouseActions, PointerAction};
use fantoccini::elements::Element;
use fantoccini::error::CmdError;
use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::{json, Value};

/// How long a page, an element or a text may take to appear before a test fails.
pub const WAIT: Duration = Duration::from_secs(10);
/// How often the polling helpers look again.
const POLL: Duration = Duration::from_millis(50);
/// How long chromedriver may take to answer `/status` after it is started.
const DRIVER_START: Duration = Duration::from_secs(30);

/// The arguments Chromium runs with: headless, sandbox off (tests often run as root in
/// containers), a fixed window size so screenshots are comparable, and no background traffic.
const CHROMIUM_ARGS: &[&str] = &[
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--disable-extensions",
    "--window-size=1280,900",
];

/// A chromedriver child process, killed when dropped.
struct Driver {
    child: Child,
    port: u16,
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A headless Chromium with its own profile (so its own cookie jar), driven by fantoccini.
pub struct Browser {
    /// The WebDriver client; `Browser` dereferences to it.
    pub client: Client,
    session_id: Option<String>,
    // Field order matters: the driver is killed before the profile directory is removed.
    driver: Driver,
    _profile: tempfile::TempDir,
}

impl std::ops::Deref for Browser {
    type Target = Client;
    fn deref(&self) -> &Client {
        &self.client
    }
}

impl Browser {
    /// Starts chromedriver on a free port and opens a new headless Chromium session through it.
    pub async fn start() -> Browser {
        let chromedriver = find_chromedriver();
        let port = free_port();
        let child = Command::new(&chromedriver)
            .arg(format!("--port={port}"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", chromedriver.display()));
        let mut driver = Driver { child, port };
        wait_for_driver(&mut driver).await;

        let profile = tempfile::tempdir().expect("a profile directory for Chromium");
        let mut args: Vec<String> = CHROMIUM_ARGS.iter().map(|a| a.to_string()).collect();
        args.push(format!("--user-data-dir={}", profile.path().display()));
        let mut chrome_options = json!({ "args": args });
        if let Some(binary) = find_chromium() {
            chrome_options["binary"] = Value::String(binary.display().to_string());
        }
        let mut capabilities = serde_json::Map::new();
        capabilities.insert("browserName".into(), json!("chrome"));
        capabilities.insert("goog:chromeOptions".into(), chrome_options);
        // An alert a page opens must stay open for the test to see, not be dismissed silently.
        capabilities.insert("unhandledPromptBehavior".into(), json!("ignore"));

        let client = ClientBuilder::rustls()
            .expect("an HTTP client for chromedriver")
            .capabilities(capabilities)
            .connect(&format!("http://127.0.0.1:{}", driver.port))
            .await
            .unwrap_or_else(|e| panic!("chromedriver could not start Chromium: {e}"));
        let session_id = client.session_id().await.ok().flatten();
        Browser {
            client,
            session_id,
            driver,
            _profile: profile,
        }
    }

    /// Writes a PNG of the viewport to `$LOCKGATE_SCREENSHOTS/<name>.png` when that variable is
    /// set (to make the documentation's screenshots); does nothing otherwise.
    pub async fn screenshot(&self, name: &str) {
        let Some(dir) = std::env::var_os("LOCKGATE_SCREENSHOTS") else {
            return;
        };
        let dir = PathBuf::from(dir);
        std::fs::create_dir_all(&dir).expect("create the screenshot directory");
        let png = self.client.screenshot().await.expect("take a screenshot");
        std::fs::write(dir.join(format!("{name}.png")), png).expect("write the screenshot");
    }

    /// Opens `url` and waits for it to load.
    pub async fn goto(&self, url: &str) {
        self.client
            .goto(url)
            .await
            .unwrap_or_else(|e| panic!("cannot open {url}: {e}"));
    }

    /// The current URL's path and query, e.g. `/console/signin?next=%2Fconsole%2Fpipelines`.
    pub async fn path(&self) -> String {
        let url = self.client.current_url().await.expect("current URL");
        match url.query() {
            Some(q) => format!("{}?{q}", url.path()),
            None => url.path().to_string(),
        }
    }

    /// Waits until the current path (without the query) is `path`.
    pub async fn wait_for_path(&self, path: &str) {
        let deadline = Instant::now() + WAIT;
        loop {
            let url = self.client.current_url().await.expect("current URL");
            if url.path() == path {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "expected to arrive at {path}, but the browser is at {url}"
            );
            tokio::time::sleep(POLL).await;
        }
    }

    /// The first element matching `css`, waiting up to [`WAIT`] for it to appear.
    pub async fn find(&self, css: &str) -> Element {
        match self
            .client
            .wait()
            .at_most(WAIT)
            .every(POLL)
            .for_element(Locator::Css(css))
            .await
        {
            Ok(e) => e,
            Err(e) => panic!(
                "no element {css} on {} ({e}); the page says:\n{}",
                self.path().await,
                self.body_text().await
            ),
        }
    }

    /// Whether an element matching `css` is on the page now (no waiting).
    pub async fn exists(&self, css: &str) -> bool {
        !self
            .client
            .find_all(Locator::Css(css))
            .await
            .expect("query the page")
            .is_empty()
    }

    /// The visible text of the first element matching `css` (waiting for it to appear).
    pub async fn text(&self, css: &str) -> String {
        self.find(css).await.text().await.expect("element text")
    }

    /// The `textContent` of the first element matching `css`: its text even when hidden (a
    /// tooltip shown only on hover, for example).
    pub async fn text_content(&self, css: &str) -> String {
        self.find(css)
            .await
            .prop("textContent")
            .await
            .expect("textContent")
            .unwrap_or_default()
    }

    /// The whole page's visible text, for failure messages.
    pub async fn body_text(&self) -> String {
        match self.client.find(Locator::Css("body")).await {
            Ok(body) => body.text().await.unwrap_or_default(),
            Err(e) => format!("(no body: {e})"),
        }
    }

    /// Waits up to `within` until the first element matching `css` has a visible text
    /// containing `expected`; returns that text.
    pub async fn wait_for_text_within(
        &self,
        css: &str,
        expected: &str,
        within: Duration,
    ) -> String {
        let deadline = Instant::now() + within;
        let mut last = None;
        loop {
            // The page may be replaced between finding and reading (a redirect or a live
            // update); that is "not yet", not a failure.
            if let Ok(Some(text)) = self.first_text(css).await {
                if text.contains(expected) {
                    return text;
                }
                last = Some(text);
            }
            if Instant::now() >= deadline {
                panic!(
                    "expected {css} to contain {expected:?} within {within:?}, last saw {last:?} \
                     on {}; the page says:\n{}",
                    self.path().await,
                    self.body_text().await
                );
            }
            tokio::time::sleep(POLL).await;
        }
    }

    /// [`Browser::wait_for_text_within`] with the default [`WAIT`].
    pub async fn wait_for_text(&self, css: &str, expected: &str) -> String {
        self.wait_for_text_within(css, expected, WAIT).await
    }

    async fn first_text(&self, css: &str) -> Result<Option<String>, CmdError> {
        match self.client.find_all(Locator::Css(css)).await?.first() {
            Some(e) => Ok(Some(e.text().await?)),
            None => Ok(None),
        }
    }

    /// Runs `script` in the page and returns its result.
    pub async fn js(&self, script: &str) -> Value {
        self.client
            .execute(script, Vec::new())
            .await
            .unwrap_or_else(|e| panic!("script failed: {e}\n{script}"))
    }

    /// Clicks `element` (a submit button or a link) and waits until the browser has loaded the
    /// next page, following any redirects.
    pub async fn click_and_wait_for_page(&self, element: &Element) {
        self.js("window.__lockgatePreviousPage = true; return null;")
            .await;
        element.click().await.expect("click");
        let deadline = Instant::now() + WAIT;
        loop {
            let loaded = self
                .client
                .execute(
                    "return window.__lockgatePreviousPage === undefined \
                     && document.readyState === 'complete';",
                    Vec::new(),
                )
                .await;
            if matches!(loaded, Ok(Value::Bool(true))) {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "no new page loaded after the click; still at {}",
                self.path().await
            );
            tokio::time::sleep(POLL).await;
        }
    }

    /// The HTTP status of the response that produced the current page (after redirects).
    pub async fn page_status(&self) -> u64 {
        let status = self
            .js("return performance.getEntriesByType('navigation')[0].responseStatus;")
            .await;
        status.as_u64().unwrap_or_else(|| {
            panic!("the browser did not report the page's HTTP status: {status}")
        })
    }

    /// Moves the mouse over `element` (to show a tooltip, for example).
    pub async fn hover(&self, element: &Element) {
        let mouse = MouseActions::new("mouse".into()).then(PointerAction::MoveToElement {
            element: element.clone(),
            duration: None,
            x: 0.0,
            y: 0.0,
        });
        self.client.perform_actions(mouse).await.expect("hover");
    }

    /// Fills in the sign-in form on the current page and submits it; waits for the next page.
    pub async fn submit_sign_in(&self, name: &str, password: &str) {
        let form = "form[action=\"/console/signin\"]";
        let user = self.find(&format!("{form} input[name=\"username\"]")).await;
        user.clear().await.expect("clear user name");
        user.send_keys(name).await.expect("type user name");
        let pass = self
            .find(&format!(
                "{form} input[type=\"password\"][name=\"password\"]"
            ))
            .await;
        pass.clear().await.expect("clear password");
        pass.send_keys(password).await.expect("type password");
        let submit = self.find(&format!("{form} button[type=\"submit\"]")).await;
        assert_eq!(submit.text().await.expect("button text"), "Sign in");
        self.click_and_wait_for_page(&submit).await;
    }

    /// Opens the sign-in page of the server at `endpoint`, signs in and waits until the console
    /// shows the user as signed in.
    pub async fn sign_in(&self, endpoint: &str, name: &str, password: &str) {
        self.goto(&format!("{endpoint}/console/signin")).await;
        self.submit_sign_in(name, password).await;
        self.wait_for_text("[data-testid=\"signed-in-user\"]", name)
            .await;
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        // Ending the session makes chromedriver quit Chromium; killing chromedriver alone would
        // leave Chromium running. Drop cannot await, so this is one blocking HTTP request.
        if let Some(id) = &self.session_id {
            delete_session(self.driver.port, id);
        }
    }
}

/// `DELETE /session/{id}` on the chromedriver at `port`, waiting (bounded) for its answer.
fn delete_session(port: u16, id: &str) {
    let Ok(mut stream) = TcpStream::connect(("127.0.0.1", port)) else {
        return;
    };
    let _ = stream.set_read_timeout(Some(Duration::from_secs(10)));
    let _ = stream.set_write_timeout(Some(Duration::from_secs(10)));
    let request = format!(
        "DELETE /session/{id} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Length: 0\r\n\
         Connection: close\r\n\r\n"
    );
    if stream.write_all(request.as_bytes()).is_err() {
        return;
    }
    // chromedriver answers once Chromium has quit, but may keep the connection open, so read
    // exactly one response (headers, then Content-Length bytes) rather than to the end.
    let mut answer = Vec::new();
    let mut chunk = [0u8; 4096];
    while !is_complete_response(&answer) {
        match stream.read(&mut chunk) {
            Ok(0) | Err(_) => return,
            Ok(n) => answer.extend_from_slice(&chunk[..n]),
        }
    }
}

/// Whether `bytes` hold a whole HTTP/1.1 response with a `Content-Length` body.
fn is_complete_response(bytes: &[u8]) -> bool {
    let Some(end) = bytes.windows(4).position(|w| w == b"\r\n\r\n") else {
        return false;
    };
    let head = String::from_utf8_lossy(&bytes[..end]).to_ascii_lowercase();
    let length = head
        .lines()
        .find_map(|l| l.strip_prefix("content-length:"))
        .and_then(|v| v.trim().parse::<usize>().ok())
        .unwrap_or(0);
    bytes.len() >= end + 4 + length
}

/// chromedriver: `LOCKGATE_CHROMEDRIVER`, else `/usr/bin/chromedriver`, else `chromedriver` on
/// `PATH`.
fn find_chromedriver() -> PathBuf {
    if let Some(path) = std::env::var_os("LOCKGATE_CHROMEDRIVER") {
        let path = PathBuf::from(path);
        assert!(
            path.is_file(),
            "LOCKGATE_CHROMEDRIVER={} is not a file",
            path.display()
        );
        return path;
    }
    let debian = Path::new("/usr/bin/chromedriver");
    if debian.is_file() {
        return debian.to_path_buf();
    }
    std::env::var_os("PATH")
        .iter()
        .flat_map(std::env::split_paths)
        .map(|dir| dir.join("chromedriver"))
        .find(|p| p.is_file())
        .unwrap_or_else(|| {
            panic!(
                "chromedriver not found: the console's browser tests need Chromium and \
                 chromedriver. Run scripts/test (it installs them on Debian) or \
                 `apt-get install chromium chromium-driver`, or set LOCKGATE_CHROMEDRIVER."
            )
        })
}

/// The browser binary: `LOCKGATE_CHROMIUM`, else `/usr/bin/chromium` when present, else none
/// (chromedriver then looks for Chrome itself).
fn find_chromium() -> Option<PathBuf> {
    if let Some(path) = std::env::var_os("LOCKGATE_CHROMIUM") {
        return Some(PathBuf::from(path));
    }
    let debian = Path::new("/usr/bin/chromium");
    debian.is_file().then(|| debian.to_path_buf())
}

/// A loopback port nothing listens on right now.
fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port()
}

/// Waits until chromedriver answers `/status`; fails early if it exits.
async fn wait_for_driver(driver: &mut Driver) {
    let url = format!("http://127.0.0.1:{}/status", driver.port);
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(2))
        .build()
        .expect("HTTP client");
    let deadline = Instant::now() + DRIVER_START;
    loop {
        if let Some(status) = driver.child.try_wait().expect("chromedriver status") {
            panic!(
                "chromedriver exited at start-up ({status}); is port {} free?",
                driver.port
            );
        }
        if let Ok(r) = http.get(&url).send().await {
            if r.status().is_success() {
                return;
            }
        }
        assert!(
            Instant::now() < deadline,
            "chromedriver did not answer {url} within {DRIVER_START:?}"
        );
        tokio::time::sleep(POLL).await;
    }
}

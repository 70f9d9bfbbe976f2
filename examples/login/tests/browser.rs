//! The login app in a real browser: the `login` binary on a loopback port, and headless
//! Chromium driven through chromedriver over WebDriver as a person would use it: log in,
//! see the name, list the devices, end the other sessions, log out.
//!
//! `cargo xtask test` installs Debian's `chromium` and `chromium-driver` and names them in
//! `SESSION_TEST_CHROMIUM` and `SESSION_TEST_CHROMEDRIVER`; a plain `cargo test` looks in
//! `/usr/bin` and fails without them, for a skipped browser test would hide a broken page.
//! On a failure, each browser's screenshot and page source go to `target/browser-test/`.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failure report

use std::collections::HashMap;
use std::fmt::Display;
use std::fs::{self, File};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fantoccini::elements::Element;
use fantoccini::wd::Capabilities;
use fantoccini::{Client, ClientBuilder, Locator};
use hyper_util::client::legacy::connect::HttpConnector;
use session_testkit::launcher::{dying_with_test, free_port, listening};
use session_testkit::App;
use tempfile::TempDir;

const LOGIN: &str = env!("CARGO_BIN_EXE_login");

/// A name that is markup: the page must show it as text.
const NAME: &str = "<b>Zoë</b>";

/// The session cookie's name (the middleware's default).
const COOKIE: &str = "session";

/// How long a page may take to show what a step waits for.
const STEP: Duration = Duration::from_secs(10);

/// How long the whole walk through the app may take, so that the test ends within a
/// minute even when a page never shows what it should.
const WALK: Duration = Duration::from_secs(40);

/// How long chromedriver may take to listen.
const DRIVER_START: Duration = Duration::from_secs(15);

/// Chromium's switches: headless in a container, and no traffic but to the app on
/// loopback (every host name fails to resolve, and the services that call home are off).
const CHROMIUM_ARGS: &[&str] = &[
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--window-size=1024,768",
    "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",
    "--no-proxy-server",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-domain-reliability",
    "--disable-sync",
    "--no-pings",
    "--no-first-run",
    "--no-default-browser-check",
];

#[test]
fn a_person_logs_in_sees_devices_and_logs_out_in_chromium() {
    let chromium = program("SESSION_TEST_CHROMIUM", "/usr/bin/chromium");
    let chromedriver = program("SESSION_TEST_CHROMEDRIVER", "/usr/bin/chromedriver");
    let store = tempfile::Builder::new()
        // Private, as `FileStore` requires of a directory it did not create.
        .permissions(std::os::unix::fs::PermissionsExt::from_mode(0o700))
        .tempdir()
        .unwrap();
    let mut app = App::start(LOGIN, &format!("file://{}", store.path().display()));
    let base = format!("http://127.0.0.1:{}", app.port());
    // Two browsers with profiles of their own: two devices of one person.
    let browsers = [
        Browser::start("first", &chromedriver),
        Browser::start("second", &chromedriver),
    ];
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let outcome = runtime.block_on(drive(&browsers, &chromium, &base));
    if let Err(failure) = outcome {
        panic!("{failure}");
    }
    app.assert_healthy();
}

/// The path of a program in `var`, else at `default`; without one the test fails, naming
/// the command that installs it.
fn program(var: &str, default: &str) -> PathBuf {
    match std::env::var_os(var) {
        Some(path) => {
            let path = PathBuf::from(path);
            assert!(path.is_file(), "{var}={} is not a file", path.display());
            path
        }
        None => {
            let path = PathBuf::from(default);
            assert!(
                path.is_file(),
                "no {default} and {var} is not set: run `cargo xtask test examples`, which \
                 installs Debian's chromium and chromium-driver and sets {var}"
            );
            path
        }
    }
}

/// Connects to both browsers, walks through the app, and on a failure saves what each
/// browser shows; the browsers quit at the end either way.
async fn drive(browsers: &[Browser; 2], chromium: &Path, base: &str) -> Result<(), String> {
    let first = browsers[0].connect(chromium).await?;
    let second = match browsers[1].connect(chromium).await {
        Ok(client) => client,
        Err(failure) => {
            let _ = tokio::time::timeout(STEP, first.close()).await;
            return Err(failure);
        }
    };
    let walked = match tokio::time::timeout(WALK, walk(&first, &second, base)).await {
        Ok(walked) => walked,
        Err(_) => Err(format!("the walk through the app took over {WALK:?}")),
    };
    let result = match walked {
        Ok(()) => Ok(()),
        Err(failure) => {
            let saved = save_evidence(&[("first", &first), ("second", &second)]).await;
            Err(format!("{failure}\n{saved}"))
        }
    };
    for client in [first, second] {
        let _ = tokio::time::timeout(STEP, client.close()).await;
    }
    result
}

/// What a person does, step by step; the first step that goes wrong is the error.
async fn walk(first: &Client, second: &Client, base: &str) -> Result<(), String> {
    let logged_in = format!("Logged in as {NAME}");
    let home = format!("{base}/");

    // A new visitor is not logged in, and logs in through the form.
    first
        .goto(&home)
        .await
        .step("open / in the first browser")?;
    shows(first, "You are not logged in").await?;
    log_in(first).await?;
    // The name is text: its markup shows as typed and makes no element.
    shows(first, &logged_in).await?;
    let bold = first
        .find_all(Locator::Css("b"))
        .await
        .step("look for <b>")?;
    check(bold.is_empty(), "the name became a <b> element")?;
    let flashes = texts(first, ".flash").await?;
    check(
        flashes == [logged_in.clone()],
        format!("after logging in the flashes are {flashes:?}, not one saying {logged_in:?}"),
    )?;
    // The flash shows once.
    first
        .refresh()
        .await
        .step("reload / in the first browser")?;
    shows(first, &logged_in).await?;
    let flashes = texts(first, ".flash").await?;
    check(
        flashes.is_empty(),
        format!("the flash is still there on reload: {flashes:?}"),
    )?;
    // Scripts cannot read the cookie, and other sites cannot send it on a POST.
    let cookie = first
        .get_named_cookie(COOKIE)
        .await
        .step("the session cookie")?;
    check(
        cookie.http_only() == Some(true),
        "the session cookie is not HttpOnly",
    )?;
    let same_site = cookie.same_site().map(|s| s.to_string());
    check(
        same_site.as_deref() == Some("Lax"),
        format!("the session cookie's SameSite is {same_site:?}, not Lax"),
    )?;

    // The same person logs in on a second device.
    second
        .goto(&home)
        .await
        .step("open / in the second browser")?;
    shows(second, "You are not logged in").await?;
    log_in(second).await?;
    shows(second, &logged_in).await?;

    // The first device lists both sessions and ends the other one.
    first
        .goto(&format!("{base}/sessions"))
        .await
        .step("open /sessions")?;
    shows(first, "Log out everywhere else").await?;
    let rows = texts(first, "tbody tr").await?;
    check(
        rows.len() == 2,
        format!("the devices page lists {} sessions, not 2", rows.len()),
    )?;
    let current = texts(first, "tbody tr.current").await?;
    check(
        current.len() == 1 && current[0].contains("This device"),
        format!("the current session is not the one row marked \"This device\": {rows:?}"),
    )?;
    check(
        rows.iter()
            .filter(|row| row.contains("This device"))
            .count()
            == 1,
        format!("more than one row says \"This device\": {rows:?}"),
    )?;
    click(
        first,
        Locator::XPath("//button[normalize-space()='Log out everywhere else']"),
    )
    .await?;
    shows(first, "Logged out of 1 other session").await?;
    let rows = texts(first, "tbody tr").await?;
    check(
        rows.len() == 1,
        format!("after ending the others the page lists {rows:?}"),
    )?;

    // The second device is logged out; the first is not.
    second
        .refresh()
        .await
        .step("reload / in the second browser")?;
    shows(second, "You are not logged in").await?;
    shows_not(second, "Logged in as").await?;
    first
        .goto(&home)
        .await
        .step("open / in the first browser")?;
    shows(first, &logged_in).await?;

    // After logging out, the cookie of the ended session logs nobody in.
    let old = first
        .get_named_cookie(COOKIE)
        .await
        .step("the session cookie before logging out")?;
    click(
        first,
        Locator::XPath("//button[normalize-space()='Log out']"),
    )
    .await?;
    shows(first, "You are not logged in").await?;
    first
        .delete_cookie(COOKIE)
        .await
        .step("delete the session cookie")?;
    first
        .add_cookie(old.clone())
        .await
        .step("put the old session cookie back")?;
    let back = first
        .get_named_cookie(COOKIE)
        .await
        .step("the restored session cookie")?;
    check(
        back.value() == old.value(),
        "the browser did not take the old session cookie back",
    )?;
    first.goto(&home).await.step("open / with the old cookie")?;
    shows(first, "You are not logged in").await?;
    shows_not(first, "Logged in as").await?;
    Ok(())
}

/// Follows the "Log in" link on `/` and submits the form with [`NAME`].
async fn log_in(client: &Client) -> Result<(), String> {
    click(client, Locator::LinkText("Log in")).await?;
    let field = client
        .wait()
        .at_most(STEP)
        .for_element(Locator::Css("input[name=username]"))
        .await
        .step("the login form's name field")?;
    field.send_keys(NAME).await.step("type the name")?;
    let typed = field.prop("value").await.step("the typed name")?;
    check(
        typed.as_deref() == Some(NAME),
        format!("the name field holds {typed:?}, not {NAME:?}"),
    )?;
    click(
        client,
        Locator::XPath("//button[normalize-space()='Log in']"),
    )
    .await
}

/// Clicks the element at `locator`, once it is there.
async fn click(client: &Client, locator: Locator<'_>) -> Result<(), String> {
    let shown = format!("{locator:?}");
    let element: Element = client
        .wait()
        .at_most(STEP)
        .for_element(locator)
        .await
        .step(&format!("find {shown}"))?;
    element.click().await.step(&format!("click {shown}"))
}

/// The page's visible text.
async fn page_text(client: &Client) -> Result<String, String> {
    let body = client
        .find(Locator::Css("body"))
        .await
        .step("the page's body")?;
    body.text().await.step("the page's text")
}

/// Waits until the page's visible text holds `needle`.
async fn shows(client: &Client, needle: &str) -> Result<(), String> {
    let deadline = Instant::now() + STEP;
    loop {
        // A page that is being replaced has no body for a moment: that is a retry.
        let text = page_text(client).await;
        if text.as_deref().is_ok_and(|text| text.contains(needle)) {
            return Ok(());
        }
        if Instant::now() >= deadline {
            return Err(match text {
                Ok(text) => format!("the page does not show {needle:?}; it shows {text:?}"),
                Err(error) => format!("waiting for {needle:?}: {error}"),
            });
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Fails if the page (already loaded) shows `needle`.
async fn shows_not(client: &Client, needle: &str) -> Result<(), String> {
    let text = page_text(client).await?;
    check(
        !text.contains(needle),
        format!("the page shows {needle:?}: {text:?}"),
    )
}

/// The visible text of each element that `css` selects.
async fn texts(client: &Client, css: &str) -> Result<Vec<String>, String> {
    let mut texts = Vec::new();
    for element in client
        .find_all(Locator::Css(css))
        .await
        .step(&format!("find {css}"))?
    {
        texts.push(element.text().await.step(&format!("the text of {css}"))?);
    }
    Ok(texts)
}

fn check(condition: bool, failure: impl Into<String>) -> Result<(), String> {
    if condition {
        Ok(())
    } else {
        Err(failure.into())
    }
}

/// A WebDriver error as a test failure that says which step it was.
trait Step<T> {
    fn step(self, what: &str) -> Result<T, String>;
}

impl<T, E: Display> Step<T> for Result<T, E> {
    fn step(self, what: &str) -> Result<T, String> {
        self.map_err(|error| format!("{what}: {error}"))
    }
}

/// Saves each browser's screenshot and page source under `target/browser-test/`, and says
/// where (or why not).
async fn save_evidence(clients: &[(&str, &Client)]) -> String {
    let dir = evidence_dir();
    if let Err(error) = fs::create_dir_all(&dir) {
        return format!("cannot create {}: {error}", dir.display());
    }
    let mut report = Vec::new();
    for (name, client) in clients {
        let png = dir.join(format!("login-{name}.png"));
        let saved = match tokio::time::timeout(STEP, client.screenshot()).await {
            Ok(Ok(bytes)) => fs::write(&png, bytes).map_err(|e| e.to_string()),
            Ok(Err(error)) => Err(error.to_string()),
            Err(_) => Err("no answer".to_owned()),
        };
        report.push(match saved {
            Ok(()) => format!("screenshot of the {name} browser: {}", png.display()),
            Err(error) => format!("no screenshot of the {name} browser: {error}"),
        });
        let html = dir.join(format!("login-{name}.html"));
        let saved = match tokio::time::timeout(STEP, client.source()).await {
            Ok(Ok(source)) => fs::write(&html, source).map_err(|e| e.to_string()),
            Ok(Err(error)) => Err(error.to_string()),
            Err(_) => Err("no answer".to_owned()),
        };
        report.push(match saved {
            Ok(()) => format!("page source of the {name} browser: {}", html.display()),
            Err(error) => format!("no page source of the {name} browser: {error}"),
        });
    }
    report.join("\n")
}

/// `browser-test/` in the build's target directory.
fn evidence_dir() -> PathBuf {
    let workspace = Path::new(env!("CARGO_MANIFEST_DIR"))
        .ancestors()
        .nth(2)
        .expect("the workspace above examples/login");
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("target"));
    // A relative CARGO_TARGET_DIR is the workspace's, as cargo reads it from there.
    workspace.join(target).join("browser-test")
}

/// One browser: chromedriver on a free loopback port and the Chromium it starts, with a
/// profile of its own. Dropping it (on a panic too) kills both.
struct Browser {
    name: &'static str,
    port: u16,
    driver: Child,
    /// Chromium's profile and chromedriver's log; removed after the kill.
    dir: TempDir,
}

impl Browser {
    fn start(name: &'static str, chromedriver: &Path) -> Self {
        let dir = tempfile::Builder::new()
            .prefix("browser-test-")
            .tempdir()
            .expect("a profile directory");
        let log = File::create(dir.path().join("chromedriver.log")).expect("chromedriver's log");
        let port = free_port().expect("a free loopback port");
        let mut command = Command::new(chromedriver);
        // Warnings only: its detailed log would hold the session cookies.
        command
            .arg(format!("--port={port}"))
            .arg("--log-level=WARNING")
            // Chromium keeps its crash reports and caches under these rather than in the
            // profile: here they stay in the private directory, and every helper process
            // (the crash handler leaves the process tree) names it.
            .env("XDG_CONFIG_HOME", dir.path())
            .env("XDG_CACHE_HOME", dir.path());
        let driver = dying_with_test(&command)
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("chromedriver's log"))
            .stderr(log)
            .spawn()
            .expect("chromedriver starts");
        let mut browser = Self {
            name,
            port,
            driver,
            dir,
        };
        let deadline = Instant::now() + DRIVER_START;
        while !listening(port) {
            if let Ok(Some(status)) = browser.driver.try_wait() {
                panic!("chromedriver exited ({status}): {}", browser.log());
            }
            assert!(
                Instant::now() < deadline,
                "chromedriver did not listen within {DRIVER_START:?}: {}",
                browser.log()
            );
            std::thread::sleep(Duration::from_millis(25));
        }
        browser
    }

    fn profile(&self) -> PathBuf {
        self.dir.path().join("chromium")
    }

    fn log(&self) -> String {
        fs::read_to_string(self.dir.path().join("chromedriver.log")).unwrap_or_default()
    }

    /// A WebDriver session, which starts headless Chromium.
    async fn connect(&self, chromium: &Path) -> Result<Client, String> {
        let mut args: Vec<String> = CHROMIUM_ARGS.iter().map(|&a| a.to_owned()).collect();
        args.push(format!("--user-data-dir={}", self.profile().display()));
        let mut capabilities = Capabilities::new();
        capabilities.insert(
            "goog:chromeOptions".to_owned(),
            serde_json::json!({ "binary": chromium, "args": args }),
        );
        ClientBuilder::new(HttpConnector::new())
            .capabilities(capabilities)
            .connect(&format!("http://127.0.0.1:{}", self.port))
            .await
            .map_err(|error| {
                format!(
                    "no WebDriver session in the {} browser: {error}\nchromedriver's log: {}",
                    self.name,
                    self.log()
                )
            })
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        // A chromedriver that has exited and been waited for may have its id reused.
        let running = matches!(self.driver.try_wait(), Ok(None));
        let pids = processes(running.then(|| self.driver.id()), self.dir.path());
        if !pids.is_empty() {
            let _ = Command::new("kill")
                .arg("-KILL")
                .args(pids.iter().map(u32::to_string))
                .stderr(Stdio::null())
                .status();
        }
        let _ = self.driver.wait();
    }
}

/// `root` and every process under it, and every process whose command line names a path
/// in `dir` and those under it (a helper that Chromium started may have left the tree).
fn processes(root: Option<u32>, dir: &Path) -> Vec<u32> {
    let dir = format!("{}/", dir.display());
    let mut children: HashMap<u32, Vec<u32>> = HashMap::new();
    let mut chosen: Vec<u32> = root.into_iter().collect();
    for entry in fs::read_dir("/proc").into_iter().flatten().flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|name| name.parse::<u32>().ok())
        else {
            continue;
        };
        let Ok(stat) = fs::read_to_string(entry.path().join("stat")) else {
            continue;
        };
        // `pid (comm) state ppid ...`; comm may hold spaces and parentheses.
        if let Some(ppid) = stat
            .rsplit_once(')')
            .and_then(|(_, rest)| rest.split_whitespace().nth(1))
            .and_then(|ppid| ppid.parse::<u32>().ok())
        {
            children.entry(ppid).or_default().push(pid);
        }
        let cmdline = fs::read(entry.path().join("cmdline")).unwrap_or_default();
        if pid != std::process::id() && String::from_utf8_lossy(&cmdline).contains(&dir) {
            chosen.push(pid);
        }
    }
    let mut next = 0;
    while let Some(&pid) = chosen.get(next) {
        for &child in children.get(&pid).into_iter().flatten() {
            if !chosen.contains(&child) {
                chosen.push(child);
            }
        }
        next += 1;
    }
    chosen
}

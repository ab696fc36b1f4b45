//! Console sign-in under attack, over plain HTTP: parallel guesses at one user, one client trying
//! many user names, clients behind a trusted proxy, the bound on concurrent password checks, and
//! a `next` that no `Location` header could carry.

use std::num::NonZeroUsize;
use std::time::{Duration, Instant};

use reqwest::header::{LOCATION, SET_COOKIE};

use crate::harness::{add_bob, add_console_user, test_config, TestApp, ALICE, ALICE_PASSWORD};

/// What a sign-in refused because every password check is in use says.
const BUSY: &str = "Lockgate is busy checking other sign-ins; try again in a moment.";
/// What a sign-in refused by the per-name brake says.
const HELD_NAME: &str = "Too many failed sign-in attempts for this user.";
/// What a sign-in refused by the per-address brake says.
const HELD_ADDRESS: &str = "Too many failed sign-in attempts from your network address.";
/// What a wrong password says.
const WRONG: &str = "Incorrect user name or password.";

/// A server with Bob and Alice whose console checks up to `concurrency` passwords at once and
/// believes `X-Forwarded-For` from `trusted_proxies`.
async fn spawn(concurrency: usize, trusted_proxies: &[&str]) -> TestApp {
    let dir = tempfile::tempdir().expect("tempdir");
    add_bob(dir.path()).await;
    add_console_user(dir.path(), ALICE, ALICE_PASSWORD).await;
    let mut config = test_config(dir.path());
    config.console.signin_concurrency = NonZeroUsize::new(concurrency).expect("non-zero");
    config.console.trusted_proxies = trusted_proxies
        .iter()
        .map(|p| p.parse().expect("trusted proxy"))
        .collect();
    TestApp::spawn_with_config(dir, config).await
}

/// The answer to one sign-in POST.
#[derive(Debug)]
struct Answer {
    status: u16,
    location: Option<String>,
    /// `name=value` of every cookie set.
    cookies: Vec<String>,
    body: String,
}

impl Answer {
    fn session_cookie(&self) -> Option<&str> {
        self.cookies
            .iter()
            .find_map(|c| c.strip_prefix("lockgate_session="))
            .filter(|v| !v.is_empty())
    }
}

/// A browser-like client of the sign-in form: it holds the form's double-submit CSRF token (the
/// same value in the cookie and the field) and never follows redirects.
#[derive(Clone)]
struct SignInForm {
    http: reqwest::Client,
    endpoint: String,
    csrf: String,
}

impl SignInForm {
    /// Loads the sign-in page and keeps its CSRF token.
    async fn open(endpoint: &str) -> SignInForm {
        // A connection per request, so a request is never read ahead of one written earlier.
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .pool_max_idle_per_host(0)
            .build()
            .expect("HTTP client");
        let page = http
            .get(format!("{endpoint}/console/signin"))
            .send()
            .await
            .expect("GET /console/signin");
        assert_eq!(page.status().as_u16(), 200);
        let csrf = cookies(page.headers())
            .iter()
            .find_map(|c| c.strip_prefix("lockgate_signin_csrf=").map(str::to_string))
            .expect("the sign-in form sets its CSRF cookie");
        SignInForm {
            http,
            endpoint: endpoint.to_string(),
            csrf,
        }
    }

    /// POSTs the form; `forwarded_for` is sent as `X-Forwarded-For`.
    async fn submit(
        &self,
        user: &str,
        password: &str,
        next: Option<&str>,
        forwarded_for: Option<&str>,
    ) -> Answer {
        let mut fields = vec![
            ("csrf_token", self.csrf.as_str()),
            ("username", user),
            ("password", password),
        ];
        if let Some(next) = next {
            fields.push(("next", next));
        }
        let mut request = self
            .http
            .post(format!("{}/console/signin", self.endpoint))
            .header("cookie", format!("lockgate_signin_csrf={}", self.csrf))
            .form(&fields);
        if let Some(xff) = forwarded_for {
            request = request.header("x-forwarded-for", xff);
        }
        let response = request.send().await.expect("POST /console/signin");
        let status = response.status().as_u16();
        let location = response
            .headers()
            .get(LOCATION)
            .map(|v| v.to_str().expect("ASCII location").to_string());
        let cookies = cookies(response.headers());
        let body = response.text().await.expect("body");
        Answer {
            status,
            location,
            cookies,
            body,
        }
    }
}

impl SignInForm {
    /// Writes a sign-in POST on a connection of its own and returns once the request has been
    /// handed to the server's socket; the task answers the whole HTTP response.
    async fn submit_written(&self, user: &str, password: &str) -> tokio::task::JoinHandle<String> {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let address = self.endpoint.trim_start_matches("http://").to_string();
        let body = format!(
            "csrf_token={}&username={user}&password={password}",
            self.csrf
        );
        let request = format!(
            "POST /console/signin HTTP/1.1\r\nHost: {address}\r\nCookie: lockgate_signin_csrf={}\r\n\
             Content-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n\
             Connection: close\r\n\r\n{body}",
            self.csrf,
            body.len()
        );
        let mut stream = tokio::net::TcpStream::connect(&address)
            .await
            .expect("connect");
        stream
            .write_all(request.as_bytes())
            .await
            .expect("write the request");
        stream.flush().await.expect("flush");
        tokio::spawn(async move {
            let mut answer = String::new();
            stream
                .read_to_string(&mut answer)
                .await
                .expect("read the answer");
            answer
        })
    }
}

/// `name=value` of every `Set-Cookie`.
fn cookies(headers: &reqwest::header::HeaderMap) -> Vec<String> {
    headers
        .get_all(SET_COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .filter_map(|v| v.split(';').next())
        .map(|v| v.trim().to_string())
        .collect()
}

/// Submits every `(user, password, forwarded_for)` at once; answers in the same order.
async fn submit_all(
    form: &SignInForm,
    attempts: Vec<(String, String, Option<String>)>,
) -> Vec<Answer> {
    let tasks: Vec<_> = attempts
        .into_iter()
        .map(|(user, password, xff)| {
            let form = form.clone();
            tokio::spawn(async move { form.submit(&user, &password, None, xff.as_deref()).await })
        })
        .collect();
    let mut answers = Vec::new();
    for t in tasks {
        answers.push(t.await.expect("sign-in task"));
    }
    answers
}

fn count(answers: &[Answer], status: u16) -> usize {
    answers.iter().filter(|a| a.status == status).count()
}

#[tokio::test]
async fn a_hundred_parallel_guesses_at_one_user_are_checked_at_most_five_times_and_then_the_right_password_waits(
) {
    let app = spawn(20, &[]).await;
    let form = SignInForm::open(&app.endpoint).await;
    let guesses = (0..100)
        .map(|i| (ALICE.to_string(), format!("guess {i}"), None))
        .collect();
    let answers = submit_all(&form, guesses).await;

    let checked = count(&answers, 401);
    assert_eq!(checked, 5, "passwords checked: {checked}");
    assert_eq!(count(&answers, 429), 95);
    for a in answers.iter().filter(|a| a.status == 401) {
        assert!(a.body.contains(WRONG));
    }
    for a in answers.iter().filter(|a| a.status == 429) {
        assert!(
            a.body.contains(HELD_NAME) || a.body.contains(BUSY),
            "{}",
            a.body
        );
        assert!(a.session_cookie().is_none());
    }

    // The brake holds the name: even the right password is refused, and no session starts.
    let right = form.submit(ALICE, ALICE_PASSWORD, None, None).await;
    assert_eq!(right.status, 429);
    assert!(right.body.contains(HELD_NAME), "{}", right.body);
    assert!(right.session_cookie().is_none());
    assert_eq!(right.location, None);
}

#[tokio::test]
async fn one_client_trying_a_hundred_user_names_is_held_after_twenty_whatever_it_forwards() {
    let app = spawn(20, &[]).await;
    let form = SignInForm::open(&app.endpoint).await;
    // Each guess claims another origin; with no trusted proxy that claim is ignored.
    let guesses = (0..100)
        .map(|i| {
            (
                format!("user{i}"),
                "password".to_string(),
                Some(format!("203.0.113.{i}")),
            )
        })
        .collect();
    let answers = submit_all(&form, guesses).await;

    assert_eq!(count(&answers, 401), 20);
    assert_eq!(count(&answers, 429), 80);
    assert!(answers
        .iter()
        .filter(|a| a.status == 429)
        .all(|a| a.body.contains(HELD_ADDRESS) || a.body.contains(BUSY)));

    // The address is held for every name, even with the right password.
    let right = form.submit(ALICE, ALICE_PASSWORD, None, None).await;
    assert_eq!(right.status, 429);
    assert!(right.body.contains(HELD_ADDRESS), "{}", right.body);
    assert!(right.session_cookie().is_none());
}

#[tokio::test]
async fn behind_a_trusted_proxy_each_forwarded_client_has_its_own_limit() {
    let app = spawn(20, &["127.0.0.1"]).await;
    let form = SignInForm::open(&app.endpoint).await;
    // One client behind the proxy; half of its guesses prepend an address of their own choosing,
    // which the proxy's appended entry makes worthless.
    let guesses = (0..30)
        .map(|i| {
            let xff = if i % 2 == 0 {
                "203.0.113.7".to_string()
            } else {
                format!("198.51.100.{i}, 203.0.113.7")
            };
            (format!("user{i}"), "password".to_string(), Some(xff))
        })
        .collect();
    let answers = submit_all(&form, guesses).await;
    assert_eq!(count(&answers, 401), 20);
    assert_eq!(count(&answers, 429), 10);

    let held = form
        .submit(ALICE, ALICE_PASSWORD, None, Some("203.0.113.7"))
        .await;
    assert_eq!(held.status, 429);
    assert!(held.body.contains(HELD_ADDRESS), "{}", held.body);
    assert!(held.session_cookie().is_none());

    // Another client behind the same proxy signs in.
    let other = form
        .submit(ALICE, ALICE_PASSWORD, None, Some("203.0.113.8"))
        .await;
    assert_eq!(other.status, 303, "{}", other.body);
    assert_eq!(other.location.as_deref(), Some("/console/pipelines"));
    assert!(other.session_cookie().is_some());
}

#[tokio::test]
async fn with_every_password_check_in_use_a_sign_in_is_refused_at_once_and_not_counted() {
    let app = spawn(1, &[]).await;
    // Slow's password hash costs many times the default, so checking it holds the only permit
    // for a while.
    add_console_user_with_cost(app.dir.path(), "Slow", "slow password", 16).await;
    let form = SignInForm::open(&app.endpoint).await;
    let mut slow = form.submit_written("Slow", "wrong").await;
    // Wait until the slow check holds the permit: a probe is then refused as busy. A probe that
    // got the permit first was checked (401), and may have made the slow sign-in busy instead.
    let deadline = Instant::now() + Duration::from_secs(60);
    for probe in 0.. {
        let a = form
            .submit(&format!("probe{probe}"), "password", None, None)
            .await;
        if a.status == 429 {
            assert!(a.body.contains(BUSY), "{}", a.body);
            break;
        }
        assert_eq!(a.status, 401, "{}", a.body);
        assert!(
            Instant::now() < deadline,
            "the slow check never held the permit"
        );
        if slow.is_finished() {
            let answer = slow.await.expect("slow sign-in");
            assert!(answer.contains(BUSY), "{answer}");
            slow = form.submit_written("Slow", "wrong").await;
        }
    }
    // Ten guesses at Alice while it does: each refused at once, none checked.
    for i in 0..10 {
        let started = Instant::now();
        let a = form.submit(ALICE, &format!("guess {i}"), None, None).await;
        assert_eq!(a.status, 429, "guess {i}: {}", a.body);
        assert!(a.body.contains(BUSY), "{}", a.body);
        assert!(a.session_cookie().is_none());
        assert!(started.elapsed() < Duration::from_secs(2));
    }
    assert!(
        !slow.is_finished(),
        "the slow check ended before the busy refusals were made"
    );
    let answer = slow.await.expect("slow sign-in");
    assert!(answer.starts_with("HTTP/1.1 401"), "{answer}");

    // Ten refusals did not count as failures (five would hold the name): the right password works.
    let right = form.submit(ALICE, ALICE_PASSWORD, None, None).await;
    assert_eq!(right.status, 303, "{}", right.body);
    assert!(right.session_cookie().is_some());
}

/// Adds a console user whose argon2 hash costs `passes` passes over 19 MiB (the default is 2).
async fn add_console_user_with_cost(
    dir: &std::path::Path,
    name: &str,
    password: &str,
    passes: u32,
) {
    use argon2::password_hash::{rand_core::OsRng, PasswordHasher, SaltString};
    use lockgate_engine::users::{put_user, UserRecord};
    use lockgate_store::Store;
    let params = argon2::Params::new(19 * 1024, passes, 1, None).expect("params");
    let hash = argon2::Argon2::new(argon2::Algorithm::Argon2id, argon2::Version::V0x13, params)
        .hash_password(password.as_bytes(), &SaltString::generate(&mut OsRng))
        .expect("hash")
        .to_string();
    let store = lockgate_store_sqlite::SqliteStore::open(dir).expect("open store");
    let shared: std::sync::Arc<dyn Store> = std::sync::Arc::new(store.clone());
    put_user(
        shared.as_ref(),
        &UserRecord {
            name: name.into(),
            account_id: "123456789012".into(),
            access_key_id: format!("AKIACOSTLY{}", name.to_uppercase()),
            secret_access_key: format!("{name}-secret-access-key"),
            password_hash: Some(hash),
            created: 0,
        },
    )
    .await
    .expect("add user");
    store.close().expect("close store");
}

#[tokio::test]
async fn a_next_with_cr_lf_after_sign_in_leads_to_the_pipelines_list() {
    let app = spawn(2, &[]).await;
    let form = SignInForm::open(&app.endpoint).await;
    let answer = form
        .submit(
            ALICE,
            ALICE_PASSWORD,
            Some("/console/pipelines\r\nSet-Cookie: injected=1"),
            None,
        )
        .await;
    assert_eq!(answer.status, 303, "{}", answer.body);
    assert_eq!(answer.location.as_deref(), Some("/console/pipelines"));
    assert!(answer.session_cookie().is_some());
    assert!(!answer.cookies.iter().any(|c| c.starts_with("injected")));

    // The same `next` in the query, already signed in: straight on, to the list.
    let session = answer.session_cookie().expect("session").to_string();
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("HTTP client");
    for next in ["%0d%0aSet-Cookie:x", "/console/%0d%0aSet-Cookie:x"] {
        let r = http
            .get(format!("{}/console/signin?next={next}", app.endpoint))
            .header("cookie", format!("lockgate_session={session}"))
            .send()
            .await
            .expect("GET");
        assert_eq!(r.status().as_u16(), 303, "next={next}");
        assert_eq!(r.headers()[LOCATION], "/console/pipelines", "next={next}");
        assert!(cookies(r.headers()).is_empty());
    }
}

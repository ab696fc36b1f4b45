//! The command line: `serve`, `user add|list|remove`, `notify test`, `pipelines import` and
//! `worker`.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context;
use argon2::password_hash::{rand_core::OsRng, PasswordHasher, SaltString};
use clap::{Args, Parser, Subcommand};
use lockgate_engine::users::{self, UserRecord};
use lockgate_store::Store;
use lockgate_store_sqlite::SqliteStore;
use rand::distributions::{Alphanumeric, DistString};
use rand::Rng;

use crate::app::App;
use serde::Serialize;

use crate::config::{Config, EnvVars};

/// Lockgate: CodePipeline-style release gates on your own machines.
#[derive(Debug, Parser)]
#[command(name = "lockgate", version, about)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the server (CodePipeline API on one port; GET /healthz answers once ready).
    Serve(ServeArgs),
    /// Manage the users who can sign requests.
    #[command(subcommand)]
    User(UserCommand),
    /// Approval notifications.
    #[command(subcommand)]
    Notify(NotifyCommand),
    /// Pipelines of a running server.
    #[command(subcommand)]
    Pipelines(PipelinesCommand),
    /// Run the built-in executors (Commands, ...) for a server elsewhere, taking their jobs
    /// through its API with the AWS credentials the AWS CLI would use. SIGTERM stops taking
    /// jobs and lets running ones finish within `[worker] grace_seconds`.
    Worker(WorkerArgs),
}

#[derive(Debug, Args)]
struct WorkerArgs {
    /// The server's URL [default: http://<listen address of the configuration>].
    #[arg(long, env = "AWS_ENDPOINT_URL")]
    endpoint_url: Option<String>,
    /// Region to sign for [default: the configuration's region].
    #[arg(long)]
    region: Option<String>,
    /// How many jobs run at once [default: [worker] concurrency, 4].
    #[arg(long)]
    concurrency: Option<usize>,
    /// Where job workspaces are made [default: [worker] work_dir, or <data dir>/work].
    #[arg(long)]
    work_dir: Option<PathBuf>,
    /// The artifact store's directory, shared with the server [default: [artifacts] dir, or
    /// <data dir>/artifacts].
    #[arg(long)]
    artifacts_dir: Option<PathBuf>,
    /// Seconds between polls while no job waits.
    #[arg(long, default_value_t = 2)]
    poll_seconds: u64,
    /// Seconds one job may be held: the server's `[worker] job_timeout_seconds` or less; a
    /// longer run hands its job back with a continuation token every third of it [default:
    /// [worker] job_timeout_seconds, 600].
    #[arg(long)]
    job_timeout_seconds: Option<u64>,
    #[command(flatten)]
    common: CommonArgs,
}

#[derive(Debug, Subcommand)]
enum PipelinesCommand {
    /// Create or update the pipelines of a CloudFormation template (JSON or YAML, as `cdk synth`
    /// writes it) or of an `aws codepipeline get-pipeline` answer, through the server's API with
    /// the AWS credentials the AWS CLI would use.
    Import(ImportArgs),
}

#[derive(Debug, Args)]
struct ImportArgs {
    /// The template (JSON or YAML) or get-pipeline answer (JSON).
    file: PathBuf,
    /// The server's URL [default: http://<listen address of the configuration>].
    #[arg(long, env = "AWS_ENDPOINT_URL")]
    endpoint_url: Option<String>,
    /// Region to sign for and to write into ARNs [default: the configuration's region].
    #[arg(long)]
    region: Option<String>,
    #[command(flatten)]
    common: CommonArgs,
}

#[derive(Debug, Subcommand)]
enum NotifyCommand {
    /// Send a test message to every subscription of a topic and print each result.
    Test(NotifyTestArgs),
}

#[derive(Debug, Args)]
struct NotifyTestArgs {
    /// The topic ARN, as configured under [[topics]].
    topic_arn: String,
    #[command(flatten)]
    common: CommonArgs,
}

/// Settings shared by every command. Serialized, the flags given are the top layer of the
/// configuration (see `config`); flags not given are left out so that lower layers show through.
#[derive(Debug, Args, Serialize)]
struct CommonArgs {
    /// Configuration file (TOML); flags and LOCKGATE_* variables override it.
    #[arg(long, env = "LOCKGATE_CONFIG")]
    #[serde(skip)]
    config: Option<PathBuf>,
    /// Directory holding the database [env: LOCKGATE_DATA_DIR] [default: ./lockgate-data].
    #[arg(long)]
    #[serde(skip_serializing_if = "Option::is_none")]
    data_dir: Option<PathBuf>,
    /// The 12-digit account id in ARNs [env: LOCKGATE_ACCOUNT_ID] [default: 123456789012].
    #[arg(long)]
    #[serde(skip_serializing_if = "Option::is_none")]
    account_id: Option<String>,
}

#[derive(Debug, Args, Serialize)]
struct ServeArgs {
    #[command(flatten)]
    #[serde(flatten)]
    common: CommonArgs,
    /// Address to listen on [env: LOCKGATE_LISTEN] [default: 127.0.0.1:4680].
    #[arg(long)]
    #[serde(skip_serializing_if = "Option::is_none")]
    listen: Option<SocketAddr>,
    /// Region requests are signed for and ARNs name [env: LOCKGATE_REGION]
    /// [default: us-east-1].
    #[arg(long)]
    #[serde(skip_serializing_if = "Option::is_none")]
    region: Option<String>,
    /// Minutes a custom action's job may run before it times out
    /// [env: LOCKGATE_JOB_TIMEOUT_MINUTES] [default: 1440].
    #[arg(long)]
    #[serde(skip_serializing_if = "Option::is_none")]
    job_timeout_minutes: Option<u64>,
    /// Base URL of every link in notifications [env: LOCKGATE_PUBLIC_URL]
    /// [default: http://<listen address>].
    #[arg(long)]
    #[serde(skip_serializing_if = "Option::is_none")]
    public_url: Option<String>,
    /// Do not run the built-in executors (Commands, CodeBuild, git sources, S3 deploy) in this
    /// process; `lockgate worker` processes elsewhere take their jobs [config: [worker] local].
    #[arg(long)]
    #[serde(skip)]
    no_local_worker: bool,
}

#[derive(Debug, Subcommand)]
enum UserCommand {
    /// Add a user; keys and a password are generated and printed once when not given.
    Add(UserAddArgs),
    /// List users (names, ARNs and access key ids; never secrets).
    List(UserListArgs),
    /// Remove a user.
    Remove(UserRemoveArgs),
}

#[derive(Debug, Args)]
struct UserAddArgs {
    /// The user name; the user's ARN is arn:aws:iam::<account>:user/<NAME>.
    name: String,
    /// Access key id to use instead of a generated one.
    #[arg(long, requires = "secret_access_key")]
    access_key_id: Option<String>,
    /// Secret access key to use instead of a generated one.
    #[arg(long, requires = "access_key_id")]
    secret_access_key: Option<String>,
    /// Console password to use instead of a generated one.
    #[arg(long)]
    password: Option<String>,
    #[command(flatten)]
    common: CommonArgs,
}

#[derive(Debug, Args)]
struct UserListArgs {
    #[command(flatten)]
    common: CommonArgs,
}

#[derive(Debug, Args)]
struct UserRemoveArgs {
    /// The user name.
    name: String,
    #[command(flatten)]
    common: CommonArgs,
}

impl CommonArgs {
    /// The configuration: these flags (or `flags`, which include them) over the environment
    /// over the `--config` file over the defaults.
    fn resolve(&self, flags: impl Serialize) -> anyhow::Result<Config> {
        Config::load(self.config.as_deref(), EnvVars::from_process(), flags)
    }

    fn open_store(&self) -> anyhow::Result<(Config, Arc<dyn Store>)> {
        let config = self.resolve(self)?;
        let store = SqliteStore::open_with(&config.data_dir, config.store.clone())
            .with_context(|| format!("cannot open the store in {}", config.data_dir.display()))?;
        Ok((config, Arc::new(store)))
    }
}

impl Cli {
    /// Runs the chosen command.
    pub async fn run(self) -> anyhow::Result<()> {
        match self.command {
            Command::Serve(args) => serve(args).await,
            Command::User(UserCommand::Add(args)) => user_add(args).await,
            Command::User(UserCommand::List(args)) => user_list(args).await,
            Command::User(UserCommand::Remove(args)) => user_remove(args).await,
            Command::Notify(NotifyCommand::Test(args)) => notify_test(args).await,
            Command::Pipelines(PipelinesCommand::Import(args)) => pipelines_import(args).await,
            Command::Worker(args) => worker(args).await,
        }
    }
}

async fn serve(args: ServeArgs) -> anyhow::Result<()> {
    let mut config = args.common.resolve(&args)?;
    if args.no_local_worker {
        config.worker.local = false;
    }
    let app = App::build(config).await?;
    app.run(shutdown_signal()).await
}

/// Resolves on SIGTERM or Ctrl-C.
async fn shutdown_signal() {
    let ctrl_c = async {
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = term => {},
    }
    tracing::info!("shutting down");
}

async fn pipelines_import(args: ImportArgs) -> anyhow::Result<()> {
    let config = args.common.resolve(&args.common)?;
    let options = crate::import::ImportOptions {
        endpoint: args
            .endpoint_url
            .unwrap_or_else(|| format!("http://{}", config.listen)),
        region: args.region.unwrap_or(config.region),
        account_id: config.account_id,
    };
    crate::import::import(&args.file, &options).await
}

async fn worker(args: WorkerArgs) -> anyhow::Result<()> {
    let config = args.common.resolve(&args.common)?;
    let endpoint = args
        .endpoint_url
        .unwrap_or_else(|| format!("http://{}", config.listen));
    let region = args.region.unwrap_or_else(|| config.region.clone());
    let client = crate::client::Client::new(&endpoint, &region).await?;
    let channel = crate::worker::remote::RemoteChannel::new(
        client,
        std::time::Duration::from_secs(args.poll_seconds.max(1)),
    );
    let mut settings = config.worker.settings(&config.data_dir);
    if let Some(n) = args.concurrency {
        anyhow::ensure!(
            (1..=256).contains(&n),
            "--concurrency must be between 1 and 256"
        );
        settings.concurrency = n;
    }
    if let Some(dir) = args.work_dir {
        settings.work_dir = dir;
    }
    if let Some(seconds) = args.job_timeout_seconds {
        let range = crate::worker::MIN_JOB_TIMEOUT_SECONDS..=crate::worker::MAX_JOB_TIMEOUT_SECONDS;
        anyhow::ensure!(
            range.contains(&seconds),
            "--job-timeout-seconds must be between {} and {}",
            range.start(),
            range.end()
        );
        settings.job_timeout = std::time::Duration::from_secs(seconds);
    }
    let mut artifacts = config.artifacts.clone();
    if let Some(dir) = args.artifacts_dir {
        artifacts.dir = dir;
    }
    let artifacts = artifacts.open()?;
    tracing::info!(endpoint = %endpoint, "lockgate worker starting");
    let worker = lockgate_worker::Worker::new(
        Arc::new(channel),
        crate::worker::executors(&config),
        artifacts,
        settings,
    );
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let stopping = tokio::spawn(async move {
        shutdown_signal().await;
        let _ = stop_tx.send(true);
    });
    worker.run(stop_rx).await;
    stopping.abort();
    Ok(())
}

async fn notify_test(args: NotifyTestArgs) -> anyhow::Result<()> {
    let config = args.common.resolve(&args.common)?;
    let results = lockgate_notify::send_test(config.notify, &args.topic_arn).await?;
    if results.is_empty() {
        anyhow::bail!("topic {} has no subscriptions", args.topic_arn);
    }
    let mut failed = 0;
    for r in &results {
        match &r.result {
            Ok(()) => println!("OK      {}", r.subscription),
            Err(e) => {
                failed += 1;
                println!("FAILED  {}: {e}", r.subscription);
            }
        }
    }
    if failed > 0 {
        anyhow::bail!("{failed} of {} subscriptions failed", results.len());
    }
    Ok(())
}

fn valid_user_name(name: &str) -> bool {
    // IAM user names: 1–64 characters of letters, digits and +=,.@_-.
    !name.is_empty()
        && name.len() <= 64
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "+=,.@_-".contains(c))
}

fn generated_access_key_id() -> String {
    const UPPER: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
    let mut rng = rand::thread_rng();
    let tail: String = (0..16)
        .map(|_| UPPER[rng.gen_range(0..UPPER.len())] as char)
        .collect();
    format!("AKIA{tail}")
}

async fn user_add(args: UserAddArgs) -> anyhow::Result<()> {
    if !valid_user_name(&args.name) {
        anyhow::bail!(
            "user name {:?} is not valid: use 1-64 letters, digits or +=,.@_-",
            args.name
        );
    }
    let (config, store) = args.common.open_store()?;
    if users::get_user(store.as_ref(), &args.name).await?.is_some() {
        anyhow::bail!("user {} already exists", args.name);
    }
    let existing = users::list_users(store.as_ref()).await?;
    let generated_keys = args.access_key_id.is_none();
    let access_key_id = args.access_key_id.unwrap_or_else(generated_access_key_id);
    if existing.iter().any(|u| u.access_key_id == access_key_id) {
        anyhow::bail!("access key id {access_key_id} is already in use");
    }
    let secret_access_key = args
        .secret_access_key
        .unwrap_or_else(|| Alphanumeric.sample_string(&mut rand::thread_rng(), 40));
    let generated_password = args.password.is_none();
    let password = args
        .password
        .unwrap_or_else(|| Alphanumeric.sample_string(&mut rand::thread_rng(), 20));
    let salt = SaltString::generate(&mut OsRng);
    let password_hash = argon2::Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map_err(|e| anyhow::anyhow!("cannot hash the password: {e}"))?
        .to_string();
    let user = UserRecord {
        name: args.name.clone(),
        account_id: config.account_id.clone(),
        access_key_id: access_key_id.clone(),
        secret_access_key: secret_access_key.clone(),
        password_hash: Some(password_hash),
        created: lockgate_engine::Clock::now_millis(&lockgate_engine::SystemClock),
    };
    users::put_user(store.as_ref(), &user).await?;
    let mut out = format!(
        "Created user {}\n  arn:               {}\n  access key id:     {}\n",
        user.name,
        user.caller().arn(),
        access_key_id
    );
    if generated_keys {
        out.push_str(&format!("  secret access key: {secret_access_key}\n"));
    }
    if generated_password {
        out.push_str(&format!("  console password:  {password}\n"));
    }
    if generated_keys || generated_password {
        out.push_str("Generated secrets are shown only once; keep them safe.\n");
    }
    print!("{out}");
    Ok(())
}

async fn user_list(args: UserListArgs) -> anyhow::Result<()> {
    let (_, store) = args.common.open_store()?;
    let all = users::list_users(store.as_ref()).await?;
    if all.is_empty() {
        println!("No users. Add one with: lockgate user add NAME");
        return Ok(());
    }
    println!("{:<24} {:<24} ARN", "NAME", "ACCESS KEY ID");
    for u in all {
        println!(
            "{:<24} {:<24} {}",
            u.name,
            u.access_key_id,
            u.caller().arn()
        );
    }
    Ok(())
}

async fn user_remove(args: UserRemoveArgs) -> anyhow::Result<()> {
    let (_, store) = args.common.open_store()?;
    if users::remove_user(store.as_ref(), &args.name).await? {
        println!("Removed user {}", args.name);
        Ok(())
    } else {
        anyhow::bail!("no user named {}", args.name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn user_names_follow_iam_rules() {
        assert!(valid_user_name("Bob"));
        assert!(valid_user_name("release.manager@example"));
        assert!(!valid_user_name(""));
        assert!(!valid_user_name("bob smith"));
        assert!(!valid_user_name(&"x".repeat(65)));
    }

    #[test]
    fn generated_access_keys_look_like_aws_keys() {
        let k = generated_access_key_id();
        assert_eq!(k.len(), 20);
        assert!(k.starts_with("AKIA"));
    }
}

//! The yardstick for the read measurement: a bare axum server, in a process of its own, that
//! answers every request with one fixed body (a real GetPipelineState answer captured from
//! the server under test). Measured with the same client, connections and window right after
//! the real reads, it shows what this machine's HTTP stack allows, so the report can give
//! Lockgate's reads as a share of it (issue 10 asks for at least 0.6).
//!
//! It is `lockgate-bench bare-server` (a hidden command): it reads the body from standard
//! input, prints the address it listens on, and serves until killed.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};

use anyhow::{anyhow, Context};
use axum::http::header::CONTENT_TYPE;
use bytes::Bytes;

/// The content type of awsJson1.1 answers, as Lockgate sends it.
const AWS_JSON: &str = "application/x-amz-json-1.1";

/// Runs the bare server in this process: the body comes from standard input; the address is
/// printed as the first line of standard output.
pub fn serve() -> anyhow::Result<()> {
    let mut body = Vec::new();
    std::io::stdin()
        .read_to_end(&mut body)
        .context("reading the body")?;
    let body = Bytes::from(body);
    // The same runtime as `lockgate serve`: one worker thread per CPU.
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async move {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let mut stdout = std::io::stdout();
        writeln!(stdout, "{}", listener.local_addr()?)?;
        stdout.flush()?;
        let app = axum::Router::new().fallback(move || {
            let body = body.clone();
            async move { ([(CONTENT_TYPE, AWS_JSON)], body) }
        });
        axum::serve(listener, app).await?;
        Ok(())
    })
}

/// A running bare server, killed when dropped.
pub struct BareServer {
    child: Child,
    /// Where it listens.
    pub addr: SocketAddr,
}

impl BareServer {
    /// Starts `lockgate-bench bare-server` answering `body`.
    pub fn start(body: &[u8]) -> anyhow::Result<BareServer> {
        let child = Command::new(std::env::current_exe()?)
            .arg("bare-server")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .context("starting the bare server")?;
        let mut server = BareServer {
            addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            child,
        };
        let mut stdin = server
            .child
            .stdin
            .take()
            .context("the bare server's stdin")?;
        stdin.write_all(body)?;
        drop(stdin);
        let stdout = server
            .child
            .stdout
            .take()
            .context("the bare server's stdout")?;
        let mut line = String::new();
        BufReader::new(stdout).read_line(&mut line)?;
        server.addr = line
            .trim()
            .parse()
            .map_err(|e| anyhow!("the bare server printed {line:?} instead of its address: {e}"))?;
        Ok(server)
    }

    /// The server's process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for BareServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

//! `tessera` processes started from the test binary's build.

use std::process::Stdio;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, BufReader, Lines};
use tokio::process::{Child, ChildStdout, Command};

/// A started process and the line it announced itself with.
pub struct Process {
    /// The process (killed when dropped).
    pub child: Child,
    /// The line it announced itself with.
    pub announced: String,
    _stdout: Lines<BufReader<ChildStdout>>,
}

/// The path of the `tessera` binary under test.
pub const TESSERA: &str = env!("CARGO_BIN_EXE_tessera");

/// `tessera ARGS`, logging at warn (or as `TEST_SERVER_LOG` says, a
/// `RUST_LOG` filter), without the `TESSERA_*` variables of the test's
/// environment.
fn command(args: &[&str]) -> std::process::Command {
    let mut cmd = std::process::Command::new(TESSERA);
    let log = std::env::var("TEST_SERVER_LOG").unwrap_or_else(|_| "warn".into());
    cmd.args(args).env("RUST_LOG", log);
    for (name, _) in std::env::vars() {
        if name.starts_with("TESSERA_") {
            cmd.env_remove(name);
        }
    }
    cmd
}

/// Runs `tessera ARGS` for at most `limit`: its exit status, stdout and
/// stderr, or `None` (and the process killed) if it was still running.
pub async fn run_within(args: &[&str], limit: Duration) -> Option<std::process::Output> {
    let mut cmd = Command::from(command(args));
    cmd.kill_on_drop(true);
    tokio::time::timeout(limit, cmd.output())
        .await
        .ok()
        .map(Result::unwrap)
}

/// Runs `tessera ARGS` to its end: exit status, stdout and stderr.
pub fn run(args: &[&str]) -> std::process::Output {
    command(args).output().unwrap()
}

/// Starts `tessera ARGS` and waits for the line starting with `announce`.
pub async fn spawn(args: &[&str], announce: &str) -> Process {
    let mut cmd = Command::from(command(args));
    cmd.stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .kill_on_drop(true);
    let mut child = cmd.spawn().unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let announced = tokio::time::timeout(Duration::from_secs(60), async {
        loop {
            let line = lines
                .next_line()
                .await
                .unwrap()
                .expect("process announced itself");
            if line.starts_with(announce) {
                return line;
            }
        }
    })
    .await
    .expect("process started in time");
    Process {
        child,
        announced,
        _stdout: lines,
    }
}

/// Kills `process` with SIGKILL and waits until it is gone.
pub async fn kill(mut process: Process) {
    process.child.start_kill().unwrap();
    process.child.wait().await.unwrap();
}

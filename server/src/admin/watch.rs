//! `--watch`: asks the admin API again every interval and redraws, until
//! the job is done or Ctrl-C. On a terminal the progress line (or the
//! status screen) is redrawn in place; otherwise one line (or one screen)
//! is printed per interval, and with `--json` one JSON object per line.

use std::future::Future;
use std::io::{IsTerminal, Write};
use std::time::Duration;

use anyhow::{Result, bail};
use serde::Serialize;

use super::screen::JobProgress;

/// How often a progress view asks again.
pub const PROGRESS_INTERVAL: Duration = Duration::from_secs(1);
/// How often the status screen asks again.
pub const SCREEN_INTERVAL: Duration = Duration::from_secs(2);

/// How a watch prints.
#[derive(Debug, Clone, Copy)]
pub struct Output {
    /// One JSON object per line instead of text.
    pub json: bool,
    /// Redraw in place, in colour (stdout is a terminal).
    pub terminal: bool,
}

impl Output {
    /// JSON if asked; in place when stdout is a terminal.
    pub fn new(json: bool) -> Output {
        Output {
            json,
            terminal: !json && std::io::stdout().is_terminal(),
        }
    }
}

/// Sleeps `interval`; an error if Ctrl-C comes first.
async fn pause(interval: Duration) -> Result<()> {
    tokio::select! {
        () = tokio::time::sleep(interval) => Ok(()),
        _ = tokio::signal::ctrl_c() => bail!("interrupted"),
    }
}

/// Follows a job's progress: `ask` returns what the API said (printed as
/// is with `--json`) and the progress it shows. Returns once it is done.
pub async fn progress<T, F, Fut>(out: Output, mut ask: F) -> Result<()>
where
    T: Serialize,
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<(T, JobProgress)>>,
{
    let mut base = None;
    let mut stdout = std::io::stdout();
    loop {
        let (answer, progress) = ask().await?;
        let base = *base.get_or_insert(progress.done);
        if out.json {
            writeln!(stdout, "{}", serde_json::to_string(&answer)?)?;
        } else if out.terminal {
            write!(stdout, "\r\x1b[2K{}", progress.line(base))?;
        } else {
            writeln!(stdout, "{}", progress.line(base))?;
        }
        stdout.flush()?;
        if progress.finished {
            if !out.json {
                if out.terminal {
                    writeln!(stdout)?;
                }
                writeln!(stdout, "{}: done", progress.label)?;
            }
            return Ok(());
        }
        if let Err(e) = pause(PROGRESS_INTERVAL).await {
            if out.terminal {
                writeln!(stdout)?;
            }
            return Err(e);
        }
    }
}

/// Shows the screen `ask` draws (JSON: what the API said) every
/// [`SCREEN_INTERVAL`] until Ctrl-C.
pub async fn screen<T, F, Fut>(out: Output, mut ask: F) -> Result<()>
where
    T: Serialize,
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<(T, String)>>,
{
    let mut stdout = std::io::stdout();
    loop {
        let (answer, text) = ask().await?;
        if out.json {
            writeln!(stdout, "{}", serde_json::to_string(&answer)?)?;
        } else if out.terminal {
            // Home, clear, draw.
            write!(stdout, "\x1b[H\x1b[2J{text}")?;
        } else {
            writeln!(stdout, "{text}")?;
        }
        stdout.flush()?;
        pause(SCREEN_INTERVAL).await?;
    }
}

//! Where a scheduled walk (a scrub pass) stands, kept in a file between
//! steps so that a restart resumes where it stopped: when the last full
//! pass finished, and the position of the pass under way, if one is.

use std::path::PathBuf;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::datadir::write_private_file;

/// A pass's saved state: `finished cursor` in its file, the cursor being
/// whatever text the job writes its position as (`-`: no pass under way).
#[derive(Debug)]
pub struct PassState {
    file: PathBuf,
    /// Unix seconds when the last full pass finished (0: never).
    finished: u64,
    /// The position of the pass under way, if one is.
    cursor: Option<String>,
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

impl PassState {
    /// The state saved in `file`; anything missing or unreadable starts afresh.
    pub fn load(file: PathBuf) -> Self {
        let text = std::fs::read_to_string(&file).unwrap_or_default();
        let mut words = text.split_whitespace();
        let finished = words.next().and_then(|w| w.parse().ok()).unwrap_or(0);
        let cursor = words.next().filter(|w| *w != "-").map(str::to_owned);
        PassState {
            file,
            finished,
            cursor,
        }
    }

    /// Saves the state (a failure is logged: the pass goes on, and would
    /// at worst redo some work after a restart).
    pub fn save(&self) {
        let text = format!(
            "{} {}",
            self.finished,
            self.cursor.as_deref().unwrap_or("-")
        );
        if let Err(e) = write_private_file(&self.file, &text) {
            tracing::warn!(error = %e, file = %self.file.display(), "saving a pass's position failed");
        }
    }

    /// The position of the pass under way.
    pub fn cursor(&self) -> Option<&str> {
        self.cursor.as_deref()
    }

    /// Moves the pass under way to `cursor` (whitespace-free text).
    pub fn set_cursor(&mut self, cursor: String) {
        self.cursor = Some(cursor);
    }

    /// Whether the last full pass finished at least `interval` ago.
    pub fn due(&self, interval: Duration) -> bool {
        now().saturating_sub(self.finished) >= interval.as_secs()
    }

    /// Records a full pass finished now, and saves.
    pub fn finish(&mut self) {
        self.finished = now();
        self.cursor = None;
        self.save();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn state_round_trips_and_garbage_starts_afresh() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("scrub.state");
        let mut state = PassState::load(file.clone());
        assert!(state.due(Duration::from_secs(86_400)));
        assert_eq!(state.cursor(), None);
        state.set_cursor("st-1/abc".to_owned());
        state.save();
        let loaded = PassState::load(file.clone());
        assert_eq!(loaded.cursor(), Some("st-1/abc"));
        assert!(loaded.due(Duration::from_secs(86_400)));

        let mut state = loaded;
        state.finish();
        let loaded = PassState::load(file.clone());
        assert_eq!(loaded.cursor(), None);
        assert!(!loaded.due(Duration::from_secs(86_400)));
        assert!(loaded.due(Duration::ZERO));

        std::fs::write(&file, "nonsense").unwrap();
        let garbage = PassState::load(file);
        assert_eq!(garbage.cursor(), None);
        assert!(garbage.due(Duration::from_secs(1)));
    }
}

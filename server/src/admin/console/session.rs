//! Console sessions: a random id in an HttpOnly, SameSite=Strict cookie,
//! kept in a bounded table with an idle expiry, each with its own CSRF
//! token; and the cross-site checks every form post passes.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use http::{HeaderMap, header};
use rand::RngCore as _;

/// The session cookie's name.
pub(crate) const COOKIE: &str = "tessera_console";

/// Most sessions kept at once: past it the one idle longest is dropped.
const MAX_SESSIONS: usize = 1024;

/// A session unused this long is over.
pub(crate) const IDLE: Duration = Duration::from_secs(30 * 60);

/// Who a session acts as.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Session {
    /// Its id, as in the cookie.
    pub id: String,
    /// The access key its S3 requests are signed with.
    pub key: String,
    /// The token every form of this session must carry.
    pub csrf: String,
}

struct Entry {
    session: Session,
    last_used: Instant,
}

/// The sessions of one server.
#[derive(Default)]
pub(crate) struct Sessions {
    table: Mutex<HashMap<String, Entry>>,
}

/// 32 random bytes, hex.
fn random_token() -> String {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    hex::encode(bytes)
}

impl Sessions {
    /// Opens a session acting as `key`: its id, for the cookie.
    pub fn open(&self, key: &str) -> String {
        let id = random_token();
        let session = Session {
            id: id.clone(),
            key: key.to_owned(),
            csrf: random_token(),
        };
        let now = Instant::now();
        let mut table = self.table.lock().unwrap_or_else(|p| p.into_inner());
        table.retain(|_, e| now.duration_since(e.last_used) < IDLE);
        if table.len() >= MAX_SESSIONS
            && let Some(oldest) = table
                .iter()
                .min_by_key(|(_, e)| e.last_used)
                .map(|(id, _)| id.clone())
        {
            table.remove(&oldest);
        }
        table.insert(
            id.clone(),
            Entry {
                session,
                last_used: now,
            },
        );
        id
    }

    /// The live session of `headers`' cookie (its idle clock restarted).
    pub fn get(&self, headers: &HeaderMap) -> Option<Session> {
        let id = cookie(headers, COOKIE)?;
        let now = Instant::now();
        let mut table = self.table.lock().unwrap_or_else(|p| p.into_inner());
        let entry = table.get_mut(id)?;
        if now.duration_since(entry.last_used) >= IDLE {
            table.remove(id);
            return None;
        }
        entry.last_used = now;
        Some(entry.session.clone())
    }

    /// Ends session `id`.
    pub fn close(&self, id: &str) {
        self.table
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(id);
    }

    /// Ends every session acting as `key` (deleted).
    pub fn close_key(&self, key: &str) {
        self.table
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .retain(|_, e| e.session.key != key);
    }
}

/// The value of cookie `name` in `headers`.
fn cookie<'h>(headers: &'h HeaderMap, name: &str) -> Option<&'h str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}

/// The `Set-Cookie` value of session `id` (empty `id`: the cookie removed).
pub(crate) fn set_cookie(id: &str) -> String {
    let age = if id.is_empty() { 0 } else { IDLE.as_secs() };
    // The admin listener serves plain HTTP, so no `Secure` attribute.
    format!("{COOKIE}={id}; Path=/console/; HttpOnly; SameSite=Strict; Max-Age={age}")
}

/// Whether a form post comes from the console's own pages: a browser
/// that says where it comes from must say same-origin (`Sec-Fetch-Site`),
/// and an `Origin` must name the host the request was sent to.
pub(crate) fn same_origin(headers: &HeaderMap) -> bool {
    let text = |name| headers.get(name).and_then(|v| v.to_str().ok());
    if let Some(site) = text("sec-fetch-site")
        && site != "same-origin"
        && site != "none"
    {
        return false;
    }
    match text(header::ORIGIN.as_str()) {
        None => true,
        Some(origin) => {
            let host = text(header::HOST.as_str()).unwrap_or_default();
            let stripped = origin
                .strip_prefix("http://")
                .or_else(|| origin.strip_prefix("https://"));
            !host.is_empty() && stripped == Some(host)
        }
    }
}

/// Compares two tokens in time independent of where they differ.
pub(crate) fn tokens_match(a: &str, b: &str) -> bool {
    a.len() == b.len()
        && a.bytes()
            .zip(b.bytes())
            .fold(0u8, |acc, (x, y)| acc | (x ^ y))
            == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(*k, v.parse().expect("header value"));
        }
        h
    }

    #[test]
    fn sessions_are_found_by_cookie_and_closed() {
        let sessions = Sessions::default();
        let id = sessions.open("AKID");
        let h = headers(&[("cookie", &format!("other=1; {COOKIE}={id}"))]);
        assert_eq!(sessions.get(&h).map(|s| s.key), Some("AKID".to_owned()));
        assert!(
            sessions
                .get(&headers(&[("cookie", "tessera_console=nope")]))
                .is_none()
        );
        sessions.close(&id);
        assert!(sessions.get(&h).is_none());
    }

    #[test]
    fn the_table_is_bounded() {
        let sessions = Sessions::default();
        for _ in 0..MAX_SESSIONS + 10 {
            sessions.open("AKID");
        }
        let len = sessions.table.lock().map(|t| t.len()).unwrap_or(0);
        assert_eq!(len, MAX_SESSIONS);
    }

    #[test]
    fn cross_site_posts_are_told_apart() {
        assert!(same_origin(&headers(&[("host", "a:1")])));
        assert!(same_origin(&headers(&[
            ("host", "a:1"),
            ("origin", "http://a:1"),
            ("sec-fetch-site", "same-origin")
        ])));
        assert!(!same_origin(&headers(&[
            ("host", "a:1"),
            ("origin", "http://evil:1")
        ])));
        assert!(!same_origin(&headers(&[
            ("host", "a:1"),
            ("sec-fetch-site", "cross-site")
        ])));
        assert!(!same_origin(&headers(&[
            ("host", "a:1"),
            ("origin", "null")
        ])));
    }
}

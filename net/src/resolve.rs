//! Name lookups of peer addresses, one at a time per name and remembered
//! briefly.
//!
//! The system resolver (`getaddrinfo`) blocks a thread of tokio's blocking
//! pool for as long as the lookup takes, and a name whose machine is gone
//! can take seconds: Docker's DNS, for one, leaves the name of a killed
//! container unanswered. Calls to a dead peer are many (every raft
//! heartbeat, every read's leadership check, every shard read), so one
//! lookup each would fill the whole blocking pool and stall everything
//! else that needs it (metadata applies, encoding, file IO). Here a name
//! is looked up by one caller at a time, the others waiting for its answer
//! (or for their own deadline), and each answer, found or not, serves
//! every caller for [`REMEMBER`]: at most one blocked thread per name.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

/// How long a lookup's answer (addresses or failure) is reused: short, so
/// a peer that comes back at another address is found within a second.
const REMEMBER: Duration = Duration::from_secs(1);

/// The last answer for one name, and the lock its next lookup holds.
type Slot = Arc<tokio::sync::Mutex<Option<(Instant, Result<Vec<SocketAddr>, String>)>>>;

/// Looks up `host:port` names, one lookup per name at a time.
#[derive(Default)]
pub(crate) struct Resolver {
    names: Mutex<HashMap<String, Slot>>,
}

impl Resolver {
    /// The socket addresses of `addr` (`host:port`, or an IP address and port).
    pub(crate) async fn resolve(&self, addr: &str) -> Result<Vec<SocketAddr>, String> {
        if let Ok(ip) = addr.parse::<SocketAddr>() {
            return Ok(vec![ip]);
        }
        let slot = self
            .names
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .entry(addr.to_owned())
            .or_default()
            .clone();
        let mut last = slot.lock().await;
        if let Some((at, answer)) = last.as_ref()
            && at.elapsed() < REMEMBER
        {
            return answer.clone();
        }
        let answer = match tokio::net::lookup_host(addr).await {
            Ok(found) => {
                let found: Vec<SocketAddr> = found.collect();
                if found.is_empty() {
                    Err(format!("no address found for {addr}"))
                } else {
                    Ok(found)
                }
            }
            Err(e) => Err(e.to_string()),
        };
        *last = Some((Instant::now(), answer.clone()));
        answer
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn addresses_and_names_resolve() {
        let r = Resolver::default();
        assert_eq!(
            r.resolve("127.0.0.1:7000").await.unwrap(),
            vec!["127.0.0.1:7000".parse().unwrap()]
        );
        let local = r.resolve("localhost:7000").await.unwrap();
        assert!(
            local
                .iter()
                .all(|a| a.port() == 7000 && a.ip().is_loopback())
        );
        assert!(r.resolve("no-such-host.invalid:7000").await.is_err());
    }
}

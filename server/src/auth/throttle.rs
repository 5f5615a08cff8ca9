//! Throttling of failed logins, per account and per address.
//!
//! A fixed window per key: after `limit` failures inside `window`, further
//! attempts are refused until the window ends, whether the secret is right
//! or not (otherwise the lock would tell a guesser when it hit). A success
//! clears the account's count. State is in memory: a restart forgives, which
//! costs an attacker a restart they cannot cause.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

pub struct Throttle {
    limit: u32,
    window: Duration,
    failures: Mutex<HashMap<String, (Instant, u32)>>,
}

impl Throttle {
    pub fn new(limit: u32, window: Duration) -> Self {
        Throttle { limit, window, failures: Mutex::new(HashMap::new()) }
    }

    /// `Some(wait)` when `key` is locked out.
    pub fn check(&self, key: &str, now: Instant) -> Option<Duration> {
        let failures = self.failures.lock().unwrap_or_else(|p| p.into_inner());
        match failures.get(key) {
            Some((start, count)) if *count >= self.limit && now < *start + self.window => {
                Some(*start + self.window - now)
            }
            _ => None,
        }
    }

    pub fn fail(&self, key: &str, now: Instant) {
        let mut failures = self.failures.lock().unwrap_or_else(|p| p.into_inner());
        // Forget expired windows so the map stays as small as the attack.
        if failures.len() > 10_000 {
            failures.retain(|_, (start, _)| now < *start + self.window);
        }
        let entry = failures.entry(key.to_owned()).or_insert((now, 0));
        if now >= entry.0 + self.window {
            *entry = (now, 0);
        }
        entry.1 += 1;
    }

    pub fn succeed(&self, key: &str) {
        self.failures.lock().unwrap_or_else(|p| p.into_inner()).remove(key);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locks_after_the_limit_until_the_window_ends() {
        let t = Throttle::new(3, Duration::from_secs(60));
        let now = Instant::now();
        for _ in 0..3 {
            assert!(t.check("a", now).is_none());
            t.fail("a", now);
        }
        assert!(t.check("a", now).is_some());
        assert!(t.check("b", now).is_none(), "other keys unaffected");
        assert!(t.check("a", now + Duration::from_secs(61)).is_none());
        t.succeed("a");
        assert!(t.check("a", now).is_none());
    }
}

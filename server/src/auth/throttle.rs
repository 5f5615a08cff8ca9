//! Throttling of failed logins: per (account, address), per address, and per
//! account over all addresses.
//!
//! Fixed windows, one per key, starting at the first attempt counted under
//! it. An attempt is counted *before* its secret is checked, in the same
//! critical section as the limit check ([`LoginThrottle::reserve`]), so N
//! concurrent guesses cannot get past a limit smaller than N. After the check
//! the attempt is settled: a right secret clears its (account, address) count
//! and gives back the rest ([`LoginThrottle::succeeded`]); an attempt that was
//! never checked (the server was busy) is given back whole
//! ([`LoginThrottle::refund`]); a wrong one stays counted.
//!
//! Once a key is at its limit every attempt under it is refused until its
//! window ends, whether the secret is right or not (otherwise the lock would
//! tell a guesser when it hit).
//!
//! * `(account, address)` holds the lock a person meets after mistyping: it
//!   is the only one a flood from one address can raise for one account, so
//!   someone flooding an account from their address locks only themselves;
//!   its owner still logs in from any other address.
//! * `address` stops one address from spraying many accounts (or unknown
//!   names).
//! * `account` (all addresses) bounds how many guesses an account takes in a
//!   window from many addresses at once. It is set to several times the
//!   `(account, address)` limit, so one address alone can never reach it.
//!
//! The tables are bounded: each holds at most `max_entries` keys. When one is
//! full, expired windows go first, then the oldest eighth. Keys are short:
//! the caller refuses logins that cannot be a login before counting them, and
//! addresses are kept as [`address_key`]s. State is in memory: a restart
//! forgives, which costs an attacker a restart they cannot cause.

use std::collections::HashMap;
use std::hash::Hash;
use std::net::{IpAddr, Ipv6Addr};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// The limits of a [`LoginThrottle`].
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Failed logins per account from one address, in one window.
    pub per_pair: u32,
    /// Failed logins from one address, over all accounts.
    pub per_address: u32,
    /// Failed logins per account, over all addresses.
    pub per_account: u32,
    pub window: Duration,
    /// Most keys each of the three tables holds.
    pub max_entries: usize,
}

/// An attempt counted by [`LoginThrottle::reserve`]. Left alone it stays
/// counted as a failure; settle it with [`LoginThrottle::succeeded`] or
/// [`LoginThrottle::refund`] otherwise.
#[derive(Debug)]
#[must_use = "an attempt is a failure unless settled otherwise"]
pub struct Attempt {
    account: String,
    address: IpAddr,
    at: Instant,
}

pub struct LoginThrottle {
    limits: Limits,
    tables: Mutex<Tables>,
}

#[derive(Default)]
struct Tables {
    pair: Table<(String, IpAddr)>,
    address: Table<IpAddr>,
    account: Table<String>,
}

#[derive(Debug, Clone, Copy)]
struct Window {
    start: Instant,
    count: u32,
}

struct Table<K> {
    windows: HashMap<K, Window>,
}

impl<K> Default for Table<K> {
    fn default() -> Self {
        Table { windows: HashMap::new() }
    }
}

impl<K: Hash + Eq + Clone> Table<K> {
    /// Failures counted under `key` in its current window, and when that window ends.
    fn current(&self, key: &K, now: Instant, window: Duration) -> Option<(u32, Instant)> {
        let w = self.windows.get(key)?;
        let end = w.start + window;
        (now < end).then_some((w.count, end))
    }

    /// `Some(wait)` when `key` is at `limit`.
    fn locked(&self, key: &K, now: Instant, limit: u32, window: Duration) -> Option<Duration> {
        self.current(key, now, window).filter(|(count, _)| *count >= limit).map(|(_, end)| end - now)
    }

    fn count(&mut self, key: &K, now: Instant, window: Duration, max_entries: usize) {
        if !self.windows.contains_key(key) && self.windows.len() >= max_entries {
            self.make_room(now, window, max_entries);
        }
        let w = self.windows.entry(key.clone()).or_insert(Window { start: now, count: 0 });
        if now >= w.start + window {
            *w = Window { start: now, count: 0 };
        }
        w.count = w.count.saturating_add(1);
    }

    /// Drops expired windows; if the table is still full, the oldest eighth
    /// (at least one), so that a flood of new keys costs a scan per eighth.
    fn make_room(&mut self, now: Instant, window: Duration, max_entries: usize) {
        self.windows.retain(|_, w| now < w.start + window);
        if self.windows.len() < max_entries {
            return;
        }
        let mut starts: Vec<Instant> = self.windows.values().map(|w| w.start).collect();
        let nth = starts.len() / 8;
        let (_, cutoff, _) = starts.select_nth_unstable(nth);
        let cutoff = *cutoff;
        self.windows.retain(|_, w| w.start > cutoff);
    }

    /// Takes back one attempt made at `at`, if its window is still the one counted.
    fn uncount(&mut self, key: &K, at: Instant) {
        if let Some(w) = self.windows.get_mut(key)
            && w.start <= at
        {
            w.count = w.count.saturating_sub(1);
            if w.count == 0 {
                self.windows.remove(key);
            }
        }
    }

    fn len(&self) -> usize {
        self.windows.len()
    }
}

/// The address a throttle counts under: IPv4 as it is (an IPv4-mapped IPv6
/// address as its IPv4), IPv6 by its /64, since one subscriber usually holds a
/// whole /64 and could otherwise take a fresh address for every guess.
pub fn address_key(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(v4) => IpAddr::V4(v4),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let s = v6.segments();
                IpAddr::V6(Ipv6Addr::new(s[0], s[1], s[2], s[3], 0, 0, 0, 0))
            }
        },
    }
}

impl LoginThrottle {
    pub fn new(limits: Limits) -> Self {
        LoginThrottle { limits, tables: Mutex::new(Tables::default()) }
    }

    fn tables(&self) -> std::sync::MutexGuard<'_, Tables> {
        self.tables.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Counts an attempt for `account` from `address`, unless one of its keys
    /// is at its limit: then `Err(wait)`, the time until every key that is at
    /// its limit has a new window, and nothing is counted.
    pub fn reserve(&self, account: &str, address: IpAddr, now: Instant) -> Result<Attempt, Duration> {
        let Limits { per_pair, per_address, per_account, window, max_entries } = self.limits;
        let address = address_key(address);
        let pair = (account.to_owned(), address);
        let account = account.to_owned();
        let mut t = self.tables();
        let wait = [
            t.pair.locked(&pair, now, per_pair, window),
            t.address.locked(&address, now, per_address, window),
            t.account.locked(&account, now, per_account, window),
        ]
        .into_iter()
        .flatten()
        .max();
        if let Some(wait) = wait {
            return Err(wait);
        }
        t.pair.count(&pair, now, window, max_entries);
        t.address.count(&address, now, window, max_entries);
        t.account.count(&account, now, window, max_entries);
        Ok(Attempt { account, address, at: now })
    }

    /// The secret was right: the (account, address) count is cleared, and
    /// this attempt no longer counts against the address or the account.
    /// Earlier failures from elsewhere stay counted.
    pub fn succeeded(&self, attempt: Attempt) {
        let mut t = self.tables();
        t.pair.windows.remove(&(attempt.account.clone(), attempt.address));
        t.address.uncount(&attempt.address, attempt.at);
        t.account.uncount(&attempt.account, attempt.at);
    }

    /// The secret was never checked: the attempt counts nowhere.
    pub fn refund(&self, attempt: Attempt) {
        let mut t = self.tables();
        t.pair.uncount(&(attempt.account.clone(), attempt.address), attempt.at);
        t.address.uncount(&attempt.address, attempt.at);
        t.account.uncount(&attempt.account, attempt.at);
    }

    /// Keys held in the (account, address), address and account tables.
    pub fn sizes(&self) -> (usize, usize, usize) {
        let t = self.tables();
        (t.pair.len(), t.address.len(), t.account.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(192, 0, 2, 1));
    const B: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(198, 51, 100, 7));

    fn limits() -> Limits {
        Limits { per_pair: 3, per_address: 10, per_account: 6, window: Duration::from_secs(60), max_entries: 1000 }
    }

    #[test]
    fn locks_after_the_limit_until_the_window_ends() {
        let t = LoginThrottle::new(limits());
        let now = Instant::now();
        for _ in 0..3 {
            let _failed = t.reserve("acc", A, now).unwrap();
        }
        let wait = t.reserve("acc", A, now).unwrap_err();
        assert_eq!(wait, Duration::from_secs(60));
        assert!(t.reserve("other", A, now).is_ok(), "other accounts from the address unaffected");
        let _ = t.reserve("acc", A, now + Duration::from_secs(61)).unwrap();
    }

    #[test]
    fn attempts_are_counted_before_they_are_checked() {
        // Forty guesses reserved at once, none settled yet: only the limit gets through.
        let t = LoginThrottle::new(limits());
        let now = Instant::now();
        let reserved: Vec<_> = (0..40).filter_map(|_| t.reserve("acc", A, now).ok()).collect();
        assert_eq!(reserved.len(), 3);
        // Settling them as failures (dropping) keeps the lock.
        drop(reserved);
        assert!(t.reserve("acc", A, now).is_err());
    }

    #[test]
    fn threads_racing_cannot_exceed_the_limit() {
        let t = std::sync::Arc::new(LoginThrottle::new(limits()));
        let now = Instant::now();
        let handles: Vec<_> = (0..8)
            .map(|_| {
                let t = t.clone();
                std::thread::spawn(move || (0..20).filter(|_| t.reserve("acc", A, now).is_ok()).count())
            })
            .collect();
        let total: usize = handles.into_iter().map(|h| h.join().unwrap()).sum();
        assert_eq!(total, 3);
    }

    #[test]
    fn success_clears_the_pair_and_refund_gives_the_attempt_back() {
        let t = LoginThrottle::new(limits());
        let now = Instant::now();
        let _ = t.reserve("acc", A, now).unwrap();
        let _ = t.reserve("acc", A, now).unwrap();
        let right = t.reserve("acc", A, now).unwrap();
        t.succeeded(right);
        // The pair starts over; the address and account keep the two failures only.
        for _ in 0..3 {
            let unchecked = t.reserve("acc", A, now).unwrap();
            t.refund(unchecked);
        }
        assert_eq!(t.sizes(), (0, 1, 1));
        let t2 = t.tables();
        assert_eq!(t2.address.current(&address_key(A), now, limits().window).map(|c| c.0), Some(2));
        assert_eq!(t2.account.current(&"acc".to_owned(), now, limits().window).map(|c| c.0), Some(2));
    }

    #[test]
    fn a_flood_from_one_address_does_not_lock_the_account_elsewhere() {
        let t = LoginThrottle::new(limits());
        let now = Instant::now();
        for _ in 0..100 {
            let _ = t.reserve("acc", A, now);
        }
        assert!(t.reserve("acc", A, now).is_err(), "the flooding address is locked out");
        // One address reaches at most the pair limit, below the account-wide limit.
        assert!(limits().per_pair < limits().per_account);
        let owner = t.reserve("acc", B, now).expect("the owner logs in from elsewhere");
        t.succeeded(owner);
    }

    #[test]
    fn many_addresses_together_reach_the_account_limit() {
        let t = LoginThrottle::new(limits());
        let now = Instant::now();
        for i in 0..6u8 {
            let _ = t.reserve("acc", IpAddr::V4(std::net::Ipv4Addr::new(10, 0, 0, i)), now).unwrap();
        }
        assert!(t.reserve("acc", B, now).is_err(), "six failures from six addresses lock the account");
    }

    #[test]
    fn one_address_spraying_names_is_locked_for_every_name() {
        let t = LoginThrottle::new(limits());
        let now = Instant::now();
        for i in 0..10 {
            let _ = t.reserve(&format!("spray.{i}"), A, now).unwrap();
        }
        assert!(t.reserve("innocent", A, now).is_err());
        assert!(t.reserve("innocent", B, now).is_ok());
    }

    #[test]
    fn the_tables_stay_bounded() {
        let t = LoginThrottle::new(Limits { max_entries: 64, per_address: u32::MAX, ..limits() });
        let start = Instant::now();
        for i in 0..10_000u32 {
            let now = start + Duration::from_millis(u64::from(i));
            let address = IpAddr::V4(std::net::Ipv4Addr::from(0x0a00_0000 + i));
            let _ = t.reserve(&format!("name.{i}"), address, now);
            let (pair, address, account) = t.sizes();
            assert!(pair <= 64 && address <= 64 && account <= 64, "{:?}", t.sizes());
        }
        // The newest keys are the ones kept.
        let now = start + Duration::from_millis(9_999);
        let newest = IpAddr::V4(std::net::Ipv4Addr::from(0x0a00_0000 + 9_999));
        assert!(t.tables().address.current(&newest, now, limits().window).is_some());
        // Expired windows go first.
        let later = start + Duration::from_secs(3600);
        let _ = t.reserve("late", A, later).unwrap();
        assert_eq!(t.sizes(), (1, 1, 1));
    }

    #[test]
    fn ipv6_addresses_count_by_their_64() {
        let a: IpAddr = "2001:db8:1:2:aaaa::1".parse().unwrap();
        let b: IpAddr = "2001:db8:1:2:bbbb::9".parse().unwrap();
        let c: IpAddr = "2001:db8:1:3::1".parse().unwrap();
        assert_eq!(address_key(a), address_key(b));
        assert_ne!(address_key(a), address_key(c));
        let mapped: IpAddr = "::ffff:192.0.2.1".parse().unwrap();
        assert_eq!(address_key(mapped), A);
    }
}

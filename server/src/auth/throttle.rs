//! Failed logins: per (account, address), per address, and per
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
//! The windows are kept in the store ([`LoginWindows`]), not in a process, so
//! every server process on one database counts against the same limits; the
//! arithmetic on them is [`wait`], here, whichever backend holds them. If
//! that store fails the login fails ([`ThrottleError::Unavailable`]): an
//! attempt that cannot be counted is not checked.
//!
//! The table is bounded without evicting live windows (evicting would let a
//! flood of new keys forgive a victim's count). Windows that ended are swept
//! about once a minute by whichever process logs someone in. Within a window
//! a key is written only by an attempt that passed every limit; one that is
//! given back because its secret was never checked (the server was busy, or
//! the client hung up before a check was free) deletes what it added, so the
//! keys outliving their request are at most three per secret actually
//! checked. Checks run a
//! few at a time and take tens of milliseconds each (see
//! [`crate::accounts::hash_concurrency`]), so a window holds at most three
//! keys per check a process can make in `window` (about 54,000 on a 2-core
//! machine in 15 minutes), whatever the number of addresses a flood comes
//! from. Keys are short: the caller refuses logins that cannot be a login
//! before counting them, and addresses are kept as [`address_key`]s.

use std::net::{IpAddr, Ipv6Addr};
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

use crate::store::logins::{LoginWindows, LoginWindowsError};

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
}

/// How often a process sweeps away windows that ended.
pub const SWEEP_EVERY: Duration = Duration::from_secs(60);

/// One key's window as stored: when it started (ms since the epoch) and the
/// attempts counted in it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Window {
    pub start: i64,
    pub count: i64,
}

/// The wait (ms) before an attempt may be counted at `now` under keys whose
/// windows are `current` (each with its key's limit, `None` for a key with
/// no window), or `None` when no key is at its limit: the time until every
/// key at its limit has a new window. A window that started after `now`
/// (another process's clock ahead of ours) waits at most one window.
pub fn wait(current: &[(Option<Window>, u32)], now: i64, window: i64) -> Option<i64> {
    current
        .iter()
        .filter_map(|(w, limit)| w.map(|w| (w, *limit)))
        .filter(|(w, limit)| now < w.start.saturating_add(window) && w.count >= i64::from(*limit))
        .map(|(w, _)| w.start.saturating_add(window).saturating_sub(now).min(window))
        .max()
}

#[derive(Debug, thiserror::Error)]
pub enum ThrottleError {
    /// A key is at its limit: nothing was counted; try again after the wait.
    #[error("too many failed logins; wait {0:?}")]
    Locked(Duration),
    /// The windows could not be read or written: the attempt must not be checked.
    #[error("the login throttle is unavailable: {0}")]
    Unavailable(#[from] LoginWindowsError),
}

/// An attempt counted by [`LoginThrottle::reserve`]. Once its secret is
/// being checked ([`Attempt::checked`]) it stays counted as a failure unless
/// settled with [`LoginThrottle::succeeded`]; before that, dropping it (the
/// client hung up while it waited for a password check) gives it back as
/// [`LoginThrottle::refund`] would, so that every count outliving its
/// request stands for a secret that was checked.
#[must_use = "an attempt is given back unless its secret is checked"]
pub struct Attempt {
    pair: String,
    address: String,
    account: String,
    /// When it was counted (ms since the epoch).
    at: i64,
    /// Where to give it back from if dropped unchecked; `None` once checked or settled.
    unchecked: Option<Arc<dyn LoginWindows>>,
}

impl Attempt {
    /// The secret is being checked: from here on the attempt counts.
    pub fn checked(&mut self) {
        self.unchecked = None;
    }

    /// The keys `(uncount, clear)` a right secret settles.
    fn succeeded(&mut self) -> ([String; 2], [String; 1]) {
        self.unchecked = None;
        ([std::mem::take(&mut self.address), std::mem::take(&mut self.account)], [std::mem::take(&mut self.pair)])
    }

    /// Every key, to take back.
    fn refunded(&mut self) -> [String; 3] {
        self.unchecked = None;
        [std::mem::take(&mut self.pair), std::mem::take(&mut self.address), std::mem::take(&mut self.account)]
    }
}

impl std::fmt::Debug for Attempt {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Attempt")
            .field("pair", &self.pair)
            .field("at", &self.at)
            .field("checked", &self.unchecked.is_none())
            .finish()
    }
}

impl Drop for Attempt {
    fn drop(&mut self) {
        let Some(windows) = self.unchecked.take() else { return };
        let Ok(runtime) = tokio::runtime::Handle::try_current() else { return };
        let (keys, at) = (self.refunded(), self.at);
        runtime.spawn(async move {
            if let Err(e) = windows.settle(&keys, &[], at).await {
                tracing::warn!(error = %e, "giving back an unchecked login attempt failed");
            }
        });
    }
}

pub struct LoginThrottle {
    windows: Arc<dyn LoginWindows>,
    limits: Limits,
    /// When this process last swept (ms since the epoch).
    last_sweep: AtomicI64,
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
    pub fn new(windows: Arc<dyn LoginWindows>, limits: Limits) -> Self {
        LoginThrottle { windows, limits, last_sweep: AtomicI64::new(i64::MIN) }
    }

    fn window_ms(&self) -> i64 {
        i64::try_from(self.limits.window.as_millis()).unwrap_or(i64::MAX)
    }

    /// Counts an attempt for `account` from `address` at `now` (ms since the
    /// epoch), unless one of its keys is at its limit: then
    /// [`ThrottleError::Locked`] with the time until every key at its limit
    /// has a new window, and nothing is counted.
    pub async fn reserve(&self, account: &str, address: IpAddr, now: i64) -> Result<Attempt, ThrottleError> {
        self.sweep_if_due(now).await;
        let Limits { per_pair, per_address, per_account, .. } = self.limits;
        let address = address_key(address);
        let pair = format!("pair {address} {account}");
        let (address, account) = (format!("address {address}"), format!("account {account}"));
        let keys = [(pair, per_pair), (address, per_address), (account, per_account)];
        if let Some(wait) = self.windows.reserve(&keys, now, self.window_ms()).await? {
            return Err(ThrottleError::Locked(Duration::from_millis(u64::try_from(wait).unwrap_or(0))));
        }
        let [(pair, _), (address, _), (account, _)] = keys;
        Ok(Attempt { pair, address, account, at: now, unchecked: Some(self.windows.clone()) })
    }

    /// The secret was right: the (account, address) count is cleared, and
    /// this attempt no longer counts against the address or the account.
    /// Earlier failures from elsewhere stay counted.
    pub async fn succeeded(&self, mut attempt: Attempt) -> Result<(), ThrottleError> {
        let (uncount, clear) = attempt.succeeded();
        Ok(self.windows.settle(&uncount, &clear, attempt.at).await?)
    }

    /// The secret was never checked: the attempt counts nowhere.
    pub async fn refund(&self, mut attempt: Attempt) -> Result<(), ThrottleError> {
        Ok(self.windows.settle(&attempt.refunded(), &[], attempt.at).await?)
    }

    /// Forgets the windows that ended by `now`; returns how many.
    pub async fn sweep(&self, now: i64) -> Result<u64, ThrottleError> {
        Ok(self.windows.sweep(now.saturating_sub(self.window_ms())).await?)
    }

    /// Sweeps when this process has not for [`SWEEP_EVERY`]. A failed sweep
    /// is only logged: the next one takes what it left, and the attempt's
    /// own reserve reports a store that is down.
    async fn sweep_if_due(&self, now: i64) {
        let every = i64::try_from(SWEEP_EVERY.as_millis()).unwrap_or(i64::MAX);
        let last = self.last_sweep.load(Ordering::Relaxed);
        if now.saturating_sub(last) < every
            || self.last_sweep.compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed).is_err()
        {
            return;
        }
        match self.sweep(now).await {
            Ok(swept) => tracing::debug!(swept, "swept ended login windows"),
            Err(e) => tracing::warn!(error = %e, "sweeping ended login windows failed"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const WINDOW: i64 = 60_000;

    fn at(start: i64, count: i64) -> Option<Window> {
        Some(Window { start, count })
    }

    #[test]
    fn no_window_or_one_below_its_limit_waits_for_nothing() {
        assert_eq!(wait(&[], 0, WINDOW), None);
        assert_eq!(wait(&[(None, 3), (at(0, 2), 3)], 10, WINDOW), None);
    }

    #[test]
    fn a_key_at_its_limit_waits_until_its_window_ends() {
        assert_eq!(wait(&[(at(1_000, 3), 3)], 1_000, WINDOW), Some(WINDOW));
        assert_eq!(wait(&[(at(1_000, 9), 3)], 31_000, WINDOW), Some(30_000));
        // Ended: the next attempt starts a new window.
        assert_eq!(wait(&[(at(1_000, 9), 3)], 61_000, WINDOW), None);
    }

    #[test]
    fn the_wait_is_until_every_key_at_its_limit_has_a_new_window() {
        let current = [(at(0, 3), 3), (at(20_000, 10), 10), (at(40_000, 5), 6)];
        assert_eq!(wait(&current, 50_000, WINDOW), Some(30_000), "the second key's window ends last");
    }

    #[test]
    fn a_window_from_a_clock_ahead_waits_at_most_one_window() {
        assert_eq!(wait(&[(at(100_000, 3), 3)], 0, WINDOW), Some(WINDOW));
        assert_eq!(wait(&[(at(i64::MAX, 3), 3)], 0, WINDOW), Some(WINDOW));
    }

    #[test]
    fn ipv6_addresses_count_by_their_64() {
        let a: IpAddr = "2001:db8:1:2:aaaa::1".parse().unwrap();
        let b: IpAddr = "2001:db8:1:2:bbbb::9".parse().unwrap();
        let c: IpAddr = "2001:db8:1:3::1".parse().unwrap();
        assert_eq!(address_key(a), address_key(b));
        assert_ne!(address_key(a), address_key(c));
        let mapped: IpAddr = "::ffff:192.0.2.1".parse().unwrap();
        assert_eq!(address_key(mapped), IpAddr::V4(std::net::Ipv4Addr::new(192, 0, 2, 1)));
    }
}

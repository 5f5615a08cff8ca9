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
//! The windows live in the database (`login_failures`), so every server
//! process on it counts against the same limits, and the check and the count
//! are one transaction there ([`crate::store::Directory::reserve_login`]).
//! Windows that ended are swept away about once a minute, so the table holds
//! only keys tried within the last window. Keys are short: the caller refuses
//! logins that cannot be a login before counting them, and addresses are kept
//! as [`address_key`]s.

use std::net::{IpAddr, Ipv6Addr};
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

use crate::store::Directory;
use crate::store::directory::DirectoryError;

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
const SWEEP_EVERY_MS: i64 = 60_000;

/// An attempt counted by [`LoginThrottle::reserve`]. Left alone it stays
/// counted as a failure; settle it with [`LoginThrottle::succeeded`] or
/// [`LoginThrottle::refund`] otherwise.
#[derive(Debug)]
#[must_use = "an attempt is a failure unless settled otherwise"]
pub struct Attempt {
    pair: String,
    address: String,
    account: String,
    /// When it was counted, in milliseconds since the epoch.
    at: i64,
}

pub struct LoginThrottle {
    directory: Arc<dyn Directory>,
    limits: Limits,
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
    pub fn new(directory: Arc<dyn Directory>, limits: Limits) -> Self {
        LoginThrottle { directory, limits, last_sweep: AtomicI64::new(0) }
    }

    fn window_ms(&self) -> i64 {
        i64::try_from(self.limits.window.as_millis()).unwrap_or(i64::MAX)
    }

    /// Counts an attempt for `account` from `address` at `now` (milliseconds
    /// since the epoch), unless one of its keys is at its limit: then
    /// `Err(wait)`, the time until every key at its limit has a new window,
    /// and nothing is counted.
    pub async fn reserve(
        &self,
        account: &str,
        address: IpAddr,
        now: i64,
    ) -> Result<Result<Attempt, Duration>, DirectoryError> {
        let address = address_key(address);
        let attempt = Attempt {
            pair: format!("pair:{account}|{address}"),
            address: format!("address:{address}"),
            account: format!("account:{account}"),
            at: now,
        };
        let Limits { per_pair, per_address, per_account, .. } = self.limits;
        let keys = [
            (attempt.pair.clone(), per_pair),
            (attempt.address.clone(), per_address),
            (attempt.account.clone(), per_account),
        ];
        if let Some(wait) = self.directory.reserve_login(&keys, now, self.window_ms()).await? {
            return Ok(Err(Duration::from_millis(u64::try_from(wait).unwrap_or(0))));
        }
        let last = self.last_sweep.load(Ordering::Relaxed);
        if now - last >= SWEEP_EVERY_MS
            && self.last_sweep.compare_exchange(last, now, Ordering::AcqRel, Ordering::Relaxed).is_ok()
        {
            self.directory.forget_logins(now - self.window_ms()).await?;
        }
        Ok(Ok(attempt))
    }

    /// The secret was right: the (account, address) count is cleared, and
    /// this attempt no longer counts against the address or the account.
    /// Earlier failures from elsewhere stay counted.
    pub async fn succeeded(&self, attempt: Attempt) -> Result<(), DirectoryError> {
        self.directory.settle_login(&[attempt.address, attempt.account], &[attempt.pair], attempt.at).await
    }

    /// The secret was never checked: the attempt counts nowhere.
    pub async fn refund(&self, attempt: Attempt) -> Result<(), DirectoryError> {
        self.directory.settle_login(&[attempt.pair, attempt.address, attempt.account], &[], attempt.at).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(192, 0, 2, 1));

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

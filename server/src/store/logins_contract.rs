//! The login windows' contract, as tests any backend must pass, through the
//! throttle that uses them. Each test takes two [`LoginWindows`] opened
//! separately on one fresh store: what two server processes hold.

use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;
use std::time::Duration;

use super::logins::LoginWindows;
use crate::auth::throttle::{Attempt, Limits, LoginThrottle, ThrottleError};

const A: IpAddr = IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1));
const B: IpAddr = IpAddr::V4(Ipv4Addr::new(198, 51, 100, 7));
const NOW: i64 = 1_750_000_000_000;
const WINDOW: Duration = Duration::from_secs(60);
const WINDOW_MS: i64 = 60_000;

pub type Two = [Arc<dyn LoginWindows>; 2];

fn throttle(windows: &Arc<dyn LoginWindows>) -> LoginThrottle {
    LoginThrottle::new(windows.clone(), Limits { per_pair: 3, per_address: 10, per_account: 6, window: WINDOW })
}

/// A guess whose secret was checked and wrong: it stays counted.
fn failed(attempt: Result<Attempt, ThrottleError>) {
    attempt.expect("counted").checked();
}

fn locked(r: Result<impl std::fmt::Debug, ThrottleError>) -> Duration {
    match r {
        Err(ThrottleError::Locked(wait)) => wait,
        other => panic!("expected a lock, got {other:?}"),
    }
}

pub async fn logins_lock_after_the_limit_until_the_window_ends(two: &Two) {
    let t = throttle(&two[0]);
    for _ in 0..3 {
        failed(t.reserve("acc", A, NOW).await);
    }
    assert_eq!(locked(t.reserve("acc", A, NOW).await), WINDOW);
    assert_eq!(locked(t.reserve("acc", A, NOW + 20_000).await), Duration::from_secs(40));
    assert!(t.reserve("other", A, NOW).await.is_ok(), "other accounts from the address unaffected");
    // The other process sees the same lock.
    assert_eq!(locked(throttle(&two[1]).reserve("acc", A, NOW + 1).await), WINDOW - Duration::from_millis(1));
    // A new window once it ended.
    failed(t.reserve("acc", A, NOW + WINDOW_MS).await);
    failed(t.reserve("acc", A, NOW + WINDOW_MS).await);
}

pub async fn forty_guesses_at_once_through_two_processes_let_exactly_the_limit_through(two: &Two) {
    let throttles = [Arc::new(throttle(&two[0])), Arc::new(throttle(&two[1]))];
    let guesses: Vec<_> = (0..40)
        .map(|i| {
            let t = throttles[i % 2].clone();
            tokio::spawn(async move { t.reserve("acc", A, NOW).await })
        })
        .collect();
    let mut through = Vec::new();
    for guess in guesses {
        match guess.await.expect("guess task") {
            Ok(mut attempt) => {
                attempt.checked();
                through.push(attempt);
            }
            Err(ThrottleError::Locked(_)) => {}
            Err(e) => panic!("{e}"),
        }
    }
    assert_eq!(through.len(), 3, "of 40 guesses at once through two processes");
    // Checked and left unsettled they stay failures: the lock holds on both.
    drop(through);
    locked(throttles[0].reserve("acc", A, NOW).await);
    locked(throttles[1].reserve("acc", A, NOW).await);
}

pub async fn a_right_secret_clears_its_pair_and_a_refund_gives_the_attempt_back(two: &Two) {
    let (t, other) = (throttle(&two[0]), throttle(&two[1]));
    failed(t.reserve("acc", A, NOW).await);
    failed(other.reserve("acc", A, NOW).await);
    let right = t.reserve("acc", A, NOW).await.unwrap();
    other.succeeded(right).await.unwrap();
    // The pair starts over; the address and the account keep the two failures.
    assert_eq!(two[1].keys_held().await.unwrap(), 2, "the pair's key is gone");
    for _ in 0..3 {
        let unchecked = t.reserve("acc", A, NOW).await.unwrap();
        other.refund(unchecked).await.unwrap();
    }
    assert_eq!(two[0].keys_held().await.unwrap(), 2, "a refund leaves no key of its own behind");
    for _ in 0..3 {
        failed(t.reserve("acc", A, NOW).await);
    }
    locked(t.reserve("acc", A, NOW).await);
    // Five failures on the account now (2 kept, 3 new): one more locks it.
    failed(t.reserve("acc", B, NOW).await);
    locked(t.reserve("acc", B, NOW).await);
}

pub async fn a_login_flood_from_one_address_does_not_lock_the_account_elsewhere(two: &Two) {
    let t = throttle(&two[0]);
    for _ in 0..100 {
        if let Ok(mut attempt) = t.reserve("acc", A, NOW).await {
            attempt.checked();
        }
    }
    locked(t.reserve("acc", A, NOW).await);
    let owner = throttle(&two[1]).reserve("acc", B, NOW).await.expect("the owner logs in from elsewhere");
    t.succeeded(owner).await.unwrap();
}

pub async fn failures_from_many_addresses_reach_the_account_limit(two: &Two) {
    for i in 0..6u8 {
        failed(throttle(&two[usize::from(i % 2)]).reserve("acc", IpAddr::V4(Ipv4Addr::new(10, 0, 0, i)), NOW).await);
    }
    locked(throttle(&two[0]).reserve("acc", B, NOW).await);
}

pub async fn one_address_spraying_names_is_locked_for_every_name(two: &Two) {
    for i in 0..10 {
        failed(throttle(&two[i % 2]).reserve(&format!("spray.{i}"), A, NOW).await);
    }
    let t = throttle(&two[0]);
    locked(t.reserve("innocent", A, NOW).await);
    assert!(t.reserve("innocent", B, NOW).await.is_ok());
}

pub async fn ended_windows_are_swept_and_only_they(two: &Two) {
    let t = throttle(&two[0]);
    for i in 0..50u32 {
        failed(t.reserve(&format!("name.{i}"), IpAddr::V4(Ipv4Addr::from(0x0a00_0000 + i)), NOW).await);
    }
    assert_eq!(two[1].keys_held().await.unwrap(), 150);
    assert_eq!(t.sweep(NOW + WINDOW_MS - 1).await.unwrap(), 0, "windows still open are kept");
    // An hour later the first attempt of the process sweeps every ended window first.
    failed(t.reserve("late", A, NOW + 3_600_000).await);
    assert_eq!(two[1].keys_held().await.unwrap(), 3, "only the late attempt's keys are left");
    assert_eq!(t.sweep(NOW + 3_600_000).await.unwrap(), 0);
}

pub async fn an_attempt_dropped_before_its_check_is_given_back(two: &Two) {
    let t = throttle(&two[0]);
    for _ in 0..10 {
        // The client hung up while the attempt waited for a password check.
        drop(t.reserve("acc", A, NOW).await.expect("counted"));
        // The refund runs on its own task: wait for it before the next
        // attempt, which would otherwise race it to the limit.
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        while two[1].keys_held().await.unwrap() > 0 {
            assert!(tokio::time::Instant::now() < deadline, "{} keys left", two[1].keys_held().await.unwrap());
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
    for _ in 0..3 {
        failed(t.reserve("acc", A, NOW).await);
    }
    locked(t.reserve("acc", A, NOW).await);
}

/// Runs every contract test against login windows `open` makes: an
/// `Option<(Two, guard)>`, the guard kept while the test runs.
#[macro_export]
macro_rules! login_windows_contract_tests {
    ($open:expr) => {
        $crate::login_windows_contract_tests!(@each $open;
            logins_lock_after_the_limit_until_the_window_ends,
            forty_guesses_at_once_through_two_processes_let_exactly_the_limit_through,
            a_right_secret_clears_its_pair_and_a_refund_gives_the_attempt_back,
            a_login_flood_from_one_address_does_not_lock_the_account_elsewhere,
            failures_from_many_addresses_reach_the_account_limit,
            one_address_spraying_names_is_locked_for_every_name,
            ended_windows_are_swept_and_only_they,
            an_attempt_dropped_before_its_check_is_given_back
        );
    };
    (@each $open:expr; $($test:ident),*) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn $test() {
                // `None` when the backend is not available here.
                let Some((two, _keep)) = $open.await else { return };
                $crate::store::logins_contract::$test(&two).await;
                for windows in &two {
                    windows.close().await;
                }
            }
        )*
    };
}

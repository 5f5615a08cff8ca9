//! Scalar value types with one meaning each: instants (UTC milliseconds),
//! calendar days and times of day, and how each is stored in a document.
//!
//! Instants are Automerge timestamps (a JavaScript `Date` in
//! `@automerge/automerge`), days are `YYYY-MM-DD` strings and times of day
//! `HH:MM` strings, so documents stay readable in any Automerge client.

use std::fmt;

use autosurgeon::{Reconcile, Reconciler, reconcile::NoKey};
use serde::{Deserialize, Serialize};
use time::{Date, OffsetDateTime, Time, format_description::BorrowedFormatItem, macros::format_description};

const DAY_FORMAT: &[BorrowedFormatItem<'static>] = format_description!("[year]-[month]-[day]");
const CLOCK_FORMAT: &[BorrowedFormatItem<'static>] = format_description!("[hour]:[minute]");

/// An instant in UTC, in milliseconds since the Unix epoch.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Timestamp(pub i64);

impl Timestamp {
    pub fn now() -> Self {
        Self::from_datetime(OffsetDateTime::now_utc())
    }

    pub fn from_datetime(t: OffsetDateTime) -> Self {
        Self((t.unix_timestamp_nanos() / 1_000_000) as i64)
    }

    pub fn millis(self) -> i64 {
        self.0
    }
}

impl Reconcile for Timestamp {
    type Key<'a> = NoKey;
    fn reconcile<R: Reconciler>(&self, mut r: R) -> Result<(), R::Error> {
        r.timestamp(self.0)
    }
}

/// A calendar day, with no time zone: the day an activity happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Day(pub Date);

impl Day {
    pub fn parse(s: &str) -> Option<Self> {
        // The format parser accepts only the fixed-width form, so each day has one spelling.
        Date::parse(s, DAY_FORMAT).ok().map(Day)
    }

    pub fn year(self) -> i32 {
        self.0.year()
    }
}

impl fmt::Display for Day {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let text = self.0.format(DAY_FORMAT).map_err(|_| fmt::Error)?;
        f.write_str(&text)
    }
}

impl Reconcile for Day {
    type Key<'a> = NoKey;
    fn reconcile<R: Reconciler>(&self, mut r: R) -> Result<(), R::Error> {
        r.str(self.to_string())
    }
}

/// A time of day, to the minute (patrol start and end).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct ClockTime(pub Time);

impl ClockTime {
    pub fn parse(s: &str) -> Option<Self> {
        Time::parse(s, CLOCK_FORMAT).ok().map(ClockTime)
    }

    pub fn hm(hour: u8, minute: u8) -> Option<Self> {
        Time::from_hms(hour, minute, 0).ok().map(ClockTime)
    }
}

impl fmt::Display for ClockTime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:02}:{:02}", self.0.hour(), self.0.minute())
    }
}

impl Reconcile for ClockTime {
    type Key<'a> = NoKey;
    fn reconcile<R: Reconciler>(&self, mut r: R) -> Result<(), R::Error> {
        r.str(self.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn day_has_one_spelling() {
        let d = Day::parse("2024-03-09").unwrap();
        assert_eq!(d.to_string(), "2024-03-09");
        for bad in ["2024-3-9", "09/03/2024", "2024-02-30", "2024-03-09T00:00", ""] {
            assert!(Day::parse(bad).is_none(), "{bad}");
        }
    }

    #[test]
    fn clock_time_round_trips() {
        assert_eq!(ClockTime::parse("07:05").unwrap().to_string(), "07:05");
        assert!(ClockTime::parse("24:00").is_none());
        assert!(ClockTime::parse("7:5").is_none());
    }
}

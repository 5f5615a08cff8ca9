//! The organisation tree: which administrative units and provincial agencies
//! exist, over which dates, under which parent, and which unit took over
//! from which when units were merged.
//!
//! This module owns:
//!
//! * the vocabulary, here: [`Level`], [`Unit`], [`Succession`], [`Validity`];
//! * [`tree`]: [`OrgTree`], its validation ([`OrgError`]) and the questions
//!   reports and access checks ask of it ([`OrgTree::is_within`],
//!   [`OrgTree::current_unit`], ...);
//! * [`io`]: import and export as one JSON document or two CSV files, with
//!   errors that point at the CSV line or JSON entry;
//! * [`demo`](demo()): the demo tree of the brief, with an illustrative 2025 reform.
//!
//! History is never rewritten. When Vietnam abolished the district level on
//! 1 July 2025 and merged communes, the old units did not change: they gained
//! a last day (`valid_to`), the new units are new entries with new codes, and
//! a [`Succession`] records which new unit took over each old unit's area.
//! A model bound to an old commune keeps that code forever and still counts
//! in the new commune's reports, because [`OrgTree::is_within`] follows
//! successions as well as parents.
//!
//! Pure logic: no database, no async. Where the tree is stored is the
//! caller's business.

mod demo;
pub mod io;
pub mod tree;

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use time::Date;

pub use demo::demo;
pub use io::{
    ExportError, ImportError, Location, OrgDocument, Table, from_csv, from_json, successions_from_csv,
    successions_to_csv, to_json, units_from_csv, units_to_csv,
};
pub use tree::{OrgError, OrgTree};

// Dates travel as `YYYY-MM-DD` in JSON and CSV: the `time` crate's default
// serde form is a (year, ordinal) tuple, which no spreadsheet user can edit.
time::serde::format_description!(ymd, Date, "[year]-[month]-[day]");

/// The kind of a unit, which also fixes where it may sit in the tree.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Level {
    /// Tỉnh / thành phố trực thuộc trung ương.
    Province,
    /// Huyện, thị xã, thành phố thuộc tỉnh; abolished on 1 July 2025.
    District,
    /// Xã / phường.
    Commune,
    /// Thôn / tổ dân phố.
    Village,
    /// A provincial agency (Fatherland Front committee, a department, ...):
    /// it builds models of its own, so it needs a scope like a place does.
    Agency,
}

impl Level {
    pub const ALL: [Level; 5] = [Level::Province, Level::District, Level::Commune, Level::Village, Level::Agency];

    /// The stable snake_case code used in JSON, CSV and URLs.
    pub fn as_str(self) -> &'static str {
        match self {
            Level::Province => "province",
            Level::District => "district",
            Level::Commune => "commune",
            Level::Village => "village",
            Level::Agency => "agency",
        }
    }

    /// Whether a unit of this level may sit directly under a unit of level
    /// `parent` (`None`: at the top of the tree).
    pub fn may_sit_under(self, parent: Option<Level>) -> bool {
        matches!(
            (self, parent),
            (Level::Province, None)
                | (Level::District | Level::Agency, Some(Level::Province))
                // Under a province directly: the communes created by the 2025 reform.
                | (Level::Commune, Some(Level::District | Level::Province))
                | (Level::Village, Some(Level::Commune))
        )
    }

    /// The placement rule in words, for error messages.
    fn placement_rule(self) -> &'static str {
        match self {
            Level::Province => "a province has no parent unit",
            Level::District => "a district sits directly under a province",
            Level::Commune => "a commune sits under a district, or directly under a province",
            Level::Village => "a village sits under a commune",
            Level::Agency => "an agency sits directly under a province",
        }
    }
}

impl fmt::Display for Level {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A level code that is none of [`Level::ALL`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown level {0:?}: expected one of province, district, commune, village, agency")]
pub struct UnknownLevel(pub String);

impl FromStr for Level {
    type Err = UnknownLevel;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Level::ALL.into_iter().find(|level| level.as_str() == s).ok_or_else(|| UnknownLevel(s.to_owned()))
    }
}

/// One unit of the tree: a province, district, commune, village or agency,
/// as it existed between two dates.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Unit {
    /// Stable identifier, 1 to 64 of `A-Z a-z 0-9 . _ -`, e.g. `QNA.TK.TT.KD`.
    /// Codes are opaque: the dots help people read them, the tree does not
    /// parse them.
    pub code: String,
    /// The name people see, with its diacritics, e.g. "Xã Tam Thăng".
    pub name: String,
    pub level: Level,
    /// Code of the parent unit; `None` only for a province.
    #[serde(default)]
    pub parent: Option<String>,
    /// First day the unit existed.
    #[serde(with = "ymd")]
    #[schema(value_type = String, format = Date)]
    pub valid_from: Date,
    /// Last day the unit existed, inclusive; `None` while it still exists.
    #[serde(default, with = "ymd::option")]
    #[schema(value_type = Option<String>, format = Date)]
    pub valid_to: Option<Date>,
}

impl Unit {
    pub fn validity(&self) -> Validity {
        Validity { from: self.valid_from, to: self.valid_to }
    }

    pub fn is_valid_on(&self, date: Date) -> bool {
        self.validity().contains(date)
    }
}

/// A recorded hand-over: from `effective` on, `new` holds (part of) the area
/// `old` held. Several old units may map to one new unit (a merger) and one
/// old unit may map to several new ones (a split).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Succession {
    pub old: String,
    pub new: String,
    /// First day `new` holds the area; after `old`'s last day.
    #[serde(with = "ymd")]
    #[schema(value_type = String, format = Date)]
    pub effective: Date,
}

/// The days a unit exists: `from` up to and including `to`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Validity {
    pub from: Date,
    /// `None`: still exists.
    pub to: Option<Date>,
}

impl Validity {
    pub fn contains(&self, date: Date) -> bool {
        self.from <= date && self.to.is_none_or(|to| date <= to)
    }

    /// Whether every day of `inner` is a day of `self`.
    pub fn covers(&self, inner: &Validity) -> bool {
        self.from <= inner.from
            && match (self.to, inner.to) {
                (None, _) => true,
                (Some(_), None) => false,
                (Some(outer), Some(inner)) => inner <= outer,
            }
    }
}

impl fmt::Display for Validity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.to {
            Some(to) => write!(f, "{} to {}", self.from, to),
            None => write!(f, "{} on, still existing", self.from),
        }
    }
}

#[cfg(test)]
mod tests {
    use time::macros::date;

    use super::*;

    #[test]
    fn level_codes_are_snake_case_and_round_trip() {
        for level in Level::ALL {
            assert_eq!(level.as_str().parse::<Level>().unwrap(), level);
            assert_eq!(serde_json::to_string(&level).unwrap(), format!("\"{level}\""));
        }
        assert_eq!("Commune".parse::<Level>(), Err(UnknownLevel("Commune".into())));
    }

    #[test]
    fn placement_rules() {
        assert!(Level::Province.may_sit_under(None));
        assert!(!Level::Province.may_sit_under(Some(Level::Province)));
        assert!(Level::Agency.may_sit_under(Some(Level::Province)));
        assert!(Level::Commune.may_sit_under(Some(Level::Province)));
        assert!(Level::Commune.may_sit_under(Some(Level::District)));
        assert!(!Level::Village.may_sit_under(Some(Level::District)));
        assert!(!Level::Commune.may_sit_under(None));
    }

    #[test]
    fn validity_is_inclusive_at_both_ends() {
        let closed = Validity { from: date!(2009 - 01 - 01), to: Some(date!(2025 - 06 - 30)) };
        assert!(closed.contains(date!(2009 - 01 - 01)));
        assert!(closed.contains(date!(2025 - 06 - 30)));
        assert!(!closed.contains(date!(2025 - 07 - 01)));
        assert!(!closed.contains(date!(2008 - 12 - 31)));
        let open = Validity { from: date!(2025 - 07 - 01), to: None };
        assert!(open.contains(date!(2099 - 01 - 01)));
        assert!(open.covers(&Validity { from: date!(2025 - 07 - 01), to: None }));
        assert!(!closed.covers(&open));
        assert!(closed.covers(&Validity { from: date!(2010 - 01 - 01), to: Some(date!(2025 - 06 - 30)) }));
    }
}

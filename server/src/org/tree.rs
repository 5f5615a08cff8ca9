//! [`OrgTree`]: the validated organisation tree, and the questions that
//! reports and access checks ask of it.
//!
//! A tree is checked once, when it is built, so that every query can trust
//! it: parents exist, levels nest, dates nest, successions point forward in
//! time. The queries then never fail; an unknown code simply matches nothing.

use std::collections::{HashMap, HashSet};

use time::Date;

use super::{Level, Succession, Unit, Validity};

/// Why a set of units and successions is not a valid tree.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OrgError {
    #[error("unit code {code:?} is not valid: use 1 to 64 characters among A-Z a-z 0-9 . _ -")]
    InvalidCode { code: String },
    #[error("unit {code}: the name is empty")]
    EmptyName { code: String },
    #[error("unit {code} appears more than once")]
    DuplicateCode { code: String },
    #[error("unit {code}: valid_to {valid_to} is before valid_from {valid_from}")]
    EndsBeforeStart { code: String, valid_from: Date, valid_to: Date },
    #[error("unit {code}: parent {parent} does not exist")]
    UnknownParent { code: String, parent: String },
    #[error("unit {code} is its own ancestor (the parent links form a cycle)")]
    ParentCycle { code: String },
    #[error("unit {code} ({level}) needs a parent: {rule}")]
    ParentRequired { code: String, level: Level, rule: &'static str },
    #[error("unit {code} ({level}) cannot sit under {parent} ({parent_level}): {rule}")]
    MisplacedLevel { code: String, level: Level, parent: String, parent_level: Level, rule: &'static str },
    #[error("unit {code} ({validity}) exists outside the validity of its parent {parent} ({parent_validity})")]
    OutsideParentValidity { code: String, validity: Validity, parent: String, parent_validity: Validity },
    #[error("succession {old} -> {new}: unit {missing} does not exist")]
    UnknownSuccessionUnit { old: String, new: String, missing: String },
    #[error("succession {code} -> {code}: a unit cannot succeed itself")]
    SelfSuccession { code: String },
    #[error("succession {old} -> {new} is recorded more than once")]
    DuplicateSuccession { old: String, new: String },
    #[error("unit {code} succeeds itself through a chain of successions")]
    SuccessionCycle { code: String },
    #[error("succession {old} -> {new}: {old} still exists (no valid_to); record its last day first")]
    SuccessorOfLivingUnit { old: String, new: String },
    #[error("succession {old} -> {new}: effective {effective} must be after {old_valid_to}, the last day of {old}")]
    SuccessionBeforeEnd { old: String, new: String, effective: Date, old_valid_to: Date },
    #[error("succession {old} -> {new}: effective {effective} is outside the validity of {new} ({new_validity})")]
    SuccessionOutsideNew { old: String, new: String, effective: Date, new_validity: Validity },
}

/// Which input entry an error is about, so that importers can point at the
/// CSV line or JSON entry it came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Entry {
    Unit(usize),
    Succession(usize),
}

/// A validated organisation tree, with its history.
///
/// Units and successions keep the order they were given in, so that an
/// export reads like the import it came from.
#[derive(Debug, Clone)]
pub struct OrgTree {
    units: Vec<Unit>,
    successions: Vec<Succession>,
    by_code: HashMap<String, usize>,
    parent: Vec<Option<usize>>,
    children: Vec<Vec<usize>>,
    /// Outgoing successions per unit: (new unit, effective).
    successors: Vec<Vec<(usize, Date)>>,
}

const MAX_CODE_LEN: usize = 64;

fn is_valid_code(code: &str) -> bool {
    (1..=MAX_CODE_LEN).contains(&code.len())
        && code.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
}

impl OrgTree {
    /// Validates `units` and `successions` and builds the tree; the error
    /// names the first offending unit or succession.
    pub fn new(units: Vec<Unit>, successions: Vec<Succession>) -> Result<OrgTree, OrgError> {
        Self::build(units, successions).map_err(|(_, error)| error)
    }

    /// [`OrgTree::new`], also saying which entry the error is about.
    pub(crate) fn build(units: Vec<Unit>, successions: Vec<Succession>) -> Result<OrgTree, (Entry, OrgError)> {
        let by_code = index_units(&units)?;
        let parent = link_parents(&units, &by_code)?;
        check_parent_cycles(&units, &parent)?;
        check_levels_and_dates(&units, &parent)?;
        let successors = link_successions(&units, &successions, &by_code)?;
        check_succession_cycles(&units, &successions, &by_code, &successors)?;
        check_succession_dates(&units, &successions, &by_code)?;

        let mut children = vec![Vec::new(); units.len()];
        for (child, parent) in parent.iter().enumerate() {
            if let Some(parent) = parent {
                children[*parent].push(child);
            }
        }
        Ok(OrgTree { units, successions, by_code, parent, children, successors })
    }

    /// Gives the units and successions back, e.g. to edit and rebuild.
    pub fn into_parts(self) -> (Vec<Unit>, Vec<Succession>) {
        (self.units, self.successions)
    }

    pub fn get(&self, code: &str) -> Option<&Unit> {
        self.by_code.get(code).map(|&i| &self.units[i])
    }

    /// Every unit, past and present, in input order.
    pub fn units(&self) -> impl ExactSizeIterator<Item = &Unit> {
        self.units.iter()
    }

    /// Every succession, in input order.
    pub fn successions(&self) -> impl ExactSizeIterator<Item = &Succession> {
        self.successions.iter()
    }

    /// The direct children of `code`, past and present, in input order;
    /// filter with [`Unit::is_valid_on`] for the children on a date.
    pub fn children(&self, code: &str) -> Vec<&Unit> {
        self.by_code.get(code).map_or_else(Vec::new, |&i| self.children[i].iter().map(|&c| &self.units[c]).collect())
    }

    /// The parent, the parent's parent, ... up to the province; nearest
    /// first, without `code` itself. Successions are not followed.
    pub fn ancestors(&self, code: &str) -> Vec<&Unit> {
        let mut out = Vec::new();
        let mut next = self.by_code.get(code).and_then(|&i| self.parent[i]);
        while let Some(i) = next {
            out.push(&self.units[i]);
            next = self.parent[i];
        }
        out
    }

    /// Whether `unit` is `scope` or lies below it, following parents and
    /// successions: a model bound to an old commune counts in the old
    /// commune, its old district, the new commune that took it over and that
    /// commune's ancestors. Dates do not matter: history stays where it
    /// happened and also rolls up into what came after. Unknown codes are
    /// within nothing.
    pub fn is_within(&self, unit: &str, scope: &str) -> bool {
        match (self.by_code.get(unit), self.by_code.get(scope)) {
            (Some(&unit), Some(&scope)) => self.reach(unit, true).contains(&scope),
            _ => false,
        }
    }

    /// Every unit that took over from `code`, directly or through later
    /// successions, nearest first; empty for an unknown code.
    pub fn successors(&self, code: &str) -> Vec<&str> {
        let Some(&start) = self.by_code.get(code) else { return Vec::new() };
        self.reach(start, false).into_iter().skip(1).map(|i| self.units[i].code.as_str()).collect()
    }

    /// The unit(s) that held `code`'s area on `on`: `code` itself while it is
    /// valid, else whatever its successions (in effect by then) lead to.
    /// Empty when `on` is before `code` existed, when it ended without a
    /// recorded successor (like an abolished district), or for an unknown code.
    pub fn current_unit(&self, code: &str, on: Date) -> Vec<&str> {
        let Some(&start) = self.by_code.get(code) else { return Vec::new() };
        let mut found = Vec::new();
        let mut seen = HashSet::new();
        let mut stack = vec![start];
        while let Some(i) = stack.pop() {
            if !seen.insert(i) {
                continue;
            }
            let unit = &self.units[i];
            if unit.is_valid_on(on) {
                found.push(unit.code.as_str());
            } else if unit.valid_to.is_some_and(|to| to < on) {
                // Reversed so that the stack pops successors in input order.
                stack.extend(self.successors[i].iter().rev().filter(|(_, eff)| *eff <= on).map(|(j, _)| *j));
            }
        }
        found
    }

    /// Whether `code` exists on `date`; false for an unknown code.
    pub fn is_valid_on(&self, code: &str, date: Date) -> bool {
        self.get(code).is_some_and(|unit| unit.is_valid_on(date))
    }

    /// `start` and every unit reachable from it through successions (and
    /// parents, if asked), breadth first. The sets are tiny (a few levels and
    /// a merger or two), so a vector beats a hash set here.
    fn reach(&self, start: usize, follow_parents: bool) -> Vec<usize> {
        let mut seen = vec![start];
        let mut at = 0;
        while let Some(&i) = seen.get(at) {
            at += 1;
            let parent = self.parent[i].filter(|_| follow_parents);
            for next in parent.into_iter().chain(self.successors[i].iter().map(|(j, _)| *j)) {
                if !seen.contains(&next) {
                    seen.push(next);
                }
            }
        }
        seen
    }
}

fn index_units(units: &[Unit]) -> Result<HashMap<String, usize>, (Entry, OrgError)> {
    let mut by_code = HashMap::with_capacity(units.len());
    for (i, unit) in units.iter().enumerate() {
        let at = Entry::Unit(i);
        let code = unit.code.clone();
        if !is_valid_code(&unit.code) {
            return Err((at, OrgError::InvalidCode { code }));
        }
        if unit.name.trim().is_empty() {
            return Err((at, OrgError::EmptyName { code }));
        }
        match unit.valid_to {
            Some(valid_to) if valid_to < unit.valid_from => {
                return Err((at, OrgError::EndsBeforeStart { code, valid_from: unit.valid_from, valid_to }));
            }
            _ => {}
        }
        if by_code.insert(code.clone(), i).is_some() {
            return Err((at, OrgError::DuplicateCode { code }));
        }
    }
    Ok(by_code)
}

fn link_parents(units: &[Unit], by_code: &HashMap<String, usize>) -> Result<Vec<Option<usize>>, (Entry, OrgError)> {
    units
        .iter()
        .enumerate()
        .map(|(i, unit)| match &unit.parent {
            None => Ok(None),
            Some(parent) => by_code.get(parent).map(|&p| Some(p)).ok_or_else(|| {
                (Entry::Unit(i), OrgError::UnknownParent { code: unit.code.clone(), parent: parent.clone() })
            }),
        })
        .collect()
}

fn check_parent_cycles(units: &[Unit], parent: &[Option<usize>]) -> Result<(), (Entry, OrgError)> {
    #[derive(Clone, Copy, PartialEq)]
    enum Mark {
        New,
        OnPath,
        Done,
    }
    let mut mark = vec![Mark::New; units.len()];
    for start in 0..units.len() {
        let mut path = Vec::new();
        let mut next = Some(start);
        while let Some(i) = next {
            match mark[i] {
                Mark::Done => break,
                Mark::OnPath => {
                    return Err((Entry::Unit(i), OrgError::ParentCycle { code: units[i].code.clone() }));
                }
                Mark::New => {
                    mark[i] = Mark::OnPath;
                    path.push(i);
                    next = parent[i];
                }
            }
        }
        for i in path {
            mark[i] = Mark::Done;
        }
    }
    Ok(())
}

fn check_levels_and_dates(units: &[Unit], parent: &[Option<usize>]) -> Result<(), (Entry, OrgError)> {
    for (i, unit) in units.iter().enumerate() {
        let at = Entry::Unit(i);
        let code = unit.code.clone();
        let level = unit.level;
        let rule = level.placement_rule();
        let Some(p) = parent[i] else {
            if level.may_sit_under(None) {
                continue;
            }
            return Err((at, OrgError::ParentRequired { code, level, rule }));
        };
        let parent = &units[p];
        if !level.may_sit_under(Some(parent.level)) {
            let parent_level = parent.level;
            return Err((
                at,
                OrgError::MisplacedLevel { code, level, parent: parent.code.clone(), parent_level, rule },
            ));
        }
        if !parent.validity().covers(&unit.validity()) {
            return Err((
                at,
                OrgError::OutsideParentValidity {
                    code,
                    validity: unit.validity(),
                    parent: parent.code.clone(),
                    parent_validity: parent.validity(),
                },
            ));
        }
    }
    Ok(())
}

type Successors = Vec<Vec<(usize, Date)>>;

fn link_successions(
    units: &[Unit],
    successions: &[Succession],
    by_code: &HashMap<String, usize>,
) -> Result<Successors, (Entry, OrgError)> {
    let mut successors = vec![Vec::new(); units.len()];
    let mut pairs = HashSet::new();
    for (k, succession) in successions.iter().enumerate() {
        let at = Entry::Succession(k);
        let Succession { old, new, effective } = succession;
        let lookup = |code: &String| {
            by_code.get(code).copied().ok_or_else(|| {
                let missing = code.clone();
                (at, OrgError::UnknownSuccessionUnit { old: old.clone(), new: new.clone(), missing })
            })
        };
        let (from, to) = (lookup(old)?, lookup(new)?);
        if from == to {
            return Err((at, OrgError::SelfSuccession { code: old.clone() }));
        }
        if !pairs.insert((from, to)) {
            return Err((at, OrgError::DuplicateSuccession { old: old.clone(), new: new.clone() }));
        }
        successors[from].push((to, *effective));
    }
    Ok(successors)
}

/// Kahn's algorithm: whatever cannot be put in order lies on a cycle or
/// downstream of one.
fn check_succession_cycles(
    units: &[Unit],
    successions: &[Succession],
    by_code: &HashMap<String, usize>,
    successors: &Successors,
) -> Result<(), (Entry, OrgError)> {
    let mut incoming = vec![0usize; units.len()];
    for outgoing in successors {
        for (to, _) in outgoing {
            incoming[*to] += 1;
        }
    }
    let mut ready: Vec<usize> = (0..units.len()).filter(|&i| incoming[i] == 0).collect();
    let mut ordered = 0;
    while let Some(i) = ready.pop() {
        ordered += 1;
        for (to, _) in &successors[i] {
            incoming[*to] -= 1;
            if incoming[*to] == 0 {
                ready.push(*to);
            }
        }
    }
    if ordered == units.len() {
        return Ok(());
    }
    // To name a unit on the cycle rather than one downstream of it: every
    // unordered unit has an unordered predecessor, so walking back through
    // them for as many steps as there are units ends on the cycle.
    let unordered = |i: usize| incoming[i] > 0;
    let mut predecessors = vec![Vec::new(); units.len()];
    for (k, Succession { old, new, .. }) in successions.iter().enumerate() {
        if let (Some(&from), Some(&to)) = (by_code.get(old), by_code.get(new)) {
            predecessors[to].push((from, k));
        }
    }
    let mut at = (0..units.len()).find(|&i| unordered(i)).unwrap_or(0);
    let mut edge = 0;
    for _ in 0..units.len() {
        let Some(&(from, k)) = predecessors[at].iter().find(|(from, _)| unordered(*from)) else { break };
        (at, edge) = (from, k);
    }
    Err((Entry::Succession(edge), OrgError::SuccessionCycle { code: units[at].code.clone() }))
}

fn check_succession_dates(
    units: &[Unit],
    successions: &[Succession],
    by_code: &HashMap<String, usize>,
) -> Result<(), (Entry, OrgError)> {
    for (k, Succession { old, new, effective }) in successions.iter().enumerate() {
        let at = Entry::Succession(k);
        // Both codes were resolved by `link_successions`.
        let (Some(&from), Some(&to)) = (by_code.get(old), by_code.get(new)) else { continue };
        let (old_unit, new_unit) = (&units[from], &units[to]);
        let Some(old_valid_to) = old_unit.valid_to else {
            return Err((at, OrgError::SuccessorOfLivingUnit { old: old.clone(), new: new.clone() }));
        };
        if *effective <= old_valid_to {
            let (old, new, effective) = (old.clone(), new.clone(), *effective);
            return Err((at, OrgError::SuccessionBeforeEnd { old, new, effective, old_valid_to }));
        }
        if !new_unit.is_valid_on(*effective) {
            let (old, new, effective, new_validity) = (old.clone(), new.clone(), *effective, new_unit.validity());
            return Err((at, OrgError::SuccessionOutsideNew { old, new, effective, new_validity }));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use time::macros::date;

    use super::*;

    const START: Date = date!(2009 - 01 - 01);
    const LAST_OLD_DAY: Date = date!(2025 - 06 - 30);
    const REFORM: Date = date!(2025 - 07 - 01);

    fn unit(code: &str, level: Level, parent: Option<&str>, from: Date, to: Option<Date>) -> Unit {
        Unit {
            code: code.into(),
            name: format!("Đơn vị {code}"),
            level,
            parent: parent.map(Into::into),
            valid_from: from,
            valid_to: to,
        }
    }

    fn succession(old: &str, new: &str, effective: Date) -> Succession {
        Succession { old: old.into(), new: new.into(), effective }
    }

    /// Before the reform: P > D > C1, C2 > villages. After: C1 and C2 merge
    /// into N (directly under P); C1's village V1 becomes N.V1; C2 splits
    /// into N and M.
    fn units() -> Vec<Unit> {
        let old = Some(LAST_OLD_DAY);
        vec![
            unit("P", Level::Province, None, START, None),
            unit("P.A", Level::Agency, Some("P"), START, None),
            unit("P.D", Level::District, Some("P"), START, old),
            unit("P.D.C1", Level::Commune, Some("P.D"), START, old),
            unit("P.D.C1.V1", Level::Village, Some("P.D.C1"), START, old),
            unit("P.D.C2", Level::Commune, Some("P.D"), START, old),
            unit("P.N", Level::Commune, Some("P"), REFORM, None),
            unit("P.N.V1", Level::Village, Some("P.N"), REFORM, None),
            unit("P.M", Level::Commune, Some("P"), REFORM, None),
        ]
    }

    fn successions() -> Vec<Succession> {
        vec![
            succession("P.D.C1", "P.N", REFORM),
            succession("P.D.C2", "P.N", REFORM),
            succession("P.D.C2", "P.M", REFORM),
            succession("P.D.C1.V1", "P.N.V1", REFORM),
        ]
    }

    fn tree() -> OrgTree {
        OrgTree::new(units(), successions()).unwrap()
    }

    fn units_error(edit: impl FnOnce(&mut Vec<Unit>)) -> OrgError {
        let mut units = units();
        edit(&mut units);
        OrgTree::new(units, successions()).unwrap_err()
    }

    fn successions_error(edit: impl FnOnce(&mut Vec<Succession>)) -> OrgError {
        let mut successions = successions();
        edit(&mut successions);
        OrgTree::new(units(), successions).unwrap_err()
    }

    fn find(units: &[Unit], code: &str) -> usize {
        units.iter().position(|u| u.code == code).unwrap()
    }

    #[test]
    fn fixture_is_valid() {
        let tree = tree();
        assert_eq!(tree.units().len(), 9);
        assert_eq!(tree.successions().len(), 4);
    }

    #[test]
    fn rejects_bad_codes() {
        for bad in ["", "QNA TK", "QNA/TK", "Tâm", &"A".repeat(65)] {
            let err = units_error(|u| u.push(unit(bad, Level::Agency, Some("P"), START, None)));
            assert_eq!(err, OrgError::InvalidCode { code: bad.into() }, "{bad:?}");
        }
        let longest = "A".repeat(64);
        let mut ok = units();
        ok.push(unit(&longest, Level::Agency, Some("P"), START, None));
        OrgTree::new(ok, successions()).unwrap();
    }

    #[test]
    fn rejects_empty_names() {
        let err = units_error(|u| u[1].name = "  ".into());
        assert_eq!(err, OrgError::EmptyName { code: "P.A".into() });
        assert_eq!(err.to_string(), "unit P.A: the name is empty");
    }

    #[test]
    fn rejects_duplicate_codes() {
        let err = units_error(|u| u.push(unit("P.A", Level::Agency, Some("P"), START, None)));
        assert_eq!(err, OrgError::DuplicateCode { code: "P.A".into() });
    }

    #[test]
    fn rejects_unknown_parents() {
        let err = units_error(|u| u[1].parent = Some("Q".into()));
        assert_eq!(err, OrgError::UnknownParent { code: "P.A".into(), parent: "Q".into() });
    }

    #[test]
    fn rejects_parent_cycles() {
        let err = units_error(|u| {
            u.push(unit("X1", Level::Commune, Some("X2"), START, None));
            u.push(unit("X2", Level::Commune, Some("X1"), START, None));
        });
        assert!(matches!(err, OrgError::ParentCycle { ref code } if code == "X1" || code == "X2"), "{err}");
        let err = units_error(|u| u.push(unit("X", Level::Commune, Some("X"), START, None)));
        assert_eq!(err, OrgError::ParentCycle { code: "X".into() });
    }

    #[test]
    fn rejects_levels_out_of_order() {
        let err = units_error(|u| u[0].parent = Some("P.A".into()));
        // P under its own agency is also a cycle; the cycle is reported first.
        assert_eq!(err, OrgError::ParentCycle { code: "P".into() });

        let err = units_error(|u| u.push(unit("Q", Level::Province, Some("P"), START, None)));
        assert!(matches!(err, OrgError::MisplacedLevel { ref code, .. } if code == "Q"), "{err}");
        assert_eq!(err.to_string(), "unit Q (province) cannot sit under P (province): a province has no parent unit");

        let err = units_error(|u| u.push(unit("V", Level::Village, Some("P.D"), START, LAST_OLD_DAY.into())));
        assert!(matches!(err, OrgError::MisplacedLevel { level: Level::Village, .. }), "{err}");
        let err = units_error(|u| u.push(unit("D", Level::District, Some("P.D"), START, LAST_OLD_DAY.into())));
        assert!(matches!(err, OrgError::MisplacedLevel { level: Level::District, .. }), "{err}");
        let err = units_error(|u| u.push(unit("A", Level::Agency, Some("P.N"), REFORM, None)));
        assert!(matches!(err, OrgError::MisplacedLevel { level: Level::Agency, .. }), "{err}");
        let err = units_error(|u| u.push(unit("C", Level::Commune, Some("P.N"), REFORM, None)));
        assert!(matches!(err, OrgError::MisplacedLevel { level: Level::Commune, .. }), "{err}");

        let err = units_error(|u| u.push(unit("C", Level::Commune, None, START, None)));
        assert!(matches!(err, OrgError::ParentRequired { level: Level::Commune, .. }), "{err}");
        assert!(err.to_string().starts_with("unit C (commune) needs a parent"), "{err}");
    }

    #[test]
    fn rejects_ending_before_starting() {
        let err = units_error(|u| u[1].valid_to = Some(date!(2008 - 12 - 31)));
        assert_eq!(
            err,
            OrgError::EndsBeforeStart { code: "P.A".into(), valid_from: START, valid_to: date!(2008 - 12 - 31) }
        );
        // A unit that lived a single day is fine.
        let mut one_day = units();
        one_day[1].valid_to = Some(START);
        OrgTree::new(one_day, successions()).unwrap();
    }

    #[test]
    fn rejects_children_outliving_parents() {
        // Open-ended child of a closed district.
        let err = units_error(|u| {
            let i = find(u, "P.D.C2");
            u[i].valid_to = None;
        });
        assert!(
            matches!(err, OrgError::OutsideParentValidity { ref code, ref parent, .. }
            if code == "P.D.C2" && parent == "P.D"),
            "{err}"
        );
        assert!(err.to_string().contains("(2009-01-01 on, still existing)"), "{err}");
        // Child born before its parent.
        let err = units_error(|u| {
            let i = find(u, "P.N.V1");
            u[i].valid_from = LAST_OLD_DAY;
        });
        assert!(matches!(err, OrgError::OutsideParentValidity { ref code, .. } if code == "P.N.V1"), "{err}");
    }

    #[test]
    fn rejects_successions_naming_unknown_units() {
        let err = successions_error(|s| s.push(succession("P.D.C9", "P.N", REFORM)));
        assert_eq!(
            err,
            OrgError::UnknownSuccessionUnit { old: "P.D.C9".into(), new: "P.N".into(), missing: "P.D.C9".into() }
        );
        let err = successions_error(|s| s.push(succession("P.D.C1", "P.X", REFORM)));
        assert!(matches!(err, OrgError::UnknownSuccessionUnit { ref missing, .. } if missing == "P.X"), "{err}");
    }

    #[test]
    fn rejects_self_and_duplicate_successions() {
        let err = successions_error(|s| s.push(succession("P.D.C1", "P.D.C1", REFORM)));
        assert_eq!(err, OrgError::SelfSuccession { code: "P.D.C1".into() });
        let err = successions_error(|s| s.push(succession("P.D.C1", "P.N", REFORM)));
        assert_eq!(err, OrgError::DuplicateSuccession { old: "P.D.C1".into(), new: "P.N".into() });
    }

    #[test]
    fn rejects_succession_cycles() {
        let err = successions_error(|s| {
            s.push(succession("P.N", "P.M", REFORM));
            s.push(succession("P.M", "P.D.C2", REFORM));
        });
        assert!(matches!(err, OrgError::SuccessionCycle { ref code } if code == "P.D.C2" || code == "P.M"), "{err}");
    }

    #[test]
    fn rejects_successions_out_of_time() {
        // The old unit still exists.
        let err = successions_error(|s| s.push(succession("P.A", "P.N", REFORM)));
        assert_eq!(err, OrgError::SuccessorOfLivingUnit { old: "P.A".into(), new: "P.N".into() });
        // Effective on the old unit's last day: there would be a day with two holders.
        let err = successions_error(|s| s[0].effective = LAST_OLD_DAY);
        assert_eq!(
            err,
            OrgError::SuccessionBeforeEnd {
                old: "P.D.C1".into(),
                new: "P.N".into(),
                effective: LAST_OLD_DAY,
                old_valid_to: LAST_OLD_DAY
            }
        );
        // Effective before the new unit exists.
        let mut late_unit = units();
        let i = find(&late_unit, "P.M");
        late_unit[i].valid_from = date!(2025 - 08 - 01);
        let err = OrgTree::new(late_unit, successions()).unwrap_err();
        assert!(matches!(err, OrgError::SuccessionOutsideNew { ref new, .. } if new == "P.M"), "{err}");
        // A gap between the old unit's end and the succession is allowed.
        let mut late = successions();
        late[2].effective = date!(2025 - 08 - 01);
        OrgTree::new(units(), late).unwrap();
    }

    #[test]
    fn queries_follow_parents() {
        let tree = tree();
        assert_eq!(tree.get("P.D.C1").unwrap().level, Level::Commune);
        assert!(tree.get("nope").is_none());
        let codes = |units: Vec<&Unit>| units.into_iter().map(|u| u.code.clone()).collect::<Vec<_>>();
        assert_eq!(codes(tree.children("P")), ["P.A", "P.D", "P.N", "P.M"]);
        assert_eq!(codes(tree.children("P.D")), ["P.D.C1", "P.D.C2"]);
        assert!(tree.children("P.D.C1.V1").is_empty());
        assert_eq!(codes(tree.ancestors("P.D.C1.V1")), ["P.D.C1", "P.D", "P"]);
        assert!(tree.ancestors("P").is_empty());
        assert!(tree.ancestors("nope").is_empty());
    }

    #[test]
    fn is_within_across_levels_and_successions() {
        let tree = tree();
        for scope in ["P.D.C1.V1", "P.D.C1", "P.D", "P", "P.N.V1", "P.N"] {
            assert!(tree.is_within("P.D.C1.V1", scope), "{scope}");
        }
        for scope in ["P.D.C2", "P.M", "P.A"] {
            assert!(!tree.is_within("P.D.C1.V1", scope), "{scope}");
        }
        // A merger: both old communes count in the new one.
        assert!(tree.is_within("P.D.C1", "P.N"));
        assert!(tree.is_within("P.D.C2", "P.N"));
        // A split: the old commune counts in both new ones.
        assert!(tree.is_within("P.D.C2", "P.M"));
        // Successions point forward only: the new commune did not exist in
        // the old district.
        assert!(!tree.is_within("P.N", "P.D"));
        assert!(!tree.is_within("P.N", "P.D.C1"));
        assert!(!tree.is_within("P.N.V1", "P.D.C1.V1"));
        assert!(tree.is_within("P.A", "P.A"));
        assert!(!tree.is_within("P", "P.A"));
        assert!(!tree.is_within("nope", "nope"));
        assert!(!tree.is_within("nope", "P"));
    }

    #[test]
    fn successors_are_transitive() {
        let mut units = units();
        units.push(unit("P.N2", Level::Commune, Some("P"), date!(2030 - 01 - 01), None));
        let i = find(&units, "P.N");
        units[i].valid_to = Some(date!(2029 - 12 - 31));
        let mut successions = successions();
        successions.push(succession("P.N", "P.N2", date!(2030 - 01 - 01)));
        let i = find(&units, "P.N.V1");
        units[i].valid_to = Some(date!(2029 - 12 - 31));
        let tree = OrgTree::new(units, successions).unwrap();

        assert_eq!(tree.successors("P.D.C2"), ["P.N", "P.M", "P.N2"]);
        assert_eq!(tree.successors("P.D.C1"), ["P.N", "P.N2"]);
        assert!(tree.successors("P.A").is_empty());
        assert!(tree.successors("nope").is_empty());
        assert_eq!(tree.current_unit("P.D.C1", date!(2031 - 01 - 01)), ["P.N2"]);
        assert_eq!(tree.current_unit("P.D.C1", date!(2029 - 12 - 31)), ["P.N"]);
        // The village ended with no successor.
        assert!(tree.current_unit("P.D.C1.V1", date!(2031 - 01 - 01)).is_empty());
    }

    #[test]
    fn current_unit_before_and_after_the_reform() {
        let tree = tree();
        assert_eq!(tree.current_unit("P.D.C1", LAST_OLD_DAY), ["P.D.C1"]);
        assert_eq!(tree.current_unit("P.D.C1", REFORM), ["P.N"]);
        assert_eq!(tree.current_unit("P.D.C2", REFORM), ["P.N", "P.M"]);
        assert_eq!(tree.current_unit("P.D.C1.V1", REFORM), ["P.N.V1"]);
        assert_eq!(tree.current_unit("P.N", REFORM), ["P.N"]);
        // Abolished with no recorded successor.
        assert!(tree.current_unit("P.D", REFORM).is_empty());
        // Before the unit existed, nothing held "its" area under its name.
        assert!(tree.current_unit("P.N", LAST_OLD_DAY).is_empty());
        assert!(tree.current_unit("P", date!(2000 - 01 - 01)).is_empty());
        assert!(tree.current_unit("nope", REFORM).is_empty());

        assert!(tree.is_valid_on("P.D", LAST_OLD_DAY));
        assert!(!tree.is_valid_on("P.D", REFORM));
        assert!(tree.is_valid_on("P.N", REFORM));
        assert!(!tree.is_valid_on("nope", REFORM));
    }

    #[test]
    fn current_unit_waits_for_a_late_succession() {
        let mut late = successions();
        late[2].effective = date!(2025 - 08 - 01);
        let tree = OrgTree::new(units(), late).unwrap();
        assert_eq!(tree.current_unit("P.D.C2", date!(2025 - 07 - 15)), ["P.N"]);
        assert_eq!(tree.current_unit("P.D.C2", date!(2025 - 08 - 01)), ["P.N", "P.M"]);
    }

    #[test]
    fn into_parts_gives_back_the_input() {
        assert_eq!(tree().into_parts(), (units(), successions()));
    }
}

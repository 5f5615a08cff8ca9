//! The demo organisation tree, shaped on the brief.
//!
//! Real: the province, the three districts and the three communes the brief
//! names, thôn 2 of Trà Ka and thôn Kim Đới of Tam Thăng. Invented: every
//! other village (the brief says Tam Thăng has 8 villages; apart from Kim Đới
//! their names here are made up), the neighbouring commune Điện Thọ's place
//! in the merger, the start dates, and the whole 2025 mapping.
//!
//! The 2025 reform here is ILLUSTRATIVE: it shows how a reform is recorded
//! (districts end on 30 June 2025; new communes under the province begin on
//! 1 July 2025, with new codes under `QNA.X`; every old commune and village
//! ends and is succeeded by a new one), not which communes really merged. In
//! reality the 2025 reform also merged Quảng Nam into Đà Nẵng city; the demo
//! keeps the province open so that the brief's codes stay as they are.

use time::Date;
use time::macros::date;

use super::{Level, OrgTree, Succession, Unit};

/// Where the demo's history starts (the movement's records begin in 2009);
/// not the units' founding dates.
const HISTORY_START: Date = date!(2009 - 01 - 01);
/// Last day of the districts and of every pre-reform commune and village.
const LAST_DAY_BEFORE_REFORM: Date = date!(2025 - 06 - 30);
const REFORM: Date = date!(2025 - 07 - 01);

struct District {
    code: &'static str,
    name: &'static str,
    communes: &'static [Commune],
}

struct Commune {
    code: &'static str,
    name: &'static str,
    /// (last code segment, name); the new village under the successor keeps both.
    villages: &'static [(&'static str, &'static str)],
    successor: &'static str,
}

const DISTRICTS: [District; 3] = [
    District {
        code: "QNA.BTM",
        name: "Huyện Bắc Trà My",
        communes: &[Commune {
            code: "QNA.BTM.TK",
            name: "Xã Trà Ka",
            villages: &[("T1", "Thôn 1"), ("T2", "Thôn 2"), ("T3", "Thôn 3")],
            successor: "QNA.X.TK",
        }],
    },
    District {
        code: "QNA.DB",
        name: "Thị xã Điện Bàn",
        communes: &[
            Commune {
                code: "QNA.DB.DP",
                name: "Xã Điện Phước",
                villages: &[("PL", "Thôn Phước Lý"), ("DH", "Thôn Đông Hòa"), ("TA", "Thôn Tây An")],
                successor: "QNA.X.DP",
            },
            // The neighbour merged with Điện Phước in the illustrative reform.
            Commune {
                code: "QNA.DB.DT",
                name: "Xã Điện Thọ",
                villages: &[("TX", "Thôn Thọ Xuân"), ("TN", "Thôn Thọ Ninh")],
                successor: "QNA.X.DP",
            },
        ],
    },
    District {
        code: "QNA.TK",
        name: "Thành phố Tam Kỳ",
        communes: &[Commune {
            code: "QNA.TK.TT",
            name: "Xã Tam Thăng",
            // The "5 in 1" team started in Kim Đới and spread to all 8 villages.
            villages: &[
                ("KD", "Thôn Kim Đới"),
                ("VB", "Thôn Vĩnh Bình"),
                ("TTA", "Thôn Thạch Tân"),
                ("MC", "Thôn Mỹ Cang"),
                ("NT", "Thôn Ngọc Thạnh"),
                ("PK", "Thôn Phước Khánh"),
                ("AP", "Thôn An Phú"),
                ("TM", "Thôn Tú Mỹ"),
            ],
            successor: "QNA.X.TT",
        }],
    },
];

/// The communes of the illustrative reform, directly under the province.
const NEW_COMMUNES: [(&str, &str); 3] =
    [("QNA.X.TK", "Xã Trà Ka (mới)"), ("QNA.X.DP", "Xã Điện Phước (mới)"), ("QNA.X.TT", "Xã Tam Thăng (mới)")];

fn unit(code: &str, name: &str, level: Level, parent: Option<&str>, from: Date, to: Option<Date>) -> Unit {
    Unit { code: code.into(), name: name.into(), level, parent: parent.map(Into::into), valid_from: from, valid_to: to }
}

/// The demo tree: province Quảng Nam (`QNA`), two provincial agencies, the
/// brief's three districts and communes with their villages until 30 June
/// 2025, and an ILLUSTRATIVE 2025 reform (not the real merger lists): new
/// communes `QNA.X.TK`, `QNA.X.DP`, `QNA.X.TT` from 1 July 2025 with the old
/// villages re-created under them. See the module docs for what is real.
pub fn demo() -> OrgTree {
    let before = Some(LAST_DAY_BEFORE_REFORM);
    let mut units = vec![
        unit("QNA", "Tỉnh Quảng Nam", Level::Province, None, HISTORY_START, None),
        unit("QNA.MTTQ", "Ủy ban MTTQ Việt Nam tỉnh Quảng Nam", Level::Agency, Some("QNA"), HISTORY_START, None),
        unit("QNA.BDV", "Ban Dân vận Tỉnh ủy Quảng Nam", Level::Agency, Some("QNA"), HISTORY_START, None),
    ];
    for (code, name) in NEW_COMMUNES {
        units.push(unit(code, name, Level::Commune, Some("QNA"), REFORM, None));
    }
    let mut successions = Vec::new();
    let mut new_villages = Vec::new();
    for district in &DISTRICTS {
        units.push(unit(district.code, district.name, Level::District, Some("QNA"), HISTORY_START, before));
        for commune in district.communes {
            units.push(unit(commune.code, commune.name, Level::Commune, Some(district.code), HISTORY_START, before));
            successions.push(Succession { old: commune.code.into(), new: commune.successor.into(), effective: REFORM });
            for (segment, name) in commune.villages {
                let (old, new) = (format!("{}.{segment}", commune.code), format!("{}.{segment}", commune.successor));
                units.push(unit(&old, name, Level::Village, Some(commune.code), HISTORY_START, before));
                new_villages.push(unit(&new, name, Level::Village, Some(commune.successor), REFORM, None));
                successions.push(Succession { old, new, effective: REFORM });
            }
        }
    }
    units.extend(new_villages);
    // Fixed data, checked by the tests below: a failure here is a bug in
    // this file, never bad input.
    OrgTree::new(units, successions).expect("the demo tree is valid")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn villages_on<'a>(tree: &'a OrgTree, commune: &str, on: Date) -> Vec<&'a str> {
        tree.children(commune)
            .into_iter()
            .filter(|u| u.level == Level::Village && u.is_valid_on(on))
            .map(|u| u.code.as_str())
            .collect()
    }

    #[test]
    fn demo_tree_validates() {
        let tree = demo();
        let (units, successions) = tree.clone().into_parts();
        OrgTree::new(units, successions).unwrap();
        assert_eq!(tree.get("QNA").unwrap().name, "Tỉnh Quảng Nam");
        for agency in ["QNA.MTTQ", "QNA.BDV"] {
            assert_eq!(tree.get(agency).unwrap().level, Level::Agency);
            assert_eq!(tree.get(agency).unwrap().parent.as_deref(), Some("QNA"));
        }
    }

    #[test]
    fn tam_thang_has_8_villages_before_and_after_the_reform() {
        let tree = demo();
        let before = villages_on(&tree, "QNA.TK.TT", LAST_DAY_BEFORE_REFORM);
        assert_eq!(before.len(), 8);
        assert_eq!(before[0], "QNA.TK.TT.KD");
        assert_eq!(tree.get("QNA.TK.TT.KD").unwrap().name, "Thôn Kim Đới");
        assert!(villages_on(&tree, "QNA.TK.TT", REFORM).is_empty());
        assert_eq!(villages_on(&tree, "QNA.X.TT", REFORM).len(), 8);
        for old in before {
            let [new] = tree.current_unit(old, REFORM)[..] else { panic!("{old} has no single successor") };
            assert!(tree.is_within(old, "QNA.X.TT"), "{old}");
            assert_eq!(tree.get(new).unwrap().name, tree.get(old).unwrap().name);
        }
    }

    #[test]
    fn codes_of_the_demo_models_are_valid_when_they_started() {
        // server/src/demo.rs binds its models to these units.
        let tree = demo();
        for (code, started) in [
            ("QNA.TK.TT", date!(2022 - 03 - 01)),
            ("QNA.DB.DP", date!(2024 - 02 - 01)),
            ("QNA.BTM.TK.T2", date!(2021 - 01 - 01)),
        ] {
            assert!(tree.is_valid_on(code, started), "{code}");
        }
        assert_eq!(tree.get("QNA.BTM.TK.T2").unwrap().name, "Thôn 2");
        assert_eq!(tree.get("QNA.DB").unwrap().name, "Thị xã Điện Bàn");
    }

    #[test]
    fn the_reform_maps_old_units_to_new_ones() {
        let tree = demo();
        for district in ["QNA.BTM", "QNA.DB", "QNA.TK"] {
            assert!(tree.is_valid_on(district, LAST_DAY_BEFORE_REFORM));
            assert!(!tree.is_valid_on(district, REFORM));
            assert!(tree.current_unit(district, REFORM).is_empty(), "{district}");
        }
        assert_eq!(tree.current_unit("QNA.TK.TT", LAST_DAY_BEFORE_REFORM), ["QNA.TK.TT"]);
        assert_eq!(tree.current_unit("QNA.TK.TT", REFORM), ["QNA.X.TT"]);
        assert_eq!(tree.current_unit("QNA.DB.DP", REFORM), ["QNA.X.DP"]);
        assert_eq!(tree.current_unit("QNA.DB.DT", REFORM), ["QNA.X.DP"]);
        assert_eq!(tree.current_unit("QNA.BTM.TK.T2", REFORM), ["QNA.X.TK.T2"]);
        assert_eq!(tree.successors("QNA.BTM.TK"), ["QNA.X.TK"]);

        // The Tam Thăng model, bound to the old commune, counts everywhere it should.
        for scope in ["QNA.TK.TT", "QNA.TK", "QNA.X.TT", "QNA"] {
            assert!(tree.is_within("QNA.TK.TT", scope), "{scope}");
        }
        assert!(!tree.is_within("QNA.TK.TT", "QNA.X.DP"));
        assert!(!tree.is_within("QNA.TK.TT", "QNA.MTTQ"));
        // The merger: both old communes count in the new Điện Phước.
        assert!(tree.is_within("QNA.DB.DT.TX", "QNA.X.DP"));
        assert!(tree.is_within("QNA.DB.DP", "QNA.X.DP"));
        assert_eq!(villages_on(&tree, "QNA.X.DP", REFORM).len(), 5);
    }
}

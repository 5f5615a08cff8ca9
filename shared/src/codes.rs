//! The closed vocabularies of the domain (fields, statuses, kinds,
//! categories, outcomes, support types, review states).
//!
//! Each is stored in documents and on the wire as a stable snake_case code;
//! the Vietnamese and English words users see belong to the app, not here.

/// A vocabulary stored as its snake_case code.
pub trait Code: Copy + Eq + 'static {
    const ALL: &'static [Self];
    fn code(self) -> &'static str;
    fn from_code(code: &str) -> Option<Self>;
}

macro_rules! code_enum {
    ($(#[$meta:meta])* $name:ident { $($(#[$vmeta:meta])* $variant:ident),+ $(,)? }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord,
                 strum::EnumString, strum::IntoStaticStr, strum::VariantArray,
                 serde::Serialize, serde::Deserialize)]
        #[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
        #[strum(serialize_all = "snake_case")]
        #[serde(rename_all = "snake_case")]
        pub enum $name { $($(#[$vmeta])* $variant),+ }

        impl Code for $name {
            const ALL: &'static [Self] = <Self as strum::VariantArray>::VARIANTS;
            fn code(self) -> &'static str {
                <&'static str>::from(self)
            }
            fn from_code(code: &str) -> Option<Self> {
                code.parse().ok()
            }
        }

        impl autosurgeon::Reconcile for $name {
            type Key<'a> = autosurgeon::reconcile::NoKey;
            fn reconcile<R: autosurgeon::Reconciler>(&self, mut r: R) -> Result<(), R::Error> {
                r.str(self.code())
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.code())
            }
        }
    };
}
pub(crate) use code_enum;

code_enum! {
    /// Lĩnh vực: the field a model works in.
    Field {
        EconomicDevelopment,
        CultureSociety,
        SocialWelfare,
        SecurityOrder,
        NewRuralConstruction,
        PovertyReduction,
        SiteClearance,
        TemporaryHousing,
        AdministrativeReform,
        DigitalTransformation,
        GovernmentMassMobilization,
        PoliticalSystem,
        Other,
    }
}

code_enum! {
    /// Lifecycle of a model, in the order the steps normally happen;
    /// `Stopped` may follow any of them.
    ModelStatus {
        Building,
        Recognised,
        Typical,
        Replicating,
        Stopped,
    }
}

code_enum! {
    /// The kinds of activity record; each has its own detail block.
    RecordKind {
        Patrol,
        HouseholdSupport,
        Production,
        Meeting,
    }
}

code_enum! {
    IncidentCategory {
        Theft,
        IllegalSandMining,
        EnvironmentalPollution,
        Gambling,
        PublicDisorder,
        Traffic,
        Other,
    }
}

code_enum! {
    IncidentOutcome {
        HandledByTeam,
        HandedToPolice,
        SupportedPolice,
    }
}

code_enum! {
    SupportType {
        Money,
        Workdays,
        Materials,
        HouseRepair,
        HouseBuilding,
        TechniqueTransfer,
        LivestockOrSeed,
        Other,
    }
}

code_enum! {
    /// Where a record stands in commune review.
    ReviewState {
        New,
        Approved,
        Returned,
    }
}

code_enum! {
    /// What an account may do; each role can do what the one before can.
    Role {
        Volunteer,
        CommuneStaff,
        ProvinceStaff,
        Admin,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn round_trip<T: Code + std::fmt::Debug>() {
        for v in T::ALL {
            assert_eq!(T::from_code(v.code()), Some(*v));
        }
        assert_eq!(T::from_code("Not A Code"), None);
    }

    #[test]
    fn every_code_round_trips() {
        round_trip::<Field>();
        round_trip::<ModelStatus>();
        round_trip::<RecordKind>();
        round_trip::<IncidentCategory>();
        round_trip::<IncidentOutcome>();
        round_trip::<SupportType>();
        round_trip::<ReviewState>();
        round_trip::<Role>();
        assert_eq!(SupportType::LivestockOrSeed.code(), "livestock_or_seed");
    }
}

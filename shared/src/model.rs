//! The profile of a model (mô hình): what it is, where, who leads it, and
//! the steps of its lifecycle. One model profile is one Automerge document.

use autosurgeon::Reconcile;
use serde::{Deserialize, Serialize};

use crate::codes::{Field, ModelStatus};
use crate::ids::ModelId;
use crate::scalars::{Day, Timestamp};

#[derive(Debug, Clone, PartialEq, Reconcile, Serialize, Deserialize)]
pub struct ModelProfile {
    pub id: ModelId,
    pub name: String,
    pub field: Field,
    /// The organisation unit the model belongs to (a village, commune,
    /// district or provincial agency), by its code in the organisation tree.
    pub unit: String,
    /// Đơn vị chủ trì: the organisation that leads it.
    pub lead_organisation: String,
    pub started_on: Day,
    pub status: ModelStatus,
    /// The year each lifecycle step was reached; `None` for steps not reached.
    pub status_years: StatusYears,
    /// The typical model this one replicates, if any.
    pub replicated_from: Option<ModelId>,
    pub members: u32,
    pub households: u32,
    pub description: String,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

#[derive(Debug, Clone, Default, PartialEq, Reconcile, Serialize, Deserialize)]
pub struct StatusYears {
    pub building: Option<i32>,
    pub recognised: Option<i32>,
    pub typical: Option<i32>,
    pub replicating: Option<i32>,
    pub stopped: Option<i32>,
}

impl StatusYears {
    pub fn get(&self, status: ModelStatus) -> Option<i32> {
        match status {
            ModelStatus::Building => self.building,
            ModelStatus::Recognised => self.recognised,
            ModelStatus::Typical => self.typical,
            ModelStatus::Replicating => self.replicating,
            ModelStatus::Stopped => self.stopped,
        }
    }

    pub fn set(&mut self, status: ModelStatus, year: Option<i32>) {
        let slot = match status {
            ModelStatus::Building => &mut self.building,
            ModelStatus::Recognised => &mut self.recognised,
            ModelStatus::Typical => &mut self.typical,
            ModelStatus::Replicating => &mut self.replicating,
            ModelStatus::Stopped => &mut self.stopped,
        };
        *slot = year;
    }
}

//! The operations engine of Panorama: rules evaluated on the ingest stream,
//! alerts with their lifecycle, incidents with SOP checklists, SLA timers
//! and escalation, and notifications (webhook, e-mail, in-console).
//!
//! [`Ops::start`] loads the rules directory and runs the engine (a task on
//! the event bus) and the notification worker; the HTTP layer calls the
//! [`Ops`] methods. Rules are documents ([`Rule`]) kept by the store; their
//! evaluation ([`eval`]) is pure, so dry-runs replay history with the very
//! code the engine runs.

pub mod compile;
pub mod config;
pub mod demo;
pub mod dryrun;
pub mod dur;
mod engine;
pub mod error;
pub mod eval;
pub mod incidents;
pub mod model;
pub mod notify;
mod service;

pub use config::{Channel, RulesConfig, Secret, SmtpConfig, SmtpTls};
pub use dur::Dur;
pub use error::{OpsError, OpsResult};
pub use incidents::{ChecklistTick, IncidentDetail, IncidentPatch, NewIncident, StatusChange};
pub use model::{
    AggregateCond, ChangeCond, Colour, Condition, CountCond, FreshnessCond, IncidentSpec, Rule,
    RuleFile, Scope, Silent, SopInput, StatusCond, ThresholdCond, WindowAgg, ZoneCond,
    parse_rule_file,
};
pub use service::{ALERT_ROLES, Actor, AlertDetail, Ops, OpsTasks, RuleView};

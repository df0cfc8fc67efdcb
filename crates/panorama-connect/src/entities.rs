//! Making sure the entities a connector's records observe exist and declare
//! the attributes, creating or extending them when the source may. Shared
//! by the MQTT and poll connectors.

use crate::mapping::EntityHint;
use panorama_core::{AttributeSpec, Entity, FieldError, Invalid, Observation};
use panorama_ingest::{Ingest, IngestError};
use panorama_store::StoreError;
use std::collections::HashMap;

/// One record (a message, a polled record) on its way to the store.
pub(crate) struct Record<'a> {
    /// What it observes.
    pub observations: &'a [Observation],
    /// What it says about the entities it observes.
    pub hints: &'a [EntityHint],
}

/// What the connector may do about unknown entities and attributes.
#[derive(Debug, Clone)]
pub(crate) struct Policy {
    /// The source writing.
    pub source: String,
    /// Domain for entities it creates; none: it creates none.
    pub domain: Option<String>,
    /// Whether it creates entities and declares attributes.
    pub create: bool,
}

/// Entities known to exist, with their attributes; a cache of the store.
#[derive(Debug, Default)]
pub(crate) struct Resolver {
    known: HashMap<String, Entity>,
}

impl Resolver {
    /// Forgets what it knows, after the store refused a write that it
    /// thought fine (an entity was edited meanwhile).
    pub fn forget(&mut self) {
        self.known.clear();
    }

    /// Checks every record; creates or extends entities when allowed.
    /// Returns, per record, why it is refused (`None`: it can be written).
    /// The error is only for failures worth retrying.
    pub async fn resolve(
        &mut self,
        ingest: &Ingest,
        policy: &Policy,
        records: &[Record<'_>],
    ) -> Result<Vec<Option<Invalid>>, IngestError> {
        let store = ingest.store().clone();
        let can_create = policy.create && policy.domain.is_some();
        let mut to_write: HashMap<String, Entity> = HashMap::new();
        let mut verdicts: Vec<Option<Invalid>> = Vec::with_capacity(records.len());
        for r in records {
            let mut problem: Option<Invalid> = None;
            for (i, o) in r.observations.iter().enumerate() {
                let entity = match to_write.get(&o.entity) {
                    Some(e) => Some(e.clone()),
                    None => match self.known.get(&o.entity) {
                        Some(e) => Some(e.clone()),
                        None => {
                            let e = store.entity(&o.entity).await.map_err(IngestError::Store)?;
                            if let Some(e) = &e {
                                self.known.insert(e.id.clone(), e.clone());
                            }
                            e
                        }
                    },
                };
                let ty = o.value.value_type();
                let spec = AttributeSpec {
                    value_type: ty,
                    unit: None,
                };
                match entity {
                    Some(mut e) => match e.attributes.get(&o.attribute).map(|a| a.value_type) {
                        Some(declared) if declared == ty => {}
                        Some(declared) => {
                            problem = Some(Invalid::one(
                                format!("[{i}].value"),
                                format!(
                                    "attribute '{}' of '{}' holds {} values, got {}",
                                    o.attribute,
                                    o.entity,
                                    declared.as_str(),
                                    ty.as_str()
                                ),
                            ));
                            break;
                        }
                        None if can_create => {
                            e.attributes.insert(o.attribute.clone(), spec);
                            to_write.insert(e.id.clone(), e);
                        }
                        None => {
                            problem = Some(Invalid::one(
                                format!("[{i}].attribute"),
                                format!(
                                    "entity '{}' does not declare attribute '{}'",
                                    o.entity, o.attribute
                                ),
                            ));
                            break;
                        }
                    },
                    None => match &policy.domain {
                        Some(domain) if policy.create => {
                            let hint = r.hints.iter().find(|h| h.id == o.entity);
                            let mut e = new_entity(&o.entity, hint, domain);
                            e.attributes.insert(o.attribute.clone(), spec);
                            to_write.insert(e.id.clone(), e);
                        }
                        _ => {
                            problem = Some(Invalid::one(
                                format!("[{i}].entity"),
                                format!(
                                    "entity '{}' does not exist; declare it first, or give the source a domain so the connector creates it",
                                    o.entity
                                ),
                            ));
                            break;
                        }
                    },
                }
            }
            verdicts.push(problem);
        }
        for (id, e) in to_write {
            let refused = match e.validate() {
                Err(err) => Some(err),
                Ok(()) => match ingest.entities(&policy.source, vec![e.clone()]).await {
                    Ok(_) => {
                        self.known.insert(id.clone(), e);
                        None
                    }
                    Err(IngestError::Store(StoreError::Invalid(inv))) => Some(inv),
                    Err(err) => return Err(err),
                },
            };
            let Some(why) = refused else { continue };
            let why = Invalid(vec![FieldError::new(
                "entity",
                format!("cannot create entity '{id}': {why}"),
            )]);
            for (r, v) in records.iter().zip(verdicts.iter_mut()) {
                if v.is_none() && r.observations.iter().any(|o| o.entity == id) {
                    *v = Some(why.clone());
                }
            }
        }
        Ok(verdicts)
    }
}

/// An entity a connector creates for an id it has not seen.
fn new_entity(id: &str, hint: Option<&EntityHint>, domain: &str) -> Entity {
    let entity_type = hint
        .map(|h| h.entity_type.clone())
        .unwrap_or_else(|| "Device".into());
    let name = hint
        .and_then(|h| h.name.clone())
        .filter(|n| !n.trim().is_empty())
        .unwrap_or_else(|| id.rsplit(':').next().unwrap_or(id).to_string());
    Entity {
        id: id.to_string(),
        entity_type,
        name,
        domain: domain.to_string(),
        admin_unit: None,
        location: hint.and_then(|h| h.location.clone()),
        attributes: Default::default(),
        properties: Default::default(),
        source: None,
        updated_at: None,
    }
}

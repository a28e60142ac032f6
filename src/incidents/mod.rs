//! Incidents: the lifecycle (pure decisions, `lifecycle`), the sentences
//! people read (`explain`), the per-process fan-out of updates (`hub`), and
//! the two steps that apply the lifecycle to stored incidents. The store
//! runs each step in one transaction and asks the lifecycle what to do; it
//! never decides itself, and the backtest asks the same functions.

pub mod explain;
pub mod feed;
pub mod hub;
pub mod lifecycle;
pub mod retention;

use time::OffsetDateTime;

use crate::{
    domain::incident::{Alert, Grouping, Update},
    store::{Store, StoreError},
};
use lifecycle::Policy;

/// Stores a firing alert and what it does to its incident (the one its
/// grouping names): joins the unresolved one (escalating it when more
/// severe), reopens one resolved within the policy's window, or opens one.
/// Returns the stored alert and the updates, committed together.
pub async fn fire(
    store: &Store,
    alert: &Alert,
    grouping: Grouping,
    policy: &Policy,
) -> Result<(Alert, Vec<Update>), StoreError> {
    let title = explain::title(alert, grouping);
    store
        .fire_alert(
            alert,
            grouping.incident_service(alert),
            &title,
            |existing| lifecycle::on_alert(existing, alert.severity, alert.fired_at, policy),
        )
        .await
}

/// Resolves, as the system, every unresolved incident whose alerts all
/// stayed clear for the policy's period as of `now`.
pub async fn resolve_quiet(
    store: &Store,
    now: OffsetDateTime,
    policy: &Policy,
) -> Result<Vec<Update>, StoreError> {
    store
        .resolve_quiet(now, |q| {
            lifecycle::due_to_resolve(true, Some(q.last_clear), now, policy)
        })
        .await
}

//! Incidents and alerts: the transactions that apply a lifecycle decision
//! (`fire_alert`, `resolve_quiet`, `close_by_hand`) and the reads. Every
//! change writes its update to the outbox (`outbox.rs`) in the same
//! transaction. This file never decides what a change is: the caller's
//! lifecycle (`incidents::lifecycle`) does.

use time::OffsetDateTime;

use super::{
    Store, StoreError, classify,
    outbox::{lock_outbox, notify, record, updates_where},
};
use crate::domain::{
    TenantId,
    incident::{
        Alert, Decision, Existing, Incident, IncidentFilter, IncidentStatus, Quiet, SYSTEM_ACTOR,
        Update, UpdateKind,
    },
    rules::{Kind, Severity},
};

const INCIDENT_COLUMNS: &str = "i.incident_id, i.tenant_id, i.service, i.title, i.severity, i.status, i.opened_at, \
     i.acknowledged_at, i.acknowledged_by, i.resolved_at, i.resolved_by, i.reopen_count, \
     (SELECT count(*) FROM alerts a WHERE a.incident_id = i.incident_id) AS alert_count, \
     coalesce((SELECT max(seq) FROM incident_updates u WHERE u.incident_id = i.incident_id), 0) AS last_seq";

pub(super) const ALERT_COLUMNS: &str = "alert_id, tenant_id, incident_id, service, endpoint, kind, severity, observed, baseline, no_baseline, \
     threshold, window_secs, fired_at, cleared_at, detail";

#[derive(sqlx::FromRow)]
struct IncidentRow {
    incident_id: i64,
    tenant_id: i64,
    service: String,
    title: String,
    severity: String,
    status: String,
    opened_at: OffsetDateTime,
    acknowledged_at: Option<OffsetDateTime>,
    acknowledged_by: Option<String>,
    resolved_at: Option<OffsetDateTime>,
    resolved_by: Option<String>,
    reopen_count: i32,
    alert_count: i64,
    last_seq: i64,
}

/// A stored name of `what`; an unknown one is corrupt data, not a default.
fn named<T>(what: &str, name: &str, parse: fn(&str) -> Option<T>) -> Result<T, StoreError> {
    parse(name).ok_or_else(|| StoreError::Corrupt(format!("unknown {what} {name:?}")))
}

impl TryFrom<IncidentRow> for Incident {
    type Error = StoreError;

    fn try_from(r: IncidentRow) -> Result<Incident, StoreError> {
        Ok(Incident {
            incident_id: r.incident_id,
            tenant_id: TenantId(r.tenant_id),
            service: r.service,
            title: r.title,
            severity: named("severity", &r.severity, Severity::parse)?,
            status: named("incident status", &r.status, IncidentStatus::parse)?,
            opened_at: r.opened_at,
            acknowledged_at: r.acknowledged_at,
            acknowledged_by: r.acknowledged_by,
            resolved_at: r.resolved_at,
            resolved_by: r.resolved_by,
            reopen_count: r.reopen_count,
            alert_count: r.alert_count,
            last_seq: r.last_seq,
        })
    }
}

#[derive(sqlx::FromRow)]
pub(super) struct AlertRow {
    alert_id: i64,
    tenant_id: i64,
    incident_id: Option<i64>,
    service: String,
    endpoint: String,
    kind: String,
    severity: String,
    observed: f64,
    baseline: f64,
    no_baseline: bool,
    threshold: f64,
    window_secs: i32,
    fired_at: OffsetDateTime,
    cleared_at: Option<OffsetDateTime>,
    detail: String,
}

impl TryFrom<AlertRow> for Alert {
    type Error = StoreError;

    fn try_from(r: AlertRow) -> Result<Alert, StoreError> {
        Ok(Alert {
            alert_id: r.alert_id,
            tenant_id: TenantId(r.tenant_id),
            incident_id: r.incident_id,
            service: r.service,
            endpoint: r.endpoint,
            kind: named("alert kind", &r.kind, Kind::parse)?,
            severity: named("severity", &r.severity, Severity::parse)?,
            observed: r.observed,
            baseline: r.baseline,
            no_baseline: r.no_baseline,
            threshold: r.threshold,
            window_secs: r.window_secs,
            fired_at: r.fired_at,
            cleared_at: r.cleared_at,
            detail: r.detail,
        })
    }
}

/// Counts and timings of a tenant's incidents over a window.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Summary {
    /// Unresolved now.
    pub open: i64,
    /// Unresolved and critical now.
    pub critical: i64,
    /// Opened in the window.
    pub opened: i64,
    /// Resolved in the window.
    pub resolved: i64,
    /// Mean time from opening to resolution of those resolved in the window, seconds.
    pub mttr_secs: f64,
    /// The service with the most incidents opened in the window, and how many.
    pub top_service: Option<(String, i64)>,
}

pub(super) async fn incident_in(
    tx: &mut sqlx::PgConnection,
    incident_id: i64,
) -> Result<Incident, StoreError> {
    let sql = format!("SELECT {INCIDENT_COLUMNS} FROM incidents i WHERE i.incident_id = $1");
    let row: IncidentRow = sqlx::query_as(sqlx::AssertSqlSafe(sql))
        .bind(incident_id)
        .fetch_one(tx)
        .await
        .map_err(|e| classify(e, "incident"))?;
    row.try_into()
}

impl Store {
    /// Stores a firing alert in the incident of `incident_service` (its
    /// service, or '' for a tenant-wide one) as `decide` says, given what
    /// exists of that incident (read and locked in the same transaction):
    /// join (raising the severity and title when it escalates), reopen, or
    /// open with `title`. Returns the stored alert and the updates.
    pub async fn fire_alert(
        &self,
        alert: &Alert,
        incident_service: &str,
        title: &str,
        decide: impl FnOnce(&Existing) -> Decision,
    ) -> Result<(Alert, Vec<Update>), StoreError> {
        let err = |e| classify(e, "incident");
        let mut tx = self.pool().begin().await.map_err(err)?;
        lock_outbox(&mut tx).await?;
        let at = alert.fired_at;
        // 1. The service's incidents, locked: the open one, the last resolved.
        let existing = existing_incidents(&mut tx, alert.tenant_id, incident_service).await?;
        // 2. The lifecycle decides; the incident joined, escalated, reopened or opened.
        let decision = decide(&existing);
        let incident_id = apply_decision(&mut tx, decision, alert, incident_service, title).await?;
        // 3. The alert, in its incident, and the updates the decision makes.
        let stored = Alert {
            alert_id: insert_alert(&mut tx, alert, incident_id).await?,
            incident_id: Some(incident_id),
            ..alert.clone()
        };
        let mut updates = Vec::new();
        for &kind in decision.updates() {
            updates.push(
                record(
                    &mut tx,
                    incident_id,
                    kind,
                    at,
                    Some(&stored),
                    SYSTEM_ACTOR,
                    "",
                )
                .await?,
            );
        }
        notify(&mut tx, &updates).await?;
        tx.commit().await.map_err(err)?;
        Ok((stored, updates))
    }

    /// Marks an alert as cleared (its condition holds no more).
    pub async fn clear_alert(&self, alert_id: i64, at: OffsetDateTime) -> Result<(), StoreError> {
        sqlx::query("UPDATE alerts SET cleared_at = $2 WHERE alert_id = $1 AND cleared_at IS NULL")
            .bind(alert_id)
            .bind(at)
            .execute(self.pool())
            .await
            .map_err(|e| classify(e, "alert"))?;
        Ok(())
    }

    /// The alerts of `tenant` still firing.
    pub async fn firing_alerts_of(&self, tenant: TenantId) -> Result<Vec<Alert>, StoreError> {
        let sql = format!(
            "SELECT {ALERT_COLUMNS} FROM alerts WHERE tenant_id = $1 AND cleared_at IS NULL"
        );
        let rows: Vec<AlertRow> = sqlx::query_as(sqlx::AssertSqlSafe(sql))
            .bind(tenant.0)
            .fetch_all(self.pool())
            .await
            .map_err(|e| classify(e, "alerts"))?;
        rows.into_iter().map(Alert::try_from).collect()
    }

    /// Every alert still firing, of every tenant.
    pub async fn firing_alerts(&self) -> Result<Vec<Alert>, StoreError> {
        let sql = format!("SELECT {ALERT_COLUMNS} FROM alerts WHERE cleared_at IS NULL");
        let rows: Vec<AlertRow> = sqlx::query_as(sqlx::AssertSqlSafe(sql))
            .fetch_all(self.pool())
            .await
            .map_err(|e| classify(e, "alerts"))?;
        rows.into_iter().map(Alert::try_from).collect()
    }

    /// Resolves, as the system, every unresolved incident whose alerts have
    /// all cleared and that `due` says is due (the lifecycle decides).
    pub async fn resolve_quiet(
        &self,
        now: OffsetDateTime,
        due: impl Fn(&Quiet) -> bool,
    ) -> Result<Vec<Update>, StoreError> {
        let err = |e| classify(e, "incident");
        let mut tx = self.pool().begin().await.map_err(err)?;
        lock_outbox(&mut tx).await?;
        let quiet: Vec<(i64, OffsetDateTime)> = sqlx::query_as(
            "SELECT i.incident_id, \
                    coalesce((SELECT max(a.cleared_at) FROM alerts a WHERE a.incident_id = i.incident_id), i.last_alert_at) \
             FROM incidents i \
             WHERE i.status <> 'resolved' \
               AND NOT EXISTS (SELECT 1 FROM alerts a WHERE a.incident_id = i.incident_id AND a.cleared_at IS NULL) \
             FOR UPDATE OF i",
        )
        .fetch_all(&mut *tx)
        .await
        .map_err(err)?;
        let due: Vec<i64> = quiet
            .into_iter()
            .map(|(incident_id, last_clear)| Quiet {
                incident_id,
                last_clear,
            })
            .filter(|q| due(q))
            .map(|q| q.incident_id)
            .collect();
        sqlx::query(
            "UPDATE incidents SET status = 'resolved', resolved_at = $1, resolved_by = $3, updated_at = now() \
             WHERE incident_id = ANY($2)",
        )
        .bind(now)
        .bind(&due)
        .bind(SYSTEM_ACTOR)
        .execute(&mut *tx)
        .await
        .map_err(err)?;
        let mut updates = Vec::new();
        for id in due {
            updates.push(
                record(
                    &mut tx,
                    id,
                    UpdateKind::Resolved,
                    now,
                    None,
                    SYSTEM_ACTOR,
                    "every alert stayed clear for the clear period",
                )
                .await?,
            );
        }
        notify(&mut tx, &updates).await?;
        tx.commit().await.map_err(err)?;
        Ok(updates)
    }

    /// Acknowledges (`resolve` false) or resolves an incident of `tenant` by
    /// hand. Resolving also clears its alerts.
    pub async fn close_by_hand(
        &self,
        tenant: TenantId,
        incident_id: i64,
        resolve: bool,
        by: &str,
        note: &str,
        now: OffsetDateTime,
    ) -> Result<Update, StoreError> {
        let err = |e| classify(e, "incident");
        let mut tx = self.tenant_tx(tenant).await?;
        lock_outbox(&mut tx).await?;
        let status: Option<String> = sqlx::query_scalar(
            "SELECT status FROM incidents WHERE tenant_id = $1 AND incident_id = $2 FOR UPDATE",
        )
        .bind(tenant.0)
        .bind(incident_id)
        .fetch_optional(&mut *tx)
        .await
        .map_err(err)?;
        match status.as_deref() {
            None => return Err(StoreError::NotFound("incident")),
            Some("resolved") => return Err(StoreError::State("the incident is resolved")),
            Some("acknowledged") if !resolve => {
                return Err(StoreError::State("the incident is already acknowledged"));
            }
            _ => {}
        }
        let kind = if resolve {
            sqlx::query(
                "UPDATE incidents SET status = 'resolved', resolved_at = $2, resolved_by = $3, updated_at = now() \
                 WHERE incident_id = $1",
            )
            .bind(incident_id)
            .bind(now)
            .bind(by)
            .execute(&mut *tx)
            .await
            .map_err(err)?;
            sqlx::query(
                "UPDATE alerts SET cleared_at = $2 WHERE incident_id = $1 AND cleared_at IS NULL",
            )
            .bind(incident_id)
            .bind(now)
            .execute(&mut *tx)
            .await
            .map_err(err)?;
            UpdateKind::Resolved
        } else {
            sqlx::query(
                "UPDATE incidents SET status = 'acknowledged', acknowledged_at = $2, acknowledged_by = $3, \
                   updated_at = now() WHERE incident_id = $1",
            )
            .bind(incident_id)
            .bind(now)
            .bind(by)
            .execute(&mut *tx)
            .await
            .map_err(err)?;
            UpdateKind::Acknowledged
        };
        let update = record(&mut tx, incident_id, kind, now, None, by, note).await?;
        notify(&mut tx, std::slice::from_ref(&update)).await?;
        tx.commit().await.map_err(err)?;
        Ok(update)
    }

    /// Incidents of `tenant` opened in [from, to), newest first, matching
    /// `filter`, before `cursor` (opened_at, id).
    pub async fn incidents(
        &self,
        tenant: TenantId,
        filter: &IncidentFilter,
        from: OffsetDateTime,
        to: OffsetDateTime,
        cursor: Option<(OffsetDateTime, i64)>,
        limit: i64,
    ) -> Result<Vec<Incident>, StoreError> {
        let mut tx = self.tenant_tx(tenant).await?;
        let (at, id) = cursor.unwrap_or((to, i64::MAX));
        let statuses: Vec<&str> = filter.statuses.iter().map(|s| s.as_str()).collect();
        let severities: Vec<&str> = [Severity::Info, Severity::Warning, Severity::Critical]
            .into_iter()
            .filter(|s| filter.min_severity.is_none_or(|m| *s >= m))
            .map(Severity::as_str)
            .collect();
        let sql = format!(
            "SELECT {INCIDENT_COLUMNS} FROM incidents i \
             WHERE i.tenant_id = $1 AND i.opened_at >= $2 AND i.opened_at < $3 \
               AND (i.opened_at, i.incident_id) < ($4, $5) \
               AND (cardinality($6::text[]) = 0 OR i.status = ANY($6)) \
               AND ($7::text IS NULL OR i.service = $7) AND i.severity = ANY($8) \
             ORDER BY i.opened_at DESC, i.incident_id DESC LIMIT $9"
        );
        let rows: Vec<IncidentRow> = sqlx::query_as(sqlx::AssertSqlSafe(sql))
            .bind(tenant.0)
            .bind(from)
            .bind(to)
            .bind(at)
            .bind(id)
            .bind(&statuses)
            .bind(filter.service.as_deref())
            .bind(&severities)
            .bind(limit)
            .fetch_all(&mut *tx)
            .await
            .map_err(|e| classify(e, "incidents"))?;
        super::commit(tx, "incidents").await?;
        rows.into_iter().map(Incident::try_from).collect()
    }

    /// Every unresolved incident of `tenant`, oldest first.
    pub async fn open_incidents(&self, tenant: TenantId) -> Result<Vec<Incident>, StoreError> {
        let mut tx = self.tenant_tx(tenant).await?;
        let sql = format!(
            "SELECT {INCIDENT_COLUMNS} FROM incidents i WHERE i.tenant_id = $1 AND i.status <> 'resolved' \
             ORDER BY i.opened_at, i.incident_id"
        );
        let rows: Vec<IncidentRow> = sqlx::query_as(sqlx::AssertSqlSafe(sql))
            .bind(tenant.0)
            .fetch_all(&mut *tx)
            .await
            .map_err(|e| classify(e, "incidents"))?;
        super::commit(tx, "incidents").await?;
        rows.into_iter().map(Incident::try_from).collect()
    }

    /// One incident of `tenant` with its alerts and its timeline.
    pub async fn incident(
        &self,
        tenant: TenantId,
        incident_id: i64,
    ) -> Result<(Incident, Vec<Alert>, Vec<Update>), StoreError> {
        let mut tx = self.tenant_tx(tenant).await?;
        let sql = format!(
            "SELECT {INCIDENT_COLUMNS} FROM incidents i WHERE i.tenant_id = $1 AND i.incident_id = $2"
        );
        let row: Option<IncidentRow> = sqlx::query_as(sqlx::AssertSqlSafe(sql))
            .bind(tenant.0)
            .bind(incident_id)
            .fetch_optional(&mut *tx)
            .await
            .map_err(|e| classify(e, "incident"))?;
        let incident: Incident = row.ok_or(StoreError::NotFound("incident"))?.try_into()?;
        let sql = format!(
            "SELECT {ALERT_COLUMNS} FROM alerts WHERE tenant_id = $1 AND incident_id = $2 ORDER BY fired_at, alert_id"
        );
        let alerts: Vec<AlertRow> = sqlx::query_as(sqlx::AssertSqlSafe(sql))
            .bind(tenant.0)
            .bind(incident_id)
            .fetch_all(&mut *tx)
            .await
            .map_err(|e| classify(e, "alerts"))?;
        let alerts: Vec<Alert> = alerts
            .into_iter()
            .map(Alert::try_from)
            .collect::<Result<_, _>>()?;
        let timeline = updates_where(
            &mut tx,
            "u.tenant_id = $1 AND u.incident_id = $2",
            tenant.0,
            incident_id,
            10_000,
        )
        .await?;
        super::commit(tx, "incident").await?;
        Ok((incident, alerts, timeline))
    }

    /// The newest alert (by firing time, then id) of each of `incident_ids`
    /// that has one, in one read: what a list of incidents explains itself by.
    pub async fn newest_alerts(
        &self,
        tenant: TenantId,
        incident_ids: &[i64],
    ) -> Result<Vec<Alert>, StoreError> {
        if incident_ids.is_empty() {
            return Ok(Vec::new());
        }
        let mut tx = self.tenant_tx(tenant).await?;
        let sql = format!(
            "SELECT DISTINCT ON (incident_id) {ALERT_COLUMNS} FROM alerts \
             WHERE tenant_id = $1 AND incident_id = ANY($2) \
             ORDER BY incident_id, fired_at DESC, alert_id DESC"
        );
        let rows: Vec<AlertRow> = sqlx::query_as(sqlx::AssertSqlSafe(sql))
            .bind(tenant.0)
            .bind(incident_ids)
            .fetch_all(&mut *tx)
            .await
            .map_err(|e| classify(e, "alerts"))?;
        super::commit(tx, "alerts").await?;
        rows.into_iter().map(Alert::try_from).collect()
    }

    /// Deletes the incidents resolved before `cutoff`, with their alerts and
    /// outbox rows, and raises the outbox horizon past the deleted sequences,
    /// in one transaction under the outbox lock. Returns the incidents deleted.
    pub async fn prune_incidents(&self, cutoff: OffsetDateTime) -> Result<u64, StoreError> {
        let err = |e| classify(e, "incident retention");
        let mut tx = self.pool().begin().await.map_err(err)?;
        lock_outbox(&mut tx).await?;
        sqlx::query(
            "UPDATE outbox_horizon SET pruned_through = greatest(pruned_through,                (SELECT coalesce(max(u.seq), 0) FROM incident_updates u JOIN incidents i USING (incident_id)                 WHERE i.status = 'resolved' AND i.resolved_at < $1))",
        )
        .bind(cutoff)
        .execute(&mut *tx)
        .await
        .map_err(err)?;
        // Alerts and outbox rows go with their incident (ON DELETE CASCADE).
        let deleted =
            sqlx::query("DELETE FROM incidents WHERE status = 'resolved' AND resolved_at < $1")
                .bind(cutoff)
                .execute(&mut *tx)
                .await
                .map_err(err)?
                .rows_affected();
        tx.commit().await.map_err(err)?;
        Ok(deleted)
    }

    /// Counts and timings of `tenant`'s incidents over [from, to).
    pub async fn incident_summary(
        &self,
        tenant: TenantId,
        from: OffsetDateTime,
        to: OffsetDateTime,
    ) -> Result<Summary, StoreError> {
        let mut tx = self.tenant_tx(tenant).await?;
        let (open, critical, opened, resolved, mttr): (i64, i64, i64, i64, Option<f64>) =
            sqlx::query_as(
                "SELECT count(*) FILTER (WHERE status <> 'resolved'), \
                        count(*) FILTER (WHERE status <> 'resolved' AND severity = 'critical'), \
                        count(*) FILTER (WHERE opened_at >= $2 AND opened_at < $3), \
                        count(*) FILTER (WHERE resolved_at >= $2 AND resolved_at < $3), \
                        avg(extract(epoch FROM resolved_at - opened_at)::float8) \
                          FILTER (WHERE resolved_at >= $2 AND resolved_at < $3) \
                 FROM incidents WHERE tenant_id = $1",
            )
            .bind(tenant.0)
            .bind(from)
            .bind(to)
            .fetch_one(&mut *tx)
            .await
            .map_err(|e| classify(e, "incident summary"))?;
        let top: Option<(String, i64)> = sqlx::query_as(
            "SELECT service, count(*) FROM incidents WHERE tenant_id = $1 AND opened_at >= $2 AND opened_at < $3 \
             GROUP BY service ORDER BY count(*) DESC, service LIMIT 1",
        )
        .bind(tenant.0)
        .bind(from)
        .bind(to)
        .fetch_optional(&mut *tx)
        .await
        .map_err(|e| classify(e, "incident summary"))?;
        super::commit(tx, "incident summary").await?;
        Ok(Summary {
            open,
            critical,
            opened,
            resolved,
            mttr_secs: mttr.unwrap_or(0.0),
            top_service: top,
        })
    }
}

/// A service's incidents as the lifecycle sees them, locked for the
/// transaction: the open one, and the last resolved.
async fn existing_incidents(
    tx: &mut sqlx::PgConnection,
    tenant: crate::domain::TenantId,
    incident_service: &str,
) -> Result<Existing, StoreError> {
    let err = |e| classify(e, "incident");
    let open: Option<(i64, String)> = sqlx::query_as(
        "SELECT incident_id, severity FROM incidents \
         WHERE tenant_id = $1 AND service = $2 AND status <> 'resolved' FOR UPDATE",
    )
    .bind(tenant.0)
    .bind(incident_service)
    .fetch_optional(&mut *tx)
    .await
    .map_err(err)?;
    let last_resolved: Option<(i64, OffsetDateTime)> = sqlx::query_as(
        "SELECT incident_id, resolved_at FROM incidents \
         WHERE tenant_id = $1 AND service = $2 AND status = 'resolved' \
         ORDER BY resolved_at DESC LIMIT 1 FOR UPDATE",
    )
    .bind(tenant.0)
    .bind(incident_service)
    .fetch_optional(&mut *tx)
    .await
    .map_err(err)?;
    let existing = Existing {
        open: open
            .map(|(id, severity)| {
                Ok::<_, StoreError>((id, named("severity", &severity, Severity::parse)?))
            })
            .transpose()?,
        last_resolved,
    };
    Ok(existing)
}

/// Carries a decision out; the incident the alert belongs to.
async fn apply_decision(
    tx: &mut sqlx::PgConnection,
    decision: Decision,
    alert: &Alert,
    incident_service: &str,
    title: &str,
) -> Result<i64, StoreError> {
    let err = |e| classify(e, "incident");
    let at = alert.fired_at;
    let incident_id = match decision {
        Decision::Join {
            incident_id,
            escalate: false,
        } => {
            sqlx::query(
                "UPDATE incidents SET last_alert_at = $2, updated_at = now() WHERE incident_id = $1",
            )
            .bind(incident_id)
            .bind(at)
            .execute(&mut *tx)
            .await
            .map_err(err)?;
            incident_id
        }
        // Escalating and reopening both take the alert's severity and title.
        Decision::Join { incident_id, .. } | Decision::Reopen { incident_id } => {
            let sql = if matches!(decision, Decision::Reopen { .. }) {
                "UPDATE incidents SET status = 'open', resolved_at = NULL, resolved_by = NULL, \
                   acknowledged_at = NULL, acknowledged_by = NULL, severity = $2, title = $3, \
                   last_alert_at = $4, reopen_count = reopen_count + 1, updated_at = now() \
                 WHERE incident_id = $1"
            } else {
                "UPDATE incidents SET severity = $2, title = $3, last_alert_at = $4, updated_at = now() \
                 WHERE incident_id = $1"
            };
            sqlx::query(sql)
                .bind(incident_id)
                .bind(alert.severity.as_str())
                .bind(title)
                .bind(at)
                .execute(&mut *tx)
                .await
                .map_err(err)?;
            incident_id
        }
        Decision::Open => sqlx::query_scalar(
            "INSERT INTO incidents (tenant_id, service, title, severity, status, opened_at, last_alert_at) \
             VALUES ($1, $2, $3, $4, 'open', $5, $5) RETURNING incident_id",
        )
        .bind(alert.tenant_id.0)
        .bind(incident_service)
        .bind(title)
        .bind(alert.severity.as_str())
        .bind(at)
        .fetch_one(&mut *tx)
        .await
        .map_err(err)?,
    };
    Ok(incident_id)
}

/// Stores the alert in its incident; its id.
async fn insert_alert(
    tx: &mut sqlx::PgConnection,
    alert: &Alert,
    incident_id: i64,
) -> Result<i64, StoreError> {
    let err = |e| classify(e, "incident");
    let at = alert.fired_at;
    let alert_id: i64 = sqlx::query_scalar(
        "INSERT INTO alerts (tenant_id, incident_id, service, endpoint, kind, severity, observed, baseline, \
                             threshold, window_secs, fired_at, no_baseline, detail) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13) RETURNING alert_id",
    )
    .bind(alert.tenant_id.0)
    .bind(incident_id)
    .bind(&alert.service)
    .bind(&alert.endpoint)
    .bind(alert.kind.as_str())
    .bind(alert.severity.as_str())
    .bind(alert.observed)
    .bind(alert.baseline)
    .bind(alert.threshold)
    .bind(alert.window_secs)
    .bind(at)
    .bind(alert.no_baseline)
    .bind(&alert.detail)
    .fetch_one(&mut *tx)
    .await
    .map_err(err)?;
    Ok(alert_id)
}

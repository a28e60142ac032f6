//! The planner's transaction: one planner at a time (a transaction-level
//! advisory lock), reading the outbox after its cursor and what decides
//! who hears of each update (receivers, routes, silences, the incidents'
//! alerts), writing deliveries, releasing suppressed ones, and moving the
//! cursor; all committed together or not at all.

use std::{collections::HashMap, time::Duration};

use sqlx::types::Json;
use time::OffsetDateTime;

use super::{PLAN_LOCK, RECEIVER_SEND_COLUMNS, ReceiverRow, interval, receiver_from};
use crate::{
    domain::{
        TenantId,
        incident::{Incident, IncidentStatus, Update},
        notify::{Receiver, Routes, Silence},
        rules::Kind,
    },
    store::{Store, StoreError, classify, outbox::updates_where},
};

/// What decides who hears of a tenant's updates.
#[derive(Debug, Clone, Default)]
pub struct TenantPlan {
    /// Its receivers.
    pub receivers: Vec<Receiver>,
    /// Its routes (default: none set).
    pub routes: Routes,
    /// Its silences that have not ended or been expired.
    pub silences: Vec<Silence>,
}

/// One delivery to write.
#[derive(Debug, Clone, PartialEq)]
pub struct Planned {
    /// Whose.
    pub tenant_id: TenantId,
    /// To which receiver.
    pub receiver_id: i64,
    /// Of which incident.
    pub incident_id: i64,
    /// The outbox row it tells of (0 for an escalation or repeat).
    pub update_seq: i64,
    /// `update`, `escalation:<route>:<step>`, `repeat:<route>:<n>`.
    pub reason: String,
    /// The change it tells of.
    pub change: &'static str,
    /// When the update committed (or the escalation fell due).
    pub committed_at: OffsetDateTime,
    /// The rendered message.
    pub message: serde_json::Value,
    /// Held by this silence (the delivery is `suppressed`).
    pub silence_id: Option<i64>,
    /// Held this long in its receiver's group window, to go out in a
    /// digest (0: due at once).
    pub group_secs: u64,
}

/// A suppressed delivery with its silence and incident, for the sweep.
#[derive(Debug, Clone)]
pub struct Held {
    /// The delivery.
    pub delivery_id: i64,
    /// The silence that held it (None: it was deleted).
    pub silence: Option<i64>,
    /// Its incident as it is now.
    pub incident: Incident,
}

/// `Windowed`'s columns.
type WindowRow = (
    i64,
    i64,
    i64,
    i64,
    String,
    OffsetDateTime,
    Json<serde_json::Value>,
);

/// A delivery held in a group window that is over.
#[derive(Debug, Clone)]
pub struct Windowed {
    /// The delivery.
    pub delivery_id: i64,
    /// Whose.
    pub tenant_id: TenantId,
    /// Its receiver.
    pub receiver_id: i64,
    /// Its incident.
    pub incident_id: i64,
    /// The change it tells of.
    pub change: String,
    /// When that change committed.
    pub committed_at: OffsetDateTime,
    /// Its message as stored.
    pub message: serde_json::Value,
}

/// The planner's transaction.
pub struct Planner {
    tx: sqlx::Transaction<'static, sqlx::Postgres>,
    /// The cursor as read.
    pub cursor: i64,
}

fn err(e: sqlx::Error) -> StoreError {
    classify(e, "delivery plan")
}

impl Store {
    /// Begins the planner's transaction; `None` when another process plans.
    pub async fn planner(&self) -> Result<Option<Planner>, StoreError> {
        let mut tx = self.pool().begin().await.map_err(err)?;
        let locked: bool = sqlx::query_scalar("SELECT pg_try_advisory_xact_lock($1)")
            .bind(PLAN_LOCK)
            .fetch_one(&mut *tx)
            .await
            .map_err(err)?;
        if !locked {
            return Ok(None);
        }
        let cursor: i64 = sqlx::query_scalar("SELECT seq FROM notify_cursor")
            .fetch_one(&mut *tx)
            .await
            .map_err(err)?;
        Ok(Some(Planner { tx, cursor }))
    }
}

impl Planner {
    /// The database's clock (one `now` for the whole plan).
    pub async fn now(&mut self) -> Result<OffsetDateTime, StoreError> {
        sqlx::query_scalar("SELECT now()")
            .fetch_one(&mut *self.tx)
            .await
            .map_err(err)
    }

    /// At most `limit` outbox rows after the cursor, oldest first.
    pub async fn updates(&mut self, limit: i64) -> Result<Vec<Update>, StoreError> {
        updates_where(
            &mut self.tx,
            "u.seq > $1 AND $2 = $2",
            self.cursor,
            0,
            limit,
        )
        .await
    }

    /// What decides who hears of `tenants`' updates.
    pub async fn tenants(
        &mut self,
        tenants: &[TenantId],
    ) -> Result<HashMap<TenantId, TenantPlan>, StoreError> {
        let ids: Vec<i64> = tenants.iter().map(|t| t.0).collect();
        let mut out: HashMap<TenantId, TenantPlan> = tenants
            .iter()
            .map(|t| (*t, TenantPlan::default()))
            .collect();
        let sql = format!(
            "SELECT {RECEIVER_SEND_COLUMNS} FROM receivers r WHERE r.tenant_id = ANY($1) ORDER BY r.receiver_id"
        );
        let rows: Vec<ReceiverRow> = sqlx::query_as(sqlx::AssertSqlSafe(sql))
            .bind(&ids)
            .fetch_all(&mut *self.tx)
            .await
            .map_err(err)?;
        for row in rows {
            let r = receiver_from(row)?;
            out.entry(r.tenant_id).or_default().receivers.push(r);
        }
        let routes: Vec<(i64, Json<Routes>)> =
            sqlx::query_as("SELECT tenant_id, routes FROM notify_routes WHERE tenant_id = ANY($1)")
                .bind(&ids)
                .fetch_all(&mut *self.tx)
                .await
                .map_err(err)?;
        for (tenant, routes) in routes {
            out.entry(TenantId(tenant)).or_default().routes = routes.0;
        }
        let sql = format!(
            "SELECT {} FROM silences s WHERE s.tenant_id = ANY($1) AND s.expired_at IS NULL \
             AND (s.ends_at IS NULL OR s.ends_at > now()) ORDER BY s.silence_id",
            super::rules::SILENCE_COLUMNS
        );
        let rows: Vec<super::rules::SilenceRow> = sqlx::query_as(sqlx::AssertSqlSafe(sql))
            .bind(&ids)
            .fetch_all(&mut *self.tx)
            .await
            .map_err(err)?;
        for row in rows {
            let s = super::rules::silence_from(row)?;
            out.entry(s.tenant_id).or_default().silences.push(s);
        }
        Ok(out)
    }

    /// The endpoints and rules of `incidents`' alerts.
    pub async fn alerts_of(
        &mut self,
        incidents: &[i64],
    ) -> Result<HashMap<i64, Vec<(String, Kind)>>, StoreError> {
        let rows: Vec<(i64, String, String)> = sqlx::query_as(
            "SELECT DISTINCT incident_id, endpoint, kind FROM alerts WHERE incident_id = ANY($1)",
        )
        .bind(incidents)
        .fetch_all(&mut *self.tx)
        .await
        .map_err(err)?;
        let mut out: HashMap<i64, Vec<(String, Kind)>> = HashMap::new();
        for (incident, endpoint, kind) in rows {
            if let Some(k) = Kind::parse(&kind) {
                out.entry(incident).or_default().push((endpoint, k));
            }
        }
        Ok(out)
    }

    /// Suppressed deliveries, with their incidents as they are now.
    pub async fn held(&mut self) -> Result<Vec<Held>, StoreError> {
        let rows: Vec<(i64, Option<i64>, Json<Incident>)> = sqlx::query_as(
            "SELECT d.delivery_id, d.silence_id, \
               (SELECT u.incident FROM incident_updates u WHERE u.incident_id = d.incident_id \
                ORDER BY u.seq DESC LIMIT 1) \
             FROM deliveries d WHERE d.state = 'suppressed' \
               AND EXISTS (SELECT 1 FROM incidents i WHERE i.incident_id = d.incident_id AND i.status <> 'resolved') \
             ORDER BY d.delivery_id LIMIT 10000",
        )
        .fetch_all(&mut *self.tx)
        .await
        .map_err(err)?;
        Ok(rows
            .into_iter()
            .map(|(delivery_id, silence, incident)| Held {
                delivery_id,
                silence,
                incident: incident.0,
            })
            .collect())
    }

    /// Open, unacknowledged incidents of tenants whose routes escalate or
    /// repeat, with the seconds they have been open.
    pub async fn unacknowledged(&mut self) -> Result<Vec<(Incident, i64)>, StoreError> {
        let rows: Vec<(Json<Incident>, f64)> = sqlx::query_as(
            "SELECT (SELECT u.incident FROM incident_updates u WHERE u.incident_id = i.incident_id \
                     ORDER BY u.seq DESC LIMIT 1), \
                    extract(epoch FROM now() - i.opened_at)::float8 \
             FROM incidents i JOIN notify_routes n ON n.tenant_id = i.tenant_id \
             WHERE i.status = 'open' \
               AND jsonb_path_exists(n.routes, '$.routes[*] ? (@.repeat_secs > 0 || @.escalation.size() > 0)')",
        )
        .fetch_all(&mut *self.tx)
        .await
        .map_err(err)?;
        Ok(rows
            .into_iter()
            .filter(|(i, _)| i.0.status == IncidentStatus::Open)
            .map(|(i, secs)| (i.0, secs as i64))
            .collect())
    }

    /// Suppressed deliveries made pending, due now.
    pub async fn release(&mut self, deliveries: &[i64]) -> Result<(), StoreError> {
        if deliveries.is_empty() {
            return Ok(());
        }
        sqlx::query(
            "UPDATE deliveries SET state = 'pending', next_at = now(), last_error = '' \
             WHERE delivery_id = ANY($1) AND state = 'suppressed'",
        )
        .bind(deliveries)
        .execute(&mut *self.tx)
        .await
        .map_err(err)?;
        Ok(())
    }

    /// Writes `planned` (a delivery planned before is left as it is).
    pub async fn insert(
        &mut self,
        planned: &[Planned],
        deadline: Duration,
    ) -> Result<(), StoreError> {
        if planned.is_empty() {
            return Ok(());
        }
        let col = |f: fn(&Planned) -> i64| planned.iter().map(f).collect::<Vec<i64>>();
        let reasons: Vec<&str> = planned.iter().map(|p| p.reason.as_str()).collect();
        let changes: Vec<&str> = planned.iter().map(|p| p.change).collect();
        let times: Vec<OffsetDateTime> = planned.iter().map(|p| p.committed_at).collect();
        let messages: Vec<Json<&serde_json::Value>> =
            planned.iter().map(|p| Json(&p.message)).collect();
        let silences: Vec<Option<i64>> = planned.iter().map(|p| p.silence_id).collect();
        sqlx::query(
            // A grouped delivery joins its receiver's open window, or opens
            // one; it is never due by itself (the window's digest is).
            "INSERT INTO deliveries (tenant_id, receiver_id, incident_id, update_seq, reason, change, \
               committed_at, state, silence_id, next_at, group_due, deadline, message) \
             SELECT t, r, i, s, re, c, at, CASE WHEN si IS NULL THEN 'pending' ELSE 'suppressed' END, si, \
               CASE WHEN g > 0 THEN '9999-12-31 00:00:00+00'::timestamptz ELSE now() END, \
               CASE WHEN g > 0 THEN coalesce((SELECT min(w.group_due) FROM deliveries w \
                 WHERE w.receiver_id = r AND w.group_due IS NOT NULL), now() + make_interval(secs => g)) END, \
               now() + make_interval(secs => $10), m \
             FROM unnest($1::bigint[], $2::bigint[], $3::bigint[], $4::bigint[], $5::text[], $6::text[], \
               $7::timestamptz[], $8::jsonb[], $9::bigint[], $11::bigint[]) AS x(t, r, i, s, re, c, at, m, si, g) \
             ON CONFLICT (receiver_id, incident_id, update_seq, reason) DO NOTHING",
        )
        .bind(col(|p| p.tenant_id.0))
        .bind(col(|p| p.receiver_id))
        .bind(col(|p| p.incident_id))
        .bind(col(|p| p.update_seq))
        .bind(&reasons)
        .bind(&changes)
        .bind(&times)
        .bind(&messages)
        .bind(&silences)
        .bind(interval(deadline))
        .bind(col(|p| p.group_secs as i64))
        .execute(&mut *self.tx)
        .await
        .map_err(|e| classify(e, "deliveries"))?;
        Ok(())
    }

    /// The deliveries held in group windows that are over, oldest first per
    /// receiver; a receiver's window waits while one of its incidents has an
    /// earlier update still pending for it outside the window (in order).
    pub async fn windows_over(&mut self) -> Result<Vec<Windowed>, StoreError> {
        let rows: Vec<WindowRow> = sqlx::query_as(
            "WITH over AS (SELECT DISTINCT receiver_id FROM deliveries \
                 WHERE group_due IS NOT NULL AND group_due <= now() AND state = 'pending'), \
               blocked AS (SELECT DISTINCT m.receiver_id FROM deliveries m JOIN deliveries e \
                 ON e.receiver_id = m.receiver_id AND e.incident_id = m.incident_id \
                 AND e.state = 'pending' AND e.group_due IS NULL AND e.update_seq < m.update_seq \
                 WHERE m.receiver_id IN (SELECT receiver_id FROM over) AND m.group_due IS NOT NULL \
                   AND m.state = 'pending') \
             SELECT d.delivery_id, d.tenant_id, d.receiver_id, d.incident_id, d.change, d.committed_at, d.message \
             FROM deliveries d \
             WHERE d.receiver_id IN (SELECT receiver_id FROM over EXCEPT SELECT receiver_id FROM blocked) \
               AND d.group_due IS NOT NULL AND d.state = 'pending' \
             ORDER BY d.receiver_id, d.committed_at, d.delivery_id",
        )
        .fetch_all(&mut *self.tx)
        .await
        .map_err(err)?;
        Ok(rows
            .into_iter()
            .map(
                |(delivery_id, tenant, receiver_id, incident_id, change, committed_at, message)| {
                    Windowed {
                        delivery_id,
                        tenant_id: TenantId(tenant),
                        receiver_id,
                        incident_id,
                        change,
                        committed_at,
                        message: message.0,
                    }
                },
            )
            .collect())
    }

    /// Ends a window: its one delivery due now, or `digest` written and due
    /// now with `members` following it.
    pub async fn close_window(
        &mut self,
        members: &[i64],
        digest: Option<Planned>,
        deadline: Duration,
    ) -> Result<(), StoreError> {
        let Some(digest) = digest else {
            sqlx::query(
                "UPDATE deliveries SET group_due = NULL, next_at = now() WHERE delivery_id = ANY($1)",
            )
            .bind(members)
            .execute(&mut *self.tx)
            .await
            .map_err(err)?;
            return Ok(());
        };
        self.insert(std::slice::from_ref(&digest), deadline).await?;
        sqlx::query(
            "UPDATE deliveries SET group_due = NULL, digest_id = ( \
               SELECT delivery_id FROM deliveries WHERE receiver_id = $2 AND incident_id = $3 \
                 AND update_seq = 0 AND reason = $4) \
             WHERE delivery_id = ANY($1)",
        )
        .bind(members)
        .bind(digest.receiver_id)
        .bind(digest.incident_id)
        .bind(&digest.reason)
        .execute(&mut *self.tx)
        .await
        .map_err(err)?;
        Ok(())
    }

    /// Moves the cursor to `seq` and commits everything.
    pub async fn commit(mut self, seq: i64) -> Result<(), StoreError> {
        if seq != self.cursor {
            sqlx::query("UPDATE notify_cursor SET seq = $1")
                .bind(seq)
                .execute(&mut *self.tx)
                .await
                .map_err(err)?;
        }
        crate::store::commit(self.tx, "delivery plan").await
    }
}

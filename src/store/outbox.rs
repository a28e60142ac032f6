//! The outbox of incident updates: every change to an incident writes its
//! `incident_updates` row in the transaction of the change, after taking a
//! transaction-level advisory lock, so sequence numbers are handed out in
//! commit order and a reader that has seen `seq` has seen every update before
//! it. Each transaction ends with a NOTIFY carrying the newest sequence,
//! which PostgreSQL delivers at commit to every listening process. Reading
//! after a sequence, the bounds kept, the horizon retention left, and the
//! listener live here too: all of the outbox's SQL in one file.

use time::OffsetDateTime;

use super::{
    Store, StoreError, classify,
    incidents::{ALERT_COLUMNS, AlertRow, incident_in},
};
use crate::domain::{
    TenantId,
    incident::{Alert, Incident, Update, UpdateKind},
};

/// Advisory lock key of the outbox ("pulsyon outbox").
const OUTBOX_LOCK: i64 = 0x7075_6c73_6f75_7462;

/// The channel NOTIFY uses; the payload is the newest sequence number.
pub const NOTIFY_CHANNEL: &str = "pulsyon_incident_updates";

/// Takes the outbox lock for the rest of the transaction: sequence numbers
/// are then handed out in commit order.
pub(super) async fn lock_outbox(tx: &mut sqlx::PgConnection) -> Result<(), StoreError> {
    sqlx::query("SELECT pg_advisory_xact_lock($1)")
        .bind(OUTBOX_LOCK)
        .execute(tx)
        .await
        .map_err(|e| classify(e, "incident"))?;
    Ok(())
}

/// Writes one update of `incident_id` (its snapshot taken now, inside the
/// transaction) and returns it.
pub(super) async fn record(
    tx: &mut sqlx::PgConnection,
    incident_id: i64,
    kind: UpdateKind,
    at: OffsetDateTime,
    alert: Option<&Alert>,
    actor: &str,
    note: &str,
) -> Result<Update, StoreError> {
    let err = |e| classify(e, "incident update");
    let seq: i64 =
        sqlx::query_scalar("SELECT nextval(pg_get_serial_sequence('incident_updates', 'seq'))")
            .fetch_one(&mut *tx)
            .await
            .map_err(err)?;
    let mut incident = incident_in(tx, incident_id).await?;
    incident.last_seq = seq;
    let snapshot = serde_json::to_value(&incident)
        .map_err(|e| StoreError::Corrupt(format!("incident snapshot: {e}")))?;
    sqlx::query(
        "INSERT INTO incident_updates (seq, tenant_id, incident_id, kind, at, alert_id, actor, note, incident) \
         OVERRIDING SYSTEM VALUE VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
    )
    .bind(seq)
    .bind(incident.tenant_id.0)
    .bind(incident_id)
    .bind(kind.as_str())
    .bind(at)
    .bind(alert.map(|a| a.alert_id))
    .bind(actor)
    .bind(note)
    .bind(sqlx::types::Json(snapshot))
    .execute(&mut *tx)
    .await
    .map_err(err)?;
    Ok(Update {
        seq,
        kind,
        at,
        incident,
        alert: alert.cloned(),
        actor: actor.to_owned(),
        note: note.to_owned(),
    })
}

/// Ends the transaction's updates with a NOTIFY of the newest sequence.
pub(super) async fn notify(
    tx: &mut sqlx::PgConnection,
    updates: &[Update],
) -> Result<(), StoreError> {
    if let Some(last) = updates.iter().map(|u| u.seq).max() {
        sqlx::query("SELECT pg_notify($1, $2)")
            .bind(NOTIFY_CHANNEL)
            .bind(last.to_string())
            .execute(tx)
            .await
            .map_err(|e| classify(e, "incident notify"))?;
    }
    Ok(())
}

/// Updates matching `condition` ($1, $2), oldest first, with their alerts.
pub(super) async fn updates_where(
    conn: &mut sqlx::PgConnection,
    condition: &str,
    a: i64,
    b: i64,
    limit: i64,
) -> Result<Vec<Update>, StoreError> {
    type Row = (
        i64,
        String,
        OffsetDateTime,
        sqlx::types::Json<Incident>,
        String,
        String,
        Option<i64>,
    );
    let sql = format!(
        "SELECT u.seq, u.kind, u.at, u.incident, u.actor, u.note, u.alert_id FROM incident_updates u \
         WHERE {condition} ORDER BY u.seq LIMIT $3"
    );
    let rows: Vec<Row> = sqlx::query_as(sqlx::AssertSqlSafe(sql))
        .bind(a)
        .bind(b)
        .bind(limit)
        .fetch_all(&mut *conn)
        .await
        .map_err(|e| classify(e, "incident updates"))?;
    let ids: Vec<i64> = rows.iter().filter_map(|r| r.6).collect();
    let alerts: Vec<Alert> = if ids.is_empty() {
        Vec::new()
    } else {
        let sql = format!("SELECT {ALERT_COLUMNS} FROM alerts WHERE alert_id = ANY($1)");
        let rows: Vec<AlertRow> = sqlx::query_as(sqlx::AssertSqlSafe(sql))
            .bind(&ids)
            .fetch_all(&mut *conn)
            .await
            .map_err(|e| classify(e, "alerts"))?;
        rows.into_iter()
            .map(Alert::try_from)
            .collect::<Result<_, _>>()?
    };
    rows.into_iter()
        .map(|(seq, kind, at, incident, actor, note, alert_id)| {
            Ok(Update {
                seq,
                kind: UpdateKind::parse(&kind)
                    .ok_or_else(|| StoreError::Corrupt(format!("unknown update kind {kind:?}")))?,
                at,
                incident: incident.0,
                alert: alert_id.and_then(|id| alerts.iter().find(|a| a.alert_id == id).cloned()),
                actor,
                note,
            })
        })
        .collect()
}

/// Notifications of new incident updates (LISTEN on the outbox's channel).
pub struct UpdateListener {
    listener: sqlx::postgres::PgListener,
}

impl UpdateListener {
    /// Waits for the next notification.
    pub async fn recv(&mut self) -> Result<(), StoreError> {
        self.listener
            .recv()
            .await
            .map_err(|e| classify(e, "incident notifications"))?;
        Ok(())
    }
}

impl Store {
    /// Updates after `after_seq`, oldest first, of one tenant or (None) of all.
    pub async fn updates_after(
        &self,
        tenant: Option<TenantId>,
        after_seq: i64,
        limit: i64,
    ) -> Result<Vec<Update>, StoreError> {
        match tenant {
            Some(t) => {
                let mut tx = self.tenant_tx(t).await?;
                let updates = updates_where(
                    &mut tx,
                    "u.tenant_id = $1 AND u.seq > $2",
                    t.0,
                    after_seq,
                    limit,
                )
                .await?;
                super::commit(tx, "incident updates").await?;
                Ok(updates)
            }
            None => {
                // The hub's read: every tenant, as the system.
                let mut conn = self
                    .pool()
                    .acquire()
                    .await
                    .map_err(|e| classify(e, "incident updates"))?;
                updates_where(&mut conn, "$1 = $1 AND u.seq > $2", 0, after_seq, limit).await
            }
        }
    }

    /// The highest outbox sequence ever deleted (0 when none): updates after
    /// a sequence below it may be gone.
    pub async fn outbox_pruned_through(&self) -> Result<i64, StoreError> {
        sqlx::query_scalar("SELECT pruned_through FROM outbox_horizon")
            .fetch_one(self.pool())
            .await
            .map_err(|e| classify(e, "incident updates"))
    }

    /// The oldest and newest sequence numbers kept (0, 0 when none).
    pub async fn update_seq_bounds(&self) -> Result<(i64, i64), StoreError> {
        sqlx::query_as("SELECT coalesce(min(seq), 0), coalesce(max(seq), 0) FROM incident_updates")
            .fetch_one(self.pool())
            .await
            .map_err(|e| classify(e, "incident updates"))
    }

    /// Listens for NOTIFY of new incident updates.
    pub async fn update_listener(&self) -> Result<UpdateListener, StoreError> {
        let mut listener = sqlx::postgres::PgListener::connect_with(self.pool())
            .await
            .map_err(|e| classify(e, "incident notifications"))?;
        listener
            .listen(NOTIFY_CHANNEL)
            .await
            .map_err(|e| classify(e, "incident notifications"))?;
        Ok(UpdateListener { listener })
    }
}

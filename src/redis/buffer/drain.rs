//! The writers' side of the buffer: each writer owns shards by lease in
//! PostgreSQL, takes a dead writer's pending entries over, hands entries to
//! the batching writer under the shard's fence and acknowledges them after
//! the commit; poison entries go to the dead letters.
//!
//! A shard is read with a non-blocking XREADGROUP polled every `IDLE_POLL`
//! when it was empty, not with `BLOCK`: a blocked read holds its connection
//! for the whole wait, and every shard of every writer shares one
//! multiplexed connection (a Redis Cluster client routes it per slot), so a
//! blocking read would stall the acknowledgements and trims queued behind
//! it; a 20 ms poll of an idle shard costs one round trip, and a busy shard
//! is read again at once.

use std::{
    collections::HashMap,
    sync::Arc,
    time::{Duration, Instant},
};

use redis::{
    Value,
    streams::{StreamId, StreamPendingCountReply, StreamReadReply},
};
use tokio::{
    sync::{mpsc, oneshot},
    task::JoinHandle,
};
use tokio_util::sync::CancellationToken;

use super::{
    Buffer, Conn, GROUP, IDLE_POLL, LEASE_TICK, READ_COUNT, REPLY_STREAM_MAX, TRIM_EVERY,
    report::Report, trim::trim,
};
use crate::{
    domain::{BatchFate, BatchWrite},
    ingest::{Held, ReplyTo, Submission, WriteError},
    store::{Store, buffer::Fence},
};

/// Starts a writer process's drain: it owns shards by lease and feeds their
/// entries to the batching writer through `writer` until `stop`; then it
/// finishes what it handed over, acknowledges it and gives its shards up.
pub fn spawn_drain(
    buffer: Arc<Buffer>,
    store: Store,
    writer: mpsc::Sender<Submission>,
    stop: CancellationToken,
) -> JoinHandle<()> {
    let owner = format!("writer-{}", uuid::Uuid::now_v7());
    tokio::spawn(async move {
        if let Err(e) = store.ensure_buffer_shards(buffer.config.shards).await {
            tracing::warn!(error = %e, "buffer shards: retrying");
        }
        let mut held: HashMap<i32, (Fence, CancellationToken, JoinHandle<()>)> = HashMap::new();
        let mut tick = tokio::time::interval(LEASE_TICK);
        loop {
            tokio::select! {
                _ = stop.cancelled() => break,
                _ = tick.tick() => {}
            }
            // Shards whose task ended (lost to another writer, fenced) go.
            held.retain(|_, (_, _, task)| !task.is_finished());
            let fences: Vec<Fence> = held.values().map(|h| h.0).collect();
            let kept = match store
                .renew_buffer_shards(&owner, &fences, buffer.config.lease)
                .await
            {
                Ok(kept) => kept,
                Err(e) => {
                    tracing::warn!(error = %e, "buffer leases could not be renewed");
                    continue;
                }
            };
            for lost in fences.iter().filter(|f| !kept.contains(f)) {
                if let Some((_, cancel, _)) = held.remove(&lost.shard) {
                    tracing::warn!(shard = lost.shard, "buffer shard lost to another writer");
                    cancel.cancel();
                }
            }
            let writers = store.buffer_writers(&owner).await.unwrap_or(1).max(1);
            let fair = (i64::from(buffer.config.shards) + writers - 1) / writers;
            let want = fair - held.len() as i64;
            if want > 0 {
                match store
                    .claim_buffer_shards(&owner, buffer.config.shards, want, buffer.config.lease)
                    .await
                {
                    Ok(claimed) => {
                        for fence in claimed {
                            tracing::info!(
                                shard = fence.shard,
                                epoch = fence.epoch,
                                "buffer shard taken"
                            );
                            let cancel = stop.child_token();
                            let task = tokio::spawn(drain_shard(
                                buffer.clone(),
                                store.clone(),
                                writer.clone(),
                                owner.clone(),
                                fence,
                                cancel.clone(),
                            ));
                            held.insert(fence.shard, (fence, cancel, task));
                        }
                    }
                    Err(e) => tracing::warn!(error = %e, "buffer shards could not be claimed"),
                }
            } else if want < 0 {
                // Another writer joined: give a shard up, after its in-flight batches.
                if let Some(&shard) = held.keys().max()
                    && let Some((fence, cancel, task)) = held.remove(&shard)
                {
                    cancel.cancel();
                    let _ = task.await;
                    let _ = store.release_buffer_shards(&owner, &[fence]).await;
                    tracing::info!(shard, "buffer shard given up to rebalance");
                }
            }
        }
        let mut fences = Vec::new();
        for (_, (fence, cancel, task)) in held.drain() {
            cancel.cancel();
            let _ = task.await;
            fences.push(fence);
        }
        if let Err(e) = store.release_buffer_shards(&owner, &fences).await {
            tracing::warn!(error = %e, "buffer leases could not be released; they run out");
        }
        tracing::info!("buffer drain stopped");
    })
}

/// One entry read from a shard.
struct Entry {
    id: String,
    record: Vec<u8>,
    deliveries: usize,
}

fn entry(s: StreamId) -> Entry {
    let record = match s.map.get("b") {
        Some(Value::BulkString(b)) => b.clone(),
        _ => Vec::new(),
    };
    Entry {
        deliveries: s.delivered_count.unwrap_or(1),
        id: s.id,
        record,
    }
}

/// Drains one owned shard until `cancel` (or until the shard is lost).
async fn drain_shard(
    buffer: Arc<Buffer>,
    store: Store,
    writer: mpsc::Sender<Submission>,
    owner: String,
    fence: Fence,
    cancel: CancellationToken,
) {
    let shard = fence.shard as u32;
    let key = buffer.key(shard);
    let mut conn = buffer.conn.clone();
    if let Err(e) = buffer.ensure_group(shard).await {
        tracing::warn!(error = %e, shard, "buffer group");
    }
    // Entries pending for anyone (a dead writer's, or this one's before a
    // restart) first, then new ones.
    let mut pending_first = true;
    let mut trimmed = Instant::now();
    let mut backoff = Duration::from_millis(100);
    while !cancel.is_cancelled() {
        let read = if pending_first {
            claim_pending(&mut conn, &key, &owner).await
        } else {
            read_new(&mut conn, &key, &owner).await
        };
        buffer.note(&read);
        let entries = match read {
            Ok(entries) => entries,
            Err(e) => {
                tracing::warn!(error = %e, shard, "buffer read failed");
                sleep_or(&cancel, backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(2));
                continue;
            }
        };
        if trimmed.elapsed() >= TRIM_EVERY {
            if let Err(e) = trim(&buffer, &mut conn, shard).await {
                tracing::debug!(error = %e, shard, "buffer trim failed");
            }
            trimmed = Instant::now();
        }
        if entries.is_empty() {
            pending_first = false;
            sleep_or(&cancel, IDLE_POLL).await;
            continue;
        }
        match handle(&buffer, &store, &writer, &mut conn, fence, entries).await {
            Handled::AllDone => backoff = Duration::from_millis(100),
            Handled::Retry => {
                // Left pending: read again after a pause (with their count raised).
                pending_first = true;
                sleep_or(&cancel, backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(2));
            }
            Handled::Lost => {
                tracing::warn!(shard, "buffer shard fenced: another writer owns it now");
                return;
            }
        }
    }
}

async fn sleep_or(cancel: &CancellationToken, d: Duration) {
    tokio::select! {
        _ = cancel.cancelled() => {}
        _ = tokio::time::sleep(d) => {}
    }
}

/// The shard's pending entries (of any consumer), claimed for `owner`:
/// their delivery count rises with the claim.
async fn claim_pending(conn: &mut Conn, key: &str, owner: &str) -> redis::RedisResult<Vec<Entry>> {
    let pending: StreamPendingCountReply = redis::cmd("XPENDING")
        .arg(key)
        .arg(GROUP)
        .arg("-")
        .arg("+")
        .arg(READ_COUNT)
        .query_async(conn)
        .await?;
    if pending.ids.is_empty() {
        return Ok(Vec::new());
    }
    let others = pending.ids.iter().filter(|p| p.consumer != owner).count();
    if others > 0 {
        metrics::counter!("pulsyon_buffer_claims_total").increment(others as u64);
    }
    let mut cmd = redis::cmd("XCLAIM");
    cmd.arg(key).arg(GROUP).arg(owner).arg(0);
    for p in &pending.ids {
        cmd.arg(&p.id);
    }
    let claimed: redis::streams::StreamClaimReply = cmd.query_async(conn).await?;
    let counts: HashMap<&str, usize> = pending
        .ids
        .iter()
        .map(|p| (p.id.as_str(), p.times_delivered + 1))
        .collect();
    Ok(claimed
        .ids
        .into_iter()
        .map(|s| {
            let mut e = entry(s);
            e.deliveries = counts.get(e.id.as_str()).copied().unwrap_or(1);
            e
        })
        .collect())
}

/// New entries of the shard, delivered to `owner`.
async fn read_new(conn: &mut Conn, key: &str, owner: &str) -> redis::RedisResult<Vec<Entry>> {
    let reply: Option<StreamReadReply> = redis::cmd("XREADGROUP")
        .arg("GROUP")
        .arg(GROUP)
        .arg(owner)
        .arg("COUNT")
        .arg(READ_COUNT)
        .arg("STREAMS")
        .arg(key)
        .arg(">")
        .query_async(conn)
        .await?;
    Ok(reply
        .map(|r| r.keys.into_iter().flat_map(|k| k.ids).map(entry).collect())
        .unwrap_or_default())
}

enum Handled {
    AllDone,
    Retry,
    Lost,
}

/// Hands readable entries to the writer under the shard's fence, keeps
/// poison ones, acknowledges what is done.
async fn handle(
    buffer: &Buffer,
    store: &Store,
    writer: &mpsc::Sender<Submission>,
    conn: &mut Conn,
    fence: Fence,
    entries: Vec<Entry>,
) -> Handled {
    let key = buffer.key(fence.shard as u32);
    let mut done: Vec<String> = Vec::new();
    let mut waiting = Vec::new();
    for e in entries {
        let decoded = buffer.codec.decode(&e.record);
        let poison = match &decoded {
            _ if e.deliveries > buffer.config.max_deliveries as usize => {
                Some(format!("delivered {} times without a commit", e.deliveries))
            }
            Err(why) => Some(why.to_string()),
            Ok(_) => None,
        };
        if let Some(reason) = poison {
            // A readable batch goes to its tenant's dead letters, whole; one
            // that cannot be read (or whose tenant cannot take it) to the
            // buffer's own.
            if let Ok((batch, _)) = &decoded
                && poison_to_dead_letters(store, fence, batch, &e, &reason).await
            {
                tracing::error!(shard = fence.shard, entry = %e.id, %reason, "poison batch in the buffer: kept in the tenant's dead letters and acknowledged");
                metrics::counter!("pulsyon_buffer_poison_total").increment(1);
                done.push(e.id);
                continue;
            }
            tracing::error!(shard = fence.shard, entry = %e.id, %reason, "poison entry in the buffer: kept in buffer_poison and acknowledged");
            match store
                .add_buffer_poison(fence.shard, &e.id, e.deliveries as i64, &reason, &e.record)
                .await
            {
                Ok(()) => {
                    metrics::counter!("pulsyon_buffer_poison_total").increment(1);
                    done.push(e.id);
                }
                Err(err) => {
                    tracing::warn!(error = %err, "poison entry could not be kept; retrying")
                }
            }
            continue;
        }
        let Ok((batch, reply_to)) = decoded else {
            continue;
        };
        let (tx, rx) = oneshot::channel();
        let submission = Submission {
            batch,
            bytes: e.record.len(),
            held: Held::nothing(),
            fence: Some(fence),
            reply: tx,
        };
        if writer.send(submission).await.is_err() {
            // The writer stopped: what is pending stays for the next owner.
            return Handled::Retry;
        }
        waiting.push((e.id, reply_to, rx));
    }
    let mut result = Handled::AllDone;
    let mut reports: Vec<(ReplyTo, BatchFate)> = Vec::new();
    for (id, reply_to, rx) in waiting {
        match rx.await {
            Ok(Ok(fate)) => {
                done.push(id);
                if let Some(r) = reply_to {
                    reports.push((r, fate));
                }
            }
            Ok(Err(WriteError::Fenced)) => result = Handled::Lost,
            Ok(Err(_)) | Err(_) => {
                if !matches!(result, Handled::Lost) {
                    result = Handled::Retry;
                }
            }
        }
    }
    if !done.is_empty() {
        let acked: redis::RedisResult<u64> = redis::cmd("XACK")
            .arg(&key)
            .arg(GROUP)
            .arg(&done)
            .query_async(conn)
            .await;
        buffer.note(&acked);
        if let Err(e) = acked {
            // Committed but not acknowledged: redelivered later, and the
            // ledger recognises it (nothing is written twice).
            tracing::warn!(error = %e, "XACK failed; the entries will be redelivered as duplicates");
        }
    }
    for (r, fate) in reports {
        let sent: redis::RedisResult<String> = redis::cmd("XADD")
            .arg(&r.stream)
            .arg("MAXLEN")
            .arg("~")
            .arg(REPLY_STREAM_MAX)
            .arg("*")
            .arg(
                &Report {
                    waiter: r.id.clone(),
                    fate,
                }
                .fields()[..],
            )
            .query_async(conn)
            .await;
        if let Err(e) = sent {
            tracing::debug!(error = %e, "commit report not sent; the ingest process times out and the client resends");
        }
    }
    result
}

/// Keeps a poison batch in its tenant's dead letters: one dead letter whose
/// payload is the whole record (outside the batch ledger, so a resend of the
/// same batch is still stored). Whether it was kept.
async fn poison_to_dead_letters(
    store: &Store,
    fence: Fence,
    batch: &BatchWrite,
    entry: &Entry,
    reason: &str,
) -> bool {
    let letter = BatchWrite {
        tenant_id: batch.tenant_id,
        producer_id: batch.producer_id.clone(),
        seq: batch.seq,
        received_at: batch.received_at,
        events: Vec::new(),
        rejected: vec![crate::domain::DeadLetter {
            index: 0,
            reason: crate::domain::RejectReason::PoisonBatch,
            message: format!(
                "buffer entry {} of shard {} ({} events): {reason}",
                entry.id,
                fence.shard,
                batch.events.len() + batch.rejected.len()
            ),
            payload: entry.record.clone(),
        }],
        overflowed: 0,
        digest: batch.digest,
    };
    match store
        .write_batches_fenced(std::slice::from_ref(&letter), false, &[fence])
        .await
    {
        Ok(_) => true,
        Err(e) => {
            tracing::warn!(error = %e, "poison batch not kept in the dead letters");
            false
        }
    }
}

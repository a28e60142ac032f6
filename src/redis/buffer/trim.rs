//! Trimming a shard up to the consumer group's low-water mark: nothing
//! pending or undelivered is ever removed.

use redis::{AsyncCommands, Value};

use super::{Buffer, Conn, GROUP};

impl Buffer {
    /// Trims `shard` below the group's low-water mark (see `trim`); the
    /// entries removed.
    pub async fn trim_shard(&self, shard: u32) -> redis::RedisResult<u64> {
        let mut conn = self.conn.clone();
        trim(self, &mut conn, shard).await
    }
}

/// The stream id right after `id` (`ms-seq`).
fn next_id(id: &str) -> String {
    match id.split_once('-').map(|(ms, seq)| (ms, seq.parse::<u64>())) {
        Some((ms, Ok(seq))) => format!("{ms}-{}", seq.saturating_add(1)),
        _ => id.to_owned(),
    }
}

/// Trims `shard` below the group's low-water mark: the oldest pending
/// entry, or (none pending) the one after the last delivered. An entry below it was
/// delivered and acknowledged; nothing pending or undelivered is removed.
/// Also reads the shard's pending count, lag and oldest pending age.
pub(super) async fn trim(buffer: &Buffer, conn: &mut Conn, shard: u32) -> redis::RedisResult<u64> {
    let key = buffer.key(shard);
    let summary: redis::RedisResult<(u64, Option<String>, Option<String>, Value)> =
        redis::cmd("XPENDING")
            .arg(&key)
            .arg(GROUP)
            .query_async(conn)
            .await;
    let (pending, oldest, _, _) = summary?;
    let groups: redis::streams::StreamInfoGroupsReply = conn.xinfo_groups(&key).await?;
    let Some(group) = groups.groups.into_iter().find(|g| g.name == GROUP) else {
        return Ok(0);
    };
    let low = match (&oldest, pending) {
        (Some(oldest), n) if n > 0 => oldest.clone(),
        // Nothing pending: everything delivered so far is acknowledged.
        _ => next_id(&group.last_delivered_id),
    };
    let label = shard.to_string();
    metrics::gauge!("pulsyon_buffer_pending", "shard" => label.clone()).set(pending as f64);
    metrics::gauge!("pulsyon_buffer_lag", "shard" => label.clone())
        .set(group.lag.unwrap_or(0) as f64);
    let oldest_age = oldest
        .as_deref()
        .and_then(|id| id.split('-').next()?.parse::<u64>().ok())
        .map(|ms| {
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_millis() as u64)
                .unwrap_or(0);
            now.saturating_sub(ms) as f64 / 1e3
        })
        .unwrap_or(0.0);
    metrics::gauge!("pulsyon_buffer_oldest_pending_seconds", "shard" => label).set(oldest_age);
    if low == "0-0" || low == "0-1" {
        return Ok(0);
    }
    let trimmed: u64 = redis::cmd("XTRIM")
        .arg(&key)
        .arg("MINID")
        .arg(&low)
        .query_async(conn)
        .await?;
    metrics::counter!("pulsyon_buffer_trimmed_total").increment(trimmed);
    Ok(trimmed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_mark_after_the_last_delivered_entry_is_its_successor() {
        assert_eq!(next_id("1700000000000-4"), "1700000000000-5");
        assert_eq!(next_id("0-0"), "0-1");
        assert_eq!(next_id("junk"), "junk");
    }
}

//! Database tests of the store and the partition keeper against real PostgreSQL.

mod common;

use std::time::Duration;

use common::TestDb;
use pulsyon::{ingest::partitions, store::partitions::Ensured};
use time::OffsetDateTime;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_keeper_makes_partitions_ahead_and_drops_those_past_the_retention() {
    let db = TestDb::new().await;
    let store = db.store().await;
    let today = OffsetDateTime::now_utc().date();
    let old = today - time::Duration::days(40);
    let recent = today - time::Duration::days(10);
    assert_eq!(store.ensure_partition(old).await.unwrap(), Ensured::Exists);
    assert_eq!(
        store.ensure_partition(recent).await.unwrap(),
        Ensured::Exists
    );
    assert_eq!(
        store.ensure_partition(recent).await.unwrap(),
        Ensured::Exists,
        "idempotent"
    );

    let strays = partitions::maintain(&store, Duration::from_secs(30 * 86_400))
        .await
        .unwrap();
    assert_eq!(strays, 0);
    let days = store.list_partitions().await.unwrap();
    assert!(!days.contains(&old), "past the retention: dropped");
    assert!(days.contains(&recent), "within the retention: kept");
    for ahead in 0..=partitions::DAYS_AHEAD {
        assert!(
            days.contains(&(today + time::Duration::days(ahead))),
            "today + {ahead} made: {days:?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_day_held_by_the_default_partition_is_reported_not_lost() {
    let db = TestDb::new().await;
    let store = db.store().await;
    let pg = common::pool(&db.url).await;
    let day = OffsetDateTime::now_utc().date() - time::Duration::days(5);
    // A stray row of that day lands in the default partition (no daily one yet).
    sqlx::query(
        "INSERT INTO api_logs VALUES (1, $1, gen_random_uuid(), 's', '/', 'GET', 200, 1, '', '', '', '', '', 0, 0, '{}', now())",
    )
    .bind(day.midnight().assume_utc() + time::Duration::hours(3))
    .execute(&pg)
    .await
    .unwrap();
    assert_eq!(
        store.ensure_partition(day).await.unwrap(),
        Ensured::BlockedByDefault
    );
    assert_eq!(store.default_partition_rows(100).await.unwrap(), 1);
    let count: i64 = sqlx::query_scalar("SELECT count(*) FROM api_logs")
        .fetch_one(&pg)
        .await
        .unwrap();
    assert_eq!(count, 1, "the event is still there");
}

/// Row-level security: a tenant transaction sees and changes its own rows
/// only, even through statements without any `WHERE tenant_id`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tenant_transaction_cannot_reach_another_tenants_rows_even_without_a_where_clause() {
    let db = TestDb::new().await;
    let store = db.store().await;
    let pg = common::pool(&db.url).await;
    let secret = |_: ()| pulsyon::domain::ApiKeySecret::generate().unwrap();
    let (a, _) = store
        .create_tenant_with_key("rls-a", "k", &secret(()), || Ok(()))
        .await
        .unwrap();
    let (b, _) = store
        .create_tenant_with_key("rls-b", "k", &secret(()), || Ok(()))
        .await
        .unwrap();
    // As the system: one event, one dead letter and one service of each tenant.
    for t in [a.id.0, b.id.0] {
        sqlx::query(
            "INSERT INTO api_logs VALUES ($1, now(), gen_random_uuid(), 's', '/', 'GET', 200, 1, '', '', '', '', '', 0, 0, '{}', now())",
        )
        .bind(t)
        .execute(&pg)
        .await
        .unwrap();
        sqlx::query(
            "INSERT INTO failed_events (tenant_id, received_at, producer_id, batch_seq, event_index, reason, message, payload) \
             VALUES ($1, now(), 'p', 1, 0, 'invalid_event_id', 'm', '')",
        )
        .bind(t)
        .execute(&pg)
        .await
        .unwrap();
        sqlx::query("INSERT INTO services VALUES ($1, 'svc', now(), now())")
            .bind(t)
            .execute(&pg)
            .await
            .unwrap();
    }

    let mut tx = store.tenant_tx(a.id).await.unwrap();
    for table in [
        "api_logs",
        "failed_events",
        "services",
        "api_keys",
        "tenants",
    ] {
        let seen: Vec<i64> = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
            "SELECT DISTINCT tenant_id FROM {table}"
        )))
        .fetch_all(&mut *tx)
        .await
        .unwrap();
        assert_eq!(seen, vec![a.id.0], "{table}: tenant A sees only its rows");
    }
    let changed = sqlx::query("UPDATE services SET last_seen = now()")
        .execute(&mut *tx)
        .await
        .unwrap()
        .rows_affected();
    assert_eq!(changed, 1, "an UPDATE without WHERE changes A's row only");
    let deleted = sqlx::query("DELETE FROM failed_events")
        .execute(&mut *tx)
        .await
        .unwrap()
        .rows_affected();
    assert_eq!(deleted, 1, "a DELETE without WHERE removes A's row only");
    tx.commit().await.unwrap();

    let mut tx = store.tenant_tx(a.id).await.unwrap();
    let planted = sqlx::query("INSERT INTO services VALUES ($1, 'planted', now(), now())")
        .bind(b.id.0)
        .execute(&mut *tx)
        .await;
    assert!(planted.is_err(), "tenant A cannot write a row of tenant B");
    drop(tx);

    let b_rows: i64 = sqlx::query_scalar(
        "SELECT (SELECT count(*) FROM failed_events WHERE tenant_id = $1) + \
                (SELECT count(*) FROM services WHERE tenant_id = $1 AND name = 'planted')",
    )
    .bind(b.id.0)
    .fetch_one(&pg)
    .await
    .unwrap();
    assert_eq!(
        b_rows, 1,
        "B's dead letter is intact and nothing was planted"
    );

    // Without a tenant set, the role sees nothing at all (fail closed).
    let mut tx = pg.begin().await.unwrap();
    sqlx::query("SET LOCAL ROLE pulsyon_tenant")
        .execute(&mut *tx)
        .await
        .unwrap();
    let n: i64 = sqlx::query_scalar("SELECT count(*) FROM api_logs")
        .fetch_one(&mut *tx)
        .await
        .unwrap();
    assert_eq!(n, 0);
}

/// Every table holding tenant data has row-level security on, so a future
/// migration cannot add one without it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_table_with_a_tenant_column_has_row_level_security() {
    let db = TestDb::new().await;
    let _store = db.store().await;
    let pg = common::pool(&db.url).await;
    let unprotected: Vec<String> = sqlx::query_scalar(
        "SELECT c.relname::text FROM pg_class c \
         JOIN pg_namespace n ON n.oid = c.relnamespace AND n.nspname = 'public' \
         JOIN pg_attribute a ON a.attrelid = c.oid AND a.attname = 'tenant_id' AND NOT a.attisdropped \
         WHERE c.relkind IN ('r', 'p') AND NOT c.relispartition \
           AND (NOT c.relrowsecurity OR NOT EXISTS (SELECT 1 FROM pg_policy p WHERE p.polrelid = c.oid)) \
         ORDER BY 1",
    )
    .fetch_all(&pg)
    .await
    .unwrap();
    assert!(
        unprotected.is_empty(),
        "without row-level security: {unprotected:?}"
    );
    let protected: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM pg_class WHERE relrowsecurity AND relnamespace = 'public'::regnamespace",
    )
    .fetch_one(&pg)
    .await
    .unwrap();
    assert!(protected >= 15, "{protected} tables protected");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_writer_that_lost_its_buffer_shard_cannot_commit_it() {
    use pulsyon::store::{StoreError, buffer::FENCED};
    let db = TestDb::new().await;
    let store = db.store().await;
    common::create_tenant(&db.url, "acme");
    let tenant = store.tenant_by_name("acme").await.unwrap().id;
    let lease = Duration::from_secs(30);
    store.ensure_buffer_shards(2).await.unwrap();
    // A takes both shards; B finds none free while A's leases run.
    let a = store.claim_buffer_shards("a", 2, 2, lease).await.unwrap();
    assert_eq!(a.len(), 2);
    assert!(
        store
            .claim_buffer_shards("b", 2, 2, lease)
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(store.buffer_writers("b").await.unwrap(), 2);
    let a0 = a.iter().find(|f| f.shard == 0).copied().unwrap();
    store
        .write_batches_fenced(&[common::one_event_batch(tenant, "fenced", 1)], true, &[a0])
        .await
        .unwrap();
    // A stalls; its lease of shard 0 runs out and B takes the shard over.
    let pool = common::pool(&db.url).await;
    sqlx::query("UPDATE buffer_shards SET lease_until = now() - interval '1 s' WHERE shard = 0")
        .execute(&pool)
        .await
        .unwrap();
    let b = store.claim_buffer_shards("b", 2, 1, lease).await.unwrap();
    assert_eq!(b.len(), 1);
    assert_eq!((b[0].shard, b[0].epoch), (0, a0.epoch + 1));
    // A wakes: its write under the old epoch fails and writes nothing; its
    // renewal keeps only the shard it still holds.
    let refused = store
        .write_batches_fenced(&[common::one_event_batch(tenant, "fenced", 2)], true, &[a0])
        .await
        .unwrap_err();
    assert!(matches!(refused, StoreError::State(FENCED)), "{refused:?}");
    let kept = store.renew_buffer_shards("a", &a, lease).await.unwrap();
    assert_eq!(kept.iter().map(|f| f.shard).collect::<Vec<_>>(), [1]);
    store
        .write_batches_fenced(
            &[common::one_event_batch(tenant, "fenced", 2)],
            true,
            &[b[0]],
        )
        .await
        .unwrap();
    let rows: i64 = sqlx::query_scalar("SELECT count(*) FROM api_logs")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(rows, 2, "batch 1 by A, batch 2 by B only");
    // A released shard is free at once.
    store.release_buffer_shards("b", &b).await.unwrap();
    assert_eq!(
        store
            .claim_buffer_shards("c", 2, 2, lease)
            .await
            .unwrap()
            .len(),
        1
    );
}

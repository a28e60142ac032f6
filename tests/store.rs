//! Database tests of the store and the partition keeper against real PostgreSQL.

mod common;

use std::time::Duration;

use common::TestDb;
use pulsyon::{
    ingest::partitions,
    store::{Store, options_from_url, partitions::Ensured},
};
use time::OffsetDateTime;

async fn store(db: &TestDb) -> Store {
    let store = Store::connect(
        options_from_url(&db.url).unwrap(),
        4,
        Duration::from_secs(10),
    )
    .await
    .unwrap();
    store.migrate().await.unwrap();
    store
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_keeper_makes_partitions_ahead_and_drops_those_past_the_retention() {
    let db = TestDb::new().await;
    let store = store(&db).await;
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
    let store = store(&db).await;
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

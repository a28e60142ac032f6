//! How an objective stands, from the rollups: minute rows for the burn
//! windows up to 6 hours, hour rows for the longer ones and for the period
//! (whole hours: the period's first hour counts whole). The arithmetic is
//! `domain::objective::standing`.

use std::time::Duration;

use time::OffsetDateTime;

use super::{Step, series};
use crate::{
    domain::objective::{BURN_WINDOWS, Objective, ObjectiveKind, Standing, Tally, standing},
    stats::{self, cell::Agg},
    store::{Store, StoreError},
};

/// Windows this long or shorter are read from minute rows.
const MINUTE_WINDOWS: Duration = Duration::from_secs(6 * 3_600);

/// The bad requests of `agg` by `o`'s measure.
pub fn bad_of(o: &Objective, agg: &Agg) -> u64 {
    match o.kind {
        ObjectiveKind::Availability => {
            agg.status_5xx + if o.count_4xx { agg.status_4xx } else { 0 }
        }
        ObjectiveKind::Latency => agg.histogram.count_above(o.latency_threshold_ms),
    }
}

fn tally_since(o: &Objective, rows: &[(OffsetDateTime, Agg)], from: OffsetDateTime) -> Tally {
    rows.iter()
        .filter(|(bucket, _)| *bucket >= from)
        .fold(Tally::default(), |t, (_, agg)| Tally {
            requests: t.requests + agg.count,
            bad: t.bad + bad_of(o, agg),
        })
}

/// How each of `objectives` stands at `now`, in order.
pub async fn standings(
    store: &Store,
    objectives: &[Objective],
    now: OffsetDateTime,
) -> Result<Vec<Standing>, StoreError> {
    let mut out = Vec::with_capacity(objectives.len());
    for o in objectives {
        out.push(objective_standing(store, o, now).await?);
    }
    Ok(out)
}

/// How `o` stands at `now`.
pub async fn objective_standing(
    store: &Store,
    o: &Objective,
    now: OffsetDateTime,
) -> Result<Standing, StoreError> {
    let endpoint = (!o.endpoint.is_empty()).then_some(o.endpoint.as_str());
    let read = |step: Step, back: Duration| {
        series(
            store,
            o.tenant_id,
            &o.service,
            endpoint,
            step,
            now - back,
            now + Duration::from_secs(3_600),
        )
    };
    let minutes = read(Step::Minute, MINUTE_WINDOWS).await?;
    let hours = read(Step::Hour, o.period()).await?;
    let hour_start = |back: Duration| stats::floor(now - back, 3_600);
    let windows: Vec<Tally> = BURN_WINDOWS
        .iter()
        .map(|w| match *w <= MINUTE_WINDOWS {
            true => tally_since(o, &minutes, now - *w),
            false => tally_since(o, &hours, hour_start(*w)),
        })
        .collect();
    let period = tally_since(o, &hours, hour_start(o.period()));
    Ok(standing(o, period, &windows, now))
}

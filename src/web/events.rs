//! `GET /api/v1/incidents/stream`: the session's incident updates as
//! server-sent events, fed by the same incident feed as `Incidents.Watch`
//! (src/incidents/feed.rs). Each update is an `update` event whose `id` is
//! its sequence; a reconnect sends `Last-Event-ID` (browsers do by
//! themselves) and the feed replays exactly what came after it from the
//! outbox, then goes live; a resume it cannot serve (pruned, or not this
//! server's) is a `resync` event, after which the page reloads its snapshot.
//! A first connection names its starting point with `?after=<seq>` (the
//! `seq` of `GET /api/v1/incidents`), or follows from now.
//!
//! Idle streams get a comment every heartbeat (proxies keep them open); a
//! subscriber that falls behind the hub catches up from the database, so
//! each holds a bounded buffer. The stream ends when the server stops
//! (the browser reconnects elsewhere and resumes) or the session ends
//! (an `ended` event).

use std::time::Duration;

use axum::{
    body::{Body, Bytes},
    extract::{Query, State},
    http::{HeaderMap, HeaderValue, StatusCode, header},
    response::{IntoResponse, Response},
};
use serde::Deserialize;

use super::{Dashboard, api};
use crate::{
    domain::incident::{IncidentFilter, Update},
    incidents::{
        feed::{Feed, FeedError, FeedRequest, Item},
        hub::Rendered,
    },
};

/// How often a stream checks that its session still holds.
const SESSION_CHECK: Duration = Duration::from_secs(15);
/// What the browser waits before reconnecting, milliseconds.
const RETRY_MS: u64 = 1_000;

/// An update as every event-stream subscriber receives it, made once by
/// the hub: `id`, `event: update`, and the update's JSON on one line.
pub fn render_update(u: &Update) -> Bytes {
    Bytes::from(format!(
        "id: {}\nevent: update\ndata: {}\n\n",
        u.seq,
        serde_json::to_string(&super::json::update(u)).unwrap_or_default()
    ))
}

fn message(event: &str, data: Ending) -> Bytes {
    let data = serde_json::to_string(&data).unwrap_or_default();
    Bytes::from(format!("event: {event}\ndata: {data}\n\n"))
}

/// Why a stream goes no further, and from where a reload would start.
#[derive(Debug, Default, serde::Serialize)]
struct Ending {
    #[serde(skip_serializing_if = "Option::is_none")]
    after: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    newest: Option<i64>,
    reason: &'static str,
}

/// Where a stream starts.
#[derive(Debug, Deserialize)]
pub(super) struct Start {
    after: Option<String>,
}

fn sequence(text: &str) -> Result<i64, api::ApiError> {
    text.trim()
        .parse::<i64>()
        .ok()
        .filter(|n| *n >= 0)
        .ok_or_else(|| api::ApiError::Invalid("an event id is a sequence number".into()))
}

pub(super) async fn stream(
    State(d): State<Dashboard>,
    version: axum::http::Version,
    headers: HeaderMap,
    Query(start): Query<Start>,
) -> Result<Response, api::ApiError> {
    let session = api::session(&d, &headers).await?;
    let last_event_id = headers
        .get("last-event-id")
        .and_then(|v| v.to_str().ok())
        .filter(|v| !v.trim().is_empty());
    let resume = match (last_event_id, start.after.as_deref()) {
        (Some(id), _) => Some(sequence(id)?),
        (None, Some(after)) => Some(sequence(after)?),
        (None, None) => None,
    };
    let mut first: Vec<Bytes> = vec![Bytes::from(format!("retry: {RETRY_MS}\n\n"))];
    // A page that read its list before any update was written starts at 0:
    // if one was written since, it reloads rather than miss it.
    let resync_now = resume == Some(0) && d.store.update_seq_bounds().await?.1 > 0;
    let request = FeedRequest {
        tenant: session.tenant_id,
        filter: IncidentFilter::default(),
        send_snapshot: false,
        resume_after: resume.unwrap_or(0),
        heartbeat: d.heartbeat,
    };
    let token = api::cookie_token(&headers).unwrap_or_default();
    let logins = d.logins.clone();
    // The check's database future is boxed only while it runs: an idle
    // stream holds a timer, not a query's state.
    let ended = Box::pin(async move {
        loop {
            tokio::time::sleep(SESSION_CHECK).await;
            if Box::pin(logins.session(&token)).await.is_err() {
                return;
            }
        }
    });
    let feed = if resync_now {
        Err(FeedError::Resync { after: 0 })
    } else {
        Feed::<Rendered, ()>::open(
            d.store.clone(),
            d.hub.clone(),
            &session.session_id.to_string(),
            request,
            d.shutdown.clone(),
            ended,
        )
        .await
    };
    let feed = match feed {
        Ok(feed) => Some(feed),
        Err(err) => {
            first.push(ending(err));
            None
        }
    };
    let http = if version == axum::http::Version::HTTP_2 {
        "2"
    } else {
        "1.1"
    };
    metrics::counter!("pulsyon_dashboard_streams_total", "http" => http).increment(1);
    let opening =
        futures_util::stream::iter(first.into_iter().map(Ok::<_, std::convert::Infallible>));
    let items = futures_util::stream::unfold(feed, |state| async move {
        let mut feed = state?;
        match feed.next().await? {
            Ok(item) => Some((Ok(frame(item)), Some(feed))),
            Err(err) => Some((Ok(ending(err)), None)),
        }
    });
    use futures_util::StreamExt;
    let body = Body::from_stream(opening.chain(items));
    let mut response = (StatusCode::OK, body).into_response();
    let h = response.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/event-stream"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert("x-accel-buffering", HeaderValue::from_static("no"));
    Ok(response)
}

/// An item as the stream sends it.
fn frame(item: Item<Rendered>) -> Bytes {
    match item {
        Item::Live(p) => p.rendered.events.clone(),
        Item::Update(u) => render_update(&u),
        Item::Heartbeat { newest } => Bytes::from(format!(": heartbeat {newest}\n\n")),
        // Streams ask for no snapshot (the page reads its list).
        Item::Snapshot(_) | Item::SnapshotDone { .. } => Bytes::new(),
    }
}

/// The last event of a stream that goes no further.
fn ending(err: FeedError<()>) -> Bytes {
    match err {
        FeedError::Resync { after } => message(
            "resync",
            Ending {
                after: Some(after),
                reason: "the updates after this point are no longer kept; reload",
                ..Ending::default()
            },
        ),
        FeedError::ResyncFuture { resume, newest } => message(
            "resync",
            Ending {
                after: Some(resume),
                newest: Some(newest),
                reason: "not a sequence of this server; reload",
            },
        ),
        FeedError::Ended(()) => message(
            "ended",
            Ending {
                reason: "the session ended: log in",
                ..Ending::default()
            },
        ),
        // The browser reconnects (to this server once it is back, or
        // another) and resumes after its last event.
        FeedError::ShuttingDown => Bytes::from_static(b": the server is stopping\n\n"),
        FeedError::Store(err) => {
            tracing::warn!(error = %err, "incident stream: the outbox could not be read");
            Bytes::from_static(b": the database is unavailable\n\n")
        }
    }
}

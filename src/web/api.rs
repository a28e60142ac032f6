//! The dashboard's JSON API under `/api/v1/`. Each handler takes its
//! `Caller` (the session of the request's cookie, holding a slot of the
//! tenant's concurrent-query bound that the gRPC doors share), checks its role, and calls
//! the same query (src/query) and store functions as the gRPC services with
//! the session's tenant: the store's row-level security confines every
//! answer to it. Errors are `{"error": ...}` with the HTTP status that fits.
//!
//! `/api/v1/session`: `POST` logs in (`{"tenant", "user", "password"}` or
//! `{"api_key"}`) and sets the session cookie (`HttpOnly`,
//! `SameSite=Strict`, `Path=/`, and `Secure` with TLS; a random token whose SHA-256 alone is
//! stored, `crate::auth::Logins`); `GET` says who (`logged_in` false
//! without a live session); `DELETE` logs out.

use std::time::Duration;

use axum::{
    Json, Router,
    body::Bytes,
    extract::{Path, Query, State},
    http::{HeaderMap, HeaderValue, StatusCode, header},
    response::{IntoResponse, Response},
    routing::{get, post},
};
use serde::Deserialize;
use serde::Serialize;

use super::json::{
    Changed, IncidentList, IncidentPage, IngestPage, Overview, Queue, Refusal, ServicePage, Who,
};
use time::OffsetDateTime;

use super::{Dashboard, json as js};
use crate::{
    auth::LoginError,
    domain::{
        Role,
        incident::{IncidentFilter, IncidentStatus},
    },
    query,
    rollup::verdict::Verdict,
    store::{StoreError, events::EventFilter, users::SessionInfo},
};

/// The cookie's name.
pub const COOKIE: &str = "pulsyon_session";
/// Largest JSON body read.
const MAX_BODY: usize = 4 * 1024;
/// Most incidents a list returns.
const MAX_LISTED: i64 = 200;
/// Recent 5xx events shown for a service.
const RECENT_ERRORS: i64 = 20;
/// Dead letters shown at a time.
const FAILED_LISTED: i64 = 50;

pub(super) fn routes() -> Router<Dashboard> {
    Router::new()
        .route(
            "/api/v1/session",
            post(login).get(who).delete(logout).fallback(wrong_method),
        )
        .route("/api/v1/overview", get(overview))
        .route("/api/v1/incidents", get(incidents))
        .route("/api/v1/incidents/stream", get(super::events::stream))
        .route("/api/v1/incidents/{id}", get(incident))
        .route("/api/v1/incidents/{id}/{action}", post(by_hand))
        .route("/api/v1/services/{service}", get(service))
        .route("/api/v1/ingest", get(ingest))
        .route("/api/v1/failed/{id}", get(failed_event))
        .merge(super::notify::routes())
}

/// A JSON answer that is never cached.
pub(super) fn reply(status: StatusCode, body: impl Serialize) -> Response {
    let mut response = (status, Json(body)).into_response();
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

/// A refusal: `{"error": message}`.
pub(super) fn error(status: StatusCode, message: impl std::fmt::Display) -> Response {
    reply(
        status,
        Refusal {
            error: message.to_string(),
        },
    )
}

async fn wrong_method() -> Response {
    error(StatusCode::METHOD_NOT_ALLOWED, "POST, GET or DELETE")
}

/// Why an API call has no answer.
pub(super) enum ApiError {
    Login(LoginError),
    Store(StoreError),
    Forbidden(&'static str),
    NotFound(&'static str),
    Invalid(String),
    /// A body that cannot be read: its status and why.
    Body(StatusCode, String),
    /// The tenant runs its most queries at once.
    Busy(crate::query::gate::Busy),
}

impl From<LoginError> for ApiError {
    fn from(e: LoginError) -> Self {
        ApiError::Login(e)
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        ApiError::Store(e)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        match self {
            ApiError::Login(err) => match err {
                LoginError::Refused | LoginError::NoSession => error(StatusCode::UNAUTHORIZED, err),
                LoginError::KeyCannotRead => error(StatusCode::FORBIDDEN, err),
                LoginError::Throttled(left) => {
                    let mut response = error(StatusCode::TOO_MANY_REQUESTS, &err);
                    response.headers_mut().insert(
                        header::RETRY_AFTER,
                        HeaderValue::from(left.as_secs().max(1)),
                    );
                    response
                }
                LoginError::Store(e) => ApiError::Store(e).into_response(),
                other => {
                    tracing::error!(error = %other, "login failed");
                    error(StatusCode::INTERNAL_SERVER_ERROR, "internal error")
                }
            },
            ApiError::Store(err) => match err {
                StoreError::Unavailable(_) | StoreError::Busy(_) => error(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "the database is unavailable; retry later",
                ),
                StoreError::NotFound(what) => {
                    error(StatusCode::NOT_FOUND, format!("{what} not found"))
                }
                StoreError::State(why) => error(StatusCode::CONFLICT, why),
                StoreError::Invalid(what) => {
                    error(StatusCode::BAD_REQUEST, format!("invalid {what}"))
                }
                other => {
                    tracing::error!(error = %other, "dashboard API failed");
                    error(StatusCode::INTERNAL_SERVER_ERROR, "internal error")
                }
            },
            ApiError::Forbidden(why) => error(StatusCode::FORBIDDEN, why),
            ApiError::NotFound(why) => error(StatusCode::NOT_FOUND, why),
            ApiError::Invalid(why) => error(StatusCode::BAD_REQUEST, why),
            ApiError::Body(status, why) => error(status, why),
            ApiError::Busy(busy) => {
                let mut response = error(StatusCode::TOO_MANY_REQUESTS, &busy);
                // Whole seconds only: a shorter delay rounds up to one.
                let secs = busy.retry_after.as_secs_f64().ceil().max(1.0) as u64;
                response
                    .headers_mut()
                    .insert(header::RETRY_AFTER, HeaderValue::from(secs));
                response
            }
        }
    }
}

pub(super) type Answer = Result<Response, ApiError>;

/// The session token of the request's cookie header, if any.
pub(super) fn cookie_token(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == COOKIE)
        .map(|(_, value)| value.to_owned())
        .filter(|v| !v.is_empty())
}

/// The caller of a JSON API read or change: the request's live session,
/// with a slot of its tenant's concurrent-query bound held until the
/// handler returns (past the bound: 429 with `Retry-After`). Every handler
/// but the session's own and the event stream (which holds no query while
/// it idles) takes one.
pub(super) struct Caller {
    /// Who: tenant, actor, role.
    pub session: SessionInfo,
    /// The query slot, given back when the handler ends.
    _running: crate::query::gate::Running,
}

impl axum::extract::FromRequestParts<Dashboard> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        d: &Dashboard,
    ) -> Result<Caller, ApiError> {
        let session = session(d, &parts.headers).await?;
        let running = d
            .gate
            .enter(session.tenant_id, &session.tenant_name)
            .map_err(ApiError::Busy)?;
        Ok(Caller {
            session,
            _running: running,
        })
    }
}

/// The live session of the request, or why there is none.
pub(super) async fn session(d: &Dashboard, headers: &HeaderMap) -> Result<SessionInfo, ApiError> {
    let token = cookie_token(headers).ok_or(LoginError::NoSession)?;
    Ok(d.logins.session(&token).await?)
}

/// The body of a request that must be JSON (a form cannot send it from
/// another site without the browser asking first), parsed.
pub(super) fn json_body<T: serde::de::DeserializeOwned>(
    headers: &HeaderMap,
    body: &Bytes,
) -> Result<T, ApiError> {
    let is_json = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(';').next().unwrap_or_default().trim() == "application/json");
    if !is_json {
        return Err(ApiError::Body(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "send application/json".into(),
        ));
    }
    if body.len() > MAX_BODY {
        return Err(ApiError::Body(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!("a request body is at most {MAX_BODY} bytes"),
        ));
    }
    serde_json::from_slice(body)
        .map_err(|e| ApiError::Body(StatusCode::BAD_REQUEST, format!("invalid body: {e}")))
}

/// What a login sends.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Login {
    tenant: Option<String>,
    user: Option<String>,
    password: Option<String>,
    api_key: Option<String>,
}

async fn login(State(d): State<Dashboard>, headers: HeaderMap, body: Bytes) -> Answer {
    let login: Login = json_body(&headers, &body)?;
    let made = match login {
        Login {
            api_key: Some(key),
            tenant: None,
            user: None,
            password: None,
        } => d.logins.with_key(&key).await?,
        Login {
            api_key: None,
            tenant: Some(tenant),
            user: Some(user),
            password: Some(password),
        } => d.logins.with_password(&tenant, &user, &password).await?,
        _ => {
            return Err(ApiError::Invalid(
                "send {\"tenant\", \"user\", \"password\"} or {\"api_key\"}".into(),
            ));
        }
    };
    let seconds = (made.info.expires_at - OffsetDateTime::now_utc())
        .whole_seconds()
        .max(0);
    tracing::info!(tenant = %made.info.tenant_name, actor = %made.info.actor, "dashboard login");
    let mut response = reply(StatusCode::OK, super::json::who(&made.info));
    let cookie = format!(
        "{COOKIE}={}; HttpOnly; SameSite=Strict; Path=/; Max-Age={seconds}{}",
        made.token,
        secure(&d)
    );
    if let Ok(v) = HeaderValue::from_str(&cookie) {
        response.headers_mut().insert(header::SET_COOKIE, v);
    }
    Ok(response)
}

/// The cookie's `Secure` attribute when the port serves TLS (a browser
/// then never sends the session over plaintext).
fn secure(d: &Dashboard) -> &'static str {
    if d.tls { "; Secure" } else { "" }
}

/// Who the cookie's session is; `{"logged_in": false}` without one (the
/// page asks before it knows, and a refusal would be a console error).
async fn who(State(d): State<Dashboard>, headers: HeaderMap) -> Answer {
    match session(&d, &headers).await {
        Ok(session) => Ok(reply(StatusCode::OK, super::json::who(&session))),
        Err(ApiError::Login(LoginError::NoSession)) => Ok(reply(
            StatusCode::OK,
            Who {
                logged_in: false,
                session: None,
            },
        )),
        Err(err) => Err(err),
    }
}

async fn logout(State(d): State<Dashboard>, headers: HeaderMap) -> Answer {
    let token = cookie_token(&headers).ok_or(LoginError::NoSession)?;
    d.logins.logout(&token).await?;
    let mut response = StatusCode::NO_CONTENT.into_response();
    let gone = format!(
        "{COOKIE}=; HttpOnly; SameSite=Strict; Path=/; Max-Age=0{}",
        secure(&d)
    );
    if let Ok(v) = HeaderValue::from_str(&gone) {
        response.headers_mut().insert(header::SET_COOKIE, v);
    }
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(response)
}

/// A window the pages choose: `1h`, `24h` or `7d`.
#[derive(Debug, Deserialize)]
struct Range {
    range: Option<String>,
}

impl Range {
    fn window(&self) -> Result<(&str, Duration), ApiError> {
        let name = self.range.as_deref().unwrap_or("1h");
        let hours = match name {
            "1h" => 1,
            "24h" => 24,
            "7d" => 168,
            _ => return Err(ApiError::Invalid("range: one of 1h, 24h, 7d".into())),
        };
        Ok((name, Duration::from_secs(hours * 3_600)))
    }
}

/// How bad a verdict is, the worst first.
fn rank(v: Verdict) -> u8 {
    match v {
        Verdict::Down => 0,
        Verdict::Degraded => 1,
        Verdict::Unknown => 2,
        Verdict::Healthy => 3,
    }
}

/// The first screen's service table: every service judged over the range,
/// worst first, with its recent buckets.
async fn overview(
    State(d): State<Dashboard>,
    Caller { session, .. }: Caller,
    Query(range): Query<Range>,
) -> Answer {
    let (name, window) = range.window()?;
    let now = OffsetDateTime::now_utc();
    let tenant = session.tenant_id;
    let (health, buckets, as_of) = tokio::try_join!(
        query::service_health(&d.store, tenant, None, window, now),
        query::service_buckets(&d.store, tenant, window, now),
        d.store.rollup_watermark(),
    )?;
    let (mut buckets, width) = buckets;
    let mut health = health;
    health.sort_by(|a, b| {
        rank(a.status)
            .cmp(&rank(b.status))
            .then(b.error_rate().total_cmp(&a.error_rate()))
            .then(a.service.cmp(&b.service))
    });
    let services: Vec<js::ServiceHealth> = health
        .iter()
        .map(|h| {
            let mut row = js::health(h, window);
            row.buckets = Some(
                buckets
                    .remove(&h.service)
                    .unwrap_or_default()
                    .into_iter()
                    .map(|(t, count, errors)| (t.unix_timestamp(), count, errors))
                    .collect(),
            );
            row
        })
        .collect();
    Ok(reply(
        StatusCode::OK,
        Overview {
            range: name,
            window_secs: window.as_secs(),
            bucket_secs: width,
            as_of: as_of.map(js::time),
            services,
        },
    ))
}

/// Which incidents a list holds.
#[derive(Debug, Deserialize)]
struct IncidentsQuery {
    service: Option<String>,
    /// `live` (open and acknowledged, the default) or `all` (every status,
    /// the last 7 days).
    show: Option<String>,
}

/// The incidents the first screen shows: live ones first with the
/// explanation of their latest alert; `seq` is the newest update at the
/// moment of the read (the event stream resumes after it).
async fn incidents(
    State(d): State<Dashboard>,
    Caller { session, .. }: Caller,
    Query(q): Query<IncidentsQuery>,
) -> Answer {
    // The sequence before the read: an update after it is sent by the
    // stream even if the read saw it already (applying it twice is harmless).
    let (_, seq) = d.store.update_seq_bounds().await?;
    let statuses = match q.show.as_deref().unwrap_or("live") {
        "live" => vec![IncidentStatus::Open, IncidentStatus::Acknowledged],
        "all" => Vec::new(),
        _ => return Err(ApiError::Invalid("show: live or all".into())),
    };
    let filter = IncidentFilter {
        statuses,
        service: q.service.filter(|s| !s.is_empty()),
        min_severity: None,
    };
    let now = OffsetDateTime::now_utc();
    let rows = d
        .store
        .incidents(
            session.tenant_id,
            &filter,
            now - time::Duration::days(7),
            now + time::Duration::minutes(1),
            None,
            MAX_LISTED,
        )
        .await?;
    // A live incident explains itself by its newest alert (as one incident's
    // page does), read for all of them at once.
    let live: Vec<i64> = rows
        .iter()
        .filter(|i| i.status != IncidentStatus::Resolved)
        .map(|i| i.incident_id)
        .collect();
    let newest: std::collections::HashMap<i64, _> = d
        .store
        .newest_alerts(session.tenant_id, &live)
        .await?
        .into_iter()
        .filter_map(|a| Some((a.incident_id?, a)))
        .collect();
    let listed: Vec<_> = rows
        .iter()
        .map(|i| {
            let explanation = (i.status != IncidentStatus::Resolved)
                .then(|| newest.get(&i.incident_id))
                .flatten()
                .map(crate::incidents::explain::alert);
            js::incident(i, explanation)
        })
        .collect();
    Ok(reply(
        StatusCode::OK,
        IncidentList {
            seq,
            incidents: listed,
        },
    ))
}

pub(super) fn incident_id(id: &str) -> Result<i64, ApiError> {
    id.parse()
        .ok()
        .filter(|n: &i64| *n > 0)
        .ok_or_else(|| ApiError::Invalid("not an incident id".into()))
}

/// One incident: its alerts with their explanations and its timeline.
async fn incident(
    State(d): State<Dashboard>,
    Caller { session, .. }: Caller,
    Path(id): Path<String>,
) -> Answer {
    let id = incident_id(&id)?;
    let (incident, alerts, timeline) = d.store.incident(session.tenant_id, id).await?;
    let explanation = alerts
        .iter()
        .max_by_key(|a| a.fired_at)
        .map(crate::incidents::explain::alert);
    Ok(reply(
        StatusCode::OK,
        IncidentPage {
            incident: js::incident(&incident, explanation),
            alerts: alerts.iter().map(js::alert).collect(),
            timeline: timeline.iter().map(js::update).collect(),
        },
    ))
}

/// What acknowledge and resolve send.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct Note {
    #[serde(default)]
    note: String,
}

/// `POST /api/v1/incidents/{id}/acknowledge` or `.../resolve`, with an
/// optional note: a responder's or admin's act, recorded under their name.
async fn by_hand(
    State(d): State<Dashboard>,
    Caller { session, .. }: Caller,
    headers: HeaderMap,
    Path((id, action)): Path<(String, String)>,
    body: Bytes,
) -> Answer {
    let resolve = match action.as_str() {
        "acknowledge" => false,
        "resolve" => true,
        _ => return Err(ApiError::NotFound("no such action: acknowledge or resolve")),
    };
    if session.role < Role::Responder {
        return Err(ApiError::Forbidden(
            "a viewer may not acknowledge or resolve incidents",
        ));
    }
    let id = incident_id(&id)?;
    let note: Note = json_body(&headers, &body)?;
    if note.note.len() > 4_096 || note.note.contains('\0') {
        return Err(ApiError::Invalid("note: at most 4096 bytes, no NUL".into()));
    }
    let update = d
        .store
        .close_by_hand(
            session.tenant_id,
            id,
            resolve,
            &session.actor,
            &note.note,
            OffsetDateTime::now_utc(),
        )
        .await?;
    Ok(reply(
        StatusCode::OK,
        Changed {
            incident: js::incident(&update.incident, None),
        },
    ))
}

/// One service over the range: its health, its series (minute points up
/// to a day, hours past it), its endpoints, its recent 5xx and incidents.
async fn service(
    State(d): State<Dashboard>,
    Caller { session, .. }: Caller,
    Path(service): Path<String>,
    Query(range): Query<Range>,
) -> Answer {
    let (name, window) = range.window()?;
    let tenant = session.tenant_id;
    let now = OffsetDateTime::now_utc();
    let step = if window <= Duration::from_secs(86_400) {
        query::Step::Minute
    } else {
        query::Step::Hour
    };
    let errors = EventFilter {
        service: Some(service.clone()),
        endpoint: None,
        method: None,
        status: Some((500, 599)),
        min_latency_ms: None,
        trace_id: None,
        request_id: None,
        from: now - window,
        to: now + time::Duration::minutes(1),
    };
    let filter = IncidentFilter {
        statuses: Vec::new(),
        service: Some(service.clone()),
        min_severity: None,
    };
    let (health, series, endpoints, recent, incidents) = tokio::try_join!(
        query::service_health(&d.store, tenant, Some(&service), window, now),
        query::series(
            &d.store,
            tenant,
            &service,
            None,
            step,
            now - window,
            now + time::Duration::minutes(1)
        ),
        query::endpoint_health(&d.store, tenant, &service, window, now),
        d.store.query_events(tenant, &errors, None, RECENT_ERRORS),
        d.store.incidents(
            tenant,
            &filter,
            now - time::Duration::days(7),
            now + time::Duration::minutes(1),
            None,
            20
        ),
    )?;
    Ok(reply(
        StatusCode::OK,
        ServicePage {
            range: name,
            step_secs: step.seconds(),
            health: health.first().map(|h| js::health(h, window)),
            series: series.iter().map(|(t, a)| js::point(*t, a)).collect(),
            endpoints: endpoints.iter().map(js::endpoint).collect(),
            recent_errors: recent.iter().map(js::event).collect(),
            incidents: incidents.iter().map(|i| js::incident(i, None)).collect(),
        },
    ))
}

/// The ingest page: outcomes per minute over the range (up to a day) and
/// in total, the latest dead letters, this process's writer queue.
async fn ingest(
    State(d): State<Dashboard>,
    Caller { session, .. }: Caller,
    Query(range): Query<Range>,
) -> Answer {
    let (name, window) = range.window()?;
    let tenant = session.tenant_id;
    let now = OffsetDateTime::now_utc();
    let span = (now - window, now + time::Duration::minutes(1));
    let minutes = (window.as_secs() / 60).min(1_440) as i64;
    let (by_minute, totals, failed) = tokio::try_join!(
        query::outcome_minutes(&d.store, tenant, span, None, minutes),
        d.store.outcome_totals(tenant, span.0, span.1),
        d.store
            .failed_events(tenant, span, None, None, FAILED_LISTED, 0),
    )?;
    let (by_minute, _) = by_minute;
    let queue = d.admission.as_ref().map(|a| {
        let depth = a.depth();
        Queue {
            used_bytes: depth.used_bytes,
            capacity_bytes: depth.capacity_bytes,
        }
    });
    Ok(reply(
        StatusCode::OK,
        IngestPage {
            range: name,
            minutes: by_minute
                .iter()
                .rev()
                .map(|(t, m)| js::outcomes(Some(*t), m))
                .collect(),
            total: js::outcomes(None, &query::fold_outcomes(&totals)),
            failed: failed.iter().map(|f| js::failed(f, false)).collect(),
            queue,
        },
    ))
}

/// One dead letter with its payload (on demand: lists leave it out).
async fn failed_event(
    State(d): State<Dashboard>,
    Caller { session, .. }: Caller,
    Path(id): Path<String>,
) -> Answer {
    let id: i64 = id
        .parse()
        .map_err(|_| ApiError::Invalid("not a dead letter id".into()))?;
    let row = d.store.failed_event(session.tenant_id, id).await?;
    Ok(reply(StatusCode::OK, js::failed(&row, true)))
}

#[cfg(test)]
mod tests;

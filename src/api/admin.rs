//! `pulsyon.v1.Admin`: tenants and API keys (detection rules land with the incidents issue).
//!
//! Every call needs the `admin` scope and acts on the caller's own tenant only;
//! `CreateTenant` makes a new tenant and never touches an existing one.

use std::sync::Arc;

use tonic::{Request, Response, Status};
use uuid::Uuid;

use super::{
    auth::Authenticator,
    convert,
    incidents::{alert_to_pb, kind_to_pb, severity_from_pb, severity_to_pb},
    status::{self, from_store, invalid},
};
use crate::{
    detect::{backtest, settings_for},
    domain::{
        ApiKeySecret, Scope, Tenant, TenantId,
        rules::{Kind, Override, Overrides, Settings},
        valid_tenant_name,
    },
    proto::v1::{self as pb, admin_server::Admin},
    store::{Store, StoreError},
};

/// Longest key label.
const MAX_KEY_NAME: usize = 200;

/// The Admin service.
#[derive(Debug, Clone)]
pub struct AdminService {
    /// Tenants and keys live here.
    pub store: Store,
    /// Checks the caller's key.
    pub auth: Arc<Authenticator>,
    /// Notification settings (receivers' checks, test messages).
    pub notify: Arc<crate::notify::NotifyConfig>,
}

fn new_secret() -> Result<ApiKeySecret, Status> {
    ApiKeySecret::generate().map_err(|err| status::internal("no randomness for a new key", err))
}

/// A failure of the password machinery (no randomness): logged, answered INTERNAL.
fn internal(err: crate::auth::PasswordError) -> Status {
    status::internal("password hashing failed", err)
}

#[tonic::async_trait]
impl Admin for AdminService {
    async fn create_tenant(
        &self,
        request: Request<pb::CreateTenantRequest>,
    ) -> Result<Response<pb::CreateTenantResponse>, Status> {
        let caller = self.auth.authorize(&request, Scope::Admin).await?;
        let name = request.into_inner().name;
        if !valid_tenant_name(&name) {
            return Err(invalid(
                "name",
                "use 1 to 63 of a-z, 0-9, '-' and '_', starting with a letter or digit",
            ));
        }
        let secret = new_secret()?;
        let (tenant, key) = self
            .store
            .create_tenant_with_key(&name, "initial", &secret, || Ok(()))
            .await
            .map_err(from_store)?;
        tracing::info!(tenant = %tenant.name, by_tenant = %caller.tenant_name, key_prefix = %key.prefix, "tenant created");
        Ok(Response::new(pb::CreateTenantResponse {
            tenant: Some(convert::tenant(&tenant)),
            api_key: Some(convert::api_key(&key)),
            secret: secret.expose().to_owned(),
        }))
    }

    async fn create_api_key(
        &self,
        request: Request<pb::CreateApiKeyRequest>,
    ) -> Result<Response<pb::CreateApiKeyResponse>, Status> {
        let caller = self.auth.authorize(&request, Scope::Admin).await?;
        let req = request.into_inner();
        if req.name.chars().count() > MAX_KEY_NAME {
            return Err(invalid(
                "name",
                format!("longer than {MAX_KEY_NAME} characters"),
            ));
        }
        if req.name.contains('\0') {
            return Err(invalid("name", "contains a NUL character"));
        }
        let mut scopes = Vec::with_capacity(req.scopes.len());
        for (i, value) in req.scopes.iter().enumerate() {
            let scope = convert::scope_from_pb(*value).ok_or_else(|| {
                invalid(
                    &format!("scopes[{i}]"),
                    "expected SCOPE_INGEST, SCOPE_READ or SCOPE_ADMIN",
                )
            })?;
            scopes.push(scope);
        }
        scopes.sort();
        scopes.dedup();
        if scopes.is_empty() {
            return Err(invalid("scopes", "at least one scope is needed"));
        }
        let tenant = Tenant {
            id: caller.tenant_id,
            name: caller.tenant_name.clone(),
            created_at: time::OffsetDateTime::UNIX_EPOCH,
        };
        let secret = new_secret()?;
        let key = self
            .store
            .create_key(&tenant, &req.name, &scopes, &secret)
            .await
            .map_err(from_store)?;
        tracing::info!(tenant = %tenant.name, key_id = %key.key_id, key_prefix = %key.prefix, "api key created");
        Ok(Response::new(pb::CreateApiKeyResponse {
            api_key: Some(convert::api_key(&key)),
            secret: secret.expose().to_owned(),
        }))
    }

    async fn list_api_keys(
        &self,
        request: Request<pb::ListApiKeysRequest>,
    ) -> Result<Response<pb::ListApiKeysResponse>, Status> {
        let caller = self.auth.authorize(&request, Scope::Admin).await?;
        let keys = self
            .store
            .list_keys(caller.tenant_id, request.get_ref().include_revoked)
            .await
            .map_err(from_store)?;
        Ok(Response::new(pb::ListApiKeysResponse {
            api_keys: keys.iter().map(convert::api_key).collect(),
        }))
    }

    async fn revoke_api_key(
        &self,
        request: Request<pb::RevokeApiKeyRequest>,
    ) -> Result<Response<pb::RevokeApiKeyResponse>, Status> {
        let caller = self.auth.authorize(&request, Scope::Admin).await?;
        let key_id = Uuid::parse_str(&request.get_ref().key_id)
            .map_err(|_| invalid("key_id", "not a UUID"))?;
        let key = self
            .store
            .revoke_key(caller.tenant_id, key_id)
            .await
            .map_err(from_store)?;
        self.auth.forget_key(key_id);
        tracing::info!(tenant = %caller.tenant_name, key_id = %key_id, "api key revoked");
        Ok(Response::new(pb::RevokeApiKeyResponse {
            api_key: Some(convert::api_key(&key)),
        }))
    }

    async fn get_tenant_limits(
        &self,
        request: Request<pb::GetTenantLimitsRequest>,
    ) -> Result<Response<pb::GetTenantLimitsResponse>, Status> {
        let caller = self.auth.authorize(&request, Scope::Admin).await?;
        let overrides = self
            .store
            .limit_overrides(caller.tenant_id)
            .await
            .map_err(from_store)?;
        let defaults = self.auth.default_limits();
        Ok(Response::new(pb::GetTenantLimitsResponse {
            effective: Some(convert::limits_to_pb(&defaults.with(&overrides))),
            overrides: Some(convert::overrides_to_pb(&overrides)),
            defaults: Some(convert::limits_to_pb(defaults)),
        }))
    }

    async fn set_tenant_limits(
        &self,
        request: Request<pb::SetTenantLimitsRequest>,
    ) -> Result<Response<pb::SetTenantLimitsResponse>, Status> {
        let caller = self.auth.authorize(&request, Scope::Admin).await?;
        let overrides = match &request.get_ref().overrides {
            Some(o) => super::request::overrides_from_pb(o)?,
            None => Default::default(),
        };
        self.store
            .set_limit_overrides(caller.tenant_id, &overrides)
            .await
            .map_err(from_store)?;
        self.auth.forget_tenant(caller.tenant_id);
        tracing::info!(tenant = %caller.tenant_name, key_id = %caller.key_id, overrides = ?overrides, "tenant limits set");
        let defaults = self.auth.default_limits();
        Ok(Response::new(pb::SetTenantLimitsResponse {
            effective: Some(convert::limits_to_pb(&defaults.with(&overrides))),
            overrides: Some(convert::overrides_to_pb(&overrides)),
        }))
    }

    async fn list_detection_rules(
        &self,
        request: Request<pb::ListDetectionRulesRequest>,
    ) -> Result<Response<pb::ListDetectionRulesResponse>, Status> {
        let caller = self.auth.authorize(&request, Scope::Admin).await?;
        let service = rule_service(&request.get_ref().service)?;
        let stored = self
            .store
            .tenant_rule_overrides(caller.tenant_id)
            .await
            .map_err(from_store)?;
        let overrides = overrides_map(caller.tenant_id, &stored);
        let effective = Kind::RULES
            .into_iter()
            .map(|kind| {
                let s = settings_for(&overrides, caller.tenant_id, &service, kind);
                rule_to_pb(kind, &service, &s)
            })
            .collect();
        let overrides = stored
            .iter()
            .map(|(service, kind, o)| override_to_pb(*kind, service, o))
            .collect();
        Ok(Response::new(pb::ListDetectionRulesResponse {
            effective,
            overrides,
        }))
    }

    async fn set_detection_rule(
        &self,
        request: Request<pb::SetDetectionRuleRequest>,
    ) -> Result<Response<pb::SetDetectionRuleResponse>, Status> {
        let caller = self.auth.authorize(&request, Scope::Admin).await?;
        let rule = request
            .into_inner()
            .rule
            .ok_or_else(|| invalid("rule", "required"))?;
        let (kind, service, o) = rule_from_pb(&rule, "rule")?;
        let mut stored = self
            .store
            .tenant_rule_overrides(caller.tenant_id)
            .await
            .map_err(from_store)?;
        stored.retain(|(s, k, _)| !(s == &service && *k == kind));
        stored.push((service.clone(), kind, o.clone()));
        let overrides = overrides_map(caller.tenant_id, &stored);
        let effective = settings_for(&overrides, caller.tenant_id, &service, kind);
        effective
            .check(kind)
            .map_err(|problem| invalid("rule", problem))?;
        self.store
            .set_rule_override(caller.tenant_id, &service, kind, &o)
            .await
            .map_err(from_store)?;
        tracing::info!(tenant = %caller.tenant_name, service = %service, kind = kind.as_str(), "detection rule set");
        Ok(Response::new(pb::SetDetectionRuleResponse {
            effective: Some(rule_to_pb(kind, &service, &effective)),
        }))
    }

    async fn delete_detection_rule(
        &self,
        request: Request<pb::DeleteDetectionRuleRequest>,
    ) -> Result<Response<pb::DeleteDetectionRuleResponse>, Status> {
        let caller = self.auth.authorize(&request, Scope::Admin).await?;
        let req = request.into_inner();
        let kind = rule_kind(req.kind, "kind")?;
        let service = rule_service(&req.service)?;
        let deleted = match self
            .store
            .delete_rule_override(caller.tenant_id, &service, kind)
            .await
        {
            Ok(()) => true,
            Err(StoreError::NotFound(_)) => false,
            Err(err) => return Err(from_store(err)),
        };
        Ok(Response::new(pb::DeleteDetectionRuleResponse { deleted }))
    }

    async fn backtest_detection(
        &self,
        request: Request<pb::BacktestDetectionRequest>,
    ) -> Result<Response<pb::BacktestDetectionResponse>, Status> {
        let caller = self.auth.authorize(&request, Scope::Admin).await?;
        let req = request.into_inner();
        let now = time::OffsetDateTime::now_utc();
        let (from, to) = super::request::time_range(req.range.as_ref(), DAY, 7 * DAY, now)?;
        if from < now - 8 * DAY {
            return Err(invalid(
                "range.start",
                "within the last 8 days (minute rollups are kept that long)",
            ));
        }
        let mut candidates = Overrides::new();
        for (i, rule) in req.candidate_rules.iter().enumerate() {
            let (kind, service, o) = rule_from_pb(rule, &format!("candidate_rules[{i}]"))?;
            candidates.insert((caller.tenant_id, service, kind), o);
        }
        let outcome = backtest::replay(&self.store, Some(caller.tenant_id), from, to, &candidates)
            .await
            .map_err(from_store)?;
        let incidents = outcome
            .incidents
            .iter()
            .map(|i| pb::BacktestIncident {
                service: i.service.clone(),
                severity: severity_to_pb(i.severity),
                opened_at: Some(convert::timestamp(i.opened_at)),
                resolved_at: i.resolved_at.map(convert::timestamp),
                reopen_count: i.reopen_count,
                alerts: i.alerts.iter().map(alert_to_pb).collect(),
            })
            .collect();
        Ok(Response::new(pb::BacktestDetectionResponse {
            incidents,
            evaluations: outcome.evaluations,
        }))
    }

    async fn create_user(
        &self,
        request: Request<pb::CreateUserRequest>,
    ) -> Result<Response<pb::CreateUserResponse>, Status> {
        let caller = self.auth.authorize(&request, Scope::Admin).await?;
        let req = request.into_inner();
        if !crate::domain::valid_user_name(&req.name) {
            return Err(invalid(
                "name",
                "1 to 64 of a-z, 0-9, '.', '_', '-' and '@', starting with a letter or digit",
            ));
        }
        let role = convert::role_from_pb(req.role).ok_or_else(|| {
            invalid(
                "role",
                "expected USER_ROLE_VIEWER, USER_ROLE_RESPONDER or USER_ROLE_ADMIN",
            )
        })?;
        if req.password.contains('\0') {
            return Err(invalid("password", "contains a NUL character"));
        }
        let generated = if req.password.is_empty() {
            Some(crate::auth::generate_password().map_err(internal)?)
        } else {
            None
        };
        let password = generated.as_deref().unwrap_or(&req.password);
        let hash = crate::auth::hash_password(password).map_err(|e| match e {
            crate::auth::PasswordError::Length => invalid("password", e.to_string()),
            other => internal(other),
        })?;
        let user = self
            .store
            .create_user(caller.tenant_id, &req.name, role, &hash)
            .await
            .map_err(from_store)?;
        tracing::info!(tenant = %caller.tenant_name, user = %user.name, role = role.as_str(), "user created");
        Ok(Response::new(pb::CreateUserResponse {
            user: Some(convert::user(&user)),
            generated_password: generated.unwrap_or_default(),
        }))
    }

    async fn list_users(
        &self,
        request: Request<pb::ListUsersRequest>,
    ) -> Result<Response<pb::ListUsersResponse>, Status> {
        let caller = self.auth.authorize(&request, Scope::Admin).await?;
        let users = self
            .store
            .list_users(caller.tenant_id)
            .await
            .map_err(from_store)?;
        Ok(Response::new(pb::ListUsersResponse {
            users: users.iter().map(convert::user).collect(),
        }))
    }

    async fn disable_user(
        &self,
        request: Request<pb::DisableUserRequest>,
    ) -> Result<Response<pb::DisableUserResponse>, Status> {
        let caller = self.auth.authorize(&request, Scope::Admin).await?;
        let name = request.into_inner().name;
        if !crate::domain::valid_user_name(&name) {
            return Err(invalid("name", "not a user name"));
        }
        let user = self
            .store
            .disable_user(caller.tenant_id, &name)
            .await
            .map_err(from_store)?;
        tracing::info!(tenant = %caller.tenant_name, user = %user.name, "user disabled");
        Ok(Response::new(pb::DisableUserResponse {
            user: Some(convert::user(&user)),
        }))
    }

    async fn create_receiver(
        &self,
        request: Request<pb::CreateReceiverRequest>,
    ) -> Result<Response<pb::CreateReceiverResponse>, Status> {
        let caller = self.auth.authorize(&request, Scope::Admin).await?;
        super::receivers::create(&self.store, &self.notify, &caller, request.into_inner()).await
    }

    async fn list_receivers(
        &self,
        request: Request<pb::ListReceiversRequest>,
    ) -> Result<Response<pb::ListReceiversResponse>, Status> {
        let caller = self.auth.authorize(&request, Scope::Admin).await?;
        super::receivers::list(&self.store, &caller).await
    }

    async fn update_receiver(
        &self,
        request: Request<pb::UpdateReceiverRequest>,
    ) -> Result<Response<pb::UpdateReceiverResponse>, Status> {
        let caller = self.auth.authorize(&request, Scope::Admin).await?;
        super::receivers::update(&self.store, &self.notify, &caller, request.into_inner()).await
    }

    async fn delete_receiver(
        &self,
        request: Request<pb::DeleteReceiverRequest>,
    ) -> Result<Response<pb::DeleteReceiverResponse>, Status> {
        let caller = self.auth.authorize(&request, Scope::Admin).await?;
        super::receivers::delete(&self.store, &caller, request.into_inner()).await
    }

    async fn test_receiver(
        &self,
        request: Request<pb::TestReceiverRequest>,
    ) -> Result<Response<pb::TestReceiverResponse>, Status> {
        let caller = self.auth.authorize(&request, Scope::Admin).await?;
        super::receivers::test(&self.store, &self.notify, &caller, request.into_inner()).await
    }

    async fn set_routes(
        &self,
        request: Request<pb::SetRoutesRequest>,
    ) -> Result<Response<pb::SetRoutesResponse>, Status> {
        let caller = self.auth.authorize(&request, Scope::Admin).await?;
        super::routes::set(&self.store, &caller, request.into_inner()).await
    }

    async fn list_routes(
        &self,
        request: Request<pb::ListRoutesRequest>,
    ) -> Result<Response<pb::ListRoutesResponse>, Status> {
        let caller = self.auth.authorize(&request, Scope::Admin).await?;
        super::routes::list(&self.store, &caller).await
    }

    async fn create_silence(
        &self,
        request: Request<pb::CreateSilenceRequest>,
    ) -> Result<Response<pb::CreateSilenceResponse>, Status> {
        let caller = self.auth.authorize(&request, Scope::Admin).await?;
        super::routes::create_silence(&self.store, &caller, request.into_inner()).await
    }

    async fn list_silences(
        &self,
        request: Request<pb::ListSilencesRequest>,
    ) -> Result<Response<pb::ListSilencesResponse>, Status> {
        let caller = self.auth.authorize(&request, Scope::Admin).await?;
        super::routes::list_silences(&self.store, &caller, request.into_inner()).await
    }

    async fn expire_silence(
        &self,
        request: Request<pb::ExpireSilenceRequest>,
    ) -> Result<Response<pb::ExpireSilenceResponse>, Status> {
        let caller = self.auth.authorize(&request, Scope::Admin).await?;
        super::routes::expire_silence(&self.store, &caller, request.into_inner()).await
    }

    async fn set_objective(
        &self,
        request: Request<pb::SetObjectiveRequest>,
    ) -> Result<Response<pb::SetObjectiveResponse>, Status> {
        let caller = self.auth.authorize(&request, Scope::Admin).await?;
        super::objectives::set(&self.store, &caller, request.into_inner()).await
    }

    async fn list_objectives(
        &self,
        request: Request<pb::ListObjectivesRequest>,
    ) -> Result<Response<pb::ListObjectivesResponse>, Status> {
        let caller = self.auth.authorize(&request, Scope::Admin).await?;
        super::objectives::list(&self.store, &caller, request.into_inner()).await
    }

    async fn delete_objective(
        &self,
        request: Request<pb::DeleteObjectiveRequest>,
    ) -> Result<Response<pb::DeleteObjectiveResponse>, Status> {
        let caller = self.auth.authorize(&request, Scope::Admin).await?;
        super::objectives::delete(&self.store, &caller, request.into_inner()).await
    }
}

const DAY: std::time::Duration = std::time::Duration::from_secs(86_400);

/// An override as a request states it; `field` prefixes the field names in errors.
fn rule_from_pb(rule: &pb::DetectionRule, field: &str) -> Result<(Kind, String, Override), Status> {
    let name = |f: &str| format!("{field}.{f}");
    let kind = rule_kind(rule.kind, &name("kind"))?;
    let service = rule_service(&rule.service)?;
    if rule.window.is_some_and(|w| w.seconds != 0 || w.nanos != 0) {
        return Err(invalid(
            &name("window"),
            "fixed: the detector reads the previous minute and the current one",
        ));
    }
    let set = |v: f64| (v != 0.0).then_some(v);
    if kind != Kind::LatencyP95
        && (rule.relative_factor.is_some() || rule.relative_min_ms.is_some())
    {
        return Err(invalid(
            &name("relative_factor"),
            "only latency_p95 has a relative bar",
        ));
    }
    let o = Override {
        enabled: Some(rule.enabled),
        threshold: set(rule.threshold),
        baseline_factor: set(rule.baseline_factor),
        min_requests: set(f64::from(rule.min_requests)),
        critical_at: None,
        fire_after: (rule.fire_after != 0).then_some(rule.fire_after),
        clear_after: (rule.clear_after != 0).then_some(rule.clear_after),
        severity: severity_from_pb(&name("severity"), rule.severity)?,
        relative_factor: rule.relative_factor,
        relative_min: rule.relative_min_ms,
    };
    Settings::defaults(kind)
        .overlay(&o)
        .check(kind)
        .map_err(|problem| invalid(field, problem))?;
    Ok((kind, service, o))
}

fn rule_service(service: &str) -> Result<String, Status> {
    if service.len() > 128 || service.contains('\0') {
        return Err(invalid("service", "at most 128 bytes, no NUL"));
    }
    Ok(service.to_owned())
}

fn overrides_map(tenant: TenantId, stored: &[(String, Kind, Override)]) -> Overrides {
    stored
        .iter()
        .map(|(s, k, o)| ((tenant, s.clone(), *k), o.clone()))
        .collect()
}

/// The rule a request names (`None`: unspecified); `kind` names the field.
pub(super) fn kind_from_pb(value: i32) -> Result<Option<Kind>, Status> {
    match pb::AlertKind::try_from(value) {
        Ok(pb::AlertKind::Unspecified) => Ok(None),
        Ok(pb::AlertKind::ErrorRate) => Ok(Some(Kind::ErrorRate)),
        Ok(pb::AlertKind::LatencyP95) => Ok(Some(Kind::LatencyP95)),
        Ok(pb::AlertKind::TrafficDrop) => Ok(Some(Kind::TrafficDrop)),
        Ok(pb::AlertKind::ReceiverFailing) => Ok(Some(Kind::ReceiverFailing)),
        Ok(pb::AlertKind::AvailabilityBurn) => Ok(Some(Kind::AvailabilityBurn)),
        Ok(pb::AlertKind::LatencyBurn) => Ok(Some(Kind::LatencyBurn)),
        Err(_) => Err(invalid("kind", format!("unknown alert kind {value}"))),
    }
}

/// The detection rule a request names in `field` (required).
fn rule_kind(value: i32, field: &str) -> Result<Kind, Status> {
    match kind_from_pb(value)? {
        Some(kind) if kind.is_rule() => Ok(kind),
        Some(_) => Err(invalid(field, "not a detection rule")),
        None => Err(invalid(field, "required")),
    }
}

/// The detector's window: the previous minute and the current one, at most 120 s.
const WINDOW: prost_types::Duration = prost_types::Duration {
    seconds: 120,
    nanos: 0,
};

fn rule_to_pb(kind: Kind, service: &str, s: &Settings) -> pb::DetectionRule {
    pb::DetectionRule {
        kind: kind_to_pb(kind),
        service: service.to_owned(),
        enabled: s.enabled,
        threshold: s.threshold,
        baseline_factor: s.baseline_factor,
        min_requests: s.min_requests as u32,
        window: Some(WINDOW),
        fire_after: s.fire_after,
        clear_after: s.clear_after,
        severity: s.severity.map(severity_to_pb).unwrap_or_default(),
        relative_factor: (kind == Kind::LatencyP95).then_some(s.relative_factor),
        relative_min_ms: (kind == Kind::LatencyP95).then_some(s.relative_min),
    }
}

fn override_to_pb(kind: Kind, service: &str, o: &Override) -> pb::DetectionRule {
    pb::DetectionRule {
        kind: kind_to_pb(kind),
        service: service.to_owned(),
        enabled: o.enabled.unwrap_or(true),
        threshold: o.threshold.unwrap_or_default(),
        baseline_factor: o.baseline_factor.unwrap_or_default(),
        min_requests: o.min_requests.unwrap_or_default() as u32,
        window: None,
        fire_after: o.fire_after.unwrap_or_default(),
        clear_after: o.clear_after.unwrap_or_default(),
        severity: o.severity.map(severity_to_pb).unwrap_or_default(),
        relative_factor: o.relative_factor,
        relative_min_ms: o.relative_min,
    }
}

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
    status::{from_store, invalid, not_yet},
};
use crate::{
    domain::{ApiKeySecret, Scope, Tenant, valid_tenant_name},
    proto::v1::{self as pb, admin_server::Admin},
    store::Store,
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
}

fn new_secret() -> Result<ApiKeySecret, Status> {
    ApiKeySecret::generate().map_err(|err| {
        tracing::error!(error = %err, "no randomness for a new key");
        Status::internal("internal error")
    })
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

    async fn list_detection_rules(
        &self,
        request: Request<pb::ListDetectionRulesRequest>,
    ) -> Result<Response<pb::ListDetectionRulesResponse>, Status> {
        self.auth.authorize(&request, Scope::Admin).await?;
        Err(not_yet(
            "Admin.ListDetectionRules",
            "the incidents issue (detection)",
        ))
    }

    async fn set_detection_rule(
        &self,
        request: Request<pb::SetDetectionRuleRequest>,
    ) -> Result<Response<pb::SetDetectionRuleResponse>, Status> {
        self.auth.authorize(&request, Scope::Admin).await?;
        Err(not_yet(
            "Admin.SetDetectionRule",
            "the incidents issue (detection)",
        ))
    }

    async fn delete_detection_rule(
        &self,
        request: Request<pb::DeleteDetectionRuleRequest>,
    ) -> Result<Response<pb::DeleteDetectionRuleResponse>, Status> {
        self.auth.authorize(&request, Scope::Admin).await?;
        Err(not_yet(
            "Admin.DeleteDetectionRule",
            "the incidents issue (detection)",
        ))
    }
}

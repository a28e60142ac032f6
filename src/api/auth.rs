//! The gRPC side of authentication: a call's `authorization` metadata given
//! to the transport-neutral `crate::auth`, and its refusals as statuses
//! (through `status::from_auth`, the one mapping).

use tonic::{Request, Status, codegen::http::HeaderMap};

use super::status::from_auth;
pub use crate::auth::{Authenticator, KeyCheck};
use crate::domain::{Principal, Scope};

impl Authenticator {
    /// The caller of `request`, if its key is valid and holds `scope`.
    pub async fn authorize<T>(
        &self,
        request: &Request<T>,
        scope: Scope,
    ) -> Result<Principal, Status> {
        Ok(self.authorize_stream(request, scope).await?.0)
    }

    /// As [`Authenticator::authorize`], with the key's check for a long
    /// stream: [`Authenticator::revoked`] ends when the key stops working.
    pub async fn authorize_stream<T>(
        &self,
        request: &Request<T>,
        scope: Scope,
    ) -> Result<(Principal, KeyCheck), Status> {
        let metadata = request.metadata();
        let value = |name| metadata.get(name).map(|v| v.to_str().map_err(|_| ()));
        self.authenticate(value("authorization"), value("x-api-key"), scope)
            .await
            .map_err(from_auth)
    }

    /// Whether the `authorization` header among `headers` holds a valid key
    /// with `scope` (for [`super::preauth`], before a body is read).
    pub async fn check_headers(&self, headers: &HeaderMap, scope: Scope) -> Result<(), Status> {
        let value = |name| headers.get(name).map(|v| v.to_str());
        self.authenticate(value("authorization"), value("x-api-key"), scope)
            .await
            .map(|_| ())
            .map_err(from_auth)
    }

    /// The caller of a query call (`read` scope), admitted by its tenant's
    /// bound on concurrent queries: the pass is held for the call.
    pub async fn admit_query<T>(
        &self,
        request: &Request<T>,
        gate: &std::sync::Arc<crate::query::gate::QueryGate>,
    ) -> Result<(Principal, crate::query::gate::Running), Status> {
        let caller = self.authorize(request, Scope::Read).await?;
        let running = gate
            .enter(caller.tenant_id, &caller.tenant_name)
            .map_err(super::status::from_busy)?;
        Ok((caller, running))
    }

    /// Resolves, with the status to end a stream with, once the key of
    /// `check` stops working.
    pub async fn revoked_status(&self, check: KeyCheck) -> Status {
        from_auth(self.revoked(check).await)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_missing_or_malformed_key_is_unauthenticated_before_any_lookup() {
        let mut headers = HeaderMap::new();
        // No store is reached: parsing the header fails first.
        for value in [
            None,
            Some("pls_abc"),
            Some("Basic pls_abc"),
            Some("Bearer "),
        ] {
            headers.clear();
            if let Some(v) = value {
                headers.insert("authorization", v.parse().unwrap());
            }
            let header = headers.get("authorization").map(|v| v.to_str());
            let err = crate::auth::bearer_secret(header).unwrap_err();
            assert_eq!(
                from_auth(err).code(),
                tonic::Code::Unauthenticated,
                "{value:?}"
            );
        }
    }
}

//! The dashboard's session door, `/api/v1/session` on the HTTP port:
//! `POST` logs in (`{"tenant", "user", "password"}` or `{"api_key"}`) and
//! sets the session cookie; `GET` says who the cookie's session is; `DELETE`
//! logs out. The cookie is `HttpOnly`, `SameSite=Strict`, `Path=/`, and holds
//! a random token whose SHA-256 alone is stored (`crate::auth::Logins`).
//! Refusals are JSON `{"error": ...}` with the HTTP status that fits; a
//! password or token is never logged.

use std::{future::Future, pin::Pin, sync::Arc};

use http_body_util::{BodyExt, Full, Limited};
use hyper::{
    Method, Request, Response, StatusCode,
    body::{Bytes, Incoming},
};
use serde::Deserialize;

use crate::{
    auth::{LoginError, Logins},
    ops::Door,
    store::{StoreError, users::SessionInfo},
};

/// The cookie's name.
pub const COOKIE: &str = "pulsyon_session";

/// Largest login body.
const MAX_BODY: usize = 4 * 1024;

/// What a login sends.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Login {
    tenant: Option<String>,
    user: Option<String>,
    password: Option<String>,
    api_key: Option<String>,
}

/// The session door.
#[derive(Debug)]
pub struct SessionDoor {
    /// Logins and sessions.
    pub logins: Arc<Logins>,
}

fn json(status: StatusCode, body: serde_json::Value) -> Response<Full<Bytes>> {
    Response::builder()
        .status(status)
        .header("content-type", "application/json")
        .header("cache-control", "no-store")
        .header("x-content-type-options", "nosniff")
        .body(Full::new(Bytes::from(body.to_string())))
        .unwrap_or_default()
}

fn error(status: StatusCode, message: impl std::fmt::Display) -> Response<Full<Bytes>> {
    json(status, serde_json::json!({ "error": message.to_string() }))
}

fn refusal(err: LoginError) -> Response<Full<Bytes>> {
    match err {
        LoginError::Refused | LoginError::NoSession => error(StatusCode::UNAUTHORIZED, err),
        LoginError::KeyCannotRead => error(StatusCode::FORBIDDEN, err),
        LoginError::Throttled(left) => {
            let mut response = error(StatusCode::TOO_MANY_REQUESTS, &err);
            if let Ok(v) = left.as_secs().max(1).to_string().parse() {
                response.headers_mut().insert("retry-after", v);
            }
            response
        }
        LoginError::Store(StoreError::Unavailable(_) | StoreError::Busy(_)) => error(
            StatusCode::SERVICE_UNAVAILABLE,
            "the database is unavailable; retry later",
        ),
        other => {
            tracing::error!(error = %other, "session door failed");
            error(StatusCode::INTERNAL_SERVER_ERROR, "internal error")
        }
    }
}

fn described(session: &SessionInfo) -> serde_json::Value {
    serde_json::json!({
        "tenant": session.tenant_name,
        "actor": session.actor,
        "role": session.role.as_str(),
        "expires_at": session
            .expires_at
            .format(&time::format_description::well_known::Rfc3339)
            .unwrap_or_default(),
    })
}

/// The session token of the request's cookie header, if any.
pub fn cookie_token<B>(request: &Request<B>) -> Option<String> {
    request
        .headers()
        .get_all("cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == COOKIE)
        .map(|(_, value)| value.to_owned())
        .filter(|v| !v.is_empty())
}

impl SessionDoor {
    async fn login(&self, request: Request<Incoming>) -> Response<Full<Bytes>> {
        let json_body = request
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.split(';').next().unwrap_or_default().trim() == "application/json");
        if !json_body {
            return error(StatusCode::UNSUPPORTED_MEDIA_TYPE, "send application/json");
        }
        let body = match Limited::new(request.into_body(), MAX_BODY).collect().await {
            Ok(body) => body.to_bytes(),
            Err(_) => {
                return error(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    format!("a login is at most {MAX_BODY} bytes"),
                );
            }
        };
        let login: Login = match serde_json::from_slice(&body) {
            Ok(login) => login,
            Err(e) => return error(StatusCode::BAD_REQUEST, format!("invalid login: {e}")),
        };
        let made = match login {
            Login {
                api_key: Some(key),
                tenant: None,
                user: None,
                password: None,
            } => self.logins.with_key(&key).await,
            Login {
                api_key: None,
                tenant: Some(tenant),
                user: Some(user),
                password: Some(password),
            } => self.logins.with_password(&tenant, &user, &password).await,
            _ => {
                return error(
                    StatusCode::BAD_REQUEST,
                    "send {\"tenant\", \"user\", \"password\"} or {\"api_key\"}",
                );
            }
        };
        match made {
            Ok(session) => {
                let seconds = (session.info.expires_at - time::OffsetDateTime::now_utc())
                    .whole_seconds()
                    .max(0);
                tracing::info!(tenant = %session.info.tenant_name, actor = %session.info.actor, "dashboard login");
                let mut response = json(StatusCode::OK, described(&session.info));
                let cookie = format!(
                    "{COOKIE}={}; HttpOnly; SameSite=Strict; Path=/; Max-Age={seconds}",
                    session.token
                );
                if let Ok(v) = cookie.parse() {
                    response.headers_mut().insert("set-cookie", v);
                }
                response
            }
            Err(err) => refusal(err),
        }
    }
}

impl Door for SessionDoor {
    fn path(&self) -> &'static str {
        "/api/v1/session"
    }

    fn handle(
        &self,
        request: Request<Incoming>,
    ) -> Pin<Box<dyn Future<Output = Response<Full<Bytes>>> + Send + '_>> {
        Box::pin(async move {
            let token = cookie_token(&request);
            match *request.method() {
                Method::POST => self.login(request).await,
                Method::GET => match token {
                    None => refusal(LoginError::NoSession),
                    Some(token) => match self.logins.session(&token).await {
                        Ok(session) => json(StatusCode::OK, described(&session)),
                        Err(err) => refusal(err),
                    },
                },
                Method::DELETE => match token {
                    None => refusal(LoginError::NoSession),
                    Some(token) => match self.logins.logout(&token).await {
                        Ok(()) => {
                            let mut response = Response::builder()
                                .status(StatusCode::NO_CONTENT)
                                .header("cache-control", "no-store")
                                .body(Full::new(Bytes::new()))
                                .unwrap_or_default();
                            let gone =
                                format!("{COOKIE}=; HttpOnly; SameSite=Strict; Path=/; Max-Age=0");
                            if let Ok(v) = gone.parse() {
                                response.headers_mut().insert("set-cookie", v);
                            }
                            response
                        }
                        Err(err) => refusal(err),
                    },
                },
                _ => error(StatusCode::METHOD_NOT_ALLOWED, "POST, GET or DELETE"),
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_session_cookie_is_found_among_others() {
        let request = Request::builder()
            .header("cookie", "theme=dark; pulsyon_session=abc123; other=1")
            .body(())
            .unwrap();
        assert_eq!(cookie_token(&request).as_deref(), Some("abc123"));
        let none = Request::builder()
            .header("cookie", "pulsyon_session=")
            .body(())
            .unwrap();
        assert_eq!(cookie_token(&none), None);
    }
}

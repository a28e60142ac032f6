import datetime

from google.protobuf import duration_pb2 as _duration_pb2
from google.protobuf import timestamp_pb2 as _timestamp_pb2
from pulsyon.v1 import incidents_pb2 as _incidents_pb2
from pulsyon.v1 import objective_pb2 as _objective_pb2
from pulsyon.v1 import query_pb2 as _query_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class Scope(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    SCOPE_UNSPECIFIED: _ClassVar[Scope]
    SCOPE_INGEST: _ClassVar[Scope]
    SCOPE_READ: _ClassVar[Scope]
    SCOPE_ADMIN: _ClassVar[Scope]

class UserRole(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    USER_ROLE_UNSPECIFIED: _ClassVar[UserRole]
    USER_ROLE_VIEWER: _ClassVar[UserRole]
    USER_ROLE_RESPONDER: _ClassVar[UserRole]
    USER_ROLE_ADMIN: _ClassVar[UserRole]

class ReceiverKind(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    RECEIVER_KIND_UNSPECIFIED: _ClassVar[ReceiverKind]
    RECEIVER_KIND_WEBHOOK: _ClassVar[ReceiverKind]
    RECEIVER_KIND_SLACK: _ClassVar[ReceiverKind]
    RECEIVER_KIND_PAGERDUTY: _ClassVar[ReceiverKind]
    RECEIVER_KIND_EMAIL: _ClassVar[ReceiverKind]

class WebhookFormat(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    WEBHOOK_FORMAT_UNSPECIFIED: _ClassVar[WebhookFormat]
    WEBHOOK_FORMAT_PULSYON: _ClassVar[WebhookFormat]
    WEBHOOK_FORMAT_ALERTMANAGER: _ClassVar[WebhookFormat]

class SmtpTls(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    SMTP_TLS_UNSPECIFIED: _ClassVar[SmtpTls]
    SMTP_TLS_STARTTLS: _ClassVar[SmtpTls]
    SMTP_TLS_IMPLICIT: _ClassVar[SmtpTls]
    SMTP_TLS_NONE: _ClassVar[SmtpTls]

class SilenceKind(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    SILENCE_KIND_UNSPECIFIED: _ClassVar[SilenceKind]
    SILENCE_KIND_SILENCE: _ClassVar[SilenceKind]
    SILENCE_KIND_MAINTENANCE: _ClassVar[SilenceKind]
SCOPE_UNSPECIFIED: Scope
SCOPE_INGEST: Scope
SCOPE_READ: Scope
SCOPE_ADMIN: Scope
USER_ROLE_UNSPECIFIED: UserRole
USER_ROLE_VIEWER: UserRole
USER_ROLE_RESPONDER: UserRole
USER_ROLE_ADMIN: UserRole
RECEIVER_KIND_UNSPECIFIED: ReceiverKind
RECEIVER_KIND_WEBHOOK: ReceiverKind
RECEIVER_KIND_SLACK: ReceiverKind
RECEIVER_KIND_PAGERDUTY: ReceiverKind
RECEIVER_KIND_EMAIL: ReceiverKind
WEBHOOK_FORMAT_UNSPECIFIED: WebhookFormat
WEBHOOK_FORMAT_PULSYON: WebhookFormat
WEBHOOK_FORMAT_ALERTMANAGER: WebhookFormat
SMTP_TLS_UNSPECIFIED: SmtpTls
SMTP_TLS_STARTTLS: SmtpTls
SMTP_TLS_IMPLICIT: SmtpTls
SMTP_TLS_NONE: SmtpTls
SILENCE_KIND_UNSPECIFIED: SilenceKind
SILENCE_KIND_SILENCE: SilenceKind
SILENCE_KIND_MAINTENANCE: SilenceKind

class Tenant(_message.Message):
    __slots__ = ("name", "created_at")
    NAME_FIELD_NUMBER: _ClassVar[int]
    CREATED_AT_FIELD_NUMBER: _ClassVar[int]
    name: str
    created_at: _timestamp_pb2.Timestamp
    def __init__(self, name: _Optional[str] = ..., created_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class ApiKey(_message.Message):
    __slots__ = ("key_id", "name", "prefix", "scopes", "created_at", "last_used_at", "revoked_at", "tenant")
    KEY_ID_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    PREFIX_FIELD_NUMBER: _ClassVar[int]
    SCOPES_FIELD_NUMBER: _ClassVar[int]
    CREATED_AT_FIELD_NUMBER: _ClassVar[int]
    LAST_USED_AT_FIELD_NUMBER: _ClassVar[int]
    REVOKED_AT_FIELD_NUMBER: _ClassVar[int]
    TENANT_FIELD_NUMBER: _ClassVar[int]
    key_id: str
    name: str
    prefix: str
    scopes: _containers.RepeatedScalarFieldContainer[Scope]
    created_at: _timestamp_pb2.Timestamp
    last_used_at: _timestamp_pb2.Timestamp
    revoked_at: _timestamp_pb2.Timestamp
    tenant: str
    def __init__(self, key_id: _Optional[str] = ..., name: _Optional[str] = ..., prefix: _Optional[str] = ..., scopes: _Optional[_Iterable[_Union[Scope, str]]] = ..., created_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., last_used_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., revoked_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., tenant: _Optional[str] = ...) -> None: ...

class CreateTenantRequest(_message.Message):
    __slots__ = ("name",)
    NAME_FIELD_NUMBER: _ClassVar[int]
    name: str
    def __init__(self, name: _Optional[str] = ...) -> None: ...

class CreateTenantResponse(_message.Message):
    __slots__ = ("tenant", "api_key", "secret")
    TENANT_FIELD_NUMBER: _ClassVar[int]
    API_KEY_FIELD_NUMBER: _ClassVar[int]
    SECRET_FIELD_NUMBER: _ClassVar[int]
    tenant: Tenant
    api_key: ApiKey
    secret: str
    def __init__(self, tenant: _Optional[_Union[Tenant, _Mapping]] = ..., api_key: _Optional[_Union[ApiKey, _Mapping]] = ..., secret: _Optional[str] = ...) -> None: ...

class CreateApiKeyRequest(_message.Message):
    __slots__ = ("name", "scopes")
    NAME_FIELD_NUMBER: _ClassVar[int]
    SCOPES_FIELD_NUMBER: _ClassVar[int]
    name: str
    scopes: _containers.RepeatedScalarFieldContainer[Scope]
    def __init__(self, name: _Optional[str] = ..., scopes: _Optional[_Iterable[_Union[Scope, str]]] = ...) -> None: ...

class CreateApiKeyResponse(_message.Message):
    __slots__ = ("api_key", "secret")
    API_KEY_FIELD_NUMBER: _ClassVar[int]
    SECRET_FIELD_NUMBER: _ClassVar[int]
    api_key: ApiKey
    secret: str
    def __init__(self, api_key: _Optional[_Union[ApiKey, _Mapping]] = ..., secret: _Optional[str] = ...) -> None: ...

class ListApiKeysRequest(_message.Message):
    __slots__ = ("include_revoked",)
    INCLUDE_REVOKED_FIELD_NUMBER: _ClassVar[int]
    include_revoked: bool
    def __init__(self, include_revoked: _Optional[bool] = ...) -> None: ...

class ListApiKeysResponse(_message.Message):
    __slots__ = ("api_keys",)
    API_KEYS_FIELD_NUMBER: _ClassVar[int]
    api_keys: _containers.RepeatedCompositeFieldContainer[ApiKey]
    def __init__(self, api_keys: _Optional[_Iterable[_Union[ApiKey, _Mapping]]] = ...) -> None: ...

class RevokeApiKeyRequest(_message.Message):
    __slots__ = ("key_id",)
    KEY_ID_FIELD_NUMBER: _ClassVar[int]
    key_id: str
    def __init__(self, key_id: _Optional[str] = ...) -> None: ...

class RevokeApiKeyResponse(_message.Message):
    __slots__ = ("api_key",)
    API_KEY_FIELD_NUMBER: _ClassVar[int]
    api_key: ApiKey
    def __init__(self, api_key: _Optional[_Union[ApiKey, _Mapping]] = ...) -> None: ...

class DetectionRule(_message.Message):
    __slots__ = ("kind", "service", "enabled", "threshold", "baseline_factor", "min_requests", "window", "fire_after", "clear_after", "severity", "relative_factor", "relative_min_ms")
    KIND_FIELD_NUMBER: _ClassVar[int]
    SERVICE_FIELD_NUMBER: _ClassVar[int]
    ENABLED_FIELD_NUMBER: _ClassVar[int]
    THRESHOLD_FIELD_NUMBER: _ClassVar[int]
    BASELINE_FACTOR_FIELD_NUMBER: _ClassVar[int]
    MIN_REQUESTS_FIELD_NUMBER: _ClassVar[int]
    WINDOW_FIELD_NUMBER: _ClassVar[int]
    FIRE_AFTER_FIELD_NUMBER: _ClassVar[int]
    CLEAR_AFTER_FIELD_NUMBER: _ClassVar[int]
    SEVERITY_FIELD_NUMBER: _ClassVar[int]
    RELATIVE_FACTOR_FIELD_NUMBER: _ClassVar[int]
    RELATIVE_MIN_MS_FIELD_NUMBER: _ClassVar[int]
    kind: _incidents_pb2.AlertKind
    service: str
    enabled: bool
    threshold: float
    baseline_factor: float
    min_requests: int
    window: _duration_pb2.Duration
    fire_after: int
    clear_after: int
    severity: _incidents_pb2.Severity
    relative_factor: float
    relative_min_ms: float
    def __init__(self, kind: _Optional[_Union[_incidents_pb2.AlertKind, str]] = ..., service: _Optional[str] = ..., enabled: _Optional[bool] = ..., threshold: _Optional[float] = ..., baseline_factor: _Optional[float] = ..., min_requests: _Optional[int] = ..., window: _Optional[_Union[datetime.timedelta, _duration_pb2.Duration, _Mapping]] = ..., fire_after: _Optional[int] = ..., clear_after: _Optional[int] = ..., severity: _Optional[_Union[_incidents_pb2.Severity, str]] = ..., relative_factor: _Optional[float] = ..., relative_min_ms: _Optional[float] = ...) -> None: ...

class ListDetectionRulesRequest(_message.Message):
    __slots__ = ("service",)
    SERVICE_FIELD_NUMBER: _ClassVar[int]
    service: str
    def __init__(self, service: _Optional[str] = ...) -> None: ...

class ListDetectionRulesResponse(_message.Message):
    __slots__ = ("effective", "overrides")
    EFFECTIVE_FIELD_NUMBER: _ClassVar[int]
    OVERRIDES_FIELD_NUMBER: _ClassVar[int]
    effective: _containers.RepeatedCompositeFieldContainer[DetectionRule]
    overrides: _containers.RepeatedCompositeFieldContainer[DetectionRule]
    def __init__(self, effective: _Optional[_Iterable[_Union[DetectionRule, _Mapping]]] = ..., overrides: _Optional[_Iterable[_Union[DetectionRule, _Mapping]]] = ...) -> None: ...

class SetDetectionRuleRequest(_message.Message):
    __slots__ = ("rule",)
    RULE_FIELD_NUMBER: _ClassVar[int]
    rule: DetectionRule
    def __init__(self, rule: _Optional[_Union[DetectionRule, _Mapping]] = ...) -> None: ...

class SetDetectionRuleResponse(_message.Message):
    __slots__ = ("effective",)
    EFFECTIVE_FIELD_NUMBER: _ClassVar[int]
    effective: DetectionRule
    def __init__(self, effective: _Optional[_Union[DetectionRule, _Mapping]] = ...) -> None: ...

class DeleteDetectionRuleRequest(_message.Message):
    __slots__ = ("kind", "service")
    KIND_FIELD_NUMBER: _ClassVar[int]
    SERVICE_FIELD_NUMBER: _ClassVar[int]
    kind: _incidents_pb2.AlertKind
    service: str
    def __init__(self, kind: _Optional[_Union[_incidents_pb2.AlertKind, str]] = ..., service: _Optional[str] = ...) -> None: ...

class DeleteDetectionRuleResponse(_message.Message):
    __slots__ = ("deleted",)
    DELETED_FIELD_NUMBER: _ClassVar[int]
    deleted: bool
    def __init__(self, deleted: _Optional[bool] = ...) -> None: ...

class BacktestDetectionRequest(_message.Message):
    __slots__ = ("range", "candidate_rules")
    RANGE_FIELD_NUMBER: _ClassVar[int]
    CANDIDATE_RULES_FIELD_NUMBER: _ClassVar[int]
    range: _query_pb2.TimeRange
    candidate_rules: _containers.RepeatedCompositeFieldContainer[DetectionRule]
    def __init__(self, range: _Optional[_Union[_query_pb2.TimeRange, _Mapping]] = ..., candidate_rules: _Optional[_Iterable[_Union[DetectionRule, _Mapping]]] = ...) -> None: ...

class BacktestIncident(_message.Message):
    __slots__ = ("service", "severity", "opened_at", "resolved_at", "reopen_count", "alerts")
    SERVICE_FIELD_NUMBER: _ClassVar[int]
    SEVERITY_FIELD_NUMBER: _ClassVar[int]
    OPENED_AT_FIELD_NUMBER: _ClassVar[int]
    RESOLVED_AT_FIELD_NUMBER: _ClassVar[int]
    REOPEN_COUNT_FIELD_NUMBER: _ClassVar[int]
    ALERTS_FIELD_NUMBER: _ClassVar[int]
    service: str
    severity: _incidents_pb2.Severity
    opened_at: _timestamp_pb2.Timestamp
    resolved_at: _timestamp_pb2.Timestamp
    reopen_count: int
    alerts: _containers.RepeatedCompositeFieldContainer[_incidents_pb2.Alert]
    def __init__(self, service: _Optional[str] = ..., severity: _Optional[_Union[_incidents_pb2.Severity, str]] = ..., opened_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., resolved_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., reopen_count: _Optional[int] = ..., alerts: _Optional[_Iterable[_Union[_incidents_pb2.Alert, _Mapping]]] = ...) -> None: ...

class BacktestDetectionResponse(_message.Message):
    __slots__ = ("incidents", "evaluations")
    INCIDENTS_FIELD_NUMBER: _ClassVar[int]
    EVALUATIONS_FIELD_NUMBER: _ClassVar[int]
    incidents: _containers.RepeatedCompositeFieldContainer[BacktestIncident]
    evaluations: int
    def __init__(self, incidents: _Optional[_Iterable[_Union[BacktestIncident, _Mapping]]] = ..., evaluations: _Optional[int] = ...) -> None: ...

class TenantLimits(_message.Message):
    __slots__ = ("events_per_second", "events_burst", "bytes_per_second", "bytes_burst", "max_streams", "max_services", "max_endpoints_per_service", "max_query_range", "max_page_size")
    EVENTS_PER_SECOND_FIELD_NUMBER: _ClassVar[int]
    EVENTS_BURST_FIELD_NUMBER: _ClassVar[int]
    BYTES_PER_SECOND_FIELD_NUMBER: _ClassVar[int]
    BYTES_BURST_FIELD_NUMBER: _ClassVar[int]
    MAX_STREAMS_FIELD_NUMBER: _ClassVar[int]
    MAX_SERVICES_FIELD_NUMBER: _ClassVar[int]
    MAX_ENDPOINTS_PER_SERVICE_FIELD_NUMBER: _ClassVar[int]
    MAX_QUERY_RANGE_FIELD_NUMBER: _ClassVar[int]
    MAX_PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    events_per_second: float
    events_burst: int
    bytes_per_second: float
    bytes_burst: int
    max_streams: int
    max_services: int
    max_endpoints_per_service: int
    max_query_range: _duration_pb2.Duration
    max_page_size: int
    def __init__(self, events_per_second: _Optional[float] = ..., events_burst: _Optional[int] = ..., bytes_per_second: _Optional[float] = ..., bytes_burst: _Optional[int] = ..., max_streams: _Optional[int] = ..., max_services: _Optional[int] = ..., max_endpoints_per_service: _Optional[int] = ..., max_query_range: _Optional[_Union[datetime.timedelta, _duration_pb2.Duration, _Mapping]] = ..., max_page_size: _Optional[int] = ...) -> None: ...

class GetTenantLimitsRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class GetTenantLimitsResponse(_message.Message):
    __slots__ = ("effective", "overrides", "defaults")
    EFFECTIVE_FIELD_NUMBER: _ClassVar[int]
    OVERRIDES_FIELD_NUMBER: _ClassVar[int]
    DEFAULTS_FIELD_NUMBER: _ClassVar[int]
    effective: TenantLimits
    overrides: TenantLimits
    defaults: TenantLimits
    def __init__(self, effective: _Optional[_Union[TenantLimits, _Mapping]] = ..., overrides: _Optional[_Union[TenantLimits, _Mapping]] = ..., defaults: _Optional[_Union[TenantLimits, _Mapping]] = ...) -> None: ...

class SetTenantLimitsRequest(_message.Message):
    __slots__ = ("overrides",)
    OVERRIDES_FIELD_NUMBER: _ClassVar[int]
    overrides: TenantLimits
    def __init__(self, overrides: _Optional[_Union[TenantLimits, _Mapping]] = ...) -> None: ...

class SetTenantLimitsResponse(_message.Message):
    __slots__ = ("effective", "overrides")
    EFFECTIVE_FIELD_NUMBER: _ClassVar[int]
    OVERRIDES_FIELD_NUMBER: _ClassVar[int]
    effective: TenantLimits
    overrides: TenantLimits
    def __init__(self, effective: _Optional[_Union[TenantLimits, _Mapping]] = ..., overrides: _Optional[_Union[TenantLimits, _Mapping]] = ...) -> None: ...

class User(_message.Message):
    __slots__ = ("user_id", "name", "role", "created_at", "disabled_at")
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    ROLE_FIELD_NUMBER: _ClassVar[int]
    CREATED_AT_FIELD_NUMBER: _ClassVar[int]
    DISABLED_AT_FIELD_NUMBER: _ClassVar[int]
    user_id: str
    name: str
    role: UserRole
    created_at: _timestamp_pb2.Timestamp
    disabled_at: _timestamp_pb2.Timestamp
    def __init__(self, user_id: _Optional[str] = ..., name: _Optional[str] = ..., role: _Optional[_Union[UserRole, str]] = ..., created_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., disabled_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class CreateUserRequest(_message.Message):
    __slots__ = ("name", "role", "password")
    NAME_FIELD_NUMBER: _ClassVar[int]
    ROLE_FIELD_NUMBER: _ClassVar[int]
    PASSWORD_FIELD_NUMBER: _ClassVar[int]
    name: str
    role: UserRole
    password: str
    def __init__(self, name: _Optional[str] = ..., role: _Optional[_Union[UserRole, str]] = ..., password: _Optional[str] = ...) -> None: ...

class CreateUserResponse(_message.Message):
    __slots__ = ("user", "generated_password")
    USER_FIELD_NUMBER: _ClassVar[int]
    GENERATED_PASSWORD_FIELD_NUMBER: _ClassVar[int]
    user: User
    generated_password: str
    def __init__(self, user: _Optional[_Union[User, _Mapping]] = ..., generated_password: _Optional[str] = ...) -> None: ...

class ListUsersRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class ListUsersResponse(_message.Message):
    __slots__ = ("users",)
    USERS_FIELD_NUMBER: _ClassVar[int]
    users: _containers.RepeatedCompositeFieldContainer[User]
    def __init__(self, users: _Optional[_Iterable[_Union[User, _Mapping]]] = ...) -> None: ...

class DisableUserRequest(_message.Message):
    __slots__ = ("name",)
    NAME_FIELD_NUMBER: _ClassVar[int]
    name: str
    def __init__(self, name: _Optional[str] = ...) -> None: ...

class DisableUserResponse(_message.Message):
    __slots__ = ("user",)
    USER_FIELD_NUMBER: _ClassVar[int]
    user: User
    def __init__(self, user: _Optional[_Union[User, _Mapping]] = ...) -> None: ...

class Receiver(_message.Message):
    __slots__ = ("name", "kind", "url", "secret_fingerprint", "webhook_format", "email_from", "email_to", "smtp_username", "smtp_tls", "created_at", "last_success_at", "last_error")
    NAME_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    URL_FIELD_NUMBER: _ClassVar[int]
    SECRET_FINGERPRINT_FIELD_NUMBER: _ClassVar[int]
    WEBHOOK_FORMAT_FIELD_NUMBER: _ClassVar[int]
    EMAIL_FROM_FIELD_NUMBER: _ClassVar[int]
    EMAIL_TO_FIELD_NUMBER: _ClassVar[int]
    SMTP_USERNAME_FIELD_NUMBER: _ClassVar[int]
    SMTP_TLS_FIELD_NUMBER: _ClassVar[int]
    CREATED_AT_FIELD_NUMBER: _ClassVar[int]
    LAST_SUCCESS_AT_FIELD_NUMBER: _ClassVar[int]
    LAST_ERROR_FIELD_NUMBER: _ClassVar[int]
    name: str
    kind: ReceiverKind
    url: str
    secret_fingerprint: str
    webhook_format: WebhookFormat
    email_from: str
    email_to: _containers.RepeatedScalarFieldContainer[str]
    smtp_username: str
    smtp_tls: SmtpTls
    created_at: _timestamp_pb2.Timestamp
    last_success_at: _timestamp_pb2.Timestamp
    last_error: str
    def __init__(self, name: _Optional[str] = ..., kind: _Optional[_Union[ReceiverKind, str]] = ..., url: _Optional[str] = ..., secret_fingerprint: _Optional[str] = ..., webhook_format: _Optional[_Union[WebhookFormat, str]] = ..., email_from: _Optional[str] = ..., email_to: _Optional[_Iterable[str]] = ..., smtp_username: _Optional[str] = ..., smtp_tls: _Optional[_Union[SmtpTls, str]] = ..., created_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., last_success_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., last_error: _Optional[str] = ...) -> None: ...

class CreateReceiverRequest(_message.Message):
    __slots__ = ("name", "kind", "url", "secret", "webhook_format", "email_from", "email_to", "smtp_username", "smtp_tls")
    NAME_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    URL_FIELD_NUMBER: _ClassVar[int]
    SECRET_FIELD_NUMBER: _ClassVar[int]
    WEBHOOK_FORMAT_FIELD_NUMBER: _ClassVar[int]
    EMAIL_FROM_FIELD_NUMBER: _ClassVar[int]
    EMAIL_TO_FIELD_NUMBER: _ClassVar[int]
    SMTP_USERNAME_FIELD_NUMBER: _ClassVar[int]
    SMTP_TLS_FIELD_NUMBER: _ClassVar[int]
    name: str
    kind: ReceiverKind
    url: str
    secret: str
    webhook_format: WebhookFormat
    email_from: str
    email_to: _containers.RepeatedScalarFieldContainer[str]
    smtp_username: str
    smtp_tls: SmtpTls
    def __init__(self, name: _Optional[str] = ..., kind: _Optional[_Union[ReceiverKind, str]] = ..., url: _Optional[str] = ..., secret: _Optional[str] = ..., webhook_format: _Optional[_Union[WebhookFormat, str]] = ..., email_from: _Optional[str] = ..., email_to: _Optional[_Iterable[str]] = ..., smtp_username: _Optional[str] = ..., smtp_tls: _Optional[_Union[SmtpTls, str]] = ...) -> None: ...

class CreateReceiverResponse(_message.Message):
    __slots__ = ("receiver", "generated_secret")
    RECEIVER_FIELD_NUMBER: _ClassVar[int]
    GENERATED_SECRET_FIELD_NUMBER: _ClassVar[int]
    receiver: Receiver
    generated_secret: str
    def __init__(self, receiver: _Optional[_Union[Receiver, _Mapping]] = ..., generated_secret: _Optional[str] = ...) -> None: ...

class ListReceiversRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class ListReceiversResponse(_message.Message):
    __slots__ = ("receivers",)
    RECEIVERS_FIELD_NUMBER: _ClassVar[int]
    receivers: _containers.RepeatedCompositeFieldContainer[Receiver]
    def __init__(self, receivers: _Optional[_Iterable[_Union[Receiver, _Mapping]]] = ...) -> None: ...

class UpdateReceiverRequest(_message.Message):
    __slots__ = ("name", "new_name", "url", "secret", "webhook_format", "email_from", "email_to", "smtp_username", "smtp_tls")
    NAME_FIELD_NUMBER: _ClassVar[int]
    NEW_NAME_FIELD_NUMBER: _ClassVar[int]
    URL_FIELD_NUMBER: _ClassVar[int]
    SECRET_FIELD_NUMBER: _ClassVar[int]
    WEBHOOK_FORMAT_FIELD_NUMBER: _ClassVar[int]
    EMAIL_FROM_FIELD_NUMBER: _ClassVar[int]
    EMAIL_TO_FIELD_NUMBER: _ClassVar[int]
    SMTP_USERNAME_FIELD_NUMBER: _ClassVar[int]
    SMTP_TLS_FIELD_NUMBER: _ClassVar[int]
    name: str
    new_name: str
    url: str
    secret: str
    webhook_format: WebhookFormat
    email_from: str
    email_to: _containers.RepeatedScalarFieldContainer[str]
    smtp_username: str
    smtp_tls: SmtpTls
    def __init__(self, name: _Optional[str] = ..., new_name: _Optional[str] = ..., url: _Optional[str] = ..., secret: _Optional[str] = ..., webhook_format: _Optional[_Union[WebhookFormat, str]] = ..., email_from: _Optional[str] = ..., email_to: _Optional[_Iterable[str]] = ..., smtp_username: _Optional[str] = ..., smtp_tls: _Optional[_Union[SmtpTls, str]] = ...) -> None: ...

class UpdateReceiverResponse(_message.Message):
    __slots__ = ("receiver",)
    RECEIVER_FIELD_NUMBER: _ClassVar[int]
    receiver: Receiver
    def __init__(self, receiver: _Optional[_Union[Receiver, _Mapping]] = ...) -> None: ...

class DeleteReceiverRequest(_message.Message):
    __slots__ = ("name",)
    NAME_FIELD_NUMBER: _ClassVar[int]
    name: str
    def __init__(self, name: _Optional[str] = ...) -> None: ...

class DeleteReceiverResponse(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class TestReceiverRequest(_message.Message):
    __slots__ = ("name",)
    NAME_FIELD_NUMBER: _ClassVar[int]
    name: str
    def __init__(self, name: _Optional[str] = ...) -> None: ...

class TestReceiverResponse(_message.Message):
    __slots__ = ("ok", "status", "error", "latency")
    OK_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    LATENCY_FIELD_NUMBER: _ClassVar[int]
    ok: bool
    status: int
    error: str
    latency: _duration_pb2.Duration
    def __init__(self, ok: _Optional[bool] = ..., status: _Optional[int] = ..., error: _Optional[str] = ..., latency: _Optional[_Union[datetime.timedelta, _duration_pb2.Duration, _Mapping]] = ...) -> None: ...

class Matchers(_message.Message):
    __slots__ = ("services", "endpoints", "severities", "kinds")
    SERVICES_FIELD_NUMBER: _ClassVar[int]
    ENDPOINTS_FIELD_NUMBER: _ClassVar[int]
    SEVERITIES_FIELD_NUMBER: _ClassVar[int]
    KINDS_FIELD_NUMBER: _ClassVar[int]
    services: _containers.RepeatedScalarFieldContainer[str]
    endpoints: _containers.RepeatedScalarFieldContainer[str]
    severities: _containers.RepeatedScalarFieldContainer[_incidents_pb2.Severity]
    kinds: _containers.RepeatedScalarFieldContainer[_incidents_pb2.AlertKind]
    def __init__(self, services: _Optional[_Iterable[str]] = ..., endpoints: _Optional[_Iterable[str]] = ..., severities: _Optional[_Iterable[_Union[_incidents_pb2.Severity, str]]] = ..., kinds: _Optional[_Iterable[_Union[_incidents_pb2.AlertKind, str]]] = ...) -> None: ...

class EscalationStep(_message.Message):
    __slots__ = ("after", "receivers")
    AFTER_FIELD_NUMBER: _ClassVar[int]
    RECEIVERS_FIELD_NUMBER: _ClassVar[int]
    after: _duration_pb2.Duration
    receivers: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, after: _Optional[_Union[datetime.timedelta, _duration_pb2.Duration, _Mapping]] = ..., receivers: _Optional[_Iterable[str]] = ...) -> None: ...

class NotificationRoute(_message.Message):
    __slots__ = ("matchers", "receivers", "changes", "continue_matching", "escalation", "repeat_interval", "group", "group_window")
    MATCHERS_FIELD_NUMBER: _ClassVar[int]
    RECEIVERS_FIELD_NUMBER: _ClassVar[int]
    CHANGES_FIELD_NUMBER: _ClassVar[int]
    CONTINUE_MATCHING_FIELD_NUMBER: _ClassVar[int]
    ESCALATION_FIELD_NUMBER: _ClassVar[int]
    REPEAT_INTERVAL_FIELD_NUMBER: _ClassVar[int]
    GROUP_FIELD_NUMBER: _ClassVar[int]
    GROUP_WINDOW_FIELD_NUMBER: _ClassVar[int]
    matchers: Matchers
    receivers: _containers.RepeatedScalarFieldContainer[str]
    changes: _containers.RepeatedScalarFieldContainer[_incidents_pb2.UpdateKind]
    continue_matching: bool
    escalation: _containers.RepeatedCompositeFieldContainer[EscalationStep]
    repeat_interval: _duration_pb2.Duration
    group: bool
    group_window: _duration_pb2.Duration
    def __init__(self, matchers: _Optional[_Union[Matchers, _Mapping]] = ..., receivers: _Optional[_Iterable[str]] = ..., changes: _Optional[_Iterable[_Union[_incidents_pb2.UpdateKind, str]]] = ..., continue_matching: _Optional[bool] = ..., escalation: _Optional[_Iterable[_Union[EscalationStep, _Mapping]]] = ..., repeat_interval: _Optional[_Union[datetime.timedelta, _duration_pb2.Duration, _Mapping]] = ..., group: _Optional[bool] = ..., group_window: _Optional[_Union[datetime.timedelta, _duration_pb2.Duration, _Mapping]] = ...) -> None: ...

class SetRoutesRequest(_message.Message):
    __slots__ = ("routes", "default_receivers", "fallback_receiver", "fallback_after")
    ROUTES_FIELD_NUMBER: _ClassVar[int]
    DEFAULT_RECEIVERS_FIELD_NUMBER: _ClassVar[int]
    FALLBACK_RECEIVER_FIELD_NUMBER: _ClassVar[int]
    FALLBACK_AFTER_FIELD_NUMBER: _ClassVar[int]
    routes: _containers.RepeatedCompositeFieldContainer[NotificationRoute]
    default_receivers: _containers.RepeatedScalarFieldContainer[str]
    fallback_receiver: str
    fallback_after: _duration_pb2.Duration
    def __init__(self, routes: _Optional[_Iterable[_Union[NotificationRoute, _Mapping]]] = ..., default_receivers: _Optional[_Iterable[str]] = ..., fallback_receiver: _Optional[str] = ..., fallback_after: _Optional[_Union[datetime.timedelta, _duration_pb2.Duration, _Mapping]] = ...) -> None: ...

class SetRoutesResponse(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class ListRoutesRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class ListRoutesResponse(_message.Message):
    __slots__ = ("routes", "default_receivers", "fallback_receiver", "fallback_after")
    ROUTES_FIELD_NUMBER: _ClassVar[int]
    DEFAULT_RECEIVERS_FIELD_NUMBER: _ClassVar[int]
    FALLBACK_RECEIVER_FIELD_NUMBER: _ClassVar[int]
    FALLBACK_AFTER_FIELD_NUMBER: _ClassVar[int]
    routes: _containers.RepeatedCompositeFieldContainer[NotificationRoute]
    default_receivers: _containers.RepeatedScalarFieldContainer[str]
    fallback_receiver: str
    fallback_after: _duration_pb2.Duration
    def __init__(self, routes: _Optional[_Iterable[_Union[NotificationRoute, _Mapping]]] = ..., default_receivers: _Optional[_Iterable[str]] = ..., fallback_receiver: _Optional[str] = ..., fallback_after: _Optional[_Union[datetime.timedelta, _duration_pb2.Duration, _Mapping]] = ...) -> None: ...

class Recurrence(_message.Message):
    __slots__ = ("weekdays", "to", "time_zone")
    WEEKDAYS_FIELD_NUMBER: _ClassVar[int]
    FROM_FIELD_NUMBER: _ClassVar[int]
    TO_FIELD_NUMBER: _ClassVar[int]
    TIME_ZONE_FIELD_NUMBER: _ClassVar[int]
    weekdays: _containers.RepeatedScalarFieldContainer[int]
    to: str
    time_zone: str
    def __init__(self, weekdays: _Optional[_Iterable[int]] = ..., to: _Optional[str] = ..., time_zone: _Optional[str] = ..., **kwargs) -> None: ...

class Silence(_message.Message):
    __slots__ = ("silence_id", "kind", "matchers", "starts_at", "ends_at", "recurrence", "until_resolved_incident_id", "created_by", "comment", "created_at", "expired_at")
    SILENCE_ID_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    MATCHERS_FIELD_NUMBER: _ClassVar[int]
    STARTS_AT_FIELD_NUMBER: _ClassVar[int]
    ENDS_AT_FIELD_NUMBER: _ClassVar[int]
    RECURRENCE_FIELD_NUMBER: _ClassVar[int]
    UNTIL_RESOLVED_INCIDENT_ID_FIELD_NUMBER: _ClassVar[int]
    CREATED_BY_FIELD_NUMBER: _ClassVar[int]
    COMMENT_FIELD_NUMBER: _ClassVar[int]
    CREATED_AT_FIELD_NUMBER: _ClassVar[int]
    EXPIRED_AT_FIELD_NUMBER: _ClassVar[int]
    silence_id: str
    kind: SilenceKind
    matchers: Matchers
    starts_at: _timestamp_pb2.Timestamp
    ends_at: _timestamp_pb2.Timestamp
    recurrence: Recurrence
    until_resolved_incident_id: str
    created_by: str
    comment: str
    created_at: _timestamp_pb2.Timestamp
    expired_at: _timestamp_pb2.Timestamp
    def __init__(self, silence_id: _Optional[str] = ..., kind: _Optional[_Union[SilenceKind, str]] = ..., matchers: _Optional[_Union[Matchers, _Mapping]] = ..., starts_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., ends_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., recurrence: _Optional[_Union[Recurrence, _Mapping]] = ..., until_resolved_incident_id: _Optional[str] = ..., created_by: _Optional[str] = ..., comment: _Optional[str] = ..., created_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., expired_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class CreateSilenceRequest(_message.Message):
    __slots__ = ("kind", "matchers", "starts_at", "ends_at", "duration", "recurrence", "until_resolved_incident_id", "created_by", "comment")
    KIND_FIELD_NUMBER: _ClassVar[int]
    MATCHERS_FIELD_NUMBER: _ClassVar[int]
    STARTS_AT_FIELD_NUMBER: _ClassVar[int]
    ENDS_AT_FIELD_NUMBER: _ClassVar[int]
    DURATION_FIELD_NUMBER: _ClassVar[int]
    RECURRENCE_FIELD_NUMBER: _ClassVar[int]
    UNTIL_RESOLVED_INCIDENT_ID_FIELD_NUMBER: _ClassVar[int]
    CREATED_BY_FIELD_NUMBER: _ClassVar[int]
    COMMENT_FIELD_NUMBER: _ClassVar[int]
    kind: SilenceKind
    matchers: Matchers
    starts_at: _timestamp_pb2.Timestamp
    ends_at: _timestamp_pb2.Timestamp
    duration: _duration_pb2.Duration
    recurrence: Recurrence
    until_resolved_incident_id: str
    created_by: str
    comment: str
    def __init__(self, kind: _Optional[_Union[SilenceKind, str]] = ..., matchers: _Optional[_Union[Matchers, _Mapping]] = ..., starts_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., ends_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., duration: _Optional[_Union[datetime.timedelta, _duration_pb2.Duration, _Mapping]] = ..., recurrence: _Optional[_Union[Recurrence, _Mapping]] = ..., until_resolved_incident_id: _Optional[str] = ..., created_by: _Optional[str] = ..., comment: _Optional[str] = ...) -> None: ...

class CreateSilenceResponse(_message.Message):
    __slots__ = ("silence",)
    SILENCE_FIELD_NUMBER: _ClassVar[int]
    silence: Silence
    def __init__(self, silence: _Optional[_Union[Silence, _Mapping]] = ...) -> None: ...

class ListSilencesRequest(_message.Message):
    __slots__ = ("include_ended",)
    INCLUDE_ENDED_FIELD_NUMBER: _ClassVar[int]
    include_ended: bool
    def __init__(self, include_ended: _Optional[bool] = ...) -> None: ...

class ListSilencesResponse(_message.Message):
    __slots__ = ("silences",)
    SILENCES_FIELD_NUMBER: _ClassVar[int]
    silences: _containers.RepeatedCompositeFieldContainer[Silence]
    def __init__(self, silences: _Optional[_Iterable[_Union[Silence, _Mapping]]] = ...) -> None: ...

class ExpireSilenceRequest(_message.Message):
    __slots__ = ("silence_id",)
    SILENCE_ID_FIELD_NUMBER: _ClassVar[int]
    silence_id: str
    def __init__(self, silence_id: _Optional[str] = ...) -> None: ...

class ExpireSilenceResponse(_message.Message):
    __slots__ = ("silence",)
    SILENCE_FIELD_NUMBER: _ClassVar[int]
    silence: Silence
    def __init__(self, silence: _Optional[_Union[Silence, _Mapping]] = ...) -> None: ...

class SetObjectiveRequest(_message.Message):
    __slots__ = ("service", "endpoint", "kind", "target_percent", "period", "count_4xx", "latency_threshold_ms")
    SERVICE_FIELD_NUMBER: _ClassVar[int]
    ENDPOINT_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    TARGET_PERCENT_FIELD_NUMBER: _ClassVar[int]
    PERIOD_FIELD_NUMBER: _ClassVar[int]
    COUNT_4XX_FIELD_NUMBER: _ClassVar[int]
    LATENCY_THRESHOLD_MS_FIELD_NUMBER: _ClassVar[int]
    service: str
    endpoint: str
    kind: _objective_pb2.ObjectiveKind
    target_percent: float
    period: _duration_pb2.Duration
    count_4xx: bool
    latency_threshold_ms: float
    def __init__(self, service: _Optional[str] = ..., endpoint: _Optional[str] = ..., kind: _Optional[_Union[_objective_pb2.ObjectiveKind, str]] = ..., target_percent: _Optional[float] = ..., period: _Optional[_Union[datetime.timedelta, _duration_pb2.Duration, _Mapping]] = ..., count_4xx: _Optional[bool] = ..., latency_threshold_ms: _Optional[float] = ...) -> None: ...

class SetObjectiveResponse(_message.Message):
    __slots__ = ("objective",)
    OBJECTIVE_FIELD_NUMBER: _ClassVar[int]
    objective: _objective_pb2.Objective
    def __init__(self, objective: _Optional[_Union[_objective_pb2.Objective, _Mapping]] = ...) -> None: ...

class ListObjectivesRequest(_message.Message):
    __slots__ = ("service",)
    SERVICE_FIELD_NUMBER: _ClassVar[int]
    service: str
    def __init__(self, service: _Optional[str] = ...) -> None: ...

class ListObjectivesResponse(_message.Message):
    __slots__ = ("objectives",)
    OBJECTIVES_FIELD_NUMBER: _ClassVar[int]
    objectives: _containers.RepeatedCompositeFieldContainer[_objective_pb2.Objective]
    def __init__(self, objectives: _Optional[_Iterable[_Union[_objective_pb2.Objective, _Mapping]]] = ...) -> None: ...

class DeleteObjectiveRequest(_message.Message):
    __slots__ = ("objective_id",)
    OBJECTIVE_ID_FIELD_NUMBER: _ClassVar[int]
    objective_id: str
    def __init__(self, objective_id: _Optional[str] = ...) -> None: ...

class DeleteObjectiveResponse(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

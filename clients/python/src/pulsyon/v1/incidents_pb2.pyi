import datetime

from google.protobuf import duration_pb2 as _duration_pb2
from google.protobuf import timestamp_pb2 as _timestamp_pb2
from pulsyon.v1 import query_pb2 as _query_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class Severity(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    SEVERITY_UNSPECIFIED: _ClassVar[Severity]
    SEVERITY_INFO: _ClassVar[Severity]
    SEVERITY_WARNING: _ClassVar[Severity]
    SEVERITY_CRITICAL: _ClassVar[Severity]

class IncidentStatus(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    INCIDENT_STATUS_UNSPECIFIED: _ClassVar[IncidentStatus]
    INCIDENT_STATUS_OPEN: _ClassVar[IncidentStatus]
    INCIDENT_STATUS_ACKNOWLEDGED: _ClassVar[IncidentStatus]
    INCIDENT_STATUS_RESOLVED: _ClassVar[IncidentStatus]

class AlertKind(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    ALERT_KIND_UNSPECIFIED: _ClassVar[AlertKind]
    ALERT_KIND_ERROR_RATE: _ClassVar[AlertKind]
    ALERT_KIND_LATENCY_P95: _ClassVar[AlertKind]
    ALERT_KIND_TRAFFIC_DROP: _ClassVar[AlertKind]
    ALERT_KIND_RECEIVER_FAILING: _ClassVar[AlertKind]
    ALERT_KIND_AVAILABILITY_BURN: _ClassVar[AlertKind]
    ALERT_KIND_LATENCY_BURN: _ClassVar[AlertKind]

class UpdateKind(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    UPDATE_KIND_UNSPECIFIED: _ClassVar[UpdateKind]
    UPDATE_KIND_OPENED: _ClassVar[UpdateKind]
    UPDATE_KIND_ALERT_ADDED: _ClassVar[UpdateKind]
    UPDATE_KIND_ESCALATED: _ClassVar[UpdateKind]
    UPDATE_KIND_ACKNOWLEDGED: _ClassVar[UpdateKind]
    UPDATE_KIND_RESOLVED: _ClassVar[UpdateKind]
    UPDATE_KIND_REOPENED: _ClassVar[UpdateKind]

class DeliveryState(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    DELIVERY_STATE_UNSPECIFIED: _ClassVar[DeliveryState]
    DELIVERY_STATE_PENDING: _ClassVar[DeliveryState]
    DELIVERY_STATE_DELIVERED: _ClassVar[DeliveryState]
    DELIVERY_STATE_FAILED: _ClassVar[DeliveryState]
    DELIVERY_STATE_SUPPRESSED: _ClassVar[DeliveryState]
SEVERITY_UNSPECIFIED: Severity
SEVERITY_INFO: Severity
SEVERITY_WARNING: Severity
SEVERITY_CRITICAL: Severity
INCIDENT_STATUS_UNSPECIFIED: IncidentStatus
INCIDENT_STATUS_OPEN: IncidentStatus
INCIDENT_STATUS_ACKNOWLEDGED: IncidentStatus
INCIDENT_STATUS_RESOLVED: IncidentStatus
ALERT_KIND_UNSPECIFIED: AlertKind
ALERT_KIND_ERROR_RATE: AlertKind
ALERT_KIND_LATENCY_P95: AlertKind
ALERT_KIND_TRAFFIC_DROP: AlertKind
ALERT_KIND_RECEIVER_FAILING: AlertKind
ALERT_KIND_AVAILABILITY_BURN: AlertKind
ALERT_KIND_LATENCY_BURN: AlertKind
UPDATE_KIND_UNSPECIFIED: UpdateKind
UPDATE_KIND_OPENED: UpdateKind
UPDATE_KIND_ALERT_ADDED: UpdateKind
UPDATE_KIND_ESCALATED: UpdateKind
UPDATE_KIND_ACKNOWLEDGED: UpdateKind
UPDATE_KIND_RESOLVED: UpdateKind
UPDATE_KIND_REOPENED: UpdateKind
DELIVERY_STATE_UNSPECIFIED: DeliveryState
DELIVERY_STATE_PENDING: DeliveryState
DELIVERY_STATE_DELIVERED: DeliveryState
DELIVERY_STATE_FAILED: DeliveryState
DELIVERY_STATE_SUPPRESSED: DeliveryState

class Alert(_message.Message):
    __slots__ = ("alert_id", "kind", "service", "endpoint", "severity", "observed", "baseline", "threshold", "window", "fired_at", "cleared_at", "explanation", "no_baseline")
    ALERT_ID_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    SERVICE_FIELD_NUMBER: _ClassVar[int]
    ENDPOINT_FIELD_NUMBER: _ClassVar[int]
    SEVERITY_FIELD_NUMBER: _ClassVar[int]
    OBSERVED_FIELD_NUMBER: _ClassVar[int]
    BASELINE_FIELD_NUMBER: _ClassVar[int]
    THRESHOLD_FIELD_NUMBER: _ClassVar[int]
    WINDOW_FIELD_NUMBER: _ClassVar[int]
    FIRED_AT_FIELD_NUMBER: _ClassVar[int]
    CLEARED_AT_FIELD_NUMBER: _ClassVar[int]
    EXPLANATION_FIELD_NUMBER: _ClassVar[int]
    NO_BASELINE_FIELD_NUMBER: _ClassVar[int]
    alert_id: str
    kind: AlertKind
    service: str
    endpoint: str
    severity: Severity
    observed: float
    baseline: float
    threshold: float
    window: _duration_pb2.Duration
    fired_at: _timestamp_pb2.Timestamp
    cleared_at: _timestamp_pb2.Timestamp
    explanation: str
    no_baseline: bool
    def __init__(self, alert_id: _Optional[str] = ..., kind: _Optional[_Union[AlertKind, str]] = ..., service: _Optional[str] = ..., endpoint: _Optional[str] = ..., severity: _Optional[_Union[Severity, str]] = ..., observed: _Optional[float] = ..., baseline: _Optional[float] = ..., threshold: _Optional[float] = ..., window: _Optional[_Union[datetime.timedelta, _duration_pb2.Duration, _Mapping]] = ..., fired_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., cleared_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., explanation: _Optional[str] = ..., no_baseline: _Optional[bool] = ...) -> None: ...

class Incident(_message.Message):
    __slots__ = ("incident_id", "service", "title", "severity", "status", "opened_at", "acknowledged_at", "acknowledged_by", "resolved_at", "resolved_by", "reopen_count", "alert_count", "last_seq")
    INCIDENT_ID_FIELD_NUMBER: _ClassVar[int]
    SERVICE_FIELD_NUMBER: _ClassVar[int]
    TITLE_FIELD_NUMBER: _ClassVar[int]
    SEVERITY_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    OPENED_AT_FIELD_NUMBER: _ClassVar[int]
    ACKNOWLEDGED_AT_FIELD_NUMBER: _ClassVar[int]
    ACKNOWLEDGED_BY_FIELD_NUMBER: _ClassVar[int]
    RESOLVED_AT_FIELD_NUMBER: _ClassVar[int]
    RESOLVED_BY_FIELD_NUMBER: _ClassVar[int]
    REOPEN_COUNT_FIELD_NUMBER: _ClassVar[int]
    ALERT_COUNT_FIELD_NUMBER: _ClassVar[int]
    LAST_SEQ_FIELD_NUMBER: _ClassVar[int]
    incident_id: str
    service: str
    title: str
    severity: Severity
    status: IncidentStatus
    opened_at: _timestamp_pb2.Timestamp
    acknowledged_at: _timestamp_pb2.Timestamp
    acknowledged_by: str
    resolved_at: _timestamp_pb2.Timestamp
    resolved_by: str
    reopen_count: int
    alert_count: int
    last_seq: int
    def __init__(self, incident_id: _Optional[str] = ..., service: _Optional[str] = ..., title: _Optional[str] = ..., severity: _Optional[_Union[Severity, str]] = ..., status: _Optional[_Union[IncidentStatus, str]] = ..., opened_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., acknowledged_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., acknowledged_by: _Optional[str] = ..., resolved_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., resolved_by: _Optional[str] = ..., reopen_count: _Optional[int] = ..., alert_count: _Optional[int] = ..., last_seq: _Optional[int] = ...) -> None: ...

class IncidentUpdate(_message.Message):
    __slots__ = ("seq", "kind", "time", "incident", "alert", "actor", "note")
    SEQ_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    TIME_FIELD_NUMBER: _ClassVar[int]
    INCIDENT_FIELD_NUMBER: _ClassVar[int]
    ALERT_FIELD_NUMBER: _ClassVar[int]
    ACTOR_FIELD_NUMBER: _ClassVar[int]
    NOTE_FIELD_NUMBER: _ClassVar[int]
    seq: int
    kind: UpdateKind
    time: _timestamp_pb2.Timestamp
    incident: Incident
    alert: Alert
    actor: str
    note: str
    def __init__(self, seq: _Optional[int] = ..., kind: _Optional[_Union[UpdateKind, str]] = ..., time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., incident: _Optional[_Union[Incident, _Mapping]] = ..., alert: _Optional[_Union[Alert, _Mapping]] = ..., actor: _Optional[str] = ..., note: _Optional[str] = ...) -> None: ...

class ListIncidentsRequest(_message.Message):
    __slots__ = ("statuses", "service", "min_severity", "range", "page_size", "page_token")
    STATUSES_FIELD_NUMBER: _ClassVar[int]
    SERVICE_FIELD_NUMBER: _ClassVar[int]
    MIN_SEVERITY_FIELD_NUMBER: _ClassVar[int]
    RANGE_FIELD_NUMBER: _ClassVar[int]
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    statuses: _containers.RepeatedScalarFieldContainer[IncidentStatus]
    service: str
    min_severity: Severity
    range: _query_pb2.TimeRange
    page_size: int
    page_token: str
    def __init__(self, statuses: _Optional[_Iterable[_Union[IncidentStatus, str]]] = ..., service: _Optional[str] = ..., min_severity: _Optional[_Union[Severity, str]] = ..., range: _Optional[_Union[_query_pb2.TimeRange, _Mapping]] = ..., page_size: _Optional[int] = ..., page_token: _Optional[str] = ...) -> None: ...

class ListIncidentsResponse(_message.Message):
    __slots__ = ("incidents", "next_page_token")
    INCIDENTS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    incidents: _containers.RepeatedCompositeFieldContainer[Incident]
    next_page_token: str
    def __init__(self, incidents: _Optional[_Iterable[_Union[Incident, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class GetIncidentRequest(_message.Message):
    __slots__ = ("incident_id",)
    INCIDENT_ID_FIELD_NUMBER: _ClassVar[int]
    incident_id: str
    def __init__(self, incident_id: _Optional[str] = ...) -> None: ...

class GetIncidentResponse(_message.Message):
    __slots__ = ("incident", "alerts", "timeline")
    INCIDENT_FIELD_NUMBER: _ClassVar[int]
    ALERTS_FIELD_NUMBER: _ClassVar[int]
    TIMELINE_FIELD_NUMBER: _ClassVar[int]
    incident: Incident
    alerts: _containers.RepeatedCompositeFieldContainer[Alert]
    timeline: _containers.RepeatedCompositeFieldContainer[IncidentUpdate]
    def __init__(self, incident: _Optional[_Union[Incident, _Mapping]] = ..., alerts: _Optional[_Iterable[_Union[Alert, _Mapping]]] = ..., timeline: _Optional[_Iterable[_Union[IncidentUpdate, _Mapping]]] = ...) -> None: ...

class WatchRequest(_message.Message):
    __slots__ = ("service", "min_severity", "statuses", "send_snapshot", "resume_after_seq")
    SERVICE_FIELD_NUMBER: _ClassVar[int]
    MIN_SEVERITY_FIELD_NUMBER: _ClassVar[int]
    STATUSES_FIELD_NUMBER: _ClassVar[int]
    SEND_SNAPSHOT_FIELD_NUMBER: _ClassVar[int]
    RESUME_AFTER_SEQ_FIELD_NUMBER: _ClassVar[int]
    service: str
    min_severity: Severity
    statuses: _containers.RepeatedScalarFieldContainer[IncidentStatus]
    send_snapshot: bool
    resume_after_seq: int
    def __init__(self, service: _Optional[str] = ..., min_severity: _Optional[_Union[Severity, str]] = ..., statuses: _Optional[_Iterable[_Union[IncidentStatus, str]]] = ..., send_snapshot: _Optional[bool] = ..., resume_after_seq: _Optional[int] = ...) -> None: ...

class Gap(_message.Message):
    __slots__ = ("from_seq", "to_seq")
    FROM_SEQ_FIELD_NUMBER: _ClassVar[int]
    TO_SEQ_FIELD_NUMBER: _ClassVar[int]
    from_seq: int
    to_seq: int
    def __init__(self, from_seq: _Optional[int] = ..., to_seq: _Optional[int] = ...) -> None: ...

class Heartbeat(_message.Message):
    __slots__ = ("current_seq", "time")
    CURRENT_SEQ_FIELD_NUMBER: _ClassVar[int]
    TIME_FIELD_NUMBER: _ClassVar[int]
    current_seq: int
    time: _timestamp_pb2.Timestamp
    def __init__(self, current_seq: _Optional[int] = ..., time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class WatchResponse(_message.Message):
    __slots__ = ("snapshot", "snapshot_done", "update", "gap", "heartbeat")
    SNAPSHOT_FIELD_NUMBER: _ClassVar[int]
    SNAPSHOT_DONE_FIELD_NUMBER: _ClassVar[int]
    UPDATE_FIELD_NUMBER: _ClassVar[int]
    GAP_FIELD_NUMBER: _ClassVar[int]
    HEARTBEAT_FIELD_NUMBER: _ClassVar[int]
    snapshot: Incident
    snapshot_done: Heartbeat
    update: IncidentUpdate
    gap: Gap
    heartbeat: Heartbeat
    def __init__(self, snapshot: _Optional[_Union[Incident, _Mapping]] = ..., snapshot_done: _Optional[_Union[Heartbeat, _Mapping]] = ..., update: _Optional[_Union[IncidentUpdate, _Mapping]] = ..., gap: _Optional[_Union[Gap, _Mapping]] = ..., heartbeat: _Optional[_Union[Heartbeat, _Mapping]] = ...) -> None: ...

class AcknowledgeIncidentRequest(_message.Message):
    __slots__ = ("incident_id", "by", "note")
    INCIDENT_ID_FIELD_NUMBER: _ClassVar[int]
    BY_FIELD_NUMBER: _ClassVar[int]
    NOTE_FIELD_NUMBER: _ClassVar[int]
    incident_id: str
    by: str
    note: str
    def __init__(self, incident_id: _Optional[str] = ..., by: _Optional[str] = ..., note: _Optional[str] = ...) -> None: ...

class AcknowledgeIncidentResponse(_message.Message):
    __slots__ = ("incident",)
    INCIDENT_FIELD_NUMBER: _ClassVar[int]
    incident: Incident
    def __init__(self, incident: _Optional[_Union[Incident, _Mapping]] = ...) -> None: ...

class ResolveIncidentRequest(_message.Message):
    __slots__ = ("incident_id", "by", "note")
    INCIDENT_ID_FIELD_NUMBER: _ClassVar[int]
    BY_FIELD_NUMBER: _ClassVar[int]
    NOTE_FIELD_NUMBER: _ClassVar[int]
    incident_id: str
    by: str
    note: str
    def __init__(self, incident_id: _Optional[str] = ..., by: _Optional[str] = ..., note: _Optional[str] = ...) -> None: ...

class ResolveIncidentResponse(_message.Message):
    __slots__ = ("incident",)
    INCIDENT_FIELD_NUMBER: _ClassVar[int]
    incident: Incident
    def __init__(self, incident: _Optional[_Union[Incident, _Mapping]] = ...) -> None: ...

class GetIncidentSummaryRequest(_message.Message):
    __slots__ = ("window",)
    WINDOW_FIELD_NUMBER: _ClassVar[int]
    window: _duration_pb2.Duration
    def __init__(self, window: _Optional[_Union[datetime.timedelta, _duration_pb2.Duration, _Mapping]] = ...) -> None: ...

class GetIncidentSummaryResponse(_message.Message):
    __slots__ = ("open", "critical", "opened_in_window", "mttr", "most_incident_prone_service", "most_incident_prone_count")
    OPEN_FIELD_NUMBER: _ClassVar[int]
    CRITICAL_FIELD_NUMBER: _ClassVar[int]
    OPENED_IN_WINDOW_FIELD_NUMBER: _ClassVar[int]
    MTTR_FIELD_NUMBER: _ClassVar[int]
    MOST_INCIDENT_PRONE_SERVICE_FIELD_NUMBER: _ClassVar[int]
    MOST_INCIDENT_PRONE_COUNT_FIELD_NUMBER: _ClassVar[int]
    open: int
    critical: int
    opened_in_window: int
    mttr: _duration_pb2.Duration
    most_incident_prone_service: str
    most_incident_prone_count: int
    def __init__(self, open: _Optional[int] = ..., critical: _Optional[int] = ..., opened_in_window: _Optional[int] = ..., mttr: _Optional[_Union[datetime.timedelta, _duration_pb2.Duration, _Mapping]] = ..., most_incident_prone_service: _Optional[str] = ..., most_incident_prone_count: _Optional[int] = ...) -> None: ...

class DeliveryAttempt(_message.Message):
    __slots__ = ("attempt", "at", "ok", "status", "latency_ms", "error")
    ATTEMPT_FIELD_NUMBER: _ClassVar[int]
    AT_FIELD_NUMBER: _ClassVar[int]
    OK_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    LATENCY_MS_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    attempt: int
    at: _timestamp_pb2.Timestamp
    ok: bool
    status: int
    latency_ms: float
    error: str
    def __init__(self, attempt: _Optional[int] = ..., at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., ok: _Optional[bool] = ..., status: _Optional[int] = ..., latency_ms: _Optional[float] = ..., error: _Optional[str] = ...) -> None: ...

class Delivery(_message.Message):
    __slots__ = ("delivery_id", "incident_id", "receiver", "update_seq", "change", "committed_at", "state", "attempts", "next_attempt_at", "deadline", "delivered_at", "last_error", "attempt_log", "silence_id", "reason", "digest_id")
    DELIVERY_ID_FIELD_NUMBER: _ClassVar[int]
    INCIDENT_ID_FIELD_NUMBER: _ClassVar[int]
    RECEIVER_FIELD_NUMBER: _ClassVar[int]
    UPDATE_SEQ_FIELD_NUMBER: _ClassVar[int]
    CHANGE_FIELD_NUMBER: _ClassVar[int]
    COMMITTED_AT_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    ATTEMPTS_FIELD_NUMBER: _ClassVar[int]
    NEXT_ATTEMPT_AT_FIELD_NUMBER: _ClassVar[int]
    DEADLINE_FIELD_NUMBER: _ClassVar[int]
    DELIVERED_AT_FIELD_NUMBER: _ClassVar[int]
    LAST_ERROR_FIELD_NUMBER: _ClassVar[int]
    ATTEMPT_LOG_FIELD_NUMBER: _ClassVar[int]
    SILENCE_ID_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    DIGEST_ID_FIELD_NUMBER: _ClassVar[int]
    delivery_id: str
    incident_id: str
    receiver: str
    update_seq: int
    change: UpdateKind
    committed_at: _timestamp_pb2.Timestamp
    state: DeliveryState
    attempts: int
    next_attempt_at: _timestamp_pb2.Timestamp
    deadline: _timestamp_pb2.Timestamp
    delivered_at: _timestamp_pb2.Timestamp
    last_error: str
    attempt_log: _containers.RepeatedCompositeFieldContainer[DeliveryAttempt]
    silence_id: str
    reason: str
    digest_id: str
    def __init__(self, delivery_id: _Optional[str] = ..., incident_id: _Optional[str] = ..., receiver: _Optional[str] = ..., update_seq: _Optional[int] = ..., change: _Optional[_Union[UpdateKind, str]] = ..., committed_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., state: _Optional[_Union[DeliveryState, str]] = ..., attempts: _Optional[int] = ..., next_attempt_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., deadline: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., delivered_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., last_error: _Optional[str] = ..., attempt_log: _Optional[_Iterable[_Union[DeliveryAttempt, _Mapping]]] = ..., silence_id: _Optional[str] = ..., reason: _Optional[str] = ..., digest_id: _Optional[str] = ...) -> None: ...

class ListDeliveriesRequest(_message.Message):
    __slots__ = ("incident_id", "receiver", "state", "page_size")
    INCIDENT_ID_FIELD_NUMBER: _ClassVar[int]
    RECEIVER_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    incident_id: str
    receiver: str
    state: DeliveryState
    page_size: int
    def __init__(self, incident_id: _Optional[str] = ..., receiver: _Optional[str] = ..., state: _Optional[_Union[DeliveryState, str]] = ..., page_size: _Optional[int] = ...) -> None: ...

class ListDeliveriesResponse(_message.Message):
    __slots__ = ("deliveries",)
    DELIVERIES_FIELD_NUMBER: _ClassVar[int]
    deliveries: _containers.RepeatedCompositeFieldContainer[Delivery]
    def __init__(self, deliveries: _Optional[_Iterable[_Union[Delivery, _Mapping]]] = ...) -> None: ...

class RetryDeliveryRequest(_message.Message):
    __slots__ = ("delivery_id",)
    DELIVERY_ID_FIELD_NUMBER: _ClassVar[int]
    delivery_id: str
    def __init__(self, delivery_id: _Optional[str] = ...) -> None: ...

class RetryDeliveryResponse(_message.Message):
    __slots__ = ("delivery",)
    DELIVERY_FIELD_NUMBER: _ClassVar[int]
    delivery: Delivery
    def __init__(self, delivery: _Optional[_Union[Delivery, _Mapping]] = ...) -> None: ...

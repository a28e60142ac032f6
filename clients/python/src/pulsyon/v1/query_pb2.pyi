import datetime

from google.protobuf import duration_pb2 as _duration_pb2
from google.protobuf import timestamp_pb2 as _timestamp_pb2
from pulsyon.v1 import event_pb2 as _event_pb2
from pulsyon.v1 import objective_pb2 as _objective_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class HealthStatus(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    HEALTH_STATUS_UNSPECIFIED: _ClassVar[HealthStatus]
    HEALTH_STATUS_HEALTHY: _ClassVar[HealthStatus]
    HEALTH_STATUS_DEGRADED: _ClassVar[HealthStatus]
    HEALTH_STATUS_DOWN: _ClassVar[HealthStatus]

class StatusClass(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    STATUS_CLASS_UNSPECIFIED: _ClassVar[StatusClass]
    STATUS_CLASS_2XX: _ClassVar[StatusClass]
    STATUS_CLASS_3XX: _ClassVar[StatusClass]
    STATUS_CLASS_4XX: _ClassVar[StatusClass]
    STATUS_CLASS_5XX: _ClassVar[StatusClass]

class ThrottleCause(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    THROTTLE_CAUSE_UNSPECIFIED: _ClassVar[ThrottleCause]
    THROTTLE_CAUSE_OVERLOAD: _ClassVar[ThrottleCause]
    THROTTLE_CAUSE_EVENT_RATE: _ClassVar[ThrottleCause]
    THROTTLE_CAUSE_BYTE_RATE: _ClassVar[ThrottleCause]
    THROTTLE_CAUSE_STREAMS: _ClassVar[ThrottleCause]
    THROTTLE_CAUSE_DATABASE_BUSY: _ClassVar[ThrottleCause]
HEALTH_STATUS_UNSPECIFIED: HealthStatus
HEALTH_STATUS_HEALTHY: HealthStatus
HEALTH_STATUS_DEGRADED: HealthStatus
HEALTH_STATUS_DOWN: HealthStatus
STATUS_CLASS_UNSPECIFIED: StatusClass
STATUS_CLASS_2XX: StatusClass
STATUS_CLASS_3XX: StatusClass
STATUS_CLASS_4XX: StatusClass
STATUS_CLASS_5XX: StatusClass
THROTTLE_CAUSE_UNSPECIFIED: ThrottleCause
THROTTLE_CAUSE_OVERLOAD: ThrottleCause
THROTTLE_CAUSE_EVENT_RATE: ThrottleCause
THROTTLE_CAUSE_BYTE_RATE: ThrottleCause
THROTTLE_CAUSE_STREAMS: ThrottleCause
THROTTLE_CAUSE_DATABASE_BUSY: ThrottleCause

class TimeRange(_message.Message):
    __slots__ = ("start", "end")
    START_FIELD_NUMBER: _ClassVar[int]
    END_FIELD_NUMBER: _ClassVar[int]
    start: _timestamp_pb2.Timestamp
    end: _timestamp_pb2.Timestamp
    def __init__(self, start: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., end: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class LatencyPercentiles(_message.Message):
    __slots__ = ("p50_ms", "p95_ms", "p99_ms")
    P50_MS_FIELD_NUMBER: _ClassVar[int]
    P95_MS_FIELD_NUMBER: _ClassVar[int]
    P99_MS_FIELD_NUMBER: _ClassVar[int]
    p50_ms: float
    p95_ms: float
    p99_ms: float
    def __init__(self, p50_ms: _Optional[float] = ..., p95_ms: _Optional[float] = ..., p99_ms: _Optional[float] = ...) -> None: ...

class ListServicesRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class ServiceSummary(_message.Message):
    __slots__ = ("name", "first_seen", "last_seen", "requests_last_hour", "error_rate_last_hour", "health")
    NAME_FIELD_NUMBER: _ClassVar[int]
    FIRST_SEEN_FIELD_NUMBER: _ClassVar[int]
    LAST_SEEN_FIELD_NUMBER: _ClassVar[int]
    REQUESTS_LAST_HOUR_FIELD_NUMBER: _ClassVar[int]
    ERROR_RATE_LAST_HOUR_FIELD_NUMBER: _ClassVar[int]
    HEALTH_FIELD_NUMBER: _ClassVar[int]
    name: str
    first_seen: _timestamp_pb2.Timestamp
    last_seen: _timestamp_pb2.Timestamp
    requests_last_hour: int
    error_rate_last_hour: float
    health: HealthStatus
    def __init__(self, name: _Optional[str] = ..., first_seen: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., last_seen: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., requests_last_hour: _Optional[int] = ..., error_rate_last_hour: _Optional[float] = ..., health: _Optional[_Union[HealthStatus, str]] = ...) -> None: ...

class ListServicesResponse(_message.Message):
    __slots__ = ("services",)
    SERVICES_FIELD_NUMBER: _ClassVar[int]
    services: _containers.RepeatedCompositeFieldContainer[ServiceSummary]
    def __init__(self, services: _Optional[_Iterable[_Union[ServiceSummary, _Mapping]]] = ...) -> None: ...

class QueryEventsRequest(_message.Message):
    __slots__ = ("service", "endpoint", "method", "status_class", "status_code", "min_latency_ms", "trace_id", "request_id", "range", "page_size", "page_token")
    SERVICE_FIELD_NUMBER: _ClassVar[int]
    ENDPOINT_FIELD_NUMBER: _ClassVar[int]
    METHOD_FIELD_NUMBER: _ClassVar[int]
    STATUS_CLASS_FIELD_NUMBER: _ClassVar[int]
    STATUS_CODE_FIELD_NUMBER: _ClassVar[int]
    MIN_LATENCY_MS_FIELD_NUMBER: _ClassVar[int]
    TRACE_ID_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    RANGE_FIELD_NUMBER: _ClassVar[int]
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    service: str
    endpoint: str
    method: str
    status_class: StatusClass
    status_code: int
    min_latency_ms: float
    trace_id: str
    request_id: str
    range: TimeRange
    page_size: int
    page_token: str
    def __init__(self, service: _Optional[str] = ..., endpoint: _Optional[str] = ..., method: _Optional[str] = ..., status_class: _Optional[_Union[StatusClass, str]] = ..., status_code: _Optional[int] = ..., min_latency_ms: _Optional[float] = ..., trace_id: _Optional[str] = ..., request_id: _Optional[str] = ..., range: _Optional[_Union[TimeRange, _Mapping]] = ..., page_size: _Optional[int] = ..., page_token: _Optional[str] = ...) -> None: ...

class StoredEvent(_message.Message):
    __slots__ = ("event", "received_at")
    EVENT_FIELD_NUMBER: _ClassVar[int]
    RECEIVED_AT_FIELD_NUMBER: _ClassVar[int]
    event: _event_pb2.Event
    received_at: _timestamp_pb2.Timestamp
    def __init__(self, event: _Optional[_Union[_event_pb2.Event, _Mapping]] = ..., received_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class QueryEventsResponse(_message.Message):
    __slots__ = ("events", "next_page_token")
    EVENTS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    events: _containers.RepeatedCompositeFieldContainer[StoredEvent]
    next_page_token: str
    def __init__(self, events: _Optional[_Iterable[_Union[StoredEvent, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class GetServiceHealthRequest(_message.Message):
    __slots__ = ("service", "window")
    SERVICE_FIELD_NUMBER: _ClassVar[int]
    WINDOW_FIELD_NUMBER: _ClassVar[int]
    service: str
    window: _duration_pb2.Duration
    def __init__(self, service: _Optional[str] = ..., window: _Optional[_Union[datetime.timedelta, _duration_pb2.Duration, _Mapping]] = ...) -> None: ...

class ServiceHealth(_message.Message):
    __slots__ = ("service", "status", "reason", "requests", "error_rate", "latency", "uptime_percent")
    SERVICE_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    REQUESTS_FIELD_NUMBER: _ClassVar[int]
    ERROR_RATE_FIELD_NUMBER: _ClassVar[int]
    LATENCY_FIELD_NUMBER: _ClassVar[int]
    UPTIME_PERCENT_FIELD_NUMBER: _ClassVar[int]
    service: str
    status: HealthStatus
    reason: str
    requests: int
    error_rate: float
    latency: LatencyPercentiles
    uptime_percent: float
    def __init__(self, service: _Optional[str] = ..., status: _Optional[_Union[HealthStatus, str]] = ..., reason: _Optional[str] = ..., requests: _Optional[int] = ..., error_rate: _Optional[float] = ..., latency: _Optional[_Union[LatencyPercentiles, _Mapping]] = ..., uptime_percent: _Optional[float] = ...) -> None: ...

class GetServiceHealthResponse(_message.Message):
    __slots__ = ("services", "as_of")
    SERVICES_FIELD_NUMBER: _ClassVar[int]
    AS_OF_FIELD_NUMBER: _ClassVar[int]
    services: _containers.RepeatedCompositeFieldContainer[ServiceHealth]
    as_of: _timestamp_pb2.Timestamp
    def __init__(self, services: _Optional[_Iterable[_Union[ServiceHealth, _Mapping]]] = ..., as_of: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class GetMetricsRequest(_message.Message):
    __slots__ = ("service", "endpoint", "range", "step")
    SERVICE_FIELD_NUMBER: _ClassVar[int]
    ENDPOINT_FIELD_NUMBER: _ClassVar[int]
    RANGE_FIELD_NUMBER: _ClassVar[int]
    STEP_FIELD_NUMBER: _ClassVar[int]
    service: str
    endpoint: str
    range: TimeRange
    step: _duration_pb2.Duration
    def __init__(self, service: _Optional[str] = ..., endpoint: _Optional[str] = ..., range: _Optional[_Union[TimeRange, _Mapping]] = ..., step: _Optional[_Union[datetime.timedelta, _duration_pb2.Duration, _Mapping]] = ...) -> None: ...

class MetricPoint(_message.Message):
    __slots__ = ("time", "count", "errors", "latency")
    TIME_FIELD_NUMBER: _ClassVar[int]
    COUNT_FIELD_NUMBER: _ClassVar[int]
    ERRORS_FIELD_NUMBER: _ClassVar[int]
    LATENCY_FIELD_NUMBER: _ClassVar[int]
    time: _timestamp_pb2.Timestamp
    count: int
    errors: int
    latency: LatencyPercentiles
    def __init__(self, time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., count: _Optional[int] = ..., errors: _Optional[int] = ..., latency: _Optional[_Union[LatencyPercentiles, _Mapping]] = ...) -> None: ...

class GetMetricsResponse(_message.Message):
    __slots__ = ("points",)
    POINTS_FIELD_NUMBER: _ClassVar[int]
    points: _containers.RepeatedCompositeFieldContainer[MetricPoint]
    def __init__(self, points: _Optional[_Iterable[_Union[MetricPoint, _Mapping]]] = ...) -> None: ...

class ListFailedEventsRequest(_message.Message):
    __slots__ = ("reason", "range", "page_size", "page_token")
    REASON_FIELD_NUMBER: _ClassVar[int]
    RANGE_FIELD_NUMBER: _ClassVar[int]
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    reason: _event_pb2.RejectReason
    range: TimeRange
    page_size: int
    page_token: str
    def __init__(self, reason: _Optional[_Union[_event_pb2.RejectReason, str]] = ..., range: _Optional[_Union[TimeRange, _Mapping]] = ..., page_size: _Optional[int] = ..., page_token: _Optional[str] = ...) -> None: ...

class FailedEvent(_message.Message):
    __slots__ = ("event", "reason", "message", "received_at", "producer_id", "batch_seq", "index", "failed_id", "size_bytes", "truncated", "payload")
    EVENT_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    RECEIVED_AT_FIELD_NUMBER: _ClassVar[int]
    PRODUCER_ID_FIELD_NUMBER: _ClassVar[int]
    BATCH_SEQ_FIELD_NUMBER: _ClassVar[int]
    INDEX_FIELD_NUMBER: _ClassVar[int]
    FAILED_ID_FIELD_NUMBER: _ClassVar[int]
    SIZE_BYTES_FIELD_NUMBER: _ClassVar[int]
    TRUNCATED_FIELD_NUMBER: _ClassVar[int]
    PAYLOAD_FIELD_NUMBER: _ClassVar[int]
    event: _event_pb2.Event
    reason: _event_pb2.RejectReason
    message: str
    received_at: _timestamp_pb2.Timestamp
    producer_id: str
    batch_seq: int
    index: int
    failed_id: str
    size_bytes: int
    truncated: bool
    payload: bytes
    def __init__(self, event: _Optional[_Union[_event_pb2.Event, _Mapping]] = ..., reason: _Optional[_Union[_event_pb2.RejectReason, str]] = ..., message: _Optional[str] = ..., received_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., producer_id: _Optional[str] = ..., batch_seq: _Optional[int] = ..., index: _Optional[int] = ..., failed_id: _Optional[str] = ..., size_bytes: _Optional[int] = ..., truncated: _Optional[bool] = ..., payload: _Optional[bytes] = ...) -> None: ...

class ListFailedEventsResponse(_message.Message):
    __slots__ = ("failed_events", "next_page_token")
    FAILED_EVENTS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    failed_events: _containers.RepeatedCompositeFieldContainer[FailedEvent]
    next_page_token: str
    def __init__(self, failed_events: _Optional[_Iterable[_Union[FailedEvent, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class GetFailedEventRequest(_message.Message):
    __slots__ = ("failed_id",)
    FAILED_ID_FIELD_NUMBER: _ClassVar[int]
    failed_id: str
    def __init__(self, failed_id: _Optional[str] = ...) -> None: ...

class GetFailedEventResponse(_message.Message):
    __slots__ = ("failed_event",)
    FAILED_EVENT_FIELD_NUMBER: _ClassVar[int]
    failed_event: FailedEvent
    def __init__(self, failed_event: _Optional[_Union[FailedEvent, _Mapping]] = ...) -> None: ...

class GetIngestStatsRequest(_message.Message):
    __slots__ = ("range", "page_size", "page_token")
    RANGE_FIELD_NUMBER: _ClassVar[int]
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    range: TimeRange
    page_size: int
    page_token: str
    def __init__(self, range: _Optional[_Union[TimeRange, _Mapping]] = ..., page_size: _Optional[int] = ..., page_token: _Optional[str] = ...) -> None: ...

class RejectionCount(_message.Message):
    __slots__ = ("reason", "count")
    REASON_FIELD_NUMBER: _ClassVar[int]
    COUNT_FIELD_NUMBER: _ClassVar[int]
    reason: _event_pb2.RejectReason
    count: int
    def __init__(self, reason: _Optional[_Union[_event_pb2.RejectReason, str]] = ..., count: _Optional[int] = ...) -> None: ...

class IngestMinute(_message.Message):
    __slots__ = ("minute", "received", "stored", "duplicates", "rejected", "throttled", "rejected_by_reason", "overflowed", "throttled_by_cause", "filtered")
    MINUTE_FIELD_NUMBER: _ClassVar[int]
    RECEIVED_FIELD_NUMBER: _ClassVar[int]
    STORED_FIELD_NUMBER: _ClassVar[int]
    DUPLICATES_FIELD_NUMBER: _ClassVar[int]
    REJECTED_FIELD_NUMBER: _ClassVar[int]
    THROTTLED_FIELD_NUMBER: _ClassVar[int]
    REJECTED_BY_REASON_FIELD_NUMBER: _ClassVar[int]
    OVERFLOWED_FIELD_NUMBER: _ClassVar[int]
    THROTTLED_BY_CAUSE_FIELD_NUMBER: _ClassVar[int]
    FILTERED_FIELD_NUMBER: _ClassVar[int]
    minute: _timestamp_pb2.Timestamp
    received: int
    stored: int
    duplicates: int
    rejected: int
    throttled: int
    rejected_by_reason: _containers.RepeatedCompositeFieldContainer[RejectionCount]
    overflowed: int
    throttled_by_cause: _containers.RepeatedCompositeFieldContainer[ThrottleCount]
    filtered: int
    def __init__(self, minute: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., received: _Optional[int] = ..., stored: _Optional[int] = ..., duplicates: _Optional[int] = ..., rejected: _Optional[int] = ..., throttled: _Optional[int] = ..., rejected_by_reason: _Optional[_Iterable[_Union[RejectionCount, _Mapping]]] = ..., overflowed: _Optional[int] = ..., throttled_by_cause: _Optional[_Iterable[_Union[ThrottleCount, _Mapping]]] = ..., filtered: _Optional[int] = ...) -> None: ...

class ThrottleCount(_message.Message):
    __slots__ = ("cause", "count")
    CAUSE_FIELD_NUMBER: _ClassVar[int]
    COUNT_FIELD_NUMBER: _ClassVar[int]
    cause: ThrottleCause
    count: int
    def __init__(self, cause: _Optional[_Union[ThrottleCause, str]] = ..., count: _Optional[int] = ...) -> None: ...

class GetIngestStatsResponse(_message.Message):
    __slots__ = ("minutes", "total", "next_page_token")
    MINUTES_FIELD_NUMBER: _ClassVar[int]
    TOTAL_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    minutes: _containers.RepeatedCompositeFieldContainer[IngestMinute]
    total: IngestMinute
    next_page_token: str
    def __init__(self, minutes: _Optional[_Iterable[_Union[IngestMinute, _Mapping]]] = ..., total: _Optional[_Union[IngestMinute, _Mapping]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class BurnRate(_message.Message):
    __slots__ = ("window", "burn_rate", "requests", "bad_requests")
    WINDOW_FIELD_NUMBER: _ClassVar[int]
    BURN_RATE_FIELD_NUMBER: _ClassVar[int]
    REQUESTS_FIELD_NUMBER: _ClassVar[int]
    BAD_REQUESTS_FIELD_NUMBER: _ClassVar[int]
    window: _duration_pb2.Duration
    burn_rate: float
    requests: int
    bad_requests: int
    def __init__(self, window: _Optional[_Union[datetime.timedelta, _duration_pb2.Duration, _Mapping]] = ..., burn_rate: _Optional[float] = ..., requests: _Optional[int] = ..., bad_requests: _Optional[int] = ...) -> None: ...

class ObjectiveStatus(_message.Message):
    __slots__ = ("objective", "attainment_percent", "requests", "bad_requests", "budget_left_percent", "budget_left_requests", "budget_left_minutes", "burn_rates", "exhausted_at", "as_of")
    OBJECTIVE_FIELD_NUMBER: _ClassVar[int]
    ATTAINMENT_PERCENT_FIELD_NUMBER: _ClassVar[int]
    REQUESTS_FIELD_NUMBER: _ClassVar[int]
    BAD_REQUESTS_FIELD_NUMBER: _ClassVar[int]
    BUDGET_LEFT_PERCENT_FIELD_NUMBER: _ClassVar[int]
    BUDGET_LEFT_REQUESTS_FIELD_NUMBER: _ClassVar[int]
    BUDGET_LEFT_MINUTES_FIELD_NUMBER: _ClassVar[int]
    BURN_RATES_FIELD_NUMBER: _ClassVar[int]
    EXHAUSTED_AT_FIELD_NUMBER: _ClassVar[int]
    AS_OF_FIELD_NUMBER: _ClassVar[int]
    objective: _objective_pb2.Objective
    attainment_percent: float
    requests: int
    bad_requests: int
    budget_left_percent: float
    budget_left_requests: int
    budget_left_minutes: float
    burn_rates: _containers.RepeatedCompositeFieldContainer[BurnRate]
    exhausted_at: _timestamp_pb2.Timestamp
    as_of: _timestamp_pb2.Timestamp
    def __init__(self, objective: _Optional[_Union[_objective_pb2.Objective, _Mapping]] = ..., attainment_percent: _Optional[float] = ..., requests: _Optional[int] = ..., bad_requests: _Optional[int] = ..., budget_left_percent: _Optional[float] = ..., budget_left_requests: _Optional[int] = ..., budget_left_minutes: _Optional[float] = ..., burn_rates: _Optional[_Iterable[_Union[BurnRate, _Mapping]]] = ..., exhausted_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., as_of: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class GetObjectiveRequest(_message.Message):
    __slots__ = ("objective_id",)
    OBJECTIVE_ID_FIELD_NUMBER: _ClassVar[int]
    objective_id: str
    def __init__(self, objective_id: _Optional[str] = ...) -> None: ...

class GetObjectiveResponse(_message.Message):
    __slots__ = ("status",)
    STATUS_FIELD_NUMBER: _ClassVar[int]
    status: ObjectiveStatus
    def __init__(self, status: _Optional[_Union[ObjectiveStatus, _Mapping]] = ...) -> None: ...

class QueryListObjectivesRequest(_message.Message):
    __slots__ = ("service",)
    SERVICE_FIELD_NUMBER: _ClassVar[int]
    service: str
    def __init__(self, service: _Optional[str] = ...) -> None: ...

class QueryListObjectivesResponse(_message.Message):
    __slots__ = ("objectives",)
    OBJECTIVES_FIELD_NUMBER: _ClassVar[int]
    objectives: _containers.RepeatedCompositeFieldContainer[ObjectiveStatus]
    def __init__(self, objectives: _Optional[_Iterable[_Union[ObjectiveStatus, _Mapping]]] = ...) -> None: ...

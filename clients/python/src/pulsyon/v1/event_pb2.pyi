import datetime

from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class RejectReason(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    REJECT_REASON_UNSPECIFIED: _ClassVar[RejectReason]
    REJECT_REASON_INVALID_EVENT_ID: _ClassVar[RejectReason]
    REJECT_REASON_MISSING_SERVICE: _ClassVar[RejectReason]
    REJECT_REASON_INVALID_STATUS_CODE: _ClassVar[RejectReason]
    REJECT_REASON_INVALID_LATENCY: _ClassVar[RejectReason]
    REJECT_REASON_MISSING_TIME: _ClassVar[RejectReason]
    REJECT_REASON_TIME_TOO_OLD: _ClassVar[RejectReason]
    REJECT_REASON_TIME_IN_FUTURE: _ClassVar[RejectReason]
    REJECT_REASON_FIELD_TOO_LONG: _ClassVar[RejectReason]
    REJECT_REASON_TOO_MANY_ATTRIBUTES: _ClassVar[RejectReason]
    REJECT_REASON_EVENT_TOO_LARGE: _ClassVar[RejectReason]
    REJECT_REASON_NO_PARTITION: _ClassVar[RejectReason]
    REJECT_REASON_CARDINALITY_LIMIT: _ClassVar[RejectReason]
    REJECT_REASON_INVALID_TEXT: _ClassVar[RejectReason]
    REJECT_REASON_INVALID_TIME: _ClassVar[RejectReason]
    REJECT_REASON_MALFORMED_EVENT: _ClassVar[RejectReason]
    REJECT_REASON_POISON_BATCH: _ClassVar[RejectReason]

class Durability(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    DURABILITY_UNSPECIFIED: _ClassVar[Durability]
    DURABILITY_COMMITTED: _ClassVar[Durability]
    DURABILITY_BUFFERED: _ClassVar[Durability]
REJECT_REASON_UNSPECIFIED: RejectReason
REJECT_REASON_INVALID_EVENT_ID: RejectReason
REJECT_REASON_MISSING_SERVICE: RejectReason
REJECT_REASON_INVALID_STATUS_CODE: RejectReason
REJECT_REASON_INVALID_LATENCY: RejectReason
REJECT_REASON_MISSING_TIME: RejectReason
REJECT_REASON_TIME_TOO_OLD: RejectReason
REJECT_REASON_TIME_IN_FUTURE: RejectReason
REJECT_REASON_FIELD_TOO_LONG: RejectReason
REJECT_REASON_TOO_MANY_ATTRIBUTES: RejectReason
REJECT_REASON_EVENT_TOO_LARGE: RejectReason
REJECT_REASON_NO_PARTITION: RejectReason
REJECT_REASON_CARDINALITY_LIMIT: RejectReason
REJECT_REASON_INVALID_TEXT: RejectReason
REJECT_REASON_INVALID_TIME: RejectReason
REJECT_REASON_MALFORMED_EVENT: RejectReason
REJECT_REASON_POISON_BATCH: RejectReason
DURABILITY_UNSPECIFIED: Durability
DURABILITY_COMMITTED: Durability
DURABILITY_BUFFERED: Durability

class Event(_message.Message):
    __slots__ = ("event_id", "time", "service", "endpoint", "method", "status_code", "latency_ms", "trace_id", "request_id", "attributes", "environment", "release", "host", "request_bytes", "response_bytes")
    class AttributesEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    EVENT_ID_FIELD_NUMBER: _ClassVar[int]
    TIME_FIELD_NUMBER: _ClassVar[int]
    SERVICE_FIELD_NUMBER: _ClassVar[int]
    ENDPOINT_FIELD_NUMBER: _ClassVar[int]
    METHOD_FIELD_NUMBER: _ClassVar[int]
    STATUS_CODE_FIELD_NUMBER: _ClassVar[int]
    LATENCY_MS_FIELD_NUMBER: _ClassVar[int]
    TRACE_ID_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    ATTRIBUTES_FIELD_NUMBER: _ClassVar[int]
    ENVIRONMENT_FIELD_NUMBER: _ClassVar[int]
    RELEASE_FIELD_NUMBER: _ClassVar[int]
    HOST_FIELD_NUMBER: _ClassVar[int]
    REQUEST_BYTES_FIELD_NUMBER: _ClassVar[int]
    RESPONSE_BYTES_FIELD_NUMBER: _ClassVar[int]
    event_id: str
    time: _timestamp_pb2.Timestamp
    service: str
    endpoint: str
    method: str
    status_code: int
    latency_ms: float
    trace_id: str
    request_id: str
    attributes: _containers.ScalarMap[str, str]
    environment: str
    release: str
    host: str
    request_bytes: int
    response_bytes: int
    def __init__(self, event_id: _Optional[str] = ..., time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., service: _Optional[str] = ..., endpoint: _Optional[str] = ..., method: _Optional[str] = ..., status_code: _Optional[int] = ..., latency_ms: _Optional[float] = ..., trace_id: _Optional[str] = ..., request_id: _Optional[str] = ..., attributes: _Optional[_Mapping[str, str]] = ..., environment: _Optional[str] = ..., release: _Optional[str] = ..., host: _Optional[str] = ..., request_bytes: _Optional[int] = ..., response_bytes: _Optional[int] = ...) -> None: ...

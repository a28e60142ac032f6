import datetime

from google.protobuf import duration_pb2 as _duration_pb2
from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class ObjectiveKind(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    OBJECTIVE_KIND_UNSPECIFIED: _ClassVar[ObjectiveKind]
    OBJECTIVE_KIND_AVAILABILITY: _ClassVar[ObjectiveKind]
    OBJECTIVE_KIND_LATENCY: _ClassVar[ObjectiveKind]
OBJECTIVE_KIND_UNSPECIFIED: ObjectiveKind
OBJECTIVE_KIND_AVAILABILITY: ObjectiveKind
OBJECTIVE_KIND_LATENCY: ObjectiveKind

class Objective(_message.Message):
    __slots__ = ("objective_id", "service", "endpoint", "kind", "target_percent", "period", "count_4xx", "latency_threshold_ms", "created_at")
    OBJECTIVE_ID_FIELD_NUMBER: _ClassVar[int]
    SERVICE_FIELD_NUMBER: _ClassVar[int]
    ENDPOINT_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    TARGET_PERCENT_FIELD_NUMBER: _ClassVar[int]
    PERIOD_FIELD_NUMBER: _ClassVar[int]
    COUNT_4XX_FIELD_NUMBER: _ClassVar[int]
    LATENCY_THRESHOLD_MS_FIELD_NUMBER: _ClassVar[int]
    CREATED_AT_FIELD_NUMBER: _ClassVar[int]
    objective_id: str
    service: str
    endpoint: str
    kind: ObjectiveKind
    target_percent: float
    period: _duration_pb2.Duration
    count_4xx: bool
    latency_threshold_ms: float
    created_at: _timestamp_pb2.Timestamp
    def __init__(self, objective_id: _Optional[str] = ..., service: _Optional[str] = ..., endpoint: _Optional[str] = ..., kind: _Optional[_Union[ObjectiveKind, str]] = ..., target_percent: _Optional[float] = ..., period: _Optional[_Union[datetime.timedelta, _duration_pb2.Duration, _Mapping]] = ..., count_4xx: _Optional[bool] = ..., latency_threshold_ms: _Optional[float] = ..., created_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

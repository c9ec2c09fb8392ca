from voxstack.v1 import common_pb2 as _common_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class EndRule(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    END_RULE_UNSPECIFIED: _ClassVar[EndRule]
    END_RULE_TURN_MODEL: _ClassVar[EndRule]
    END_RULE_SILENCE: _ClassVar[EndRule]
    END_RULE_STREAM_END: _ClassVar[EndRule]
    END_RULE_MAX_LENGTH: _ClassVar[EndRule]
    END_RULE_WORDS: _ClassVar[EndRule]
END_RULE_UNSPECIFIED: EndRule
END_RULE_TURN_MODEL: EndRule
END_RULE_SILENCE: EndRule
END_RULE_STREAM_END: EndRule
END_RULE_MAX_LENGTH: EndRule
END_RULE_WORDS: EndRule

class RecognitionConfig(_message.Message):
    __slots__ = ("format", "language", "interim_results", "speculative_results", "word_timings", "vad_threshold", "vad_min_silence_ms", "vad_pad_ms", "turn_detection")
    FORMAT_FIELD_NUMBER: _ClassVar[int]
    LANGUAGE_FIELD_NUMBER: _ClassVar[int]
    INTERIM_RESULTS_FIELD_NUMBER: _ClassVar[int]
    SPECULATIVE_RESULTS_FIELD_NUMBER: _ClassVar[int]
    WORD_TIMINGS_FIELD_NUMBER: _ClassVar[int]
    VAD_THRESHOLD_FIELD_NUMBER: _ClassVar[int]
    VAD_MIN_SILENCE_MS_FIELD_NUMBER: _ClassVar[int]
    VAD_PAD_MS_FIELD_NUMBER: _ClassVar[int]
    TURN_DETECTION_FIELD_NUMBER: _ClassVar[int]
    format: _common_pb2.AudioFormat
    language: str
    interim_results: bool
    speculative_results: bool
    word_timings: bool
    vad_threshold: float
    vad_min_silence_ms: int
    vad_pad_ms: int
    turn_detection: str
    def __init__(self, format: _Optional[_Union[_common_pb2.AudioFormat, _Mapping]] = ..., language: _Optional[str] = ..., interim_results: _Optional[bool] = ..., speculative_results: _Optional[bool] = ..., word_timings: _Optional[bool] = ..., vad_threshold: _Optional[float] = ..., vad_min_silence_ms: _Optional[int] = ..., vad_pad_ms: _Optional[int] = ..., turn_detection: _Optional[str] = ...) -> None: ...

class RecognizeRequest(_message.Message):
    __slots__ = ("config", "audio")
    CONFIG_FIELD_NUMBER: _ClassVar[int]
    AUDIO_FIELD_NUMBER: _ClassVar[int]
    config: RecognitionConfig
    audio: bytes
    def __init__(self, config: _Optional[_Union[RecognitionConfig, _Mapping]] = ..., audio: _Optional[bytes] = ...) -> None: ...

class Word(_message.Message):
    __slots__ = ("word", "start_seconds", "end_seconds", "probability")
    WORD_FIELD_NUMBER: _ClassVar[int]
    START_SECONDS_FIELD_NUMBER: _ClassVar[int]
    END_SECONDS_FIELD_NUMBER: _ClassVar[int]
    PROBABILITY_FIELD_NUMBER: _ClassVar[int]
    word: str
    start_seconds: float
    end_seconds: float
    probability: float
    def __init__(self, word: _Optional[str] = ..., start_seconds: _Optional[float] = ..., end_seconds: _Optional[float] = ..., probability: _Optional[float] = ...) -> None: ...

class RecognitionResult(_message.Message):
    __slots__ = ("text", "language", "language_probability", "words", "confidence", "start_seconds", "end_seconds", "joins_previous")
    TEXT_FIELD_NUMBER: _ClassVar[int]
    LANGUAGE_FIELD_NUMBER: _ClassVar[int]
    LANGUAGE_PROBABILITY_FIELD_NUMBER: _ClassVar[int]
    WORDS_FIELD_NUMBER: _ClassVar[int]
    CONFIDENCE_FIELD_NUMBER: _ClassVar[int]
    START_SECONDS_FIELD_NUMBER: _ClassVar[int]
    END_SECONDS_FIELD_NUMBER: _ClassVar[int]
    JOINS_PREVIOUS_FIELD_NUMBER: _ClassVar[int]
    text: str
    language: str
    language_probability: float
    words: _containers.RepeatedCompositeFieldContainer[Word]
    confidence: float
    start_seconds: float
    end_seconds: float
    joins_previous: bool
    def __init__(self, text: _Optional[str] = ..., language: _Optional[str] = ..., language_probability: _Optional[float] = ..., words: _Optional[_Iterable[_Union[Word, _Mapping]]] = ..., confidence: _Optional[float] = ..., start_seconds: _Optional[float] = ..., end_seconds: _Optional[float] = ..., joins_previous: _Optional[bool] = ...) -> None: ...

class RecognizeResponse(_message.Message):
    __slots__ = ("result", "timings")
    RESULT_FIELD_NUMBER: _ClassVar[int]
    TIMINGS_FIELD_NUMBER: _ClassVar[int]
    result: RecognitionResult
    timings: _common_pb2.Timings
    def __init__(self, result: _Optional[_Union[RecognitionResult, _Mapping]] = ..., timings: _Optional[_Union[_common_pb2.Timings, _Mapping]] = ...) -> None: ...

class StreamingRecognizeRequest(_message.Message):
    __slots__ = ("config", "audio", "join_previous", "end_utterance")
    CONFIG_FIELD_NUMBER: _ClassVar[int]
    AUDIO_FIELD_NUMBER: _ClassVar[int]
    JOIN_PREVIOUS_FIELD_NUMBER: _ClassVar[int]
    END_UTTERANCE_FIELD_NUMBER: _ClassVar[int]
    config: RecognitionConfig
    audio: bytes
    join_previous: JoinPrevious
    end_utterance: EndUtterance
    def __init__(self, config: _Optional[_Union[RecognitionConfig, _Mapping]] = ..., audio: _Optional[bytes] = ..., join_previous: _Optional[_Union[JoinPrevious, _Mapping]] = ..., end_utterance: _Optional[_Union[EndUtterance, _Mapping]] = ...) -> None: ...

class JoinPrevious(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class EndUtterance(_message.Message):
    __slots__ = ("utterance_index", "end_seconds")
    UTTERANCE_INDEX_FIELD_NUMBER: _ClassVar[int]
    END_SECONDS_FIELD_NUMBER: _ClassVar[int]
    utterance_index: int
    end_seconds: float
    def __init__(self, utterance_index: _Optional[int] = ..., end_seconds: _Optional[float] = ...) -> None: ...

class SpeechStarted(_message.Message):
    __slots__ = ("offset_seconds",)
    OFFSET_SECONDS_FIELD_NUMBER: _ClassVar[int]
    offset_seconds: float
    def __init__(self, offset_seconds: _Optional[float] = ...) -> None: ...

class PartialResult(_message.Message):
    __slots__ = ("text", "stability")
    TEXT_FIELD_NUMBER: _ClassVar[int]
    STABILITY_FIELD_NUMBER: _ClassVar[int]
    text: str
    stability: float
    def __init__(self, text: _Optional[str] = ..., stability: _Optional[float] = ...) -> None: ...

class FinalResult(_message.Message):
    __slots__ = ("result", "timings")
    RESULT_FIELD_NUMBER: _ClassVar[int]
    TIMINGS_FIELD_NUMBER: _ClassVar[int]
    result: RecognitionResult
    timings: _common_pb2.Timings
    def __init__(self, result: _Optional[_Union[RecognitionResult, _Mapping]] = ..., timings: _Optional[_Union[_common_pb2.Timings, _Mapping]] = ...) -> None: ...

class SpeechEnded(_message.Message):
    __slots__ = ("offset_seconds", "rule", "end_of_turn_probability")
    OFFSET_SECONDS_FIELD_NUMBER: _ClassVar[int]
    RULE_FIELD_NUMBER: _ClassVar[int]
    END_OF_TURN_PROBABILITY_FIELD_NUMBER: _ClassVar[int]
    offset_seconds: float
    rule: EndRule
    end_of_turn_probability: float
    def __init__(self, offset_seconds: _Optional[float] = ..., rule: _Optional[_Union[EndRule, str]] = ..., end_of_turn_probability: _Optional[float] = ...) -> None: ...

class SpeculativeResult(_message.Message):
    __slots__ = ("result",)
    RESULT_FIELD_NUMBER: _ClassVar[int]
    result: RecognitionResult
    def __init__(self, result: _Optional[_Union[RecognitionResult, _Mapping]] = ...) -> None: ...

class SpeechResumed(_message.Message):
    __slots__ = ("offset_seconds",)
    OFFSET_SECONDS_FIELD_NUMBER: _ClassVar[int]
    offset_seconds: float
    def __init__(self, offset_seconds: _Optional[float] = ...) -> None: ...

class StreamingRecognizeResponse(_message.Message):
    __slots__ = ("utterance_index", "speech_started", "partial", "final", "speech_ended", "speculative", "speech_resumed", "trace_parent")
    UTTERANCE_INDEX_FIELD_NUMBER: _ClassVar[int]
    SPEECH_STARTED_FIELD_NUMBER: _ClassVar[int]
    PARTIAL_FIELD_NUMBER: _ClassVar[int]
    FINAL_FIELD_NUMBER: _ClassVar[int]
    SPEECH_ENDED_FIELD_NUMBER: _ClassVar[int]
    SPECULATIVE_FIELD_NUMBER: _ClassVar[int]
    SPEECH_RESUMED_FIELD_NUMBER: _ClassVar[int]
    TRACE_PARENT_FIELD_NUMBER: _ClassVar[int]
    utterance_index: int
    speech_started: SpeechStarted
    partial: PartialResult
    final: FinalResult
    speech_ended: SpeechEnded
    speculative: SpeculativeResult
    speech_resumed: SpeechResumed
    trace_parent: str
    def __init__(self, utterance_index: _Optional[int] = ..., speech_started: _Optional[_Union[SpeechStarted, _Mapping]] = ..., partial: _Optional[_Union[PartialResult, _Mapping]] = ..., final: _Optional[_Union[FinalResult, _Mapping]] = ..., speech_ended: _Optional[_Union[SpeechEnded, _Mapping]] = ..., speculative: _Optional[_Union[SpeculativeResult, _Mapping]] = ..., speech_resumed: _Optional[_Union[SpeechResumed, _Mapping]] = ..., trace_parent: _Optional[str] = ...) -> None: ...

class ListModelsRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class AsrModel(_message.Message):
    __slots__ = ("name", "languages", "default_language")
    NAME_FIELD_NUMBER: _ClassVar[int]
    LANGUAGES_FIELD_NUMBER: _ClassVar[int]
    DEFAULT_LANGUAGE_FIELD_NUMBER: _ClassVar[int]
    name: str
    languages: _containers.RepeatedScalarFieldContainer[str]
    default_language: str
    def __init__(self, name: _Optional[str] = ..., languages: _Optional[_Iterable[str]] = ..., default_language: _Optional[str] = ...) -> None: ...

class ListModelsResponse(_message.Message):
    __slots__ = ("models",)
    MODELS_FIELD_NUMBER: _ClassVar[int]
    models: _containers.RepeatedCompositeFieldContainer[AsrModel]
    def __init__(self, models: _Optional[_Iterable[_Union[AsrModel, _Mapping]]] = ...) -> None: ...

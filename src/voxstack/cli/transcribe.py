"""``voxstack transcribe``: send a WAV file to the asr service and print the text."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated

import grpc
import typer
from google.protobuf.json_format import MessageToDict

from voxstack.cli.options import fail, settings_from_flags
from voxstack.rpc_status import failure_from_error
from voxstack.tls import open_channel
from voxstack.v1 import asr_pb2, asr_pb2_grpc, common_pb2

CHUNK_SECONDS = 0.1


def stream_requests(
    pcm16: bytes, rate: int, channels: int, language: str, interim: bool
) -> Iterator[asr_pb2.StreamingRecognizeRequest]:
    fmt = common_pb2.AudioFormat(encoding=common_pb2.AUDIO_ENCODING_PCM16, sample_rate_hz=rate, channels=channels)
    yield asr_pb2.StreamingRecognizeRequest(
        config=asr_pb2.RecognitionConfig(format=fmt, language=language, interim_results=interim)
    )
    step = int(rate * CHUNK_SECONDS) * 2 * channels
    for i in range(0, len(pcm16), step):
        yield asr_pb2.StreamingRecognizeRequest(audio=pcm16[i : i + step])


def transcribe(
    file: Annotated[Path, typer.Argument(exists=True, dir_okay=False, help="A WAV file (16-bit PCM).")],
    addr: Annotated[str | None, typer.Option(help="asr HOST:PORT (default: from settings).")] = None,
    stream: Annotated[bool, typer.Option("--stream", help="Use StreamingRecognize and print each utterance.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print the full result(s) as JSON.")] = False,
    language: Annotated[str, typer.Option(help="ISO 639-1 code; empty = detect.")] = "",
    timeout: Annotated[float, typer.Option(min=0.1, help="Seconds before giving up.")] = 300.0,
) -> None:
    """Transcribe a WAV file with the asr service."""

    settings = settings_from_flags()
    address = addr or settings.asr.address
    data = file.read_bytes()
    with open_channel(address, settings.tls) as channel:
        stub = asr_pb2_grpc.AsrStub(channel)
        try:
            if stream:
                _print_stream(stub, data, language, as_json, timeout)
            else:
                fmt = common_pb2.AudioFormat(encoding=common_pb2.AUDIO_ENCODING_WAV)
                reply = stub.Recognize(
                    asr_pb2.RecognizeRequest(
                        config=asr_pb2.RecognitionConfig(format=fmt, language=language), audio=data
                    ),
                    timeout=timeout,
                )
                typer.echo(json.dumps(MessageToDict(reply), indent=2) if as_json else reply.result.text)
        except grpc.RpcError as err:
            raise fail(f"asr at {address}: {failure_from_error(err).describe()}", 1) from None


def _print_stream(stub: asr_pb2_grpc.AsrStub, data: bytes, language: str, as_json: bool, timeout: float) -> None:
    from voxstack.audio import decode_wav, float_to_pcm16

    audio = decode_wav(data)
    pcm = float_to_pcm16(audio.samples.reshape(-1))
    requests = stream_requests(pcm, audio.sample_rate, audio.channels, language, interim=as_json)
    for reply in stub.StreamingRecognize(requests, timeout=timeout):
        if as_json:
            typer.echo(json.dumps(MessageToDict(reply)))
        elif reply.WhichOneof("event") == "final":
            typer.echo(reply.final.result.text)

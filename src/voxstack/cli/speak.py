"""``voxstack speak``: text to a WAV file through the tts service."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import grpc
import typer

from voxstack.cli.options import fail, settings_from_flags
from voxstack.rpc_status import failure_from_error
from voxstack.tls import open_channel
from voxstack.v1 import common_pb2, tts_pb2, tts_pb2_grpc


def speak(
    text: Annotated[str, typer.Argument(help="What to say.")] = "",
    output: Annotated[Path, typer.Option("-o", "--output", dir_okay=False, help="WAV file to write.")] = Path(
        "speech.wav"
    ),
    voice: Annotated[str, typer.Option(help="Voice name (see --list-voices); empty = the default.")] = "",
    rate: Annotated[int, typer.Option(min=0, help="Sample rate; 0 = the voice's own.")] = 0,
    length_scale: Annotated[float | None, typer.Option(help="Speaking rate: > 1 slower, < 1 faster.")] = None,
    addr: Annotated[str | None, typer.Option(help="tts HOST:PORT (default: from settings).")] = None,
    list_voices: Annotated[bool, typer.Option("--list-voices", help="List the voices and exit.")] = False,
    timeout: Annotated[float, typer.Option(min=0.1, help="Seconds before giving up.")] = 120.0,
) -> None:
    """Synthesise TEXT with the tts service into a WAV file."""

    settings = settings_from_flags()
    address = addr or settings.tts.address
    with open_channel(address, settings.tls) as channel:
        stub = tts_pb2_grpc.TtsStub(channel)
        try:
            if list_voices:
                for v in stub.ListVoices(tts_pb2.ListVoicesRequest(), timeout=timeout).voices:
                    mark = " (default)" if v.is_default else ""
                    typer.echo(f"{v.name}  {v.language}  {v.sample_rate_hz} Hz{mark}")
                return
            if not text.strip():
                raise fail("nothing to say: give the text as an argument", 2)
            options = tts_pb2.SynthesisOptions()
            if length_scale is not None:
                options.length_scale = length_scale
            request = tts_pb2.SynthesizeRequest(
                text=text,
                voice=voice,
                format=common_pb2.AudioFormat(encoding=common_pb2.AUDIO_ENCODING_WAV, sample_rate_hz=rate),
                options=options,
            )
            reply = stub.Synthesize(request, timeout=timeout)
        except grpc.RpcError as err:
            raise fail(f"tts at {address}: {failure_from_error(err).describe()}", 1) from None
    output.write_bytes(reply.audio)
    typer.echo(
        f"{output}: {reply.timings.audio_seconds:.2f} s of speech at {reply.format.sample_rate_hz} Hz "
        f"({reply.voice}), made in {reply.timings.processing_seconds:.2f} s"
    )

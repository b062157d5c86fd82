"""The ``hf`` backend: a local transformers vision-language model, offline only.

Importing this module registers the backend and imports neither torch nor transformers; they are
imported when a backend is built. Weights come from a local folder, or from the local Hugging Face
cache by hub id, never from the network: ``HF_HUB_OFFLINE`` and ``TRANSFORMERS_OFFLINE`` are set and
every load passes ``local_files_only=True``.
"""

from __future__ import annotations

import contextlib
import hashlib
import inspect
import math
import re
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from srjudge.errors import MissingDependencyError, MissingWeightsError, SpecError
from srjudge.models.hf_folder import (
    folder_chat_template,
    load_processor,
    resolve_model_path,
    set_offline,
    weights_revision,
)
from srjudge.models.hf_vlm import DTYPE_NAMES
from srjudge.registry import REQUIRED
from srjudge.spec import Choice
from srjudge.vlm.backends.base import BackendError, ResultCallback, VLMBackend, register_backend
from srjudge.vlm.request import (
    ChatMessage,
    ChatRequest,
    Completion,
    ImagePart,
    TextPart,
    TokenLogprobs,
    Usage,
)

if TYPE_CHECKING:
    import torch

__all__ = ["HFBackend", "HFOptions", "parse_options"]

INSTALL_HINT = (
    "pip install 'srjudge[local]' (torch must be exactly torch==2.13.0 here: "
    "a looser pin pulls a multi-GB CUDA build)"
)

#: Options this backend reads, with their defaults (``dtype`` defaults by device).
OPTIONS = {
    "model": (str, REQUIRED),
    "device": (str, "cpu"),
    "dtype": (Choice("auto", "float32", "bfloat16", "float16"), None),
    "batch_size": (int, 4),
}
OPTION_NAMES = tuple(OPTIONS)
#: Options that belong to other layers (the judge resizes images itself); accepted and ignored here.
IGNORED_OPTIONS = frozenset({"max_side"})

_DTYPES = {"auto": "auto", **DTYPE_NAMES}
_DEVICE_RE = re.compile(r"^(cpu|auto|cuda(:\d+)?)$")
#: End-of-turn markers of common chat templates; those the tokenizer knows also stop generation.
_END_OF_TURN = ("<|im_end|>", "<end_of_utterance>", "<|eot_id|>", "<|end|>", "<end_of_turn>")


# ----------------------------------------------------------------------------------------------------------
# Options
# ----------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class HFOptions:
    """Validated options: ``model`` as given, ``device`` (cpu|cuda|cuda:N|auto), ``dtype``, ``batch_size``."""

    model: str
    device: str = "cpu"
    dtype: str | None = None
    batch_size: int = 4


def parse_options(options: Mapping[str, Any]) -> HFOptions:
    """Coerce spec strings into :class:`HFOptions`; every bad value raises :class:`SpecError` naming it."""
    unknown = sorted(set(options) - set(OPTION_NAMES) - IGNORED_OPTIONS)
    if unknown:
        raise SpecError(
            f"hf backend: unknown option(s) {', '.join(unknown)}; valid options: {', '.join(OPTION_NAMES)}"
        )
    model = str(options.get("model") or "").strip()
    if not model:
        raise SpecError(
            "hf backend: option 'model' is required: a local model folder (config.json, weights, tokenizer, "
            "preprocessor_config.json) or a hub id already in the local Hugging Face cache, e.g. "
            "hf:model=/models/Qwen2-VL-2B-Instruct"
        )
    device = str(options.get("device", "cpu") or "cpu").strip().lower()
    if not _DEVICE_RE.match(device):
        raise SpecError(
            f"hf backend: device must be cpu, cuda, cuda:N or auto, got {options.get('device')!r}"
        )
    dtype_raw = options.get("dtype")
    dtype: str | None = None
    if dtype_raw is not None and str(dtype_raw).strip():
        key = str(dtype_raw).strip().lower().removeprefix("torch.")
        if key not in _DTYPES:
            raise SpecError(
                f"hf backend: dtype must be auto, float32, bfloat16 or float16, got {dtype_raw!r}"
            )
        dtype = _DTYPES[key]
    raw_bs = options.get("batch_size", 4)
    try:
        if isinstance(raw_bs, bool) or (isinstance(raw_bs, float) and not raw_bs.is_integer()):
            raise ValueError
        batch_size = int(str(raw_bs).strip()) if not isinstance(raw_bs, int | float) else int(raw_bs)
    except ValueError:
        raise SpecError(f"hf backend: batch_size must be a positive integer, got {raw_bs!r}") from None
    if batch_size < 1:
        raise SpecError(f"hf backend: batch_size must be a positive integer, got {raw_bs!r}")
    return HFOptions(model=model, device=device, dtype=dtype, batch_size=batch_size)


# ----------------------------------------------------------------------------------------------------------
# Helpers
# ----------------------------------------------------------------------------------------------------------


def to_pil(image: np.ndarray) -> Any:
    from PIL import Image

    arr = np.asarray(image)
    if arr.ndim == 2:
        arr = np.repeat(arr[..., None], 3, axis=2)
    if arr.ndim != 3 or arr.shape[2] not in (3, 4):
        raise BackendError(f"hf backend: images must be HxWx3 arrays, got shape {arr.shape}")
    arr = arr[..., :3]
    if arr.dtype != np.uint8:
        arr = np.round(np.clip(arr.astype(np.float32), 0.0, 1.0) * 255.0).astype(np.uint8)
    return Image.fromarray(np.ascontiguousarray(arr)).convert("RGB")


def _content(message: ChatMessage) -> list[dict[str, Any]]:
    parts: list[dict[str, Any]] = []
    for p in message.parts:
        if isinstance(p, ImagePart):
            parts.append({"type": "image"})
        elif isinstance(p, TextPart):
            parts.append({"type": "text", "text": p.text})
    return parts


def _sample_seed(seed: int | None, sample_index: int) -> int:
    """A 63-bit generator seed from (seed, sample_index): sample k is reproducible and distinct from k+1."""
    blob = f"srjudge-hf:{0 if seed is None else seed}:{sample_index}".encode()
    return int.from_bytes(hashlib.sha256(blob).digest()[:8], "big") & ((1 << 63) - 1)


class _RowSampler:
    """A logits processor that samples each sampled row with its own seeded generator.

    ``generate`` runs greedy; for a sampled row this keeps only the token drawn (temperature, top-p)
    from that row's ``torch.Generator``, so sample k is the same whatever batch it runs in. Rows
    without a generator (temperature 0) are left alone and stay greedy.
    """

    def __init__(self, temperatures: list[float], top_ps: list[float], generators: list[Any]) -> None:
        self.temperatures = temperatures
        self.top_ps = top_ps
        self.generators = generators

    def __call__(self, input_ids: torch.Tensor, scores: torch.Tensor) -> torch.Tensor:
        import torch

        out = scores.clone()
        for row, gen in enumerate(self.generators):
            if gen is None:
                continue
            logits = scores[row].detach().float().cpu() / self.temperatures[row]
            probs = torch.softmax(logits, dim=-1)
            if self.top_ps[row] < 1.0:
                sorted_p, order = torch.sort(probs, descending=True)
                before = torch.cumsum(sorted_p, dim=-1) - sorted_p
                sorted_p = torch.where(before < self.top_ps[row], sorted_p, torch.zeros_like(sorted_p))
                pick = int(order[int(torch.multinomial(sorted_p, 1, generator=gen))])
            else:
                pick = int(torch.multinomial(probs, 1, generator=gen))
            out[row] = float("-inf")
            out[row, pick] = 0.0
        return out


def _logsumexp(values: Sequence[float]) -> float:
    m = max(values)
    if m == -math.inf:
        return -math.inf
    return m + math.log(sum(math.exp(v - m) for v in values))


# ----------------------------------------------------------------------------------------------------------
# The backend
# ----------------------------------------------------------------------------------------------------------


class HFBackend(VLMBackend):
    """A local transformers image-text-to-text model (Qwen2-VL, Qwen2.5-VL, SmolVLM/Idefics3, LLaVA).

    Options: ``model`` (folder, or hub id in the local cache), ``device`` (cpu|cuda|cuda:N|auto,
    default cpu), ``dtype`` (auto|float32|bfloat16|float16; default float32 on cpu, bfloat16 on cuda
    where supported), ``batch_size`` (default 4). ``max_side`` is accepted and ignored (images
    arrive resized).

    Methods beyond :meth:`complete`, for the judge protocols:

    - :meth:`next_token_logprobs` (requests, candidates) -> one ``{candidate: logprob}`` per request:
      the full-vocabulary log-probability of each candidate word as the next token (the Q-Align level
      scoring primitive). A final assistant message is continued, otherwise an assistant turn opens.
    - :meth:`logit_lens` (request, candidates) -> one ``{candidate: probability}`` per decoder layer:
      the final norm and the LM head applied to each layer's last hidden state, softmax restricted
      to the candidates; the last row is the model's own output.
    - :meth:`candidate_token_ids` (candidates) -> the first-token ids each candidate is scored by.

    Decoding uses only the request's :class:`GenerationParams` (the checkpoint's own sampling
    defaults, e.g. a repetition penalty, are not applied): greedy when temperature is 0, otherwise
    temperature and top-p sampling with a generator seeded from (seed, sample_index). Requests are
    batched ``batch_size`` at a time with left padding; each completion's ``latency_s`` is its share
    of its batch's wall time. ``logprobs`` come from the log-softmax of the raw logits (temperature 1);
    a token that decodes to a partial UTF-8 character is named by its vocabulary entry, and a name
    that two alternatives share gets ``<token ID>`` appended, so ``top`` holds exactly k entries.
    """

    kind = "hf"
    has_logits = True
    supports_json_schema = False
    supports_logprobs = True

    def __init__(self, options: Mapping[str, Any]) -> None:
        self.options = parse_options(options)
        set_offline()  # before transformers and huggingface_hub read their settings
        try:
            import torch
            import transformers  # noqa: F401
        except ImportError as exc:
            raise MissingDependencyError(
                f"The hf backend needs torch and transformers ({exc.name} is missing): {INSTALL_HINT}"
            ) from None
        self._torch = torch
        self._lock = threading.Lock()
        self._model_name = self.options.model
        self.path = resolve_model_path(self.options.model)
        self._revision = weights_revision(self.path)
        self.device = self._resolve_device(self.options.device)
        self.dtype_name = self.options.dtype or (
            "float32" if self.device.type == "cpu" else self._cuda_default_dtype()
        )
        t0 = time.perf_counter()
        self.processor = load_processor(self.path)
        self.tokenizer = self.processor.tokenizer
        self.model = self._load_model()
        self.load_s = time.perf_counter() - t0
        self._prepare_tokens()

    # -- setup -------------------------------------------------------------------------------------------

    def _resolve_device(self, device: str) -> torch.device:
        torch = self._torch
        if device == "auto":
            device = "cuda" if torch.cuda.is_available() else "cpu"
        if device.startswith("cuda"):
            if not torch.cuda.is_available():
                raise BackendError(
                    f"hf backend: device={device!r} but torch {torch.__version__} sees no CUDA device; "
                    "use device=cpu (or auto)"
                )
            index = int(device.split(":")[1]) if ":" in device else 0
            if index >= torch.cuda.device_count():
                raise BackendError(
                    f"hf backend: device={device!r} but only {torch.cuda.device_count()} CUDA device(s) "
                    "are visible"
                )
        resolved: Any = torch.device(device)
        return resolved  # type: ignore[no-any-return]  # torch is lazily bound here (untyped)

    def _cuda_default_dtype(self) -> str:
        return "bfloat16" if self._torch.cuda.is_bf16_supported() else "float16"

    def _load_model(self) -> Any:
        from transformers import AutoModelForImageTextToText, GenerationConfig

        dtype: Any = "auto" if self.dtype_name == "auto" else getattr(self._torch, self.dtype_name)
        try:
            model: Any = AutoModelForImageTextToText.from_pretrained(
                str(self.path), local_files_only=True, dtype=dtype
            )
        except (OSError, ValueError, KeyError) as exc:
            raise MissingWeightsError(
                f"hf backend: cannot load an image-text-to-text model from {self.path}: "
                f"{type(exc).__name__}: {exc}"
            ) from None
        model = model.to(self.device).eval()
        self.checkpoint_generation_config = model.generation_config
        ckpt = model.generation_config
        eos: list[int] = []
        for src in (ckpt.eos_token_id, self.tokenizer.eos_token_id):
            for tid in src if isinstance(src, list) else [src]:
                if isinstance(tid, int) and tid not in eos:
                    eos.append(tid)
        template = self._chat_template() or ""
        for marker in _END_OF_TURN:
            if marker in template:
                tid = self.tokenizer.convert_tokens_to_ids(marker)
                if isinstance(tid, int) and tid != self.tokenizer.unk_token_id and tid not in eos:
                    eos.append(tid)
        if not eos:
            raise MissingWeightsError(f"hf backend: {self.path} defines no end-of-sequence token")
        self.eos_token_ids = eos
        pad = self.tokenizer.pad_token_id
        self.pad_token_id = pad if isinstance(pad, int) else eos[0]
        if self.tokenizer.pad_token_id is None:
            self.tokenizer.pad_token_id = self.pad_token_id
        # Only the request's parameters decide decoding: a neutral config replaces the checkpoint's.
        model.generation_config = GenerationConfig(
            eos_token_id=eos, pad_token_id=self.pad_token_id, bos_token_id=ckpt.bos_token_id
        )
        return model

    def _prepare_tokens(self) -> None:
        self.tokenizer.padding_side = "left"
        self._token_str: dict[int, str] = {}
        self._accepts_logits_to_keep = "logits_to_keep" in inspect.signature(self.model.forward).parameters

    def _chat_template(self) -> str | None:
        template = getattr(self.processor, "chat_template", None) or getattr(
            self.tokenizer, "chat_template", None
        )
        if isinstance(template, dict):
            template = template.get("default") or next(iter(template.values()), None)
        return template if isinstance(template, str) else folder_chat_template(self.path)

    # -- identity ----------------------------------------------------------------------------------------

    @property
    def model_id(self) -> str:
        return self._model_name

    @property
    def revision(self) -> str:
        return self._revision

    @property
    def num_layers(self) -> int:
        """The number of decoder layers (rows of :meth:`logit_lens`)."""
        return int(self.model.config.get_text_config().num_hidden_layers)

    def close(self) -> None:
        """Drop the model and free accelerator memory."""
        self.model = None
        if self.device.type == "cuda":
            self._torch.cuda.empty_cache()

    # -- prompts -----------------------------------------------------------------------------------------

    def render(self, request: ChatRequest) -> str:
        """The prompt: chat template with a generation prompt, or continuing a final assistant message."""
        template = self._chat_template()
        if not template:
            raise BackendError(
                f"hf backend: {self.path} has no chat template (chat_template.jinja or tokenizer)"
            )
        messages = list(request.messages)
        if not messages:
            raise BackendError("hf backend: a request needs at least one message")
        conv = [{"role": m.role, "content": _content(m)} for m in messages]
        last = messages[-1]
        if last.role != "assistant":
            return str(
                self.tokenizer.apply_chat_template(
                    conv, chat_template=template, tokenize=False, add_generation_prompt=True
                )
            )
        prefix = last.text()
        if not prefix.strip():
            return str(
                self.tokenizer.apply_chat_template(
                    conv[:-1], chat_template=template, tokenize=False, add_generation_prompt=True
                )
            )
        full = str(self.tokenizer.apply_chat_template(conv, chat_template=template, tokenize=False))
        for needle in (prefix, prefix.rstrip(), prefix.strip()):
            at = full.rfind(needle)
            if needle and at >= 0:
                return full[: at + len(needle)]
        raise BackendError(
            "hf backend: cannot find the final assistant message in the rendered prompt to continue it"
        )

    def _encode(self, requests: Sequence[ChatRequest]) -> Any:
        texts = [self.render(r) for r in requests]
        images = [[to_pil(img) for img in r.images()] for r in requests]
        kwargs: dict[str, Any] = {
            "text": texts,
            "padding": True,
            "return_tensors": "pt",
            "add_special_tokens": False,
        }
        if any(images):
            kwargs["images"] = images
        try:
            inputs = self.processor(**kwargs)
        except Exception as exc:
            raise BackendError(
                f"hf backend: the processor rejected the inputs: {type(exc).__name__}: {exc}"
            ) from exc
        # pixel values in the model's dtype (some vision towers do not cast them); ids stay integers
        return inputs.to(self.device, dtype=self.model.dtype)

    def _decoded(self, tid: int) -> str:
        text = self.tokenizer.decode([tid], skip_special_tokens=False, clean_up_tokenization_spaces=False)
        return str(text)

    def _token_text(self, tid: int) -> str:
        """The token as text; a partial UTF-8 byte (decodes to U+FFFD) is named by its vocabulary entry."""
        text = self._token_str.get(tid)
        if text is None:
            text = self._decoded(tid)
            if not text or "\ufffd" in text:
                raw = self.tokenizer.convert_ids_to_tokens(tid)
                text = raw if isinstance(raw, str) and raw else f"<token {tid}>"
            self._token_str[tid] = text
        return text

    def _batches(self, n: int) -> list[range]:
        size = self.options.batch_size
        return [range(i, min(i + size, n)) for i in range(0, n, size)]

    # -- generation ---------------------------------------------------------------------------------------

    def complete(
        self, requests: Sequence[ChatRequest], on_result: ResultCallback | None = None
    ) -> list[Completion]:
        """One completion per request, in order (see the class docstring for decoding).

        ``on_result(index, completion)`` is called for each request as its batch finishes.
        """
        if self.model is None:
            raise BackendError("hf backend: the backend is closed")
        out: list[Completion] = []
        with self._lock:
            for batch in self._batches(len(requests)):
                done = self._complete_batch([requests[i] for i in batch])
                for index, completion in zip(batch, done, strict=True):
                    if on_result is not None:
                        on_result(index, completion)
                out.extend(done)
        return out

    def _complete_batch(self, requests: list[ChatRequest]) -> list[Completion]:
        torch = self._torch
        t0 = time.perf_counter()
        inputs = self._encode(requests)
        prompt_len = int(inputs["input_ids"].shape[1])
        prompt_tokens = inputs["attention_mask"].sum(dim=1).tolist()
        max_new = max(r.params.max_tokens for r in requests)
        generators: list[Any] = []
        for r in requests:
            if r.params.sampled:
                gen = torch.Generator(device="cpu")
                gen.manual_seed(_sample_seed(r.params.seed, r.sample_index))
                generators.append(gen)
            else:
                generators.append(None)
        want_lp = [r.params.top_logprobs is not None for r in requests]
        gen_kwargs: dict[str, Any] = {
            "max_new_tokens": max_new,
            "do_sample": False,
            "num_beams": 1,
            "return_dict_in_generate": True,
            "output_logits": any(want_lp),
            "eos_token_id": self.eos_token_ids,
            "pad_token_id": self.pad_token_id,
        }
        if any(g is not None for g in generators):
            from transformers import LogitsProcessorList

            sampler = _RowSampler(
                [max(r.params.temperature, 1e-6) for r in requests],
                [r.params.top_p for r in requests],
                generators,
            )
            gen_kwargs["logits_processor"] = LogitsProcessorList([sampler])
        with torch.inference_mode():
            try:
                result = self.model.generate(**inputs, **gen_kwargs)
            except (RuntimeError, ValueError, TypeError, IndexError) as exc:
                raise BackendError(f"hf backend: generation failed: {type(exc).__name__}: {exc}") from exc
        new_tokens = result.sequences[:, prompt_len:].tolist()
        k_max = max((r.params.top_logprobs or 0) for r in requests)
        steps: list[tuple[list[list[float]], list[list[int]], Any]] = []
        if any(want_lp):
            for step_logits in result.logits:
                lsm = torch.log_softmax(step_logits.float(), dim=-1)
                if k_max > 0:
                    vals, idx = torch.topk(lsm, k=min(k_max, lsm.shape[-1]), dim=-1)
                    steps.append((vals.tolist(), idx.tolist(), lsm))
                else:
                    steps.append(([[] for _ in requests], [[] for _ in requests], lsm))
        share = (time.perf_counter() - t0) / len(requests)
        eos = set(self.eos_token_ids)
        completions: list[Completion] = []
        for row, r in enumerate(requests):
            tokens = new_tokens[row][: r.params.max_tokens]
            stop_at = next((j for j, t in enumerate(tokens) if t in eos), None)
            if stop_at is not None:
                content, finish, n_completion = tokens[:stop_at], "stop", stop_at + 1
            else:
                content, finish, n_completion = tokens, "length", len(tokens)
            text = str(
                self.tokenizer.decode(content, skip_special_tokens=True, clean_up_tokenization_spaces=False)
            )
            logprobs: tuple[TokenLogprobs, ...] | None = None
            if want_lp[row]:
                k = r.params.top_logprobs or 0
                items: list[TokenLogprobs] = []
                for t, tid in enumerate(content):
                    vals, idx, lsm = steps[t]
                    top: dict[str, float] = {}
                    for v, i in zip(vals[row][:k], idx[row][:k], strict=True):
                        key = self._token_text(i)
                        top[key if key not in top else f"{key}<token {i}>"] = float(v)
                    items.append(
                        TokenLogprobs(token=self._token_text(tid), logprob=float(lsm[row, tid]), top=top)
                    )
                logprobs = tuple(items)
            completions.append(
                Completion(
                    text=text,
                    model=self.model_id,
                    finish_reason=finish,
                    logprobs=logprobs,
                    usage=Usage(prompt_tokens=int(prompt_tokens[row]), completion_tokens=n_completion),
                    latency_s=share,
                )
            )
        return completions

    # -- scoring primitives ------------------------------------------------------------------------------

    def candidate_token_ids(self, candidates: Sequence[str]) -> dict[str, list[int]]:
        """The distinct first-token ids of ``word``, `` word``, ``Word`` and `` Word`` for each candidate.

        A first token that is only whitespace is skipped; a token shared by several candidates is
        dropped from all of them (it cannot tell them apart), so the candidates' probabilities sum to
        at most 1. Raises :class:`BackendError` when a candidate is left with no token.
        """
        if not candidates:
            raise BackendError("hf backend: no candidate words given")
        if len(set(candidates)) != len(candidates):
            raise BackendError(f"hf backend: duplicate candidate words in {list(candidates)}")
        sets: dict[str, list[int]] = {}
        for word in candidates:
            w = word.strip()
            ids: list[int] = []
            for variant in (w, f" {w}", w[:1].upper() + w[1:], f" {w[:1].upper()}{w[1:]}"):
                encoded = self.tokenizer.encode(variant, add_special_tokens=False)
                if not encoded:
                    continue
                first = int(encoded[0])
                if not self._decoded(first).strip() and len(encoded) > 1:
                    continue
                if first not in ids:
                    ids.append(first)
            sets[word] = ids
        counts: dict[int, int] = {}
        for ids in sets.values():
            for tid in ids:
                counts[tid] = counts.get(tid, 0) + 1
        out: dict[str, list[int]] = {}
        for word, ids in sets.items():
            kept = [t for t in ids if counts[t] == 1]
            if not kept:
                raise BackendError(
                    f"hf backend: candidate {word!r} has no first token of its own (shared with another "
                    "candidate); "
                    "its probability cannot be read from the next token"
                )
            out[word] = kept
        return out

    def _forward_last(self, requests: Sequence[ChatRequest], hidden: bool = False) -> Any:
        inputs = self._encode(requests)
        kwargs: dict[str, Any] = {"use_cache": False}
        if hidden:
            kwargs["output_hidden_states"] = True
        if self._accepts_logits_to_keep:
            kwargs["logits_to_keep"] = 1
        with self._torch.inference_mode():
            try:
                return self.model(**inputs, **kwargs)
            except (RuntimeError, ValueError, TypeError, IndexError) as exc:
                raise BackendError(f"hf backend: forward pass failed: {type(exc).__name__}: {exc}") from exc

    def next_token_logprobs(
        self, requests: Sequence[ChatRequest], candidates: Sequence[str]
    ) -> list[dict[str, float]]:
        """For each request, ``{candidate: log p(first token of candidate)}`` at the next position.

        One forward pass of the prompt per request (batched); the log-probability is the full-vocabulary
        log-softmax, summed (logsumexp) over the candidate's variants (see :meth:`candidate_token_ids`).
        """
        if self.model is None:
            raise BackendError("hf backend: the backend is closed")
        token_sets = self.candidate_token_ids(candidates)
        results: list[dict[str, float]] = []
        with self._lock:
            for batch in self._batches(len(requests)):
                outputs = self._forward_last([requests[i] for i in batch])
                lsm = self._torch.log_softmax(outputs.logits[:, -1, :].float(), dim=-1).cpu()
                for row in range(lsm.shape[0]):
                    values = lsm[row]
                    results.append(
                        {w: _logsumexp([float(values[t]) for t in ids]) for w, ids in token_sets.items()}
                    )
        return results

    def _final_norm_and_head(self) -> tuple[Any, Any]:
        head = self.model.get_output_embeddings()
        roots: list[Any] = []
        inner = getattr(self.model, "model", None)
        for holder in (inner, self.model):
            for name in ("language_model", "text_model"):
                sub = getattr(holder, name, None) if holder is not None else None
                if sub is not None:
                    roots.append(sub)
        roots.append(inner)
        with contextlib.suppress(AttributeError, NotImplementedError):
            roots.append(self.model.get_decoder())
        for root in roots:
            for name in ("norm", "final_layernorm", "ln_f", "final_layer_norm"):
                norm = getattr(root, name, None) if root is not None else None
                if callable(norm):
                    return norm, head
        raise BackendError(
            f"hf backend: cannot find the final norm of {type(self.model).__name__} for the logit lens"
        )

    def logit_lens(self, request: ChatRequest, candidates: Sequence[str]) -> list[dict[str, float]]:
        """Candidate probabilities at every decoder layer (softmax restricted to the candidates).

        Each layer's hidden state at the last prompt position goes through the model's final norm and
        LM head; the last row uses the model's own output logits, so it equals the renormalised
        :meth:`next_token_logprobs`. Embeddings are excluded: one row per decoder layer.
        """
        if self.model is None:
            raise BackendError("hf backend: the backend is closed")
        torch = self._torch
        token_sets = self.candidate_token_ids(candidates)
        norm, head = self._final_norm_and_head()
        with self._lock:
            outputs = self._forward_last([request], hidden=True)
            hidden_states = outputs.hidden_states
            n_layers = self.num_layers
            if hidden_states is None or len(hidden_states) < n_layers:
                raise BackendError(
                    f"hf backend: {type(self.model).__name__} returned {len(hidden_states or ())} hidden "
                    f"states for {n_layers} decoder layers"
                )
            rows_logits: list[Any] = []
            with torch.inference_mode():
                # The last n_layers entries are the layers' outputs (the first, the embeddings); the
                # final layer's row is the model's own logits, already normed (norm applied once).
                for h in hidden_states[len(hidden_states) - n_layers : -1]:
                    rows_logits.append(head(norm(h[:, -1:, :]))[0, -1].float())
            rows_logits.append(outputs.logits[0, -1].float())
        rows: list[dict[str, float]] = []
        for logits in rows_logits:
            lsm = torch.log_softmax(logits, dim=-1).cpu()
            scores = {w: _logsumexp([float(lsm[t]) for t in ids]) for w, ids in token_sets.items()}
            total = _logsumexp(list(scores.values()))
            rows.append({w: math.exp(s - total) for w, s in scores.items()})
        return rows


@register_backend(
    "hf",
    "A local transformers vision-language model folder (Qwen2-VL, Qwen2.5-VL, LLaVA, ...), batched.",
    options=OPTIONS,
)
def _factory(options: Mapping[str, Any]) -> VLMBackend:
    return HFBackend(options)

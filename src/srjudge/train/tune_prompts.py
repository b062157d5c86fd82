"""Stage examples as the judge sends them: the perceive-infer protocol's own prompts and message layout,
rendered with the model's chat template, and the collator that trains on the completion tokens only."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from srjudge.errors import SpecError
from srjudge.judges.vlm.parsing import LEVELS
from srjudge.judges.vlm.protocols.perceive_infer import infer_prompt_text
from srjudge.train.tune_targets import Distortion, perception_target
from srjudge.vlm.images import DEFAULT_MAX_SIDE, fit_longest_side
from srjudge.vlm.prompts import PROMPTS, PromptTemplate
from srjudge.vlm.request import ChatMessage, ImagePart, TextPart


def protocol_messages(
    template: PromptTemplate, parts: Sequence[TextPart | ImagePart]
) -> tuple[ChatMessage, ...]:
    """The messages the VLM judge sends for ``template`` (first attempt): system (if any), then user."""
    messages: list[ChatMessage] = []
    if template.system:
        messages.append(ChatMessage.system(template.system))
    messages.append(ChatMessage("user", tuple(parts)))
    return tuple(messages)


@dataclass(frozen=True)
class TrainExample:
    """One SFT example: the prompt messages (images inside), the completion text, and where it came from."""

    messages: tuple[ChatMessage, ...]
    completion: str
    source: str = ""

    def key(self) -> dict[str, Any]:
        """JSON-ready identity (image digests, not pixels): what enters the dataset digest."""
        return {
            "messages": [m.key() for m in self.messages],
            "completion": self.completion,
            "source": self.source,
        }


def perceive_example(
    image: np.ndarray,
    content: str,
    distortions: Sequence[Distortion],
    *,
    max_side: int = DEFAULT_MAX_SIDE,
    source: str = "",
) -> TrainExample:
    """Stage 1: the image resized as the judge sends it, the perceive prompt, and the JSON target."""
    template = PROMPTS.get("perceive")
    fitted, _ = fit_longest_side(image, max_side)
    messages = protocol_messages(template, [ImagePart.of(fitted), TextPart(template.render())])
    return TrainExample(messages, perception_target(content, distortions), source)


def infer_example(
    content: str, distortions: Sequence[tuple[str, str]], level: str, *, source: str = ""
) -> TrainExample:
    """Stage 2: the infer prompt for a perceived description (text only, as in the protocol) -> a level."""
    if level not in LEVELS:
        raise SpecError(f"level {level!r} is not one of {', '.join(LEVELS)}")
    template = PROMPTS.get("infer")
    messages = protocol_messages(template, [TextPart(infer_prompt_text(content, distortions))])
    return TrainExample(messages, level, source)


def _chat_template(processor: Any) -> str:
    template = getattr(processor, "chat_template", None) or getattr(
        processor.tokenizer, "chat_template", None
    )
    if isinstance(template, dict):
        template = template.get("default") or next(iter(template.values()), None)
    if not isinstance(template, str) or not template:
        raise SpecError(
            "the model's processor has no chat template (chat_template.jinja or tokenizer_config.json)"
        )
    return template


def _conversation(messages: Sequence[ChatMessage]) -> list[dict[str, Any]]:
    out = []
    for m in messages:
        content: list[dict[str, Any]] = []
        for p in m.parts:
            content.append(
                {"type": "image"} if isinstance(p, ImagePart) else {"type": "text", "text": p.text}
            )
        out.append({"role": m.role, "content": content})
    return out


def render_prompt(processor: Any, messages: Sequence[ChatMessage]) -> str:
    """The prompt text exactly as the hf backend renders it (chat template with a generation prompt)."""
    template = _chat_template(processor)
    return str(
        processor.tokenizer.apply_chat_template(
            _conversation(messages), chat_template=template, tokenize=False, add_generation_prompt=True
        )
    )


def _completion_text(processor: Any, example: TrainExample, prompt: str) -> str:
    """The completion as the chat template closes the assistant turn (e.g. ``good<|im_end|>\\n``)."""
    template = _chat_template(processor)
    conv = [*_conversation(example.messages), {"role": "assistant", "content": example.completion}]
    full = str(processor.tokenizer.apply_chat_template(conv, chat_template=template, tokenize=False))
    if not full.startswith(prompt):
        raise SpecError(
            "the chat template renders the prompt differently with and without the answer; "
            "completion-only training needs a template whose generation prompt is a prefix of the full turn"
        )
    return full[len(prompt) :]


@dataclass
class PromptCompletionCollator:
    """Turns example indices into a training batch; loss on the completion tokens only.

    Why our own collator rather than trl's ``DataCollatorForVisionLanguageModeling``: the prompt must be
    tokenised exactly as the hf backend does at judging time (its chat-template call, the judge's
    resized image, ``add_special_tokens=False``), stage 2 is text-only with a vision processor, and the
    image-only processor of a model without torchvision lacks parts trl's path expects. Per example:
    the prompt (with its images) goes through the processor, the completion through the tokenizer,
    the two are concatenated, labels are -100 on the prompt and padding, and the batch is right-padded.
    Image tensors (``pixel_values``, ``image_grid_thw``) are concatenated along the first axis;
    per-token extras (e.g. ``mm_token_type_ids``) are extended with zeros over the completion.
    """

    processor: Any
    examples: Sequence[TrainExample]
    max_length: int | None = None
    _cache: dict[int, tuple[str, str]] = field(default_factory=dict, repr=False)

    def texts(self, index: int) -> tuple[str, str]:
        """(prompt, completion) text of example ``index``."""
        if index not in self._cache:
            ex = self.examples[index]
            prompt = render_prompt(self.processor, ex.messages)
            self._cache[index] = (prompt, _completion_text(self.processor, ex, prompt))
        return self._cache[index]

    def encode(self, index: int) -> dict[str, Any]:
        import torch

        from srjudge.vlm.backends.hf_backend import to_pil

        ex = self.examples[index]
        prompt, completion = self.texts(index)
        images = [to_pil(img) for m in ex.messages for img in m.images()]
        kwargs: dict[str, Any] = {"text": [prompt], "return_tensors": "pt", "add_special_tokens": False}
        if images:
            kwargs["images"] = [images]
        enc = dict(self.processor(**kwargs))
        prompt_ids = enc.pop("input_ids")[0]
        enc.pop("attention_mask", None)
        comp_ids = torch.tensor(
            self.processor.tokenizer(completion, add_special_tokens=False)["input_ids"],
            dtype=prompt_ids.dtype,
        )
        n_prompt = int(prompt_ids.shape[0])
        ids = torch.cat([prompt_ids, comp_ids])
        labels = torch.cat([torch.full((n_prompt,), -100, dtype=prompt_ids.dtype), comp_ids])
        if self.max_length is not None and ids.shape[0] > self.max_length:
            if n_prompt >= self.max_length:
                raise SpecError(
                    f"example {ex.source or index}: the prompt alone is {n_prompt} tokens, over max_length "
                    f"{self.max_length}; raise max_length or lower max_side"
                )
            ids, labels = ids[: self.max_length], labels[: self.max_length]
        per_token = {}
        rest = {}
        for k, v in enc.items():
            if isinstance(v, torch.Tensor) and v.dim() == 2 and v.shape[0] == 1 and v.shape[1] == n_prompt:
                pad = torch.zeros(ids.shape[0] - n_prompt, dtype=v.dtype)
                per_token[k] = torch.cat([v[0], pad])[: ids.shape[0]]
            else:
                rest[k] = v
        return {"input_ids": ids, "labels": labels, "per_token": per_token, "rest": rest}

    def __call__(self, batch: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
        import torch

        encoded = [self.encode(int(row["index"])) for row in batch]
        pad_id = self.processor.tokenizer.pad_token_id
        if pad_id is None:
            pad_id = self.processor.tokenizer.eos_token_id
        width = max(int(e["input_ids"].shape[0]) for e in encoded)
        n = len(encoded)
        input_ids = torch.full((n, width), int(pad_id), dtype=encoded[0]["input_ids"].dtype)
        labels = torch.full((n, width), -100, dtype=input_ids.dtype)
        attention = torch.zeros((n, width), dtype=torch.long)
        for i, e in enumerate(encoded):
            length = int(e["input_ids"].shape[0])
            input_ids[i, :length] = e["input_ids"]
            labels[i, :length] = e["labels"]
            attention[i, :length] = 1
        out: dict[str, Any] = {"input_ids": input_ids, "attention_mask": attention, "labels": labels}
        for key in encoded[0]["per_token"]:
            t = torch.zeros((n, width), dtype=encoded[0]["per_token"][key].dtype)
            for i, e in enumerate(encoded):
                t[i, : e["per_token"][key].shape[0]] = e["per_token"][key]
            out[key] = t
        for key in encoded[0]["rest"]:
            values = [e["rest"][key] for e in encoded if key in e["rest"]]
            if values and all(isinstance(v, torch.Tensor) for v in values):
                out[key] = torch.cat(values, dim=0)
        return out

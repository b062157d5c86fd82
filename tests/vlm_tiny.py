"""A tiny random-weight Qwen2-VL, built offline from a config, for tests of the local (``hf``) backend.

Nothing is downloaded: the tokenizer is a byte-level BPE trained here with ``tokenizers`` on a few
hundred strings that use the words the judges emit, the image processor is the PIL one (no
torchvision), and the weights are random but seeded. Building takes well under a second and the
folder is under 2 MB. The text it generates is garbage; tests assert types, shapes and sums.

Usage from a ``conftest.py`` (a session fixture, built once)::

    import pytest
    from vlm_tiny import build_tiny_qwen2vl

    @pytest.fixture(scope="session")
    def tiny_vlm(tmp_path_factory):
        return build_tiny_qwen2vl(tmp_path_factory.mktemp("tiny-vlm"))

and then ``create_backend("hf", {"model": str(tiny_vlm)})``. Shapes: 2 decoder layers, hidden 64,
vocabulary 512; a 64x64 image becomes 4 image tokens (the image processor keeps 56x56 to 112x112 pixels).
"""

from __future__ import annotations

import itertools
import json
from pathlib import Path
from typing import Any

#: The special tokens, in id order after the learned vocabulary is built (they take the first ids).
SPECIAL_TOKENS = (
    "<|endoftext|>",
    "<|im_start|>",
    "<|im_end|>",
    "<|vision_start|>",
    "<|vision_end|>",
    "<|image_pad|>",
    "<|video_pad|>",
)

#: A Qwen-style chat template written for these tests: string or list content, images as
#: ``<|vision_start|><|image_pad|><|vision_end|>``, a default system turn, and a generation prompt.
CHAT_TEMPLATE = (
    "{% for message in messages %}"
    "{% if loop.first and message['role'] != 'system' %}"
    "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n"
    "{% endif %}"
    "<|im_start|>{{ message['role'] }}\n"
    "{% if message['content'] is string %}"
    "{{ message['content'] }}"
    "{% else %}"
    "{% for part in message['content'] %}"
    "{% if part['type'] == 'image' %}"
    "<|vision_start|><|image_pad|><|vision_end|>"
    "{% elif part['type'] == 'text' %}"
    "{{ part['text'] }}"
    "{% endif %}"
    "{% endfor %}"
    "{% endif %}"
    "<|im_end|>\n"
    "{% endfor %}"
    "{% if add_generation_prompt %}"
    "<|im_start|>assistant\n"
    "{% endif %}"
)

_LEVELS = ("excellent", "good", "fair", "poor", "bad")
_WORD_TEXT = """first second tie score reason confidence fidelity realism text image images quality rate
    rating the is of a and which better answer with one word tags tag artifacts blur noise sharp detail
    details faces face edges texture textures super resolution upscaled low high input output candidate
    reference verdict winner level overall json yes no true false none hallucination ringing jpeg color
    structure consistent identity natural plausible A B Image Quality Score Reason Answer The Which"""
_WORDS = tuple(_WORD_TEXT.split())


def _corpus() -> list[str]:
    """A few hundred deterministic training strings covering the judges' vocabulary and JSON replies."""
    out: list[str] = []
    for level, other in itertools.product(_LEVELS, _WORDS):
        out.append(f"The quality of the image is {level}. {other.capitalize()} {other}.")
    for level in _LEVELS:
        out += [level, f" {level}", level.capitalize(), f" {level.capitalize()}", f"Rating: {level}"]
    for i, level in enumerate(_LEVELS):
        conf = (i + 1) / 10
        out.append(
            f'{{"score": {5 - i}, "level": "{level}", "confidence": {conf:.2f}, '
            f'"reason": "fidelity and realism are {level}", "tags": ["blur", "noise"]}}'
        )
        out.append(f'{{"winner": "first", "confidence": {conf:.1f}, "reason": "the first image is {level}"}}')
        out.append(f'{{"winner": "second", "fidelity": {i}, "realism": {4 - i}, "text": "{level}"}}')
        out.append(f'{{"winner": "tie", "reason": "both are {level}"}}')
    out += [f"{a} {b} {a}{b} {a}.{b} {a * 10 + b}" for a in range(10) for b in range(10)]
    out += ["first second tie", "First Second Tie", "A B tie", "<score>4</score> <reason>ok</reason>"]
    out += ["{ } [ ] : , \" ' ( ) < > / = + - * . ! ? ; \n"]
    return out


def _train_tokenizer(vocab_size: int) -> Any:
    """A byte-level BPE trained on :func:`_corpus`, with the Qwen specials first."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=list(SPECIAL_TOKENS),
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(_corpus(), trainer=trainer)
    return tok


def build_tiny_qwen2vl(folder: Path, seed: int = 0, vocab_size: int = 512) -> Path:
    """Build and ``save_pretrained`` a tiny Qwen2-VL into ``folder``; returns ``folder``.

    The folder has the layout of a real Qwen2-VL checkpoint: config.json, generation_config.json,
    model.safetensors, tokenizer.json/tokenizer_config.json, chat_template.jinja and a
    preprocessor_config.json that declares ``Qwen2VLProcessor``. Without torchvision
    ``AutoProcessor`` cannot build that processor (its video processor needs torchvision);
    ``srjudge.models.hf_folder.load_processor(folder)`` builds the image-only one. The
    weights (and the folder's bytes) are identical for a given ``seed``.
    """
    import torch
    from transformers import (
        PreTrainedTokenizerFast,
        Qwen2VLConfig,
        Qwen2VLForConditionalGeneration,
        Qwen2VLImageProcessorPil,
    )

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)

    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=_train_tokenizer(vocab_size),
        eos_token="<|im_end|>",
        pad_token="<|endoftext|>",
        unk_token=None,
        additional_special_tokens=list(SPECIAL_TOKENS[1:]),
        chat_template=CHAT_TEMPLATE,
        clean_up_tokenization_spaces=False,
    )
    ids: dict[str, int] = {t: int(tokenizer.get_vocab()[t]) for t in SPECIAL_TOKENS}

    config = Qwen2VLConfig(
        text_config={
            "vocab_size": len(tokenizer),
            "hidden_size": 64,
            "intermediate_size": 128,
            "num_hidden_layers": 2,
            "num_attention_heads": 4,
            "num_key_value_heads": 2,
            "max_position_embeddings": 2048,
            "rope_parameters": {"rope_type": "default", "rope_theta": 1e4, "mrope_section": [2, 3, 3]},
            "bos_token_id": ids["<|endoftext|>"],
            "eos_token_id": ids["<|im_end|>"],
            "pad_token_id": ids["<|endoftext|>"],
        },
        vision_config={
            "depth": 2,
            "embed_dim": 32,
            "hidden_size": 64,
            "num_heads": 2,
            "mlp_ratio": 2,
            "patch_size": 14,
            "spatial_merge_size": 2,
            "temporal_patch_size": 2,
        },
        image_token_id=ids["<|image_pad|>"],
        video_token_id=ids["<|video_pad|>"],
        vision_start_token_id=ids["<|vision_start|>"],
        vision_end_token_id=ids["<|vision_end|>"],
    )
    with torch.random.fork_rng(devices=[]):  # seeded without touching the caller's RNG state
        torch.manual_seed(seed)
        model = Qwen2VLForConditionalGeneration(config).eval()
    model.generation_config.eos_token_id = [ids["<|im_end|>"], ids["<|endoftext|>"]]
    model.generation_config.pad_token_id = ids["<|endoftext|>"]
    model.generation_config.bos_token_id = ids["<|endoftext|>"]
    model.save_pretrained(folder)

    # The layout of a real Qwen2-VL checkpoint: the processor class is declared in preprocessor_config.json.
    image_processor = Qwen2VLImageProcessorPil(min_pixels=56 * 56, max_pixels=112 * 112)
    image_processor.save_pretrained(folder)
    pre = json.loads((folder / "preprocessor_config.json").read_text())
    pre["processor_class"] = "Qwen2VLProcessor"
    (folder / "preprocessor_config.json").write_text(json.dumps(pre, indent=2) + "\n")
    tokenizer.save_pretrained(folder)
    (folder / "tiny_model.json").write_text(json.dumps({"seed": seed, "vocab_size": len(tokenizer)}) + "\n")
    return folder

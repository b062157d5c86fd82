"""Judge training: shared plumbing (:mod:`.common`) and the two-stage perceive-then-infer SFT (:mod:`.tune`).

Submodules import torch, transformers, trl and peft lazily; importing this package is light.
"""

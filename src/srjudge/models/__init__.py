"""Deep models written for srjudge: AlexNet/VGG16 feature extractors, LPIPS, DISTS and CLIP embeddings.

Importing this package does not import torch; its submodules do:

- :mod:`srjudge.models.backbones`: ``AlexNetFeatures``, ``VGG16Features`` (torchvision ``state_dict`` keys)
- :mod:`srjudge.models.lpips`: ``LPIPS``, ``load_lpips``
- :mod:`srjudge.models.dists`: ``DISTS``, ``load_dists``
- :mod:`srjudge.models.clip`: ``clip_image_embeddings``, ``load_clip``
- :mod:`srjudge.models.checkpoints`: ``load_state_dict_file``, ``check_state_dict``

Weights are never downloaded: every loader takes local file paths.
"""

from __future__ import annotations

from srjudge.models._deps import TORCH_PIN, require_torch, require_transformers

__all__ = ["TORCH_PIN", "require_torch", "require_transformers"]

"""Deep models for srjudge: AlexNet/VGG16 features, LPIPS, DISTS, CLIP embeddings, the reward model.

Importing this package does not import torch; its submodules do:

- :mod:`srjudge.models.backbones`: ``AlexNetFeatures``, ``VGG16Features`` (torchvision ``state_dict`` keys)
- :mod:`srjudge.models.lpips`: ``LPIPS``, ``load_lpips``
- :mod:`srjudge.models.dists`: ``DISTS``, ``load_dists``
- :mod:`srjudge.models.clip`: ``clip_image_embeddings``, ``load_clip``
- :mod:`srjudge.models.checkpoints`: ``load_state_dict_file``, ``check_state_dict``
- :mod:`srjudge.models.hf_folder`: ``resolve_model_path``, ``weights_revision``, ``load_processor``
  (a local Hugging Face model folder)
- :mod:`srjudge.models.hf_vlm`: ``load_vlm_for_training``, ``save_trained_vlm`` (a local VLM)
- :mod:`srjudge.models.reward_net`: ``LRConditionedRewardModel`` (the ``reward`` judge's network)

Weights are never downloaded: every loader takes local file paths.
"""

from __future__ import annotations

from srjudge.models._deps import TORCH_PIN, require_torch, require_transformers

__all__ = ["TORCH_PIN", "require_torch", "require_transformers"]

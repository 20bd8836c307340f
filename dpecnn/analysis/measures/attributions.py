"""Input attributions through Captum, correct for every dpecnn architecture.

* Grad-CAM (Selvaraju et al.) on the model's ``attribution_layer``: the last spatial map of
  *invariant* channels (after group / norm pooling for steerable models, the last residual
  stage for the conventional one). ``L = ReLU(Σ_k α_k A_k)``, ``α_k = mean_{h,w} ∂y_c/∂A_k``,
  upsampled bilinearly to the input size, so maps are non-negative and input-sized.
* Guided backprop (Springenberg et al.): the input gradient with every non-linearity's
  backward pass replaced by ``ReLU(∂y/∂input)`` — negative gradient signals are zeroed at
  each non-linearity. Captum's ``GuidedBackprop`` applies this rule to ``nn.ReLU`` only; the
  dpecnn models use Mish and induced gates, so :class:`GuidedBackprop` hooks those too
  (without it the result silently equals the plain gradient).
"""

from __future__ import annotations

import warnings

import torch
import torch.nn as nn
from captum._utils.common import _register_backward_hook
from captum.attr import GuidedBackprop as CaptumGuidedBackprop
from captum.attr import LayerAttribution, LayerGradCam

NONLINEARITIES: tuple[type[nn.Module], ...] = (nn.ReLU, nn.Mish)


def _nonlinearity_types() -> tuple[type[nn.Module], ...]:
    from dpecnn.models.equivariant import InducedGate  # escnn import only when needed

    return NONLINEARITIES + (InducedGate,)


class GuidedBackprop(CaptumGuidedBackprop):
    """Captum's guided backprop, with the guided rule on every dpecnn non-linearity."""

    def _register_hooks(self, module: nn.Module) -> None:
        if isinstance(module, _nonlinearity_types()):
            self.backward_hooks.extend(_register_backward_hook(module, self._backward_hook, self))


def _targets(model: nn.Module, x: torch.Tensor, target) -> torch.Tensor:
    if target is not None:
        return torch.as_tensor(target, device=x.device).expand(len(x))
    with torch.no_grad():
        return model(x).argmax(1)


def grad_cam(model: nn.Module, x: torch.Tensor, target=None) -> torch.Tensor:
    """Grad-CAM maps ``(B, 1, H, W)`` (input size, ≥ 0) for ``target`` (default: prediction)."""
    model.eval()
    cam = LayerGradCam(model, model.attribution_layer)
    maps = cam.attribute(x, target=_targets(model, x, target), relu_attributions=True)
    return LayerAttribution.interpolate(maps.detach(), tuple(x.shape[-2:]), interpolate_mode="bilinear").clamp_min(0)


def guided_backprop(model: nn.Module, x: torch.Tensor, target=None) -> torch.Tensor:
    """Guided-backprop attributions ``(B, C, H, W)`` for ``target`` (default: prediction)."""
    model.eval()
    targets = _targets(model, x, target)
    with warnings.catch_warnings():
        # Captum announces that it overrides the ReLU gradients: that is guided backprop itself.
        warnings.filterwarnings("ignore", message="Setting backward hooks on ReLU activations", category=UserWarning)
        return GuidedBackprop(model).attribute(x.clone().requires_grad_(True), target=targets).detach()


def input_gradient(model: nn.Module, x: torch.Tensor, target=None) -> torch.Tensor:
    """The plain input gradient ``∂y_c/∂x`` (what guided backprop must differ from)."""
    model.eval()
    x = x.clone().requires_grad_(True)
    out = model(x)
    out.gather(1, _targets(model, x, target)[:, None]).sum().backward()
    return x.grad.detach()


def saliency_map(attribution: torch.Tensor) -> torch.Tensor:
    """``(B, C, H, W)`` attribution → ``(B, H, W)`` magnitude map ``Σ_c |a_c|``."""
    return attribution.abs().sum(1)


def attribution_maps(model: nn.Module, x: torch.Tensor, target=None) -> dict[str, torch.Tensor]:
    """``{"gradcam": (B, H, W), "guided": (B, H, W)}``: Grad-CAM and the guided-backprop
    magnitude (:func:`saliency_map`) of the batch ``x``, for ``target`` (default: prediction)."""
    return {"gradcam": grad_cam(model, x, target)[:, 0], "guided": saliency_map(guided_backprop(model, x, target))}

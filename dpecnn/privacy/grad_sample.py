"""Exact per-sample gradients through steerable networks, on Opacus' hook machinery.

Opacus computes per-sample gradients layer by layer from the layer's input ``a`` and the
gradient ``δ`` of the loss at its output, with one rule per layer type. It has rules for
``nn.Conv2d``, ``nn.Linear`` and ``nn.GroupNorm``; this module adds the two dpecnn layers
that carry parameters:

* :class:`~dpecnn.models.equivariant.SteerableConv2d` — its filter is ``K = B(w)`` with a
  fixed linear basis expansion ``B`` (escnn). Per example ``i``:
  ``∂ℓ_i/∂K = Σ_l δ_i[:, l] ⊗ unfold(a_i)[:, l]`` (the convolution's weight-gradient rule),
  then ``∂ℓ_i/∂w = Bᵀ ∂ℓ_i/∂K``, computed for all examples at once as a batched
  vector-Jacobian product of the expansion (``torch.func.vmap`` over ``vjp``).
* :class:`~dpecnn.models.layers.FieldRMSNorm` — ``∂ℓ_i/∂γ_f = Σ_{S,H,W} x̂_i,f · δ_i,f``.

Every other dpecnn layer is parameter-free or a plain torch layer Opacus already knows.
"""

from __future__ import annotations

import warnings
from typing import Callable

import torch
import torch.nn as nn
import torch.nn.functional as F
from opacus import GradSampleModule
from opacus.grad_sample.utils import register_grad_sampler

from dpecnn.models.equivariant import SteerableConv2d
from dpecnn.models.layers import FieldRMSNorm

# Opacus' backward hooks fire on modules whose inputs (the images) need no gradient; torch
# warns about that on every backward, though it is exactly what per-sample gradients need.
warnings.filterwarnings("ignore", message="Full backward hook is firing when gradients are computed")


@register_grad_sampler(SteerableConv2d)
def steerable_conv_grad_sample(layer: SteerableConv2d, activations, backprops: torch.Tensor):
    a = activations[0]
    k = layer.kernel_size
    cols = F.unfold(a, k, padding=layer.padding)  # (B, C_in·k·k, L)
    filter_grads = torch.bmm(backprops.flatten(2), cols.transpose(1, 2))  # (B, C_out, C_in·k·k)
    _, expansion_vjp = torch.func.vjp(lambda w: layer.expand_filter(w).flatten(1), layer.weight)
    (weight_grads,) = torch.func.vmap(expansion_vjp)(filter_grads)
    return {layer.weight: weight_grads}


@register_grad_sampler(FieldRMSNorm)
def field_rms_norm_grad_sample(layer: FieldRMSNorm, activations, backprops: torch.Tensor):
    x_hat = layer.normalised(activations[0])
    return {layer.weight: (x_hat * backprops.view_as(x_hat)).flatten(2).sum(-1)}


def grad_sample_module(model: nn.Module, loss_reduction: str = "mean") -> GradSampleModule:
    """Wrap ``model`` so that backward passes fill ``p.grad_sample`` (hooks mode).

    ``strict=False``: escnn's basis expansion stores its (data-independent) basis as
    buffers, which Opacus' strict check rejects because it guards against buffers that
    carry data statistics, like BatchNorm's. dpecnn models have no such buffers.
    """
    return GradSampleModule(model, batch_first=True, loss_reduction=loss_reduction, strict=False)


def per_sample_gradients(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor] = nn.CrossEntropyLoss(reduction="none"),
) -> list[torch.Tensor]:
    """``[∂ℓ(f(x_i), y_i)/∂θ for i in batch]`` for every trainable parameter θ of ``model``.

    ``loss_fn`` returns one loss per example. The result has one tensor per trainable
    parameter (in ``model.parameters()`` order), each of shape ``(B, *θ.shape)``. The model
    is left as it was: no hooks, no ``.grad`` or ``.grad_sample`` attributes.
    """
    params = [p for p in model.parameters() if p.requires_grad]
    gsm = grad_sample_module(model, loss_reduction="sum")
    try:
        loss = loss_fn(gsm(x), y).sum()
        torch.autograd.grad(loss, params)
        return [p.grad_sample for p in params]
    finally:
        gsm._close()

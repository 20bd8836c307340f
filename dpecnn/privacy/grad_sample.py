"""Exact per-sample gradients through steerable networks, on Opacus' hook machinery.

Opacus computes per-sample gradients layer by layer from the layer's input ``a`` and the
gradient ``δ`` of the loss at its output, with one rule per layer type. It has rules for
``nn.Conv2d``, ``nn.Linear`` and ``nn.GroupNorm``; this module adds the two dpecnn layers
that carry parameters:

* :class:`~dpecnn.models.equivariant.SteerableConv2d` — its filter is ``K = B(w)`` with a
  fixed linear basis expansion ``B`` (escnn), ``K = Σ_d w_d B_d``. Per example ``i`` either
  *filter first*: ``∂ℓ_i/∂K = Σ_l δ_i[:, l] ⊗ unfold(a_i)[:, l]`` (the convolution's
  weight-gradient rule), then ``∂ℓ_i/∂w = Bᵀ ∂ℓ_i/∂K`` (:func:`expansion_transpose`); or
  *basis first*: ``∂ℓ_i/∂w_d = Σ_l ⟨δ_i[:, l], (B_d ⋆ a_i)[:, l]⟩``, a forward convolution of
  the input with the basis filters and one batched product with the output gradient
  (:func:`per_sample_basis_grads`), which never forms the ``B × C_out × C_in × k²`` filter
  gradients. Both are exact; :func:`basis_first_is_cheaper` picks one per layer. Filter first
  runs a few examples at a time (:func:`per_sample_filter_first`): their filter gradients,
  up to 2.4 MB an example for C16, stay in cache between the two products instead of making a
  round trip through memory for the whole batch. For layers with one field type in and out and
  large filter gradients (C16), :func:`per_sample_field_blocks` computes them in the basis'
  block order, which spares the transpose its reordering copy.
* :class:`~dpecnn.models.layers.Conv2d` (the conventional convolution) — the same
  per-sample filter rule as above, in a faster form than Opacus' own.
* :class:`~dpecnn.models.layers.GroupNorm` — ``∂ℓ_i/∂γ_c = Σ_{H,W} x̂_i,c · δ_i,c`` and
  ``∂ℓ_i/∂β_c = Σ_{H,W} δ_i,c``, by torch's fused GroupNorm kernels (:func:`group_norm_grad_sample`).
* :class:`~dpecnn.models.layers.FieldRMSNorm` — ``∂ℓ_i/∂γ_f = Σ_{S,H,W} x̂_i,f · δ_i,f``.

Every other dpecnn layer is parameter-free or a plain torch layer Opacus already knows.

On a CPU with several intra-op threads, the two convolution rules split a large layer's batch
into one part per thread and compute the parts at once, one Python thread each
(:func:`in_thread_parts`): examples' gradients are independent, so this changes no value.
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from functools import cache, partial

import torch
import torch.nn as nn
import torch.nn.functional as F
from opacus import GradSampleModule
from opacus.grad_sample.functorch import ft_compute_per_sample_gradient, prepare_layer
from opacus.grad_sample.utils import register_grad_sampler
from opacus.utils.module_utils import requires_grad
from torch.profiler import record_function

from dpecnn.models.equivariant import SteerableConv2d
from dpecnn.models.layers import Conv2d, FieldRMSNorm, GroupNorm

# Tuned constants of the per-sample routes. All three were measured on the 2-core development
# machine (Intel Xeon CPU, 2 torch threads, torch 2.14.1; the machine of
# dpecnn/train/reference_cpu_step_costs.json) and are used on every device: no GPU has been
# lent to measure them there (scripts/gpu_check.sh reports the speeds they give). Change one
# only with an A/B of `python -m dpecnn.bench` on the device it is tuned for.
#
# Where one batched matrix product ``δ_i · columns(a_i)ᵀ`` beats the grouped convolution on CPU:
# (largest map in output pixels, fewest input × output channels). Measured per layer, batch 256, one
# thread, both routes in chunks of GROUPED_CHUNK_BYTES, 2026-12-07: 3×3 maps from 32→32 channels on
# (2.3 ms against 3.9). 7×7 maps: 32→32 channels 5.2 against 4.4 for the grouped convolution, 64→64
# 25.7 against 29.2, 128→128 86.5 against 120.7. 14×14 maps: 16→32 9.5 against 5.1, 64→64 67.9 against
# 46.8, 96→128 124 against 141, 128→128 162–172 against 198–204. 28×28 maps: 64→128 329 against 261,
# 48→128 219 against 195, 128→256 745 against 816.
BMM_ROUTE = ((9, 0), (49, 64 * 64), (196, 96 * 128), (784, 128 * 256))
# ... and, on maps of any size, for layers with at most this many input columns ``C_in·k²`` (the
# first layer, on grey or RGB images). Batch 256, 28×28, 2 threads: 3 → 8 channels 1.6 ms against
# 5.9 for the grouped convolution, 3 → 128 13.6 against 19.0, 1 → 32 1.8 against 5.0, 4 → 64 11.0
# against 16.4 (one thread alike); 6 → 16 (54 columns) 17.5 against 11.4, 8 → 16 21 against 3.5.
BMM_MOST_INPUT_COLUMNS = 36
# Examples per grouped weight-gradient convolution or batched product: as many as keep their
# filter gradients under this many bytes. Per layer, batch 256, against fixed chunks of
# 16/32/64/128/256 examples (one thread): e's 16→32 channels on 14×14 (18 kB an example) 5.4 ms at
# 256 examples, 5.7 at 64; 32→32 on 7×7 5.4 at 128, 9.3 at 256; C4's 48→64 on 14×14 (110 kB) 30.0
# at 32–64, 59.5 at 256; 2 threads alike. (A fixed 64 before: the whole batch had made C4's DP step
# 6 % slower.) The batched product over the whole batch was slower still on larger filters (C4's
# 64→64 on 7×7: 30.6 ms against 14.7 in chunks; 128→128 on 14×14: 272 against 114).
GROUPED_CHUNK_BYTES = 4 * 2**20
# The loss per example that per_sample_gradients differentiates unless told otherwise.
PER_SAMPLE_CROSS_ENTROPY = nn.CrossEntropyLoss(reduction="none")


def filter_gradient_bytes(a: torch.Tensor, backprops: torch.Tensor, kernel_size: int) -> int:
    """Bytes of one example's filter gradient: ``C_out·C_in·k·k`` values."""
    return backprops.shape[1] * a.shape[1] * kernel_size * kernel_size * a.element_size()


def examples_per_chunk(limit_bytes: int, a: torch.Tensor, backprops: torch.Tensor, kernel_size: int) -> int:
    """As many examples of the batch as keep their filter gradients under ``limit_bytes``; at least one."""
    return max(1, min(a.shape[0], limit_bytes // filter_gradient_bytes(a, backprops, kernel_size)))


def columns(a: torch.Tensor, kernel_size: int, padding: int) -> torch.Tensor:
    """``(B, C_in·k·k, L)``: the stride-1 convolution's input patches, ``F.unfold``'s layout.

    Gathered by one copy of a strided view of the padded input, which is faster than
    ``F.unfold`` except on the smallest maps, where ``F.unfold`` stays. With the matrix product
    that follows: 3 → 8 channels on 28×28, batch 256, 1.5 ms against 5.5 (2 threads); C16's 256
    channels on 14×14, one example, 1.66 against 2.00 (one thread); but 32 channels on 3×3 maps,
    batch 256, 2.5 against 1.9 (one thread)."""
    if a.shape[2] * a.shape[3] <= 9:
        return F.unfold(a, kernel_size, padding=padding)
    padded = F.pad(a, (padding,) * 4)
    b, c, h, w = padded.shape
    s = padded.stride()
    rows, cols = h - kernel_size + 1, w - kernel_size + 1
    patches = padded.as_strided((b, c, kernel_size, kernel_size, rows, cols), (s[0], s[1], s[2], s[3], s[2], s[3]))
    return patches.reshape(b, c * kernel_size * kernel_size, rows * cols)


def per_sample_filter_grads(a: torch.Tensor, backprops: torch.Tensor, kernel_size: int, padding: int) -> torch.Tensor:
    """``(B, C_out, C_in, k, k)`` per-example gradients of a stride-1 convolution's filter.

    ``∂ℓ_i/∂K[o, c] = a_i[c] ⋆ δ_i[o]`` (cross-correlation of the layer input with the output
    gradient). As grouped weight-gradient convolutions (groups = examples), about twice as fast on
    CPU as Opacus' unfold + batched matmul rule, except on layers with many channels for their map
    size and on layers with few input channels, where the batched product ``δ_i · columns(a_i)ᵀ`` is
    faster (:data:`BMM_ROUTE`, :data:`BMM_MOST_INPUT_COLUMNS`). Either runs a chunk of examples at a
    time (:data:`GROUPED_CHUNK_BYTES`).
    """
    b, c_in, h, w = a.shape
    c_out = backprops.shape[1]
    with record_function("dpecnn::per_sample_filter_grad"):
        pixels = backprops.shape[2] * backprops.shape[3]
        batched_product = c_in * kernel_size * kernel_size <= BMM_MOST_INPUT_COLUMNS or any(
            pixels <= most and c_in * c_out >= fewest for most, fewest in BMM_ROUTE
        )
        grad_weight = a.new_empty(b, c_out, c_in * kernel_size * kernel_size)
        chunk = examples_per_chunk(GROUPED_CHUNK_BYTES, a, backprops, kernel_size)
        for start in range(0, b, chunk):
            n = min(chunk, b - start)
            part = slice(start, start + n)
            if batched_product:
                patches = columns(a[part], kernel_size, padding)
                torch.bmm(backprops[part].flatten(2), patches.transpose(1, 2), out=grad_weight[part])
            else:
                grad_weight[part] = torch.nn.grad.conv2d_weight(
                    a[part].reshape(1, n * c_in, h, w),
                    (n * c_out, c_in, kernel_size, kernel_size),
                    backprops[part].reshape(1, n * c_out, *backprops.shape[2:]),
                    padding=padding,
                    groups=n,
                ).view(n, c_out, -1)
    return grad_weight.view(b, c_out, c_in, kernel_size, kernel_size)


def expansion_transpose(expansion, filter_grads: torch.Tensor, out: torch.Tensor | None = None) -> torch.Tensor:
    """``Bᵀ G`` for a batch of filter gradients ``G`` (B, C_out, C_in, k, k) → (B, n_weights),
    written into ``out`` when given (a contiguous ``(B, n_weights)`` tensor).

    escnn's ``BlocksBasisExpansion`` writes one block per (input type, output type) pair into
    the filter: block ``(m, n)`` of that pair is ``Σ_d w[start + (m·N_in + n)·D + d] · basis_d``.
    The transpose reads the same blocks and contracts them with the basis, one matrix
    product per pair: ``(B·N_out·N_in, o·i·S) @ (o·i·S, D)``. (Differentiating escnn's forward
    instead, batched with ``vmap``, spends most of its time zero-filling and copying whole
    filters for the slice writes.) Relies on the block bookkeeping of escnn 1.0.11, which
    ``requirements.txt`` pins; the per-sample gradient tests compare the result with autograd.
    """
    b = filter_grads.shape[0]
    g = filter_grads.reshape(b, filter_grads.shape[1], filter_grads.shape[2], -1)
    out = filter_grads.new_empty(b, expansion.dimension()) if out is None else out
    pairs = list(_pair_blocks(expansion))
    for basis, n_out, n_in, rows, cols, (start, end) in pairs:
        block = g[:, rows, cols] if isinstance(rows, slice) else g[:, rows][:, :, cols]
        d, o, i, s = basis.shape
        block = block.reshape(b, n_out, o, n_in, i, s).permute(0, 1, 3, 2, 4, 5).reshape(b * n_out * n_in, o * i * s)
        if len(pairs) == 1:  # the whole of `out`: the product is written in place (C1, C4, C8, C16)
            torch.mm(block, basis.reshape(d, o * i * s).T, out=out.view(b * n_out * n_in, d))
        else:
            out[:, start:end] = (block @ basis.reshape(d, o * i * s).T).reshape(b, end - start)
    return out


def _pair_blocks(expansion):
    """Per (input repr, output repr) pair of escnn's ``BlocksBasisExpansion``: its basis
    ``(D, o, i, S)``, field counts, output and input channels (slices, or index tensors where
    escnn stores the pair's channels as a flattened meshgrid) and weight range."""
    for pair in expansion._representations_pairs:
        key = expansion._escape_pair(pair)
        basis = getattr(expansion, f"block_expansion_{key}").sampled_basis
        rows, cols = getattr(expansion, f"out_indices_{key}"), getattr(expansion, f"in_indices_{key}")
        if expansion._contiguous[pair]:
            rows, cols = slice(int(rows[0]), int(rows[1])), slice(int(cols[0]), int(cols[1]))
        else:
            n_rows, n_cols = (
                expansion._out_count[pair[1]] * basis.shape[1],
                expansion._in_count[pair[0]] * basis.shape[2],
            )
            rows, cols = rows.view(n_rows, n_cols)[:, 0], cols.view(n_rows, n_cols)[0]
        yield (
            basis,
            expansion._out_count[pair[1]],
            expansion._in_count[pair[0]],
            rows,
            cols,
            expansion._weights_ranges[pair],
        )


def per_sample_basis_grads(
    expansion, a: torch.Tensor, backprops: torch.Tensor, kernel_size: int, padding: int
) -> torch.Tensor:
    """``(B, n_weights)`` per-example weight gradients, basis first (module docstring).

    Per block pair, the input's ``n_in`` fields (``i`` channels each) are convolved with the
    pair's ``D·o`` basis filters, giving ``Y[b, n, d, o, l] = (B_d ⋆ a_b[n])[o, l]``; then
    ``∂ℓ_b/∂w[m, n, d] = Σ_{o,l} δ_b[m, o, l] · Y[b, n, d, o, l]``, one batched matrix product
    whose ``(m, n, d)`` order is escnn's weight layout for the pair.
    """
    b, pixels = a.shape[0], backprops.shape[2] * backprops.shape[3]
    out = a.new_empty(b, expansion.dimension())
    with record_function("dpecnn::per_sample_basis_grad"):
        for basis, n_out, n_in, rows, cols, (start, end) in _pair_blocks(expansion):
            d, o, i, _ = basis.shape
            fields_in = a[:, cols].reshape(b * n_in, i, *a.shape[2:])
            responses = F.conv2d(fields_in, basis.reshape(d * o, i, kernel_size, kernel_size), padding=padding)
            grads = torch.bmm(
                backprops[:, rows].reshape(b, n_out, o * pixels),
                responses.reshape(b, n_in * d, o * pixels).transpose(1, 2),
            )
            out[:, start:end] = grads.reshape(b, end - start)
    return out


# Basis first pays on small maps when its multiply-adds are under this fraction of filter first's
# (the filter gradients and the transpose): its convolutions have few input channels (one field) and
# run at about half the speed of filter first's products on CPU. Measured per layer at batch 256, one
# thread, 2026-12-07, against filter first (FILTER_FIRST_CHUNK_BYTES, BMM_ROUTE): O(2) 192→256
# channels on 7×7 (ratio 0.35) 115 ms against 218, on 3×3 (0.23) 24 against 162; C8 128→128 on 3×3
# (0.39) 26 against 53; C4 64→64 on 7×7 (0.84) 26.6 against 25.7; C8 128→128 on 7×7 (0.95) 194
# against 87; C16 256→256 on 7×7 (1.09) 847 against 303; C1 32→32 on 3×3 (0.51) 1.7 against 2.9, on 7×7
# (0.76) 5.1 against 5.3. Raised from 0.5 to 0.6 for C1's 3×3 layers: its DP step 122.8–123.8 ms against
# 123.2–126.0 (three A/B rounds of `python -m dpecnn.bench --archs C1`, 2 threads, 2026-12-07).
BASIS_FIRST_FLOP_RATIO = 0.6
# ... and only on maps of at most this many pixels: on larger maps filter first won at every ratio
# measured: O(2) 96→256 channels on 14×14 (ratio 0.39) 220 ms against 289, 96→128 on 14×14 (0.56) 124
# against 266, 48→128 on 28×28 (0.57) 195 against 522, and its first layer, 3→64 on 28×28 (0.41),
# 16.5 against 24.3.
BASIS_FIRST_MOST_PIXELS = 49
# Filter first's examples per chunk: as many as keep the chunk's filter gradients under this many
# bytes. Whole-batch filter gradients made C16's 256→256 layers on 14×14 take 1.96 s at batch 256
# (one thread); chunks of 1–4 examples 0.81–0.94 s; C8's 128→128 0.43 s against 0.19–0.21 s;
# C4's layers (0.15 MB an example) were as fast either way.
FILTER_FIRST_CHUNK_BYTES = 4 * 2**20


def basis_first_is_cheaper(expansion, in_channels: int, out_channels: int, kernel_size: int, pixels: int) -> bool:
    """Whether :func:`per_sample_basis_grads` should beat filter first for this layer: on maps of
    at most :data:`BASIS_FIRST_MOST_PIXELS`, its multiply-adds against filter first's (the filter
    gradients, then the transpose), weighed by :data:`BASIS_FIRST_FLOP_RATIO`."""
    if pixels > BASIS_FIRST_MOST_PIXELS:
        return False
    taps = kernel_size * kernel_size
    pairs = list(_pair_blocks(expansion))
    basis_first = sum(
        n_in * basis.shape[0] * basis.shape[1] * (basis.shape[2] * taps + n_out) * pixels
        for basis, n_out, n_in, *_ in pairs
    )
    transpose = sum(n_out * n_in * basis.numel() for basis, n_out, n_in, *_ in pairs)
    filter_first = out_channels * in_channels * taps * pixels + transpose
    return basis_first < BASIS_FIRST_FLOP_RATIO * filter_first


def per_sample_filter_first(
    expansion, a: torch.Tensor, backprops: torch.Tensor, kernel_size: int, padding: int
) -> torch.Tensor:
    """``(B, n_weights)`` per-example weight gradients, filter first (module docstring): the
    filter gradients (:func:`per_sample_filter_grads`) and their transpose
    (:func:`expansion_transpose`) a chunk of examples at a time (:data:`FILTER_FIRST_CHUNK_BYTES`)."""
    b = a.shape[0]
    chunk = examples_per_chunk(FILTER_FIRST_CHUNK_BYTES, a, backprops, kernel_size)
    out = a.new_empty(b, expansion.dimension())
    for start in range(0, b, chunk):
        part = slice(start, start + chunk)
        filter_grads = per_sample_filter_grads(a[part], backprops[part], kernel_size, padding)
        with record_function("dpecnn::basis_transpose"):
            expansion_transpose(expansion, filter_grads, out=out[part])
    return out


# Field blocks pay for layers of one block pair whose per-example filter gradient takes at least
# this many bytes. Per layer at batch 256, one thread, against filter first: C16's 256 → 256
# channels (2.4 MB) on 14×14 683–755 ms against 903–950, on 7×7 305 against 420; C16's 128 → 256 on
# 28×28 (1.2 MB) 1193 against 1194; C8's 128 → 128 (0.6 MB) on 14×14 236–247 against 219–240, on
# 7×7 90 against 98; C4's 64 → 64 (0.15 MB) on 14×14 95–100 against 52–57.
FIELD_BLOCKS_MIN_BYTES = 2 * 2**20


def per_sample_field_blocks(
    expansion, a: torch.Tensor, backprops: torch.Tensor, kernel_size: int, padding: int
) -> torch.Tensor:
    """``(B, n_weights)`` per-example weight gradients of a layer with one block pair (one input
    and one output field type, as in C_N's regular layers): filter first, computed in the
    basis' block order so that the transpose needs no reordering of the filter gradients.

    For each input field ``n``, ``G_i[n] = δ_i · columns(a_i[n])ᵀ`` is ``(N_out·o, i·k²)``: rows
    ``(m, o)`` and columns ``(i, s)``, so that ``G_i`` read as ``(N_in·N_out, o·i·k²)`` has one
    row per block ``(n, m)``, ready for the product with the basis ``(o·i·k², D)``; only the small
    ``(N_in, N_out, D)`` result is reordered to escnn's ``(m, n, d)``. Filter first
    (:func:`expansion_transpose`) instead permutes every example's filter gradients, which for
    C16 are 2.4 MB an example. Examples go a chunk at a time (:data:`FILTER_FIRST_CHUNK_BYTES`).
    """
    pairs = list(_pair_blocks(expansion))
    if len(pairs) != 1:
        raise ValueError(f"field blocks need one block pair; this expansion has {len(pairs)}")
    basis, n_out, n_in, rows, cols, _ = pairs[0]
    if not (isinstance(rows, slice) and isinstance(cols, slice)):
        raise ValueError("field blocks need the pair's channels in one contiguous run")
    d, o, i, s = basis.shape
    b, c_out, pixels = a.shape[0], backprops.shape[1], backprops.shape[2] * backprops.shape[3]
    basis_matrix = basis.reshape(d, o * i * s).T
    chunk = examples_per_chunk(FILTER_FIRST_CHUNK_BYTES, a, backprops, kernel_size)
    filter_grads = a.new_empty(chunk, n_in, c_out, i * s)
    out = a.new_empty(b, n_out, n_in, d)
    for start in range(0, b, chunk):
        n = min(chunk, b - start)
        with record_function("dpecnn::per_sample_filter_grad"):
            patches = columns(a[start : start + n], kernel_size, padding).view(n, n_in, i * s, pixels)
            for j in range(n):
                # the example's output gradient, shared by every input field without a copy
                shared = backprops[start + j].reshape(1, c_out, pixels).expand(n_in, c_out, pixels)
                torch.bmm(shared, patches[j].transpose(1, 2), out=filter_grads[j])
        with record_function("dpecnn::basis_transpose"):
            blocks = filter_grads[:n].view(n * n_in * n_out, o * i * s) @ basis_matrix
            out[start : start + n] = blocks.view(n, n_in, n_out, d).transpose(1, 2)
    return out.view(b, -1)


# Split a layer's batch over the CPU's intra-op threads (:func:`in_thread_parts`) when one example's
# filter gradient takes at least this many bytes. A/B of `python -m dpecnn.bench`, 2 threads,
# 2026-12-07, DP/non-DP with the split against without: C16 1.21, 1.26, 1.23, 1.18 against 1.32, 1.33,
# 1.30, 1.32; C8 1.17, 1.14 against 1.24, 1.35; C4 1.23, 1.20 against 1.28, 1.29; O(2) 1.23, 1.18 against
# 1.18, 1.41. On e's small layers (at most 37 kB) it cost: 1.38, 1.38 against 1.30, 1.30.
THREAD_SPLIT_MIN_BYTES = 100_000


@cache
def _thread_pool(workers: int) -> ThreadPoolExecutor:
    return ThreadPoolExecutor(workers, thread_name_prefix="dpecnn-per-sample")


def in_thread_parts(per_sample: Callable, a: torch.Tensor, backprops: torch.Tensor, kernel_size: int) -> torch.Tensor:
    """``per_sample(a, backprops)``, the batch split into one part per intra-op thread on CPU.

    Examples' gradients are independent, so the parts are exact and their concatenation is the
    whole batch's. Each part runs in its own Python thread with one intra-op thread (torch
    releases the GIL inside its kernels): the per-example products of a large layer are many
    small matrix products, which one thread each runs at close to twice the speed that two
    threads share them at. Elsewhere — GPU, one thread, small filter gradients
    (:data:`THREAD_SPLIT_MIN_BYTES`) — ``per_sample`` runs on the whole batch."""
    threads, b = torch.get_num_threads(), a.shape[0]
    large = filter_gradient_bytes(a, backprops, kernel_size) >= THREAD_SPLIT_MIN_BYTES
    if a.device.type != "cpu" or threads < 2 or b < 2 or not large:
        return per_sample(a, backprops)
    per_part = -(-b // threads)
    parts = [slice(start, start + per_part) for start in range(0, b, per_part)]

    def run(part: slice) -> torch.Tensor:
        with torch.no_grad():
            return per_sample(a[part], backprops[part])

    # the profiler traces the calling thread only: the parts' own phases are not seen, their wall time is
    with record_function("dpecnn::per_sample_in_threads"):
        torch.set_num_threads(1)
        try:
            results = list(_thread_pool(len(parts)).map(run, parts))
        finally:
            torch.set_num_threads(threads)
        return torch.cat(results)


@register_grad_sampler(SteerableConv2d)
def steerable_conv_grad_sample(layer: SteerableConv2d, activations, backprops: torch.Tensor):
    a, k = activations[0], layer.kernel_size
    pixels = backprops.shape[2] * backprops.shape[3]
    one_pair = len(layer.expansion._representations_pairs) == 1
    if basis_first_is_cheaper(layer.expansion, a.shape[1], backprops.shape[1], k, pixels):
        route = per_sample_basis_grads
    elif one_pair and filter_gradient_bytes(a, backprops, k) >= FIELD_BLOCKS_MIN_BYTES:
        route = per_sample_field_blocks
    else:
        route = per_sample_filter_first
    return {layer.weight: in_thread_parts(lambda a, d: route(layer.expansion, a, d, k, layer.padding), a, backprops, k)}


@register_grad_sampler(Conv2d)
def conv_grad_sample(layer: Conv2d, activations, backprops: torch.Tensor):
    k, padding = layer.kernel_size[0], layer.padding[0]
    grads = in_thread_parts(lambda a, d: per_sample_filter_grads(a, d, k, padding), activations[0], backprops, k)
    return {layer.weight: grads}


@register_grad_sampler(GroupNorm)
def group_norm_grad_sample(layer: GroupNorm, activations, backprops: torch.Tensor):
    """Per-example ``∂ℓ_i/∂γ`` and ``∂ℓ_i/∂β`` from torch's own GroupNorm kernels, on the batch
    folded into the channels: ``(B, C, …) → (1, B·C, …)`` with ``B·G`` groups. Every group is still
    one example's ``C/G`` channels, so its statistics are the example's, and the "batch" weight
    gradient of the folded tensor is the ``B·C`` per-example gradients. One fused pass
    (normalisation statistics, then the backward's reductions) instead of Opacus' normalise,
    multiply and two sums: 4–6× faster (one thread, batch 256: 16 channels on 28×28 1.0 ms
    with the forward's statistics, 2.3 recomputing them, against 6.6 ms). The forward's
    ``(B, G)`` statistics are the folded tensor's ``B·G`` groups in the same order; they are used
    when the layer kept them (per-sample mode, :class:`~dpecnn.models.layers.GroupNorm`), and
    recomputed otherwise (the layer under Opacus' own ``GradSampleModule``)."""
    x = activations[0]
    b, c = x.shape[:2]
    pixels = x[0, 0].numel()
    folded = x.reshape(1, b * c, pixels)
    groups = b * layer.num_groups
    if layer.statistics is not None:
        (mean, rstd), layer.statistics = layer.statistics, None
        mean, rstd = mean.reshape(1, groups), rstd.reshape(1, groups)
    else:
        _, mean, rstd = torch.ops.aten.native_group_norm(folded, None, None, 1, b * c, pixels, groups, layer.eps)
    _, grad_weight, grad_bias = torch.ops.aten.native_group_norm_backward(
        backprops.reshape(1, b * c, pixels), folded, mean, rstd, None, 1, b * c, pixels, groups, [False, True, True]
    )
    grads = {}
    if layer.weight is not None and layer.weight.requires_grad:
        grads[layer.weight] = grad_weight.view(b, c)
    if layer.bias is not None and layer.bias.requires_grad:
        grads[layer.bias] = grad_bias.view(b, c)
    return grads


@register_grad_sampler(FieldRMSNorm)
def field_rms_norm_grad_sample(layer: FieldRMSNorm, activations, backprops: torch.Tensor):
    x_hat = layer.normalised(activations[0])
    return {layer.weight: (x_hat * backprops.view_as(x_hat)).flatten(2).sum(-1)}


def check_no_data_buffers(model: nn.Module) -> None:
    """Raise ``ValueError`` for a module with buffers other than escnn's sampled filter bases
    (a buffer such as BatchNorm's running statistics mixes examples and escapes clipping)."""
    from escnn.nn.modules.basismanager.basisexpansion_singleblock import SingleBlockBasisExpansion

    for name, module in model.named_modules():
        if list(module.buffers(recurse=False)) and not isinstance(module, SingleBlockBasisExpansion):
            raise ValueError(
                f"module '{name}' ({type(module).__name__}) has buffers, which may carry data "
                "statistics outside DP-SGD's clipping; dpecnn's DP training refuses it"
            )


class PerSampleGradModule(GradSampleModule):
    """Opacus ``GradSampleModule`` (hooks mode) for dpecnn models.

    While wrapped, convolutions skip their *summed* filter gradient (DP-SGD replaces it by
    the clipped, noised sum of per-sample gradients), which saves a third of a backward
    pass; the first layer's output is made to require grad so that its hook still fires
    (:func:`~dpecnn.models.layers.per_sample_output`). GroupNorm layers keep their forward's
    statistics for their per-example rule (:func:`group_norm_grad_sample`).

    ``strict=False``: escnn's basis expansion stores its (data-independent) basis as
    buffers, which Opacus' strict check rejects because it guards against buffers that
    carry data statistics, like BatchNorm's. The check is kept in a narrower form: any
    buffer outside escnn's basis expansions is refused (:func:`check_no_data_buffers`).
    """

    def __init__(self, model: nn.Module, loss_reduction: str = "mean"):
        check_no_data_buffers(model)
        super().__init__(model, batch_first=True, loss_reduction=loss_reduction, strict=False)
        self._per_sample_layers = [m for m in model.modules() if isinstance(m, (SteerableConv2d, Conv2d, GroupNorm))]
        for m in self._per_sample_layers:
            m.per_sample_only = True

    def add_hooks(self, *, loss_reduction: str = "mean", batch_first: bool = True, force_functorch: bool = False):
        """Opacus' hooks, with the backward one on each layer's output tensor, registered by the
        forward hook, instead of a full module backward hook: the same ``∂L/∂output`` without the
        identity autograd nodes that full backward hooks wrap around every hooked module's inputs
        and outputs, which cost e's DP step 4.5 ms of 143 (37 nodes; 2 threads, batch 256)."""
        if hasattr(self._module, "autograd_grad_sample_hooks"):
            raise ValueError("Trying to add hooks twice to the same model")
        self._module.autograd_grad_sample_hooks = self.autograd_grad_sample_hooks = []
        for module in self.iterate_submodules(self._module):
            if force_functorch or self._get_module_type(module) not in self.GRAD_SAMPLERS:
                prepare_layer(module, batch_first=batch_first)
            hook = partial(self._capture_hook, loss_reduction=loss_reduction, batch_first=batch_first)
            self.autograd_grad_sample_hooks.append(module.register_forward_hook(hook))
        self.enable_hooks()

    def _capture_hook(self, module, forward_input, forward_output, loss_reduction, batch_first):
        """Forward hook: the layer's input for its per-example rule, and a hook on its output's
        gradient that runs the rule (:meth:`capture_backprops_hook`)."""
        if not (self.hooks_enabled and module.training and torch.is_grad_enabled() and requires_grad(module)):
            return
        self.capture_activations_hook(module, forward_input, forward_output)
        forward_output.register_hook(
            lambda grad: self.capture_backprops_hook(module, None, (grad,), loss_reduction, batch_first)
        )

    def capture_backprops_hook(self, module, _forward_input, forward_output, loss_reduction, batch_first):
        """Opacus' backward hook without its accumulation buffers: each layer's per-example
        gradients are stored as computed. Opacus zero-fills a batch-sized buffer per parameter
        and copies into it, to sum the uses of a parameter that runs more than once per
        forward (RNNs, tied weights); dpecnn's layers run once, which is checked here. The
        buffers cost e's DP step 15 ms of 320 (one thread, batch 256)."""
        if not self.hooks_enabled:
            return
        activations, backprops = self.rearrange_grad_samples(
            module=module, backprops=forward_output[0].detach(), loss_reduction=loss_reduction, batch_first=batch_first
        )
        grad_sampler = self.GRAD_SAMPLERS.get(type(module), ft_compute_per_sample_gradient)
        for param, grad_sample in grad_sampler(module, activations, backprops).items():
            if param.grad_sample is not None:
                raise RuntimeError(
                    f"a parameter of {type(module).__name__} received two per-example gradients in one backward "
                    "(a layer used twice per forward); dpecnn's per-example gradients assume one use"
                )
            param.grad_sample = grad_sample
        if not module.activations:
            del module.max_batch_len

    def _close(self):
        for m in self._per_sample_layers:
            m.per_sample_only = False
            if isinstance(m, GroupNorm):
                m.statistics = None
        super()._close()


def per_sample_gradients(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor] = PER_SAMPLE_CROSS_ENTROPY,
) -> list[torch.Tensor]:
    """``[∂ℓ(f(x_i), y_i)/∂θ for i in batch]`` for every trainable parameter θ of ``model``.

    ``loss_fn`` returns one loss per example. The result has one tensor per trainable
    parameter (in ``model.parameters()`` order), each of shape ``(B, *θ.shape)``. The model
    is left as it was: no hooks, no ``.grad`` or ``.grad_sample`` attributes.
    """
    params = [p for p in model.parameters() if p.requires_grad]
    saved_grads = [p.grad for p in params]
    gsm = PerSampleGradModule(model, loss_reduction="sum")
    try:
        loss_fn(gsm(x), y).sum().backward()  # a full backward: every layer's hook must fire
        return [p.grad_sample for p in params]
    finally:
        gsm._close()
        for p, g in zip(params, saved_grads):
            p.grad = g

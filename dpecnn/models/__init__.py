"""Model zoo: ``build_model(arch, in_channels, num_classes, layout, fields=..., readout=...)``.

``arch`` is one of ``e`` (conventional ResNet-9), ``C1``, ``C4``, ``C8``, ``C16`` (regular
representations of C_N, restricted to C_{N/2} after the first residual layer) or ``O2``
(induced irreps of frequency ≤ 1). Every model maps plain tensors to logits.

``fields`` turns the layout's three widths into numbers of feature fields per stage
(:func:`field_counts`):

* ``"layout"`` (default): fields = width, so a C_N model has N times the channels of ``e``;
* ``"fixed-params"``: the rule of the authors' later public code, which keeps the parameter
  count near that of ``e``: ``⌊w·√(1.5·|G|)/|G|⌋`` fields for C_N with ``|G| = N``, the
  restricted third stage ``⌊w·√(0.75·|G|)/(|G|/2)⌋``; for O(2) ``⌊w/√(1.75·L)⌋`` with the
  frequency cut-off ``L = 1`` (at least one field each).

``readout`` (:data:`READOUTS`) is ``"invariant"`` (the paper's group pooling: predictions
invariant to the group) or ``"orientation"`` (no group pooling: equivariant features, a head
that may use orientation); see :mod:`dpecnn.models.resnet9`.
"""

from dpecnn.lazy import lazy_exports

__getattr__, __dir__, __all__ = lazy_exports(
    __name__,
    {
        "architecture": (
            "ARCHS",
            "DEFAULT_LAYOUT",
            "FIELD_RULES",
            "O2_FREQUENCY",
            "PAPER_PARAMS",
            "READOUTS",
            "canonical_arch",
            "field_counts",
            "parse_layout",
        ),
        "build": ("build_model", "count_parameters", "family", "parameter_table"),
    },
)

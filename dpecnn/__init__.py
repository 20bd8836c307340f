"""dpecnn: differentially private steerable-equivariant CNNs for medical images.

Reference implementation of Hölzl, Rueckert & Kaissis (2022), "Bridging the Gap:
Differentially Private Equivariant Deep Learning for Medical Image Analysis".
"""

__version__ = "0.1.0"

"""The paper's explanatory measurements of one model: gradient sparsity, calibration, filter
impulse responses and their co-location with attributions, Grad-CAM and guided backprop,
equivariance errors, and the symmetry probe of a dataset."""

"""Graph stage: layers (co-offending, victimization), groups, exposure.

The one graph representation is CSR over dense person indices; see
:mod:`fdnet.graph.layers`.
"""
from .exposure import exposure_counts, exposure_paths
from .layers import Layer, Network, build_network, project_incidence, sorted_codes

__all__ = ["Layer", "Network", "build_network", "project_incidence", "sorted_codes",
           "exposure_counts", "exposure_paths"]

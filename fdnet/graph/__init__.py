"""Graph stage: layers (co-offending, victimization), groups, exposure.

The one graph representation is CSR over dense person indices,
:class:`fdnet.graph.csr.CSR`; every layer of :mod:`fdnet.graph.layers` carries one.
"""
from .csr import CSR
from .exposure import exposure_counts, exposure_paths
from .layers import Layer, Network, build_network, project_incidence, sorted_codes

__all__ = ["CSR", "Layer", "Network", "build_network", "project_incidence", "sorted_codes",
           "exposure_counts", "exposure_paths"]

"""Figures people would rather look at than read (matplotlib only).

- :func:`spatial_domains`: the domain map of one tissue slice.
- :func:`spatial_domains_panel`: manual annotation beside each model's
  domains, one map per panel.
"""

from skdance.plotting._spatial import spatial_domains, spatial_domains_panel

__all__ = ["spatial_domains", "spatial_domains_panel"]

"""Parameter descriptions shared by the spatial domain estimators.

Used with :func:`skdance.utils.fill_doc`.
"""

__all__ = ["DOMAIN_PARAMS"]

DOMAIN_PARAMS = {
    "n_clusters": """\
n_clusters : int, default=7
    Number of domains (DANCE's protocol: the number of annotated layers).""",
}

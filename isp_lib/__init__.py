"""Instant Soup Pruning kit: ISP (Jaiswal et al., ICML 2023) and the paper's baselines.

Main entry points:

* :func:`isp_lib.prune`: prune your own model (a ``transformers`` model as it is) in one call;
* :func:`isp_lib.runs.make_config` / :func:`isp_lib.runs.run`: one experiment, with its result
  record, as ``isp run`` does;
* :class:`isp_lib.context.RunContext` and :func:`isp_lib.methods.get_method`: prune your own
  model with full control (checkpoints, scope families, bf16);
* :mod:`isp_lib.masks`: masks and the pruning rules;
* :func:`isp_lib.to_semi_structured`: run a 2:4-pruned model on a GPU's sparse tensor cores.
"""

__version__ = "0.1.0"


def __getattr__(name: str) -> object:
    """``isp_lib.prune`` and ``isp_lib.to_semi_structured``, imported on first use (so
    ``import isp_lib`` stays cheap)."""
    if name == "prune":
        from isp_lib.api import prune

        globals()["prune"] = prune
        return prune
    if name == "to_semi_structured":
        from isp_lib.semi_structured import to_semi_structured

        globals()["to_semi_structured"] = to_semi_structured
        return to_semi_structured
    raise AttributeError(f"module 'isp_lib' has no attribute '{name}'")

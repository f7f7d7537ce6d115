"""Instant Soup Pruning kit: ISP (Jaiswal et al., ICML 2023) and the paper's baselines.

Main entry points:

* :func:`isp_lib.runs.make_config` / :func:`isp_lib.runs.run`: one experiment, with its result
  record, as ``isp run`` does;
* :class:`isp_lib.context.RunContext` and :func:`isp_lib.methods.get_method`: prune your own
  model;
* :mod:`isp_lib.masks`: masks and the pruning rules.
"""

__version__ = "0.1.0"

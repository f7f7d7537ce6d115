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
# # Table 7: how long each look-ahead trains
#
# ## Overview
# Each prune of ISP is denoised (Alg. 2): N look-ahead copies of the model train C steps each
# under different protocols and data subsets, each proposes a magnitude mask, and a weight
# goes only if every mask drops it. Chapters 5 and 6 varied whether there are look-aheads and
# how many; Table 7 of the paper varies how long each one trains, C from 10 to 200 steps, on
# CLIP ViT-B/32 and CIFAR-100 at 60% sparsity. The paper's point (Sec. 2, "merely using 10-100
# training steps") is that short look-aheads suffice: its accuracies across C lie within about
# a point, with no trend, while every step of C is paid N times in every round.
#
# Our test: the same sweep over C (2, 6 = the default, 12, 24, 48) on the CNN stand-in of the
# Table 2 chapter (EfficientNet-Lite0 with ImageNet weights on Fashion-MNIST), ISP at 70%,
# three seeds, reporting what each C costs beside the accuracy. The claim "accuracy does not
# depend on C" is judged as: each C matches the default within one point, on paired
# differences over seeds and test examples.
#
# ## Prerequisites
# The kit installed (`make venv`) and Fashion-MNIST (`make assets`). With the `cpu` profile the
# chapter reads the committed records of the sweep `cnn_lookahead` (its default cells are the
# same runs as `cnn_headline`'s) and shows what they hold so far; the line under *Set-up*
# names the `isp sweep` command that adds the missing cells. With `smoke` the cells of seeds
# 0 and 1 run on a tiny random CNN; their numbers only check the machinery and draw no
# verdict.

# %% tags=["parameters"]
PROFILE = "cpu"  # smoke | cpu | paper
RECOMPUTE = False  # True: ignore the committed records and run every cell
DEVICE = "auto"  # auto | cpu | cuda
BF16 = None  # bf16 autocast; None: on at PROFILE "paper" on a GPU with native bf16, else off
KIT_REF = "main"  # on Colab: the branch, tag or commit of the kit to install
CONFIGS = ["cnn_lookahead"]  # the sweeps results/<name>.yaml
MODEL = "effnet-lite0"  # paper profile: clip-vit-b32
DATA = "fashion-mnist"  # paper profile: cifar100

# %% [markdown]
# ## Imports
# On Colab the first cell installs the kit from its repository at `KIT_REF`, with the
# EfficientNet-Lite0 weights and Fashion-MNIST; elsewhere it does nothing (`make venv` and
# `make assets` installed them).

# %%
import subprocess
import sys

KIT_URL = "https://github.com/instant-soup-kit/isp-kit"  # repository.url in _config.yml
if "google.colab" in sys.modules:  # the kit, with the cpu profile's offline model and data
    pip = [sys.executable, "-m", "pip", "install", "-q"]
    subprocess.run([*pip, f"isp-lib[offline] @ git+{KIT_URL}@{KIT_REF}"], check=True)
    subprocess.run("apt-get update -qq && apt-get install -y -qq dataset-fashion-mnist",
                   shell=True, check=True)

# %%

from isp_lib import analysis
from isp_lib.paper import paper_numbers

# %% [markdown]
# ## The claim, in the paper's numbers
# Table 7: ISP accuracy per look-ahead length C, one number each (no spread is printed).

# %%
paper = paper_numbers("table7")
paper["C"] = paper["setting"].str.removeprefix("lookahead_steps=").astype(int)
SPAN = f"range {paper['value'].max() - paper['value'].min():.2f} over C = 10…200"
paper.set_index("C")[["dataset", "sparsity", "value"]].T

# %% [markdown]
# ## Set-up
# ISP on `MODEL` and `DATA` at 70%, once per look-ahead length C; the cells without a setting
# run the profile's default C (read from each run's hyperparameters below).

# %%
recs = analysis.load(CONFIGS, PROFILE, RECOMPUTE, DEVICE, model=MODEL, data=DATA, bf16=BF16)

# %% [markdown]
# ## Accuracy and cost
# Per arm (C as each run recorded it): test accuracy over seeds beside the cost in units of T,
# in all and per ledger phase (the look-aheads are `T: lookahead`).

# %%
analysis.show(analysis.summary(recs, by=["label", "lookahead_steps"]))

# %% [markdown]
# ## What longer look-aheads did in each prune
# Per arm and round, averaged over seeds: the points of sparsity the union of the look-ahead
# masks spared. A longer look-ahead moves its copy further from the main model, so its mask
# can disagree more.

# %%
analysis.show(analysis.spared_per_round(recs))

# %% [markdown]
# ## Figure
# Left: the paper's accuracy per C (CLIP ViT-B/32). Middle: ours per C (dots: runs; line: the
# mean), on its own axis. Right: what each C cost us, in units of T. Counts on a log scale.

# %%
analysis.plot_setting(recs, paper, "lookahead_steps", "C", log=True)

# %% [markdown]
# ## Verdict
# "Short look-aheads suffice": each C matches the default C within one point, judged on
# paired differences (`isp_lib.verdicts.compare`), beside the paper's spread across its counts
# and the cost of each arm.

# %%
claims = [(f"isp (lookahead_steps={c})", "isp", "matches", 1.0, 0.7, SPAN)
          for c in (2, 12, 24, 48)]
analysis.show_verdicts(analysis.claim_table(recs, claims))

# %% [markdown]
# ## Summary
# The sweep varies only the length of each look-ahead: same schedule, number of look-aheads,
# budget and seeds. The trace shows how much more a longer look-ahead spares from each prune,
# the cost columns what it adds to one fine-tune, and the verdicts whether the accuracy stays
# within a point across C, as the paper's does, on our stand-in model. With the `paper`
# profile on a GPU, `MODEL = "clip-vit-b32"` and `DATA = "cifar100"` run the grid on the
# paper's model (add the paper's counts to the config's `grid:`).

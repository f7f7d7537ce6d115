"""The ``isp`` command line: batch reproduction of the paper's experiments."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from isp_lib.errors import UserError
from isp_lib.progress import duration

if TYPE_CHECKING:
    from isp_lib.executors.base import Executor

EPILOG = """\
examples:
  isp run --method isp --model minilm --data drugreview --sparsity 0.7 --profile cpu
  isp run --method imp --model minilm --data drugreview --sparsity 0.7 --profile cpu --seed 1
  isp run --method isp --model bert-base --data qnli --sparsity 0.7 --profile paper \\
      --set denoisers=8 --set lookahead_steps=50
  isp sweep results/foundation_cpu.yaml --dry-run
  isp sweep results/paper_table2_cifar10.yaml --estimate --gpu h100
  isp export runs/oneshot_minilm_drugreview_0123456789ab --to exported/minilm-oneshot
  isp list
"""


NO_WEIGHTS_HELP = ("keep only the mask and the record, not the final weights "
                   "(model.safetensors); the config hash is the same either way")


def _methods_help() -> str:
    from isp_lib.methods import METHODS

    return "\n".join(f"  {name:14s} {cls.summary}" for name, cls in METHODS.items())


def _parse_set(items: list[str]) -> dict[str, str]:
    out: dict[str, str] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise UserError(f"--set expects KEY=VALUE, got '{item}'")
        out[key.strip()] = value.strip()
    return out


class _Parser(argparse.ArgumentParser):
    """A parser whose description may end in text computed only when its help is shown.

    Args:
        more: returns the rest of the description (e.g. the methods, which imports torch).
    """

    def __init__(self, *args: object, more: Callable[[], str] | None = None,
                 **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self.more = more

    def format_help(self) -> str:
        if self.more is not None:
            self.description, self.more = (self.description or "") + self.more(), None
        return super().format_help()


def build_parser() -> argparse.ArgumentParser:
    """The argument parser (``isp --help``, ``isp run --help``)."""
    parser = argparse.ArgumentParser(
        prog="isp", description="Instant Soup Pruning kit (Jaiswal et al., ICML 2023).",
        formatter_class=argparse.RawDescriptionHelpFormatter, epilog=EPILOG)
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    r = sub.add_parser(
        "run", help="run one experiment (skipped if complete, resumed if interrupted)",
        formatter_class=argparse.RawDescriptionHelpFormatter, epilog=EPILOG,
        description="Prune a model with one method and write <out>/<run dir>/result.json.\n\n"
                    "methods (dense ones need --sparsity 0):\n", more=_methods_help)
    r.add_argument("--method", required=True, help="method name (see the list above)")
    r.add_argument("--model", required=True,
                   help="model: minilm (offline all-MiniLM-L6-v2), bert-base, clip-vit-b32, "
                        "effnet-lite0 (offline EfficientNet-Lite0, CPU stand-in for CLIP)")
    r.add_argument("--data", required=True,
                   help="data set: drugreview, fashion-mnist, GLUE tasks (mnli qqp stsb wnli qnli "
                        "mrpc rte sst2 cola), cifar10 cifar100 mnist svhn gtsrb cars")
    r.add_argument("--sparsity", required=True, type=float,
                   help="target share of pruned weights in the prunable scope, in [0, 1)")
    r.add_argument("--profile", required=True,
                   help="smoke (tiny random models, seconds), cpu (offline MiniLM, minutes), "
                        "paper (Table 1 hyperparameters, GPU)")
    r.add_argument("--seed", type=int, default=0, help="run seed (default 0)")
    r.add_argument("--out", type=Path, default=Path("runs"),
                   help="folder of run directories (default ./runs)")
    r.add_argument("--device", default="auto", help="auto (default), cpu or cuda")
    from isp_lib.accel_flags import add_arguments as add_accel_arguments

    add_accel_arguments(r, bf16=True)
    r.add_argument("--set", dest="settings", action="append", default=[], metavar="KEY=VALUE",
                   help="override a profile hyperparameter (lr, weight_decay, epochs, "
                        "batch_size, rate, lookahead_steps, denoisers, seed_frac, ...) or a "
                        "method option (see 'isp list'); repeatable")
    r.add_argument("--model-source", default=None,
                   help="checkpoint override: hub id, local folder (BERT) or file (CLIP)")
    r.add_argument("--data-source", default=None,
                   help="data override: a local folder with the data set's files")
    r.add_argument("--no-weights", action="store_true", help=NO_WEIGHTS_HELP)
    r.add_argument("--json", action="store_true",
                   help="print the result record (as in result.json, plus \"skipped\": true "
                        "if the run was already complete) as one JSON line instead of the "
                        "summary, for scripts")
    sw = sub.add_parser(
        "sweep", help="run a grid of experiments from a YAML config and write its records",
        description="Run every cell of a sweep config (cells recorded in its records file and "
                    "complete runs skipped, interrupted ones resumed), then write <config "
                    "folder>/<name>.jsonl, one record per run; delete a record's line to run its "
                    "cell again. The config format is described in isp_lib/records.py.")
    sw.add_argument("config", type=Path, help="sweep config, e.g. results/foundation_cpu.yaml")
    sw.add_argument("--device", default="auto", help="auto (default), cpu or cuda")
    sw.add_argument("--no-weights", action="store_true", help=NO_WEIGHTS_HELP)
    from isp_lib.executors import add_arguments as add_executor_arguments

    add_executor_arguments(sw)
    mode = sw.add_mutually_exclusive_group()
    mode.add_argument("--dry-run", action="store_true",
                      help="list the cells and whether each is recorded; run nothing")
    mode.add_argument("--estimate", action="store_true",
                      help="print the cells' optimizer steps, training FLOPs and GPU-hours on a "
                           "reference GPU (an estimate, not measured); run, download and load "
                           "nothing")
    sw.add_argument("--json", action="store_true",
                    help='end with one JSON line {"sweep", "cells", "records"} instead of the '
                         "summary line, for scripts; with --estimate, the estimate as one JSON "
                         "line (not with --dry-run)")
    sw.add_argument("--gpu", default=None, metavar="NAME",
                    help="--estimate's reference GPU: a100 (default) or h100 "
                         "(isp_lib/throughput.yaml)")
    ex = sub.add_parser(
        "export", help="write a complete run's pruned model as a folder plain libraries load",
        description="Write the fine-tuned, pruned model of a complete run (its "
                    "model.safetensors) into a new folder that transformers (BERT family), "
                    "open_clip (CLIP) or safetensors (other models) load without isp_lib, with "
                    "a README.md on how to load it and its sparsity per tensor.")
    ex.add_argument("run_dir", type=Path, help="a complete run directory made with weights")
    ex.add_argument("--to", type=Path, required=True,
                    help="the export folder (created; an existing one must be empty)")
    sub.add_parser("list", help="list methods (with options), models, data sets and profiles")
    return parser


def _list() -> None:
    from dataclasses import fields

    from isp_lib.data import dataset_names
    from isp_lib.methods import METHODS
    from isp_lib.models import model_names
    from isp_lib.profiles import PROFILES, Hparams
    from isp_lib.ranges import describe

    print("methods:")
    for name, cls in METHODS.items():
        print(f"  {name:14s} {cls.summary}")
        for f in fields(cls.Options):
            print(f"  {'':14s}   {f.name}={_default(f)} ({describe(f)})")
    print("hyperparameters (--set KEY=VALUE; defaults per profile and model family):")
    for f in fields(Hparams):
        print(f"  {f.name:18s} {describe(f)}")
    print("models:   " + ", ".join(model_names()))
    print("data:     " + ", ".join(dataset_names()))
    print("profiles: " + ", ".join(PROFILES))


def _default(f) -> str:
    value = f.default
    if isinstance(value, tuple):
        return ",".join(str(v) for v in value)
    return str(value).lower() if isinstance(value, bool) else str(value)


def _size(n: int) -> str:
    """A byte count for people: ``512 B``, ``17.3 MB``, ``1.2 GB``."""
    if n < 1000:
        return f"{n} B"
    value = n / 1000
    for unit in ("kB", "MB"):
        if value < 1000:
            return f"{value:.1f} {unit}"
        value /= 1000
    return f"{value:.1f} GB"


def _metric(value: float | None) -> str:
    """A metric in percent with 2 decimals, ``-`` if there is none."""
    return "-" if value is None else f"{value:.2f}"


def run_summary(result: dict, run_dir: Path) -> str:
    """What ``isp run`` prints at the end: a few lines for people.

    Args:
        result: the result record, as :func:`isp_lib.runs.run` returns it.
        run_dir: the run directory.

    Returns:
        Method, data, sparsity reached (and target), the validation and test metric, the
        training steps as a share of the budget T, the wall time, the run directory and the
        model file with its size; no trailing newline.
    """
    state = (f"already complete (made in {duration(result['wall_s'])}), skipped"
             if result.get("skipped") else f"done in {duration(result['wall_s'])}")
    budget = result["budget_steps"]
    phases = ", ".join(f"{name} {entry['steps']}"
                       for name, entry in result["ledger"]["phases"].items())
    lines = [
        f"{result['method']} on {result['model']} / {result['data']} "
        f"({result['profile']} profile, seed {result['seed']}): {state}",
        f"  sparsity  {result['actual_sparsity']:.2%} reached (target "
        f"{result['target_sparsity']:.2%})",
        f"  {result['metric_name']:8s}  val {_metric(result['val_metric'])}, "
        f"test {_metric(result['test_metric'])}",
        f"  steps     {result['train_steps']} = {result['train_steps'] / budget:.2f} T "
        f"(T = {budget} steps; {phases or 'none'})",
        f"  run dir   {run_dir}",
    ]
    if result.get("model_file"):
        lines.append(f"  model     {run_dir / result['model_file']} "
                     f"({_size(result['model_bytes'])})")
    else:
        lines.append("  model     not kept (made with --no-weights)")
    return "\n".join(lines)


def _sweep(config: Path, device: str, dry_run: bool, weights: bool, as_json: bool,
           executor: Executor | None = None, compile: bool = False,
           no_bf16: bool = False) -> None:
    """Run a sweep and write its records, or (dry run) list its cells and their state.
    ``executor`` runs the cells (None: here, one after another; the device is checked);
    ``compile`` and ``no_bf16`` as ``isp sweep --compile --no-bf16`` (:mod:`isp_lib.accel`)."""
    from isp_lib.accel import auto_bf16
    from isp_lib.records import load_sweep, read_records, run_sweep, stale_records

    sweep = load_sweep(config)
    if not no_bf16 and sweep.cells and auto_bf16(sweep.cells[0].profile, device):
        sweep = load_sweep(config, bf16=True)  # one profile per sweep
    stale = len(stale_records(sweep, read_records(sweep.records)))
    if stale:
        print(f"sweep {sweep.name}: {stale} record(s) of {sweep.records} belong to no cell "
              f"(another configuration or numerics version); "
              f"{'the sweep would drop' if dry_run else 'rewriting the file drops'} them",
              file=sys.stderr, flush=True)
    if not dry_run:
        records = run_sweep(sweep, device=device, progress=True, write=True, weights=weights,
                            executor=executor, compile=compile)
        if as_json:
            print(json.dumps({"sweep": sweep.name, "cells": len(records),
                              "records": str(sweep.records)}))
        else:
            print(f"sweep {sweep.name}: {len(records)} cells recorded in {sweep.records} "
                  f"(run directories under {sweep.out})")
        return
    recorded = {r["config_hash"] for r in read_records(sweep.records)}
    print(f"{'hash':12s}  {'method':12s} {'sparsity':8s} {'seed':4s}  {'settings':24s} "
          f"{'recorded':8s}  run dir")
    for cfg in sweep.cells:
        run_dir = sweep.out / cfg.dir_name()
        state = "complete" if (run_dir / "result.json").exists() else \
            "partial" if run_dir.exists() else "-"
        settings = " ".join(f"{k}={v}" for k, v in cfg.overrides) or "-"
        print(f"{cfg.config_hash():12s}  {cfg.method:12s} {cfg.sparsity:<8g} {cfg.seed:<4d}  "
              f"{settings:24s} {'yes' if cfg.config_hash() in recorded else 'no':8s}  {state}")
    found = sum(cfg.config_hash() in recorded for cfg in sweep.cells)
    print(f"{len(sweep.cells)} cells: {found} recorded in {sweep.records}, "
          f"{len(sweep.cells) - found} not")


def _estimate(config: Path, gpu: str | None, as_json: bool, no_bf16: bool = False) -> None:
    """Print what a sweep will cost (``isp sweep CONFIG --estimate``); nothing runs. The GPU is
    checked first, then the config; the cells are those ``isp sweep`` runs on the reference GPU,
    which has native bf16 (bf16 at :data:`isp_lib.accel.FAST_PROFILES`, unless ``no_bf16``)."""
    from isp_lib.accel import FAST_PROFILES
    from isp_lib.estimate import estimate_sweep, reference_gpu, render
    from isp_lib.records import load_sweep

    gpu = reference_gpu(gpu)
    sweep = load_sweep(config)
    if not no_bf16 and sweep.cells and sweep.cells[0].profile in FAST_PROFILES:
        sweep = load_sweep(config, bf16=True)
    est = estimate_sweep(sweep, gpu)
    print(json.dumps(est) if as_json else render(est))


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``isp``; returns the exit status (2 on bad input)."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command == "sweep" and args.dry_run and args.json:
        parser.error("argument --json: not allowed with argument --dry-run")
    try:
        if args.command == "list":
            _list()
            return 0
        if args.command == "sweep" and (args.estimate or args.gpu is not None):
            if not args.estimate:
                raise UserError("--gpu applies to --estimate only: add --estimate, or drop --gpu")
            _estimate(args.config, args.gpu, args.json, getattr(args, "no_bf16", False))
            return 0
        if args.command == "sweep":
            from isp_lib.executors import from_args

            _sweep(args.config, args.device, args.dry_run, not args.no_weights, args.json,
                   from_args(args), args.compile, args.no_bf16)
            return 0
        if args.command == "export":
            from isp_lib.export import export_run

            print(json.dumps(export_run(args.run_dir, args.to)))
            return 0
        from isp_lib.accel import auto_bf16
        from isp_lib.runs import make_config, run

        bf16 = args.bf16 or (not args.no_bf16 and auto_bf16(args.profile, args.device))
        cfg = make_config(args.method, args.model, args.data, args.sparsity, args.profile,
                          args.seed, _parse_set(args.settings), args.model_source,
                          args.data_source, bf16)
        result = run(cfg, args.out, device=args.device, weights=not args.no_weights,
                     compile=args.compile)
    except UserError as exc:
        print(f"isp: error: {exc}", file=sys.stderr)
        return 2
    run_dir = args.out / cfg.dir_name()
    print(json.dumps(result, sort_keys=True) if args.json else run_summary(result, run_dir))
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Run profiles: how big the models and data are, and the hyperparameters used at that scale.

``smoke``: tiny random-init models on a few dozen examples (seconds; CI).
``cpu``: the real offline pretrained all-MiniLM-L6-v2 on real data, and EfficientNet-Lite0 (a
CNN stand-in for CLIP, family ``cnn``) on Fashion-MNIST (minutes on 2 cores).
``paper``: CLIP ViT-B/32 and BERT-base with the paper's Table 1 hyperparameters (a GPU); no
``cnn`` entry, since the stand-in has no paper counterpart.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields, replace

from isp_lib.errors import UserError
from isp_lib.ranges import cast_setting, check_fields, ranged


@dataclass(frozen=True)
class Hparams:
    """Training and pruning hyperparameters shared by every method.

    Each field's type is its annotation and its range is declared with
    :func:`~isp_lib.ranges.ranged`; :func:`check_hparams` checks them.

    Attributes:
        lr: peak AdamW learning rate (linear warmup, then linear decay to zero).
        weight_decay: AdamW (decoupled) weight decay.
        epochs: training budget T of one full fine-tune, in epochs of the train split.
        batch_size: examples per optimizer step.
        warmup_frac: share of the budget spent in linear warmup.
        max_grad_norm: gradient clipping norm (0 disables clipping).
        rate: share of the *remaining* prunable weights removed per pruning call (the paper's s).
        lookahead_steps: ISP look-ahead steps per denoiser (the paper's C).
        denoisers: ISP look-ahead copies per denoised prune (the paper's N).
        seed_frac: ISP seed share of an epoch, t; round i trains t*(i+1) epochs.
        adjust_gap: ISP prunes straight to the target once within this many points of it.
        evals_per_epoch: validation evaluations per epoch of the final fine-tune (best kept).
    """

    lr: float = ranged("> 0", example=2e-5)
    weight_decay: float = ranged(">= 0", example=0.01)
    epochs: float = ranged("> 0", example=3)
    batch_size: int = ranged(">= 1", example=16)
    warmup_frac: float = ranged("[0, 1)", 0.06)
    max_grad_norm: float = ranged(">= 0", 1.0)
    rate: float = ranged("(0, 1)", 0.1)
    lookahead_steps: int = ranged(">= 0", 30)
    denoisers: int = ranged(">= 0", 4)
    seed_frac: float = ranged("> 0", 0.075)
    adjust_gap: float = ranged("[0, 1)", 0.05)
    evals_per_epoch: int = ranged(">= 1", 1)


@dataclass(frozen=True)
class Profile:
    """A scale at which the kit runs.

    Attributes:
        name: ``smoke``, ``cpu`` or ``paper``.
        tiny: build tiny random-init models of each family instead of the real checkpoints.
        max_train: cap on training examples taken from the official train split (None: all).
        max_test: cap on test examples (None: all).
        val_fraction: share of the (capped) train split carved off as validation.
        max_val: cap on the validation split size (None: no cap).
        max_len: maximum token length for text models.
        hparams: hyperparameters per model family (``"bert"``, ``"clip"``, ``"cnn"``).
    """

    name: str
    tiny: bool
    max_train: int | None
    max_test: int | None
    val_fraction: float
    max_val: int | None
    max_len: int
    hparams: dict[str, Hparams] = field(default_factory=dict)

    def hparams_for(self, family: str, overrides: dict[str, object] | None = None) -> Hparams:
        """Return the hyperparameters for ``family`` with ``overrides`` applied, checked.

        Args:
            family: model family (``"bert"``, ``"clip"`` or ``"cnn"``).
            overrides: field name -> value (a string or a number), cast to the field's
                declared type.

        Returns:
            The resolved :class:`Hparams`, each field within its declared range.
        """
        if family not in self.hparams:
            fixes = [f"{_INSTEAD.get(family, 'a model of another family')} with this profile"]
            having = [p.name for p in PROFILES.values() if family in p.hparams]
            if having:
                fixes.append(f"--profile {' or '.join(having)}")
            raise UserError(
                f"profile '{self.name}' has no {family} hyperparameters: use {', or '.join(fixes)}"
            )
        known = {f.name: f for f in fields(Hparams)}
        cast: dict[str, object] = {}
        for key, value in (overrides or {}).items():
            if key not in known:
                raise UserError(
                    f"unknown hyperparameter '{key}': use one of {', '.join(sorted(known))}"
                )
            cast[key] = cast_setting(known[key], value, "hyperparameter")
        hp = replace(self.hparams[family], **cast)
        check_hparams(hp)
        return hp


def check_hparams(hp: Hparams) -> None:
    """Refuse hyperparameters outside their declared types and ranges (:class:`UserError`).

    Args:
        hp: the hyperparameters.
    """
    check_fields(hp, "hyperparameter")


#: What to run instead of a family that a profile leaves out (the paper model it stands in for).
_INSTEAD = {"cnn": "--model clip-vit-b32 (effnet-lite0 is a CPU stand-in for CLIP)"}

PROFILES: dict[str, Profile] = {
    "smoke": Profile(
        name="smoke", tiny=True, max_train=96, max_test=48, val_fraction=0.25, max_val=None,
        max_len=32,
        hparams={
            "bert": Hparams(lr=1e-3, weight_decay=0.0, epochs=2, batch_size=16, rate=0.3,
                            lookahead_steps=2, denoisers=2, seed_frac=0.2),
            # The tiny CLIP learns more than one class at this scale (lr 3e-3, 4 epochs), so
            # tests/test_collapse.py can tell a collapsed method from a collapsed testbed; the
            # tiny random BERT and CNN predict one class whatever the setting.
            "clip": Hparams(lr=3e-3, weight_decay=0.1, epochs=4, batch_size=16, rate=0.3,
                            lookahead_steps=2, denoisers=2, seed_frac=0.2),
            "cnn": Hparams(lr=1e-3, weight_decay=0.01, epochs=2, batch_size=16, rate=0.3,
                           lookahead_steps=2, denoisers=2, seed_frac=0.2),
        },
    ),
    # Validation: 30% of the drug reviews' 600 training reviews (180 examples, 1 example = 0.56
    # points; at 15% it was 90, too few to select on); max_val caps Fashion-MNIST's validation
    # split (18,000 at 30%) at 2,000, so its 58,000 training images are unaffected.
    "cpu": Profile(
        name="cpu", tiny=False, max_train=None, max_test=None, val_fraction=0.3, max_val=2000,
        max_len=96,
        hparams={
            # lr chosen on validation by results/minilm_lr_search.yaml (dense, one-shot 70% and
            # 90%, seed 0): each lr leaves one of the three cells at the majority class; 1e-4
            # and 3e-4 tie on the mean (68.7, 68.3; 1e-3: 67.2; a 180-example split's standard
            # error is 3.3 points). 3e-4 breaks the tie: at 1e-4 the random head barely moves
            # in 135 steps and one-shot 70% sits at the majority class for 3 of 5 evaluations.
            "bert": Hparams(lr=3e-4, weight_decay=0.0, epochs=5, batch_size=16, rate=0.2,
                            lookahead_steps=6, denoisers=4, seed_frac=0.1),
            "clip": Hparams(lr=1e-5, weight_decay=0.1, epochs=2, batch_size=32, rate=0.15,
                            lookahead_steps=10, denoisers=5, seed_frac=0.075),
            # EfficientNet-Lite0 at 64 px on Fashion-MNIST's 58,000 training images: the data caps
            # are per profile, so the budget is a share of one epoch instead: T = 0.22 epoch =
            # 399 steps of 32 (~0.3 s each on 2 cores). seed_frac and lookahead_steps scale
            # like the bert entry's (round i trains (i+1) * 9 steps); validation every 181 steps.
            "cnn": Hparams(lr=1e-3, weight_decay=0.01, epochs=0.22, batch_size=32, rate=0.2,
                           lookahead_steps=6, denoisers=4, seed_frac=0.005, evals_per_epoch=10),
        },
    ),
    # Table 1 of the paper.
    "paper": Profile(
        name="paper", tiny=False, max_train=None, max_test=None, val_fraction=0.05,
        max_val=5000, max_len=128,
        hparams={
            "bert": Hparams(lr=2e-5, weight_decay=0.0, epochs=10, batch_size=32, rate=0.10,
                            lookahead_steps=30, denoisers=4),
            "clip": Hparams(lr=1e-5, weight_decay=0.1, epochs=22, batch_size=128, rate=0.15,
                            lookahead_steps=50, denoisers=5),
        },
    ),
}


def get_profile(name: str) -> Profile:
    """Look up a profile by name.

    Args:
        name: ``smoke``, ``cpu`` or ``paper``.

    Returns:
        The :class:`Profile`.
    """
    try:
        return PROFILES[name]
    except KeyError:
        raise UserError(
            f"unknown profile '{name}': use one of {', '.join(PROFILES)}"
        ) from None

"""The uniform model soup (Wortsman et al., ICML 2022)."""

from __future__ import annotations

import torch

from isp_lib.context import RunContext
from isp_lib.methods.soup_ingredients import SoupIngredients
from isp_lib.soups import average


class UniformSoup(SoupIngredients):
    """Uniform soup: the plain average of all N fine-tuned ingredients."""

    name = "uniform-soup"
    summary = "uniform model soup (Wortsman et al. 2022): average N dense fine-tunes"

    def merge(self, ctx: RunContext, states: list[dict[str, torch.Tensor]], vals: list[float]
              ) -> tuple[dict[str, torch.Tensor], dict]:
        return average(states), {"ingredients": list(range(len(states))),
                                 "ingredient_vals": vals}

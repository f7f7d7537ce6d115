"""The greedy model soup (Wortsman et al., ICML 2022)."""

from __future__ import annotations

import torch

from isp_lib.context import RunContext
from isp_lib.methods.soup_ingredients import SoupIngredients
from isp_lib.soups import greedy_soup


class GreedySoup(SoupIngredients):
    """Greedy soup: ingredients in decreasing validation order, each kept only if the average
    with it does not lower validation accuracy (never below the best ingredient)."""

    name = "greedy-soup"
    summary = "greedy model soup (Wortsman et al. 2022): add a fine-tune only if val improves"

    def merge(self, ctx: RunContext, states: list[dict[str, torch.Tensor]], vals: list[float]
              ) -> tuple[dict[str, torch.Tensor], dict]:
        soup, chosen, val = greedy_soup(states, vals, ctx.evaluate_state)
        return soup, {"ingredients": chosen, "ingredient_vals": vals, "soup_val": val}

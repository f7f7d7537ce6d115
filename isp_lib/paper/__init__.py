"""The paper's numbers (Fig. 3 and Tables 2-7), typed once, as one tidy table.

Each row of ``paper_results.csv`` is one number printed in the paper: ``table`` (``fig3``,
``table2`` ... ``table7``), ``dataset`` and ``method`` (the kit's registry names; LTH is
``imp``), ``sparsity`` (a fraction; 0 for dense models), ``setting`` (an ``isp run --set``
override that defines the row, e.g. ``denoisers=0``; empty for the defaults), ``metric``
(``accuracy``, ``matthews``, ``pearson``, ``mask_cosine_similarity``; ``*_std`` for a standard
deviation over runs), ``value`` (in percent, as printed) and ``note`` (the printed row label
where it differs, and anything inferred where the text is ambiguous).
"""

from __future__ import annotations

from importlib import resources

import pandas as pd

from isp_lib.errors import UserError

COLUMNS = ("table", "dataset", "method", "sparsity", "setting", "metric", "value", "note")
KEY = ("table", "dataset", "method", "sparsity", "setting", "metric")


def paper_numbers(table: str | None = None) -> pd.DataFrame:
    """The paper's numbers, one row each.

    Args:
        table: ``fig3``, ``table2`` ... ``table7``; None for all of them.

    Returns:
        A DataFrame with the columns of :data:`COLUMNS` (``value`` and ``sparsity`` as floats,
        ``setting`` and ``note`` as strings, empty where there is none).

    Raises:
        UserError: ``table`` is not one of the paper's tables here.
    """
    with resources.files(__name__).joinpath("paper_results.csv").open() as f:
        df = pd.read_csv(f, dtype={"sparsity": float, "value": float}, keep_default_na=False)
    if table is None:
        return df
    tables = list(dict.fromkeys(df["table"]))
    if table not in tables:
        raise UserError(f"unknown table '{table}': use one of {', '.join(tables)}")
    return df[df["table"] == table].reset_index(drop=True)

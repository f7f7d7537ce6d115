"""The paper's numbers: the package data loads, is keyed once per number and agrees with itself."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from isp_lib.data import dataset_names
from isp_lib.errors import UserError
from isp_lib.methods import METHODS
from isp_lib.paper import COLUMNS, KEY, paper_numbers

TABLES = ("fig3", "table2", "table3", "table4", "table5", "table6", "table7")


@pytest.fixture(scope="module")
def numbers():
    return paper_numbers()


def value(df, table, dataset, method, sparsity, metric="accuracy", setting=""):
    row = df[(df.table == table) & (df.dataset == dataset) & (df.method == method)
             & (df.sparsity == sparsity) & (df.metric == metric) & (df.setting == setting)]
    assert len(row) == 1, (table, dataset, method, sparsity, metric, setting)
    return float(row.value.iloc[0])


def test_loads_keyed_once_numeric_and_every_table_present(numbers):
    assert tuple(numbers.columns) == COLUMNS
    assert not numbers.duplicated(list(KEY)).any()
    assert numbers.value.map(math.isfinite).all()
    assert numbers.sparsity.between(0.0, 1.0, inclusive="left").all()
    assert set(numbers.table) == set(TABLES)
    assert set(numbers.dataset) <= set(dataset_names())
    assert set(numbers.method) <= set(METHODS) | {"imp-vs-oneshot"}


@pytest.mark.parametrize("table,count", [("fig3", 3), ("table2", 210), ("table3", 90),
                                         ("table4", 16), ("table5", 6), ("table6", 25),
                                         ("table7", 6)])
def test_every_printed_number_is_there(table, count):
    # Table 2: 10 method rows x 18 columns + ISP std + the dense row (mean, std) x 6 data sets.
    # Table 3: 7 rows x 9 tasks + ISP std + dense (mean, std). Table 4: 2 rows x 4 x (mean, std).
    assert len(paper_numbers(table)) == count


def test_the_texts_claims_hold_on_the_transcribed_tables(numbers):
    # Sec. 3.2: ISP beats LTH-rewind by ~3.92 (CIFAR-10) and ~5.38 (CIFAR-100) at 80%.
    for dataset, gap in (("cifar10", 3.92), ("cifar100", 5.38)):
        diff = (value(numbers, "table2", dataset, "isp", 0.8)
                - value(numbers, "table2", dataset, "lth-rewind", 0.8))
        assert diff == pytest.approx(gap, abs=1e-9)
    # Sec. 3.2: ISP beats LTH on 8 of 9 GLUE tasks, on QNLI by more than 1 point.
    t3 = paper_numbers("table3")
    main = t3[~t3.metric.str.endswith("_std")]
    isp = main[main.method == "isp"].set_index("dataset").value
    lth = main[main.method == "imp"].set_index("dataset").value
    assert (isp > lth).sum() == 8 and isp["qnli"] - lth["qnli"] > 1.0


def test_tables_agree_where_they_repeat_a_number(numbers):
    for dataset, sparsity, source in (("svhn", 0.8, "table2"), ("cifar100", 0.8, "table2"),
                                      ("qqp", 0.9, "table3"), ("qnli", 0.7, "table3")):
        assert value(numbers, "table4", dataset, "isp", sparsity) == \
            value(numbers, source, dataset, "isp", sparsity)
    assert value(numbers, "table5", "cifar10", "isp", 0.8, setting="denoisers=0") == \
        value(numbers, "table4", "cifar100", "isp", 0.8, setting="denoisers=0")
    for dataset in ("cars", "cifar10", "cifar100"):
        assert value(numbers, "table6", dataset, "dense", 0.0) == \
            value(numbers, "table2", dataset, "dense", 0.0)


def test_unknown_table_names_the_choices():
    with pytest.raises(UserError, match="use one of fig3, table2"):
        paper_numbers("table9")


def test_the_csv_ships_as_package_data():
    tomllib = pytest.importorskip("tomllib")  # Python 3.11+
    pyproject = Path(__file__).resolve().parent.parent / "pyproject.toml"
    data = tomllib.loads(pyproject.read_text())["tool"]["setuptools"]["package-data"]
    assert "*.csv" in data["isp_lib.paper"]

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from pandas.api.types import is_integer_dtype, is_numeric_dtype, is_string_dtype

from lambdaserve.datasets.churn import (
    CATEGORICAL_FEATURES,
    CONTRACTS,
    ID_COLUMN,
    INTERNET_SERVICES,
    NUMERIC_FEATURES,
    PAYMENT_METHODS,
    PLAN_TIERS,
    REGIONS,
    SHIFTED_FEATURES,
    TARGET,
    generate_churn,
    write_churn_csv,
)

ALLOWED = {
    "contract": CONTRACTS,
    "payment_method": PAYMENT_METHODS,
    "internet_service": INTERNET_SERVICES,
    "region": REGIONS,
    "plan_tier": PLAN_TIERS,
}


@pytest.mark.unit
def test_same_seed_same_table_and_other_seed_other_table() -> None:
    first = generate_churn(500, seed=3)
    pd.testing.assert_frame_equal(first, generate_churn(500, seed=3))
    assert not first.equals(generate_churn(500, seed=4))


@pytest.mark.unit
@pytest.mark.parametrize("dirty", [True, False])
def test_columns_dtypes_and_ranges(dirty: bool) -> None:
    df = generate_churn(3000, seed=1, dirty=dirty)

    assert list(df.columns) == [ID_COLUMN, *NUMERIC_FEATURES, *CATEGORICAL_FEATURES, TARGET]
    assert df[ID_COLUMN].is_unique
    for column in NUMERIC_FEATURES:
        if column != "total_charges":
            assert is_numeric_dtype(df[column]), column
    integer_columns = ["tenure_months", "num_support_tickets", "days_since_last_login"]
    for column in [*integer_columns, "num_devices", "age", TARGET]:
        assert is_integer_dtype(df[column]), column
    assert set(df[TARGET]) == {0, 1}
    assert df["tenure_months"].between(0, 72).all()
    assert df["age"].between(18, 90).all()
    assert df["satisfaction_score"].dropna().between(1, 10).all()
    for column, values in ALLOWED.items():
        assert set(df[column].dropna()) <= set(values), column


@pytest.mark.unit
@pytest.mark.parametrize("seed", [0, 1, 2, 42, 2024])
def test_positive_rate_is_about_a_quarter(seed: int) -> None:
    assert 0.20 <= generate_churn(2000, seed=seed)[TARGET].mean() <= 0.30


@pytest.mark.unit
def test_dirty_table_has_blanks_and_missing_values() -> None:
    df = generate_churn(20_000, seed=5, dirty=True)

    assert is_string_dtype(df["total_charges"])
    blank = df["total_charges"] == " "
    assert 0.005 < blank.mean() < 0.015
    assert pd.to_numeric(df.loc[~blank, "total_charges"]).ge(0).all()
    for column in ["avg_session_minutes", "satisfaction_score", "payment_method", "region"]:
        assert 0.01 < df[column].isna().mean() < 0.03, column
    for column in CATEGORICAL_FEATURES:
        values = df[column].dropna()
        assert (values == values.str.strip()).all(), column


@pytest.mark.unit
def test_clean_table_has_no_missing_values() -> None:
    df = generate_churn(20_000, seed=5, dirty=False)

    assert not df.isna().any().any()
    assert is_numeric_dtype(df["total_charges"])


@pytest.mark.unit
def test_signal_is_real() -> None:
    df = generate_churn(20_000, seed=7, dirty=False)
    by_contract = df.groupby("contract")[TARGET].mean()
    short_tenure = df["tenure_months"] < 12

    assert by_contract["month-to-month"] > by_contract["two-year"] + 0.2
    assert df.loc[short_tenure, TARGET].mean() > df.loc[~short_tenure, TARGET].mean() + 0.1
    assert df.loc[df["num_support_tickets"] >= 3, TARGET].mean() > df[TARGET].mean() + 0.1


@pytest.mark.unit
def test_shift_moves_only_the_shifted_features() -> None:
    base = generate_churn(20_000, seed=11, shift=0.0, dirty=False)
    drifted = generate_churn(20_000, seed=11, shift=1.0, dirty=False)

    assert drifted["monthly_charges"].mean() > base["monthly_charges"].mean() + 15
    assert drifted["total_charges"].mean() > base["total_charges"].mean() * 1.2
    assert drifted["num_support_tickets"].mean() > base["num_support_tickets"].mean() + 1.5
    month_to_month = [(df["contract"] == "month-to-month").mean() for df in (base, drifted)]
    assert month_to_month[1] > month_to_month[0] + 0.2
    for column in set(NUMERIC_FEATURES + CATEGORICAL_FEATURES) - set(SHIFTED_FEATURES):
        pd.testing.assert_series_equal(base[column], drifted[column])


@pytest.mark.unit
@pytest.mark.parametrize("column", ["tenure_months", "age", "avg_session_minutes"])
def test_unshifted_distribution_is_the_same_across_seeds(column: str) -> None:
    base = generate_churn(50_000, seed=21, shift=0.0, dirty=False)[column]
    drifted = generate_churn(50_000, seed=22, shift=1.0, dirty=False)[column]

    assert abs(drifted.mean() - base.mean()) < 0.03 * base.mean()
    assert abs(drifted.std() - base.std()) < 0.05 * base.std()


@pytest.mark.unit
@pytest.mark.parametrize(
    ("n_rows", "shift", "message"),
    [(0, 0.0, "n_rows"), (-5, 0.0, "n_rows"), (10, -0.1, "shift"), (10, 1.5, "shift")],
)
def test_invalid_arguments_raise(n_rows: int, shift: float, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        generate_churn(n_rows, shift=shift)


@pytest.mark.unit
def test_shift_nan_is_rejected() -> None:
    with pytest.raises(ValueError, match="shift"):
        generate_churn(10, shift=float("nan"))


@pytest.mark.unit
def test_csv_round_trip(tmp_path: Path) -> None:
    path = write_churn_csv(tmp_path / "churn.csv", 1500, seed=2)

    assert path == tmp_path / "churn.csv"
    loaded = pd.read_csv(path)
    assert len(loaded) == 1500
    assert list(loaded.columns) == list(generate_churn(1, seed=2).columns)
    assert (loaded["total_charges"] == " ").any()
    assert loaded[TARGET].mean() == generate_churn(1500, seed=2)[TARGET].mean()

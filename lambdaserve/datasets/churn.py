"""Synthetic customer-churn table for the demo, tests and benchmarks.

Each row is one customer of a subscription internet provider, shaped like the well-known Telco
churn data: ``customer_id`` (unique; drop it before training), the ``NUMERIC_FEATURES``, the
``CATEGORICAL_FEATURES`` and the 0/1 target ``churned``.

The signal is known. A customer churns with probability ``sigmoid(logit)``, where::

    logit = -1.85 + 1.4 * [contract == "month-to-month"] - 1.0 * [contract == "two-year"]
            - 0.04 * tenure_months + 0.35 * num_support_tickets
            + 0.02 * (monthly_charges - 65) - 0.35 * (satisfaction_score - 7)
            + 0.5 * [internet_service == "fiber"]

The intercept puts the positive rate near 25% at ``shift=0``. ``shift`` in [0, 1] moves only the
``SHIFTED_FEATURES``: monthly charges rise by up to 20 (and ``total_charges`` with them), the
support-ticket rate goes from 1.2 to 3.0 and the contract mix tilts towards month-to-month. The
labelling rule stays the same, so drifted traffic also churns more. Every column draws from its
own random stream: for one seed the other columns are identical whatever ``shift`` is.

With ``dirty=True`` the table has the flaws of real exports: ~2% missing values in
``avg_session_minutes``, ``satisfaction_score``, ``payment_method`` and ``region``, and
``total_charges`` stored as text with ~1% blank (``" "``) entries. Categories are always clean.

Example:
    >>> df = generate_churn(1_000, seed=7)
    >>> features, labels = df.drop(columns=[ID_COLUMN, TARGET]), df[TARGET]
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pandas as pd

TARGET = "churned"
ID_COLUMN = "customer_id"
NUMERIC_FEATURES: tuple[str, ...] = (
    "tenure_months",
    "monthly_charges",
    "total_charges",
    "num_support_tickets",
    "avg_session_minutes",
    "days_since_last_login",
    "num_devices",
    "age",
    "satisfaction_score",
)
CATEGORICAL_FEATURES: tuple[str, ...] = (
    "contract",
    "payment_method",
    "internet_service",
    "region",
    "plan_tier",
)
SHIFTED_FEATURES: tuple[str, ...] = (
    "monthly_charges",
    "total_charges",
    "num_support_tickets",
    "contract",
)

CONTRACTS = ("month-to-month", "one-year", "two-year")
PAYMENT_METHODS = ("electronic-check", "mailed-check", "bank-transfer", "credit-card")
INTERNET_SERVICES = ("dsl", "fiber", "none")
REGIONS = ("north", "south", "east", "west", "central")
PLAN_TIERS = ("basic", "standard", "premium")

_INTERCEPT = -1.85
_CONTRACT_MIX = np.array([0.55, 0.21, 0.24])
_DRIFTED_CONTRACT_MIX = np.array([0.85, 0.10, 0.05])
_MISSING_RATE = 0.02
_BLANK_RATE = 0.01
_NULLABLE = ("avg_session_minutes", "satisfaction_score", "payment_method", "region")
# One independent random stream per name; append new names at the end to keep old streams.
_STREAMS = (
    *("id", "tenure", "monthly", "total", "tickets", "session", "login", "devices", "age"),
    *("satisfaction", "contract", "payment", "internet", "region", "tier", "label", "dirty"),
)


def _categorical(
    rng: np.random.Generator, values: Sequence[str], probs: npt.ArrayLike, n: int
) -> npt.NDArray[np.str_]:
    """Draw ``n`` of ``values`` with probabilities ``probs``, one uniform per row."""
    index = np.searchsorted(np.cumsum(probs), rng.random(n), side="right")
    return np.array(values)[np.minimum(index, len(values) - 1)]


def generate_churn(
    n_rows: int, *, seed: int = 0, shift: float = 0.0, dirty: bool = True
) -> pd.DataFrame:
    """Return ``n_rows`` synthetic customers; same arguments, same table."""
    if n_rows < 1:
        raise ValueError(f"n_rows must be at least 1, got {n_rows}")
    if not 0.0 <= shift <= 1.0:
        raise ValueError(f"shift must be between 0 and 1 inclusive, got {shift}")
    n = n_rows
    rng = dict(zip(_STREAMS, np.random.default_rng(seed).spawn(len(_STREAMS)), strict=True))

    mix = (1.0 - shift) * _CONTRACT_MIX + shift * _DRIFTED_CONTRACT_MIX
    contract = _categorical(rng["contract"], CONTRACTS, mix, n)
    internet = _categorical(rng["internet"], INTERNET_SERVICES, (0.34, 0.44, 0.22), n)
    tier = _categorical(rng["tier"], PLAN_TIERS, (0.5, 0.35, 0.15), n)
    tenure = np.minimum(rng["tenure"].exponential(24.0, n), 72).astype(np.int64)
    base_charge = np.select([internet == "fiber", internet == "dsl"], [75.0, 50.0], 20.0)
    base_charge += np.select([tier == "premium", tier == "standard"], [25.0, 10.0], 0.0)
    monthly = np.maximum(base_charge + rng["monthly"].normal(0.0, 8.0, n) + 20.0 * shift, 18.0)
    monthly = np.round(monthly, 2)
    tickets = rng["tickets"].poisson(1.2 + 1.8 * shift, n)
    satisfaction = np.round(np.clip(rng["satisfaction"].normal(7.0, 1.8, n), 1.0, 10.0), 1)

    logit = (
        _INTERCEPT
        + 1.4 * (contract == "month-to-month")
        - 1.0 * (contract == "two-year")
        - 0.04 * tenure
        + 0.35 * tickets
        + 0.02 * (monthly - 65.0)
        - 0.35 * (satisfaction - 7.0)
        + 0.5 * (internet == "fiber")
    )
    ids = rng["id"].choice(10**9, size=n, replace=False)
    frame = pd.DataFrame(
        {
            ID_COLUMN: np.char.add("C", np.char.zfill(ids.astype(str), 9)),
            "tenure_months": tenure,
            "monthly_charges": monthly,
            "total_charges": np.round(tenure * monthly * rng["total"].normal(1.0, 0.05, n), 2),
            "num_support_tickets": tickets,
            "avg_session_minutes": np.round(rng["session"].lognormal(np.log(25.0), 0.6, n), 1),
            "days_since_last_login": rng["login"].geometric(0.1, n) - 1,
            "num_devices": np.minimum(1 + rng["devices"].poisson(1.2, n), 8),
            "age": np.clip(rng["age"].normal(45.0, 15.0, n), 18, 90).astype(np.int64),
            "satisfaction_score": satisfaction,
            "contract": contract,
            "payment_method": _categorical(
                rng["payment"], PAYMENT_METHODS, (0.34, 0.23, 0.22, 0.21), n
            ),
            "internet_service": internet,
            "region": _categorical(rng["region"], REGIONS, (0.2,) * 5, n),
            "plan_tier": tier,
            TARGET: (rng["label"].random(n) < 1.0 / (1.0 + np.exp(-logit))).astype(np.int64),
        }
    )
    return _make_dirty(frame, rng["dirty"]) if dirty else frame


def _make_dirty(frame: pd.DataFrame, rng: np.random.Generator) -> pd.DataFrame:
    n = len(frame)
    for column in _NULLABLE:
        frame[column] = frame[column].mask(rng.random(n) < _MISSING_RATE)
    as_text = frame["total_charges"].map("{:.2f}".format)
    frame["total_charges"] = as_text.mask(rng.random(n) < _BLANK_RATE, " ")
    return frame


def write_churn_csv(
    path: str | Path, n_rows: int, *, seed: int = 0, shift: float = 0.0, dirty: bool = True
) -> Path:
    """Write ``generate_churn(...)`` to ``path`` as CSV without an index and return the path."""
    target = Path(path)
    generate_churn(n_rows, seed=seed, shift=shift, dirty=dirty).to_csv(target, index=False)
    return target

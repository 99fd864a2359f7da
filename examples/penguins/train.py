"""Train a penguin-species classifier under SageMaker's script-mode contract and save it as a
lambdaserve bundle.

SageMaker (and ``lambdaserve train --script``) runs this file from a copy of its directory, with
the training data in ``$SM_CHANNEL_TRAIN``, the hyperparameters as ``--key value`` arguments, and
``$SM_MODEL_DIR`` for the model. Locally:

    lambdaserve train --script examples/penguins/train.py --data penguins.csv \\
        --name penguins --hp max_iter=50

On AWS, set the stage's ``training_source`` to ``{"path": "examples/penguins"}``.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import pandas as pd
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.impute import SimpleImputer
from sklearn.model_selection import train_test_split
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import OneHotEncoder

import lambdaserve

NUMERIC = ["bill_length_mm", "bill_depth_mm", "flipper_length_mm", "body_mass_g"]
CATEGORICAL = ["island", "sex"]


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__)
    # Hyperparameters: SageMaker passes each as --<key> <value>, keys as the job names them.
    parser.add_argument("--max-iter", "--max_iter", dest="max_iter", type=int, default=200)
    parser.add_argument(
        "--learning-rate", "--learning_rate", dest="learning_rate", type=float, default=0.1
    )
    parser.add_argument(
        "--max-leaf-nodes", "--max_leaf_nodes", dest="max_leaf_nodes", type=int, default=15
    )
    parser.add_argument("--test-size", "--test_size", dest="test_size", type=float, default=0.25)
    parser.add_argument("--target", default="species")
    # lambdaserve passes the model's name and the version it will be stored as.
    parser.add_argument("--model-name", "--model_name", dest="model_name", default="penguins")
    parser.add_argument("--model-version", "--model_version", dest="model_version")
    # Where SageMaker puts the data and wants the model.
    parser.add_argument("--train", default=os.environ.get("SM_CHANNEL_TRAIN", "data"))
    parser.add_argument("--model-dir", default=os.environ.get("SM_MODEL_DIR", "model"))
    args, ignored = parser.parse_known_args(argv)  # hyperparameters meant for someone else
    if ignored:
        print(f"ignoring arguments this script does not take: {' '.join(ignored)}")
    return args


def read_training_data(channel: Path, target: str) -> pd.DataFrame:
    files = sorted(channel.glob("*.csv"))
    if not files:
        sys.exit(f"no CSV file in the training channel {channel}")
    frame = pd.concat([pd.read_csv(path) for path in files], ignore_index=True)
    if target not in frame.columns:
        sys.exit(f"the training data has no column {target!r} (columns: {list(frame.columns)})")
    return frame.dropna(subset=[target])


def build_model(args: argparse.Namespace) -> Pipeline:
    preprocess = ColumnTransformer(
        [
            ("numeric", SimpleImputer(strategy="median"), NUMERIC),
            (
                "categorical",
                make_pipeline(
                    SimpleImputer(strategy="most_frequent"),
                    OneHotEncoder(handle_unknown="ignore", sparse_output=False),
                ),
                CATEGORICAL,
            ),
        ]
    )
    classifier = HistGradientBoostingClassifier(
        max_iter=args.max_iter,
        learning_rate=args.learning_rate,
        max_leaf_nodes=args.max_leaf_nodes,
        random_state=0,
    )
    return Pipeline([("preprocess", preprocess), ("classifier", classifier)])


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    frame = read_training_data(Path(args.train), args.target)
    X, y = frame[NUMERIC + CATEGORICAL], frame[args.target]
    X_train, X_test, y_train, y_test = train_test_split(
        X, y, test_size=args.test_size, stratify=y, random_state=0
    )
    model = build_model(args).fit(X_train, y_train)
    print(f"holdout accuracy: {model.score(X_test, y_test):.3f} on {len(X_test)} penguins")
    lambdaserve.save_model(
        model,
        path=args.model_dir,
        name=args.model_name,
        version=args.model_version,
        X=X_train,
        y=y_train,
        eval_set=(X_test, y_test),
    )
    print(f"saved {args.model_name} to {args.model_dir}")


if __name__ == "__main__":
    main()

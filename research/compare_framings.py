"""Add one framing comparison to a framing.json (the model card's "Why this framing"):
two models trained alike, one on whole aligned images and one on detector crops, each with
its model.json (val metrics) and its ``bench/wild.py --json`` figures.

    python research/compare_framings.py --out framing.json --how "..." \\
        --aligned MODEL_DIR WILD_JSON --detected MODEL_DIR WILD_JSON [--conclusion "..."]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path


def figures(model_dir: str, wild_json: str) -> dict:
    val = json.loads((Path(model_dir) / "model.json").read_text())["metrics"]["val"]
    wild = json.loads(Path(wild_json).read_text())["face0"]
    return {
        "val_faces": val["faces"],
        "val_macro_f1": val["macro_f1"],
        "val_macro_auc": val["macro_auc"],
        "wild_faces": wild["faces"],
        "wild_macro_f1": wild["macro_f1"],
        "wild_macro_f1_at_0.5": wild["macro_f1_at_0.5"],
        "wild_macro_auc": wild["macro_auc"],
        "wild_f1": {a: v["at_threshold"]["f1"] for a, v in wild["attributes"].items()},
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--out", required=True, help="framing.json to add to (created when missing).")
    parser.add_argument("--how", required=True, help="How the two models were trained and scored.")
    parser.add_argument("--aligned", nargs=2, required=True, metavar=("MODEL_DIR", "WILD_JSON"))
    parser.add_argument("--detected", nargs=2, required=True, metavar=("MODEL_DIR", "WILD_JSON"))
    parser.add_argument("--conclusion", help="What was kept and why (the card prints it last).")
    args = parser.parse_args()
    out = Path(args.out)
    document = json.loads(out.read_text()) if out.exists() else {"comparisons": []}
    document["comparisons"] = [c for c in document["comparisons"] if c["how"] != args.how]
    document["comparisons"].append(
        {
            "how": args.how,
            "framings": {"aligned": figures(*args.aligned), "detected": figures(*args.detected)},
        }
    )
    if args.conclusion:
        document["conclusion"] = args.conclusion
    out.write_text(json.dumps(document, indent=2) + "\n")
    print(json.dumps(document, indent=2))


if __name__ == "__main__":
    main()

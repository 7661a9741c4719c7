"""Write ``MODEL.md`` for a trained model from its ``model.json`` and its own reports (numbers are
never typed in). With ``--research DIR`` (the experiments' reports, ``research/reports``) the card
counts the recipes those folds rejected and links to the research page rendered from them.

python -m trainer.model_card facelabel/models/default trainer/make_default_model.sh \\
    --research research/reports
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

from facelabel.artifact import ATTRIBUTES, load_artifact
from facelabel.settings import Settings
from trainer.crossval import POOLED
from trainer.evaluate import summary_markdown
from trainer.recipe import LOW_RES_SCALE

FRAMINGS = {
    "aligned": "trained on the whole aligned images; `facelabel.vision.faces` makes the same crop "
    "when labelling",
    "detected": "trained on MTCNN's largest face in each image, framed like CelebA's aligned crop: "
    "`facelabel.vision.faces` makes exactly this crop of every face it detects in a photo",
}
LICENSE = (
    "Trained on images of CelebA (Liu et al., MMLab, CUHK), which is licensed for "
    "**non-commercial research purposes only**; this model inherits that restriction."
)


DEFAULT_DETECTOR = Settings.model_fields["detector"].default
DEFAULT_FRAMING = Settings.model_fields["face_framing"].default


def render(directory: str | Path, commands: str, research: str | Path | None = None) -> str:
    meta = load_artifact(directory).meta
    report = Path(directory) / "report"
    crossval = report / "crossval.json"
    page = _research_page(directory, research)
    if crossval.exists():
        cv, test = json.loads(crossval.read_text()), json.loads((report / "test.json").read_text())
        rivals = _candidate_count(Path(research) / "candidates") if research else 0
        quality = [
            *_crossval_data_section(meta, cv, test),
            *_estimate_section(cv, test, rivals, page),
            *_carry_over_section(cv.get("shipped_model")),
        ]
        reference = cv["sets"][POOLED]
    else:
        quality = [*_data_section(meta), *_validation_section(meta)]
        reference = meta["metrics"]["val"]
    lines = [
        *_summary_section(meta),
        *quality,
        *_wild_section(report / "wild.json", reference),
        *_research_section(page),
        *_cost_section(Path(directory), report / "throughput.json"),
        *_training_section(meta["training"]),
        *reproduce_section(commands),
        "## License",
        "",
        LICENSE,
        "",
    ]
    return "\n".join(lines)


def reproduce_section(commands: str) -> list[str]:
    """The commands that made what the page shows, verbatim."""
    return ["## Reproduce", "", "```", commands.strip(), "```", ""]


RESEARCH_PAGE = Path("docs") / "research.md"  # beside research/, rendered by research/card.py


def _research_page(directory: str | Path, research: str | Path | None) -> str | None:
    """The research page's link from the card (research/reports → docs/research.md), if any."""
    if research is None:
        return None
    return os.path.relpath(Path(research).resolve().parent.parent / RESEARCH_PAGE, Path(directory).resolve())


def _research_section(page: str | None) -> list[str]:
    if page is None:
        return []
    return [
        "## How this recipe was chosen",
        "",
        f"[The research page]({page}) holds the experiments run beside this model by the same person "
        "folds, each with the rule fixed before it: backbones screened on frozen features, the shipped "
        "recipe run again with another seed (how far training noise alone moves these figures), the "
        "recipes tried and rejected, an ensemble, thresholds of the wild photos' own, training on the "
        "wild photos, recipe changes judged face by face, and why the model trains on whole aligned "
        "images. `make research` reruns them.",
        "",
    ]


def _summary_section(meta: dict) -> list[str]:
    recipe = meta["training"]["recipe"]
    initial = Path(recipe["weights"]).name if recipe["weights"] else "none"
    return [
        f"# Model card: {meta['name']}",
        "",
        f"Backbone `{meta['backbone']}` (initial weights: `{initial}`), "
        f"input {meta['input_size']}×{meta['input_size']} RGB, framing `{meta['framing']}` "
        f"({FRAMINGS[meta['framing']]}), preprocessing "
        f"{meta['preprocessing']}. Outputs: sigmoid probabilities for {', '.join(meta['attributes'])}."
        + _other_framings(meta),
        "",
    ]


def _other_framings(meta: dict) -> str:
    """The training sets whose crops are framed unlike the model's own framing, by framing."""
    sets: dict[str, set[str]] = {}
    for spec, manifest in meta["training"]["data"]["train"].items():
        if manifest["framing"] != meta["framing"]:
            sets.setdefault(manifest["framing"], set()).add(Path(spec).parent.name or spec)
    return "".join(
        f" Also trained on `{framing}` crops ({FRAMINGS[framing]}): "
        + ", ".join(f"`{name}`" for name in sorted(names))
        + "."
        for framing, names in sorted(sets.items())
    )


def _data_section(meta: dict) -> list[str]:
    data = meta["training"]["data"]
    val = next(iter(data["val"].values()))["splits"]["val"]
    sources = ", ".join(f"`{spec}` ({m['splits']['train']['images']})" for spec, m in data["train"].items())
    return [
        "## Data",
        "",
        f"CelebA sample, official identity-disjoint partition: {data['train_images']} training faces "
        f"from {sources}; {val['images']} validation faces (positives per attribute: "
        f"train {data['train_positives']}, val {val['positives']}). "
        "Validation chose the thresholds and gives the numbers below; "
        "there is no separate test set in the sample, so they are optimistic by the threshold choice.",
        "",
    ]


def _validation_section(meta: dict) -> list[str]:
    return [
        "## Validation metrics",
        "",
        summary_markdown(meta["metrics"]["val"]).rstrip(),
        "",
        "Intervals: 1,000 bootstrap resamples of the validation faces.",
        "",
    ]


def _crossval_data_section(meta: dict, cv: dict, test: dict) -> list[str]:
    data = meta["training"]["data"]
    sources = " and ".join(
        f"`{name}/`" for name in dict.fromkeys(Path(spec).parent.name for spec in data["train"])
    )
    return [
        "## Data",
        "",
        f"Every image of the CelebA sample's folders, split by person (CelebA's identity file, one "
        f"seed): {cv['folds']} cross-validation folds and a test split of {test['people']} people "
        f"that no choice looked at. The shipped model trained on all {cv['folds']} folds of "
        f"{sources}: {data['train_images']} faces (positives {data['train_positives']}). `wild/` photos "
        "(the detector's largest face, cropped as a worker crops it) are only scored, never trained on.",
        "",
    ]


def _candidate_count(folder: Path) -> int:
    return sum(p.is_dir() for p in folder.iterdir()) if folder.is_dir() else 0


def _estimate_section(cv: dict, test: dict, rivals: int, page: str | None) -> list[str]:
    """The cross-validated estimate, then the held-out test people, as tables; with ``rivals``
    (recipes the same folds rejected, on the research ``page``), a word on what choosing by those
    folds does to the first."""
    return [
        "## Quality on people the model has never seen",
        "",
        f"**Cross-validated** ({cv['folds']} folds by person, {cv['people']} people): every face is "
        "predicted by a model trained without its person (fixed epochs: the held-out fold chose "
        "nothing), at thresholds chosen on the *other* folds' predictions. Intervals: 95 %, "
        "1,000 resamples of people (all of a person's faces together).",
        "",
        *quality_table(cv["sets"]),
        "",
        f"**Held-out test** ({test['people']} people, set aside before anything was trained): the shipped "
        "model at its shipped thresholds (chosen on all out-of-fold predictions).",
        "",
        *quality_table(test["sets"]),
        "",
        f"The estimate for a new person is the first row, `{POOLED}` (every face of every training "
        "folder, pooled); per folder, `aligned` holds many faces of few people, so its interval is "
        "wide, and `aligned_89x109` holds half-resolution faces.",
        "",
        "What these numbers are: estimates for new people photographed like CelebA's celebrities "
        "(aligned crops; `wild` = whole photos through the default detector). What they are not: "
        "a promise for other photo styles, ages or lighting; CelebA's own labels are noisy "
        "(mustache most of all), and each cross-validation model saw "
        f"{cv['folds'] - 1}/{cv['folds']} of the training people, so that row slightly "
        "understates the shipped model. Thresholds: the F1-best per attribute on every "
        "out-of-fold prediction."
        + (
            f" The cross-validation that estimates this recipe also chose it over the {rivals} recipes "
            f'under "Tried and rejected" on [the research page]({page}), by these same folds, so its '
            "cross-validated rows carry the luck that made it win; the held-out test is the figure no "
            "choice looked at."
            if rivals
            else ""
        ),
        "",
        "| attribute | " + " | ".join(ATTRIBUTES) + " |",
        "|---|" + "---|" * len(ATTRIBUTES),
        "| threshold | " + " | ".join(str(cv["thresholds"][a]) for a in ATTRIBUTES) + " |",
        "",
    ]


def _carry_over_section(check: dict | None) -> list[str]:
    """The fold models against the shipped model at the shipped thresholds, on score-only photos."""
    if check is None:
        return []
    lines = [
        "**Do the thresholds carry over?** They were chosen on the fold models' outputs; the shipped "
        "model is another training run, on every fold. On the "
        f"{check['faces']} score-only photos of the folds, which no model trained on (the shipped "
        "model saw other photos of most of their people), at the shipped thresholds:",
        "",
        "| attribute | positives | labelled positive by the fold models | by the shipped model "
        "| F1, fold models | F1, shipped model |",
        "|---|---|---|---|---|---|",
    ]
    for attribute in ATTRIBUTES:
        a = check["attributes"][attribute]
        share, f1 = a["labelled_positive"], a["f1"]
        lines.append(
            f"| {attribute} | {a['support']} | {share['fold_models']:.1%} | {share['shipped_model']:.1%} "
            f"| {f1['fold_models']} | {f1['shipped_model']} |"
        )
    return [*lines, ""]


def quality_table(sets: dict) -> list[str]:
    lines = [
        "| faces of | faces | people | macro-F1 (95 % CI) | at 0.5 | "
        + " | ".join(f"{a} F1 (CI)" for a in ATTRIBUTES)
        + " | macro AUC |",
        "|---|---|---|---|---|" + "---|" * len(ATTRIBUTES) + "---|",
    ]
    for name, m in sets.items():
        per = " | ".join(
            f"{a['f1']} ({a['f1_95'][0]}–{a['f1_95'][1]}), {a['support']} pos."
            for a in (m["attributes"][x] for x in ATTRIBUTES)
        )
        ci = m["macro_f1_95"]
        lines.append(
            f"| {name} | {m['faces']} | {m['people']} | {m['macro_f1']} ({ci[0]}–{ci[1]}) "
            f"| {m['macro_f1_at_0.5']} | {per} | {m['macro_auc']} |"
        )
    return lines


def low_res(recipe: dict) -> str:
    """What ``--low-res`` did to the training faces ("" without it)."""
    low, high = LOW_RES_SCALE
    return (
        f"with probability {recipe['low_res']}, the face shrunk to {low * 100:.0f}–{high * 100:.0f} % "
        "of its side and scaled back up"
        if recipe.get("low_res")
        else ""
    )


def _training_section(training: dict) -> list[str]:
    recipe = training["recipe"]
    augmentation = "mirror, random zoom 0.88–1.0, brightness/contrast/saturation jitter"
    if recipe.get("low_res"):
        augmentation += f"; {low_res(recipe)}"
    if recipe.get("frozen_below"):
        seen = (
            f"{recipe['backbone']} is frozen up to `{recipe['frozen_below']}`: its outputs for each "
            f"image and for one augmented view of it ({augmentation}) were computed once and cached, "
            "and the layers above it and the head trained on them, one of the two views drawn each epoch."
        )
    else:
        seen = f"Augmentation: {augmentation}."
    stored = " Weights stored at float16." if recipe.get("float16") else ""
    if recipe.get("ema_momentum"):
        stored += (
            f" Each phase ends on the exponential moving average of the weights (momentum "
            f"{recipe['ema_momentum']}), not the last step's."
        )
    if recipe.get("steps_per_epoch"):
        stored += (
            f" Each epoch is {recipe['steps_per_epoch']} batches (the images drawn again as needed), "
            "as many as a cross-validation model's, so that this model is trained as far as the "
            "models whose outputs chose its thresholds."
        )
    lines = [
        "## Training",
        "",
        f"Loss: binary cross-entropy with positives weighted by sqrt(negatives/positives), capped at "
        f"{recipe['positive_weight_cap']}: {training['positive_weights']}. {seen} Batch "
        f"{recipe['batch_size']}, Adam, seed {recipe['seed']}.{stored}",
        "",
        "| phase | epochs run | learning rate | time | train images/s |",
        "|---|---|---|---|---|",
    ]
    rates = training.get("train_images_per_second", {})
    for phase, info in sorted(training["phases"].items(), key=lambda item: item[0] != "head"):
        lr = recipe["lr"] if phase == "head" else recipe["fine_tune_lr"]
        lines.append(
            f"| {phase} | {info['epochs']} | {lr} | {info['seconds'] / 60:.1f} min | {rates.get(phase, '')} |"
        )
    return lines + ["", f"Trained on {training['host_cpus']} CPU cores, finished {training['finished']}.", ""]


def _cost_section(directory: Path, throughput: Path) -> list[str]:
    """The file's size and, when measured (``bench/throughput.py --json``), faces per second."""
    size = (directory / "model.keras").stat().st_size / 1e6
    lines = ["## Cost", "", f"`model.keras`: {size:.1f} MB.", ""]
    if not throughput.exists():
        return lines
    run = json.loads(throughput.read_text())
    lines += [
        f"Aligned faces per second, {run['images']} images, batch {run['batch_size']}, "
        f"{run['cpus']} CPU cores, no GPU: `python bench/throughput.py --json "
        "facelabel/models/default/report/throughput.json`.",
        "",
        "| runtime | raw forward | embedded `label --aligned` | `enqueue` → worker → SQL |",
        "|---|---|---|---|",
    ]
    for runtime, r in run["runtimes"].items():
        lines.append(f"| {runtime} | {r['raw']} | {r['label']} | {r['distributed']} |")
    return lines + [""]


def _wild_section(path: Path, reference: dict) -> list[str]:
    """In-the-wild figures from ``bench/wild.py --json``, when they were measured: every
    detector and framing side by side, then face 0 of the default pair in detail."""
    if not path.exists():
        return []
    wild = json.loads(path.read_text())
    runs = wild["runs"]
    default = next(r for r in runs if (r["detector"], r["framing"]) == (DEFAULT_DETECTOR, DEFAULT_FRAMING))
    lines = [
        "## In-the-wild photos",
        "",
        f"CelebA `wild/` ({wild['photos']} photos with labels for the main face, leaving out those whose "
        "aligned version is in the training folders; most of the people are training people, so this "
        "compares detectors and framings, not generalisation). Face 0 (the largest), cropped as a "
        "worker crops it, against the photo's labels, at this model's thresholds (and at 0.5); "
        "`label`: the whole command on the folder. "
        "Measured by `python bench/wild.py --json facelabel/models/default/report/wild.json`:",
        "",
        *wild_table(runs),
    ]
    share = ", ".join(f"{k.replace('_', ' ')} {100 * v:.0f} %" for k, v in default["share"].items())
    best = max(runs, key=lambda r: r["macro_f1"])
    if best is default:
        choice = (
            f"These photos chose the default detector and framing (the best face-0 macro-F1 of the "
            f"{len(runs)} pairs), so the default's figures here flatter it: they are not an "
            "independent estimate of its quality on new photos."
        )
    else:
        choice = (
            f"These photos chose the default detector and framing with an earlier model; with this one "
            f"{best['detector']} framed by its {best['framing']} scores {best['macro_f1']} against the "
            f"default's {default['macro_f1']}, a difference these {wild['photos']} photos cannot tell "
            "from noise. They are not an independent estimate of quality either way; the "
            "cross-validated `wild` row above is."
        )
    return lines + [
        "",
        choice,
        "",
        f"Face 0 with the default, {DEFAULT_DETECTOR} framed by its {DEFAULT_FRAMING} "
        f"(time: {share}; classifier on {default['runtime']}):",
        "",
        summary_markdown(default["face0"]).rstrip(),
        "",
        f"The quality estimate above minus this: {reference['macro_f1'] - default['macro_f1']:.3f} at "
        f"the stored thresholds, {reference['macro_f1_at_0.5'] - default['macro_f1_at_0.5']:.3f} "
        "at a flat 0.5.",
        "",
    ]


def wild_table(runs: list[dict]) -> list[str]:
    """The detector × framing comparison of ``bench/wild.py``, as Markdown lines."""
    lines = [
        "| detector | framing | detect + crop ms/photo | face found | face-0 macro-F1 (at 0.5) "
        "| `label` photos/s | `label` peak MiB | 24 MP photos, `label` peak MiB |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in runs:
        lines.append(
            f"| {r['detector']} | {r['framing']} | {r['detect_ms_per_photo']} "
            f"| {100 * r['face_found'] / r['photos']:.1f} % | {r['macro_f1']} ({r['macro_f1_at_0.5']}) "
            f"| {r['label_photos_per_second']} | {r['label_peak_rss_mib']} "
            f"| {r.get('peak_rss_mib_24mp', '')} |"
        )
    return lines


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("model", type=Path, help="The model's folder; MODEL.md is written there.")
    parser.add_argument("commands", nargs="?", type=Path, help="The script that built it (its Reproduce).")
    parser.add_argument("--research", type=Path, help="The reports of the experiments that chose its recipe.")
    args = parser.parse_args(argv)
    commands = args.commands.read_text() if args.commands else "make model"
    (args.model / "MODEL.md").write_text(render(args.model, commands, args.research))


if __name__ == "__main__":
    main()

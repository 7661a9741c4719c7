"""Write ``MODEL.md`` for a trained model from its ``model.json`` (numbers are never typed in).

python -m trainer.model_card facelabel/models/default
"""

from __future__ import annotations

import json
import sys
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


def render(directory: str | Path, commands: str) -> str:
    meta = load_artifact(directory).meta
    report = Path(directory) / "report"
    crossval = report / "crossval.json"
    if crossval.exists():
        cv, test = json.loads(crossval.read_text()), json.loads((report / "test.json").read_text())
        quality = [
            *_crossval_data_section(meta, cv, test),
            *_estimate_section(cv, test, _candidate_count(report / "candidates")),
            *_carry_over_section(cv.get("shipped_model")),
            *_repeats_section(report / "repeats", meta, cv),
        ]
        reference = cv["sets"][POOLED]
    else:
        quality = [*_data_section(meta), *_validation_section(meta)]
        reference = meta["metrics"]["val"]
    lines = [
        *_summary_section(meta),
        *quality,
        *_wild_section(report / "wild.json", reference),
        *_screen_section(report / "screen.json"),
        *_candidates_section(report / "candidates", meta, report / "throughput.json"),
        *_ensemble_section(report, meta),
        *_wild_training_section(report / "wild_training.json"),
        *_paired_section(report / "paired"),
        *_framing_section(Path(directory) / "report" / "framing.json"),
        *_cost_section(Path(directory), report / "throughput.json"),
        *_training_section(meta["training"]),
        "## Reproduce",
        "",
        "```",
        commands.strip(),
        "```",
        "",
        "## License",
        "",
        LICENSE,
        "",
    ]
    return "\n".join(lines)


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


def _estimate_section(cv: dict, test: dict, rivals: int) -> list[str]:
    """The cross-validated estimate, then the held-out test people, as tables; with ``rivals``
    (recipes the same folds rejected), a word on what choosing by those folds does to the first."""
    return [
        "## Quality on people the model has never seen",
        "",
        f"**Cross-validated** ({cv['folds']} folds by person, {cv['people']} people): every face is "
        "predicted by a model trained without its person (fixed epochs: the held-out fold chose "
        "nothing), at thresholds chosen on the *other* folds' predictions. Intervals: 95 %, "
        "1,000 resamples of people (all of a person's faces together).",
        "",
        *_quality_table(cv["sets"]),
        "",
        f"**Held-out test** ({test['people']} people, set aside before anything was trained): the shipped "
        "model at its shipped thresholds (chosen on all out-of-fold predictions).",
        "",
        *_quality_table(test["sets"]),
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
            f' This recipe was chosen over the {rivals} under "Tried and rejected" by these same '
            "folds, so its cross-validated rows carry the luck that made it win; the held-out test "
            "is the figure no choice looked at."
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


def _repeats_section(folder: Path, meta: dict, cv: dict) -> list[str]:
    """This recipe cross-validated again with other seeds (``report/repeats/NAME/``: their
    ``crossval.json`` and a fold or final model's ``model.json``): how far training noise alone
    moves the estimate."""
    if not folder.is_dir():
        return [
            "**Run to run.** Not measured for this recipe: it has been cross-validated with one seed "
            "only. The candidates below that differ only by their seed show how far training noise "
            "alone moved another recipe's estimate.",
            "",
        ]
    runs = [(meta["training"]["recipe"]["seed"], "this model's run", cv)]
    for repeat in sorted(p for p in folder.iterdir() if p.is_dir()):
        theirs = json.loads((repeat / "model.json").read_text())
        recipe, ours = theirs["training"]["recipe"], meta["training"]["recipe"]
        # a field newer than a run: None; a fold model's file serves (its epochs' length is the folds')
        fields = (set(ours) | set(recipe)) - {"seed", "weights", "steps_per_epoch"}
        if any(ours.get(k) != recipe.get(k) for k in fields) or any(theirs[k] != meta[k] for k in NETWORK):
            raise ValueError(f"{repeat}: not this model's recipe and network with another seed")
        runs.append((recipe["seed"], f"`{repeat.name}`", json.loads((repeat / "crossval.json").read_text())))
    names = list(cv["sets"])
    lines = [
        "**Run to run.** The same recipe cross-validated again by the same folds with another seed "
        "(initial head weights, shuffling, augmentation): a difference between recipes within the "
        "spread of these rows is training noise, whatever the intervals over people say. Macro-F1 "
        "per folder, and pooled F1 per attribute:",
        "",
        "| seed | run | "
        + " | ".join(names)
        + " | "
        + " | ".join(f"{a} F1, pooled" for a in ATTRIBUTES)
        + " |",
        "|---|---|" + "---|" * (len(names) + len(ATTRIBUTES)),
    ]
    for seed, label, run in runs:
        pooled = run["sets"][POOLED]["attributes"]
        lines.append(
            f"| {seed} | {label} | "
            + " | ".join(str(run["sets"][n]["macro_f1"]) for n in names)
            + " | "
            + " | ".join(str(pooled[a]["f1"]) for a in ATTRIBUTES)
            + " |"
        )
    return [*lines, ""]


def _quality_table(sets: dict) -> list[str]:
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


def _screen_section(path: Path) -> list[str]:
    """Backbones compared on frozen features (``bench/screen_backbones.py``), when measured."""
    if not path.exists():
        return []
    screened = json.loads(path.read_text())
    lines = [
        "## Backbones screened",
        "",
        "Each backbone's pooled ImageNet features, frozen, under one logistic regression per "
        "attribute, cross-validated by the same person folds (thresholds from the other folds; "
        "the test people never read): `python bench/screen_backbones.py`. A screen, not the shipped "
        "recipe (which fine-tunes the backbone): it says which backbones earn a full training.",
        "",
        "| backbone | faces of | macro-F1 (95 % CI) | macro AUC | "
        + " | ".join(f"{a} F1" for a in ATTRIBUTES)
        + " |",
        "|---|---|---|---|" + "---|" * len(ATTRIBUTES),
    ]
    for backbone, report in screened.items():
        for name, m in report["sets"].items():
            ci = m["macro_f1_95"]
            per = " | ".join(str(m["attributes"][a]["f1"]) for a in ATTRIBUTES)
            lines.append(
                f"| {backbone} | {name} | {m['macro_f1']} ({ci[0]}–{ci[1]}) | {m['macro_auc']} | {per} |"
            )
    pooled = {b: r["sets"][POOLED] for b, r in screened.items()}
    best = max(pooled, key=lambda b: pooled[b]["macro_f1"])
    others = ", ".join(f"{b} {m['macro_f1']}" for b, m in pooled.items() if b != best)
    return lines + [
        "",
        f"Best on frozen features: {best} (pooled macro-F1 {pooled[best]['macro_f1']}, AUC "
        f"{pooled[best]['macro_auc']}; {others}).",
        "",
    ]


def _candidates_section(folder: Path, meta: dict, throughput: Path) -> list[str]:
    """Recipes cross-validated by the same folds and not shipped (``report/candidates/NAME/``:
    their ``crossval.json``, a fold or final model's ``model.json`` and, for another network,
    ``bench/throughput.py --json`` figures; a candidate without them is this model's network
    trained another way)."""
    if not folder.is_dir():
        return []
    ours = json.loads((folder.parent / "crossval.json").read_text())["sets"]
    own_speed = json.loads(throughput.read_text())["runtimes"] if throughput.exists() else {}
    lines = ["## Tried and rejected", ""]
    for candidate in sorted(p for p in folder.iterdir() if p.is_dir()):
        cv = json.loads((candidate / "crossval.json").read_text())
        theirs = json.loads((candidate / "model.json").read_text())
        recipe = theirs["training"]["recipe"]
        measured = _measured_run(candidate, theirs, meta)
        frozen = f", frozen up to `{recipe['frozen_below']}`" if recipe.get("frozen_below") else ""
        gains = ", ".join(
            f"{name} {cv['sets'][name]['macro_f1'] - m['macro_f1']:+.3f}"
            for name, m in ours.items()
            if name in cv["sets"]
        )
        lines += [
            f"**`{candidate.name}`**: backbone `{recipe['backbone']}` at {theirs['input_size']} px{frozen}, "
            f"{recipe['epochs']} head + {recipe['fine_tune_epochs'] if recipe['fine_tune'] else 0} "
            f"fine-tuning epochs at {recipe['fine_tune_lr']}, {_weights_kept(recipe)}"
            f"{f', low-resolution augmentation ({_low_res(recipe)})' if recipe.get('low_res') else ''}"
            f"{_loss(recipe)}, seed {recipe['seed']}; "
            f"{_candidate_cost(candidate, measured, own_speed)}. "
            "Cross-validated by the same folds and thresholds rule:",
            "",
            *_quality_table(cv["sets"]),
            "",
            f"Macro-F1 against this model's cross-validated rows: {gains}. Pooled 95 % intervals: "
            f"{_range(cv['sets'][POOLED])} against {_range(ours[POOLED])}." + _slower(measured, own_speed),
            "",
        ]
    return lines


def _ensemble_section(report: Path, meta: dict) -> list[str]:
    """Cross-validated runs averaged with no training (``bench/ensemble_oof.py --json
    report/ensemble.json``): its rows, its gain over its best run against the rule it was judged
    by, and the cost of running every member's network on each face."""
    path = report / "ensemble.json"
    if not path.exists():
        return []
    ensemble = json.loads(path.read_text())
    speeds = []
    for member in ensemble["members"]:
        network = tuple(member[key] for key in NETWORK)
        run = (
            report / "throughput.json"
            if network == _network(meta)
            else _network_run(report / "candidates", network)
        )
        if run is None:
            raise ValueError(f"{path}: no throughput.json measures the network of {member['work']}")
        speeds.append(json.loads(run.read_text())["runtimes"])
    own_run = json.loads((report / "throughput.json").read_text())
    own = own_run["runtimes"]
    both = ", ".join(
        f"{runtime} {1 / sum(1 / s[runtime]['raw'] for s in speeds):.1f} (this model: {own[runtime]['raw']})"
        for runtime in own
        if all(runtime in s for s in speeds)
    )
    members = " and ".join(
        f"`{m['work']}` ({m['backbone']} at {m['input_size']} px, seed {m['seed']}; macro-F1 in the run "
        f"averaged: {', '.join(f'{value} {name}' for name, value in m['macro_f1'].items())})"
        for m in ensemble["members"]
    )
    mean, low, high = ensemble["minus_best_member"]
    verdict = "passes: it goes on to final models" if ensemble["passes"] else "fails: not shipped"
    return [
        "## Ensemble",
        "",
        f"The mean of the probabilities of {members}, cross-validated by the same folds: each face "
        "scored by models that never saw its person, thresholds cross-fitted alike, no training "
        "(`python bench/ensemble_oof.py`, in `make model`). A member's figure is its own in the run "
        "averaged: training on CPU threads is not repeatable, so a rerun of a recipe, seed and all, "
        "can score apart from that recipe's report elsewhere on this card.",
        "",
        *_quality_table(ensemble["sets"]),
        "",
        f"Pooled macro-F1 against its best member `{ensemble['best_member']}`: {mean:+.4f} (95 % {low:+.4f} "
        f"to {high:+.4f}, people resampled, the same draws for both). The rule, fixed before it was scored: "
        f"at least {ensemble['min_gain']:+.3f} with the interval above 0; it {verdict}. Cost: every "
        f"member's network runs on each face, raw forward faces/s on {own_run['cpus']} CPU cores from "
        f"the members' own runs: {both}.",
        "",
    ]


def _wild_training_section(path: Path) -> list[str]:
    """One recipe and seed trained on the wild photos or only scoring them (``bench/wild_training.py
    --json report/wild_training.json``): both runs' rows, the differences face by face and the
    verdict of the rule they were judged by."""
    if not path.exists():
        return []
    check = json.loads(path.read_text())
    runs = check["runs"]
    table, differences = _face_by_face(check, "trained_minus_scored")
    verdict = "passes: a model trained on them goes on to a final model" if check["passes"] else "fails"
    return [
        "## Trained on wild photos",
        "",
        f"The recipe with seed {check['seed']}, cross-validated twice by the same folds: `{runs['trained']}` "
        f"trained on the wild photos' folds too, `{runs['scored']}` only scored them. Each run is scored at "
        "the thresholds its own `crossval` ships, cross-fitted on the folders it trained on "
        "(`python bench/wild_training.py`, in `make model`).",
        "",
        *table,
        "",
        f"Trained minus scored, face by face (people resampled, the same draws for both): {differences}. "
        f"The rule, fixed before either run: the photos gain at least {check['min_gain']:+.3f} with the "
        f"interval above 0 and the other faces lose no more than {check['max_loss']}; it {verdict}.",
        "",
    ]


def _paired_section(folder: Path) -> list[str]:
    """Each recipe change against a run of the recipe it changes, face by face (one ``bench/paired_runs.py
    --json`` report per change in ``folder``): both runs' rows, the differences and the verdict of the
    rule it was judged by."""
    checks = sorted(folder.glob("*.json")) if folder.is_dir() else []
    if not checks:
        return []
    lines = [
        "## Recipe changes judged face by face",
        "",
        "Each change against a run of the recipe it changes with the same seed, both cross-validated by the "
        "same folds and scored at their own cross-fitted thresholds (`python bench/paired_runs.py`, in "
        "`make model`).",
        "",
    ]
    for path in checks:
        check = json.loads(path.read_text())
        runs = check["runs"]
        change = ", ".join(f"{field} {old} → {new}" for field, (old, new) in check["change"].items())
        table, differences = _face_by_face(check, "changed_minus_base")
        verdict = "passes: it goes on to the shipped recipe" if check["passes"] else "fails: not adopted"
        lines += [
            f"### {change}",
            "",
            f"`{runs['changed']}` changes `{runs['base']}`.",
            "",
            *table,
            "",
            f"Changed minus base, face by face (people resampled, the same draws for both): {differences}. "
            f"The rule, fixed before it ran: pooled macro-F1 at least {check['min_gain']:+.3f} with the "
            f"interval above 0; it {verdict}.",
            "",
        ]
    return lines


def _face_by_face(check: dict, key: str) -> tuple[list[str], str]:
    """A two-run check's table (each run's rows) and its differences (``check[key]``) in words."""
    runs = check["runs"]
    rows = {
        f"`{runs[name]}`: {folder}": m for name, sets in check["sets"].items() for folder, m in sets.items()
    }
    differences = "; ".join(
        f"{folder} {mean:+.4f} (95 % {low:+.4f} to {high:+.4f})"
        for folder, (mean, low, high) in check[key].items()
    )
    return _quality_table(rows), differences


def _weights_kept(recipe: dict) -> str:
    ema = recipe.get("ema_momentum")
    return (
        f"each phase ending on the weights' moving average ({ema})"
        if ema
        else "ending on the last step's weights"
    )


def _low_res(recipe: dict) -> str:
    """What ``--low-res`` did to the training faces ("" without it)."""
    low, high = LOW_RES_SCALE
    return (
        f"with probability {recipe['low_res']}, the face shrunk to {low * 100:.0f}–{high * 100:.0f} % "
        "of its side and scaled back up"
        if recipe.get("low_res")
        else ""
    )


def _loss(recipe: dict) -> str:
    """The loss's departures from weighted cross-entropy ("" with none), each after a comma."""
    smoothing, gamma = recipe.get("label_smoothing"), recipe.get("focal_gamma")
    return (f", label smoothing {smoothing}" if smoothing else "") + (
        f", focal loss (gamma {gamma})" if gamma else ""
    )


def _candidate_cost(candidate: Path, measured: Path | None, own_speed: dict) -> str:
    """Its size and speed: this model's network (``measured`` None), or a measured run of its
    network, named when it is another candidate's."""
    if measured is None:
        return "this model's network, so its size and speed"
    cost = json.loads(measured.read_text())
    speeds = ", ".join(
        f"{runtime} {r['raw']}"
        + (f" (this model, in its own run: {own_speed[runtime]['raw']})" if runtime in own_speed else "")
        for runtime, r in cost["runtimes"].items()
    )
    network = "" if measured.parent == candidate else f" (the network of `{measured.parent.name}`)"
    return f"{cost['model_mb']} MB{network}; raw forward faces/s on {cost['cpus']} CPU cores: {speeds}"


NETWORK = ("backbone", "alpha", "input_size")


def _network(meta: dict) -> tuple:
    return tuple(meta[key] for key in NETWORK)


def _measured_run(candidate: Path, theirs: dict, meta: dict) -> Path | None:
    """``bench/throughput.py --json`` figures for a candidate of another network than this
    model's: its own, else those of another candidate with its network (None for this model's
    network; ValueError without either)."""
    if _network(theirs) == _network(meta):
        return None
    if (candidate / "throughput.json").exists():
        return candidate / "throughput.json"
    measured = _network_run(candidate.parent, _network(theirs))
    if measured is None:
        raise ValueError(f"{candidate}: another network than this model's needs a throughput.json")
    return measured


def _network_run(candidates: Path, network: tuple) -> Path | None:
    """The ``throughput.json`` of the first candidate with ``network`` that has one."""
    for other in sorted(p for p in candidates.iterdir() if (p / "throughput.json").exists()):
        if _network(json.loads((other / "model.json").read_text())) == network:
            return other / "throughput.json"
    return None


def _range(m: dict) -> str:
    return f"{m['macro_f1_95'][0]}–{m['macro_f1_95'][1]}"


def _slower(throughput: Path | None, own: dict) -> str:
    if throughput is None:
        return ""
    cost = json.loads(throughput.read_text())
    ratios = [_ratio(own[r]["raw"] / c["raw"]) + f" on {r}" for r, c in cost["runtimes"].items() if r in own]
    if not ratios:
        return ""
    return (
        f" Raw forward, against this model's own run: {', '.join(ratios)} (separate runs; this "
        "machine's speed differs between days, so compare runs of one day)."
    )


def _ratio(slower: float) -> str:
    return f"{slower:.1f} × slower" if slower >= 1 else f"{1 / slower:.1f} × faster"


def _training_section(training: dict) -> list[str]:
    recipe = training["recipe"]
    augmentation = "mirror, random zoom 0.88–1.0, brightness/contrast/saturation jitter"
    if recipe.get("low_res"):
        augmentation += f"; {_low_res(recipe)}"
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


def _framing_section(path: Path) -> list[str]:
    """The measured choice between training crops (``report/framing.json``), when present."""
    if not path.exists():
        return []
    document = json.loads(path.read_text())
    lines = ["## Why this framing", ""]
    for comparison in document["comparisons"]:
        lines += [
            f"Trained alike on the CelebA sample's train images cropped two ways: {comparison['how']}. "
            "Val: the val images cropped the same way as that model's training images; wild: "
            "`python bench/wild.py`, face 0, at each model's own thresholds.",
            "",
            "| trained on | val macro-F1 | val AUC | wild macro-F1 | at 0.5 | wild AUC "
            "| wild F1 per attribute |",
            "|---|---|---|---|---|---|---|",
        ]
        for framing, m in comparison["framings"].items():
            per = ", ".join(f"{a} {f1}" for a, f1 in m["wild_f1"].items())
            lines.append(
                f"| {framing} | {m['val_macro_f1']} | {m['val_macro_auc']} | {m['wild_macro_f1']} "
                f"| {m['wild_macro_f1_at_0.5']} | {m['wild_macro_auc']} | {per} |"
            )
        aligned, detected = comparison["framings"]["aligned"], comparison["framings"]["detected"]
        gain = {
            k: detected[k] - aligned[k] for k in ("wild_macro_f1", "wild_macro_f1_at_0.5", "wild_macro_auc")
        }
        lines += [
            "",
            f"Detector crops instead of whole aligned images: wild macro-F1 {gain['wild_macro_f1']:+.3f} "
            f"({gain['wild_macro_f1_at_0.5']:+.3f} at 0.5), wild AUC {gain['wild_macro_auc']:+.4f}.",
            "",
        ]
    if document.get("conclusion"):
        lines += [document["conclusion"], ""]
    return lines


if __name__ == "__main__":
    target = Path(sys.argv[1])
    commands = Path(sys.argv[2]).read_text() if len(sys.argv) > 2 else "make model"
    (target / "MODEL.md").write_text(render(target, commands))

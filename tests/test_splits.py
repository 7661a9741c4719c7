"""Splits by person: no one's images in two splits, in the asked proportions, reproducibly."""

from __future__ import annotations

import pytest

from trainer.annotations import AnnotationError, Example
from trainer.records import RecordsError, assign_splits, person_folds, read_identities, trained_images


@pytest.fixture
def people(tmp_path):
    """200 images of 40 people, 1 to 9 images each."""
    examples, lines = [], []
    for index in range(200):
        person = (index * 7919) % 40 if index % 5 else index % 40  # uneven counts per person
        examples.append(Example(image=f"{index:06d}.jpg", labels=(0, 0, 0, 0)))
        lines.append(f"{index:06d}.jpg {person}")
    (tmp_path / "identity_CelebA.txt").write_text("\n".join(lines) + "\n")
    return examples, read_identities(tmp_path / "identity_CelebA.txt")


def test_a_person_lands_in_one_split_only(people):
    examples, identities = people
    splits = assign_splits(examples, ratios=(80, 10, 10), seed=0, identities=identities)
    persons = {name: {identities[e.image] for e in members} for name, members in splits.items()}
    assert not persons["train"] & persons["val"] and not persons["train"] & persons["test"]
    assert not persons["val"] & persons["test"]
    assert sum(len(m) for m in splits.values()) == 200
    assert 140 <= len(splits["train"]) <= 175 and splits["val"] and splits["test"]


def test_the_same_seed_gives_the_same_split_and_another_seed_another(people):
    examples, identities = people
    first = assign_splits(examples, ratios=(80, 10, 10), seed=1, identities=identities)
    assert first == assign_splits(examples, ratios=(80, 10, 10), seed=1, identities=identities)
    assert first != assign_splits(examples, ratios=(80, 10, 10), seed=2, identities=identities)


def test_an_image_without_a_person_is_refused(people):
    examples, identities = people
    with pytest.raises(AnnotationError, match="1 images have no person"):
        assign_splits(
            [*examples, Example("999999.jpg", (0, 0, 0, 0))],
            ratios=(80, 10, 10),
            seed=0,
            identities=identities,
        )


def test_the_celeba_sample_split_by_person_keeps_people_apart(celeba_dir):
    identities = read_identities(celeba_dir / "aligned" / "identity_CelebA.txt")
    examples = [Example(image=name, labels=(0, 0, 0, 0)) for name in sorted(identities)]
    splits = assign_splits(examples, ratios=(80, 10, 10), seed=0, identities=identities)
    persons = [{identities[e.image] for e in members} for members in splits.values()]
    assert not (persons[0] & persons[1] or persons[0] & persons[2] or persons[1] & persons[2])


def test_the_images_a_model_trained_on_are_found_again_from_its_manifests(people):
    """bench/wild.py leaves out the wild photos a model trained on: the people of the wild folds
    its training records name, and no others (another folder's folds say nothing of wild's)."""
    examples, identities = people
    split = {"by": "person", "folds": 3, "seed": 4, "test_percent": 10}
    train = {"records/wild/fold0": {"split": split}, "records/wild/fold2": {"split": split}}
    train["records/aligned/fold1"] = {"split": split}
    folds = person_folds(examples, folds=3, test_percent=10, seed=4, identities=identities)
    seen = trained_images(train, "wild", examples, identities)
    assert seen == {e.image for name in ("fold0", "fold2") for e in folds[name]}
    assert not seen & {e.image for e in folds["fold1"] + folds["test"]}
    assert trained_images({"records/aligned/fold1": {"split": split}}, "wild", examples, identities) == set()
    with pytest.raises(RecordsError, match="not split into person folds"):
        trained_images({"records/wild/train": {"split": "official"}}, "wild", examples, identities)

"""CelebA annotation parsing and selection: robust to whitespace and line ends, strict
about content, seeded."""

from __future__ import annotations

import json

import pytest

from trainer.annotations import AnnotationError, convert, read_attributes, read_partition, select

NAMES = ["5_o_Clock_Shadow", "Eyeglasses", "Mustache", "No_Beard", "Wearing_Hat"]


def attr_file(tmp_path, rows, *, count=None, names=NAMES, newline="\n", sep=" "):
    lines = [str(len(rows) if count is None else count), sep.join(names)]
    lines += [sep.join([name, *(str(v) for v in values)]) for name, values in rows]
    path = tmp_path / "list_attr_celeba.txt"
    path.write_bytes((newline.join(lines) + newline).encode())
    return path


ROWS = [
    ("000001.jpg", [1, -1, -1, 1, -1]),  # nothing
    ("000002.jpg", [-1, 1, -1, 1, -1]),  # eyeglasses
    ("000003.jpg", [1, -1, 1, -1, -1]),  # mustache + beard (No_Beard = -1)
    ("000004.jpg", [-1, -1, -1, 1, 1]),  # hat
    ("000005.jpg", [-1, -1, -1, 1, -1]),  # nothing
]


@pytest.mark.parametrize("newline, sep", [("\n", " "), ("\r\n", " "), ("\n", "  "), ("\r\n", "\t")])
def test_labels_map_celeba_columns_whatever_the_whitespace(tmp_path, newline, sep):
    examples = read_attributes(attr_file(tmp_path, ROWS, newline=newline, sep=sep))
    assert [(e.image, e.labels) for e in examples] == [
        ("000001.jpg", (0, 0, 0, 0)),
        ("000002.jpg", (1, 0, 0, 0)),
        ("000003.jpg", (0, 1, 1, 0)),
        ("000004.jpg", (0, 0, 0, 1)),
        ("000005.jpg", (0, 0, 0, 0)),
    ]


@pytest.mark.parametrize(
    "mutate, message",
    [
        (lambda rows: (rows, {"count": 9}), "declares 9 images, the file has 5"),
        (
            lambda rows: (rows, {"names": ["Eyeglasses", "Mustache", "No_Beard", "Smiling", "Young"]}),
            "lack Wearing_Hat",
        ),
        (
            lambda rows: (rows[:2] + [("000003.jpg", [1, -1, 1])] + rows[3:], {}),
            "line 5: expected an image name and 5 values",
        ),
        (
            lambda rows: (rows[:1] + [("000002.jpg", [0, 1, -1, 1, -1])] + rows[2:], {}),
            "line 4: attribute values must be 1 or -1",
        ),
        (
            lambda rows: (rows[:1] + [("000002.jpg", ["x", 1, -1, 1, -1])] + rows[2:], {}),
            "line 4: attribute values",
        ),
        (lambda rows: (rows, {"count": "five"}), "line 1: first line must be the image count"),
    ],
)
def test_malformed_files_name_the_line_and_the_problem(tmp_path, mutate, message):
    rows, options = mutate(list(ROWS))
    with pytest.raises(AnnotationError, match=message):
        read_attributes(attr_file(tmp_path, rows, **options))


def test_empty_file_is_an_error(tmp_path):
    (tmp_path / "a.txt").write_text("")
    with pytest.raises(AnnotationError, match="count line"):
        read_attributes(tmp_path / "a.txt")


def test_negatives_are_a_seeded_random_sample_not_the_first_rows(tmp_path):
    rows = [(f"{i:06d}.jpg", [-1, -1, -1, 1, -1]) for i in range(1, 201)] + [
        ("000201.jpg", [-1, 1, -1, 1, -1])
    ]
    examples = read_attributes(attr_file(tmp_path, rows))
    first = select(examples, mixed_num=10, seed=1)
    assert len(first) == 11 and first[-1].image == "000201.jpg"
    assert [e.image for e in first] == [e.image for e in select(examples, mixed_num=10, seed=1)]
    assert [e.image for e in first] != [e.image for e in select(examples, mixed_num=10, seed=2)]
    assert [e.image for e in first[:10]] != [f"{i:06d}.jpg" for i in range(1, 11)]
    assert len(select(examples, mixed_num=10_000, seed=1)) == 201  # all negatives, no error


def test_convert_carries_the_partition_and_counts_positives(tmp_path):
    partition = tmp_path / "list_eval_partition.txt"
    partition.write_text("000001.jpg 0\n000002.jpg 0\n000003.jpg 1\n000004.jpg 2\n000005.jpg 0\n")
    out = tmp_path / "selected.json"
    summary = convert(attr_file(tmp_path, ROWS), out, mixed_num=1, seed=0, partition=partition)
    assert summary["all"]["images"] == 4
    assert summary["val"] == {
        "images": 1,
        "positives": {"eyeglasses": 0, "beard": 1, "mustache": 1, "hat": 0},
    }
    document = json.loads(out.read_text())
    assert {i["image"]: i["partition"] for i in document["images"]}["000004.jpg"] == "test"


def test_partition_file_problems(tmp_path):
    bad = tmp_path / "p.txt"
    bad.write_text("000001.jpg 0\n000002.jpg 7\n")
    with pytest.raises(AnnotationError, match="line 2"):
        read_partition(bad)
    short = tmp_path / "short.txt"
    short.write_text("000001.jpg 0\n")
    with pytest.raises(AnnotationError, match="no partition for 4 images"):
        convert(attr_file(tmp_path, ROWS), tmp_path / "o.json", mixed_num=5, seed=0, partition=short)

"""Tests for the built-in synthetic document generator (doclab.data.synthetic.generator)."""

from __future__ import annotations

import hashlib
import subprocess
import sys

import cv2
import numpy as np
import pytest

from doclab.data.synthetic.generator import DOC_TYPES, SyntheticDocument, generate_document

SEED = 0


def document_digest(document: SyntheticDocument) -> str:
    """SHA-256 over the image bytes, every polygon's bytes and every word."""
    digest = hashlib.sha256(document.image.tobytes())
    for word in document.words:
        digest.update(word.points.tobytes())
        digest.update(word.text.encode())
    return digest.hexdigest()


def word_heights(document: SyntheticDocument) -> np.ndarray:
    """Short side of each word quadrilateral, in pixels."""
    points = np.stack([word.points for word in document.words])
    widths = np.linalg.norm(points[:, 1] - points[:, 0], axis=1)
    heights = np.linalg.norm(points[:, 3] - points[:, 0], axis=1)
    return np.minimum(widths, heights)


def inside_and_surroundings(gray: np.ndarray, polygon: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Grey values inside a polygon and in a ring around it about half a word height wide.

    Args:
        gray: (H, W) float32 grey image.
        polygon: (4, 2) polygon in image pixels.

    Returns:
        The pixels inside and the pixels of the surrounding ring.
    """
    pad = int(np.ceil(np.linalg.norm(polygon[3] - polygon[0]) * 0.6)) + 2
    x0, y0 = np.maximum(np.floor(polygon.min(axis=0)).astype(int) - pad, 0)
    x1, y1 = np.ceil(polygon.max(axis=0)).astype(int) + pad + 1
    crop = gray[y0:y1, x0:x1]
    inside = np.zeros(crop.shape, np.uint8)
    cv2.fillPoly(inside, [np.round(polygon - [x0, y0]).astype(np.int32)], 1)
    grown = cv2.dilate(inside, np.ones((2 * pad + 1, 2 * pad + 1), np.uint8))
    return crop[inside > 0], crop[(grown > 0) & (inside == 0)]


def darkness_against_surroundings(document: SyntheticDocument, shift_by_height: float) -> np.ndarray:
    """How much darker each word polygon is than its surroundings, optionally shifted down.

    Args:
        document: the document to measure.
        shift_by_height: move each polygon along its own top-to-bottom edge by this many word heights.

    Returns:
        Per word, median grey of the ring minus mean grey inside (positive = ink inside).
    """
    gray = cv2.cvtColor(document.image, cv2.COLOR_RGB2GRAY).astype(np.float32)
    darkness = []
    for word in document.words:
        polygon = word.points + (word.points[3] - word.points[0]) * shift_by_height
        inside, ring = inside_and_surroundings(gray, polygon)
        if inside.size and ring.size:
            darkness.append(float(np.median(ring) - inside.mean()))
    return np.asarray(darkness)


def layout_features(document: SyntheticDocument) -> np.ndarray:
    """Aspect, word count, word size and spatial spread of the words of one document."""
    height, width = document.image.shape[:2]
    points = np.stack([word.points for word in document.words])
    centers = points.mean(axis=1) / [width, height]
    word_widths = np.linalg.norm(points[:, 1] - points[:, 0], axis=1)
    heights = np.linalg.norm(points[:, 3] - points[:, 0], axis=1)
    return np.array([
        np.log(width / height),
        np.log(len(document.words)),
        np.median(heights) / max(width, height),
        heights.std() / np.median(heights),
        np.median(word_widths / heights),
        *np.histogram(centers[:, 0], bins=3, range=(0, 1))[0] / len(centers),
        *np.histogram(centers[:, 1], bins=3, range=(0, 1))[0] / len(centers),
    ])


@pytest.fixture(scope="module")
def documents() -> dict[str, SyntheticDocument]:
    """One document of each type at the default size."""
    return {doc_type: generate_document(SEED, 7, doc_type) for doc_type in DOC_TYPES}


def test_same_arguments_give_identical_documents() -> None:
    first, second = generate_document(SEED, 3), generate_document(SEED, 3)
    assert first.image.tobytes() == second.image.tobytes()
    assert [word.text for word in first.words] == [word.text for word in second.words]
    assert all(np.array_equal(a.points, b.points) for a, b in zip(first.words, second.words, strict=True))


def test_output_is_identical_in_a_fresh_process() -> None:
    # A new interpreter has a different hash seed and fresh caches, so hidden global state would show.
    code = f"""
import hashlib
from doclab.data.synthetic.generator import generate_document
document = generate_document({SEED}, 4, "invoice", 600)
digest = hashlib.sha256(document.image.tobytes())
for word in document.words:
    digest.update(word.points.tobytes())
    digest.update(word.text.encode())
print(digest.hexdigest())
"""
    fresh = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert fresh.stdout.strip() == document_digest(generate_document(SEED, 4, "invoice", 600))


def test_different_index_gives_different_document() -> None:
    first, second = generate_document(SEED, 3, "receipt"), generate_document(SEED, 4, "receipt")
    assert document_digest(first) != document_digest(second)
    assert [word.text for word in first.words] != [word.text for word in second.words]


def test_default_doc_type_cycles_through_all_types() -> None:
    types = [generate_document(SEED, index, long_side=256).doc_type for index in range(2 * len(DOC_TYPES))]
    assert types == list(DOC_TYPES) * 2
    assert len(DOC_TYPES) >= 6


def test_unknown_doc_type_is_rejected_with_the_valid_choices() -> None:
    with pytest.raises(ValueError, match="passport") as error:
        generate_document(SEED, 0, "passport")
    assert all(doc_type in str(error.value) for doc_type in DOC_TYPES)


def test_too_small_long_side_is_rejected() -> None:
    with pytest.raises(ValueError, match="long_side"):
        generate_document(SEED, 0, "receipt", long_side=16)


@pytest.mark.parametrize("long_side", [512, 1333])
def test_image_long_side_matches_the_request(long_side: int) -> None:
    for doc_type in DOC_TYPES:
        document = generate_document(SEED, 1, doc_type, long_side)
        assert max(document.image.shape[:2]) == long_side
        assert document.words


def test_images_are_rgb_uint8_with_the_default_long_side(documents: dict[str, SyntheticDocument]) -> None:
    for doc_type, document in documents.items():
        assert document.doc_type == doc_type
        assert document.image.dtype == np.uint8
        assert document.image.ndim == 3 and document.image.shape[2] == 3
        assert max(document.image.shape[:2]) == 1024


def test_polygons_are_clockwise_quadrilaterals_inside_the_image(documents: dict[str, SyntheticDocument]) -> None:
    for document in documents.values():
        height, width = document.image.shape[:2]
        for word in document.words:
            points = word.points
            assert points.shape == (4, 2) and points.dtype == np.float32
            assert np.isfinite(points).all()
            assert (points[:, 0] >= 0).all() and (points[:, 0] <= width - 1).all()
            assert (points[:, 1] >= 0).all() and (points[:, 1] <= height - 1).all()
            following = np.roll(points, -1, axis=0)
            shoelace = float(np.sum(points[:, 0] * following[:, 1] - following[:, 0] * points[:, 1]))
            assert shoelace > 0, f"{word.text!r} is not clockwise with positive area"


def test_words_are_single_non_empty_tokens(documents: dict[str, SyntheticDocument]) -> None:
    for document in documents.values():
        assert all(word.text and not any(c.isspace() for c in word.text) for word in document.words)


@pytest.mark.parametrize("doc_type", DOC_TYPES)
def test_word_polygons_sit_on_ink(documents: dict[str, SyntheticDocument], doc_type: str) -> None:
    document = documents[doc_type]
    on_words = darkness_against_surroundings(document, 0.0)
    shifted = darkness_against_surroundings(document, 1.0)
    assert on_words.mean() > 20, "word polygons are not clearly darker than their surroundings"
    assert np.mean(on_words > 8) > 0.75, "too many word polygons hold no ink"
    assert on_words.mean() - shifted.mean() > 10, "polygons shifted by one word height look as inky as the real ones"


def test_text_heights_vary_several_fold(documents: dict[str, SyntheticDocument]) -> None:
    heights = np.concatenate([word_heights(document) for document in documents.values()])
    assert np.percentile(heights, 99) >= 3 * np.percentile(heights, 1)
    assert heights.max() >= 4 * heights.min()
    # Titles stand out within a single document, not only across documents.
    for doc_type in ("receipt", "invoice", "table_report"):
        assert word_heights(documents[doc_type]).max() >= 2 * np.median(word_heights(documents[doc_type]))


@pytest.mark.parametrize(("doc_type", "low", "high"), [("receipt", 60, 250), ("table_report", 60, 250), ("id_card", 15, 40)])
def test_word_counts_match_the_document_type(doc_type: str, low: int, high: int) -> None:
    for index in range(3):
        assert low <= len(generate_document(SEED, index, doc_type, long_side=768).words) <= high


def test_aspect_ratios_follow_the_document_type(documents: dict[str, SyntheticDocument]) -> None:
    aspect = {doc_type: doc.image.shape[1] / doc.image.shape[0] for doc_type, doc in documents.items()}
    assert aspect["receipt"] < 0.55
    assert aspect["id_card"] > 1.4 and aspect["table_report"] > 1.3
    assert all(0.6 < aspect[doc_type] < 0.85 for doc_type in ("invoice", "form", "letter"))


def test_layout_statistics_identify_the_document_type() -> None:
    documents = [generate_document(SEED + 1, index, long_side=384) for index in range(8 * len(DOC_TYPES))]
    features = np.stack([layout_features(document) for document in documents])
    features = (features - features.mean(axis=0)) / features.std(axis=0)
    labels = np.array([document.doc_type for document in documents])
    correct = 0
    for held_out in range(len(documents)):
        others = np.arange(len(documents)) != held_out
        centroids = {doc_type: features[others & (labels == doc_type)].mean(axis=0) for doc_type in DOC_TYPES}
        predicted = min(DOC_TYPES, key=lambda doc_type: np.linalg.norm(features[held_out] - centroids[doc_type]))
        correct += predicted == labels[held_out]
    assert correct / len(documents) >= 0.85


@pytest.mark.parametrize("doc_type", ["receipt", "invoice", "table_report"])
def test_line_granularity_merges_each_printed_line_and_leaves_the_pixels(doc_type):
    words = generate_document(SEED, 3, doc_type, long_side=768)
    lines = generate_document(SEED, 3, doc_type, long_side=768, granularity="line")
    assert np.array_equal(words.image, lines.image)
    assert len(words.words) > len(lines.words) > 0
    assert " ".join(line.text for line in lines.words) == " ".join(word.text for word in words.words)
    # Each word lies inside the line box that carries its text, in drawing order.
    cursor = 0
    for line in lines.words:
        x0, y0 = line.points.min(axis=0) - 0.5
        x1, y1 = line.points.max(axis=0) + 0.5
        for _ in line.text.split():
            box = words.words[cursor].points
            assert x0 <= box[:, 0].min() and box[:, 0].max() <= x1 and y0 <= box[:, 1].min() and box[:, 1].max() <= y1
            cursor += 1
    assert cursor == len(words.words)
    # Lines are wider than tall: no two printed lines were merged vertically.
    sides = np.ptp(np.stack([line.points for line in lines.words]), axis=1)
    assert np.median(sides[:, 0] / sides[:, 1]) > 3


def test_unknown_granularity_is_refused():
    with pytest.raises(ValueError, match="unknown granularity 'char'"):
        generate_document(SEED, 0, granularity="char")

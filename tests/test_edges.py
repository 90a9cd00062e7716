"""``python -m fastconv demo``: the edge-detection pipeline, its text output and data loading."""

import gzip
import re
import struct

import numpy as np
import pytest

import fastconv.__main__ as cli
import fastconv.edges as ed

TOP, BOTTOM = ed.RECT_ROWS  # the rectangle covers rows [TOP, BOTTOM)
LEFT, RIGHT = ed.RECT_COLS  # and columns [LEFT, RIGHT)


def nonzero_rows(plane):
    return set(np.flatnonzero(np.any(plane != 0, axis=1)).tolist())


def nonzero_cols(plane):
    return set(np.flatnonzero(np.any(plane != 0, axis=0)).tolist())


@pytest.fixture
def no_dataset(monkeypatch, tmp_path):
    """Make the demo fall back to the generated pattern."""
    monkeypatch.delenv("FASTCONV_DATA", raising=False)
    monkeypatch.setattr(ed, "DEFAULT_DATA_DIR", tmp_path / "missing")


def write_idx3(path, images):
    header = struct.pack(">4I", 0x0803, *images.shape)
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "wb") as f:
        f.write(header + images.astype(np.uint8).tobytes())


def test_pipeline_shapes_and_dtypes():
    stages = ed.edge_pipeline(ed.make_pattern())
    shapes = {name: stage.shape for name, stage in stages.items()}
    assert shapes == {"input": (1, 1, 28, 28), "conv2d": (1, 2, 26, 26),
                      "relu": (1, 2, 26, 26), "max_pool2d": (1, 2, 13, 13)}
    assert all(stage.dtype == np.float32 for stage in stages.values())


def test_conv2d_finds_exactly_the_rectangle_edges():
    edges = ed.edge_pipeline(ed.make_pattern())["conv2d"][0]
    horizontal, vertical = edges

    # Output row i sees input rows i..i+2, so the top edge (dark above, bright
    # below) shows at rows TOP-2 and TOP-1 with +3 where the whole 3-pixel
    # window is inside the rectangle's columns, and the bottom edge at
    # BOTTOM-2 and BOTTOM-1 with -3. Nothing else responds.
    assert nonzero_rows(horizontal) == {TOP - 2, TOP - 1, BOTTOM - 2, BOTTOM - 1}
    assert nonzero_cols(horizontal) == set(range(LEFT - 2, RIGHT))
    np.testing.assert_array_equal(horizontal[[TOP - 2, TOP - 1], LEFT:RIGHT - 2], 3)
    np.testing.assert_array_equal(horizontal[[BOTTOM - 2, BOTTOM - 1], LEFT:RIGHT - 2], -3)

    # The vertical kernel is the transpose: the same picture along columns.
    assert nonzero_cols(vertical) == {LEFT - 2, LEFT - 1, RIGHT - 2, RIGHT - 1}
    assert nonzero_rows(vertical) == set(range(TOP - 2, BOTTOM))
    np.testing.assert_array_equal(vertical[TOP:BOTTOM - 2, [LEFT - 2, LEFT - 1]], 3)
    np.testing.assert_array_equal(vertical[TOP:BOTTOM - 2, [RIGHT - 2, RIGHT - 1]], -3)


def test_relu_keeps_dark_to_bright_edges_and_pool_halves_them():
    stages = ed.edge_pipeline(ed.make_pattern())
    np.testing.assert_array_equal(stages["relu"], np.maximum(stages["conv2d"], 0))
    horizontal, vertical = stages["relu"][0]
    assert nonzero_rows(horizontal) == {TOP - 2, TOP - 1}
    assert nonzero_cols(vertical) == {LEFT - 2, LEFT - 1}

    pooled = stages["max_pool2d"]
    expected = stages["relu"].reshape(1, 2, 13, 2, 13, 2).max(axis=(3, 5))
    np.testing.assert_array_equal(pooled, expected)
    assert nonzero_rows(pooled[0, 0]) == {(TOP - 2) // 2, (TOP - 1) // 2}
    assert nonzero_cols(pooled[0, 1]) == {(LEFT - 2) // 2, (LEFT - 1) // 2}
    assert pooled.max() == 3


def test_render_shades_each_stage_over_its_own_range():
    picture = ed.render(ed.make_pattern()[None, None]).splitlines()
    assert picture[0] == picture[-1] == "+" + "-" * 28 + "+"
    rows = [line[1:-1] for line in picture[1:-1]]
    assert len(rows) == 28
    inside = " " * LEFT + "@" * (RIGHT - LEFT) + " " * (28 - RIGHT)
    assert rows == [inside if TOP <= r < BOTTOM else " " * 28 for r in range(28)]

    # Two channels side by side, labelled; a constant stage is blank.
    picture = ed.render(np.zeros((1, 2, 3, 4), np.float32), labels=("a", "b")).splitlines()
    assert picture == [" a      b", "+----+ +----+", "|    | |    |", "|    | |    |",
                       "|    | |    |", "+----+ +----+"]


def test_main_demo_prints_stages(no_dataset, capsys):
    assert cli.main(["edges"]) == 0
    out = capsys.readouterr().out
    assert "generated pattern" in out
    shapes = re.findall(r"^(\w+) +(\([\d, ]+\))  values", out, flags=re.MULTILINE)
    assert shapes == [("input", "(1, 1, 28, 28)"), ("conv2d", "(1, 2, 26, 26)"),
                      ("relu", "(1, 2, 26, 26)"), ("max_pool2d", "(1, 2, 13, 13)")]
    assert "values -3 .. 3" in out  # conv2d range on the 0/1 pattern
    # The input picture: the rectangle's rows drawn at full brightness.
    rectangle_row = "|" + " " * LEFT + "@" * (RIGHT - LEFT) + " " * (28 - RIGHT) + "|"
    assert out.count(rectangle_row) == BOTTOM - TOP


@pytest.mark.parametrize("filename", ["t10k-images-idx3-ubyte", "t10k-images-idx3-ubyte.gz"])
def test_demo_reads_idx_images(tmp_path, monkeypatch, capsys, filename):
    monkeypatch.delenv("FASTCONV_DATA", raising=False)
    images = np.random.default_rng(0).integers(0, 256, (3, 28, 28))
    write_idx3(tmp_path / filename, images)

    image = ed.read_idx_image(tmp_path / filename, index=2)
    np.testing.assert_allclose(image, images[2] / 255, rtol=1e-6)

    assert cli.main(["edges", "--data", str(tmp_path), "--index", "2"]) == 0
    assert "Fashion-MNIST test image 2" in capsys.readouterr().out


def test_demo_data_from_environment(tmp_path, monkeypatch, capsys):
    write_idx3(tmp_path / "t10k-images-idx3-ubyte", np.full((1, 28, 28), 7))
    monkeypatch.setenv("FASTCONV_DATA", str(tmp_path))
    image, description = ed.load_image()
    assert description.startswith("Fashion-MNIST test image 0")
    np.testing.assert_allclose(image, 7 / 255, rtol=1e-6)

    # --pattern ignores the data set.
    assert cli.main(["edges", "--pattern"]) == 0
    assert "generated pattern" in capsys.readouterr().out


def test_demo_errors(tmp_path, monkeypatch, capsys):
    monkeypatch.delenv("FASTCONV_DATA", raising=False)
    with pytest.raises(SystemExit) as exc:  # a named folder without the data
        cli.main(["edges", "--data", str(tmp_path)])
    assert exc.value.code == 2
    assert "t10k-images-idx3-ubyte" in capsys.readouterr().err

    write_idx3(tmp_path / "t10k-images-idx3-ubyte", np.zeros((2, 28, 28)))
    with pytest.raises(SystemExit):
        cli.main(["edges", "--data", str(tmp_path), "--index", "5"])
    assert "out of range" in capsys.readouterr().err

    with pytest.raises(SystemExit):
        cli.main([])  # a subcommand is required

"""`export sft`: it writes exactly what the `sft` view holds (kept traces only; `sft_all`
holds every trace; views say what they hold), and `--overwrite` replaces only what an
earlier export wrote, refusing anything else."""

from __future__ import annotations

import json

import datasets
import pytest
from reasonfactory.flows.generate import run_recipe
from reasonfactory.flows.recipe import parse_recipe
from reasonfactory.warehouse.errors import UserError
from reasonfactory.warehouse.export import export_sft
from reasonfactory.warehouse.outdir import MARKER
from reasonfactory.warehouse.store import Warehouse

RECIPE = {
    "name": "overwrite",
    "problems": {"source": "builtin:arithmetic", "limit": 10},
    "engine": {"kind": "sim", "error_rate": 0.3},
    "generate": {"method": "self_output", "samples": 4},
    "filters": ["format", "answer"],
}


@pytest.fixture(scope="module")
def stored(tmp_path_factory, prefect_api):
    path = tmp_path_factory.mktemp("wh") / "wh.duckdb"
    run_recipe(parse_recipe(RECIPE), str(path))
    return path


def test_overwrite_replaces_an_earlier_export(stored, tmp_path):
    out = tmp_path / "sft"
    first = export_sft(stored, out)
    assert (out / MARKER).is_file()
    (out / "stale.txt").write_text("left by the first export's owner")
    with pytest.raises(UserError, match="not empty"):
        export_sft(stored, out)
    again = export_sft(stored, out, overwrite=True, fmt="jsonl")
    assert again["rows"] == first["rows"] > 0
    assert not (out / "stale.txt").exists() and (out / MARKER).is_file()


def test_overwrite_refuses_a_folder_it_did_not_write(stored, tmp_path):
    out = tmp_path / "mine"
    out.mkdir()
    (out / "thesis.tex").write_text("years of work")
    with pytest.raises(UserError, match=f"not written by `reasonfactory export`.*{MARKER}"):
        export_sft(stored, out, overwrite=True)
    assert (out / "thesis.tex").read_text() == "years of work"


def test_overwrite_refuses_the_current_folder(stored, tmp_path, monkeypatch):
    (tmp_path / "notes.txt").write_text("keep me")
    (tmp_path / MARKER).write_text("{}")  # even a marker does not make `.` removable
    monkeypatch.chdir(tmp_path)
    with pytest.raises(UserError, match="current folder"):
        export_sft(stored, ".", overwrite=True)
    assert (tmp_path / "notes.txt").read_text() == "keep me"


def test_overwrite_never_removes_the_warehouse(stored):
    folder = stored.parent
    with pytest.raises(UserError, match="not written by"):
        export_sft(stored, folder, overwrite=True)
    (folder / MARKER).write_text("{}")
    try:
        with pytest.raises(UserError, match="holds the warehouse"):
            export_sft(stored, folder, overwrite=True)
    finally:
        (folder / MARKER).unlink()
    assert stored.is_file()


def test_out_naming_a_file_is_a_clear_error(stored, tmp_path):
    target = tmp_path / "data.txt"
    target.write_text("x")
    with pytest.raises(UserError, match="is a file, not a folder"):
        export_sft(stored, target)
    assert target.read_text() == "x"


def test_an_exported_folder_still_loads(stored, tmp_path):
    export_sft(stored, tmp_path / "hf")
    assert datasets.load_from_disk(str(tmp_path / "hf")).num_rows > 0


def test_sft_holds_kept_traces_and_export_agrees(stored, tmp_path):
    path = stored
    with Warehouse(path, read_only=True) as wh:
        statuses = dict(wh.con.execute("SELECT status, count(*) FROM sft GROUP BY 1").fetchall())
        every = wh.con.execute("SELECT count(*) FROM sft_all").fetchall()[0][0]
        traces = dict(wh.con.execute("SELECT status, count(*) FROM traces GROUP BY 1").fetchall())
        view_ids = [r[0] for r in wh.con.execute("SELECT trace_id FROM sft ORDER BY 1").fetchall()]
        comments = dict(
            wh.con.execute(
                "SELECT view_name, comment FROM duckdb_views() WHERE NOT internal"
            ).fetchall()
        )
    assert traces["rejected"] > 0  # else the test would prove nothing
    assert statuses == {"kept": traces["kept"]} and every == sum(traces.values())
    assert "kept traces only" in comments["sft"] and "rejected" in comments["sft_all"]
    assert set(comments) >= {"sft", "sft_all", "prm", "dpo"} and all(comments.values())
    export_sft(path, tmp_path / "out", fmt="jsonl")
    rows = [json.loads(x) for x in (tmp_path / "out" / "data.jsonl").read_text().splitlines()]
    assert sorted(r["trace_id"] for r in rows) == view_ids
    rejected = export_sft(path, tmp_path / "rej", fmt="jsonl", where="status = 'rejected'")
    assert rejected["rows"] == traces["rejected"]


def test_overwrite_through_a_symbolic_link_removes_nothing(stored, tmp_path, cli):
    """`--out LINK --overwrite` once died in shutil.rmtree with a traceback; now it is one
    error naming the link and its target, and neither is touched, even when the target is
    an earlier export. An empty folder behind a link is written into; a dangling link is named."""
    target = tmp_path / "earlier"
    export_sft(stored, target, fmt="jsonl")
    link = tmp_path / "latest"
    link.symlink_to(target)
    before = sorted(p.name for p in target.iterdir())
    proc = cli("export", "sft", "-w", str(stored), "--out", "latest", "--overwrite")
    assert proc.returncode == 1 and "Traceback" not in proc.stderr, proc.stderr
    assert proc.stderr.strip().splitlines() == [
        f"error: --overwrite refused: latest is a symbolic link to {target}; nothing is removed "
        f"through a link (give --out {target} to replace that export)"
    ]
    assert link.is_symlink() and sorted(p.name for p in target.iterdir()) == before
    export_sft(stored, target, overwrite=True, fmt="jsonl")  # the folder itself: replaced
    empty = tmp_path / "empty"
    empty.mkdir()
    (tmp_path / "to-empty").symlink_to(empty)
    assert export_sft(stored, tmp_path / "to-empty", fmt="jsonl")["rows"] > 0
    assert (empty / "data.jsonl").is_file() and (tmp_path / "to-empty").is_symlink()
    (tmp_path / "dangling").symlink_to(tmp_path / "nowhere")
    with pytest.raises(UserError, match="dangling is a symbolic link to .*nowhere, which does not"):
        export_sft(stored, tmp_path / "dangling", fmt="jsonl")
    assert not (tmp_path / "nowhere").exists()

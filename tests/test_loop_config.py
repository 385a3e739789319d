"""Where a loop file's workdir lands, and the shipped loop examples parse."""

from pathlib import Path

from reasonfactory.flows.loop_config import load_loop

ROOT = Path(__file__).resolve().parent.parent


def test_a_loop_workdir_is_beside_its_file_not_joined_to_the_parent_twice(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "examples").mkdir()
    (tmp_path / "examples" / "a.yaml").write_text("name: a\n")
    (tmp_path / "examples" / "b.yaml").write_text("name: b\nworkdir: runs/b\n")
    # Once `examples/a.yaml` wrote to examples/examples/a/.
    assert load_loop("examples/a.yaml")[1] == tmp_path / "examples" / "a"
    assert load_loop("examples/b.yaml")[1] == tmp_path / "examples" / "runs" / "b"


def test_the_small_loop_example_is_one_round_without_control_or_arms():
    config, workdir = load_loop(ROOT / "examples" / "loop-small.yaml")
    assert (config.rounds, config.control, config.compare) == (1, False, {})
    assert workdir == ROOT / "examples" / "loop-small"
    full, _ = load_loop(ROOT / "examples" / "loop-arithmetic.yaml")
    assert full.rounds == 3 and full.compare and full.seeds == 3
    assert config.seeds == 1 and full.expected_minutes


def test_the_gpu_loop_example_parses_and_names_the_pulled_student():
    # untested at its scale (no GPU machine here can receive vLLM or the model): it parses
    config, _ = load_loop(ROOT / "examples" / "loop-gpu.yaml")
    assert config.base == config.engine["model"] == "smollm2-135m-instruct"
    assert config.seeds == 3 and config.train.bf16


def test_a_student_vllm_cannot_serve_is_an_error_before_anything_trains(tmp_path):
    """examples/loop-small.yaml once had head_dim 16: its cold start trained, then vLLM's CPU
    attention refused the model ("Unsupported CPU attention configuration: head_dim=16")."""
    import pytest
    from reasonfactory.warehouse.errors import UserError

    path = tmp_path / "l.yaml"
    path.write_text("name: l\nstudent: {hidden_size: 64, num_attention_heads: 4}\n")
    with pytest.raises(UserError, match="head_dim 16; vLLM's CPU attention serves head_dim 32"):
        load_loop(path)
    path.write_text("name: l\nstudent: {hidden_size: 64, num_attention_heads: 4}\n"
                    "engine: {kind: sim}\n")  # fmt: skip
    assert load_loop(path)[0].student.num_attention_heads == 4  # the sim serves any student
    for example in sorted((ROOT / "examples").glob("loop*.yaml")):
        config, _ = load_loop(example)
        assert config.base is not None or config.student.vllm_problem() is None, example

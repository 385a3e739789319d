"""One module or folder per generation method; each is `fn(problems, engine, config, ctx)
-> Generated` with its config model, registered in `generators/registry.py`.

- `self_output.py`: rejection sampling (N samples, keep the right ones), `selection.py` the
  rules that pick among samples (majority, confidence, best-of-n); `distill.py`: a teacher's
  R1-style answers.
- `tree/`: rStar-style MCTS over steps, process-verified (search and row building apart).
- `beam.py`: step beam search and DVTS guided by a step scorer (a PRM, `engines/prm.py`).
- `revise.py`: sequential revision, each attempt told what our verifiers found wrong.
- `journey/`: traces with a wrong step, its detection and correction (injected or from trees).
- `sos.py`: Stream-of-Search Countdown traces from symbolic search (no engine).

Methods import engines, problems and verify; never the registry, filters or flows.
"""

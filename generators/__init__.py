"""Everything that makes candidate traces, and the one layer that decides what is true.

- `engines/`: the `Engine` protocol and its kinds (`sim` with its step plans, `vllm`,
  `openai`), and the wrappers around any engine (`cached`: resume by content, `metered`).
- `problems/`: problem sources (files, datasets folders) and the built-in families.
- `methods/`: one module or folder per generation method (`self_output`, `distill`, `sos`,
  `tree/`, `journey/`), plus the sample `selection` they share.
- `verify/`: what decides truth: answer equivalence, the Countdown rule, claim reading, step
  checks, the code sandbox, rollout labels. Methods and filters both stand on it.
- `registry.py`: method name -> (function, config); `base.py`: what every method shares;
  `prompts.py`: prompt building and completion parsing.

Imports go down: registry > methods > engines > problems > prompts > verify > base, and
nothing here imports `filters` or `flows` (checked by import-linter in `.ci/run`).
"""

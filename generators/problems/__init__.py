"""Where problems come from: files and datasets folders (`sources.py`), the built-in seeded
families (`families.py`), and the Countdown game (`countdown.py`). A loaded problem is a row of
the `problems` table; its `meta` carries `family` and, where a rule decides the answer,
`checker`, so later stages read them instead of parsing the question again.
"""

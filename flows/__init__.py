"""Prefect flows, recipes and the `reasonfactory` CLI: wiring over the library packages.

Importing this package changes nothing: Prefect's process settings are applied by
`reasonfactory.flows.runtime.configure_prefect`, which the CLI calls before it imports Prefect.
"""

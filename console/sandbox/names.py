"""The sandbox's scenario names, with no imports: the command line's parser lists them without loading the sandbox."""

SCENARIOS = ("healthy", "regression", "drift", "latency", "outage",
             "broken-predictions", "champion-down", "shadow-disagree", "shadow-slow", "feature-bug")

"""Scoring models on held-out pairs: metrics, the streaming scoring pass, the evaluation
report and the challenger-vs-champion review."""

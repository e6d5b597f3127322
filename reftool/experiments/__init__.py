"""Experiments: records of runs (SPEC section 13), metrics read and compared (section 12), tables
and diffs, plots and the pull-request report. Imports `reftool.files` and `reftool.pipeline`.
"""

"""The closed vocabularies and constants of SPEC.md, in the spec's own words.

Nothing here does I/O; every other module imports from here.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Final, Literal

#: The spec version this implementation implements, the newest it reads: SPEC [version.minor].
SPEC_VERSION: Final = (1, 1)
SPEC_VERSION_TEXT: Final = "1.1"
#: Newest minor implemented per major: SPEC [version.major], [version.minor].
NEWEST_MINOR: Final[dict[int, int]] = {1: 1}
#: The version every file and JSON output is written with: SPEC [version.write] (the lowest
#: version whose features it uses: "1.0" unless it uses a 1.1 addition, so writes stay
#: byte-identical; a plan with a dep_missing reason says "1.1").
WRITTEN_VERSION_TEXT: Final = "1.0"
#: SPEC [version.extensions]: the mappings that may carry `meta` and `x-` keys (1.1), as
#: (schema, JSON path with "*" for any key or index). Dep and env mappings are 1.1 as a whole.
_EXTENSIBLE: Final[tuple[tuple[str, tuple[str, ...]], ...]] = (
    ("pipeline", ()), ("pipeline", ("stages", "*")), ("pipeline", ("metrics", "*")),
    ("pipeline", ("stages", "*", "outs", "*")), ("pipeline", ("stages", "*", "metrics", "*")),
    ("pipeline", ("stages", "*", "plots", "*")),
    ("lock", ()), ("lock", ("stages", "*")),
    ("metrics", ()), ("series-header", ()), ("experiment", ()),
)
#: SPEC [version.features]: each key a minor release added, as (schema, JSON path with "*" for
#: any key or index) -> the version that added it. A file declaring an older version that uses
#: one is refused as that version's reader refuses it.
ADDED_IN: Final[dict[tuple[str, tuple[str, ...]], tuple[int, int]]] = {
    # [digest.ignore]: the long form of a dep (`path` is in every one), and `exclude`
    ("pipeline", ("stages", "*", "deps", "*", "path")): (1, 1),
    ("pipeline", ("stages", "*", "outs", "*", "exclude")): (1, 1),
    ("pipeline", ("stages", "*", "plots", "*", "exclude")): (1, 1),
    # [plots.definition]: how a plots output is drawn
    **{("pipeline", ("stages", "*", "plots", "*", key)): (1, 1)
       for key in ("template", "x", "y", "count", "title")},
    ("pipeline", ("metrics", "*", "tolerance")): (1, 1),  # [metrics.tolerance]
    # [lock.rules]: what a directory was hashed under
    ("lock", ("stages", "*", "deps", "*", "rules")): (1, 1),
    ("lock", ("stages", "*", "outs", "*", "rules")): (1, 1),
    # [pipeline.env-record]: an env entry's long form; [security.secrets]: an env digest
    ("pipeline", ("stages", "*", "env", "*", "name")): (1, 1),
    ("lock", ("stages", "*", "env", "*", "digest")): (1, 1),
    # [version.extensions]: `meta` and `x-` keys ("x-*": any key beginning x-)
    **{(schema, (*at, key)): (1, 1) for schema, at in _EXTENSIBLE for key in ("meta", "x-*")},
    # [experiments.run-facts], [experiments.stale], [experiments.series-store]
    ("experiment", ("git_branch",)): (1, 1),
    ("experiment", ("git_dirty",)): (1, 1),
    ("experiment", ("deps",)): (1, 1),
    ("experiment", ("duration",)): (1, 1),
    ("experiment", ("commands",)): (1, 1),
    ("experiment", ("stale",)): (1, 1),
    ("experiment", ("series", "*", "stored")): (1, 1),
}
#: The same for values a minor release added to an enumeration, as (schema, JSON path, value);
#: a file declaring an older version that uses one is refused with `schema/enum`.
ADDED_VALUES: Final[dict[tuple[str, tuple[str, ...], str], tuple[int, int]]] = {
    ("pipeline", ("stages", "*", "metrics", "*", "kind"), "plain"): (1, 1),  # [metrics.plain]
}

# SPEC [security.secrets]: the words that make an env name secret-looking (each also with a
# final S), whole words of the name split at "_", compared without regard to ASCII case.
SECRET_WORDS: Final = frozenset({
    "TOKEN", "SECRET", "PASSWORD", "PASSWD", "PASSPHRASE", "KEY", "APIKEY", "CREDENTIAL",
    "AUTH", "COOKIE",
})


def secret_looking(name: str) -> bool:
    """SPEC [security.secrets]: HF_TOKEN, AWS_SECRET_ACCESS_KEY, DB_PASSWORD are;
    TOKENIZERS_PARALLELISM, MONKEY and KEYBOARD_LAYOUT are not."""
    for word in name.upper().split("_"):
        if word in SECRET_WORDS or (word.endswith("S") and word[:-1] in SECRET_WORDS):
            return True
    return False


# SPEC [files.kinds]
FileKind = Literal["pipeline", "lock", "params", "metrics", "series", "experiment",
                   "queue-entry"]
FILE_KINDS: Final[tuple[FileKind, ...]] = (
    "pipeline", "lock", "params", "metrics", "series", "experiment", "queue-entry",
)
DEFAULT_PIPELINE: Final = "pipeline.yaml"
DEFAULT_LOCK: Final = "pipeline.lock"
PARAMS_EXTENSIONS: Final[dict[str, str]] = {  # SPEC [files.params-format]
    ".yaml": "yaml", ".yml": "yaml", ".json": "json", ".toml": "toml",
}

# SPEC [read.size], [read.aliases], [read.depth]: the reference tool's bounds.
MAX_TEXT_FILE_BYTES: Final = 16 * 1024 * 1024
MAX_LOCK_FILE_BYTES: Final = 64 * 1024 * 1024  # [read.size]: MAX_STAGES entries of ~3 KB
MAX_ALIAS_NODES: Final = 100_000
MAX_DEPTH: Final = 64
MAX_INT_DIGITS: Final = 4300  # [values.int]: CPython's own bound on int/str conversion
# SPEC [security.bounds]: what a small file may make the tool generate.
MAX_NAME_BYTES: Final = 255  # [paths.length]: one name, as ext4, XFS, APFS and NTFS store
MAX_PATH_BYTES: Final = 1024  # [paths.length]: leaves room under PATH_MAX (4,096) for the root
MAX_PANELS: Final = 48  # [security.bounds]: metric panels in one figure
MAX_STAGES: Final = 20_000  # stages in a pipeline after foreach/matrix: 2x the benchmarks' largest
MAX_TEMPLATED_CHARS: Final = 128 * 1024  # one string after templating: Linux's MAX_ARG_STRLEN
MAX_TEMPLATED_TOTAL: Final = MAX_TEXT_FILE_BYTES  # all templated strings of a pipeline together
MAX_WARNINGS_PER_CODE: Final = 20  # per file; the rest are counted in one "and N more" line
MAX_RECORD_BYTES: Final = MAX_TEXT_FILE_BYTES  # an experiment record

# SPEC [errors.phase-code]
Phase = Literal["io", "parse", "version", "schema", "semantic", "runtime"]
Severity = Literal["error", "warning"]
ERROR_CODES: Final[dict[str, frozenset[str]]] = {
    "io": frozenset({"file_not_found", "not_a_file", "read_error", "write_error"}),
    "parse": frozenset({
        "invalid_utf8", "bom", "too_large", "syntax", "yaml_version", "duplicate_key",
        "complex_key", "alias_limit", "depth_limit", "merge_key", "unsupported_tag",
        "invalid_scalar",
    }),
    "version": frozenset({
        "version_missing", "version_invalid", "major_unsupported", "minor_newer",
    }),
    "schema": frozenset({
        "type", "required", "additionalProperties", "pattern", "enum", "const", "minItems",
        "maxItems", "minLength", "maxLength", "minProperties", "maxProperties", "uniqueItems",
        "minimum",
        "exclusiveMinimum", "not",
        "oneOf", "anyOf", "propertyNames", "format",
    }),
    "semantic": frozenset({
        "params_format", "params_file_missing", "params_key_missing", "path_kind",
        "path_not_nfc", "path_case_collision", "path_escapes", "symlink_dir",
        "path_unrepresentable", "duplicate_path", "output_conflict", "output_nested", "cycle",
        "dep_missing", "generated_name", "duplicate_stage", "template_syntax",
        "template_conflict", "template_undefined", "template_type", "lock_stage_unknown",
        "lock_not_canonical", "lock_out_of_date", "reserved_path", "expansion_limit",
        "vars_generated", "frozen_output_missing",
        "exclude_pattern", "exclude_not_directory",  # 1.1: [digest.ignore-syntax], [digest.ignore]
        "secret_in_lock",  # 1.1: [security.secrets]
    }),
    "runtime": frozenset({
        "command_failed", "output_not_created", "interrupted", "lock_busy", "dep_changed",
    }),
}
#: SPEC [errors.warnings]
WARNING_CODES: Final = frozenset({"lock_stage_unknown", "lock_not_canonical", "lock_out_of_date",
                                  "secret_in_lock"})

# SPEC [stale.reasons], in the spec's order.
# `dep_missing` is a 1.1 addition ([pipeline.deps-exist]).
ReasonCode = Literal[
    "never_run", "forced", "always_run", "definition_changed", "command_changed",
    "env_changed", "dep_added", "dep_removed", "dep_modified", "dep_missing", "param_added",
    "param_removed", "param_changed", "output_missing", "output_modified", "upstream",
]
REASON_ORDER: Final[tuple[ReasonCode, ...]] = (
    "never_run", "forced", "always_run", "definition_changed", "command_changed",
    "env_changed", "dep_added", "dep_removed", "dep_modified", "dep_missing", "param_added",
    "param_removed", "param_changed", "output_missing", "output_modified", "upstream",
)

# SPEC [tool.exit-codes]
EXIT_OK: Final = 0
EXIT_INVALID: Final = 1
EXIT_USAGE: Final = 2
EXIT_PENDING: Final = 3
EXIT_BUSY: Final = 4
EXIT_INTERNAL: Final = 70
EXIT_INTERRUPTED: Final = 130

# SPEC [pipeline.stage-keys], [pipeline.outputs]: the defaults that the schema also states.
OutputSection = Literal["outs", "metrics", "plots"]
OUTPUT_SECTIONS: Final[tuple[OutputSection, ...]] = ("outs", "metrics", "plots")
DEFAULT_CACHE: Final[dict[OutputSection, bool]] = {"outs": True, "metrics": True, "plots": True}

# SPEC [security.reserved]: paths no output may be, contain or lie inside, compared after
# Unicode case folding ([paths.case]). The pipeline file, its lock and every params and vars
# file the pipeline reads are reserved too (`reserved_conflict`'s `extra`).
RESERVED_PATHS: Final[tuple[str, ...]] = (
    ".git", ".reftool", "experiments", "reftool.toml", ".gitattributes", ".gitignore",
    ".gitmodules", "dvc.yaml", "dvc.lock",
)


def reserved_conflict(path: str, extra: Iterable[str] = ()) -> str | None:
    """The reserved path that an output `path` is, contains or lies inside; None if none."""
    bare = path.rstrip("/").casefold()
    for reserved in (*RESERVED_PATHS, *extra):
        folded = reserved.rstrip("/").casefold()
        if bare == folded or bare.startswith(folded + "/") or folded.startswith(bare + "/"):
            return reserved
    return None

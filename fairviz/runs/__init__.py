"""Saved runs: `models/<run-name>/`, written atomically, loaded without unpickling anything.

A run folder holds exactly these files:

=====================  ==========================================================================
``config.json``        ``format_version``, ``fairviz_version``, ``name``, ``method``, ``alpha``,
                       ``lambda_w``, ``seed``, ``bias_mode`` at the top level, then ``train``
                       (the full TrainConfig), ``model`` (the ModelConfig) and ``info``
``model.safetensors``  the network's weights (float32), safetensors format (no code, no pickle)
``metrics.json``       test-split metrics: ``fairviz.metrics.audit(...).to_dict()`` - the shape of
                       ``python -m fairviz audit --json`` - plus ``n_boot``, ``random_state``,
                       ``spdd_floor``, ``val_pcc``, ``val_spdd``, ``best_epoch``
``predictions.csv``    columns ``score,label,group,split`` (validation and test rows; true labels)
``z.safetensors``      tensor ``z``: (n_test, d_z) fused code of the test rows, in the order of
                       the test rows of predictions.csv
``history.json``       per-epoch list of loss terms and validation PCC / SPDD
``repair.json``        optional: the barycenter repair fitted on the validation rows
                       (`fairviz.postprocess`); absent when there are no validation rows
=====================  ==========================================================================

`load_run` checks before it builds anything: all files present (missing ones are named), no
pickle-bearing file anywhere in the folder, a known ``format_version``, a config that parses, and
weights whose keys and shapes equal those of a network freshly built from the stored config.

Private modules: ``_names`` (folder names), ``_folder`` (file names, the folder checks and the
torch-free readers), ``_metrics`` (`RunMetrics`, the typed metrics.json), ``_save``, ``_load``.
"""

from fairviz.runs._folder import (
    CONFIG_FILE,
    FORMAT_VERSION,
    HISTORY_FILE,
    METRICS_FILE,
    OPTIONAL_FILES,
    PREDICTION_COLUMNS,
    PREDICTIONS_FILE,
    REQUIRED_FILES,
    SUPPORTED_FORMAT_VERSIONS,
    WEIGHTS_FILE,
    Z_FILE,
    check_replaceable,
    check_run_folder,
    read_predictions,
    read_run_config,
)
from fairviz.runs._load import RunInfo, RunList, list_runs, load_run, run_info
from fairviz.runs._metrics import Estimate, RunMetrics, check_metrics
from fairviz.runs._names import MAX_NAME_LENGTH, check_folder_name, sanitize_run_name, unique_run_name
from fairviz.runs._save import run_config_dict, save_run, save_unique

__all__ = [
    "CONFIG_FILE", "FORMAT_VERSION", "HISTORY_FILE", "MAX_NAME_LENGTH", "METRICS_FILE", "OPTIONAL_FILES",
    "PREDICTIONS_FILE", "PREDICTION_COLUMNS", "REQUIRED_FILES", "SUPPORTED_FORMAT_VERSIONS", "WEIGHTS_FILE",
    "Z_FILE", "Estimate", "RunInfo", "RunList", "RunMetrics", "check_folder_name", "check_metrics",
    "check_replaceable", "check_run_folder", "list_runs", "load_run", "read_predictions", "read_run_config",
    "run_config_dict", "run_info", "sanitize_run_name", "save_run", "save_unique", "unique_run_name",
]

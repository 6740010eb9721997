"""The input data contract: schema, loader and validator.

Other packages code against this API::

    from amlscore.contract import load_dataset, write_dataset, dataset_from_frames, Dataset

    data = load_dataset("data/default")          # typed frames, or ContractViolationError
    data.transactions["amount"]                  # float64, CNY
"""

from amlscore.contract.columns import STRING_DTYPE, typed_dtype
from amlscore.contract.countries import ISO_ALPHA2
from amlscore.contract.errors import AmlError
from amlscore.contract.load import (
    MARKER_FILE,
    DataFolderError,
    Dataset,
    dataset_from_frames,
    find_table_files,
    fingerprint_files,
    fingerprint_frames,
    load_dataset,
    validate_folder,
    write_customers,
    write_dataset,
)
from amlscore.contract.notices import report_data_warnings, warning_summary_lines
from amlscore.contract.problems import ContractViolationError, ProblemKind, ValidationReport, Violation
from amlscore.contract.validate import empty_table, to_typed, validate_frames

__all__ = [
    "AmlError",
    "ContractViolationError",
    "DataFolderError",
    "Dataset",
    "ISO_ALPHA2",
    "MARKER_FILE",
    "ProblemKind",
    "STRING_DTYPE",
    "ValidationReport",
    "Violation",
    "dataset_from_frames",
    "empty_table",
    "find_table_files",
    "fingerprint_files",
    "fingerprint_frames",
    "load_dataset",
    "to_typed",
    "typed_dtype",
    "validate_folder",
    "validate_frames",
    "report_data_warnings",
    "warning_summary_lines",
    "write_customers",
    "write_dataset",
]

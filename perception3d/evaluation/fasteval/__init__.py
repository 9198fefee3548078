"""The devkit's detection and tracking evaluations over arrays: the same numbers, in seconds."""
from .boxes import (EvalBoxArrays, SampleTable, SubmissionError, filter_boxes, load_ground_truth, load_samples,
                    load_submission)
from .detection import evaluate_detection, print_detection_summary

__all__ = ["EvalBoxArrays", "SampleTable", "SubmissionError", "evaluate_detection", "filter_boxes",
           "load_ground_truth", "load_samples", "load_submission", "print_detection_summary"]

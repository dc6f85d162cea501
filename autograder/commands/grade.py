"""``python -m autograder grade SUBMISSION.ipynb [--json]``: grade one notebook."""
from __future__ import annotations

import json
import sys
from pathlib import Path


def add_arguments(parser) -> None:
    parser.add_argument("submission", type=Path, help="the student's .ipynb")
    parser.add_argument("--json", action="store_true", help="print exactly one JSON object on stdout")


def run(args) -> int:
    from autograder.grade import grade_notebook

    result = grade_notebook(args.submission)
    if args.json:
        sys.stdout.write(json.dumps(result, ensure_ascii=False, sort_keys=True) + "\n")
        return 0
    print(f"{args.submission}: {result['status']} — {result['total']:g} / {result['max_total']:g}")
    print(f"  {result['message']}")
    width = max(len(q) for q in result["questions"])
    for qid, q in result["questions"].items():
        print(f"  {qid:<{width}}  {q['score']:>5g} / {q['max_score']:<3g}")
        for check in q["checks"]:
            if not check["passed"]:
                print(f"  {'':<{width}}    ✗ {check['name']}: {check['message']}")
    acc = result["measurements"].get("mnist_accuracy")
    if acc is not None:
        print(f"  MNIST accuracy on unseen test images: {acc:.2%}")
    print(f"  {result['duration_s']:.1f} s, grader {result['grader_version']}")
    return 0

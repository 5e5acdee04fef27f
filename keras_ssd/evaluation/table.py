"""Plain-text table of an evaluator's result, for logs and the CLI."""

import math
from collections.abc import Mapping


def format_table(result: Mapping[str, object], title: str = "AP") -> str:
    """Formats an evaluator result as an aligned two-column table.

    Args:
        result: the dict returned by `VOCEvaluator.result` or
            `COCOEvaluator.result`: scalar metrics plus `"per_class_ap"`
            (`{class name or id: AP}`).
        title: header of the value column.

    Returns:
        The table as a string (one row per class, then a rule, then one row per
        scalar metric such as `mAP`), ready to print. NaN (a class without
        ground truth) is shown as `n/a`.
    """
    per_class = result.get("per_class_ap", {})
    summary = [(str(k), v) for k, v in result.items() if k != "per_class_ap"]
    rows = [(str(name), ap) for name, ap in per_class.items()]
    width = max([len("class")] + [len(name) for name, _ in rows + summary])

    def line(name, value):
        text = "n/a" if isinstance(value, float) and math.isnan(value) else f"{value:.4f}"
        return f"{name:<{width}}  {text:>7}"

    header = f"{'class':<{width}}  {title:>7}"
    rule = "-" * len(header)
    body = [line(name, ap) for name, ap in rows]
    return "\n".join([header, rule, *body, rule, *(line(k, v) for k, v in summary)])

"""STYLE: a file past ~500 lines becomes a package, a function past ~60 lines is split; and
metering.services stays the import for the usage writes after the split into metering.usage."""

import ast
from pathlib import Path

import metering.services
from metering.usage import inputs, record

METERING = Path(__file__).resolve().parents[2] / "metering"


def _sources() -> list[Path]:
    return sorted(p for p in METERING.rglob("*.py") if "migrations" not in p.parts)


def test_no_metering_file_is_past_500_lines() -> None:
    long = {
        str(path.relative_to(METERING.parent)): n
        for path in _sources()
        if (n := len(path.read_text().splitlines())) > 500
    }
    assert long == {}


def test_no_metering_function_is_past_60_lines() -> None:
    long = {
        f"{path.relative_to(METERING.parent)}:{node.name}": n
        for path in _sources()
        for node in ast.walk(ast.parse(path.read_text()))
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
        and (n := (node.end_lineno or node.lineno) - node.lineno + 1) > 60
    }
    assert long == {}


def test_metering_services_re_exports_the_usage_writes() -> None:
    assert metering.services.UsageInput is inputs.UsageInput
    assert metering.services.COMPONENTS is inputs.COMPONENTS
    assert metering.services.usage_input_validate is inputs.usage_input_validate
    assert metering.services.usage_request_hash is inputs.usage_request_hash
    assert metering.services.usage_event_record is record.usage_event_record
    assert metering.services.usage_event_record_batch is record.usage_event_record_batch
    assert metering.services.RecordResult is record.RecordResult
    assert metering.services.BatchItemResult is record.BatchItemResult
    assert metering.services.BATCH_LIMIT == 1000
    assert sorted(metering.services.__all__) == sorted(
        name for name in dir(metering.services) if not name.startswith("_")
    )

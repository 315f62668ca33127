"""Publishes metrics through AWS's aws-embedded-metrics and prints the EMF documents it writes.

Reads a JSON list of groups from standard input:
  [{"namespace": "...", "dimensions": {"k": "v"}, "properties": {"k": "v"},
    "metrics": [{"name": "...", "unit": "Milliseconds", "values": [1.5, 2.5], "storage_resolution": 60}]}]
and flushes one logger per group to standard output (the Local environment), one document a line.
"""
import asyncio
import json
import os
import sys

os.environ["AWS_EMF_ENVIRONMENT"] = "Local"

from aws_embedded_metrics.logger.metrics_logger_factory import create_metrics_logger  # noqa: E402
from aws_embedded_metrics.storage_resolution import StorageResolution  # noqa: E402


async def publish(group):
    logger = create_metrics_logger()
    logger.set_namespace(group["namespace"])
    logger.set_dimensions(group["dimensions"], use_default=False)
    for name, value in group.get("properties", {}).items():
        logger.set_property(name, value)
    for metric in group["metrics"]:
        resolution = StorageResolution.HIGH if metric.get("storage_resolution") == 1 else StorageResolution.STANDARD
        for value in metric["values"]:
            logger.put_metric(metric["name"], value, metric["unit"], resolution)
    await logger.flush()


async def main():
    for group in json.load(sys.stdin):
        await publish(group)


asyncio.run(main())

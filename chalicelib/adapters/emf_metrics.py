"""Business metrics on AWS: CloudWatch's embedded metric format, written by Powertools Metrics.

Each measurement is one EMF line with its own dimensions (an order's type and venue vary within one batch), flushed
at once, so nothing is lost if the invocation ends badly; CloudWatch turns the lines into metrics, and no call to
its API costs the invocation any time."""

from __future__ import annotations

from ..domain.telemetry import Measurement


class EmfMetrics:
    def __init__(self, namespace: str, service: str):
        from aws_lambda_powertools.metrics import MetricUnit, single_metric  # only where metrics are written

        self._namespace = namespace
        self._service = service
        self._single_metric = single_metric
        self._units = {unit.value: unit for unit in MetricUnit}

    def record(self, measurements: list[Measurement]) -> None:
        for measurement in measurements:
            with self._single_metric(name=measurement.name, unit=self._units[measurement.unit],
                                     value=measurement.value, namespace=self._namespace,
                                     default_dimensions={"service": self._service}) as metric:
                for name, value in measurement.dimensions:
                    metric.add_dimension(name=name, value=value)

"""Quality gate Lambda: the training job's final validation metric against the job's threshold.

Event (from the state machine): ``{"task_type", "training": <build_training_data's training settings>,
"final_metrics": <the training job's FinalMetricDataList>}``. Returns ``{"metric", "value", "threshold",
"good_enough", "message"}``; the Choice state after it deploys only when ``good_enough`` is true.
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from truthflow.training_job import check_quality

logger = Logger()
tracer = Tracer()
metrics = Metrics()


@metrics.log_metrics
@tracer.capture_lambda_handler
@logger.inject_lambda_context
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    training = event["training"]
    verdict = check_quality(
        metric_name=training["metric_name"],
        threshold=float(training["threshold"]),
        final_metrics=event.get("final_metrics") or [],
    )
    metrics.add_metric(name="ModelsPassingQualityGate", unit=MetricUnit.Count, value=int(verdict["good_enough"]))
    if verdict["value"] is not None:
        metrics.add_metric(name="ModelValidationMetric", unit=MetricUnit.NoUnit, value=verdict["value"])
    logger.info("quality gate", extra=verdict)
    return verdict

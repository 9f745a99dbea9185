"""The stateless stack: Lambdas, roles, state machine, notifications and trigger, over the storage stack's resources."""

from __future__ import annotations

from aws_cdk import CfnOutput, Stack
from constructs import Construct

from stacks.labeling import GroundTruthLabeling
from stacks.packaging import dependency_layer
from stacks.pipeline import RunSettings, TrainingPipeline
from stacks.storage import PipelineStorage


class PipelineStack(Stack):
    def __init__(
        self, scope: Construct, construct_id: str, *, storage: PipelineStorage, settings: RunSettings, **kwargs: object
    ) -> None:
        super().__init__(scope, construct_id, **kwargs)  # type: ignore[arg-type]
        layer = dependency_layer(self, "Dependencies")
        self.labeling = GroundTruthLabeling(
            self,
            "Labeling",
            data=storage.data,
            worker_stats=storage.worker_stats,
            layer=layer,
            log_retention=settings.log_retention,
        )
        self.pipeline = TrainingPipeline(
            self,
            "Pipeline",
            data=storage.data,
            artifacts=storage.artifacts,
            labeling=self.labeling,
            layer=layer,
            settings=settings,
        )
        CfnOutput(self, "StateMachineArn", value=self.pipeline.state_machine.state_machine_arn)
        CfnOutput(self, "NotificationTopicArn", value=self.pipeline.topic.topic_arn)

"""Run notifications: one SNS topic that hears every way a run can end badly.

The state machine publishes to it from each "Notify <step> failed" state. What the definition cannot catch (an
execution timeout, ``States.DataLimitExceeded``, an abort) reaches it through an EventBridge rule on the execution's
status; starter invocations that failed even after Lambda's retries reach it through a CloudWatch alarm on the
starter's dead-letter queue.

The topic is encrypted with a customer-managed key. Every publisher to an encrypted topic needs ``kms:Decrypt`` and
``kms:GenerateDataKey`` on its key (SNS developer guide, key management); EventBridge and CloudWatch alarms publish as
their service principals, which only a key policy can grant, and the policy of the AWS-managed ``alias/aws/sns`` key
cannot be changed. This key's policy grants them to CloudWatch (for this account only) and, through CDK's SNS
target, to EventBridge.
"""

from __future__ import annotations

from aws_cdk import Duration, RemovalPolicy, Stack
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_cloudwatch_actions as cloudwatch_actions
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sns_subscriptions as subscriptions
from aws_cdk import aws_sqs as sqs
from aws_cdk import aws_stepfunctions as sfn
from constructs import Construct

ABNORMAL_END = ["FAILED", "TIMED_OUT", "ABORTED"]
TOPIC_KEY_ACTIONS = ["kms:Decrypt", "kms:GenerateDataKey"]


class RunNotifications(Construct):
    """The topic, its key, and the rules and alarms that publish to it."""

    def __init__(self, scope: Construct, construct_id: str, *, email: str | None) -> None:
        super().__init__(scope, construct_id)
        stack = Stack.of(self)
        self.key = kms.Key(
            self,
            "TopicKey",
            description="truthflow run notifications (SNS topic encryption)",
            enable_key_rotation=True,
            removal_policy=RemovalPolicy.DESTROY,
        )
        # CloudWatch alarms publish as their service principal; EventBridge's grant is added with its rule target.
        self.key.add_to_resource_policy(
            iam.PolicyStatement(
                principals=[iam.ServicePrincipal("cloudwatch.amazonaws.com")],
                actions=TOPIC_KEY_ACTIONS,
                resources=["*"],  # in a key policy, "*" is this key
                conditions={"StringEquals": {"aws:SourceAccount": stack.account}},
            )
        )
        self.topic = sns.Topic(
            self, "Topic", display_name="truthflow runs", enforce_ssl=True, master_key=self.key
        )  # fmt: skip
        self.topic.add_to_resource_policy(
            iam.PolicyStatement(
                principals=[iam.ServicePrincipal("cloudwatch.amazonaws.com")],
                actions=["sns:Publish"],
                resources=[self.topic.topic_arn],
                conditions={"StringEquals": {"aws:SourceAccount": stack.account}},
            )
        )
        if email:
            self.topic.add_subscription(subscriptions.EmailSubscription(email))

    def publish_statements(self) -> list[iam.PolicyStatement]:
        """What a role needs to publish: the topic, and its key (the two KMS actions, no wildcard)."""
        return [
            iam.PolicyStatement(actions=["sns:Publish"], resources=[self.topic.topic_arn]),
            iam.PolicyStatement(actions=TOPIC_KEY_ACTIONS, resources=[self.key.key_arn]),
        ]

    def notify_on_abnormal_end(self, state_machine: sfn.IStateMachine) -> events.Rule:
        """An EventBridge rule: every execution of ``state_machine`` that ends FAILED, TIMED_OUT or ABORTED."""
        name = events.EventField.from_path("$.detail.name")
        status = events.EventField.from_path("$.detail.status")
        execution = events.EventField.from_path("$.detail.executionArn")
        stopped = events.EventField.from_path("$.detail.stopDate")
        return events.Rule(
            self,
            "RunEndedAbnormally",
            description="A truthflow run that failed, timed out or was aborted",
            event_pattern=events.EventPattern(
                source=["aws.states"],
                detail_type=["Step Functions Execution Status Change"],
                detail={"status": ABNORMAL_END, "stateMachineArn": [state_machine.state_machine_arn]},
            ),
            targets=[
                targets.SnsTopic(
                    self.topic,
                    message=events.RuleTargetInput.from_text(
                        f"truthflow run {name} ended {status} (stop time {stopped} ms since 1970). A failure the run "
                        "caught was announced in a message of its own; TIMED_OUT, ABORTED and failures the run could "
                        f"not catch (such as States.DataLimitExceeded) only here. Execution: {execution}"
                    ),
                )
            ],
        )

    def alarm_on_messages(self, queue: sqs.IQueue, *, what: str) -> cloudwatch.Alarm:
        """A CloudWatch alarm (published to the topic) as soon as ``queue`` holds a message."""
        alarm = cloudwatch.Alarm(
            self,
            "DeadLetterAlarm",
            alarm_description=f"{what}: look at the messages in the queue {queue.queue_name}",
            metric=queue.metric_approximate_number_of_messages_visible(
                period=Duration.minutes(5), statistic=cloudwatch.Stats.MAXIMUM
            ),
            threshold=1,
            evaluation_periods=1,
            comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
            treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
        )
        alarm.add_alarm_action(cloudwatch_actions.SnsAction(self.topic))
        return alarm

"""Email intake: SES accepts the instruction email, then this step puts it on SQS.

On AWS an SES receipt rule (or an SNS subscription) would deliver accepted mail to the
intake queue. moto's SES records sent mail but delivers it nowhere, so the hand-off is
done here, explicitly: after ``send_email`` returns a MessageId, the same email (with
that id, its sender and body) is enqueued on SQS. The SES MessageId is the email's
identity downstream: hermes uses it to name sessions and to recognise redeliveries.
``deliveries > 1`` enqueues the same email several times (an at-least-once delivery
fault for scenarios).
"""

from __future__ import annotations

import json
import time
from typing import Any

from .aws import Aws
from .events import EventLog
from .instructions import USER_RE, InstructionError, format_email_body


class Intake:
    def __init__(self, aws: Aws, events: EventLog) -> None:
        self.aws = aws
        self.events = events
        self.accepted: dict[str, float] = {}  # message id -> accepted at (for timings)

    async def submit(self, user: str, client: str, instruction: str,
                     deliveries: int = 1) -> dict[str, Any]:
        if not USER_RE.match(user) or not USER_RE.match(client):
            raise InstructionError(f"invalid user or client id: {user!r} / {client!r}")
        res = self.aws.res
        source = f"{user}@{res.mail_domain}"
        body = format_email_body(user, client, instruction)
        subject = f"edit request from {user}"
        sent = await self.aws.ses.send_email(
            Source=source, Destination={"ToAddresses": [res.intake_address]},
            Message={"Subject": {"Data": subject}, "Body": {"Text": {"Data": body}}})
        message_id = sent["MessageId"]
        accepted_at = time.time()
        self.accepted[message_id] = accepted_at
        envelope = json.dumps({"message_id": message_id, "source": source,
                               "to": res.intake_address, "subject": subject, "body": body,
                               "accepted_at": accepted_at})
        queued = [(await self.aws.sqs.send_message(QueueUrl=self.aws.queue_url,
                                                   MessageBody=envelope))["MessageId"]
                  for _ in range(max(1, deliveries))]
        self.events.emit("email-accepted", user=user, message_id=message_id,
                         deliveries=len(queued))
        return {"message_id": message_id, "user": user, "client": client,
                "accepted_at": accepted_at, "sqs_message_ids": queued}

"""Email-to-preview sessions: the lab reference system under test for issue #8.

Email → SES → (explicit intake) → SQS → hermes worker → DynamoDB session →
orchestrator scales "edit containers" (local processes mirroring an ECS service's
desired count) → the container edits the user's git workspace and serves a preview →
the router (ALB stand-in) proxies ``/session/<id>`` to it → idle containers exit and
their sessions become ``expired``.

Run the stack with ``python -m opsconsole_lab.sessions``; drive it with
:class:`opsconsole_lab.sessions.client.SessionsClient`. This package ``__init__`` stays
import-free on purpose: every edit container imports it at start-up.
"""

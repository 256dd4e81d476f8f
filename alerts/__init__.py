"""Alerts: which graded posts reach whom (rules), the email itself (mail), and
delivery from the database outbox with every attempt recorded (outbox)."""

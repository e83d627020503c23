"""Patients answer their follow-up call themselves (README, "Patients answer online"; docs/deploy.md §13).

When the window of a call whose protocol phase allows it opens, the scheduler sends the patient a one-time link
(SMS gateway, WeChat template message or e-mail, through the senders the hospital configured); reminders follow
until the patient answers, a nurse closes the call or the window closes. The patient's page confirms them by a
second factor that is not in the link, asks the phase's questions in plain words and keeps the answers as a
pending outcome, which the nurse confirms in one click (or calls the patient). Alarming answers put the call at
the top of the queue and open a possible-event prompt, as a phoned finding does.

models (invitation, its delivery log) · workflow (the invitation's states) · questions (what the patient is
asked, what is alarming, answers → outcome) · services (invite, open, answer, confirm, expire) · senders (SMS
webhook, WeChat webhook, SMTP) · jobs · views (the patient's page) · api.
"""

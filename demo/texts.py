"""Support conversations by topic: question and answer templates with seeded slot values."""

from __future__ import annotations

import random

TOPICS = ("billing", "bug", "howto", "account")

QUESTIONS = {
    "billing": (
        "Why was I charged twice for {plan} this month?",
        "How do I change the card on file for our {plan} subscription?",
        "Can I get an invoice with our VAT number {vat} on it?",
        "Our {plan} renewal went up by {pct}% - why?",
        "I cancelled {plan} on {date} but was billed again.",
    ),
    "bug": (
        "Export to {fmt} fails with error {code}.",
        "The dashboard is blank after login in {browser}.",
        "Webhooks stopped firing since {date}.",
        "Search returns nothing for '{term}' even though the record exists.",
        "The mobile app crashes when I open a shared {fmt} report.",
    ),
    "howto": (
        "How do I invite a teammate to my workspace?",
        "How can I set up SSO with {idp}?",
        "Where do I find my API key?",
        "How do I schedule a weekly {fmt} report?",
        "Can I restore a deleted project from last {weekday}?",
    ),
    "account": (
        "Password reset emails never arrive, I can't log in.",
        "How do I delete my account and all my data?",
        "Please transfer ownership of workspace {ws} to a colleague.",
        "How do I turn on two-factor authentication?",
        "I changed jobs - how do I move my account to a new email?",
    ),
}

ANSWERS = {
    "billing": (
        "I can see two charges on {date}; one is a pre-authorisation that drops off within "
        "5 business days. If it is still there after that, reply and a billing specialist will "
        "refund it. ({article})",
        "Go to Settings > Billing > Payment method and choose Replace card; the next invoice "
        "uses the new card. ({article})",
        "Add the VAT number under Settings > Billing > Tax details, then download the invoice "
        "again from Invoices. ({article})",
    ),
    "bug": (
        "Error {code} means the export hit the row limit; filter the view below 100,000 rows or "
        "use the scheduled export. Our team is tracking a fix. ({article})",
        "This is a known issue with cached sessions in {browser}; clear site data and sign in "
        "again. I have attached your report to the open bug. ({article})",
        "Webhooks are paused after 50 consecutive failures; re-enable them under Integrations "
        "> Webhooks once the endpoint answers. ({article})",
    ),
    "howto": (
        "Open Workspace settings > Members > Invite, enter their email and pick a role. "
        "({article})",
        "SSO with {idp} is on the Enterprise plan: Settings > Security > SSO walks you through "
        "the SAML metadata. ({article})",
        "Your API keys are under Settings > Developer; create a key per integration so you can "
        "revoke them separately. ({article})",
    ),
    "account": (
        "I have re-sent the reset link; check spam, and allow-list no-reply@acme.example. If "
        "it still does not arrive, I can hand you to an agent. ({article})",
        "Only the workspace owner can transfer ownership: Settings > Workspace > Transfer. "
        "({article})",
        "Go to Profile > Security > Two-factor and scan the QR code with your app. ({article})",
    ),
}

SLOTS = {
    "plan": ("Starter", "Team", "Business", "Enterprise"),
    "fmt": ("CSV", "XLSX", "PDF"),
    "code": ("E1042", "E2210", "E3307", "E4001"),
    "browser": ("Safari 17", "Chrome 124", "Firefox 126", "Edge 124"),
    "idp": ("Okta", "Azure AD", "Google Workspace"),
    "term": ("invoice 2291", "ACME-7781", "renewal", "q3 forecast"),
    "weekday": ("Monday", "Tuesday", "Friday"),
    "ws": ("acme-growth", "ops-emea", "design-team"),
    "date": ("the 3rd", "the 12th", "last Tuesday", "the 28th"),
}


def _fill(template: str, rng: random.Random) -> str:
    values = {k: rng.choice(v) for k, v in SLOTS.items() if "{" + k + "}" in template}
    if "{vat}" in template:
        values["vat"] = f"DE{rng.randrange(10**8, 10**9)}"
    if "{pct}" in template:
        values["pct"] = str(rng.choice((8, 12, 15, 20)))
    if "{article}" in template:
        values["article"] = f"HC-{rng.randrange(100, 999)}"
    return template.format(**values)


def conversation(topic: str, rng: random.Random) -> tuple[str, str]:
    """A (question, answer) pair on ``topic``."""
    return _fill(rng.choice(QUESTIONS[topic]), rng), _fill(rng.choice(ANSWERS[topic]), rng)


def summary(topic: str, question: str, answer: str) -> str:
    outcome = "escalated to an agent" if "agent" in answer else "resolved by the assistant"
    return (f"Customer asked about {topic}: {question.rstrip('.?!')}. The assistant pointed to "
            f"{answer[answer.rfind('(') + 1:-1]}; {outcome}.")

"""A day of a small AI-agent business, recorded with dexcost and reported at the end.

A support-and-reporting SaaS serves four customers. Its agents resolve tickets
(classify → retrieve → draft, with an escalation now and then), generate reports
(with a PDF render on compute), classify documents (OCR + a small model) and embed
knowledge-base updates. Some calls hit rate limits and are retried; one report fails.
Nothing here needs a network or an API key: LLM calls are recorded with the token
counts a provider would return, and priced from dexcost's bundled price data.

    python examples/agent_day.py            # a fresh store in a temporary directory
    python examples/agent_day.py --db my.db # keep the store to explore with `dexcost`
"""

from __future__ import annotations

import argparse
import random
import tempfile
from pathlib import Path

import dexcost
from dexcost.cli import main as dexcost_cli

CUSTOMERS = {  # customer -> relative activity (one big account, a long tail)
    "acme-corp": 9,
    "globex": 4,
    "initech": 2,
    "umbrella-health": 1,
}


class UpstreamTimeout(Exception):
    """What a provider SDK raises when a report's data source times out."""


def resolve_ticket(rng: random.Random) -> None:
    """Classify, retrieve context, draft a reply; escalate hard tickets to a bigger model."""
    with dexcost.task("resolve_ticket") as ticket:
        with dexcost.task("classify") as step:
            step.record_llm_call("anthropic", "claude-haiku-4-5", rng.randint(300, 700), 12)
        with dexcost.task("retrieve_context") as step:
            step.record_llm_call("openai", "text-embedding-3-small", rng.randint(20, 80), 0)
            step.record_cost("pinecone", "0.00016", details={"operation": "query", "top_k": 8})
        with dexcost.task("draft_reply") as step:
            prompt = rng.randint(2500, 6000)
            if rng.random() < 0.12:
                # The first attempt is rate limited; the SDK retries it (flagged as a retry).
                step.record_llm_call(
                    "openai", "gpt-4o", 0, 0, error_type="rate_limit", latency_ms=80
                )
            # A long system prompt is cached by the provider after the first call.
            step.record_llm_call(
                "openai",
                "gpt-4o",
                prompt,
                rng.randint(150, 450),
                cached_tokens=2048 if rng.random() < 0.7 else 0,
                latency_ms=rng.randint(900, 2600),
            )
        if rng.random() < 0.15:
            with dexcost.task("escalate") as step:
                step.record_llm_call(
                    "anthropic",
                    "claude-sonnet-4-5-20250929",
                    rng.randint(6000, 12000),
                    rng.randint(400, 900),
                    cached_tokens=4096,
                    cache_creation_tokens=1024,
                )
                step.record_cost("twilio_sms", "0.0079", details={"segments": 1})
        ticket.link_trace("langfuse", f"trace-{rng.randrange(10**8):08d}")


def generate_report(rng: random.Random, *, fail: bool) -> None:
    """Summarise a month of data with a reasoning model and render a PDF."""
    with dexcost.task("generate_report") as report:
        for _ in range(rng.randint(2, 4)):
            report.record_llm_call(
                "gemini",
                "gemini-2.5-flash",
                rng.randint(8000, 20000),
                rng.randint(800, 2000),
                reasoning_tokens=rng.randint(200, 600),
            )
        report.record_cost("serpapi", "0.015", details={"queries": 1})
        if fail:
            report.record_llm_call("openai", "gpt-4o", 9000, 0, error_type="timeout")
            report.mark_retry("timeout", cost_usd="0.0225")
            raise UpstreamTimeout("warehouse export timed out twice")
        report.record_cost(
            "pdf_render_lambda",
            "0.00042",
            event_type="compute_cost",
            cost_confidence="estimated",
            details={"gb_seconds": 25.2},
        )


def classify_document(rng: random.Random) -> None:
    """OCR a scanned document, then label it with a small model."""
    with dexcost.task("classify_document") as doc:
        pages = rng.randint(1, 12)
        doc.record_usage("document_ocr", units=pages)
        doc.record_llm_call("openai", "gpt-4o-mini", 600 * pages, 40)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", help="store file to write (default: a temporary one)")
    args = parser.parse_args()
    db = Path(args.db) if args.db else Path(tempfile.mkdtemp(prefix="dexcost-demo-")) / "demo.db"

    dexcost.init(
        buffer_path=str(db),
        auto_instrument=[],  # the demo records calls itself; real apps get them patched
        track_http=False,
        enable_retry_heuristics=True,
    )
    tracker = dexcost.get_tracker()
    assert tracker is not None
    tracker.register_rate("document_ocr", per="page", cost_usd="0.0015")

    rng = random.Random(20261122)
    weights = list(CUSTOMERS.values())
    failed_once = False
    for _ in range(120):
        customer = rng.choices(list(CUSTOMERS), weights)[0]
        dexcost.set_context(customer_id=customer, project_id="support-suite")
        kind = rng.random()
        try:
            if kind < 0.6:
                resolve_ticket(rng)
            elif kind < 0.75:
                fail = not failed_once and customer == "globex"
                failed_once = failed_once or fail
                generate_report(rng, fail=fail)
            else:
                classify_document(rng)
        except UpstreamTimeout:
            pass  # the task is stored as failed, with the costs it had already run up

    # Knowledge-base sync runs outside any task: it lands in the agent's session task.
    dexcost.set_context(agent="kb_sync_agent")
    for _ in range(5):
        dexcost.record_llm_call("openai", "text-embedding-3-small", rng.randint(4000, 8000), 0)
    # A self-hosted model has no public price: counted as unknown, never silently free.
    dexcost.record_llm_call("ollama", "llama-3.1-70b-internal", 1200, 300)

    dexcost.close()

    print(f"Recorded a day of agent work into {db}\n")
    dexcost_cli(["report", "--db", str(db), "--since", "1d"])
    print()
    dexcost_cli(["tasks", "--db", str(db), "--limit", "8"])
    print(f"\nExplore further: dexcost report --db {db}   (or: dexcost tasks --db {db})")


if __name__ == "__main__":
    main()

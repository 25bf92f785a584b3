"""The Jinja environment of the pages: template folder, URL helpers and number/date filters."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from fastapi.templating import Jinja2Templates
from jinja2 import pass_context
from jinja2.runtime import Context
from markupsafe import Markup

from app.core import urls
from app.read.schemas import NeuronSummary
from app.web import htmx

TEMPLATES_DIR = Path(__file__).resolve().parents[2] / "templates"


def format_score(value: float | None, digits: int = 3) -> str:
    """Return a score with a fixed number of decimals, or an em dash for none."""
    return "—" if value is None else f"{value:.{digits}f}"


def format_time(value: datetime | None) -> str:
    """Return a timestamp as `YYYY-MM-DD HH:MM UTC`."""
    if value is None:
        return "—"
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")


@pass_context
def neuron_card(context: Context, neuron: NeuronSummary) -> Markup:
    """Return one grid card, rendered once per neuron when the page passes its layer's `card_memo`."""
    memo: dict[int, Markup] | None = context.get("card_memo")
    card = memo.get(neuron.unit) if memo is not None else None
    if card is None:
        template = context.environment.get_template("partials/neuron_card.html")
        card = Markup(template.render(run=context["run"], page=context["page"], neuron=neuron))
        if memo is not None:
            memo[neuron.unit] = card
    return card


def make_templates() -> Jinja2Templates:
    """Return the page templates with the dashboard's URL helpers, filters and htmx event names."""
    templates = Jinja2Templates(directory=str(TEMPLATES_DIR))
    env = templates.env
    env.trim_blocks = True
    env.lstrip_blocks = True
    # Templates ship with the code: checking their files for changes on every render only costs stat calls.
    env.auto_reload = False
    env.filters["score"] = format_score
    env.filters["time"] = format_time
    env.globals.update(
        layer_url=urls.layer_url,
        neuron_url=urls.neuron_url,
        run_url=urls.run_url,
        search_url=urls.search_url,
        job_url=urls.job_url,
        model_neuron_url=urls.model_neuron_url,
        neuron_card=neuron_card,
        api_url=urls.api_url,
        TYPED_CONCEPTS_CHANGED=htmx.TYPED_CONCEPTS_CHANGED,
        JOB_FINISHED=htmx.JOB_FINISHED,
    )
    return templates

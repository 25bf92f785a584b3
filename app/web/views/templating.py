"""The Jinja environment of the pages: template folder, URL helpers and number/date filters."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from fastapi.templating import Jinja2Templates

from app.core import urls
from app.read.classes.names import unit_class_name
from app.web.middleware.security import csrf_field
from app.web.views import htmx
from app.web.views.cards import CardMemo, card_renderer
from app.web.views.charts import agreement_curve_svg, null_curve_svg, r_histogram_svg

TEMPLATES_DIR = Path(__file__).resolve().parents[3] / "templates"


def format_score(value: float | None, digits: int = 3) -> str:
    """Return a score with a fixed number of decimals, or an em dash for none."""
    return "—" if value is None else f"{value:.{digits}f}"


def format_p_value(value: float | None) -> str:
    """Return a p-value with three decimals, in scientific notation below 0.001, or an em dash for none."""
    if value is None:
        return "—"
    return f"{value:.3f}" if value >= 0.001 else f"{value:.1e}"


def format_share(value: float | None) -> str:
    """Return a share in [0, 1] as a whole percentage, or an em dash for none."""
    return "—" if value is None else f"{100 * value:.0f}%"


def format_duration(seconds: float | None) -> str:
    """Return seconds as a short duration (`18 s`, `3 min 05 s`, `1 h 02 min`), or an em dash for none."""
    if seconds is None:
        return "—"
    whole = round(seconds)
    if whole < 60:
        return f"{whole} s"
    if whole < 3600:
        return f"{whole // 60} min {whole % 60:02d} s"
    return f"{whole // 3600} h {whole % 3600 // 60:02d} min"


def format_time(value: datetime | None) -> str:
    """Return a timestamp as `YYYY-MM-DD HH:MM UTC`."""
    if value is None:
        return "—"
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")


def make_templates() -> Jinja2Templates:
    """Return the page templates with the dashboard's URL helpers, filters, card memo, CSRF field, htmx events."""
    templates = Jinja2Templates(directory=str(TEMPLATES_DIR))
    env = templates.env
    env.trim_blocks = True
    env.lstrip_blocks = True
    # Templates ship with the code: checking their files for changes on every render only costs stat calls.
    env.auto_reload = False
    env.filters["score"] = format_score
    env.filters["p_value"] = format_p_value
    env.filters["share"] = format_share
    env.filters["time"] = format_time
    env.filters["duration"] = format_duration
    env.globals.update(
        layer_url=urls.layer_url,
        layers_url=urls.layers_url,
        run_details_url=urls.run_details_url,
        delete_run_url=urls.delete_run_url,
        typed_concepts_url=urls.typed_concepts_url,
        relabel_url=urls.relabel_url,
        architecture_layers_url=urls.architecture_layers_url,
        delete_probe_set_url=urls.delete_probe_set_url,
        delete_concept_set_url=urls.delete_concept_set_url,
        login_url=urls.login_url,
        neuron_url=urls.neuron_url,
        run_url=urls.run_url,
        search_url=urls.search_url,
        image_url=urls.image_url,
        compare_url=urls.compare_url,
        classes_url=urls.classes_url,
        class_url=urls.class_url,
        connections_url=urls.connections_url,
        export_url=urls.export_url,
        job_url=urls.job_url,
        model_neuron_url=urls.model_neuron_url,
        neuron_card=card_renderer(CardMemo()),
        null_curve_svg=null_curve_svg,
        r_histogram_svg=r_histogram_svg,
        agreement_curve_svg=agreement_curve_svg,
        unit_class_name=unit_class_name,
        api_url=urls.api_url,
        csrf_field=csrf_field,
        TYPED_CONCEPTS_CHANGED=htmx.TYPED_CONCEPTS_CHANGED,
        JOB_FINISHED=htmx.JOB_FINISHED,
    )
    return templates

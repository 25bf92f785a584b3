"""Grid cards rendered once per neuron: a card depends on its neuron and layer alone, never on the grid state."""

from __future__ import annotations

from collections.abc import Callable
from weakref import WeakKeyDictionary

from jinja2 import pass_context
from jinja2.runtime import Context
from markupsafe import Markup

from app.read.layers.index import LayerIndex
from app.read.schemas.neurons import NeuronSummary


class CardMemo:
    """Rendered cards by unit for each LayerIndex still alive: a layer's cards go when its index is dropped."""

    def __init__(self) -> None:
        # Units are unique only inside a layer, so cards are kept per index, never by unit alone.
        self._cards: WeakKeyDictionary[LayerIndex, dict[int, Markup]] = WeakKeyDictionary()

    def of(self, index: LayerIndex) -> dict[int, Markup]:
        """Return the cards rendered so far for the index's layer, by unit."""
        return self._cards.setdefault(index, {})


def card_renderer(memo: CardMemo) -> Callable[[Context, NeuronSummary], Markup]:
    """Return the `neuron_card` template global: a grid card, rendered once per neuron of the page's layer_index."""

    @pass_context
    def neuron_card(context: Context, neuron: NeuronSummary) -> Markup:
        index: LayerIndex | None = context.get("layer_index")
        cards = memo.of(index) if index is not None else {}
        card = cards.get(neuron.unit)
        if card is None:
            template = context.environment.get_template("partials/neuron_card.html")
            card = cards[neuron.unit] = Markup(template.render(run=context["run"], page=context["page"], neuron=neuron))
        return card

    return neuron_card

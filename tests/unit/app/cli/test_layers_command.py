"""`neuron-atlas layers`: every layer with its output shape and unit count, the main stages starred and listed as
the `--layers` value a first dissection would pass."""

from app.cli.commands.layers import layer_table
from app.cli.main import main
from dissect_core.api import LayerInfo


def test_resnet18_lists_units_and_stars_the_main_stages(capsys):
    assert main(["layers", "--model", "resnet18"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == ["layer", "type", "output", "units", "main"]
    rows = {line.split()[0]: line.split()[1:] for line in lines[1:-1]}
    assert len(rows) == 67
    assert rows["fc"] == ["Linear", "1000", "1000", "*"]
    assert rows["layer4"] == ["Sequential", "512x7x7", "512", "*"]
    assert rows["layer4.1"] == ["BasicBlock", "512x7x7", "512"]
    assert lines[-1] == "* main stages: --layers conv1,layer1,layer2,layer3,layer4,fc"


def test_a_layer_the_trace_did_not_reach_shows_dashes():
    layers = [LayerInfo("head.drop", "Dropout", None, None, False), LayerInfo("fc", "Linear", (10,), 10, True)]
    rows = [line.split() for line in layer_table(layers)[1:]]
    assert rows == [["head.drop", "Dropout", "-", "-"], ["fc", "Linear", "10", "10", "*"]]

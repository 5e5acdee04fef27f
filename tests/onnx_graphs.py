"""Checks on the graph of an int8 (QDQ) ONNX file."""


def quantised_network_convs(model):
    """The network's Conv nodes, after checking each reads DequantizeLinear weights.

    The preprocessing's channel-swap Conv is left float (exact) by the
    quantiser's exclusions, and is checked to be so.
    """
    producers = {out: node for node in model.graph.node for out in node.output}
    convs = [node for node in model.graph.node if node.op_type == "Conv"]
    network = [conv for conv in convs if "/preprocessing" not in conv.name]
    assert network and all(producers[conv.input[1]].op_type == "DequantizeLinear" for conv in network)
    [swap] = [conv for conv in convs if "/preprocessing" in conv.name]
    assert swap.input[1] not in producers or producers[swap.input[1]].op_type != "DequantizeLinear"
    return network

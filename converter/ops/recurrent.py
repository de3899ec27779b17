"""Recurrent layers (SimpleRNN, LSTM, GRU): gate orders, split biases and directions, as data.

The IR keeps torch's params, per direction (``reverse_`` prefixes the backward one): ``w_ih`` (G, F),
``w_hh`` (G, H), ``b_ih`` and ``b_hh`` (G), where G stacks the gates' H rows in torch's gate order.
Each framework stacks the gates in its own order (``Cell.gates``); they are reordered as named blocks
(``layouts.reorder_blocks``), never by hand-written indices.

- Keras keeps one bias: it reads as ``b_ih`` with ``b_hh`` zero, and is written as their sum. A Keras
  GRU with ``reset_after=True`` keeps both, as a (2, G) bias; with ``reset_after=False`` it applies the
  reset gate before the recurrent matmul (ONNX ``linear_before_reset=0``), which torch's GRU cannot: the
  generated module writes it, and hard-sigmoid gates, out step by step (``adapters/torch/cells.py``).
- A node returns the whole sequence (N, T, D*H) or the final state (N, D*H): Keras' return_sequences;
  torch's ``out`` or ``h_n``; ONNX's Y or Y_h. Bidirectional outputs concatenate forward then backward,
  as torch, Keras' merge_mode='concat' and ONNX do; Keras' other merge modes (sum, mul, ave) combine the
  two halves, which torch and ONNX write after the layer; merge_mode=None gives them apart, as two outputs
  (before any states: Keras' order).
- ONNX runs time-major; the writer transposes into and out of it (the batch stays first in the IR).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .. import views
from ..codetext import literal
from ..errors import Unsupported, WeightMismatch
from ..ir import Node
from ..layouts import permute, reorder_blocks
from .base import Convention, KerasSpec, OpDef, expect_dim
from .registry import register_keras, register_onnx, register_op, register_torch_module

DIRECTIONS = {"forward": ("",), "bidirectional": ("", "reverse_")}
# Keras Bidirectional merge modes: how the two directions' outputs combine, as a torch tensor method and an ONNX
# reduction over the direction axis (concat keeps both, side by side).
# Gate activations: sigmoid everywhere; hard_sigmoid(x) = clip(alpha x + beta, 0, 1), whose alpha is 0.2 in Keras 2
# and 1/6 in Keras 3 (read by the file's Keras version) and an attribute in ONNX. torch's layers have sigmoid only.
KERAS_HARD_SIGMOID = {"2": (0.2, 0.5), "3": (1 / 6, 0.5)}
ONNX_GATES = {"sigmoid": "Sigmoid", "hard_sigmoid": "HardSigmoid"}
MERGES = {"concat": None, "sum": ("sum", "ReduceSum"), "mul": ("prod", "ReduceProd"), "ave": ("mean", "ReduceMean")}
SPLIT = "none"  # Keras merge_mode=None: the two directions' outputs apart, forward then backward
# What a Keras recurrent layer's inference depends on (a Bidirectional's two layers must agree on these).
INFERENCE_KEYS = ("units", "activation", "recurrent_activation", "use_bias", "return_sequences", "reset_after",
                  "return_state", "stateful", "time_major")
PARAMS = ("w_ih", "w_hh", "b_ih", "b_hh")


@dataclass(frozen=True)
class Cell:
    op: str
    keras: str
    torch: str
    onnx: str
    gates: dict  # framework -> its gate letters, in the order it stacks them (one letter per gate across frameworks)
    summary: str
    gate_names: dict  # framework -> how its documentation names the gates, in that order


CELLS = (
    Cell("rnn", "SimpleRNN", "RNN", "RNN", {"keras": "n", "torch": "n", "onnx": "n"},
         "Elman RNN: h' = act(x W_ih^T + b_ih + h W_hh^T + b_hh).", {"keras": "-", "torch": "-", "onnx": "-"}),
    # Keras names the cell gate c, torch g, ONNX c: one letter here (g).
    Cell("lstm", "LSTM", "LSTM", "LSTM", {"keras": "ifgo", "torch": "ifgo", "onnx": "iofg"},
         "LSTM: input, forget, cell and output gates; cell state c and hidden state h.",
         {"keras": "i f c o", "torch": "i f g o", "onnx": "i o f c"}),
    # torch's new gate n is Keras' and ONNX's h (the candidate).
    Cell("gru", "GRU", "GRU", "GRU", {"keras": "zrn", "torch": "rzn", "onnx": "zrn"},
         "GRU: update z and reset r gates and candidate n; h' = (1 - z) * n + z * h.",
         {"keras": "z r h", "torch": "r z n", "onnx": "z r h"}),
)


class Recurrent(OpDef):
    input_kind = views.FEATURES_LAST
    params = {"w_ih": "G f", "w_hh": "G k", "b_ih": "G", "b_hh": "G"}

    def __init__(self, cell: Cell):
        self.cell = cell
        self.name = cell.op
        self.summary = cell.summary + " Batch-first (N, T, F); the sequence or the final state."
        gates = cell.gate_names
        self.conventions = {
            "keras": Convention((cell.keras, f"Bidirectional({cell.keras})"),
                                {"w_ih": ("kernel", "f G"), "w_hh": ("recurrent_kernel", "k G"),
                                 "b_ih": ("bias", "G (b_ih + b_hh)"), "b_hh": ("bias", "G (summed into b_ih)")},
                                {"gates": gates["keras"], "returns": "return_sequences",
                                 "bidirectional": "Bidirectional(merge_mode='concat'|'sum'|'mul'|'ave'|None)",
                                 **({"reset_after": "reset_after=True: bias (2, G) = [b_ih, b_hh]"}
                                    if cell.op == "gru" else {})}),
            "torch": Convention((cell.torch,),
                                {"w_ih": ("weight_ih_l0", "G f"), "w_hh": ("weight_hh_l0", "G k"),
                                 "b_ih": ("bias_ih_l0", "G"), "b_hh": ("bias_hh_l0", "G")},
                                {"gates": gates["torch"], "returns": "out (sequence) or h_n (final)",
                                 "bidirectional": "bidirectional=True (*_reverse)", "layout": "batch_first=True"}),
            "onnx": Convention((cell.onnx,),
                               {"w_ih": ("W", "D G f"), "w_hh": ("R", "D G k"), "b_ih": ("B", "D (G G)[0]"),
                                "b_hh": ("B", "D (G G)[1]")},
                               {"gates": gates["onnx"], "returns": "Y (sequence) or Y_h (final)",
                                "bidirectional": "direction='bidirectional'", "layout": "time-major, transposed",
                                **({"reset_after": "linear_before_reset=1"} if cell.op == "gru" else {})}),
        }
        self.notes = (f"Gate order: Keras {gates['keras']}, torch {gates['torch']}, ONNX {gates['onnx']}.",)

    # -- the node ---------------------------------------------------------------
    def node(self, name, inputs, outputs, params, *, direction="forward", returns="sequence", activation="tanh",
             linear_before_reset=True, merge="concat", gate=("sigmoid",), reverse=False, states=False) -> Node:
        """``inputs``: the sequence, then optionally the initial states; ``outputs``: the sequence or final state,
        then the final states when ``states`` (Keras' return_state). States are (N, H) each, per direction its
        h (and an LSTM's c), forward first: Keras' order."""
        attrs = {"hidden": int(params["w_hh"].shape[1]), "direction": direction, "returns": returns,
                 "activation": activation}
        merge = SPLIT if merge is None else merge
        count, primaries = self.state_count(direction), 2 if merge == SPLIT else 1
        if len(inputs) not in (1, 1 + count) or len(outputs) != primaries + (count if states else 0):
            raise Unsupported(f"layer '{name}' ({self.name}): {len(inputs) - 1} initial state(s) and "
                              f"{len(outputs) - primaries} returned state(s); expected none or {count}")
        if states:
            attrs["states"] = True
        if self.cell.op != "rnn":
            attrs["gate"] = gate[0]
            if gate[0] == "hard_sigmoid":
                attrs["gate_alpha"], attrs["gate_beta"] = float(gate[1]), float(gate[2])
        if reverse:  # Keras go_backwards: runs over the steps last to first, outputs in that order
            if direction != "forward":
                raise Unsupported(f"layer '{name}': go_backwards inside a bidirectional layer is not converted")
            attrs["reverse"] = True
        if direction == "bidirectional":
            if merge not in MERGES and merge != SPLIT:
                raise Unsupported(f"layer '{name}': merge_mode={merge!r} not converted")
            attrs["merge"] = merge
        elif merge == SPLIT:
            raise Unsupported(f"layer '{name}': merge_mode=None needs two directions")
        if self.cell.op == "gru":
            attrs["linear_before_reset"] = bool(linear_before_reset)
        return Node(self.name, name, list(inputs), list(outputs), params, attrs)

    def state_count(self, direction: str) -> int:
        """States per layer call: h (and an LSTM's c) per direction."""
        return len(DIRECTIONS[direction]) * (2 if self.cell.op == "lstm" else 1)

    def _directions(self, node) -> int:
        return len(DIRECTIONS[node.attrs["direction"]])

    @staticmethod
    def primaries(node) -> int:
        """The outputs before the states: the sequence or final state, or (merge_mode=None) one per direction."""
        return 2 if node.attrs.get("merge") == SPLIT else 1

    def output_shapes(self, node, input_shapes):
        shape = input_shapes[0]
        if shape is not None and len(shape) != 3:
            raise Unsupported(f"layer '{node.name}' ({self.name}): needs a (batch, time, features) input, found "
                              f"shape {tuple(shape)}")
        gates, hidden = len(self.cell.gates["torch"]), node.attrs["hidden"]
        for prefix in DIRECTIONS[node.attrs["direction"]]:
            expect_dim(node.name, f"{prefix}w_ih rows (gates x hidden)", gates * hidden, node.params[f"{prefix}w_ih"].shape[0])
            expect_dim(node.name, "input features", node.params[f"{prefix}w_ih"].shape[1], shape[2] if shape else None)
        batch = shape[0] if shape else None
        for index, state in enumerate(input_shapes[1:]):
            expect_dim(node.name, f"initial state {index + 1} width", hidden, state[-1] if state else None)
        primaries = self.primaries(node)
        states = [(batch, hidden)] * (len(node.outputs) - primaries)
        width = self._directions(node) * hidden if node.attrs.get("merge", "concat") == "concat" else hidden
        if node.attrs["returns"] == "final":
            return [(batch, width)] * primaries + states
        return [(shape[0], shape[1], width) if shape else None] * primaries + states

    def output_layouts(self, node, input_layouts, output_shapes):
        primaries = self.primaries(node)
        states = [views.VECTOR] * (len(node.outputs) - primaries)
        if node.attrs["returns"] == "final":
            return [views.VECTOR] * primaries + states
        return [input_layouts[0] or views.default(views.FEATURES_LAST, 3)] * primaries + states

    # -- params, per direction -------------------------------------------------
    def _reordered(self, params: dict, source: str, target: str, what: str) -> dict:
        order = self.cell.gates
        return {key: reorder_blocks(array, order[source], order[target], 0, f"{what} {key}")
                for key, array in params.items()}

    # -- Keras ------------------------------------------------------------------
    def keras_weight_names(self, config):
        return ["kernel", "recurrent_kernel"] + (["bias"] if config.get("use_bias", True) else [])

    def keras_blocker(self, config):
        problems = []
        if config.get("stateful"):
            problems.append("stateful=True")
        if config.get("time_major"):
            problems.append("time_major=True")
        problems += self._activation_problems(config)
        return ", ".join(problems) + " not converted" if problems else None

    def _activation_problems(self, config) -> list[str]:
        allowed = ("tanh", "relu") if self.cell.op == "rnn" else ("tanh",)
        problems = []
        if config.get("activation", "tanh") not in allowed:
            problems.append(f"activation={config.get('activation')!r}")
        if self.cell.op != "rnn" and config.get("recurrent_activation", "sigmoid") not in ONNX_GATES:
            problems.append(f"recurrent_activation={config.get('recurrent_activation')!r}")
        return problems

    def from_keras_weights(self, weights: dict, config: dict, prefix: str, layer: str) -> dict:
        """One direction's Keras weights (kernel, recurrent_kernel, bias) as IR params named with ``prefix``."""
        gates = len(self.cell.gates["keras"]) * int(config["units"])
        kernel, recurrent = weights["kernel"], weights["recurrent_kernel"]
        expect_dim(layer, "kernel columns (gates x units)", gates, kernel.shape[-1])
        params = {"w_ih": permute(kernel, "f G", "G f", what=f"layer '{layer}' kernel"),
                  "w_hh": permute(recurrent, "k G", "G k", what=f"layer '{layer}' recurrent_kernel")}
        if "bias" in weights:
            params.update(self._keras_bias(weights["bias"], config, gates, layer))
        params = self._reordered(params, "keras", "torch", f"layer '{layer}'")
        return {prefix + key: array for key, array in params.items()}

    def _keras_bias(self, bias, config, gates: int, layer: str) -> dict:
        split = self.cell.op == "gru" and config.get("reset_after", True)
        expected = (2, gates) if split else (gates,)
        if tuple(bias.shape) != expected:
            raise WeightMismatch(f"layer '{layer}': bias of shape {tuple(bias.shape)}, expected {expected}")
        if split:
            return {"b_ih": bias[0], "b_hh": bias[1]}
        return {"b_ih": bias, "b_hh": np.zeros_like(bias)}

    def from_keras(self, layer):
        config = layer.config
        params = self.from_keras_weights(layer.weights, config, "", layer.name)
        return [self.node(layer.name, layer.inputs, keras_outputs(layer, self.state_count("forward")), params,
                          **self.keras_attrs(config, layer.keras_version))]

    def keras_attrs(self, config, keras_version: str) -> dict:
        gate = config.get("recurrent_activation", "sigmoid")
        return {"returns": "sequence" if config.get("return_sequences") else "final",
                "states": bool(config.get("return_state")),
                "activation": config.get("activation", "tanh"), "reverse": bool(config.get("go_backwards")),
                "linear_before_reset": config.get("reset_after", True),
                "gate": (gate, *KERAS_HARD_SIGMOID["2" if keras_version.startswith("2") else "3"])
                if gate == "hard_sigmoid" else (gate,)}

    def keras_config(self, node) -> dict:
        config = {"units": node.attrs["hidden"], "return_sequences": node.attrs["returns"] == "sequence",
                  "return_state": node.attrs.get("states", False),
                  "use_bias": "b_ih" in node.params, "activation": node.attrs["activation"],
                  "go_backwards": node.attrs.get("reverse", False)}
        if self.cell.op != "rnn":
            config["recurrent_activation"] = self._keras_gate(node)
        if self.cell.op == "gru":
            config["reset_after"] = node.attrs["linear_before_reset"]
        return config

    @staticmethod
    def _keras_gate(node) -> str:
        if node.attrs["gate"] == "sigmoid":
            return "sigmoid"
        if np.allclose((node.attrs["gate_alpha"], node.attrs["gate_beta"]), KERAS_HARD_SIGMOID["3"]):
            return "hard_sigmoid"
        raise Unsupported(f"layer '{node.name}': gates with a hard_sigmoid of slope {node.attrs['gate_alpha']:g}; Keras "
                          "3's hard_sigmoid is x/6 + 0.5 (Keras 2's was 0.2x + 0.5), so no Keras 3 layer computes it")

    def to_keras_weights(self, node, prefix: str) -> list:
        params = {key: node.params[prefix + key] for key in PARAMS if prefix + key in node.params}
        params = self._reordered(params, "torch", "keras", f"layer '{node.name}'")
        weights = [permute(params["w_ih"], "G f", "f G"), permute(params["w_hh"], "G k", "k G")]
        if "b_ih" in params:
            split = self.cell.op == "gru" and node.attrs["linear_before_reset"]
            weights.append(np.stack([params["b_ih"], params["b_hh"]]) if split else params["b_ih"] + params["b_hh"])
        return weights

    def to_keras(self, node, graph):
        config = self.keras_config(node)
        initial = {"initial_state": list(range(1, len(node.inputs)))} if len(node.inputs) > 1 else None
        if node.attrs["direction"] == "forward":
            return KerasSpec(self.cell.keras, config, self.to_keras_weights(node, ""), call_keywords=initial)
        weights = self.to_keras_weights(node, "") + self.to_keras_weights(node, "reverse_")
        merge = None if node.attrs["merge"] == SPLIT else node.attrs["merge"]
        return KerasSpec("Bidirectional", {"layer": KerasSpec(self.cell.keras, config), "merge_mode": merge},
                         weights, call_keywords=initial)

    # -- torch ------------------------------------------------------------------
    def torch_helper(self, node):
        """torch's layers have sigmoid gates, and its GRU resets after the recurrent matmul; anything else is written
        out step by step (``adapters/torch/cells.py``)."""
        explicit = node.attrs.get("gate", "sigmoid") != "sigmoid" or \
            self.cell.op == "gru" and not node.attrs["linear_before_reset"]
        return "ExplicitRecurrent" if explicit else None

    def torch_module(self, node, graph):
        features = int(node.params["w_ih"].shape[1])
        bidirectional = node.attrs["direction"] == "bidirectional"
        if self.torch_helper(node):
            options = [literal(self.cell.op), str(features), str(node.attrs["hidden"])]
            options += ["bias=False"] if "b_ih" not in node.params else []
            options += ["bidirectional=True"] if bidirectional else []
            if node.attrs["gate"] == "hard_sigmoid":
                options += [f"gate_alpha={literal(node.attrs['gate_alpha'])}",
                            f"gate_beta={literal(node.attrs['gate_beta'])}"]
            if self.cell.op == "gru" and not node.attrs["linear_before_reset"]:
                options.append("reset_after=False")
            return f"ExplicitRecurrent({', '.join(options)})"
        options = [str(features), str(node.attrs["hidden"]), "batch_first=True"]
        if "b_ih" not in node.params:
            options.append("bias=False")
        if bidirectional:
            options.append("bidirectional=True")
        if node.attrs["activation"] != "tanh":
            options.append(f"nonlinearity={literal(node.attrs['activation'])}")
        return f"nn.{self.cell.torch}({', '.join(options)})"

    def torch_forward(self, node, graph, module, args):
        """The module call (with initial states stacked per direction, as torch takes them); for one output,
        that output taken from it, for several the call alone (``torch_unpack`` takes it apart)."""
        source = f"torch.flip({args[0]}, [1])" if node.attrs.get("reverse") else args[0]
        states = args[1:]
        if self.cell.op == "lstm" and states:  # Keras order h, c per direction -> torch's (h_0, c_0)
            states = [f"({self._stacked(states[0::2])}, {self._stacked(states[1::2])})"]
        elif states:
            states = [self._stacked(states)]
        call = f"{module}({', '.join([source] + states)})"
        return call if len(node.outputs) > 1 else self.torch_unpack(node, call)[0]

    @staticmethod
    def _stacked(states) -> str:
        return f"torch.stack([{', '.join(states)}])"  # (directions, N, H)

    def torch_unpack(self, node, result: str) -> list[str]:
        """Each output from the module's ``(out, h_n)`` or ``(out, (h_n, c_n))``: the sequence or final state, then
        the states in Keras' order (h, c per direction)."""
        hidden, merge = node.attrs["hidden"], node.attrs.get("merge", "concat")
        h_n = f"{result}[1][0]" if self.cell.op == "lstm" else f"{result}[1]"  # (directions, N, H)
        sequence = node.attrs["returns"] == "sequence"  # (N, T, D*H)
        if merge == SPLIT:  # each direction apart: its half of the features, or its final state
            first = [f"{result}[0][:, :, :{hidden}]", f"{result}[0][:, :, {hidden}:]"] if sequence else \
                [f"{h_n}[0]", f"{h_n}[1]"]
        elif sequence:
            first = [f"{result}[0]" + (f".unflatten(-1, (2, {hidden})).{MERGES[merge][0]}(-2)" if MERGES[merge] else "")]
        elif node.attrs["direction"] == "forward":
            first = [f"{h_n}[0]"]
        else:
            first = [f"{h_n}.{MERGES[merge][0]}(0)" if MERGES[merge] else
                     f"{h_n}.permute(1, 0, 2).reshape(-1, {2 * hidden})"]
        kinds = [h_n, f"{result}[1][1]"] if self.cell.op == "lstm" else [h_n]
        states = [f"{kind}[{direction}]" for direction in range(self._directions(node)) for kind in kinds]
        return first + states[:len(node.outputs) - len(first)]

    def param_axes(self, param):
        return self.params[param.removeprefix("reverse_")]

    def file_param_name(self, framework, param):
        name = super().file_param_name(framework, param.removeprefix("reverse_"))
        return f"{name} (backward)" if param.startswith("reverse_") else name

    def params_to(self, framework, node):
        """torch's state_dict entries; Keras and ONNX hold the gates of both directions and both biases in other
        tensors, which their writers build (``to_keras_weights``, ``to_onnx``), so nothing pairs one to one."""
        if framework != "torch":
            return {}
        named = {}
        for prefix in DIRECTIONS[node.attrs["direction"]]:
            suffix = "_reverse" if prefix else ""
            for key, torch_name in (("w_ih", "weight_ih_l0"), ("w_hh", "weight_hh_l0"), ("b_ih", "bias_ih_l0"),
                                    ("b_hh", "bias_hh_l0")):
                if prefix + key in node.params:
                    named[torch_name + suffix] = node.params[prefix + key]
        return named

    def from_torch(self, layer):
        module = layer.module
        self._refuse_torch_options(layer)
        directions = "bidirectional" if module.bidirectional else "forward"
        nodes, source = [], layer.inputs[0]
        for index in range(module.num_layers):
            params = {}
            for prefix in DIRECTIONS[directions]:
                suffix = f"_l{index}" + ("_reverse" if prefix else "")
                for key, torch_name in (("w_ih", "weight_ih"), ("w_hh", "weight_hh"), ("b_ih", "bias_ih"),
                                        ("b_hh", "bias_hh")):
                    if torch_name + suffix in layer.weights:
                        params[prefix + key] = layer.weights[torch_name + suffix]
            last = index == module.num_layers - 1
            name = layer.name if module.num_layers == 1 else f"{layer.name}.{index}"
            outputs = layer.outputs if last else [f"{layer.name}.{index}/out"]
            merge = layer.options.get("merge", "concat") if last else "concat"
            nodes.append(self.node(name, [source] + (layer.inputs[1:] if index == 0 else []), outputs, params,
                                   direction=directions,
                                   returns=layer.options.get("returns", "sequence") if last else "sequence",
                                   activation=getattr(module, "nonlinearity", "tanh"),
                                   states=len(outputs) > (1 if merge else 2), merge=merge,
                                   **_explicit_attrs(module)))
            source = outputs[0]
        return nodes

    def _refuse_torch_options(self, layer) -> None:
        module, problems = layer.module, []
        if not module.batch_first and not layer.options.get("time_major"):
            problems.append("batch_first=False (time-major input; wconv keeps the batch axis first)")
        if getattr(module, "proj_size", 0):
            problems.append(f"proj_size={module.proj_size}")
        if problems:
            raise Unsupported(f"layer '{layer.name}' ({self.cell.torch}): {', '.join(problems)} not converted")

    # -- ONNX -------------------------------------------------------------------
    def to_onnx(self, node, builder):
        """Transpose to time-major, the ONNX op, and back to batch-first (the final state: (N, D*H))."""
        name, hidden, directions = node.name, node.attrs["hidden"], self._directions(node)
        prefixes = DIRECTIONS[node.attrs["direction"]]

        def stacked(key):
            return np.stack([self._reordered({key: node.params[p + key]}, "torch", "onnx", f"layer '{name}'")[key]
                             for p in prefixes])

        inputs = [f"{name}/time_major", builder.initializer(f"{name}.W", stacked("w_ih")),
                  builder.initializer(f"{name}.R", stacked("w_hh"))]
        if "b_ih" in node.params:
            inputs.append(builder.initializer(f"{name}.B", np.concatenate([stacked("b_ih"), stacked("b_hh")], axis=1)))
        if len(node.inputs) > 1:  # initial_h (and initial_c): (D, N, H), after optional B and sequence_lens
            inputs += [""] * (5 - len(inputs)) + self._onnx_initial_states(node, builder)
        if node.attrs.get("reverse"):  # Keras go_backwards: the steps last to first, outputs in that order
            builder.node("Transpose", node.inputs[:1], [f"{name}/forward_in_time"], f"{name}/to_time_major", perm=[1, 0, 2])
            steps = [builder.initializer(f"{name}.{key}", np.array([value], np.int64))
                     for key, value in (("start", -1), ("end", np.iinfo(np.int64).min), ("axis", 0), ("step", -1))]
            builder.node("Slice", [f"{name}/forward_in_time", *steps], inputs[:1], f"{name}/backwards_in_time")
        else:
            builder.node("Transpose", node.inputs[:1], inputs[:1], f"{name}/to_time_major", perm=[1, 0, 2])
        attrs = {"hidden_size": hidden, "direction": node.attrs["direction"]}
        if self.cell.op == "gru":
            attrs["linear_before_reset"] = int(node.attrs["linear_before_reset"])
        attrs.update(self._onnx_activations(node, directions))
        sequence, final = f"{name}/Y", f"{name}/Y_h"
        results = [sequence, final] + ([f"{name}/Y_c"] if self.cell.op == "lstm" and
                                       len(node.outputs) > self.primaries(node) else [])
        builder.node(self.cell.onnx, inputs, results, name, **attrs)
        self._onnx_final_states(node, builder, results[1:])
        if node.attrs.get("merge") == SPLIT:
            self._onnx_apart(node, builder, sequence, final)
            return
        merge = MERGES[node.attrs.get("merge", "concat")]
        if merge:  # combine the directions: Y (T, 2, N, H) over axis 1, Y_h (2, N, H) over axis 0
            axis = 1 if node.attrs["returns"] == "sequence" else 0
            source = sequence if axis else final
            axes = builder.initializer(f"{name}.directions", np.array([axis], np.int64))
            builder.node(merge[1], [source, axes], [f"{source}/merged"], f"{name}/merge_directions_{merge[0]}",
                         keepdims=1)
            sequence, final, directions = f"{sequence}/merged", f"{final}/merged", 1
        if node.attrs["returns"] == "sequence":  # Y: (T, D, N, H) -> (N, T, D, H) -> (N, T, D*H)
            builder.node("Transpose", [sequence], [f"{name}/batch_first"], f"{name}/to_batch_first", perm=[2, 0, 1, 3])
            shape = builder.initializer(f"{name}.shape", np.array([0, 0, directions * hidden], np.int64))
            builder.node("Reshape", [f"{name}/batch_first", shape], node.outputs[:1], f"{name}/merge_directions")
        else:  # Y_h: (D, N, H) -> (N, D, H) -> (N, D*H)
            builder.node("Transpose", [final], [f"{name}/batch_first"], f"{name}/to_batch_first", perm=[1, 0, 2])
            shape = builder.initializer(f"{name}.shape", np.array([0, directions * hidden], np.int64))
            builder.node("Reshape", [f"{name}/batch_first", shape], node.outputs[:1], f"{name}/merge_directions")

    def _onnx_initial_states(self, node, builder) -> list[str]:
        """ONNX's initial_h (and initial_c), (D, N, H), stacked from the IR's (N, H) states (Keras order)."""
        kinds = ("h", "c") if self.cell.op == "lstm" else ("h",)
        axis = builder.initializer(f"{node.name}.state_axis", np.array([0], np.int64))
        stacked = []
        for offset, kind in enumerate(kinds):
            states = node.inputs[1 + offset::len(kinds)]
            for state in states:
                builder.node("Unsqueeze", [state, axis], [f"{node.name}/{state}/initial"], f"{node.name}/{state}/unsqueeze")
            builder.node("Concat", [f"{node.name}/{state}/initial" for state in states], [f"{node.name}/initial_{kind}"],
                         f"{node.name}/initial_{kind}", axis=0)
            stacked.append(f"{node.name}/initial_{kind}")
        return stacked

    def _onnx_apart(self, node, builder, sequence: str, final: str) -> None:
        """merge_mode=None: each direction's output apart, Gather of Y (axis 1) then batch-first, or of Y_h."""
        name = node.name
        for direction, output in enumerate(node.outputs[:2]):
            at = builder.initializer(f"{name}.output_direction{direction}", np.array(direction, np.int64))
            if node.attrs["returns"] == "sequence":  # Y (T, 2, N, H) -> (T, N, H) -> (N, T, H)
                builder.node("Gather", [sequence, at], [f"{name}/Y{direction}"], f"{name}/Y{direction}", axis=1)
                builder.node("Transpose", [f"{name}/Y{direction}"], [output], f"{name}/to_batch_first{direction}",
                             perm=[1, 0, 2])
            else:
                builder.node("Gather", [final, at], [output], f"{name}/Y_h{direction}", axis=0)

    def _onnx_final_states(self, node, builder, results: list[str]) -> None:
        """The IR's final states (Keras order: h, c per direction) from ONNX's Y_h (and Y_c), (D, N, H)."""
        primaries = self.primaries(node)
        if len(node.outputs) == primaries:
            return
        kinds = results[:2 if self.cell.op == "lstm" else 1]
        at = [builder.initializer(f"{node.name}.direction{direction}", np.array(direction, np.int64))
              for direction in range(self._directions(node))]
        for index, output in enumerate(node.outputs[primaries:]):
            direction, kind = divmod(index, len(kinds))
            builder.node("Gather", [kinds[kind], at[direction]], [output], f"{node.name}/state{index}", axis=0)

    def _onnx_activations(self, node, directions: int) -> dict:
        """ONNX's activations attribute (per direction: f, g[, h]) where it is not the default; HardSigmoid's
        alpha and beta, one per HardSigmoid in order (as onnxruntime consumes them)."""
        gate = node.attrs.get("gate", "sigmoid")
        if self.cell.op == "rnn":
            return {"activations": [node.attrs["activation"].capitalize()] * directions} \
                if node.attrs["activation"] != "tanh" else {}
        if gate == "sigmoid":
            return {}
        functions = [ONNX_GATES[gate], "Tanh"] + (["Tanh"] if self.cell.op == "lstm" else [])
        return {"activations": functions * directions, "activation_alpha": [node.attrs["gate_alpha"]] * directions,
                "activation_beta": [node.attrs["gate_beta"]] * directions}

    def from_onnx(self, onnx_node, context):
        """An ONNX recurrent op the batch-first rule did not lift (adapters/onnx/recurrent_pass.py): refused."""
        raise Unsupported(f"{onnx_node.op_type} '{context.name(onnx_node)}': only the batch-first form exporters write "
                          "(time-major transposes around it, zero initial states, one output used) converts")

    def from_onnx_record(self, onnx_node, record, context):
        """The IR node for an ONNX recurrent op in batch-first form: ``record`` (recurrent_pass.BatchFirst) says what
        it reads and gives; ``context`` reads its attributes and weights."""
        name, attrs = context.name(onnx_node), context.attrs(onnx_node)
        problems = [f"{key}={attrs[key]}" for key in ("clip", "input_forget") if attrs.get(key)]
        if any(len(onnx_node.input) > index and onnx_node.input[index] for index in (4, 7)):
            problems.append("sequence lengths or peepholes")
        activation, gate = self._onnx_activation(attrs, problems)
        if problems:
            raise Unsupported(f"{onnx_node.op_type} '{name}': {', '.join(problems)} not converted")
        direction = attrs.get("direction", "forward")
        params = self._onnx_params(onnx_node, context, DIRECTIONS[direction], name)
        states = [state or f"{name}/unused_state{index}" for index, state in enumerate(record.states)]
        primaries = record.split or [record.output]
        return [self.node(name, [record.input] + record.initial, primaries + states, params, direction=direction,
                          returns=record.returns, activation=activation, states=bool(states),
                          merge=None if record.split else "concat",
                          linear_before_reset=attrs.get("linear_before_reset", 0), gate=gate)]

    def _onnx_activation(self, attrs, problems) -> tuple:
        """(the cell activation, the gate activation) from ONNX's activations, alphas and betas."""
        defaults = {"rnn": ["Tanh"], "lstm": ["Sigmoid", "Tanh", "Tanh"], "gru": ["Sigmoid", "Tanh"]}[self.cell.op]
        found = attrs.get("activations") or []
        directions = len(DIRECTIONS[attrs.get("direction", "forward")])
        alphas, betas = attrs.get("activation_alpha") or [], attrs.get("activation_beta") or []
        if self.cell.op == "rnn" and found in (["Relu"] * directions,) and not alphas:
            return "relu", ("sigmoid",)
        hard = ["HardSigmoid", *defaults[1:]] * directions
        if found == hard and len(set(alphas)) <= 1 and len(set(betas)) <= 1:
            return "tanh", ("hard_sigmoid", alphas[0] if alphas else 0.2, betas[0] if betas else 0.5)
        if found and found != defaults * directions or alphas or betas:
            problems.append(f"activations={found} (alpha {alphas}, beta {betas})")
        return "tanh", ("sigmoid",)

    def _onnx_params(self, onnx_node, context, prefixes, name) -> dict:
        w, r = context.weight(onnx_node, 1), context.weight(onnx_node, 2)
        has_bias = len(onnx_node.input) > 3 and onnx_node.input[3]
        b = context.weight(onnx_node, 3) if has_bias else None
        if w.shape[0] != len(prefixes) or r.shape[0] != len(prefixes) or b is not None and b.shape[0] != len(prefixes):
            raise WeightMismatch(f"{onnx_node.op_type} '{name}': W {w.shape}, R {r.shape} do not have "
                                 f"{len(prefixes)} direction(s)")
        params = {}
        for index, prefix in enumerate(prefixes):
            found = {"w_ih": w[index], "w_hh": r[index]}
            if b is not None:
                found["b_ih"], found["b_hh"] = np.split(b[index], 2)
            found = self._reordered(found, "onnx", "torch", f"{onnx_node.op_type} '{name}'")
            params.update({prefix + key: array for key, array in found.items()})
        return params


def keras_outputs(layer, states: int) -> list[str]:
    """A Keras recurrent layer's output tensors: ``name`` (and ``name:1``, the backward direction's, for a
    Bidirectional with merge_mode=None), then with return_state its states ``name:k``, ..."""
    bidirectional = layer.class_name == "Bidirectional"
    config = layer.config.get("layer", {}).get("config", layer.config) if bidirectional else layer.config
    primaries = 2 if bidirectional and layer.config.get("merge_mode", "concat") is None else 1
    count = primaries + (states if config.get("return_state") else 0)
    return [layer.outputs[0]] + [f"{layer.outputs[0]}:{index}" for index in range(1, count)]


def _explicit_attrs(module) -> dict:
    """What a generated module's ``ExplicitRecurrent`` computes beyond torch's layers (nothing for nn.LSTM/GRU)."""
    if type(module).__name__ != "ExplicitRecurrent":
        return {}
    gate = ("sigmoid",) if module.gate_alpha is None else ("hard_sigmoid", module.gate_alpha, module.gate_beta)
    return {"gate": gate, "linear_before_reset": module.reset_after}


def read_explicit(layer):
    """A generated module's ``ExplicitRecurrent``, read only when its class is exactly wconv's text."""
    from ..adapters.torch.cells import is_helper_class  # not above: the adapters import this op table

    module = layer.module
    if not is_helper_class(type(module)) or module.cell not in ("lstm", "gru"):
        raise Unsupported(f"layer '{layer.name}' (ExplicitRecurrent): not the class wconv generates, so what it "
                          "computes is unknown")
    return RECURRENT[module.cell].from_torch(layer)


RECURRENT = {cell.op: register_op(Recurrent(cell)) for cell in CELLS}
for _op in RECURRENT.values():
    register_keras(_op.cell.keras, _op)
    register_torch_module(_op.cell.torch, _op.from_torch)
    register_onnx(_op.cell.onnx, _op.from_onnx)
register_torch_module("ExplicitRecurrent", read_explicit)

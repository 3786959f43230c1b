"""The snnc ONNX dialect's custom ops, as model-local ONNX functions (see docs/onnx-dialect.md).

Every activity tensor is ``float32`` ``(N, *shape, T)``: batch first, time last.

- ``snnc.CubaLIF(x, bias) -> s``: CUBA leaky integrate-and-fire neurons, integer dynamics
  (state in units of 1/state_scale, 12-bit decays), a ``Scan`` over the time axis.
- ``snnc.RecurrentCubaLIF(x, W_rec, bias) -> s``: the same neurons whose input at step t
  also gets ``W_rec @ s[t-1]`` (a recurrent dense synapse through a one-step delay).
- ``snnc.CubaLI(x, bias) -> v``: a non-spiking leaky-integrator read-out (CUBA u and v, no
  threshold, no reset); the output is the membrane ``v`` (in units of the input), real-valued.
- ``snnc.Delay(x, steps) -> y``: ``y[..., t] = x[..., t - steps]`` (0 before the start).
- ``snnc.GradedInput(x) -> y`` (attribute ``frac_bits``): ``y = round(x * 2**k) / 2**k``, half
  to even: declares a graph input as graded (analog) values on the grid ``2**-k``.
- ``snnc.GradedDense(W, x) -> y`` (attributes ``unit``, ``grid``): ``MatMul(W, x)`` computed in
  float64 and floored to whole multiples of ``unit`` (a Loihi activation unit, ``64 / S`` of
  the threshold): a Dense synapse reading graded spikes, as Loihi computes it.

The Scan bodies compute in float64 so that every integer of the dynamics (e.g.
``u * (4096 - Du)``, beyond 2^24) is exact; spikes are cast back to float32.
"""
from __future__ import annotations

from onnx import AttributeProto, FunctionProto, TensorProto, helper

DOMAIN = "snnc"
DOMAIN_VERSION = 1
OPSET = 17
IR_VERSION = 10
DIALECT_VERSION = "1"

CUBA_LIF = "CubaLIF"
RECURRENT_CUBA_LIF = "RecurrentCubaLIF"
DELAY = "Delay"
GRADED_INPUT = "GradedInput"
GRADED_DENSE = "GradedDense"
CUBA_LI = "CubaLI"
ML_DOMAIN, ML_OPSET = "ai.onnx.ml", 3      # LabelEncoder: the general body reads ``reset`` (a string)

CUBA_ATTRIBUTES = ("current_decay", "voltage_decay", "threshold", "state_scale",
                   "reset", "refractory", "spike_compare", "graded", "reset_delay")
LI_ATTRIBUTES = ("current_decay", "voltage_decay", "state_scale")
RESET_CODES = {"zero": 0, "subtract": 1, "none": 2, "subtract_snntorch": 3}

_D = TensorProto.DOUBLE
_F = TensorProto.FLOAT


def _ref_constant(out: str, attr_type: str, ref: str):
    """``Constant`` whose value is the function attribute ``ref`` (FLOAT or INT)."""
    node = helper.make_node("Constant", [], [out])
    a = AttributeProto()
    a.name = "value_float" if attr_type == "float" else "value_int"
    a.ref_attr_name = ref
    a.type = AttributeProto.FLOAT if attr_type == "float" else AttributeProto.INT
    node.attribute.append(a)
    return node


def _const(out: str, value, dtype=_D):
    return helper.make_node("Constant", [], [out],
                            value=helper.make_tensor(out, dtype, [], [value]))


def _rtz_div(nodes, y: str, k: str, out: str):
    """out = sign(y) * floor(|y| / k)  (division rounded toward zero)."""
    nodes += [helper.make_node("Abs", [y], [out + "_abs"]),
              helper.make_node("Div", [out + "_abs", k], [out + "_q"]),
              helper.make_node("Floor", [out + "_q"], [out + "_fl"]),
              helper.make_node("Sign", [y], [out + "_sg"]),
              helper.make_node("Mul", [out + "_sg", out + "_fl"], [out])]


def _trunc(nodes, y: str, out: str):
    """out = trunc(y) = sign(y) * floor(|y|)."""
    nodes += [helper.make_node("Abs", [y], [out + "_abs"]),
              helper.make_node("Floor", [out + "_abs"], [out + "_fl"]),
              helper.make_node("Sign", [y], [out + "_sg"]),
              helper.make_node("Mul", [out + "_sg", out + "_fl"], [out])]


def _cuba_prologue():
    """Function-level nodes: attribute constants as float64 scalars used by the Scan body.

    Produces ``KU = 4096 - round(4096*current_decay)``, ``KV`` likewise, ``S`` (state scale),
    ``TH = S*threshold``, ``B = trunc(S*bias)`` (float64, shape of bias), ``P = 4096``.
    """
    n = [_ref_constant("cd_f", "float", "current_decay"),
         _ref_constant("vd_f", "float", "voltage_decay"),
         _ref_constant("th_f", "float", "threshold"),
         _ref_constant("S_i", "int", "state_scale"),
         _const("P", 4096.0)]
    for src, dst in (("cd_f", "KU"), ("vd_f", "KV")):
        n += [helper.make_node("Cast", [src], [dst + "_d"], to=_D),
              helper.make_node("Mul", [dst + "_d", "P"], [dst + "_s"]),
              helper.make_node("Round", [dst + "_s"], [dst + "_r"]),
              helper.make_node("Sub", ["P", dst + "_r"], [dst])]
    n += [helper.make_node("Cast", ["S_i"], ["S"], to=_D),
          helper.make_node("Cast", ["th_f"], ["th_d"], to=_D),
          helper.make_node("Mul", ["S", "th_d"], ["TH"]),
          helper.make_node("Cast", ["bias"], ["bias_d"], to=_D),
          helper.make_node("Mul", ["S", "bias_d"], ["Sb"])]
    _trunc(n, "Sb", "B")
    n += [helper.make_node("Shape", ["x"], ["lead_shape"], start=0, end=-1),
          helper.make_node("ConstantOfShape", ["lead_shape"], ["zeros_d"],
                           value=helper.make_tensor("z", _D, [1], [0.0]))]
    return n


def _cuba_step(nodes, x_in: str):
    """Scan-body nodes for one CUBA step on float64 input ``x_in`` (units of the input).

    Reads states ``u_prev``, ``v_prev``; writes ``u_next``, ``v_next`` and the bool ``spk``.
    """
    nodes.append(helper.make_node("Mul", [x_in, "S"], ["sx"]))
    _trunc(nodes, "sx", "z")
    nodes.append(helper.make_node("Mul", ["u_prev", "KU"], ["ud"]))
    _rtz_div(nodes, "ud", "P", "ur")
    nodes.append(helper.make_node("Add", ["ur", "z"], ["u_next"]))
    nodes.append(helper.make_node("Mul", ["v_prev", "KV"], ["vd"]))
    _rtz_div(nodes, "vd", "P", "vr")
    nodes += [helper.make_node("Add", ["vr", "u_next"], ["vu"]),
              helper.make_node("Add", ["vu", "B"], ["v_pre"]),
              helper.make_node("Greater", ["v_pre", "TH"], ["spk"]),
              _const("zero_d", 0.0),
              helper.make_node("Where", ["spk", "zero_d", "v_pre"], ["v_next"])]


def _vi(name, dtype):
    return helper.make_tensor_value_info(name, dtype, None)


def cuba_lif_function() -> FunctionProto:
    """``snnc.CubaLIF(x, bias) -> s`` (see module docstring and docs/onnx-dialect.md)."""
    body = [helper.make_node("Cast", ["x_t"], ["xd"], to=_D)]
    _cuba_step(body, "xd")
    body.append(helper.make_node("Cast", ["spk"], ["s_t"], to=_F))
    step = helper.make_graph(body, "cuba_lif_step",
                             [_vi("u_prev", _D), _vi("v_prev", _D), _vi("x_t", _F)],
                             [_vi("u_next", _D), _vi("v_next", _D), _vi("s_t", _F)])
    nodes = _cuba_prologue()
    nodes.append(helper.make_node("Scan", ["zeros_d", "zeros_d", "x"], ["u_end", "v_end", "s"],
                                  body=step, num_scan_inputs=1,
                                  scan_input_axes=[-1], scan_output_axes=[-1]))
    return helper.make_function(DOMAIN, CUBA_LIF, ["x", "bias"], ["s"], nodes,
                                [helper.make_opsetid("", OPSET)],
                                attributes=list(CUBA_ATTRIBUTES),
                                doc_string="CUBA LIF neurons, integer dynamics; time last.")


def recurrent_cuba_lif_function() -> FunctionProto:
    """``snnc.RecurrentCubaLIF(x, W_rec, bias) -> s``: input at step t is
    ``x[..., t] + W_rec @ s[..., t-1]`` (``s[-1] = 0``); ``x`` is ``(N, C, T)``, ``W_rec`` ``[C, C]``.
    """
    body = [helper.make_node("Cast", ["x_t"], ["xd"], to=_D),
            helper.make_node("MatMul", ["s_prev", "WrT"], ["fb"]),
            helper.make_node("Add", ["xd", "fb"], ["xin"])]
    _cuba_step(body, "xin")
    body += [helper.make_node("Cast", ["spk"], ["s_next"], to=_D),
             helper.make_node("Cast", ["spk"], ["s_t"], to=_F)]
    step = helper.make_graph(
        body, "recurrent_cuba_lif_step",
        [_vi("u_prev", _D), _vi("v_prev", _D), _vi("s_prev", _D), _vi("x_t", _F)],
        [_vi("u_next", _D), _vi("v_next", _D), _vi("s_next", _D), _vi("s_t", _F)])
    nodes = _cuba_prologue()
    nodes += [helper.make_node("Cast", ["W_rec"], ["Wr_d"], to=_D),
              helper.make_node("Transpose", ["Wr_d"], ["WrT"], perm=[1, 0]),
              helper.make_node("Scan", ["zeros_d", "zeros_d", "zeros_d", "x"],
                               ["u_end", "v_end", "s_end", "s"],
                               body=step, num_scan_inputs=1,
                               scan_input_axes=[-1], scan_output_axes=[-1])]
    return helper.make_function(DOMAIN, RECURRENT_CUBA_LIF, ["x", "W_rec", "bias"], ["s"], nodes,
                                [helper.make_opsetid("", OPSET)],
                                attributes=list(CUBA_ATTRIBUTES),
                                doc_string="Recurrent CUBA LIF: x[t] + W_rec @ s[t-1]; time last.")


def delay_function() -> FunctionProto:
    """``snnc.Delay(x, steps) -> y``, ``y[..., t] = x[..., t - steps]`` (zeros before the start).

    ``steps``: int64, >= 0, broadcastable to ``x.shape[1:-1]`` (a scalar for a uniform delay).
    Built as: prepend ``max(steps)`` zero steps, then ``GatherElements`` along time.
    """
    n = [helper.make_node("Shape", ["x"], ["shp"]),
         helper.make_node("Shape", ["x"], ["lead"], start=0, end=-1),
         helper.make_node("Shape", ["x"], ["T1"], start=-1),
         helper.make_node("Constant", [], ["minus1"],
                          value=helper.make_tensor("m1", TensorProto.INT64, [1], [-1])),
         helper.make_node("Reshape", ["steps", "minus1"], ["steps_flat"]),
         helper.make_node("ReduceMax", ["steps_flat"], ["maxd"], keepdims=1),
         helper.make_node("Concat", ["lead", "maxd"], ["pad_shape"], axis=0),
         helper.make_node("ConstantOfShape", ["pad_shape"], ["pad"],
                          value=helper.make_tensor("z", _F, [1], [0.0])),
         helper.make_node("Concat", ["pad", "x"], ["xp"], axis=-1),
         helper.make_node("Constant", [], ["zero_i"],
                          value=helper.make_tensor("z0", TensorProto.INT64, [], [0])),
         helper.make_node("Constant", [], ["one_i"],
                          value=helper.make_tensor("o1", TensorProto.INT64, [], [1])),
         helper.make_node("ReduceMax", ["T1"], ["T"], keepdims=0),
         helper.make_node("Range", ["zero_i", "T", "one_i"], ["t"]),
         helper.make_node("Unsqueeze", ["steps", "minus1"], ["steps_u"]),
         helper.make_node("Sub", ["maxd", "steps_u"], ["off"]),
         helper.make_node("Add", ["t", "off"], ["idx0"]),
         helper.make_node("Expand", ["idx0", "shp"], ["idx"]),
         helper.make_node("GatherElements", ["xp", "idx"], ["y"], axis=-1)]
    return helper.make_function(DOMAIN, DELAY, ["x", "steps"], ["y"], n,
                                [helper.make_opsetid("", OPSET)],
                                doc_string="y[..., t] = x[..., t - steps]; time last.")


def graded_input_function() -> FunctionProto:
    """``snnc.GradedInput(x) -> y``: ``y = Round(x * 2**frac_bits) / 2**frac_bits`` (ONNX
    ``Round``: half to even, as ``torch.round``). It reads a graph input directly and marks it
    graded (analog values sent as Loihi graded spikes; docs/onnx-dialect.md)."""
    n = [_ref_constant("k_i", "int", "frac_bits"),
         helper.make_node("Cast", ["k_i"], ["k_f"], to=_F),
         helper.make_node("Constant", [], ["two"], value=helper.make_tensor("two", _F, [], [2.0])),
         helper.make_node("Pow", ["two", "k_f"], ["scale"]),
         helper.make_node("Mul", ["x", "scale"], ["xs"]),
         helper.make_node("Round", ["xs"], ["xr"]),
         helper.make_node("Div", ["xr", "scale"], ["y"])]
    return helper.make_function(DOMAIN, GRADED_INPUT, ["x"], ["y"], n,
                                [helper.make_opsetid("", OPSET)], attributes=["frac_bits"],
                                doc_string="Graded input: round(x * 2**frac_bits) / 2**frac_bits.")


def graded_dense_function() -> FunctionProto:
    """``snnc.GradedDense(W, x) -> y``: ``y = floor(W @ x / unit) * unit`` with the product in
    float64 (exact for weights on Loihi's grid and inputs on the 2**-frac_bits grid) and
    ``W @ x / unit`` first rounded to the grid ``1/grid`` (a power of two finer than its exact
    resolution) so that float rounding cannot move the floor. ``unit`` = 64 / S (threshold units)."""
    n = [_ref_constant("unit_f", "float", "unit"),
         _ref_constant("grid_f", "float", "grid"),
         helper.make_node("Cast", ["unit_f"], ["unit"], to=_D),
         helper.make_node("Cast", ["grid_f"], ["grid"], to=_D),
         helper.make_node("Cast", ["W"], ["Wd"], to=_D),
         helper.make_node("Cast", ["x"], ["xd"], to=_D),
         helper.make_node("MatMul", ["Wd", "xd"], ["yd"]),
         helper.make_node("Div", ["yd", "unit"], ["z"]),
         helper.make_node("Mul", ["z", "grid"], ["zg"]),
         helper.make_node("Round", ["zg"], ["zr"]),
         helper.make_node("Div", ["zr", "grid"], ["zq"]),
         helper.make_node("Floor", ["zq"], ["zf"]),
         helper.make_node("Mul", ["zf", "unit"], ["yq"]),
         helper.make_node("Cast", ["yq"], ["y"], to=_F)]
    return helper.make_function(DOMAIN, GRADED_DENSE, ["W", "x"], ["y"], n,
                                [helper.make_opsetid("", OPSET)], attributes=["unit", "grid"],
                                doc_string="Dense synapse on graded spikes: floor(W @ x / unit) * unit.")


def cuba_attributes(current_decay: float, voltage_decay: float, threshold: float,
                    state_scale: int, reset: str = "zero", reset_delay: bool = False,
                    refractory: int = 0) -> dict:
    """Node attributes of ``snnc.CubaLIF`` / ``snnc.RecurrentCubaLIF`` as written by snnc (reset
    other than "zero" and refractory > 0 need the general bodies, ``GENERAL_FUNCTIONS``)."""
    return dict(current_decay=float(current_decay), voltage_decay=float(voltage_decay),
                threshold=float(threshold), state_scale=int(state_scale), reset=str(reset),
                refractory=int(refractory), spike_compare=">", graded=0, reset_delay=int(bool(reset_delay)))


def li_attributes(current_decay: float, voltage_decay: float, state_scale: int) -> dict:
    """Node attributes of ``snnc.CubaLI``."""
    return dict(current_decay=float(current_decay), voltage_decay=float(voltage_decay),
                state_scale=int(state_scale))


def model_opsets(functions) -> list:
    """The model's opset imports: the default domain, ``snnc``, and any other domain the shipped
    function bodies use (``ai.onnx.ml`` for the general CubaLIF bodies)."""
    out = {"": OPSET, DOMAIN: DOMAIN_VERSION}
    for f in functions:
        for op in f.opset_import:
            out.setdefault(op.domain, op.version)
    return [helper.make_opsetid(d, v) for d, v in out.items()]


FUNCTIONS = {CUBA_LIF: cuba_lif_function, RECURRENT_CUBA_LIF: recurrent_cuba_lif_function,
             DELAY: delay_function, GRADED_INPUT: graded_input_function,
             GRADED_DENSE: graded_dense_function}


# ----------------------------------------------------------------------------- general bodies
# Shipped (under the same op names) by models exported from ``snnc.nn``: a superset of the
# bodies above that also implements real-valued dynamics (state_scale 0) and a refractory
# period. For state_scale > 0, refractory 0 it computes exactly what the bodies above compute.
# reset: "zero", "subtract", "none" or "subtract_snntorch" with ``reset_delay`` 0/1 (ir.CubaLIF's rules; the string
# is mapped through ai.onnx.ml.LabelEncoder); spike_compare: '>' only.

def _general_attributes() -> dict:
    """``make_function`` arguments of the general bodies: ``reset_delay`` defaults to 0, so files
    written before it existed (no such node attribute) keep their meaning."""
    return dict(attributes=[a for a in CUBA_ATTRIBUTES if a != "reset_delay"],
                attribute_protos=[helper.make_attribute("reset_delay", 0)])


def _general_prologue():
    """Scalars: ``INT`` (bool, state_scale > 0), ``SX`` (S or 1), ``AU``/``AV`` (decay factors:
    (4096 - round(4096 d))/4096 or 1 - d), ``TH`` (SX*threshold), ``B`` (trunc(S*bias) or bias),
    ``R`` (refractory steps), ``zeros_d``."""
    n = [_ref_constant("cd_f", "float", "current_decay"),
         _ref_constant("vd_f", "float", "voltage_decay"),
         _ref_constant("th_f", "float", "threshold"),
         _ref_constant("S_i", "int", "state_scale"),
         _ref_constant("R_i", "int", "refractory"),
         _const("P", 4096.0), _const("one_d", 1.0), _const("zero_d0", 0.0)]
    n += [helper.make_node("Cast", ["S_i"], ["S"], to=_D),
          helper.make_node("Greater", ["S", "zero_d0"], ["INT"]),
          helper.make_node("Where", ["INT", "S", "one_d"], ["SX"]),
          helper.make_node("Cast", ["R_i"], ["R"], to=_D)]
    for src, dst in (("cd_f", "AU"), ("vd_f", "AV")):
        n += [helper.make_node("Cast", [src], [dst + "_d"], to=_D),
              helper.make_node("Mul", [dst + "_d", "P"], [dst + "_s"]),
              helper.make_node("Round", [dst + "_s"], [dst + "_r"]),
              helper.make_node("Sub", ["P", dst + "_r"], [dst + "_k"]),
              helper.make_node("Div", [dst + "_k", "P"], [dst + "_i"]),
              helper.make_node("Sub", ["one_d", dst + "_d"], [dst + "_f"]),
              helper.make_node("Where", ["INT", dst + "_i", dst + "_f"], [dst])]
    n += [helper.make_node("Cast", ["th_f"], ["th_d"], to=_D),
          helper.make_node("Mul", ["SX", "th_d"], ["TH"]),
          helper.make_node("Cast", ["bias"], ["bias_d"], to=_D),
          helper.make_node("Mul", ["SX", "bias_d"], ["Sb"])]
    _trunc(n, "Sb", "Sb_t")
    n += [helper.make_node("Where", ["INT", "Sb_t", "Sb"], ["B"])]
    n += _reset_prologue()
    n += [helper.make_node("Shape", ["x"], ["lead_shape"], start=0, end=-1),
          helper.make_node("ConstantOfShape", ["lead_shape"], ["zeros_d"],
                           value=helper.make_tensor("z", _D, [1], [0.0]))]
    return n


def _reset_prologue():
    """Bool scalars of the reset rule: ``RZERO`` (reset "zero"), ``RNOW`` ("subtract",
    immediate), ``RLATE`` ("subtract", ``reset_delay``: one step late); "none": all false.
    ``reset`` (a string) is mapped to an integer by ``ai.onnx.ml.LabelEncoder``."""
    rs = helper.make_node("Constant", [], ["reset_s"])
    a = AttributeProto()
    a.name, a.ref_attr_name, a.type = "value_string", "reset", AttributeProto.STRING
    rs.attribute.append(a)
    return [rs,
            helper.make_node("LabelEncoder", ["reset_s"], ["reset_i"], domain=ML_DOMAIN,
                             keys_strings=list(RESET_CODES), values_int64s=list(RESET_CODES.values()),
                             default_int64=-1),
            _ref_constant("RD_i", "int", "reset_delay"),
            helper.make_node("Constant", [], ["c0_i"], value=helper.make_tensor("c0", TensorProto.INT64, [], [0])),
            helper.make_node("Constant", [], ["c1_i"], value=helper.make_tensor("c1", TensorProto.INT64, [], [1])),
            helper.make_node("Equal", ["reset_i", "c0_i"], ["RZERO"]),
            helper.make_node("Equal", ["reset_i", "c1_i"], ["RSUB"]),
            helper.make_node("Greater", ["RD_i", "c0_i"], ["RDEL"]),
            helper.make_node("Not", ["RDEL"], ["RNDEL"]),
            helper.make_node("And", ["RSUB", "RDEL"], ["RLATE"]),
            helper.make_node("And", ["RSUB", "RNDEL"], ["RNOW0"]),
            helper.make_node("Constant", [], ["c3_i"], value=helper.make_tensor("c3", TensorProto.INT64, [], [3])),
            helper.make_node("Equal", ["reset_i", "c3_i"], ["RSNT"]),           # subtract_snntorch
            helper.make_node("Or", ["RNOW0", "RSNT"], ["RNOW"])]


def _general_step(nodes, x_in: str):
    """One step: states ``u_prev``, ``v_prev``, ``r_prev`` (refractory counter), ``s_prev``
    (last step's spikes, float64) -> ``u_next``, ``v_next``, ``r_next`` and the bool ``spk``."""
    nodes.append(helper.make_node("Mul", [x_in, "SX"], ["sx"]))
    _trunc(nodes, "sx", "sx_t")
    nodes.append(helper.make_node("Where", ["INT", "sx_t", "sx"], ["z"]))
    nodes.append(helper.make_node("Mul", ["u_prev", "AU"], ["ud"]))
    _trunc(nodes, "ud", "ud_t")
    nodes += [helper.make_node("Where", ["INT", "ud_t", "ud"], ["ur"]),
              helper.make_node("Add", ["ur", "z"], ["u_next"]),
              helper.make_node("Mul", ["v_prev", "AV"], ["vd"])]
    _trunc(nodes, "vd", "vd_t")
    nodes += [helper.make_node("Where", ["INT", "vd_t", "vd"], ["vr"]),
              helper.make_node("Add", ["vr", "u_next"], ["vu"]),
              helper.make_node("Add", ["vu", "B"], ["v_free0"]),
              helper.make_node("Mul", ["s_prev", "TH"], ["late_th"]),          # reset_delay: v -= TH s[t-1]
              helper.make_node("Sub", ["v_free0", "late_th"], ["v_late"]),
              helper.make_node("Where", ["RLATE", "v_late", "v_free0"], ["v_free"]),
              _const("zero_d", 0.0), _const("one_s", 1.0),
              helper.make_node("Greater", ["r_prev", "zero_d"], ["held"]),
              helper.make_node("Where", ["held", "zero_d", "v_free"], ["v_pre"]),
              helper.make_node("Sub", ["r_prev", "one_s"], ["r_dec0"]),
              helper.make_node("Max", ["r_dec0", "zero_d"], ["r_dec"]),
              helper.make_node("Greater", ["v_prev", "TH"], ["above"]),          # subtract_snntorch:
              helper.make_node("Cast", ["above"], ["above_d"], to=_D),           # test v - TH H(v_prev - TH)
              helper.make_node("Mul", ["above_d", "TH"], ["carry"]),
              helper.make_node("Sub", ["v_pre", "carry"], ["v_carry"]),
              helper.make_node("Where", ["RSNT", "v_carry", "v_pre"], ["v_test"]),
              helper.make_node("Greater", ["v_test", "TH"], ["spk"]),
              helper.make_node("Sub", ["v_pre", "TH"], ["v_sub"]),
              helper.make_node("Where", ["RNOW", "v_sub", "v_pre"], ["v_rs"]),
              helper.make_node("Where", ["RZERO", "zero_d", "v_rs"], ["v_reset"]),
              helper.make_node("Where", ["spk", "v_reset", "v_pre"], ["v_next"]),
              helper.make_node("Where", ["spk", "R", "r_dec"], ["r_next"])]


def cuba_lif_general_function() -> FunctionProto:
    """``snnc.CubaLIF`` body for snnc.nn exports: integer or real dynamics, refractory."""
    body = [helper.make_node("Cast", ["x_t"], ["xd"], to=_D)]
    _general_step(body, "xd")
    body += [helper.make_node("Cast", ["spk"], ["s_next"], to=_D),
             helper.make_node("Cast", ["spk"], ["s_t"], to=_F)]
    step = helper.make_graph(
        body, "cuba_lif_general_step",
        [_vi("u_prev", _D), _vi("v_prev", _D), _vi("r_prev", _D), _vi("s_prev", _D), _vi("x_t", _F)],
        [_vi("u_next", _D), _vi("v_next", _D), _vi("r_next", _D), _vi("s_next", _D), _vi("s_t", _F)])
    nodes = _general_prologue()
    nodes.append(helper.make_node("Scan", ["zeros_d", "zeros_d", "zeros_d", "zeros_d", "x"],
                                  ["u_end", "v_end", "r_end", "s_end", "s"], body=step, num_scan_inputs=1,
                                  scan_input_axes=[-1], scan_output_axes=[-1]))
    return helper.make_function(DOMAIN, CUBA_LIF, ["x", "bias"], ["s"], nodes,
                                [helper.make_opsetid("", OPSET), helper.make_opsetid(ML_DOMAIN, ML_OPSET)],
                                **_general_attributes(),
                                doc_string="CUBA LIF neurons, integer (state_scale > 0) or real "
                                           "(state_scale 0) dynamics, refractory steps; time last.")


def recurrent_cuba_lif_general_function() -> FunctionProto:
    """``snnc.RecurrentCubaLIF`` body for snnc.nn exports (see ``cuba_lif_general_function``)."""
    body = [helper.make_node("Cast", ["x_t"], ["xd"], to=_D),
            helper.make_node("MatMul", ["s_prev", "WrT"], ["fb"]),
            helper.make_node("Add", ["xd", "fb"], ["xin"])]
    _general_step(body, "xin")
    body += [helper.make_node("Cast", ["spk"], ["s_next"], to=_D),
             helper.make_node("Cast", ["spk"], ["s_t"], to=_F)]
    step = helper.make_graph(
        body, "recurrent_cuba_lif_general_step",
        [_vi("u_prev", _D), _vi("v_prev", _D), _vi("r_prev", _D), _vi("s_prev", _D), _vi("x_t", _F)],
        [_vi("u_next", _D), _vi("v_next", _D), _vi("r_next", _D), _vi("s_next", _D), _vi("s_t", _F)])
    nodes = _general_prologue()
    nodes += [helper.make_node("Cast", ["W_rec"], ["Wr_d"], to=_D),
              helper.make_node("Transpose", ["Wr_d"], ["WrT"], perm=[1, 0]),
              helper.make_node("Scan", ["zeros_d", "zeros_d", "zeros_d", "zeros_d", "x"],
                               ["u_end", "v_end", "r_end", "s_end", "s"],
                               body=step, num_scan_inputs=1,
                               scan_input_axes=[-1], scan_output_axes=[-1])]
    return helper.make_function(DOMAIN, RECURRENT_CUBA_LIF, ["x", "W_rec", "bias"], ["s"], nodes,
                                [helper.make_opsetid("", OPSET), helper.make_opsetid(ML_DOMAIN, ML_OPSET)],
                                **_general_attributes(),
                                doc_string="Recurrent CUBA LIF (general body): x[t] + W_rec @ s[t-1].")


GENERAL_FUNCTIONS = {CUBA_LIF: cuba_lif_general_function,
                     RECURRENT_CUBA_LIF: recurrent_cuba_lif_general_function}


# ----------------------------------------------------------------------------- leaky integrator
def cuba_li_function() -> FunctionProto:
    """``snnc.CubaLI(x, bias) -> v``: u and v as the general CubaLIF body (integer dynamics for
    state_scale S > 0, real-valued for 0), no threshold, no reset; ``v`` (divided by S for integer
    dynamics: in units of the input) is the output, float32."""
    n = [_ref_constant("cd_f", "float", "current_decay"),
         _ref_constant("vd_f", "float", "voltage_decay"),
         _ref_constant("S_i", "int", "state_scale"),
         _const("P", 4096.0), _const("one_d", 1.0), _const("zero_d0", 0.0),
         helper.make_node("Cast", ["S_i"], ["S"], to=_D),
         helper.make_node("Greater", ["S", "zero_d0"], ["INT"]),
         helper.make_node("Where", ["INT", "S", "one_d"], ["SX"])]
    for src, dst in (("cd_f", "AU"), ("vd_f", "AV")):
        n += [helper.make_node("Cast", [src], [dst + "_d"], to=_D),
              helper.make_node("Mul", [dst + "_d", "P"], [dst + "_s"]),
              helper.make_node("Round", [dst + "_s"], [dst + "_r"]),
              helper.make_node("Sub", ["P", dst + "_r"], [dst + "_k"]),
              helper.make_node("Div", [dst + "_k", "P"], [dst + "_i"]),
              helper.make_node("Sub", ["one_d", dst + "_d"], [dst + "_f"]),
              helper.make_node("Where", ["INT", dst + "_i", dst + "_f"], [dst])]
    n += [helper.make_node("Cast", ["bias"], ["bias_d"], to=_D),
          helper.make_node("Mul", ["SX", "bias_d"], ["Sb"])]
    _trunc(n, "Sb", "Sb_t")
    n += [helper.make_node("Where", ["INT", "Sb_t", "Sb"], ["B"]),
          helper.make_node("Shape", ["x"], ["lead_shape"], start=0, end=-1),
          helper.make_node("ConstantOfShape", ["lead_shape"], ["zeros_d"],
                           value=helper.make_tensor("z", _D, [1], [0.0]))]
    body = [helper.make_node("Cast", ["x_t"], ["xd"], to=_D),
            helper.make_node("Mul", ["xd", "SX"], ["sx"])]
    _trunc(body, "sx", "sx_t")
    body += [helper.make_node("Where", ["INT", "sx_t", "sx"], ["z"]),
             helper.make_node("Mul", ["u_prev", "AU"], ["ud"])]
    _trunc(body, "ud", "ud_t")
    body += [helper.make_node("Where", ["INT", "ud_t", "ud"], ["ur"]),
             helper.make_node("Add", ["ur", "z"], ["u_next"]),
             helper.make_node("Mul", ["v_prev", "AV"], ["vd"])]
    _trunc(body, "vd", "vd_t")
    body += [helper.make_node("Where", ["INT", "vd_t", "vd"], ["vr"]),
             helper.make_node("Add", ["vr", "u_next"], ["vu"]),
             helper.make_node("Add", ["vu", "B"], ["v_next"]),
             helper.make_node("Div", ["v_next", "SX"], ["v_val"]),
             helper.make_node("Cast", ["v_val"], ["v_t"], to=_F)]
    step = helper.make_graph(body, "cuba_li_step",
                             [_vi("u_prev", _D), _vi("v_prev", _D), _vi("x_t", _F)],
                             [_vi("u_next", _D), _vi("v_next", _D), _vi("v_t", _F)])
    n.append(helper.make_node("Scan", ["zeros_d", "zeros_d", "x"], ["u_end", "v_end", "v"], body=step,
                              num_scan_inputs=1, scan_input_axes=[-1], scan_output_axes=[-1]))
    return helper.make_function(DOMAIN, CUBA_LI, ["x", "bias"], ["v"], n,
                                [helper.make_opsetid("", OPSET)], attributes=list(LI_ATTRIBUTES),
                                doc_string="Leaky-integrator read-out: CUBA u, v; output v; time last.")


FUNCTIONS[CUBA_LI] = cuba_li_function
GENERAL_FUNCTIONS[CUBA_LI] = cuba_li_function


# ----------------------------------------------------------------------------- sigma-delta
# ``snnc.Delta(x, threshold)``, ``snnc.SigmaDelta(x, threshold, bias)``, ``snnc.Sigma(x)``: the
# IR's Delta / SigmaDelta / Sigma in the fixed-point units of Lava's ``lava.proc.sdn`` (as the
# CubaLIF body computes integer dynamics): state in units of 1/S (S = ``state_scale``), messages
# floored to units of 1/(S >> state_exp) (Lava sends ``s >> state_exp``). Every value is a float64
# on those grids, so the bodies are exact. A SigmaDelta/Sigma rounds its float32 input (a MatMul or
# Conv of messages) to the state grid 1/S first, so float32 rounding of the synapse below half a
# unit cannot change a result. ``cumulative_error``, ``relu``: int attributes (0/1).
DELTA = "Delta"
SIGMA_DELTA = "SigmaDelta"
SIGMA = "Sigma"
SD_ATTRIBUTES = ("cumulative_error", "state_scale", "spike_exp", "state_exp")


def sd_attributes(cumulative_error: bool, state_scale: int, spike_exp: int = 6, state_exp: int = 6) -> dict:
    """Node attributes of ``snnc.Delta`` (``snnc.SigmaDelta`` adds ``relu``)."""
    return dict(cumulative_error=int(bool(cumulative_error)), state_scale=int(state_scale),
                spike_exp=int(spike_exp), state_exp=int(state_exp))


def _sd_prologue():
    """Scalars ``S`` (state units per 1.0), ``M`` (message units per 1.0), ``CUM`` (bool), ``TH``
    (float64 threshold, its input's shape) and ``zeros_d`` (state of shape x without time)."""
    n = [_ref_constant("S_i", "int", "state_scale"),
         _ref_constant("st_i", "int", "state_exp"),
         _ref_constant("cum_i", "int", "cumulative_error"),
         helper.make_node("Constant", [], ["c0_i"], value=helper.make_tensor("c0", TensorProto.INT64, [], [0])),
         helper.make_node("Greater", ["cum_i", "c0_i"], ["CUM"]),
         helper.make_node("Cast", ["S_i"], ["S"], to=_D),
         helper.make_node("Cast", ["st_i"], ["st_d"], to=_D),
         _const("two_d", 2.0),
         helper.make_node("Pow", ["two_d", "st_d"], ["ST"]),
         helper.make_node("Div", ["S", "ST"], ["M_q"]),
         helper.make_node("Floor", ["M_q"], ["M"]),
         helper.make_node("Cast", ["threshold"], ["TH"], to=_D),
         helper.make_node("Shape", ["x"], ["lead_shape"], start=0, end=-1),
         helper.make_node("ConstantOfShape", ["lead_shape"], ["zeros_d"],
                          value=helper.make_tensor("z", _D, [1], [0.0]))]
    return n


def _sd_send(body, act: str):
    """Delta step on activation ``act``: reads ``act_prev``, ``res_prev``, ``err_prev``; writes
    ``act_next``, ``res_next``, ``err_next`` and the float32 message ``s_t``."""
    body += [helper.make_node("Sub", [act, "act_prev"], ["d0"]),
             helper.make_node("Add", ["d0", "res_prev"], ["delta"]),
             helper.make_node("Add", ["err_prev", "delta"], ["err0"]),
             helper.make_node("Abs", ["err0"], ["err_abs"]),
             helper.make_node("Abs", ["delta"], ["delta_abs"]),
             helper.make_node("Where", ["CUM", "err_abs", "delta_abs"], ["test_v"]),
             helper.make_node("Less", ["test_v", "TH"], ["below"]),
             helper.make_node("Not", ["below"], ["send"]),
             _const("zero_d", 0.0),
             helper.make_node("Where", ["send", "delta", "zero_d"], ["s_full"]),
             helper.make_node("Sub", ["delta", "s_full"], ["res_next"]),
             helper.make_node("Abs", ["s_full"], ["s_abs"]),
             helper.make_node("Greater", ["s_abs", "zero_d"], ["sent"]),
             helper.make_node("Where", ["sent", "zero_d", "err0"], ["err_c"]),
             helper.make_node("Where", ["CUM", "err_c", "zero_d"], ["err_next"]),
             helper.make_node("Identity", [act], ["act_next"]),
             helper.make_node("Mul", ["s_full", "M"], ["s_m"]),
             helper.make_node("Floor", ["s_m"], ["s_f"]),
             helper.make_node("Div", ["s_f", "M"], ["s_q"]),
             helper.make_node("Cast", ["s_q"], ["s_t"], to=_F)]


def _on_grid(body, x: str, out: str):
    """``out = round(x * S) / S`` (float64): the input on the state grid."""
    body += [helper.make_node("Mul", [x, "S"], [out + "_s"]),
             helper.make_node("Round", [out + "_s"], [out + "_r"]),
             helper.make_node("Div", [out + "_r", "S"], [out])]


def delta_function() -> FunctionProto:
    """``snnc.Delta(x, threshold) -> s``: delta encoder of a graph input (``ir.Delta``)."""
    body = [helper.make_node("Cast", ["x_t"], ["xd"], to=_D)]
    _sd_send(body, "xd")
    step = helper.make_graph(body, "delta_step",
                             [_vi("act_prev", _D), _vi("res_prev", _D), _vi("err_prev", _D), _vi("x_t", _F)],
                             [_vi("act_next", _D), _vi("res_next", _D), _vi("err_next", _D), _vi("s_t", _F)])
    nodes = _sd_prologue()
    nodes.append(helper.make_node("Scan", ["zeros_d", "zeros_d", "zeros_d", "x"],
                                  ["act_end", "res_end", "err_end", "s"], body=step, num_scan_inputs=1,
                                  scan_input_axes=[-1], scan_output_axes=[-1]))
    return helper.make_function(DOMAIN, DELTA, ["x", "threshold"], ["s"], nodes,
                                [helper.make_opsetid("", OPSET)], attributes=list(SD_ATTRIBUTES),
                                doc_string="Delta encoder, graded messages (Lava sdn fixed_pt units); time last.")


def sigma_delta_function() -> FunctionProto:
    """``snnc.SigmaDelta(x, threshold, bias) -> s`` (``ir.SigmaDelta``; ``relu`` 1: ReLU, 0: identity)."""
    body = [helper.make_node("Cast", ["x_t"], ["xd"], to=_D)]
    _on_grid(body, "xd", "xg")
    body += [helper.make_node("Add", ["sig_prev", "xg"], ["sig_next"]),
             helper.make_node("Add", ["sig_next", "B"], ["a0"]),
             _const("zero_a", 0.0),
             helper.make_node("Max", ["a0", "zero_a"], ["a_relu"]),
             helper.make_node("Where", ["RELU", "a_relu", "a0"], ["act"])]
    _sd_send(body, "act")
    step = helper.make_graph(
        body, "sigma_delta_step",
        [_vi("sig_prev", _D), _vi("act_prev", _D), _vi("res_prev", _D), _vi("err_prev", _D), _vi("x_t", _F)],
        [_vi("sig_next", _D), _vi("act_next", _D), _vi("res_next", _D), _vi("err_next", _D), _vi("s_t", _F)])
    nodes = _sd_prologue()
    nodes += [_ref_constant("relu_i", "int", "relu"),
              helper.make_node("Greater", ["relu_i", "c0_i"], ["RELU"]),
              helper.make_node("Cast", ["bias"], ["B"], to=_D),
              helper.make_node("Scan", ["zeros_d", "zeros_d", "zeros_d", "zeros_d", "x"],
                               ["sig_end", "act_end", "res_end", "err_end", "s"], body=step, num_scan_inputs=1,
                               scan_input_axes=[-1], scan_output_axes=[-1])]
    return helper.make_function(DOMAIN, SIGMA_DELTA, ["x", "threshold", "bias"], ["s"], nodes,
                                [helper.make_opsetid("", OPSET)], attributes=list(SD_ATTRIBUTES) + ["relu"],
                                doc_string="Sigma-delta neurons, graded messages (Lava sdn fixed_pt units); time last.")


def sigma_function() -> FunctionProto:
    """``snnc.Sigma(x) -> y``: ``y[t] = sum of x up to t``, x rounded to the grid 1/state_scale."""
    body = [helper.make_node("Cast", ["x_t"], ["xd"], to=_D)]
    _on_grid(body, "xd", "xg")
    body += [helper.make_node("Add", ["sig_prev", "xg"], ["sig_next"]),
             helper.make_node("Cast", ["sig_next"], ["y_t"], to=_F)]
    step = helper.make_graph(body, "sigma_step", [_vi("sig_prev", _D), _vi("x_t", _F)],
                             [_vi("sig_next", _D), _vi("y_t", _F)])
    nodes = [_ref_constant("S_i", "int", "state_scale"),
             helper.make_node("Cast", ["S_i"], ["S"], to=_D),
             helper.make_node("Shape", ["x"], ["lead_shape"], start=0, end=-1),
             helper.make_node("ConstantOfShape", ["lead_shape"], ["zeros_d"],
                              value=helper.make_tensor("z", _D, [1], [0.0])),
             helper.make_node("Scan", ["zeros_d", "x"], ["sig_end", "y"], body=step, num_scan_inputs=1,
                              scan_input_axes=[-1], scan_output_axes=[-1])]
    return helper.make_function(DOMAIN, SIGMA, ["x"], ["y"], nodes, [helper.make_opsetid("", OPSET)],
                                attributes=["state_scale"],
                                doc_string="Sigma (accumulator) output, state grid 1/state_scale; time last.")


FUNCTIONS.update({DELTA: delta_function, SIGMA_DELTA: sigma_delta_function, SIGMA: sigma_function})

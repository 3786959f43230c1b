"""Write tests/data/artifact_v1/*.snnc with snnc before the typed fixed view (main d7c7b70)."""
import sys
import numpy as np
import snnc
from snnc.compiler import artifact
from snnc.compiler.ir import (CubaLI, CubaLIF, Delta, Dense, Graph, Input, Output, Sigma, SigmaDelta)
out = sys.argv[1]
rng = np.random.default_rng(7)
g = Graph(metadata={"source": "artifact_v1 fixture"})
g.add("in", Input((6,), kind="graded", frac_bits=6))
g.add("fc1", Dense(rng.normal(0, 0.6, (5, 6))), "in")
g.add("lif", CubaLIF((5,), 0.25, 0.125, 1.0, bias=0.05, state_scale=0), "fc1")
g.add("fc2", Dense(rng.normal(0, 0.5, (3, 5))), "lif")
g.add("li", CubaLI((3,), 1.0, 0.25, state_scale=0), "fc2")
g.add("out", Output((3,)), "li")
q = snnc.compile(g, out + "/cuba_graded_li.snnc")
print(q.metadata["state_scale"], {k: getattr(v, "weight_exp", None) for k, v in q.fixed.items()})
s = Graph(metadata={"source": "artifact_v1 fixture"})
s.add("in", Input((4,)))
s.add("enc", Delta((4,), threshold=0.05), "in")
s.add("fc1", Dense(rng.normal(0, 0.5, (5, 4))), "enc")
s.add("sd", SigmaDelta((5,), threshold=0.02, bias=0.01), "fc1")
s.add("fc2", Dense(rng.normal(0, 0.5, (2, 5))), "sd")
s.add("sig", Sigma((2,)), "fc2")
s.add("out", Output((2,)), "sig")
q = snnc.compile(s, out + "/sigma_delta.snnc")
print(q.metadata.get("state_scale"))

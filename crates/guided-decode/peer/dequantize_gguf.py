"""Writes an F32 copy of a GGUF model: every tensor de-quantised with llama.cpp's own Python
package (`gguf.quants.dequantize`), every metadata key copied, `general.file_type` set to
ALL_F32. The weights are then exactly the values both llama.cpp and this workspace de-quantise
to, and both compute in float32, so greedy continuations agree token for token up to
summation-order rounding: tests/remote_llama_cpp.rs serves the copy with
`peer/llama_cpp_server.sh` and runs it in process.

    python3 crates/guided-decode/peer/dequantize_gguf.py IN.gguf OUT.gguf
"""
import sys

import numpy as np
from gguf import GGMLQuantizationType, GGUFReader, GGUFValueType, GGUFWriter
from gguf.quants import dequantize

src, dst = sys.argv[1], sys.argv[2]
r = GGUFReader(src)
arch = r.fields["general.architecture"].contents()
w = GGUFWriter(dst, arch)
for name, field in r.fields.items():
    if name.startswith("GGUF.") or name == "general.architecture":
        continue
    value = field.contents()
    if name == "general.file_type":
        value = 0  # LLAMA_FTYPE_ALL_F32
    vtype = field.types[0]
    sub = field.types[1] if vtype == GGUFValueType.ARRAY and len(field.types) > 1 else None
    w.add_key_value(name, value, vtype, sub_type=sub)
for t in r.tensors:
    data = dequantize(t.data, t.tensor_type).astype(np.float32)
    # GGUF shapes are innermost-first; numpy's are outermost-first.
    shape = [int(x) for x in reversed(t.shape)]
    w.add_tensor(t.name, data.reshape(shape), raw_dtype=GGMLQuantizationType.F32)
w.write_header_to_file()
w.write_kv_data_to_file()
w.write_tensors_to_file()
w.close()
print(f"wrote {dst}: {len(r.tensors)} tensors as F32")

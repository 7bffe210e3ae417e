"""Model compression, the course's "lightweight models" trend: measuring what a model costs (parameters, FLOPs,
bytes, latency) and making it cheaper after training: quantization (float16, int8, simulated k-bit weights),
pruning (whole channels and neurons, or single weights) and knowledge distillation."""

from trends.compression.measure import (
    Latency,
    ModelMeasure,
    PolicyNetwork,
    measure,
    policy_module,
    state_dict_bytes,
)
from trends.compression.prune import (
    coupled_layers,
    fine_tune,
    prunable_layers,
    prune_structured,
    prune_unstructured,
    sparsity,
)
from trends.compression.quantize import (
    Float16Model,
    fake_quantize,
    quantizable_layers,
    quantize_weight,
    quantized_size_bytes,
    to_float16,
    to_int8_dynamic,
)

__all__ = [
    "Float16Model",
    "Latency",
    "ModelMeasure",
    "PolicyNetwork",
    "coupled_layers",
    "fake_quantize",
    "fine_tune",
    "measure",
    "policy_module",
    "prunable_layers",
    "prune_structured",
    "prune_unstructured",
    "quantizable_layers",
    "quantize_weight",
    "quantized_size_bytes",
    "sparsity",
    "state_dict_bytes",
    "to_float16",
    "to_int8_dynamic",
]

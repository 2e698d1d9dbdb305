"""The canonical weight format: safetensors with torchvision's tensor names and layouts.

One format crosses frameworks: every plugin converts its native weights to and from it
(``state_dict`` / ``load_state_dict``), so a checkpoint trained anywhere loads everywhere and the
same bytes can be hashed into a version's provenance. Layouts are torchvision's: convs OIHW,
linears ``(out, in)`` consuming a C,H,W flatten, BatchNorm ``weight``/``bias``/``running_mean``/
``running_var`` (no ``num_batches_tracked``), all float32.

Reading is safe by construction: safetensors holds only tensors; framework-native files are read
by the plugin that claims their suffix (``.pth``/``.pt`` with ``torch.load(weights_only=True)``,
``.keras`` with Keras' ``safe_mode``); everything else is refused. Published checkpoints
(torchvision's ImageNet weights, or a company's own store) are named in :mod:`zoo.weights.catalog`,
downloaded and verified by :func:`fetch`, and imported into every framework by
:func:`import_weights`.

Modules: ``_canonical`` (what a state is), ``_hashing``, ``_files`` (read / write / refuse),
``_fit`` (does a state fit a model), ``_random`` (seeded canonical weights), ``catalog``,
``_download``, ``_importing`` (into the registry), ``_regenerate`` (back out of it).
"""
from __future__ import annotations

from . import catalog
from ._canonical import DTYPE, IGNORED_SUFFIX, LoadedWeights, PathLike, Shapes, as_canonical, shapes_of, unwrap_checkpoint
from ._download import cache_dir, fetch, source_url
from ._files import FORMATS, allowed_formats, load_weights, read_metadata, save_weights
from ._fit import AUX_PREFIXES, check_state, expected_shapes, infer_num_classes, match_state, weight_mismatches
from ._hashing import METADATA_KEY, canonical_bytes, file_sha256, state_sha256
from ._importing import ImportPlan, PretrainedImport, import_pretrained, import_weights, plan_import
from ._random import BN_BETA_STD, BN_GAMMA, BN_MEAN_STD, BN_VAR, RELU_GAIN, RESIDUAL_GAMMA, random_canonical_weights
from ._regenerate import CANONICAL_INIT, Regenerated, export_weights, for_arch, for_ref, write_regenerated
from .catalog import CatalogEntry

__all__ = [
    "AUX_PREFIXES", "BN_BETA_STD", "BN_GAMMA", "BN_MEAN_STD", "BN_VAR", "CANONICAL_INIT", "DTYPE", "FORMATS",
    "IGNORED_SUFFIX", "METADATA_KEY", "RELU_GAIN", "RESIDUAL_GAMMA", "CatalogEntry", "ImportPlan", "LoadedWeights",
    "PathLike", "PretrainedImport", "Regenerated", "Shapes", "allowed_formats", "as_canonical", "cache_dir",
    "canonical_bytes", "catalog", "check_state", "expected_shapes", "export_weights", "fetch", "file_sha256", "for_arch", "for_ref",
    "import_pretrained", "import_weights", "infer_num_classes", "load_weights", "match_state", "plan_import",
    "random_canonical_weights", "read_metadata", "save_weights", "shapes_of", "source_url",
    "state_sha256", "unwrap_checkpoint", "weight_mismatches", "write_regenerated",
]

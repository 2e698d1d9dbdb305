"""The framework-plugin protocol and its entry-point discovery.

A plugin is any object that satisfies :class:`FrameworkPlugin`, published by a distribution
under the ``zoo.plugins`` entry-point group::

    [project.entry-points."zoo.plugins"]
    torch = "zoo_torch:TorchPlugin"

Discovery reads entry-point metadata only; a plugin's module is imported when the plugin is
first used, and its framework (torch, tensorflow) only inside the methods that need it, so
``zoo --help`` and ``zoo list`` never pay for a framework import. A plugin whose framework is
missing is *listed* as unavailable with the reason and an install hint; it never breaks the
commands that do not need it. Two distributions that publish the same plugin name are an error,
never a silent override (torchvision rejects duplicate model names the same way).
"""
from __future__ import annotations

import importlib.util
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, ExitStack, contextmanager
from dataclasses import dataclass
from functools import cache, lru_cache, partial
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from ._distribution import DISTRIBUTION, install_command
from ._plugin_check import HookSpec, check_plugin
from .errors import DuplicatePlugin, InvalidInput, NotFound, PluginError, PluginUnavailable
from .records import ExportInfo, ParamCounts

if TYPE_CHECKING:
    import numpy as np

__all__ = [
    "DEFAULT_OPSET", "DEFAULT_PRIORITY", "ENTRY_POINT_GROUP", "FRAMEWORK_ALIASES", "FrameworkPlugin", "OptionalHooks",
    "PluginEntry", "PluginStatus", "available_plugins", "by_priority", "canonical_name", "devices", "discover",
    "get_plugin", "inference_options", "install_command", "intermediates", "native_runner", "owns", "plugin_for",
    "plugin_statuses", "priority", "read_weights", "reference_params", "contributed_architectures", "resolve_frameworks",
    "strict_fp32", "weight_formats", "HOOKS", "distribution_version",
]

ENTRY_POINT_GROUP = "zoo.plugins"
DEFAULT_OPSET = 18

# Other spellings users type for the built-in plugins.
FRAMEWORK_ALIASES = {"pytorch": "torch", "tf": "tensorflow", "keras": "tensorflow"}


@runtime_checkable
class FrameworkPlugin(Protocol):
    """What a framework plugin implements. Every method that needs the framework imports it.

    Hook contract (each hook documented where pluggy would document its hookspec):

    - ``architectures()``: the canonical architecture names this plugin builds, e.g.
      ``("alexnet", "vgg16", ..., "resnet152")``. Must not import the framework.
    - ``build(arch, *, num_classes=1000, **options)``: a native model in inference mode that
      holds the *training* graph (GoogLeNet keeps its auxiliary heads unless
      ``aux_logits=False``); unknown ``arch`` or option raises :class:`~zoo.errors.NotFound`
      / :class:`~zoo.errors.InvalidInput` naming it.
    - ``count_params(model)``: trainable and non-trainable counts, named separately.
    - ``export_onnx(model, path, *, opset, input_size)``: write an ONNX file that honours the
      I/O contract (input ``images`` float32 ``[batch, 3, H, W]``, output ``logits``
      ``[batch, num_classes]``, symbolic batch dim named ``batch``); auxiliary heads absent.
    - ``predict(model, images)``: run the native model on an NCHW float32 numpy batch and return
      float32 logits ``[N, num_classes]``.
    - ``state_dict(model)`` / ``load_state_dict(model, state)``: convert to and from the canonical
      weight layout (torchvision's tensor names and layouts, numpy arrays). ``load_state_dict``
      raises :class:`~zoo.errors.InvalidWeights` listing missing, unexpected and mis-shaped
      tensors.
    """

    name: str  # unique, lowercase; used in references and --framework
    display_name: str  # "PyTorch"
    version: str  # the plugin's own version: distribution_version(<its distribution>), from package metadata
    install_hint: str  # how to make it available, e.g. install_command("torch")
    requires: tuple[str, ...]  # top-level modules that must be importable, e.g. ("torch",)

    def framework_version(self) -> str | None:
        """Installed framework version, read from package metadata (no import); None if absent."""

    def architectures(self) -> Sequence[str]: ...

    def build(self, arch: str, *, num_classes: int = 1000, **options: Any) -> Any: ...

    def count_params(self, model: Any) -> ParamCounts: ...

    def export_onnx(self, model: Any, path: Path, *, opset: int = DEFAULT_OPSET, input_size: int = 224) -> ExportInfo: ...

    def predict(self, model: Any, images: np.ndarray) -> np.ndarray: ...

    def state_dict(self, model: Any) -> dict[str, np.ndarray]: ...

    def load_state_dict(self, model: Any, state: Mapping[str, np.ndarray]) -> None: ...


DEFAULT_PRIORITY = 100


class OptionalHooks(Protocol):
    """The hooks a plugin *may* define, for what differs between frameworks; the core never names a framework.

    This class is the spec (pluggy's hookspecs, for plugins that are classes): each hook is one documented
    member below. The core calls each through the function of the same name in this module, which supplies
    the default when the plugin lacks the hook, so a plugin written against :class:`FrameworkPlugin` alone
    keeps working. At load, a hook a plugin defines must accept what the core passes, and a public member
    spelled like a hook but not one (``inference_option``, ``native_runer``) is refused with
    :class:`~zoo.errors.PluginError` (exit 4) rather than silently never called; helpers stay private (``_x``).
    """

    priority: int
    """Plugins run lowest first, and the first is the reference of every comparison (the PyTorch plugin's
    build *is* torchvision's definition: 0). Default: 100."""

    weight_formats: Mapping[str, str]
    """The framework-native weight files the plugin reads *safely*, as suffix -> how it reads them
    (``{".pth": "torch.load(weights_only=True)"}``); readable without importing the framework; pairs with
    :meth:`read_weights`. Default: no native formats."""

    def inference_options(self, arch: str, *, state: Mapping[str, np.ndarray] | None = None) -> dict[str, Any]:
        """Build options that give the inference graph an artifact holds (GoogLeNet: ``aux_logits=False``),
        unless ``state`` carries training-only tensors that must load. Default: no options."""
        ...

    def strict_fp32(self) -> AbstractContextManager[list[str]]:
        """A context manager that turns reduced-precision shortcuts (TF32) off in the framework while it is
        active and yields a list of notes saying what it did. Default: a no-op."""
        ...

    def devices(self) -> Sequence[str]:
        """The devices the framework can run on here, of ``"cpu"`` and ``"cuda"``. Default: ``("cpu",)``."""
        ...

    def native_runner(self, model: Any, *, device: str, precision: str) -> Callable[[np.ndarray], np.ndarray]:
        """A callable that runs an NCHW float32 numpy batch on ``device`` ("cpu" or "cuda") at ``precision``
        ("fp32" or "fp16") and returns float32 logits; it may keep the model on the device between calls.
        Default: ``predict`` on the CPU in fp32, and :class:`~zoo.errors.PluginError` for anything else."""
        ...

    def intermediates(self, model: Any, images: np.ndarray) -> Mapping[str, np.ndarray]:
        """The output of each layer group, NCHW, keyed by torchvision's module name (``conv1``, ``layer2.1``,
        ``features.4``), in execution order: the parity gate compares them to name the first group where two
        frameworks diverge. Called only when the native models disagree. Default: none."""
        ...

    def owns(self, model: Any) -> bool:
        """True if ``model`` is a native model of this plugin's framework (a user's ``torch.nn.Module``,
        ``keras.Model``), so that :func:`zoo.register_model` can export it. Must not import the framework
        (check ``sys.modules`` first). Default: False (the plugin exports only what it builds)."""
        ...

    def read_weights(self, path: Path) -> Mapping[str, np.ndarray]:
        """The canonical state of a native weight file of one of :attr:`weight_formats`, refusing anything
        that could run code with :class:`~zoo.errors.InvalidWeights` naming the file. Default: none."""
        ...

    def reference_params(self) -> Mapping[str, int]:
        """The published trainable parameter count, at 1,000 classes, of each architecture this plugin
        contributes beyond zoo's nine (those keep their one home, :mod:`zoo.architectures`): ``zoo archs``
        and the contract kit (:mod:`zoo.testing`) check the plugin's builds against it. Each key must be
        one of :meth:`FrameworkPlugin.architectures`; must not import the framework. Default: none."""
        ...


def distribution_version(distribution: str = DISTRIBUTION) -> str:
    """The installed version of ``distribution`` (default: zoo's own, which ships the built-in plugins), read
    from package metadata: a plugin's ``version`` comes from here, never hard-coded. ``"0+unknown"`` when it
    is not installed (run from a source tree)."""
    from importlib import metadata

    try:
        return metadata.version(distribution)
    except metadata.PackageNotFoundError:
        return "0+unknown"


def _specs() -> list[HookSpec]:
    """Every member of the two spec classes, required and optional, as :func:`_plugin_check.check_plugin` reads them."""
    specs = [HookSpec(n, FrameworkPlugin, kind=(str,)) for n in ("name", "display_name", "version", "install_hint")]
    specs.append(HookSpec("requires", FrameworkPlugin, kind=(tuple, list)))
    specs += [HookSpec("priority", OptionalHooks, kind=(int,)), HookSpec("weight_formats", OptionalHooks, kind=(Mapping,))]
    for owner in (FrameworkPlugin, OptionalHooks):
        specs += [HookSpec(n, owner, method=m) for n, m in vars(owner).items() if not n.startswith("_") and callable(m)]
    return specs


HOOKS: tuple[HookSpec, ...] = tuple(_specs())  # what a plugin may define publicly, with the signatures the core calls


def _check_weight_formats(value: Mapping[Any, Any]) -> str | None:
    bad = [k for k, v in value.items() if not (isinstance(k, str) and k.startswith(".") and isinstance(v, str))]
    return f"{bad[0]!r} is not a '.suffix' -> description pair" if bad else None


def _check_references(plugin: FrameworkPlugin, label: str) -> None:
    """``reference_params`` names only the plugin's own architectures, none of zoo's nine, with positive counts."""
    from .architectures import ARCHITECTURES

    archs = set(plugin.architectures())
    for arch, count in reference_params(plugin).items():
        problem = ("it is one of zoo's nine, whose counts live in zoo.architectures" if arch in ARCHITECTURES else
                   "the plugin does not build it (architectures())" if arch not in archs else
                   "the count is not a positive integer" if isinstance(count, bool) or not isinstance(count, int) or count < 1
                   else None)
        if problem:
            raise PluginError(f"Plugin {label} declares a reference count for {arch!r}: {problem}. "
                              f"Expected: reference_params() -> {{arch: published trainable count}} over "
                              f"{', '.join(sorted(archs - set(ARCHITECTURES))) or 'its own architectures'}. "
                              f"Received: {arch!r}: {count!r}",
                              hint="declare counts only for the architectures your plugin adds beyond the nine")


def priority(plugin: FrameworkPlugin) -> int:
    return int(getattr(plugin, "priority", DEFAULT_PRIORITY))


def by_priority(plugins: Iterable[FrameworkPlugin]) -> list[FrameworkPlugin]:
    """``plugins`` in the order they run: lowest :func:`priority` first, then by name."""
    return sorted(plugins, key=lambda p: (priority(p), p.name))


def inference_options(plugin: FrameworkPlugin, arch: str, *, state: Mapping[str, np.ndarray] | None = None) -> dict[str, Any]:
    hook = getattr(plugin, "inference_options", None)
    return dict(hook(arch, state=state)) if callable(hook) else {}


@contextmanager
def strict_fp32(plugins: Iterable[FrameworkPlugin]) -> Iterator[list[str]]:
    """Every plugin's ``strict_fp32`` at once; yields their notes. Restores all settings on exit."""
    notes: list[str] = []
    with ExitStack() as stack:
        for plugin in plugins:
            hook = getattr(plugin, "strict_fp32", None)
            if callable(hook):
                notes.extend(stack.enter_context(hook()))
        yield notes


def devices(plugin: FrameworkPlugin) -> tuple[str, ...]:
    hook = getattr(plugin, "devices", None)
    return tuple(hook()) if callable(hook) else ("cpu",)


def native_runner(plugin: FrameworkPlugin, model: Any, *, device: str = "cpu",
                  precision: str = "fp32") -> Callable[[np.ndarray], np.ndarray]:
    hook = getattr(plugin, "native_runner", None)
    if callable(hook):
        runner: Callable[[np.ndarray], np.ndarray] = hook(model, device=device, precision=precision)
        return runner
    if (device, precision) != ("cpu", "fp32"):
        raise PluginError(
            f"Expected a device and precision plugin {plugin.name!r} can run natively. Received: {device}/{precision}",
            hint="only cpu/fp32 is available: the plugin defines no native_runner hook",
        )
    return partial(plugin.predict, model)


def intermediates(plugin: FrameworkPlugin, model: Any, images: np.ndarray) -> dict[str, np.ndarray] | None:
    hook = getattr(plugin, "intermediates", None)
    return dict(hook(model, images)) if callable(hook) else None


def owns(plugin: FrameworkPlugin, model: Any) -> bool:
    hook = getattr(plugin, "owns", None)
    return bool(hook(model)) if callable(hook) else False


def reference_params(plugin: FrameworkPlugin) -> dict[str, int]:
    """The published trainable counts of the architectures ``plugin`` adds beyond the nine (its
    ``reference_params`` hook); empty without the hook. Imports no framework."""
    hook = getattr(plugin, "reference_params", None)
    return dict(hook()) if callable(hook) else {}


def contributed_architectures(plugins: Iterable[FrameworkPlugin]) -> dict[str, tuple[str, int | None]]:
    """Architecture -> (the plugin that contributes it, its published count or None), for every architecture
    of ``plugins`` beyond the nine of :mod:`zoo.architectures`, first plugin by :func:`priority` first."""
    from .architectures import ARCHITECTURES

    found: dict[str, tuple[str, int | None]] = {}
    for plugin in by_priority(plugins):
        counts = reference_params(plugin)
        for arch in plugin.architectures():
            if arch not in ARCHITECTURES and arch not in found:
                found[arch] = (plugin.name, counts.get(arch))
    return found


def plugin_for(model: Any, *, framework: str | None = None) -> FrameworkPlugin:
    """The plugin that owns ``model`` (the first by :func:`priority` whose ``owns`` hook says so).

    With ``framework``, that plugin, which must own the model. Raises
    :class:`~zoo.errors.InvalidInput` when no installed plugin owns it.
    """
    kind = f"{type(model).__module__}.{type(model).__qualname__}"
    if framework is not None:
        plugin = get_plugin(framework)
        if not owns(plugin, model):
            raise InvalidInput(f"Expected a model of plugin {plugin.name!r} ({plugin.display_name}). Received: a {kind}",
                               hint="omit framework= to pick the plugin that owns the model")
        return plugin
    candidates = available_plugins()
    for plugin in candidates:
        if owns(plugin, model):
            return plugin
    known = ", ".join(p.display_name for p in candidates if callable(getattr(p, "owns", None))) or "none installed"
    raise InvalidInput(f"Expected a native model of an installed framework plugin ({known}). Received: a {kind}",
                       hint="pass a torch.nn.Module or a keras.Model; a ready ONNX file goes to `zoo register`")
def weight_formats() -> dict[str, tuple[str, str]]:
    """Native weight-file suffix -> (plugin name, how it is read), over every discovered plugin in
    :func:`by_priority` order (the first claim of a suffix wins). Imports plugin modules, no framework."""
    plugins = []
    for entry in discover().values():
        try:
            plugins.append(entry.load())
        except PluginError:  # a broken plugin is reported by `zoo plugins`; it reads no files
            continue
    found: dict[str, tuple[str, str]] = {}
    for plugin in by_priority(plugins):
        for suffix, how in dict(getattr(plugin, "weight_formats", None) or {}).items():
            found.setdefault(suffix.lower(), (plugin.name, how))
    return found


def read_weights(plugin: FrameworkPlugin, path: Path) -> dict[str, Any]:
    hook = getattr(plugin, "read_weights", None)
    if not callable(hook):
        raise PluginError(f"Expected plugin {plugin.name!r} to define read_weights. Received: none",
                          hint="a plugin that lists weight_formats must implement read_weights(path)")
    return dict(hook(Path(path)))


@dataclass(frozen=True)
class PluginEntry:
    """A discovered plugin, before or after loading."""

    name: str
    target: str  # "module:attr"
    distribution: str | None

    def load(self) -> FrameworkPlugin:
        """Import the plugin module (not its framework) and return the plugin instance."""
        try:
            from importlib import metadata

            obj = metadata.EntryPoint(self.name, self.target, ENTRY_POINT_GROUP).load()
        except Exception as exc:  # a broken third-party module must not break zoo
            raise PluginError(
                f"Plugin {self.name!r} ({self.target}) failed to import: {type(exc).__name__}: {exc}",
                hint=f"reinstall or uninstall the distribution {self.distribution!r}",
            ) from exc
        plugin = obj() if isinstance(obj, type) else obj
        if not isinstance(plugin, FrameworkPlugin):
            missing = [h.name for h in HOOKS if h.owner is FrameworkPlugin and not hasattr(plugin, h.name)]
            raise PluginError(
                f"Entry point {self.name!r} ({self.target}) does not implement FrameworkPlugin. "
                f"Expected: every required member. Received: no {', '.join(missing) or 'required members'}",
                hint="see zoo.plugins.FrameworkPlugin for the required attributes and methods",
            )
        if plugin.name != self.name:
            raise PluginError(
                f"Entry point {self.name!r} loads a plugin named {plugin.name!r}",
                hint="the entry-point name and the plugin's `name` must be equal",
            )
        label = f"{self.name!r} ({self.target})"
        check_plugin(plugin, HOOKS, label=label, extra={"weight_formats": _check_weight_formats})
        _check_references(plugin, label)
        return plugin


@dataclass(frozen=True)
class PluginStatus:
    """What ``zoo plugins`` shows: whether a plugin can be used here, and why not."""

    name: str
    distribution: str | None
    available: bool
    display_name: str | None = None
    version: str | None = None
    framework_version: str | None = None
    architectures: tuple[str, ...] = ()
    reason: str | None = None  # why unavailable
    hint: str | None = None  # how to fix


@lru_cache(maxsize=1)
def discover() -> dict[str, PluginEntry]:
    """All plugins published under ``zoo.plugins``, by name. Reads metadata only."""
    from importlib import metadata  # not at import: `zoo list` never discovers plugins

    found: dict[str, PluginEntry] = {}
    for ep in metadata.entry_points(group=ENTRY_POINT_GROUP):
        dist = ep.dist.name if ep.dist is not None else None
        entry = PluginEntry(ep.name, ep.value, dist)
        previous = found.get(ep.name)
        if previous is not None and previous != entry:
            raise DuplicatePlugin(
                f"Two plugins are named {ep.name!r}: {previous.target} (from {previous.distribution}) "
                f"and {entry.target} (from {entry.distribution})",
                hint=f"uninstall one of {previous.distribution!r} and {entry.distribution!r}",
            )
        found[ep.name] = entry
    return found


def canonical_name(name: str) -> str:
    name = name.strip().lower()
    return FRAMEWORK_ALIASES.get(name, name)


def _entry(name: str) -> PluginEntry:
    plugins = discover()
    key = canonical_name(name)
    if key not in plugins:
        known = ", ".join(sorted(plugins)) or "none installed"
        raise NotFound(
            f"No plugin named {name!r}. Installed plugins: {known}",
            hint="`zoo plugins` lists them; third-party plugins register under the 'zoo.plugins' entry-point group",
        )
    return plugins[key]


def _missing_requirements(plugin: FrameworkPlugin) -> list[str]:
    missing = []
    for module in plugin.requires:
        try:
            if importlib.util.find_spec(module) is None:
                missing.append(module)
        except (ImportError, ValueError):
            missing.append(module)
    return missing


@cache
def get_plugin(name: str) -> FrameworkPlugin:
    """The loaded plugin ``name``; raises PluginUnavailable (with the install hint) if its framework is missing."""
    entry = _entry(name)
    plugin = entry.load()
    missing = _missing_requirements(plugin)
    if missing:
        raise PluginUnavailable(
            f"Plugin {entry.name!r} needs {', '.join(missing)}, which is not installed",
            hint=plugin.install_hint,
        )
    return plugin


def plugin_statuses() -> list[PluginStatus]:
    """Every discovered plugin with its availability; never raises for one broken plugin."""
    statuses = []
    for name, entry in sorted(discover().items()):
        try:
            plugin = entry.load()
        except PluginError as exc:
            statuses.append(PluginStatus(name, entry.distribution, False, reason=exc.message, hint=exc.hint))
            continue
        missing = _missing_requirements(plugin)
        statuses.append(
            PluginStatus(
                name,
                entry.distribution,
                available=not missing,
                display_name=plugin.display_name,
                version=plugin.version,
                framework_version=plugin.framework_version(),
                architectures=tuple(plugin.architectures()),
                reason=f"{', '.join(missing)} not installed" if missing else None,
                hint=plugin.install_hint if missing else None,
            )
        )
    return statuses


def available_plugins() -> list[FrameworkPlugin]:
    """Loaded plugins whose frameworks are installed, in :func:`by_priority` order."""
    return by_priority(get_plugin(s.name) for s in plugin_statuses() if s.available)


def resolve_frameworks(spec: str | Sequence[str] | None, *, arch: str | None = None) -> list[FrameworkPlugin]:
    """Turn ``--framework torch`` / ``torch,tensorflow`` / ``all`` into loaded plugins.

    ``all`` (or None) means every available plugin, restricted to those that build ``arch``.
    """
    if spec is None or spec == "all" or spec == ["all"]:
        chosen = available_plugins()
        if arch is not None:
            chosen = [p for p in chosen if arch in p.architectures()]
        if not chosen:
            raise PluginUnavailable(
                "No installed plugin" + (f" builds {arch!r}" if arch else ""),
                hint="`zoo plugins` shows what is installed and how to install the rest",
            )
        return chosen
    names = spec.split(",") if isinstance(spec, str) else list(spec)
    plugins = [get_plugin(n) for n in names if n.strip()]
    if arch is not None:
        for p in plugins:
            if arch not in p.architectures():
                raise NotFound(
                    f"Plugin {p.name!r} does not build {arch!r}. It builds: {', '.join(p.architectures())}",
                    hint="`zoo archs` lists every architecture of every plugin",
                )
    return plugins

"""The pluggy manager: built-in plugins registered exactly like external ones.

Built-ins are modules under `plugins/`; external plugins are found through the entry-point
group `xindai`. `XINDAI_PLUGINS` picks which to load (default: all) and
`XINDAI_DISABLE_PLUGINS` drops some. Which loaded plugin is active for a tenant is the
tenant's own list (`tenant.plugins`), checked wherever a contribution is used.
"""

from __future__ import annotations

import importlib
import importlib.metadata
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from typing import Any

import pluggy

from core import hookspecs

hookimpl = pluggy.HookimplMarker("xindai")
ENTRY_POINT_GROUP = "xindai"

BUILTIN_PLUGINS: tuple[str, ...] = ("plugins.crm", "plugins.servicing", "plugins.origination",
                                     "plugins.contracts", "plugins.bureau_local",
                                     "plugins.esign_local")


class PluginError(Exception):
    """A plugin could not be found or loaded."""


@dataclass(frozen=True)
class PluginInfo:
    name: str
    version: str
    hooks: tuple[str, ...]
    builtin: bool


def _module_version(module: Any) -> str:
    version = getattr(module, "__version__", None)
    if version:
        return str(version)
    try:
        return importlib.metadata.version("xindai")
    except importlib.metadata.PackageNotFoundError:
        return "0"


class Plugins:
    """A typed wrapper around the pluggy manager with the helpers the kernel needs."""

    def __init__(self, only: tuple[str, ...] = (), disable: tuple[str, ...] = ()) -> None:
        self.pm = pluggy.PluginManager(ENTRY_POINT_GROUP)
        self.pm.add_hookspecs(hookspecs)
        self.builtin: set[str] = set()
        self.versions: dict[str, str] = {}
        available = self._available()
        unknown = [n for n in (*only, *disable) if n not in available]
        if unknown:
            raise PluginError(
                f"未知的插件 / unknown plugin: {', '.join(unknown)} "
                f"(available: {', '.join(sorted(available))})"
            )
        for name, (loader, builtin) in available.items():
            if only and name not in only:
                continue
            if name in disable:
                continue
            try:
                module = loader()
            except Exception as exc:  # a broken plugin must name itself
                raise PluginError(f"插件 {name} 加载失败 / plugin {name} failed to load: {exc}") from exc
            try:
                self.pm.register(module, name=name)
            except pluggy.PluginValidationError as exc:
                raise PluginError(f"插件 {name} 的钩子无效 / plugin {name} has an invalid hook: "
                                  f"{exc}") from exc
            self.versions[name] = _module_version(module)
            if builtin:
                self.builtin.add(name)
        try:
            self.pm.check_pending()
        except pluggy.PluginValidationError as exc:
            raise PluginError(f"未知的钩子 / unknown hook: {exc}") from exc

    @staticmethod
    def _available() -> dict[str, tuple[Callable[[], Any], bool]]:
        found: dict[str, tuple[Callable[[], Any], bool]] = {}
        for path in BUILTIN_PLUGINS:
            found[path.rsplit(".", 1)[-1]] = (lambda p=path: importlib.import_module(p), True)
        for ep in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP):
            if ep.name in found:
                raise PluginError(f"插件名冲突 / plugin name clash: {ep.name}")
            found[ep.name] = (ep.load, False)
        return found

    @property
    def names(self) -> list[str]:
        return [name for name, _ in self.pm.list_name_plugin()]

    @property
    def hook(self) -> Any:
        return self.pm.hook

    def per_plugin(
        self, hook_name: str, only: Callable[[str], bool] | None = None, **kwargs: Any
    ) -> Iterator[tuple[str, Any]]:
        """Call `hook_name` on each plugin separately, yielding (plugin name, result).

        Used where the kernel must know which plugin contributed what (per-tenant
        enablement); `only` skips plugins before they are called.
        """
        hook = getattr(self.pm.hook, hook_name)
        for impl in reversed(hook.get_hookimpls()):  # pluggy call order: last registered first
            if only is not None and not only(impl.plugin_name):
                continue
            args = {k: v for k, v in kwargs.items() if k in impl.argnames}
            yield impl.plugin_name, impl.function(**args)

    def collect_owned(self, hook_name: str) -> list[tuple[str, Any]]:
        """Gather (plugin name, item) for everything plugins pass to `register`."""
        items: list[tuple[str, Any]] = []
        hook = getattr(self.pm.hook, hook_name)
        for impl in reversed(hook.get_hookimpls()):  # pluggy call order: last registered first
            found: list[Any] = []
            impl.function(register=found.append)
            items.extend((impl.plugin_name, item) for item in found)
        return items

    def collect(self, hook_name: str) -> list[Any]:
        """Gather register-style contributions, stamping dataclasses with their plugin."""
        items = []
        for plugin, item in self.collect_owned(hook_name):
            if hasattr(item, "plugin"):  # always the real contributor: no claiming another's
                item = replace(item, plugin=plugin)
            items.append(item)
        return items

    def info(self) -> list[PluginInfo]:
        rows = []
        for name, plugin in self.pm.list_name_plugin():
            hooks = tuple(sorted(h.name for h in self.pm.get_hookcallers(plugin) or []))
            rows.append(PluginInfo(name, self.versions.get(name, "0"), hooks, name in self.builtin))
        return rows

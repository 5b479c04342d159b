"""The JavaScript and CSS that the shared map inlines, found in installed packages.

The map must open from an email attachment on a locked-down network, so no
script or style may be linked from a CDN. Leaflet 1.9.4 (BSD-2-Clause) comes
from the ``django-js-lib-leaflet`` wheel, a plain copy of Leaflet's ``dist``
folder that needs no Django at run time; the heat-map plugin
(Leaflet.heat, BSD-2-Clause) is the copy folium ships in its own package.
Both keep their licence headers in the inlined copy. The what-if panel's own
script and stylesheet are package data under ``siteplanner/templates/``.
"""

from __future__ import annotations

import base64
import functools
import re
from importlib import resources
from importlib.resources.abc import Traversable

from siteplanner._errors import OutputError

__all__ = ["heat_js", "inline_script", "inline_style", "leaflet_css", "leaflet_js", "whatif_css",
           "whatif_js"]

_FIX = "reinstall siteplanner (pip install -e .) so that its dependencies are complete"


def _leaflet_dir() -> Traversable:
    try:
        return resources.files("js_lib_leaflet") / "static" / "js_lib_leaflet"
    except ModuleNotFoundError:
        msg = f"Leaflet's files are missing (package django-js-lib-leaflet is not installed); {_FIX}"
        raise OutputError(msg) from None


def _read(path: Traversable, package: str) -> str:
    if not path.is_file():
        msg = f"{path.name} is missing from package {package}; {_FIX}"
        raise OutputError(msg)
    return path.read_text(encoding="utf-8")


def _strip_source_map(js: str) -> str:
    # The source map is not shipped inside the page; a browser's devtools
    # would otherwise try to fetch it from beside the HTML file.
    return re.sub(r"\n?//# sourceMappingURL=\S+\s*$", "\n", js)


@functools.cache
def leaflet_js() -> str:
    """Leaflet's minified JavaScript, licence header included."""
    js = _read(_leaflet_dir() / "leaflet.js", "django-js-lib-leaflet")
    if "@preserve" not in js[:200] or "Leaflet 1." not in js[:200]:
        msg = f"leaflet.js in django-js-lib-leaflet does not start with Leaflet's licence header; {_FIX}"
        raise OutputError(msg)
    return _strip_source_map(js)


@functools.cache
def leaflet_css() -> str:
    """Leaflet's stylesheet with its images turned into data URIs."""
    folder = _leaflet_dir()
    css = _read(folder / "leaflet.css", "django-js-lib-leaflet")

    def inline(m: re.Match[str]) -> str:
        img = folder / "images" / m.group(1)
        if not img.is_file():
            return "url(data:,)"
        data = base64.b64encode(img.read_bytes()).decode("ascii")
        return f"url(data:image/png;base64,{data})"

    return re.sub(r"url\(images/([\w.-]+\.png)\)", inline, css)


@functools.cache
def heat_js() -> str:
    """Leaflet.heat as folium ships it (``folium/templates/leaflet_heat.min.js``)."""
    return _strip_source_map(_read(resources.files("folium") / "templates" / "leaflet_heat.min.js",
                                   "folium"))


@functools.cache
def whatif_js() -> str:
    """The what-if panel's script (``siteplanner/templates/whatif.js``, package data)."""
    return _read(resources.files("siteplanner") / "templates" / "whatif.js", "siteplanner")


@functools.cache
def whatif_css() -> str:
    """The what-if panel's stylesheet (``siteplanner/templates/whatif.css``)."""
    return _read(resources.files("siteplanner") / "templates" / "whatif.css", "siteplanner")


def inline_script(js: str) -> str:
    """A ``<script>`` element holding ``js``; refuses code that would end the element early."""
    if re.search(r"</script", js, flags=re.IGNORECASE):
        msg = "an inlined script contains '</script' and would break the page; check the asset"
        raise OutputError(msg)
    return f"<script>\n{js}\n</script>"


def inline_style(css: str) -> str:
    """A ``<style>`` element holding ``css``."""
    if re.search(r"</style", css, flags=re.IGNORECASE):
        msg = "an inlined stylesheet contains '</style' and would break the page; check the asset"
        raise OutputError(msg)
    return f"<style>\n{css}\n</style>"

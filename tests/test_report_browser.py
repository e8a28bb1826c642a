"""The demo report on any screen: headless Chromium at desktop and phone widths.

The report (from a smoke demo) is copied with a small script added that, once the page has
loaded, measures what a reader would see; shown in an iframe of the width wanted, it posts the
measurement to the outer page, which writes it into its DOM, and ``chromium --headless
--dump-dom`` prints that DOM. At 1280 and 390 CSS pixels every image must have loaded (a
decoded, non-empty PNG) and fit, and no element may stick out of the viewport horizontally
(wide tables scroll inside their own ``.scroll`` box, which must itself fit). Slow tier; skipped
where no Chromium is installed (``.ci/run`` installs Debian's ``chromium``).
"""

import json
import re
import shutil
import subprocess

import pytest

from pvae.app.demo import run_demo

pytestmark = pytest.mark.slow

CHROMIUM = next(
    (shutil.which(n) for n in ("chromium", "chromium-browser") if shutil.which(n)), None
)

_MEASURE = """<script>
window.addEventListener("load", () => {
  const width = document.documentElement.clientWidth;
  const images = [...document.images];
  const broken = images.filter(i => !(i.complete && i.naturalWidth > 0)).map(i => i.alt);
  const wide = images.filter(i => i.getBoundingClientRect().right > width + 0.5).map(i => i.alt);
  const overflow = [];
  for (const el of document.body.querySelectorAll("*")) {
    const box = el.closest(".scroll");
    if (box && box !== el) continue;  // inside a scroll box: it scrolls, the page does not
    const r = el.getBoundingClientRect();
    if (r.width && (r.right > width + 0.5 || r.left < -0.5)) {
      overflow.push(el.tagName + (el.id ? "#" + el.id : "") + " right=" + Math.round(r.right));
    }
  }
  const out = {
    width, scrollWidth: document.documentElement.scrollWidth, images: images.length,
    broken, wide, overflow: overflow.slice(0, 10),
    fontSize: parseFloat(getComputedStyle(document.body).fontSize),
    viewport: (document.querySelector("meta[name=viewport]") || {}).content || null,
  };
  parent.postMessage(JSON.stringify(out), "*");
});
</script>"""

# Chromium's window is at least 500 px wide: the report is shown in an iframe of the width
# wanted (its own viewport), and posts its measurement to this page, which writes it down.
_FRAME = """<!DOCTYPE html><html><body style="margin:0">
<iframe src="measured.html" style="border:0;width:{width}px;height:900px"></iframe>
<script>
window.addEventListener("message", e => {{
  const pre = document.createElement("pre");
  pre.id = "pvae-measure";
  pre.textContent = e.data;
  document.body.appendChild(pre);
}});
</script></body></html>"""


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    out = tmp_path_factory.mktemp("demo")
    result = run_demo(out, epochs=1, smoke=True, progress=False)
    page = result.report.read_text()
    measured = out / "measured.html"
    measured.write_text(page.replace("</body>", _MEASURE + "</body>"))
    return result, measured


def _measure(page, width: int, tmp_path) -> dict:
    frame = page.parent / f"frame-{width}.html"
    frame.write_text(_FRAME.format(width=width))
    argv = [
        CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
        "--hide-scrollbars", f"--window-size={width + 100},1000", f"--user-data-dir={tmp_path}",
        "--virtual-time-budget=10000", "--dump-dom", frame.as_uri(),
    ]  # fmt: skip
    done = subprocess.run(argv, capture_output=True, text=True, timeout=120)
    found = re.search(r'<pre id="pvae-measure">(.*?)</pre>', done.stdout, re.S)
    assert found, f"chromium printed no measurement (rc {done.returncode}): {done.stderr[-2000:]}"
    return json.loads(found.group(1).replace("&quot;", '"').replace("&amp;", "&"))


@pytest.mark.skipif(CHROMIUM is None, reason="no chromium (apt-get install -y chromium)")
@pytest.mark.parametrize("width", [1280, 390])
def test_report_fits_and_every_image_loads(report, width, tmp_path):
    result, page = report
    m = _measure(page, width, tmp_path)
    assert m["width"] == width
    assert m["viewport"] == "width=device-width, initial-scale=1"
    assert m["images"] == len(result.figures) and m["broken"] == []
    assert m["wide"] == [] and m["overflow"] == []
    assert m["scrollWidth"] <= width  # nothing scrolls the page sideways
    assert m["fontSize"] >= 16  # readable text, not the 6 px of a desktop page shrunk down

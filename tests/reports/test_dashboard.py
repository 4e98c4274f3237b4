"""Results where users look: the pull-request comment (`kdbench compare --format markdown`) and the static
dashboard (`kdbench site`), the latter also in a real headless browser (Debian's chromium through selenium).

The history is made of real records: the committed MNIST baselines as five sessions, the last with one row a
point lower (an injected regression, which the gate fails).
"""
from __future__ import annotations

import json
import os
import re
import shutil
from pathlib import Path

import pytest

from tests.records.test_history import MNIST, session
from zoo.cli import main
from zoo.records.history import History

BASELINES = MNIST.parents[2]
FAILED_ROW = "mnist-mlp800-kd-lr0.01"


@pytest.fixture(scope="module")
def history(tmp_path_factory) -> History:
    root = tmp_path_factory.mktemp("dashboard")
    results = root / "results"
    for day in range(1, 5):
        session(results, f"s{day}", day)
    last = session(results, "s5", 5)
    regressed = last / "quick" / "mnist" / "cpu" / f"{FAILED_ROW}.json"
    regressed.write_text(_lowered(regressed.read_text()))
    store = History(root / "history.sqlite")
    store.ingest(results)
    return store


def _lowered(text: str) -> str:
    """A record one point lower on every seed: the regression the gate must fail."""
    record = json.loads(text)
    record["metrics"]["test_accuracy"] = [v - 1.0 for v in record["metrics"]["test_accuracy"]]
    return json.dumps(record)


@pytest.fixture(scope="module")
def site(history, tmp_path_factory) -> Path:
    pytest.importorskip("plotly", reason="kdbench site needs the `site` extra (plotly)")
    out = tmp_path_factory.mktemp("site")
    assert main(["site", "--out", str(out), "--db", str(history.path), "--baselines", str(BASELINES)]) == 0
    return out


def test_markdown_comment_reads_at_a_glance(history, capsys):
    """The PR comment: commits and counts in the headline, the failing row with only its changed metrics in human
    units and a link to its page, the unchanged rows collapsed, the judging settings once, no local path."""
    assert main(["compare", "s5", "baselines", "--db", str(history.path), "--baselines", str(BASELINES),
                 "--format", "markdown", "--link", "artifacts=https://example.invalid/run/1",
                 "--site-url", "https://example.invalid/site"]) == 0
    text = capsys.readouterr().out
    assert text.startswith("<!-- kdbench-verdicts -->\n### kdbench: FAILED")
    headline = text.splitlines()[3]
    assert "**1 regressed**" in headline and "unchanged" in headline and "`" in headline  # counts and commits
    regressed = text[text.index("#### Regressed"):text.index("<details>")]
    fail_line = next(line for line in regressed.splitlines() if FAILED_ROW in line)
    assert "test accuracy **REGRESSED**" in fail_line and "\u22121.00 pt" in fail_line and " pt |" in fail_line
    assert f"(https://example.invalid/site/rows/quick-mnist-cpu-{FAILED_ROW}.html)" in fail_line
    assert all(FAILED_ROW not in line or "REGRESSED" in line for line in regressed.splitlines())  # no unchanged metric
    assert "rows unchanged</summary>" in text and "`alpha_fail` = 0.001 (default)" in text
    assert str(BASELINES) not in text and str(history.path.parent) not in text  # no local path
    assert "[artifacts](https://example.invalid/run/1)" in text


def test_the_comment_renders_as_github_renders_it(history, capsys):
    """cmark-gfm (GitHub's own renderer) turns every table of the comment into a table: no row is left as text."""
    cmarkgfm = pytest.importorskip("cmarkgfm", reason="the `site` extra renders comments with cmark-gfm")
    assert main(["compare", "s5", "baselines", "--db", str(history.path), "--baselines", str(BASELINES),
                 "--format", "markdown", "--site-url", "https://example.invalid/site"]) == 0
    text = capsys.readouterr().out
    page = cmarkgfm.github_flavored_markdown_to_html(text)
    tables = text.count("\n|---")
    assert tables >= 2 and page.count("<table>") == tables
    assert not re.search(r"^\|", re.sub(r"<[^>]+>", "", page), re.M)  # no table row left as literal text
    assert f'<a href="https://example.invalid/site/rows/quick-mnist-cpu-{FAILED_ROW}.html">{FAILED_ROW}</a>' in page


def test_compare_filters_sorts_and_speaks_json_and_csv(history, capsys):
    base = ["compare", "s5", "baselines", "--db", str(history.path), "--baselines", str(BASELINES)]
    assert main([*base, "--only-failed", "--format", "json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert rows and all(row["row"] == FAILED_ROW and row["verdict"].startswith("REGRESSED") for row in rows)
    assert main([*base, "--only-changed", "--sort", "verdict", "--format", "csv"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("row,metric,A,B") and FAILED_ROW in lines[1] and len(lines) >= 2


def test_site_lists_every_row_draws_charts_and_lists_the_regression(site, history):
    index = (site / "index.html").read_text()
    rows = {k["bench_id"] for k in history.row_keys()}
    assert rows and all(f">{row}</a>" in index for row in rows)
    row_page = (site / "rows" / f"quick-mnist-cpu-{FAILED_ROW}.html").read_text()
    assert "chart-test_accuracy" in row_page and "Plotly.newPlot" in row_page and "baseline" in row_page
    regressions = (site / "regressions.html").read_text()
    assert f">{FAILED_ROW}</a>" in regressions and "FAIL" in regressions
    for page in site.rglob("*.html"):  # self-contained: no script or style from elsewhere
        assert not re.search(r"(src|href)=[\"']https?://", page.read_text()), page
    assert (site / "plotly.min.js").stat().st_size > 1_000_000


def _browser():
    """A headless Debian chromium under selenium, or the reason there is none."""
    chromium, driver = shutil.which("chromium"), shutil.which("chromedriver")
    problem = None
    if not chromium or not driver:
        problem = "no chromium/chromedriver on PATH (apt-get install chromium chromium-driver)"
    else:
        try:
            from selenium import webdriver
        except ImportError:
            problem = "selenium is not installed (the `site` extra)"
    if problem:
        if os.environ.get("KDBENCH_REQUIRE_BROWSER") == "1":
            pytest.fail(f"KDBENCH_REQUIRE_BROWSER=1 but {problem}", pytrace=False)
        pytest.skip(problem)
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--window-size=1280,1000",
                 "--allow-file-access-from-files"):
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    return webdriver.Chrome(service=Service(driver), options=options)


def test_site_in_a_real_browser(site, history):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as shown
    from selenium.webdriver.support.ui import WebDriverWait

    browser = _browser()
    shots = Path(os.environ.get("KDBENCH_SCREENSHOTS", site / "screenshots"))
    shots.mkdir(parents=True, exist_ok=True)
    try:
        browser.get((site / "index.html").as_uri())
        listed = {a.text for a in browser.find_elements(By.CSS_SELECTOR, "#rows tbody a")}
        assert listed == {k["bench_id"] for k in history.row_keys()}
        browser.save_screenshot(str(shots / "index.png"))

        browser.get((site / "rows" / f"quick-mnist-cpu-{FAILED_ROW}.html").as_uri())
        WebDriverWait(browser, 30).until(shown.presence_of_element_located((By.CSS_SELECTOR, "#chart-test_accuracy .main-svg")))
        points = browser.find_elements(By.CSS_SELECTOR, "#chart-test_accuracy .scatterlayer .point")
        assert len(points) >= 5 * 5  # five sessions of five seeds
        errors = [e for e in browser.get_log("browser") if e["level"] == "SEVERE"]
        assert not errors, errors
        browser.save_screenshot(str(shots / "row.png"))

        browser.get((site / "regressions.html").as_uri())
        first = browser.find_element(By.CSS_SELECTOR, "#regressions tr.fail")
        assert FAILED_ROW in first.text and "FAIL" in first.text
        browser.save_screenshot(str(shots / "regressions.png"))
    finally:
        browser.quit()


def test_index_filters_searches_and_sorts_in_a_real_browser(site, history):
    """A person types into the search box, picks a verdict, sorts a column, follows a row to its regressions."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select

    browser = _browser()
    shots = Path(os.environ.get("KDBENCH_SCREENSHOTS", site / "screenshots"))
    shots.mkdir(parents=True, exist_ok=True)

    def visible() -> list[str]:
        return [row.get_attribute("data-id") for row in browser.find_elements(By.CSS_SELECTOR, "#rows tbody tr")
                if row.is_displayed()]

    try:
        browser.get((site / "index.html").as_uri())
        every = visible()
        assert len(every) == len(history.row_keys())
        browser.find_element(By.ID, "search").send_keys("kd-lr0.01")
        assert set(visible()) == {row for row in every if "kd-lr0.01" in row} and FAILED_ROW in visible()
        Select(browser.find_element(By.ID, "filter-verdict")).select_by_visible_text("FAIL")
        assert visible() == [FAILED_ROW]
        assert browser.find_element(By.ID, "shown").text == f"1 of {len(every)} rows"
        assert "q=kd-lr0.01" in browser.current_url and "verdict=FAIL" in browser.current_url  # a link to the view
        browser.save_screenshot(str(shots / "index-filtered.png"))

        link = browser.current_url
        browser.get((site / "regressions.html").as_uri())
        browser.get(link)  # the filtered view reopened from its link
        assert visible() == [FAILED_ROW] and browser.find_element(By.ID, "search").get_attribute("value") == "kd-lr0.01"
        browser.get(link.split("#")[0] + "#verdict=PASS")  # a link that changes only the part after #
        assert FAILED_ROW not in visible() and visible()
        browser.find_element(By.ID, "search").clear()
        Select(browser.find_element(By.ID, "filter-verdict")).select_by_visible_text("all")
        Select(browser.find_element(By.ID, "filter-device")).select_by_visible_text("cpu")
        assert len(visible()) == len(every)

        runs = browser.find_element(By.XPATH, "//table[@id='rows']//th[text()='runs']")
        marks = [cell.text for cell in browser.find_elements(By.CSS_SELECTOR, "#rows tbody span.mark")]
        assert len(marks) == len(every) and all("vs" in mark or mark == "new" for mark in marks)  # a trend mark each
        runs.click()
        row_ids = browser.find_elements(By.CSS_SELECTOR, "#rows tbody tr")
        counts = [int(row.find_elements(By.TAG_NAME, "td")[-1].text) for row in row_ids]
        assert counts == sorted(counts) and runs.get_attribute("aria-sort") == "ascending"

        browser.get((site / "rows" / f"quick-mnist-cpu-{FAILED_ROW}.html").as_uri())
        browser.find_element(By.ID, "row-regressions").click()
        entries = [row for row in browser.find_elements(By.CSS_SELECTOR, "#regressions tbody tr") if row.is_displayed()]
        assert entries and all(FAILED_ROW in row.text for row in entries)
        errors = [e for e in browser.get_log("browser") if e["level"] == "SEVERE"]
        assert not errors, errors
    finally:
        browser.quit()


def test_the_index_shows_the_metric_a_verdict_is_about():
    from zoo.records.store import RecordStore
    from zoo.reports.site import Row, Run, headline_metric
    from zoo.verdicts.gates import Finding
    from zoo.verdicts.status import RowStatus, Status

    (record,) = [r for r in RecordStore(BASELINES).listing.complete().records if r.id == FAILED_ROW and r.tier == "quick"]
    regressed = Finding(FAILED_ROW, "teacher_kl", Status.REGRESSED, 1.0, 0.5, "a drop")
    row = Row("quick", "mnist", "cpu", FAILED_ROW, "pair", [Run(record, "s1", RowStatus.FAIL, [regressed])], record)
    assert headline_metric(row) == "teacher_kl"
    passing = Row("quick", "mnist", "cpu", FAILED_ROW, "pair", [Run(record, "s1", RowStatus.PASS, [])], record)
    assert headline_metric(passing) == "test_accuracy"

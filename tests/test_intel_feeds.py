"""The feeds' published schemas hold the lab's feed files; the parsers read them and refuse
anything that does not fit, naming the feed."""

from __future__ import annotations

import copy
import gzip
import json
from pathlib import Path

import jsonschema
import pytest
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT7, DRAFT202012

from riskiturva.intel import feeds
from riskiturva.intel.feeds import FeedError, Source
from tests.intel_data import DAY
from tests.intel_data import feeds as lab_feeds

SCHEMAS = Path(__file__).resolve().parents[1] / "riskiturva" / "intel" / "schemas"
NVD_EXTERNAL = "https://csrc.nist.gov/schema/nvd/api/2.0/external/"


def schema(name: str) -> dict:
    return json.loads((SCHEMAS / name).read_text(encoding="utf-8"))


def kev_validator() -> jsonschema.Validator:
    return jsonschema.Draft7Validator(
        schema("known_exploited_vulnerabilities_schema.json"),
        format_checker=jsonschema.FormatChecker(),
    )


def nvd_validator() -> jsonschema.Validator:
    # The CVE API schema refers to NIST's copies of FIRST's CVSS schemas by URL: served
    # from the committed files, never fetched.
    registry = Registry().with_resources(
        (NVD_EXTERNAL + name, Resource.from_contents(schema(name), default_specification=DRAFT7))
        for name in ("cvss-v2.0.json", "cvss-v3.0.json", "cvss-v3.1.json", "cvss-v4.0.json")
    )
    return jsonschema.Draft7Validator(
        schema("cve_api_json_2.0.schema.json"),
        registry=registry,
        format_checker=jsonschema.FormatChecker(),
    )


def eol_validator() -> jsonschema.Validator:
    # OpenAPI 3.1 schemas are JSON Schema 2020-12; resolve refs inside the document.
    document = schema("endoflife_api_v1.openapi.json")
    uri = "urn:endoflife:openapi"
    registry = Registry().with_resource(
        uri, Resource.from_contents(document, default_specification=DRAFT202012)
    )
    return jsonschema.Draft202012Validator(
        {"$ref": f"{uri}#/components/schemas/ProductResponse"},
        registry=registry,
        format_checker=jsonschema.FormatChecker(),
    )


@pytest.fixture(scope="module")
def directory(tmp_path_factory) -> Path:
    return lab_feeds(tmp_path_factory.mktemp("feeds"))


def load(path: Path) -> dict:
    return json.loads(path.read_text(encoding="utf-8"))


# --- the published schemas hold the lab's files -------------------------------------------


def test_kev_file_follows_cisas_schema(directory):
    kev_validator().validate(load(directory / "known_exploited_vulnerabilities.json"))


def test_nvd_file_follows_the_cve_api_2_0_schema_with_its_cvss_schemas(directory):
    nvd_validator().validate(load(directory / "nvd" / "cves.json"))


def test_endoflife_files_follow_the_api_v1_schema(directory):
    validator = eol_validator()
    files = sorted((directory / "endoflife").glob("*.json"))
    assert len(files) >= 10
    for path in files:
        validator.validate(load(path))


def test_epss_file_is_the_published_csv_layout(directory):
    text = gzip.decompress(next(directory.glob("epss_scores-2*.csv.gz")).read_bytes()).decode()
    lines = text.splitlines()
    assert lines[0] == "#model_version:v2025.03.14,score_date:2026-12-01T00:00:00Z"
    assert lines[1] == "cve,epss,percentile"
    assert all(line.startswith("CVE-") and line.count(",") == 2 for line in lines[2:])


def test_the_schemas_would_catch_a_broken_file(directory):
    # The validators really check: a KEV entry without its CVE id, an NVD CVSS score out of
    # range and an endoflife.date release without isEol are each refused.
    kev = load(directory / "known_exploited_vulnerabilities.json")
    del kev["vulnerabilities"][0]["cveID"]
    assert not kev_validator().is_valid(kev)
    nvd = load(directory / "nvd" / "cves.json")
    nvd["vulnerabilities"][0]["cve"]["metrics"]["cvssMetricV31"][0]["cvssData"]["baseScore"] = 11
    assert not nvd_validator().is_valid(nvd)
    eol = load(directory / "endoflife" / "php.json")
    del eol["result"]["releases"][0]["isEol"]
    assert not eol_validator().is_valid(eol)


# --- the parsers read them ----------------------------------------------------------------


def test_parsers_read_every_feed_with_its_date(directory):
    kev = feeds.parse_kev((directory / "known_exploited_vulnerabilities.json").read_bytes())
    assert kev.released == DAY and kev.version == "2026.12.01"
    by_id = {e.cve_id: e for e in kev.entries}
    assert by_id["CVE-2018-7600"].ransomware and not by_id["CVE-2019-10149"].ransomware
    nvd = feeds.parse_nvd((directory / "nvd" / "cves.json").read_bytes())
    assert nvd.timestamp == DAY and nvd.total == len(nvd.cves) == 9
    drupal = next(c for c in nvd.cves if c.cve_id == "CVE-2018-7600")
    assert drupal.cvss is not None and drupal.cvss.score == 9.8
    assert [c.end_excluding for c in drupal.criteria] == ["7.58", "8.3.9", "8.4.6", "8.5.1"]
    epss = feeds.parse_epss(next(directory.glob("epss_scores-2*.csv.gz")).read_bytes())
    assert epss.model_version == "v2025.03.14" and len(epss.scores) == 9
    php = feeds.parse_eol_product((directory / "endoflife" / "php.json").read_bytes())
    assert php.cpes == ("php:php",)
    assert {r.name: r.eol_from.isoformat() for r in php.releases if r.eol_from}["7.4"] == (
        "2022-11-28"
    )


def test_negated_and_non_vulnerable_criteria_are_left_out(directory):
    page = load(directory / "nvd" / "cves.json")
    record = page["vulnerabilities"][0]["cve"]
    record["configurations"] = [
        {"negate": True, "nodes": record["configurations"][0]["nodes"]},
        {
            "nodes": [
                {
                    "operator": "AND",
                    "cpeMatch": [
                        {
                            "vulnerable": False,
                            "criteria": "cpe:2.3:o:linux:linux_kernel:*:*:*:*:*:*:*:*",
                            "matchCriteriaId": "00000000-0000-0000-0000-000000000000",
                        }
                    ],
                }
            ]
        },
    ]
    parsed = feeds.parse_nvd(json.dumps(page).encode())
    assert parsed.cves[0].criteria == ()


@pytest.mark.parametrize(
    ("source", "change", "message"),
    [
        (Source.KEV, lambda d: d["vulnerabilities"].pop(), "says 6 entries but has 5"),
        (Source.KEV, lambda d: d["vulnerabilities"][0].update(cveID="CVE-21-1"), "cveID"),
        (Source.NVD, lambda d: d.pop("timestamp"), "timestamp"),
        (Source.NVD, lambda d: d.update(format="NVD_CPE"), "not CVE API 2.0 data"),
        (Source.EOL, lambda d: d["result"]["releases"][0].pop("isMaintained"), "isMaintained"),
    ],
)
def test_a_file_that_does_not_fit_is_refused_naming_the_feed(directory, source, change, message):
    path = {
        Source.KEV: directory / "known_exploited_vulnerabilities.json",
        Source.NVD: directory / "nvd" / "cves.json",
        Source.EOL: directory / "endoflife" / "php.json",
    }[source]
    data = copy.deepcopy(load(path))
    change(data)
    parse = {
        Source.KEV: feeds.parse_kev,
        Source.NVD: feeds.parse_nvd,
        Source.EOL: feeds.parse_eol_product,
    }
    with pytest.raises(FeedError, match=message) as error:
        parse[source](json.dumps(data).encode())
    assert str(error.value).startswith(source.label)


META = "#model_version:v1,score_date:2026-12-01T00:00:00Z\n"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("cve,epss,percentile\nCVE-2021-1,0.1,0.5\n", "first line"),
        (META + "cve,score\n", "header"),
        (META + "cve,epss,percentile\nCVE-2021-1,7,0.5\n", "line 3"),
        (META + "cve,epss,percentile\n", "no scores"),
    ],
)
def test_epss_csv_that_does_not_fit_is_refused(text, message):
    with pytest.raises(FeedError, match=message):
        feeds.parse_epss(text.encode())

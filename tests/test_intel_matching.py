"""CPE names and version ranges: our compiled matcher agrees with cpematcher's."""

from __future__ import annotations

import pytest
from cpematcher.core import CPE as ReferenceCpe
from hypothesis import given, settings
from hypothesis import strategies as st

from riskiturva.intel.matching import (
    CompiledCriterion,
    CpeError,
    Criterion,
    parse_cpe,
    version_key,
)

OPENSSH = "cpe:2.3:a:openbsd:openssh:*:*:*:*:*:*:*:*"


@pytest.mark.parametrize(
    ("older", "newer"),
    [
        ("9.2p1", "9.8p1"),
        ("2.4.5", "2.4.49"),
        ("1.0.2", "1.0.2k"),
        ("9.9", "10.0"),
        ("4.89", "4.90.1"),
        ("7.4", "7.4p1"),
        ("8.15.3", "8.16"),
    ],
)
def test_versions_compare_in_natural_order(older, newer):
    assert version_key(older) < version_key(newer)


def test_trailing_zero_components_are_the_same_version():
    assert version_key("2.4") == version_key("2.4.0") and version_key("9") == version_key("9.0")


@pytest.mark.parametrize(
    ("name", "key", "version"),
    [
        ("cpe:/a:openbsd:openssh:7.4p1", "openbsd:openssh", "7.4p1"),
        ("cpe:2.3:a:apache:http_server:2.4.49:*:*:*:*:*:*:*", "apache:http_server", "2.4.49"),
        ("cpe:2.3:a:exim:exim", "exim:exim", "*"),  # a prefix, as endoflife.date writes them
        ("cpe:2.3:a:joomla:joomla\\!:4.2.7:*:*:*:*:*:*:*", "joomla:joomla!", "4.2.7"),
    ],
)
def test_cpe_names_of_both_versions_parse(name, key, version):
    parsed = parse_cpe(name)
    assert (parsed.key, parsed.version) == (key, version)


@pytest.mark.parametrize("name", ["", "cpe:2.3:x:a:b", "openssh 7.4", "cpe:2.3:a"])
def test_malformed_cpe_names_are_refused(name):
    with pytest.raises(CpeError):
        parse_cpe(name)


def test_update_part_joins_the_version_for_exact_criteria():
    assert parse_cpe("cpe:2.3:a:openbsd:openssh:7.4:p1:*:*:*:*:*:*").full_version == "7.4p1"


def test_range_text_says_which_versions_are_affected():
    criterion = Criterion(
        "CVE-2024-6387", OPENSSH, "*", start_including="8.5p1", end_excluding="9.8p1"
    )
    assert criterion.range_text == ">= 8.5p1, < 9.8p1"
    assert Criterion("CVE-1", OPENSSH, "7.4p1").range_text == "= 7.4p1"


# Versions in the shapes NVD and banners use: 1–4 numeric parts, an optional p-release or
# letter. Pre-releases (rc, beta) are left out: natsort orders them after the release, as
# cpematcher does, and both then agree anyway.
_part = st.integers(min_value=0, max_value=30).map(str)
versions = st.builds(
    lambda parts, suffix: ".".join(parts) + suffix,
    st.lists(_part, min_size=1, max_size=4),
    st.sampled_from(["", "p1", "p2", "a", "k"]),
)
bounds = st.one_of(st.none(), versions)


@settings(max_examples=300, deadline=None)
@given(
    version=versions,
    start_including=bounds,
    start_excluding=bounds,
    end_including=bounds,
    end_excluding=bounds,
)
def test_compiled_matching_agrees_with_cpematcher(
    version, start_including, start_excluding, end_including, end_excluding
):
    criterion = Criterion(
        "CVE-2000-0001",
        OPENSSH,
        "*",
        start_including,
        start_excluding,
        end_including,
        end_excluding,
    )
    reference = ReferenceCpe(
        OPENSSH,
        version_start_including=start_including,
        version_start_excluding=start_excluding,
        version_end_including=end_including,
        version_end_excluding=end_excluding,
    )
    observed = ReferenceCpe(f"cpe:2.3:a:openbsd:openssh:{version}:*:*:*:*:*:*:*")
    assert CompiledCriterion(criterion).matches(version_key(version)) == reference.matches(observed)


@settings(max_examples=200, deadline=None)
@given(version=versions, exact=versions)
def test_exact_criteria_agree_with_cpematcher(version, exact):
    name = f"cpe:2.3:a:openbsd:openssh:{exact}:*:*:*:*:*:*:*"
    reference = ReferenceCpe(name).matches(
        ReferenceCpe(f"cpe:2.3:a:openbsd:openssh:{version}:*:*:*:*:*:*:*")
    )
    assert (
        CompiledCriterion(Criterion("CVE-2000-0001", name, exact)).matches(version_key(version))
        == reference
    )

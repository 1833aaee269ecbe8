"""Vulnerability intelligence: known-exploited vulnerabilities and end-of-life software.

* `software` — typed `Software` observations and the shared identification helpers the
  collectors use (banners, HTTP headers, CMS hints), with a confidence that knows about
  distribution patch levels.
* `feeds` — parsers of the public feeds (CISA KEV, NVD CVE API 2.0, FIRST EPSS,
  endoflife.date), each following its published schema (`schemas/`).
* `models`, `store` — the local, dated store in Riskiturva's database.
* `update` — `riskiturva intel update` (HTTP, through the configured resolver) and
  `riskiturva intel import DIR` (air-gapped sites).
* `snapshot` — the read-only view the rules get through the scan context, with its age.
* `matching` — CPE match criteria and version ranges.
* `rules` — pure rules: software + intelligence → finding drafts.

The manager's line and the software page read through `riskiturva.views.software`.
See docs/vulnerabilities.md.
"""

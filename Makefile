# Riskiturva: `make demo` runs the lab, scans it and serves the dashboard; `make test` runs the tests.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
# System packages: nmap for the services collector; the rest run the lab estate and the tests.
APT_PACKAGES := nmap knot knot-dnsutils nginx-light redis-server vsftpd dnsutils iproute2 util-linux tcpdump openssl poppler-utils postgresql libpango-1.0-0 libpangoft2-1.0-0 fonts-dejavu-core chromium chromium-driver
# Only slow tests need these (LibreOffice opens the XLSX and CSV exports): `make test-all`
# installs them too; without them those tests are skipped, saying why.
SLOW_APT_PACKAGES := libreoffice-calc-nogui
# Packages held to mypy (strict, pydantic plugin; see [tool.mypy] in pyproject.toml). Add one
# here when it passes: `make lint MYPY_PACKAGES="collectors riskiturva"` tries it first.
MYPY_PACKAGES ?= collectors riskiturva dashboard riskiturva_cli
# Runs a command in a network namespace that has only loopback: nothing can leave the machine,
# not even a stray lookup through the system resolver (see README, "Network safety").
LOOPBACK_ONLY := unshare --net sh -c 'ip link set lo up && exec "$$0" "$$@"'

.PHONY: install system-packages test test-all lint demo clean

system-packages:
	@missing=""; for p in $(APT_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  echo "Installing system packages:$$missing"; \
	  apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q $$missing; \
	fi

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

install: system-packages $(BIN)/python
	$(BIN)/pip install -q --upgrade pip
	# --upgrade with the eager strategy: every run resolves the newest releases the bounds in
	# pyproject.toml allow, so an upstream release breaks CI on a branch before it breaks a user.
	$(BIN)/pip install -q --upgrade --upgrade-strategy eager -e '.[test]'
	$(BIN)/pip check
	# axe-core for the browser tests' accessibility check (tests/axe/package-lock.json).
	@command -v npm >/dev/null || (apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q npm)
	cd tests/axe && npm ci --no-audit --no-fund --silent

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy $(MYPY_PACKAGES)

test: install lint
	$(LOOPBACK_ONLY) $(BIN)/pytest -m "not slow" -q

test-all: APT_PACKAGES += $(SLOW_APT_PACKAGES)
test-all: install
	$(LOOPBACK_ONLY) $(BIN)/pytest -q

# Not in a network namespace: your browser must reach the dashboard. The demo still never
# uses the system resolver: every lookup goes to the lab's own name server on 127.53.0.1.
demo: install
	$(BIN)/riskiturva demo

clean:
	rm -rf $(VENV) data build *.egg-info

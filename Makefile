# Recur — the two commands of the quickstart: `make run` and `make test`.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
HOST   ?= 127.0.0.1
PORT   ?= 8000
PO     := $(wildcard src/recur/locale/*/LC_MESSAGES/django.po)
MO     := $(PO:.po=.mo)

.PHONY: run test install browser messages makemessages bench clean

run: install ## install into .venv, migrate and serve the web app with the billing worker
	$(BIN)/recur serve --host $(HOST) --port $(PORT)

test: install browser ## install and run the whole test suite (DATABASE_URL picks the database)
	$(BIN)/python -m pytest $(PYTEST_ARGS)

# The browser tests (tests/e2e) drive Debian's Chromium: Playwright cannot download browsers here.
# Installed with apt when missing and running as root; RECUR_SKIP_BROWSER=1 skips them instead.
browser:
	@if [ ! -x /usr/bin/chromium ] && [ "$${RECUR_SKIP_BROWSER:-0}" != 1 ]; then \
	  if [ "$$(id -u)" = 0 ]; then \
	    (apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium) \
	      || echo "Could not install chromium: the browser tests will fail"; \
	  else echo "/usr/bin/chromium is missing: run 'sudo apt-get install chromium' (or RECUR_SKIP_BROWSER=1)"; fi; \
	fi

install: $(STAMP) $(MO)

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e ".[test]"
	touch $(STAMP)

# Message catalogs are compiled at install time with Babel (no GNU gettext needed).
%.mo: %.po $(STAMP)
	$(BIN)/pybabel compile --use-fuzzy -i $< -o $@

makemessages: $(STAMP) ## refresh the .po files from the sources (needs GNU gettext)
	cd src/recur && ../../$(BIN)/django-admin makemessages -l nl -l en --settings=recur.settings

clean:
	rm -rf $(VENV) var

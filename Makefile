# Recur — the two commands of the quickstart: `make run` and `make test`.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
HOST   ?= 127.0.0.1
PORT   ?= 8000
PO     := $(wildcard src/recur/locale/*/LC_MESSAGES/django.po)
MO     := $(PO:.po=.mo)

.PHONY: run test install messages makemessages bench clean

run: install ## install into .venv, migrate and serve the web app with the billing worker
	$(BIN)/recur serve --host $(HOST) --port $(PORT)

test: install ## install and run the whole test suite (DATABASE_URL picks the database)
	$(BIN)/python -m pytest $(PYTEST_ARGS)

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

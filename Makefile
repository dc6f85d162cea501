# The two commands of the README. Each does its own set-up: .venv/, packages, MNIST.
PY := .venv/bin/python
STAMP := .venv/.installed

.PHONY: demo test setup data build clean-out

demo: setup data
	$(PY) -m autograder batch examples/submissions.zip --roster examples/roster.csv --db out/gradebook.db
	$(PY) -m autograder export --db out/gradebook.db --canvas-csv out/klms_gradebook.csv --questions-csv out/questions.csv --assignment-id 12345 --title "Lecture 3 assignment"
	$(PY) -m autograder feedback --db out/gradebook.db --out out/feedback
	$(PY) -m autograder report --db out/gradebook.db --out out/report.html

test: setup data
	$(PY) -m pytest $(PYTEST_ARGS)

setup: $(STAMP)

$(STAMP): requirements.txt pyproject.toml
	test -x $(PY) || python3 -m venv .venv
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -r requirements.txt
	$(PY) -m pip install -q --no-deps -e .   # the `autograder` command, from any folder
	touch $(STAMP)

data: setup
	$(PY) -m autograder fetch-data

build: setup
	$(PY) -m autograder build

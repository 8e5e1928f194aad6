# The README's commands. Each installs what a fresh Debian machine lacks.
.PHONY: run test demo bench

run:   ## Run the gateway against a local PostgreSQL it initialises under .data/
	bash scripts/run.sh

test:  ## Run every test with a throwaway PostgreSQL
	bash scripts/test.sh

demo:  ## Run the gateway against the fake Salesforce and walk through a session
	bash scripts/demo.sh

bench: ## Measure /token against a reference in the same run
	bash scripts/bench.sh

# Thin wrappers; the scripts say what they do.
.PHONY: demo test caddy ci

# Run the demo (Caddyfile.example) on http://localhost:8080.
demo:
	scripts/demo

# The test suite, as CI runs it.
test:
	go test -count=1 ./...

# The production binary ./caddy, built with xcaddy from xcaddy.json.
caddy:
	scripts/build-caddy

# Everything CI runs (installs PostgreSQL, wrk, Chromium and Node.js when missing).
ci:
	bash .ci/run

package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Latency at a fixed rate. wrk keeps every connection busy (closed loop),
// so its percentiles are mostly queueing at saturation: a route that is
// 3 % slower shows up as about 1 ms more p99. What the guard adds to a
// request's latency is measured instead at a fixed request rate (open
// loop), below saturation, with requests to the plain and the guarded
// route taking turns. vegeta is the generator: it sends on a schedule,
// whatever the answers' pace, and runs as a process of its own, like wrk.

// vegetaModule is installed into the run's directory with go install.
const vegetaModule = "github.com/tsenart/vegeta/v12@v12.13.0"

// openLoopLoad is the fixed rate, both routes together, as a share of the
// plain route's median throughput under wrk. vegeta (a Go HTTP client)
// costs far more CPU per request than wrk: at half the plain route's
// throughput the machine saturated and answers took seconds.
const openLoopLoad = 0.25

// fixedRateRun is what one vegeta run measured.
type fixedRateRun struct {
	p50, p90, p99, max time.Duration
	rate               float64 // requests per second actually sent
}

// installVegeta builds vegeta from the Go module proxy into dir and returns
// its path.
func installVegeta(dir string) (string, error) {
	goBin, err := exec.LookPath("go")
	if err != nil {
		return "", errors.New("go not found in PATH: it installs vegeta, the fixed-rate load generator")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, goBin, "install", vegetaModule)
	cmd.Env = append(os.Environ(), "GOBIN="+dir)
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go install %s: %w\n%s", vegetaModule, err, out)
	}
	return filepath.Join(dir, "vegeta"), nil
}

// runFixedRate sends rate requests per second for d, alternating between
// the variants' routes, each request with its variant's bearer token, and
// reports each variant's latency percentiles. Taking turns within one
// run, the variants meet the same moments of the machine's noise. Every
// answer must be the variant's status.
func runFixedRate(vegeta, dir string, rate int, d time.Duration, base string, variants []*variant) (map[*variant]fixedRateRun, error) {
	ctx, cancel := context.WithTimeout(context.Background(), d+time.Minute)
	defer cancel()
	var targets strings.Builder
	byURL := map[string]*variant{}
	for _, v := range variants {
		fmt.Fprintf(&targets, "GET %s\nAuthorization: Bearer %s\n\n", base+v.path, v.token)
		byURL[base+v.path] = v
	}
	if len(byURL) != len(variants) {
		return nil, errors.New("fixed rate: two variants share a route")
	}
	results := filepath.Join(dir, "vegeta-results.bin")
	attack := exec.CommandContext(ctx, vegeta, "attack",
		"-rate", strconv.Itoa(rate)+"/s", "-duration", d.String(), "-timeout", "10s", "-output", results)
	attack.Stdin = strings.NewReader(targets.String())
	if out, err := attack.CombinedOutput(); err != nil {
		return nil, fmt.Errorf("vegeta attack: %w\n%s", err, out)
	}
	encoded, err := exec.CommandContext(ctx, vegeta, "encode", "-to", "json", results).Output()
	if err != nil {
		return nil, fmt.Errorf("vegeta encode: %w", err)
	}
	latencies := map[*variant][]time.Duration{}
	dec := json.NewDecoder(bytes.NewReader(encoded))
	for dec.More() {
		var res struct {
			Code    int    `json:"code"`
			Latency int64  `json:"latency"`
			URL     string `json:"url"`
			Error   string `json:"error"`
		}
		if err := dec.Decode(&res); err != nil {
			return nil, fmt.Errorf("vegeta results: %w", err)
		}
		v := byURL[res.URL]
		if v == nil {
			return nil, fmt.Errorf("fixed rate: an answer from %q, which was not asked", res.URL)
		}
		if res.Code != v.want {
			return nil, fmt.Errorf("fixed rate: %s answered %d, want %d %s", v.name, res.Code, v.want, res.Error)
		}
		latencies[v] = append(latencies[v], time.Duration(res.Latency))
	}
	out := map[*variant]fixedRateRun{}
	for _, v := range variants {
		ls := latencies[v]
		if len(ls) == 0 {
			return nil, fmt.Errorf("fixed rate: no answer from %s", v.name)
		}
		slices.Sort(ls)
		at := func(q float64) time.Duration { return ls[min(len(ls)-1, int(q*float64(len(ls))))] }
		out[v] = fixedRateRun{p50: at(0.50), p90: at(0.90), p99: at(0.99), max: ls[len(ls)-1],
			rate: float64(len(ls)) / d.Seconds()}
	}
	return out, nil
}

// openLoop is the fixed-rate measurement of the plain and guarded routes.
type openLoop struct {
	rate           int // both routes together
	duration       time.Duration
	plain, guarded []fixedRateRun
}

// measureOpenLoop runs plain and guarded together at a fixed rate, o.rounds
// times.
func measureOpenLoop(vegeta, dir string, o options, rate int, base string, plain, guarded *variant) (*openLoop, error) {
	ol := &openLoop{rate: rate, duration: o.duration}
	for r := range o.rounds {
		res, err := runFixedRate(vegeta, dir, rate, o.duration, base, []*variant{plain, guarded})
		if err != nil {
			return nil, fmt.Errorf("fixed rate, round %d: %w", r+1, err)
		}
		ol.plain = append(ol.plain, res[plain])
		ol.guarded = append(ol.guarded, res[guarded])
		for _, v := range []*variant{plain, guarded} {
			fmt.Printf("round %d  %-13s %6.0f req/s (fixed)  p50 %-9s p90 %-9s p99 %-9s max %s\n",
				r+1, v.name, res[v].rate, fmtDur(res[v].p50), fmtDur(res[v].p90), fmtDur(res[v].p99), fmtDur(res[v].max))
		}
	}
	return ol, nil
}

// p99Stat is the median and range of the runs' p99, in milliseconds.
func p99Stat(runs []fixedRateRun) stat {
	var xs []float64
	for _, r := range runs {
		xs = append(xs, float64(r.p99)/1e6)
	}
	return summarize(xs)
}

// addedP99 is the guarded route's p99 minus the plain route's, run by run,
// in milliseconds.
func (ol *openLoop) addedP99() stat {
	var xs []float64
	for i := range min(len(ol.plain), len(ol.guarded)) {
		xs = append(xs, float64(ol.guarded[i].p99-ol.plain[i].p99)/1e6)
	}
	return summarize(xs)
}

// markdown is the report's section on the fixed-rate runs.
func (ol *openLoop) markdown() string {
	var b strings.Builder
	fmt.Fprintf(&b, "## Latency at a fixed rate\n\n%d req/s in all (%.0f %% of the plain route's median throughput above), sent on a schedule by vegeta whatever the answers' pace (open loop), taking turns between the plain and the guarded route within each run, %d runs of %v. Medians over the runs, [min–max], ms.\n\n",
		ol.rate, openLoopLoad*100, len(ol.plain), ol.duration)
	b.WriteString("| variant | req/s | p50 ms | p90 ms | p99 ms | max ms |\n| --- | --- | --- | --- | --- | --- |\n")
	for _, row := range []struct {
		name string
		runs []fixedRateRun
	}{{"plain", ol.plain}, {"guarded", ol.guarded}} {
		var rate, p50, p90, p99, mx []float64
		for _, r := range row.runs {
			rate = append(rate, r.rate)
			p50 = append(p50, float64(r.p50)/1e6)
			p90 = append(p90, float64(r.p90)/1e6)
			p99 = append(p99, float64(r.p99)/1e6)
			mx = append(mx, float64(r.max)/1e6)
		}
		fmt.Fprintf(&b, "| %s | %.0f | %s | %s | %s | %s |\n", row.name, summarize(rate).med,
			fmtStat(summarize(p50)), fmtStat(summarize(p90)), fmtStat(summarize(p99)), fmtStat(summarize(mx)))
	}
	return b.String()
}

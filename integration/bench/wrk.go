package main

import (
	"context"
	"fmt"
	"math"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"time"
)

var (
	reRPS      = regexp.MustCompile(`Requests/sec:\s+([0-9.]+)`)
	rePercent  = regexp.MustCompile(`(?m)^\s+(50|75|90|99)%\s+([0-9.]+)(us|ms|s|m)\s*$`)
	reRequests = regexp.MustCompile(`(\d+) requests in`)
	reNon2xx   = regexp.MustCompile(`Non-2xx or 3xx responses: (\d+)`)
	reSocket   = regexp.MustCompile(`Socket errors: (.*)`)
)

// runVariant runs wrk once against the variant and parses its report.
// Every response must have the variant's status: a 2xx variant may have no
// non-2xx answers, a 401 variant nothing but. The refresh variant mints its
// tokens first and runs script. With profile, a CPU profile covers the wrk
// run only, not the minting.
func runVariant(wrk, script string, o options, d time.Duration, base string, v *variant, profile bool) (run, error) {
	args := []string{"-H", "Authorization: Bearer " + v.token, base + v.path}
	if v.refresh != nil {
		if err := v.refresh.prepare(o, d); err != nil {
			return run{}, fmt.Errorf("minting refresh tokens: %w", err)
		}
		args = []string{"-s", script, base}
	}
	if v.dpop != nil {
		if err := v.dpop.prepare(o, d); err != nil {
			return run{}, fmt.Errorf("making DPoP proofs: %w", err)
		}
		args = []string{"-s", v.dpop.script, base}
	}
	if v.exchange != nil {
		if err := v.exchange.prepare(o, d); err != nil {
			return run{}, fmt.Errorf("making codes: %w", err)
		}
		args = []string{"-s", v.exchange.script, base}
	}
	if profile {
		stop, err := startProfile(o, v)
		if err != nil {
			return run{}, err
		}
		defer stop()
	}
	ctx, cancel := context.WithTimeout(context.Background(), d+30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, wrk, append([]string{
		"-t" + strconv.Itoa(o.threads), "-c" + strconv.Itoa(o.connections),
		"-d" + strconv.Itoa(int(math.Ceil(d.Seconds()))) + "s", "--latency"}, args...)...)
	selfBefore, start := processCPU(), time.Now()
	out, err := cmd.CombinedOutput()
	if err != nil {
		return run{}, fmt.Errorf("wrk: %w\n%s", err, out)
	}
	wall := time.Since(start).Seconds()
	text := string(out)
	var r run
	r.selfCores = (processCPU() - selfBefore).Seconds() / wall
	r.wrkCores = (cmd.ProcessState.UserTime() + cmd.ProcessState.SystemTime()).Seconds() / wall
	m := reRPS.FindStringSubmatch(text)
	if m == nil {
		return run{}, fmt.Errorf("no Requests/sec in wrk output:\n%s", text)
	}
	r.rps, _ = strconv.ParseFloat(m[1], 64)
	found := 0
	for _, pm := range rePercent.FindAllStringSubmatch(text, -1) {
		d, err := parseWrkDuration(pm[2], pm[3])
		if err != nil {
			return run{}, err
		}
		switch pm[1] {
		case "50":
			r.p50 = d
		case "90":
			r.p90 = d
		case "99":
			r.p99 = d
		}
		found++
	}
	if found < 4 {
		return run{}, fmt.Errorf("no latency distribution in wrk output:\n%s", text)
	}
	if m := reRequests.FindStringSubmatch(text); m != nil {
		r.requests, _ = strconv.ParseInt(m[1], 10, 64)
	}
	if m := reNon2xx.FindStringSubmatch(text); m != nil {
		r.non2xx, _ = strconv.ParseInt(m[1], 10, 64)
	}
	if m := reSocket.FindStringSubmatch(text); m != nil {
		r.socketErrors = strings.TrimSpace(m[1])
	}
	if r.requests == 0 {
		return run{}, fmt.Errorf("wrk completed no request:\n%s", text)
	}
	if v.refresh != nil {
		return r, v.refresh.parseRefreshCounts(text, &r)
	}
	if v.dpop != nil {
		return r, v.dpop.parseCounts(text, &r)
	}
	if v.exchange != nil {
		return r, v.exchange.parseCounts(text, &r)
	}
	if v.want < 300 && r.non2xx != 0 {
		return run{}, fmt.Errorf("%d of %d responses were not 2xx", r.non2xx, r.requests)
	}
	// wrk counts requests cut off at the end of the run too; allow those.
	if v.want >= 300 && r.requests-r.non2xx > int64(o.connections) {
		return run{}, fmt.Errorf("only %d of %d responses were refused", r.non2xx, r.requests)
	}
	return r, nil
}

// processCPU is the CPU time this process has used so far, user and
// system.
func processCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func parseWrkDuration(num, unit string) (time.Duration, error) {
	f, err := strconv.ParseFloat(num, 64)
	if err != nil {
		return 0, err
	}
	scale := map[string]float64{"us": 1e3, "ms": 1e6, "s": 1e9, "m": 60e9}[unit]
	return time.Duration(f * scale), nil
}

// stat is the median and range of one measure over the rounds.

// scriptCounts reads the line "<label>: ok=N bad=N exhausted=N" that the
// wrk scripts of the token and DPoP variants print when done, sets r's
// exhausted and non-2xx counts from it, and returns the 200 and the other
// answers.
func scriptCounts(label, text string, r *run) (ok, bad int64, err error) {
	m := regexp.MustCompile(regexp.QuoteMeta(label) + `: ok=(\d+) bad=(\d+) exhausted=(\d+)`).FindStringSubmatch(text)
	if m == nil {
		return 0, 0, fmt.Errorf("no %s line in wrk output:\n%s", label, text)
	}
	ok, _ = strconv.ParseInt(m[1], 10, 64)
	bad, _ = strconv.ParseInt(m[2], 10, 64)
	r.exhausted, _ = strconv.ParseInt(m[3], 10, 64)
	r.non2xx = bad
	return ok, bad, nil
}

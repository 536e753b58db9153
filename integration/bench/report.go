package main

import (
	"fmt"
	"os"
	"runtime"
	"slices"
	"strings"
	"time"

	"github.com/caddyserver/caddy/v2"
)

type stat struct{ med, min, max float64 }

func summarize(xs []float64) stat {
	s := slices.Clone(xs)
	slices.Sort(s)
	n := len(s)
	med := s[n/2]
	if n%2 == 0 {
		med = (s[n/2-1] + s[n/2]) / 2
	}
	return stat{med: med, min: s[0], max: s[n-1]}
}

// summary is one variant's medians.
type summary struct {
	*variant
	rps, p50, p90, p99 stat // latencies in milliseconds
}

func summarizeVariant(v *variant) summary {
	var rps, p50, p90, p99 []float64
	ms := func(d time.Duration) float64 { return float64(d) / 1e6 }
	for _, r := range v.result {
		rps = append(rps, r.rps)
		p50 = append(p50, ms(r.p50))
		p90 = append(p90, ms(r.p90))
		p99 = append(p99, ms(r.p99))
	}
	return summary{variant: v, rps: summarize(rps), p50: summarize(p50), p90: summarize(p90), p99: summarize(p99)}
}

// target is one line of the targets.
type target struct {
	name, measured, goal, result string
}

type report struct {
	o       options
	load    [2]string // load averages before and after the rounds
	sums    []summary
	byName  map[string]summary
	targets []target
	// openLoop is the fixed-rate latency of plain and guarded.
	openLoop *openLoop
	// jwt is the JWT access token phase.
	jwt *jwtPhase
}

func newReport(o options, variants []*variant, ol *openLoop) *report {
	rep := &report{o: o, byName: map[string]summary{}, openLoop: ol}
	for _, v := range variants {
		s := summarizeVariant(v)
		rep.sums = append(rep.sums, s)
		rep.byName[v.name] = s
	}
	plain, guarded := rep.byName["plain"], rep.byName["guarded"]
	fa := rep.byName["forward_auth"]
	passFail := func(ok bool) string {
		if ok {
			return "PASS"
		}
		return "FAIL"
	}
	ratio := func(a, b summary) float64 { return a.rps.med / b.rps.med }

	r := ratio(guarded, plain)
	rep.targets = append(rep.targets, target{"guarded vs plain reverse_proxy, throughput",
		fmt.Sprintf("%.3f× (paired per round: %s)", r, pairedRatio(guarded.variant, plain.variant)), "≥ 0.97×", passFail(r >= 0.97)})
	added := ol.addedP99()
	saturated := guarded.p99.med - plain.p99.med
	rep.targets = append(rep.targets, target{"guarded vs plain reverse_proxy, added p99 latency",
		fmt.Sprintf("%+.3f ms at %d req/s, open loop (paired per round: [%+.3f – %+.3f]; p99 %.3f vs %.3f ms). At saturation under wrk: %+.3f ms (%.3f vs %.3f ms)",
			added.med, ol.rate, added.min, added.max, p99Stat(ol.guarded).med, p99Stat(ol.plain).med,
			saturated, guarded.p99.med, plain.p99.med),
		"≤ 0.2 ms", passFail(added.med <= 0.2)})
	for _, name := range []string{"malformed", "unknown"} {
		s := rep.byName[name]
		r := ratio(s, plain)
		rep.targets = append(rep.targets, target{name + " token vs plain reverse_proxy, throughput",
			fmt.Sprintf("%.3f× (paired per round: %s)", r, pairedRatio(s.variant, plain.variant)), "≥ 1.0×", passFail(r >= 1.0)})
	}
	headers := rep.byName["headers"]
	r = ratio(guarded, headers)
	rep.targets = append(rep.targets,
		target{"guarded vs reverse_proxy making the same header changes (request_header), throughput",
			fmt.Sprintf("%.3f× (paired per round: %s): the guard's own cost, without that of the identity headers", r, pairedRatio(guarded.variant, headers.variant)),
			"report", "—"},
		target{"store queries for malformed tokens", "0: refused by the checksum before any cache or store look-up (oauth: TestValidateMalformedTokenCostsNoLookup, BenchmarkValidateMalformed)", "0", "PASS (unit test)"},
		target{"guarded vs forward_auth, throughput",
			fmt.Sprintf("%.3f× (paired per round: %s); p99 %.3f vs %.3f ms", ratio(guarded, fa), pairedRatio(guarded.variant, fa.variant), guarded.p99.med, fa.p99.med),
			"report", "—"},
	)
	tok := rep.byName[refreshName(o)]
	r = ratio(tok, plain)
	measured := fmt.Sprintf("%.3f× (paired per round: %s); p99 %.3f vs %.3f ms", r, pairedRatio(tok.variant, plain.variant), tok.p99.med, plain.p99.med)
	sqlite := target{"token endpoint, refresh grant on SQLite, vs plain reverse_proxy, throughput", measured, "≥ 0.5×", passFail(r >= 0.5)}
	postgres := target{"token endpoint, refresh grant on PostgreSQL, vs plain reverse_proxy, throughput", measured, "report", "—"}
	if o.postgres {
		sqlite.measured, sqlite.result = "not measured in this run (-postgres)", "—"
	} else {
		postgres.measured = "not measured in this run (run with -postgres)"
	}
	rep.targets = append(rep.targets, sqlite, postgres)
	dpop, bearer := rep.byName[dpopName], rep.byName[dpopBearerName]
	rep.targets = append(rep.targets, target{"DPoP-bound token with a fresh ES256 proof per request vs the same route with a bearer token, throughput",
		fmt.Sprintf("%.3f× (paired per round: %s); p99 %.3f vs %.3f ms", ratio(dpop, bearer), pairedRatio(dpop.variant, bearer.variant), dpop.p99.med, bearer.p99.med),
		"report", "—"})
	withID, withoutID := rep.byName[exchangeIDTokenName], rep.byName[exchangeName]
	rep.targets = append(rep.targets, target{"code exchange with an ID token vs without, throughput",
		fmt.Sprintf("%.3f× (paired per round: %s); p99 %.3f vs %.3f ms", ratio(withID, withoutID), pairedRatio(withID.variant, withoutID.variant), withID.p99.med, withoutID.p99.med),
		"report", "—"})
	return rep
}

// pairedRatio is the median and range of a's throughput over b's, round by
// round.
func pairedRatio(a, b *variant) string {
	var rs []float64
	for i := range a.result {
		if i < len(b.result) {
			rs = append(rs, a.result[i].rps/b.result[i].rps)
		}
	}
	s := summarize(rs)
	return fmt.Sprintf("%.3f× [%.3f–%.3f]", s.med, s.min, s.max)
}

func (rep *report) misses() []string {
	var out []string
	for _, t := range rep.targets {
		if t.result == "FAIL" {
			out = append(out, t.name+": "+t.measured+", want "+t.goal)
		}
	}
	return out
}

func (rep *report) markdown() string {
	var b strings.Builder
	o := rep.o
	version, _ := caddy.Version()
	fmt.Fprintf(&b, "# tokengate load benchmark\n\n")
	fmt.Fprintf(&b, "%s; Caddy %s, %s, %s/%s, %d CPUs. wrk -t%d -c%d --latency, %d rounds × %v per variant, variants alternating; medians over the rounds, [min–max].\n\n",
		time.Now().UTC().Format("2006-01-02 15:04 UTC"), version, runtime.Version(), runtime.GOOS, runtime.GOARCH, runtime.NumCPU(),
		o.threads, o.connections, o.rounds, o.duration)
	plain := rep.byName["plain"]
	fa := rep.byName["forward_auth"]
	b.WriteString("| variant | route | status | req/s | p50 ms | p90 ms | p99 ms | vs plain | vs forward_auth |\n")
	b.WriteString("| --- | --- | --- | --- | --- | --- | --- | --- | --- |\n")
	for _, s := range rep.sums {
		fmt.Fprintf(&b, "| %s | %s (%s) | %d | %.0f [%.0f–%.0f] | %s | %s | %s | %.3f× | %.3f× |\n",
			s.name, s.path, s.note, s.want, s.rps.med, s.rps.min, s.rps.max,
			fmtStat(s.p50), fmtStat(s.p90), fmtStat(s.p99),
			s.rps.med/plain.rps.med, s.rps.med/fa.rps.med)
	}
	b.WriteString("\n" + rep.refreshNote() + "\n\n")
	b.WriteString(rep.openLoop.markdown() + "\n")
	if rep.jwt != nil {
		b.WriteString(rep.jwt.markdown() + "\n")
	}

	b.WriteString("## Targets\n\n| target | measured | goal | result |\n| --- | --- | --- | --- |\n")
	for _, t := range rep.targets {
		fmt.Fprintf(&b, "| %s | %s | %s | %s |\n", t.name, t.measured, t.goal, t.result)
	}

	b.WriteString("\n## Every run (req/s; p99 ms)\n\n| variant |")
	for r := range o.rounds {
		fmt.Fprintf(&b, " round %d |", r+1)
	}
	b.WriteString("\n| --- |" + strings.Repeat(" --- |", o.rounds) + "\n")
	for _, s := range rep.sums {
		fmt.Fprintf(&b, "| %s |", s.name)
		for _, r := range s.result {
			fmt.Fprintf(&b, " %.0f; %.3f |", r.rps, float64(r.p99)/1e6)
		}
		b.WriteString("\n")
	}
	var sock []string
	for _, s := range rep.sums {
		for _, r := range s.result {
			if r.socketErrors != "" {
				sock = append(sock, s.name+": "+r.socketErrors)
			}
		}
	}
	if len(sock) > 0 {
		b.WriteString("\nwrk socket errors: " + strings.Join(sock, "; ") + "\n")
	}
	if rep.load[0] != "" {
		fmt.Fprintf(&b, "\nLoad average (1, 5, 15 min) before the rounds: %s; after: %s. Anything else running on the machine shows up as noise here.\n", rep.load[0], rep.load[1])
	}
	b.WriteString("\nLoad generator, Caddy and the backends share the machine's CPUs, so absolute figures are lower than on separate hosts; compare the ratios, which come from the same run.\n")
	return b.String()
}

// loadAverage returns the system's 1, 5 and 15 minute load averages, or ""
// where /proc/loadavg does not exist.
func loadAverage() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return ""
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return ""
	}
	return strings.Join(f[:3], ", ")
}

func fmtStat(s stat) string {
	return fmt.Sprintf("%.3f [%.3f–%.3f]", s.med, s.min, s.max)
}

func fmtDur(d time.Duration) string {
	return fmt.Sprintf("%.3fms", float64(d)/1e6)
}

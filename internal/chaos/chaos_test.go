package chaos

import (
	"encoding/json"
	"flag"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/vigil-ha/vigil/internal/labcluster"
)

func TestMain(m *testing.M) {
	code := m.Run()
	labcluster.Cleanup()
	os.Exit(code)
}

var (
	seedFlag     = flag.Uint64("chaos.seed", 0, "nemesis seed (0: from the clock, logged)")
	durationFlag = flag.Duration("chaos.duration", 0, "TestChaos: how long to inject faults per cluster size (0 skips it)")
	nodesFlag    = flag.String("chaos.nodes", "3,5", "TestChaos: cluster sizes to run, one after the other")
	trialsFlag   = flag.Int("chaos.trials", 0, "TestChaos: run at least this many trials per size")
	kindsFlag    = flag.String("chaos.kinds", "", "comma-separated fault kinds to inject (default: all)")
	slotFlag     = flag.Int("chaos.slot", 0, "TestChaos: 0-2, which lab tag and subnets to use, so that several long runs can share a machine")
	outFlag      = flag.String("chaos.out", "", "directory for the JSON results and SVG timelines (default: the test's temp dir)")
)

// seed is -chaos.seed, or one from the clock.
func seed(t *testing.T) uint64 {
	if *seedFlag != 0 {
		return *seedFlag
	}
	return uint64(time.Now().UnixNano()) & (1<<53 - 1) // exact in JSON
}

// timing is the runs' timers: a bit slower than vigil's defaults, so that
// a machine busy with other test packages does not declare live nodes dead
// (that would not break safety, but would muddy what a run shows).
var timing = labcluster.Timing{Keepalive: 250 * time.Millisecond, Warntime: 1250 * time.Millisecond, Deadtime: 2500 * time.Millisecond, Initdead: 10 * time.Second}

// subnets gives each size its own tag and /24s inside 10.88.0.0/16 (short
// runs) or 10.89.0.0/16 (long runs).
func labConfig(size int, long bool) Config {
	second, tag, third := 88, "x", size*10
	if long {
		second, tag = 89, "xl"
		if *slotFlag > 0 {
			tag += strconv.Itoa(*slotFlag) + "s"
			third += 100 * *slotFlag
		}
	}
	return Config{Tag: tag + strconv.Itoa(size), Size: size, Timing: timing,
		PublicSubnet:    "10." + strconv.Itoa(second) + "." + strconv.Itoa(third) + ".0/24",
		HeartbeatSubnet: "10." + strconv.Itoa(second) + "." + strconv.Itoa(third+1) + ".0/24"}
}

func run(t *testing.T, cfg Config) {
	cfg.Seed = seed(t)
	if *kindsFlag != "" {
		cfg.Kinds = nil
		for _, k := range strings.Split(*kindsFlag, ",") {
			if !slices.Contains(AllKinds, Kind(k)) {
				t.Fatalf("-chaos.kinds: unknown kind %q (kinds: %v)", k, AllKinds)
			}
			cfg.Kinds = append(cfg.Kinds, Kind(k))
		}
	}
	cfg.OutDir = *outFlag
	if cfg.OutDir == "" {
		cfg.OutDir = t.TempDir()
	}
	t.Logf("chaos seed %d (replay with -chaos.seed=%d)", cfg.Seed, cfg.Seed)
	o := Run(t, cfg)
	r := o.Result
	t.Logf("chaos result: %d trials %v, %d of %d operator actions acknowledged, %d committed events checked, client availability %.2f%% of %d requests, settle p50 %.0f ms max %.0f ms, %d split-brain intervals, %d service overlaps, %d violations in all; files %v",
		r.Trials, r.ByKind, r.OpsAcked, r.OpsSent, r.Committed, 100*r.Availability, r.Requests, r.SettleP50Ms, r.SettleMaxMs, r.SplitBrainIntervals, r.ServiceOverlaps, len(r.Violations), o.Files)
	Report(t, cfg, o)
}

// TestChaosShort is the CI run: a 3-node and a 5-node cluster, about two
// minutes of faults each, a few dozen trials in all (about five minutes
// with the clusters' setup), on a seed from the clock (logged;
// -chaos.seed replays one).
func TestChaosShort(t *testing.T) {
	if testing.Short() {
		t.Skip("chaos runs real agents in network namespaces; skipped with -short")
	}
	if *durationFlag > 0 {
		t.Skip("-chaos.duration given: TestChaos runs instead")
	}
	for _, size := range []int{3, 5} {
		t.Run(strconv.Itoa(size)+"nodes", func(t *testing.T) {
			cfg := labConfig(size, false)
			// About 15 trials each on a busy 2-core machine (a trial is a
			// hold of 0.5 to 3 deadtimes, healing and settling), 30 on a
			// quiet one.
			cfg.Duration = map[int]time.Duration{3: 120 * time.Second, 5: 100 * time.Second}[size]
			cfg.MinTrials = 10
			cfg.MaxTrials = 30
			// A cut-off holder may still be stopping its service when the
			// new holder starts one (docs/safety.md; reported, not fixed
			// yet); the VIP rule and the client still fail the run.
			cfg.Tolerate = []string{ServiceOverlap}
			run(t, cfg)
		})
	}
}

// TestChaos is the long run, `make chaos SEED=... DURATION=... NODES=...`.
func TestChaos(t *testing.T) {
	if *durationFlag <= 0 {
		t.Skip("give -chaos.duration to run it (make chaos)")
	}
	for _, s := range strings.Split(*nodesFlag, ",") {
		size, err := strconv.Atoi(strings.TrimSpace(s))
		if *slotFlag < 0 || *slotFlag > 2 {
			t.Fatalf("-chaos.slot %d: want 0 to 2", *slotFlag)
		}
		if err != nil {
			t.Fatalf("-chaos.nodes %q: %v", *nodesFlag, err)
		}
		t.Run(strconv.Itoa(size)+"nodes", func(t *testing.T) {
			cfg := labConfig(size, true)
			cfg.Duration = *durationFlag
			cfg.MinTrials = *trialsFlag
			run(t, cfg)
		})
	}
}

// TestRender redraws a run's SVG from its -history.json and result .json:
// VIGIL_CHAOS_RENDER=bench/results/chaos/chaos-3n-7301 go test -run TestRender.
func TestRender(t *testing.T) {
	base := os.Getenv("VIGIL_CHAOS_RENDER")
	if base == "" {
		t.Skip("set VIGIL_CHAOS_RENDER to a run's path without its suffix")
	}
	var h History
	var r Result
	for path, v := range map[string]any{base + "-history.json": &h, base + ".json": &r} {
		data, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		if err := json.Unmarshal(data, v); err != nil {
			t.Fatalf("%s: %v", path, err)
		}
	}
	if err := os.WriteFile(base+".svg", SVG(&h, r.Violations), 0o644); err != nil {
		t.Fatal(err)
	}
}

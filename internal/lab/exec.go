package lab

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"time"
)

func run(ctx context.Context, name string, args ...string) ([]byte, error) {
	return runStdin(ctx, "", name, args...)
}

func runStdin(ctx context.Context, stdin, name string, args ...string) ([]byte, error) {
	cmd := exec.CommandContext(ctx, name, args...)
	if stdin != "" {
		cmd.Stdin = strings.NewReader(stdin)
	}
	var out bytes.Buffer
	cmd.Stdout = &out
	cmd.Stderr = &out
	if err := cmd.Run(); err != nil {
		if errors.Is(err, exec.ErrNotFound) {
			return nil, fmt.Errorf("%s: %w (%s)", name, err, packageHint(name))
		}
		return out.Bytes(), fmt.Errorf("%s %s: %w: %s", name, strings.Join(args, " "), err, bytes.TrimSpace(out.Bytes()))
	}
	return out.Bytes(), nil
}

func packageHint(tool string) string {
	switch tool {
	case "ip":
		return "apt-get install iproute2"
	case "nft":
		return "apt-get install nftables"
	}
	return "is it installed?"
}

func ip(ctx context.Context, args ...string) error {
	_, err := run(ctx, "ip", args...)
	return err
}

// ipIgnoreMissing tolerates an object that vanished meanwhile, as a veth
// does when its peer's namespace goes away.
func ipIgnoreMissing(ctx context.Context, args ...string) error {
	out, err := run(ctx, "ip", args...)
	if err != nil && (bytes.Contains(out, []byte("Cannot find device")) || bytes.Contains(out, []byte("does not exist"))) {
		return nil
	}
	return err
}

func netnsPath(ns string) string { return "/run/netns/" + ns }

func listNetns(ctx context.Context) ([]string, error) {
	out, err := run(ctx, "ip", "netns", "list")
	if err != nil {
		return nil, fmt.Errorf("list netns: %w", err)
	}
	var names []string
	for _, line := range strings.Split(string(out), "\n") {
		// Lines look like "vl-t1-a (id: 3)" or just "vl-t1-a".
		if f := strings.Fields(line); len(f) > 0 {
			names = append(names, f[0])
		}
	}
	return names, nil
}

// listLinks reads stdout only and retries: when another lab changes links during
// the dump, iproute2 warns "Dump was interrupted" on stderr and may return a
// partial list.
func listLinks(ctx context.Context) ([]string, error) {
	var links []struct {
		Name string `json:"ifname"`
	}
	var lastErr error
	for attempt := 0; attempt < 5; attempt++ {
		cmd := exec.CommandContext(ctx, "ip", "-j", "link", "show")
		var stdout, stderr bytes.Buffer
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		err := cmd.Run()
		if err == nil && !bytes.Contains(stderr.Bytes(), []byte("interrupted")) {
			if lastErr = json.Unmarshal(stdout.Bytes(), &links); lastErr == nil {
				break
			}
		} else if err != nil {
			lastErr = fmt.Errorf("ip -j link show: %w: %s", err, bytes.TrimSpace(stderr.Bytes()))
		} else {
			lastErr = errors.New("ip -j link show: dump interrupted")
		}
		links = nil
		time.Sleep(50 * time.Millisecond)
	}
	if lastErr != nil {
		return nil, fmt.Errorf("list links: %w", lastErr)
	}
	names := make([]string, 0, len(links))
	for _, l := range links {
		names = append(names, l.Name)
	}
	return names, nil
}

// nsPids lists the processes inside the namespace. It leaves out this
// process: a goroutine in Host.Do may have moved the main thread into the
// namespace for a moment, and the lab must never signal itself.
func nsPids(ctx context.Context, ns string) ([]int, error) {
	if _, err := os.Stat(netnsPath(ns)); errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	out, err := run(ctx, "ip", "netns", "pids", ns)
	if err != nil {
		return nil, fmt.Errorf("list processes in netns %s: %w", ns, err)
	}
	var pids []int
	for _, f := range strings.Fields(string(out)) {
		pid, err := strconv.Atoi(f)
		if err != nil {
			return nil, fmt.Errorf("list processes in netns %s: bad pid %q", ns, f)
		}
		if pid != os.Getpid() {
			pids = append(pids, pid)
		}
	}
	return pids, nil
}

// killNetns SIGKILLs everything in the namespace until nothing is left, so
// that children forked while we were killing die too.
func killNetns(ctx context.Context, ns string) error {
	deadline := time.Now().Add(10 * time.Second)
	for {
		pids, err := nsPids(ctx, ns)
		if err != nil {
			return err
		}
		if len(pids) == 0 {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("kill processes in netns %s: still alive after 10s: %v", ns, pids)
		}
		for _, pid := range pids {
			if err := syscall.Kill(pid, syscall.SIGKILL); err != nil && !errors.Is(err, syscall.ESRCH) {
				return fmt.Errorf("kill pid %d in netns %s: %w", pid, ns, err)
			}
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// stopNetns SIGSTOPs everything in the namespace, repeating until a pass
// finds no process it has not stopped yet, so that a process forked during
// the first pass does not keep running.
func stopNetns(ctx context.Context, ns string) error {
	stopped := map[int]bool{}
	for round := 0; round < 50; round++ {
		pids, err := nsPids(ctx, ns)
		if err != nil {
			return err
		}
		fresh := 0
		for _, pid := range pids {
			if stopped[pid] {
				continue
			}
			fresh++
			if err := syscall.Kill(pid, syscall.SIGSTOP); err != nil && !errors.Is(err, syscall.ESRCH) {
				return fmt.Errorf("stop pid %d in netns %s: %w", pid, ns, err)
			}
			stopped[pid] = true
		}
		if fresh == 0 {
			return nil
		}
	}
	return fmt.Errorf("stop processes in netns %s: new processes keep appearing", ns)
}

func contNetns(ctx context.Context, ns string) error {
	pids, err := nsPids(ctx, ns)
	if err != nil {
		return err
	}
	var errs []error
	for _, pid := range pids {
		if err := syscall.Kill(pid, syscall.SIGCONT); err != nil && !errors.Is(err, syscall.ESRCH) {
			errs = append(errs, fmt.Errorf("continue pid %d in netns %s: %w", pid, ns, err))
		}
	}
	return errors.Join(errs...)
}

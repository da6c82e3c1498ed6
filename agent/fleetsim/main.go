// Command bonafide-fleetsim simulates a fleet of a few hundred laptops for
// demos and load tests: offices, a coworking space, remote workers,
// travellers, VPN users and one laptop farm. `world` writes the simulated
// world's GeoIP databases, policies (with the offices declared) and HR
// export; `run` enrolls every simulated laptop with a collector and
// reports over real gRPC with mTLS, each from the loopback address of its
// simulated network (Linux lets a socket bind any 127.0.0.0/8 address).
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"runtime/pprof"
	"syscall"
	"time"
)

// version is stamped by the Makefile from git.
var version = "dev"

const usage = `usage: bonafide-fleetsim <command> [flags]

commands:
  world    write the simulated world: GeoIP databases, policies with its offices, HR export
  run      enroll the simulated laptops with a collector and report over gRPC, as agents do
  version  print the version (also --version)
  help     this help

  bonafide-fleetsim world --out DIR [--seed N] [--devices N]
  bonafide-fleetsim run --collector HOST:PORT --secret S --ca-fingerprint HEX --state DIR
                        [--seed N] [--devices N] [--rounds N] [--concurrency N]
                        [--deadline D] [--interval D [--duration D]]

world writes DIR/city.mmdb, DIR/asn.mmdb, DIR/policies/ and DIR/people.csv;
serve the collector with --geoip DIR/city.mmdb --geoip DIR/asn.mmdb
--policies DIR/policies and import DIR/people.csv. run enrolls and reports
the same fleet (use the same --seed and --devices for both): once, or with
--interval until interrupted (SIGINT, SIGTERM) or for --duration.
`

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := cli(ctx, os.Args[1:], os.Stdout, os.Stderr); err != nil {
		if !errors.Is(err, flag.ErrHelp) {
			fmt.Fprintln(os.Stderr, "bonafide-fleetsim:", err)
		}
		os.Exit(2)
	}
}

// errFailed: some report was not acknowledged (the summary says which).
var errFailed = errors.New("not every report was acknowledged")

func cli(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return flag.ErrHelp
	}
	fs := flag.NewFlagSet("bonafide-fleetsim "+args[0], flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprint(stderr, usage); fs.PrintDefaults() }
	seed := fs.Uint64("seed", 1, "world seed: the same seed gives the same hostnames, serials, MACs and addresses")
	devices := fs.Int("devices", 0, "approximate fleet size; scales the offices and remote workers (0: the default ~300)")
	switch args[0] {
	case "world":
		out := fs.String("out", "", "directory to write the world's files to")
		if err := fs.Parse(args[1:]); err != nil {
			return err
		}
		if *out == "" || fs.NArg() > 0 {
			fs.Usage()
			return errors.New("world needs --out DIR and no arguments")
		}
		w := NewWorld(*seed, *devices)
		if err := w.WriteFiles(*out); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "wrote %d people and their networks to %s (farm: %s)\n", len(w.Devices), *out, siteFarm.Egress)
		return nil
	case "run":
		collector := fs.String("collector", "", "collector gRPC address HOST:PORT")
		secret := fs.String("secret", "", "enrollment secret (bonafide-collector secret create)")
		fp := fs.String("ca-fingerprint", "", "the collector CA's SHA-256 (bonafide-collector ca fingerprint)")
		state := fs.String("state", "", "state directory: one subdirectory per simulated device, reused by the next run")
		rounds := fs.Int("rounds", 1, "heartbeats per device after its snapshot")
		conc := fs.Int("concurrency", 16, "devices enrolling and reporting at once (with --interval: enrolling at once)")
		interval := fs.Duration("interval", 0, "keep reporting until interrupted: each device sends a snapshot every interval and, when the collector's heartbeat interval is shorter, heartbeats at that interval in between (0: report once)")
		duration := fs.Duration("duration", 0, "with --interval: stop after this long (0: at SIGINT or SIGTERM)")
		cpuProfile := fs.String("cpuprofile", "", "write a CPU profile of the run to this file (go tool pprof): what the simulated fleet itself costs")
		deadline := fs.Duration("deadline", 0, "keep retrying failed calls, as an agent never gives up, until this long after the start (0: a call gives up after ten failures; a busy collector's refusals do not count)")
		if err := fs.Parse(args[1:]); err != nil {
			return err
		}
		if *collector == "" || *secret == "" || *fp == "" || *state == "" || fs.NArg() > 0 {
			fs.Usage()
			return errors.New("run needs --collector, --secret, --ca-fingerprint and --state")
		}
		if *interval < 0 || *duration < 0 || *duration > 0 && *interval == 0 || *deadline < 0 {
			return errors.New("--duration needs --interval, and none of --interval, --duration and --deadline may be negative")
		}
		if *duration > 0 {
			var cancel context.CancelFunc
			ctx, cancel = context.WithTimeout(ctx, *duration)
			defer cancel()
		}
		w := NewWorld(*seed, *devices)
		log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
		if *cpuProfile != "" {
			f, err := os.Create(*cpuProfile)
			if err != nil {
				return err
			}
			defer f.Close()
			if err := pprof.StartCPUProfile(f); err != nil {
				return err
			}
			defer pprof.StopCPUProfile()
		}
		start := time.Now()
		var until time.Time
		if *deadline > 0 {
			until = start.Add(*deadline)
		}
		results, err := w.Run(ctx, RunOptions{Collector: *collector, Secret: *secret, Fingerprint: *fp, StateDir: *state,
			Rounds: *rounds, Concurrency: *conc, Interval: *interval, Deadline: until, Log: log})
		if err != nil {
			return err
		}
		if !Summarize(stdout, w, results, time.Since(start)) {
			return errFailed
		}
		return nil
	case "version", "--version", "-version":
		fmt.Fprintln(stdout, version)
		return nil
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usage)
		return nil
	}
	fmt.Fprint(stderr, usage)
	return fmt.Errorf("unknown command %q", args[0])
}

// Package cmdx runs the external commands the agent reads the machine
// with (ioreg, ps, netstat, route, last, loginctl, nmcli …). Every run has
// a deadline and an output cap: a command that hangs is killed with its
// process group, and one that prints more than the cap is stopped, so no
// command can hold up a scan or grow the agent's memory without bound.
package cmdx

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"time"
)

// ErrTruncated is wrapped by the error of a run whose output passed its
// cap; the output returned with it is the first maxBytes bytes.
var ErrTruncated = errors.New("output truncated")

// maxStderr bounds the standard error kept for error messages.
const maxStderr = 4 << 10

// waitDelay bounds the wait for the output pipes to close once the command
// has exited or been killed (a descendant that escaped the process group
// may hold them open).
const waitDelay = time.Second

// Run runs name with args in the C locale and returns its standard output.
// It kills the command (with its process group, where the OS has them)
// when timeout passes or ctx ends, and stops it once its output passes
// maxBytes. With the error it returns what was read: at most maxBytes
// bytes, and all of them when the error wraps ErrTruncated.
func Run(ctx context.Context, timeout time.Duration, maxBytes int, name string, args ...string) ([]byte, error) {
	return RunEnv(ctx, nil, timeout, maxBytes, name, args...)
}

// RunEnv is Run with env ("KEY=value" entries, e.g. "TZ=UTC") added to the
// environment.
func RunEnv(ctx context.Context, env []string, timeout time.Duration, maxBytes int, name string, args ...string) ([]byte, error) {
	return run(ctx, nil, env, timeout, maxBytes, name, args...)
}

// User is a user to run a command as.
type User struct{ UID, GID uint32 }

// RunAs is RunEnv as user u (which needs root; Unix only), with the
// agent's environment left out but for PATH: the command gets only PATH,
// the C locale and env, and none of the agent's supplementary groups.
func RunAs(ctx context.Context, u User, env []string, timeout time.Duration, maxBytes int, name string, args ...string) ([]byte, error) {
	return run(ctx, &u, env, timeout, maxBytes, name, args...)
}

func run(ctx context.Context, u *User, env []string, timeout time.Duration, maxBytes int, name string, args ...string) ([]byte, error) {
	ctx, cancel := context.WithTimeoutCause(ctx, timeout,
		fmt.Errorf("no answer within %v: %w", timeout, context.DeadlineExceeded))
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	base := os.Environ()
	if u != nil {
		base = []string{"PATH=" + os.Getenv("PATH")}
	}
	cmd.Env = append(append(base, "LC_ALL=C", "LANG=C"), env...)
	out := &capped{max: maxBytes, stop: cancel}
	stderr := &capped{max: maxStderr}
	cmd.Stdout, cmd.Stderr = out, stderr
	cmd.WaitDelay = waitDelay
	killGroup(cmd)
	if err := runAs(cmd, u); err != nil {
		return nil, fmt.Errorf("run %s: %w", name, err)
	}
	err := cmd.Run()
	switch {
	case out.over:
		return out.buf.Bytes(), fmt.Errorf("run %s: %w: more than %d bytes", name, ErrTruncated, maxBytes)
	case err != nil && ctx.Err() != nil:
		return out.buf.Bytes(), fmt.Errorf("run %s: %w", name, context.Cause(ctx))
	case err != nil:
		if msg, _, _ := strings.Cut(strings.TrimSpace(stderr.buf.String()), "\n"); msg != "" {
			return out.buf.Bytes(), fmt.Errorf("run %s: %w: %.200s", name, err, msg)
		}
		return out.buf.Bytes(), fmt.Errorf("run %s: %w", name, err)
	}
	return out.buf.Bytes(), nil
}

// capped keeps the first max bytes written to it. With stop set, a write
// past them calls stop and fails, which closes the pipe the command writes
// to; without, the rest is dropped quietly (standard error, kept only for
// messages). The buffer is a field, not embedded, so that io.Copy cannot
// bypass Write through bytes.Buffer's ReadFrom.
type capped struct {
	buf  bytes.Buffer
	max  int
	over bool
	stop func()
}

func (c *capped) Write(p []byte) (int, error) {
	room := c.max - c.buf.Len()
	if len(p) <= room {
		return c.buf.Write(p)
	}
	if room > 0 {
		c.buf.Write(p[:room])
	}
	if c.stop == nil {
		return len(p), nil
	}
	c.over = true
	c.stop()
	return max(room, 0), ErrTruncated
}
